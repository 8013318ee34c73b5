"""Package manifests match the code, and the packages are layered.

For every package under ros2_ws/src (ament_python: package.xml + setup.py), the top-level names its
Python code imports (ast; test folders left out) are checked against its package.xml
(<depend>/<exec_depend>) and, for in-repo packages, its setup.py install_requires:

- every in-repo package and every ROS package (rclpy, launch, *_msgs, std_srvs, ...) it imports
  is declared, so colcon orders the build right and rosdep installs what runs;
- a few third-party modules with a well-known rosdep key (ROSDEP_KEYS: numpy -> python3-numpy, ...)
  are declared too; the other third-party imports (mujoco, mink, dynamixel_sdk, diffusers,
  open3d, gymnasium, pip-only back-ends ...) are not checked: they have no rosdep key or are
  optional extras, and requirements.txt / setup.py install them;
- no package imports the top packages `brs` and `brs_bench` (they may import everything below);
- the in-repo packages form no cycle, neither by import nor by declaration (colcon needs a DAG);
- docs/architecture.md's package table is the code's: each package's layer is above the layers of
  what it imports and its "imports" column lists exactly its in-repo imports; the dependency
  picture under the table is the one this file prints (`python tests/test_package_manifests.py`);
- no module imports a private name (`from pkg.mod import _name`) of another package.

"Imports" include the modules a package loads by name (`importlib.import_module(name)`): string
constants that spell a module of an in-repo package. Subcommands and benchmarks are found
through entry points ("brs.commands", "brs.benchmarks"): each package registers only its own
modules, and every registered entry point loads.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "ros2_ws" / "src"
TOPS = ("brs", "brs_bench")  # the top packages: import anything below, imported by none
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

# ROS packages imported by Python name that do not end in _msgs / _srvs / _interfaces.
ROS_PACKAGES = {"rclpy", "launch", "launch_ros", "ament_index_python", "rosidl_runtime_py",
                "message_filters", "tf2_ros", "cv_bridge", "rosbag2_py", "rosgraph_msgs"}

# Third-party Python modules -> rosdep key, checked where imported (see the module doc).
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "yaml": "python3-yaml",
    "psutil": "python3-psutil",
    "scipy": "python3-scipy",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "h5py": "python3-h5py",
    "serial": "python3-serial",
    "requests": "python3-requests",
    "imageio": "python3-imageio",
}

SKIP_DIRS = {"test", "tests", "__pycache__", "build", "install", "log"}


def is_ros_package(name: str) -> bool:
    return name in ROS_PACKAGES or name.endswith(("_msgs", "_srvs", "_interfaces"))


@dataclass
class Package:
    name: str
    root: Path
    declared: set[str] = field(default_factory=set)  # <depend>/<exec_depend>
    install_requires: set[str] = field(default_factory=set)
    imports: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # name -> ["file:line"]
    private: list[str] = field(default_factory=list)  # "file:line: from pkg.mod import _name" across packages


def _sources(root: Path):
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        yield path, rel


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _is_module(dotted: str, roots: dict[str, Path]) -> bool:
    """Does `pkg.sub.module` name a module or subpackage of the in-repo package `pkg`?"""
    first, *rest = dotted.split(".")
    base = roots[first].joinpath(first, *rest)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _setup_install_requires(setup_py: Path) -> set[str]:
    tree = ast.parse(setup_py.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "install_requires":
                    return {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0] for req in ast.literal_eval(kw.value)}
    return set()


def load_packages() -> dict[str, Package]:
    packages = {}
    for root in sorted(SRC.iterdir()):
        if not (root / "package.xml").is_file():
            continue
        xml = ET.parse(root / "package.xml").getroot()
        pkg = Package(xml.findtext("name").strip(), root)
        pkg.declared = {e.text.strip() for tag in ("depend", "exec_depend") for e in xml.iter(tag)}
        if (root / "setup.py").is_file():
            pkg.install_requires = _setup_install_requires(root / "setup.py")
        packages[pkg.name] = pkg
    roots = {name: p.root for name, p in packages.items()}
    dotted = re.compile(r"^(%s)(\.[A-Za-z_]\w*)+$" % "|".join(map(re.escape, packages)))
    for pkg in packages.values():
        for path, rel in _sources(pkg.root):
            tree = ast.parse(path.read_text(), str(path))
            docstrings = _docstrings(tree)
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                      and dotted.match(node.value) and _is_module(node.value, roots)):
                    names = [node.value]  # loaded by name (importlib)
                for name in names:
                    pkg.imports[name.split(".")[0]].append(f"{rel}:{node.lineno}")
                if isinstance(node, ast.ImportFrom) and names and names[0].split(".")[0] in packages:
                    other = names[0].split(".")[0] != pkg.name
                    for alias in node.names:
                        if other and alias.name.startswith("_") and not alias.name.startswith("__"):
                            pkg.private.append(f"{rel}:{node.lineno}: from {names[0]} import {alias.name}")
    return packages


PACKAGES = load_packages()


def in_repo_imports(pkg: Package) -> set[str]:
    return {name for name in pkg.imports if name in PACKAGES and name != pkg.name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None for a DAG."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _where(pkg: Package, name: str) -> str:
    places = pkg.imports[name]
    return f"{name} ({', '.join(places[:3])}{' ...' if len(places) > 3 else ''})"


def test_every_package_is_found():
    assert {"brs", "brs_bringup", "brs_common", "brs_control", "brs_policy", "brs_sim", "brs_teleop",
            "rl_agents"} <= set(PACKAGES)
    for pkg in PACKAGES.values():
        assert pkg.imports, f"{pkg.name}: no Python imports found under {pkg.root}"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_imports_are_declared_in_package_xml(name):
    pkg = PACKAGES[name]
    missing = []
    for imported in sorted(pkg.imports):
        if imported == pkg.name:
            continue
        if imported in PACKAGES or is_ros_package(imported):
            key = imported
        elif imported in ROSDEP_KEYS:
            key = ROSDEP_KEYS[imported]
        else:
            continue  # standard library or a third-party module without a checked rosdep key
        if key not in pkg.declared:
            missing.append(f"<exec_depend>{key}</exec_depend> for {_where(pkg, imported)}")
    assert not missing, f"{name}/package.xml lacks:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_in_repo_imports_are_in_install_requires(name):
    pkg = PACKAGES[name]
    missing = sorted(in_repo_imports(pkg) - pkg.install_requires)
    assert not missing, (f"{name}/setup.py install_requires lacks "
                         + ", ".join(_where(pkg, m) for m in missing))


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_nothing_imports_a_top_package(name):
    pkg = PACKAGES[name]
    for top in set(TOPS) - {name}:
        assert top not in pkg.imports, f"{name} imports {_where(pkg, top)}; import from a lower package"
        assert top not in pkg.declared, f"{name}/package.xml depends on {top}, a top package"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_no_private_name_is_imported_across_packages(name):
    assert not PACKAGES[name].private, f"{name} imports private names:\n  " + "\n  ".join(PACKAGES[name].private)


def architecture_table() -> dict[str, tuple[int, set[str]]]:
    """{package: (layer, imports column)} of docs/architecture.md's package table."""
    rows = {}
    for line in ARCHITECTURE.read_text().splitlines():
        m = re.match(r"^\| (\d+) \| `(\w+)`[^|]*\| ([^|]*) \|", line)
        if m:
            imports = {x.strip() for x in m.group(3).split(",")} - {"-", ""}
            rows[m.group(2)] = (int(m.group(1)), imports)
    return rows


