"""The robot's driver computer needs only requirements-robot.txt: with every module that neither
requirements-robot.txt (and its dependencies) nor the driver computer's in-repo packages install
made unimportable, the real-mode graph's driver, controller and robot-description nodes, the runner
and the `brs` CLI import, the URDF is generated and `brs graph use_sim:=false` describes the graph."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("brs_teleop", "brs_policy", "rl_agents", "brs_bench")  # not installed on the driver computer
IN_REPO = {"brs", "brs_bringup", "brs_common", "brs_control", "brs_sim"}

PROBE = """
import importlib, importlib.abc, io, contextlib, json, sys
from importlib.metadata import packages_distributions
from packaging.utils import canonicalize_name

absent, allowed = {absent!r}, {allowed!r}
owners = packages_distributions()
refused = set()

class DriverComputer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        dists = {{canonicalize_name(d) for d in owners.get(top, [])}}
        if top in absent or (dists and not dists & allowed):
            refused.add(top)
            raise ModuleNotFoundError(f"No module named {{top!r}} (not installed on the driver computer)")

sys.meta_path.insert(0, DriverComputer())
nodes = ["brs_control.dynamixel_driver", "brs_control.wheel_driver", "brs_control.joint_state_merger",
         "brs_control.whole_body_controller", "brs_sim.robot_description_node"]
for name in nodes + ["brs.cli", "brs_bringup.runner"]:
    importlib.import_module(name)
from brs_sim.urdf import robot_urdf
assert "<robot" in robot_urdf()
from brs.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    assert main(["graph", "use_sim:=false", "--json"]) == 0
graph = {{n["package"] + "/" + n["executable"] for n in json.loads(out.getvalue())}}
print(json.dumps({{"graph": sorted(graph), "refused": sorted(refused), "loaded": sorted({{m.split(".")[0] for m in sys.modules}})}}))
"""


def pins(path: Path) -> dict[str, Requirement]:
    reqs = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req
    return reqs


def closure(reqs) -> set[str]:
    """The distributions `reqs` install: themselves and their dependencies (extras followed)."""
    seen, todo = set(), [(canonicalize_name(r.name), set(r.extras)) for r in reqs]
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            env = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(e) for e in env):
                todo.append((canonicalize_name(req.name), set(req.extras)))
    return seen


def test_the_real_mode_graph_runs_on_requirements_robot_alone():
    allowed = closure(pins(ROOT / "requirements-robot.txt").values()) | {canonicalize_name(p) for p in IN_REPO}
    out = subprocess.run([sys.executable, "-c", PROBE.format(absent=set(ABSENT), allowed=allowed)],
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    packages = {entry.split("/")[0] for entry in result["graph"]}
    assert packages <= IN_REPO and "brs_control/dynamixel_driver" in result["graph"], result["graph"]
    assert not {"torch", "dm_control", "h5py", "pygame", *ABSENT} & set(result["loaded"]), result["loaded"]


def test_requirements_robot_pins_the_same_versions_as_requirements():
    full, robot = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-robot.txt")
    assert set(robot) <= set(full), sorted(set(robot) - set(full))
    differ = [f"{name}: {robot[name].specifier} vs {full[name].specifier}" for name in robot
              if str(robot[name].specifier) != str(full[name].specifier) or robot[name].extras != full[name].extras]
    assert not differ, differ
    assert all(re.fullmatch(r"==[\w.]+", str(r.specifier)) for r in robot.values()), "pin every version"
