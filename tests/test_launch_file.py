"""bringup.launch.py against stand-in launch / launch_ros modules (not installable here).

The stand-ins record their constructor arguments; the launch file must declare exactly
brs_bringup.graph.LAUNCH_ARGUMENTS and its OpaqueFunction must produce exactly graph.describe(...).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from brs_bringup import graph

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "ros2_ws/src/brs/launch/bringup.launch.py"


class Recorded:
    """Stand-in for a launch entity: keeps its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stand_in(name: str, **classes) -> types.ModuleType:
    module = types.ModuleType(name)
    for cls in classes:
        setattr(module, cls, type(cls, (Recorded,), {}))
    return module


@pytest.fixture
def launch_file(monkeypatch):
    """The launch module, imported by path with stand-in launch APIs."""
    modules = {
        "launch": _stand_in("launch", LaunchDescription=1),
        "launch.actions": _stand_in("launch.actions", DeclareLaunchArgument=1, OpaqueFunction=1,
                                    Shutdown=1),
        "launch.substitutions": _stand_in("launch.substitutions", LaunchConfiguration=1),
        "launch_ros": _stand_in("launch_ros"),
        "launch_ros.actions": _stand_in("launch_ros.actions", Node=1),
    }
    modules["launch"].actions = modules["launch.actions"]
    modules["launch"].substitutions = modules["launch.substitutions"]
    modules["launch_ros"].actions = modules["launch_ros.actions"]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("brs_bringup_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _launch(launch_file, **given):
    """Run the description like `ros2 launch ... key:=value`: declared defaults, then the args."""
    description = launch_file.generate_launch_description()
    entities = description.args[0]
    declared = [e for e in entities if type(e).__name__ == "DeclareLaunchArgument"]
    opaque = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1 and len(declared) + 1 == len(entities)
    configurations = {d.args[0]: d.kwargs["default_value"] for d in declared}
    configurations.update(given)
    context = types.SimpleNamespace(launch_configurations=configurations)
    return declared, opaque[0].kwargs["function"](context)


def test_declared_arguments_are_the_graphs(launch_file):
    declared, _ = _launch(launch_file)
    assert [(d.args[0], d.kwargs["default_value"], d.kwargs["description"], d.kwargs["choices"])
            for d in declared] == [
        (a.name, a.default, a.description, list(a.choices) if a.choices else None)
        for a in graph.LAUNCH_ARGUMENTS
    ]


@pytest.mark.parametrize("given, expected", [
    ({}, {}),
    ({"mode": "demo"}, {"mode": "demo"}),
    ({"use_sim": "true", "mode": "demo", "speed_factor": "3.0", "cameras_enabled": "false"},
     {"mode": "demo", "speed_factor": 3.0, "cameras_enabled": False}),
    ({"use_sim": "false", "mode": "idle"}, {"use_sim": False}),
    ({"use_sim": "false", "mode": "demo"}, {"use_sim": False, "mode": "demo"}),
    ({"use_sim": "true", "mode": "teleop", "seed": "4", "scene": "123"},
     {"mode": "teleop", "seed": 4, "scene": "123"}),
    ({"mode": "record", "teleop": "keyboard"}, {"mode": "record", "teleop": "keyboard"}),
    ({"mode": "teleop", "viz": "true", "viz_bridge.port": "9000"}, {"mode": "teleop", "viz": True, "viz_bridge.port": 9000}),
])
def test_nodes_are_exactly_the_description(launch_file, given, expected):
    _, nodes = _launch(launch_file, **given)
    described = graph.describe(**expected)
    assert len(nodes) == len(described)
    for node, d in zip(nodes, described):
        assert type(node).__name__ == "Node" and not node.args
        kw = node.kwargs
        assert (kw["package"], kw["executable"], kw["name"]) == (d.package, d.executable, d.name)
        assert kw["parameters"] == [d.parameters]
        assert kw["remappings"] == list(d.remappings)
        assert kw["output"] == "screen"
        assert (kw["respawn"], kw["respawn_delay"]) == (d.respawn, d.respawn_delay)
        assert float(kw["sigterm_timeout"]) == d.stop_timeout
        if d.required:
            assert type(kw["on_exit"]).__name__ == "Shutdown"
        else:
            assert kw["on_exit"] is None
        assert d.parameters["use_sim_time"] == graph.parse_bool("use_sim", given.get("use_sim", "true"))


def test_sim_and_demo_nodes_by_mode(launch_file):
    assert [n.kwargs["name"] for n in _launch(launch_file, mode="demo")[1]] == [
        "sim", "whole_body_controller", "robot_description_publisher", "demo_source", "demo_recorder"]
    sim = _launch(launch_file, speed_factor="2.5")[1][0].kwargs
    assert sim["parameters"][0]["speed_factor"] == 2.5
    assert sim["parameters"][0]["camera_rate_hz"] == 10.0
    real = _launch(launch_file, use_sim="false", **{"torso_driver.port": "/tmp/x"})[1]
    assert [n.kwargs["name"] for n in real] == [
        "torso_driver", "left_arm_driver", "right_arm_driver", "wheel_driver", "joint_state_merger",
        "whole_body_controller", "robot_description_publisher"]
    ports = {n.kwargs["name"]: n.kwargs["parameters"][0].get("port") for n in real}
    assert ports["torso_driver"] == "/tmp/x" and ports["left_arm_driver"] == "/dev/brs_left_arm"
    assert all(n.kwargs["parameters"][0]["use_sim_time"] is False for n in real)
    controller = {m: _launch(launch_file, mode=m)[1][1].kwargs["parameters"][0]["active_source"]
                  for m in ("idle", "policy", "rl", "demo")}
    assert controller == {"idle": "teleop", "policy": "policy", "rl": "rl", "demo": "demo"}


def test_bad_mode_is_a_clear_error(launch_file):
    with pytest.raises(ValueError, match="unknown mode 'dance'; valid values: idle, teleop, policy"):
        _launch(launch_file, mode="dance")


def test_unknown_override_is_a_clear_error(launch_file):
    with pytest.raises(ValueError, match="unknown argument 'sped_factor'.*speed_factor"):
        _launch(launch_file, sped_factor="2.0")
    with pytest.raises(ValueError, match="sim.speed_factor expects a float"):
        _launch(launch_file, speed_factor="fast")
    with pytest.raises(ValueError, match="unknown use_sim 'maybe'; valid values: true, false"):
        _launch(launch_file, use_sim="maybe")
    with pytest.raises(ValueError, match="use_sim_time follows use_sim"):
        _launch(launch_file, use_sim_time="true")


def test_describe_validates_directly():
    with pytest.raises(ValueError, match="unknown mode 'dance'; valid modes: idle, teleop, policy, rl, record, demo"):
        graph.describe(mode="dance")
    with pytest.raises(ValueError, match="unknown teleop 'gamepad'"):
        graph.describe(mode="record", teleop="gamepad")
    by_input = {t: {n.name: n for n in graph.describe(mode="record", teleop=t)} for t in ("joylo", "keyboard")}
    assert "joylo" in by_input["joylo"] and "joylo" not in by_input["keyboard"]  # keyboard_teleop runs in its own terminal
    assert by_input["keyboard"]["episode_recorder"].parameters["source"] == "keyboard"
    assert by_input["joylo"]["episode_recorder"].parameters["source"] == "teleop"
    assert "viz_bridge" not in [n.name for n in graph.describe()]
    # empty lists: a string list's "none" is [""]; a numeric list needs an element (checked before anything starts)
    rec = {n.name: n for n in graph.describe(mode="record", **{"episode_recorder.cameras": "[]"})}["episode_recorder"]
    assert rec.parameters["cameras"] == [""]
    with pytest.raises(ValueError, match=r"joylo.base_max: an empty list cannot be a ROS parameter"):
        graph.describe(mode="teleop", **{"joylo.base_max": "[]"})
    viz = {n.name: n for n in graph.describe(viz="true")}["viz_bridge"]
    assert (viz.package, viz.executable, viz.parameters["port"]) == ("brs", "viz_bridge", 8765)
    assert "sim" not in [n.name for n in graph.describe(use_sim=False, mode="idle")]
    with pytest.raises(ValueError, match="unknown argument 'torso_driver.nope'"):
        graph.describe(use_sim=False, **{"torso_driver.nope": "1"})
    sim = graph.describe(speed_factor=0)[0]
    assert sim.parameters["speed_factor"] == 0.0 and isinstance(sim.parameters["speed_factor"], float)


def test_config_comes_from_the_brs_package_checkout_or_install(monkeypatch, tmp_path):
    """graph (in brs_bringup) reads brs's config/*.yaml: from the brs source checkout (editable
    install), else from share/brs/config of the ament index (a non-editable colcon install)."""
    from brs_common import paths

    checkout = Path(__file__).resolve().parents[1] / "ros2_ws/src/brs/config"
    assert graph.default_config_dir() == checkout
    share = tmp_path / "install/brs/share/brs"
    (share / "config").mkdir(parents=True)
    (share / "config/sim.yaml").write_text("sim:\n  ros__parameters:\n    speed_factor: 4.0\n")
    site = tmp_path / "install/brs/lib/python3/site-packages/brs"  # no package.xml beside it
    site.mkdir(parents=True)
    monkeypatch.setattr(paths.importlib.util, "find_spec",
                        lambda name: types.SimpleNamespace(origin=str(site / "__init__.py")))
    index = types.ModuleType("ament_index_python.packages")
    index.get_package_share_directory = lambda package: str(tmp_path / f"install/{package}/share/{package}")
    monkeypatch.setitem(sys.modules, "ament_index_python", types.ModuleType("ament_index_python"))
    monkeypatch.setitem(sys.modules, "ament_index_python.packages", index)
    assert graph.default_config_dir() == share / "config"
    assert graph.load_parameters() == {"sim": {"speed_factor": 4.0}}


def test_robot_state_publisher_takes_the_description_nodes_place_where_installed(launch_file, monkeypatch):
    from brs_sim.urdf import robot_urdf

    assert not launch_file.robot_state_publisher_installed()  # the pip venv has no robot_state_publisher
    monkeypatch.setattr(launch_file, "robot_state_publisher_installed", lambda: True)
    for use_sim in ("true", "false"):
        nodes = _launch(launch_file, use_sim=use_sim)[1]
        rsp = [n.kwargs for n in nodes if n.kwargs["package"] == "robot_state_publisher"]
        assert len(rsp) == 1 and not any(n.kwargs["executable"] == "robot_description_node" for n in nodes)
        assert rsp[0]["executable"] == "robot_state_publisher" and rsp[0]["name"] == "robot_description_publisher"
        params = rsp[0]["parameters"][0]
        assert params["robot_description"] == robot_urdf()
        assert params["use_sim_time"] == (use_sim == "true")
        assert len(nodes) == len(graph.describe_from_arguments({"use_sim": use_sim}))