def test_architecture_table_matches_the_code():
    table = architecture_table()
    assert set(table) == set(PACKAGES), f"table {sorted(table)} vs packages {sorted(PACKAGES)}"
    problems = []
    for name, (layer, column) in sorted(table.items()):
        actual = in_repo_imports(PACKAGES[name])
        if column != actual:
            problems.append(f"{name}: table says {sorted(column)}, code imports {sorted(actual)}")
        for other in sorted(actual):
            if table[other][0] >= layer:
                problems.append(f"{name} (layer {layer}) imports {_where(PACKAGES[name], other)} "
                                f"(layer {table[other][0]}): not a lower layer")
    assert not problems, "\n".join(problems)


def dependency_picture() -> str:
    """A mermaid graph of the package imports, each edge drawn only when no longer path implies it."""
    graph = {name: in_repo_imports(pkg) for name, pkg in PACKAGES.items()}

    def reach(a: str) -> set[str]:
        seen, todo = set(), list(graph[a])
        while todo:
            b = todo.pop()
            if b not in seen:
                seen.add(b)
                todo.extend(graph[b])
        return seen
    lines = ["```mermaid", "graph BT"]
    for a in sorted(graph):
        for b in sorted(graph[a]):
            if not any(b in reach(c) for c in graph[a] - {b}):
                lines.append(f"  {a} --> {b}")
    return "\n".join(lines + ["```"])


def test_architecture_picture_matches_the_code():
    picture = dependency_picture()
    assert picture in ARCHITECTURE.read_text(), (
        "docs/architecture.md's dependency picture is out of date; paste the output of "
        f"`python tests/test_package_manifests.py`:\n{picture}")


def test_in_repo_packages_form_no_import_cycle():
    graph = {name: in_repo_imports(pkg) for name, pkg in PACKAGES.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages: " + " -> ".join(
        f"{a} ({PACKAGES[a].imports[b][0]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_in_repo_packages_form_no_declared_cycle():
    graph = {name: pkg.declared & set(PACKAGES) for name, pkg in PACKAGES.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "dependency cycle in package.xml files: " + " -> ".join(cycle)


def test_find_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


if __name__ == "__main__":  # the package import graph and its picture, for docs/architecture.md
    for name, pkg in sorted(PACKAGES.items()):
        print(f"{name} -> {', '.join(sorted(in_repo_imports(pkg))) or '-'}")
    print(dependency_picture())


@pytest.mark.parametrize("group", ["brs.commands", "brs.benchmarks"])
def test_entry_points_load_and_each_package_registers_its_own(group):
    from importlib.metadata import entry_points

    found = list(entry_points(group=group))
    assert len(found) >= (8 if group == "brs.commands" else 12), [e.name for e in found]
    for entry in found:
        owner = entry.dist.name.replace("-", "_") if entry.dist else "?"
        assert entry.module.split(".")[0] == owner, f"{entry} registered by {owner}"
        assert callable(entry.load()), entry
