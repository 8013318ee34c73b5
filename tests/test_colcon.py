"""colcon, the ROS 2 build tool, reads the workspace as a ROS user's machine would: it finds every
package, orders each after the in-repo packages its code imports (from the package.xml
declarations), and builds an ament_python package into an install space that a sourced workspace
imports from. (The whole workspace builds the same way, ~45 s: docs/architecture.md.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_package_manifests import PACKAGES, in_repo_imports

pytest.importorskip("colcon_core")

WORKSPACE = Path(__file__).resolve().parents[1] / "ros2_ws"
COLCON = str(Path(sys.executable).parent / "colcon")


def colcon(*args: str, cwd: Path = WORKSPACE, log_base: Path) -> str:
    out = subprocess.run([COLCON, "--log-base", str(log_base), *args], cwd=cwd, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, f"colcon {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_colcon_finds_every_package_and_orders_it_after_what_it_imports(tmp_path):
    listed = colcon("list", "--topological-order", log_base=tmp_path / "log").splitlines()
    order = [line.split("\t")[0] for line in listed]
    kinds = {line.split("\t")[0]: line.split("\t")[-1] for line in listed}
    assert sorted(order) == sorted(PACKAGES), f"colcon found {order}"
    assert set(kinds.values()) == {"(ros.ament_python)"}, kinds
    late = [f"{name} before {dep}" for name in order for dep in sorted(in_repo_imports(PACKAGES[name]))
            if order.index(dep) > order.index(name)]
    assert not late, f"colcon's build order {order} puts packages before what they import: {late}"


def test_colcon_build_installs_an_importable_ament_python_package(tmp_path):
    colcon("build", "--base-paths", "src/brs_common", "--build-base", str(tmp_path / "build"),
           "--install-base", str(tmp_path / "install"), log_base=tmp_path / "log")
    prefix = tmp_path / "install" / "brs_common"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "brs_common").is_file()
    assert (prefix / "share" / "brs_common" / "package.xml").is_file()
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    probe = subprocess.run([sys.executable, "-c", "import brs_common.robot_spec as s; print(s.__file__, s.ACTION_DIM)"],
                           env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    path, dim = probe.stdout.split()
    assert Path(path).is_relative_to(site) and int(dim) == 21, probe.stdout
