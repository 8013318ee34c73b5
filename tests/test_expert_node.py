"""The expert node drives the sim through the whole-body controller like an operator: teleop
commands only, object poses from /sim/objects, start/home/stop services, status on /diagnostics."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import markers_to_object_poses
from rosutil import NodeProcess, wait_for

FIXTURES = str(Path(__file__).parent / "fixtures")
RIGHT1 = spec.STATE_JOINTS.index("right_arm_joint1")


def _status(ros, name="expert: expert"):
    msg = ros.last(topics.DIAGNOSTICS + "#expert")
    if msg is None:
        return {}
    for s in msg.status:
        if s.name == name:
            return {kv.key: kv.value for kv in s.values}
    return {}


@pytest.fixture
def graph(ros, monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", FIXTURES + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ros.record(topics.JOINT_STATES, JointState, qos.STATE, keep=5)
    ros.record(topics.whole_body_command("teleop"), JointTrajectory, qos.COMMAND, keep=50)
    ros.record(topics.SIM_OBJECTS, MarkerArray, qos.STATE, keep=2)
    # diagnostics of the expert only (other nodes publish there too)
    def keep_expert(msg):
        if any(s.name.startswith("expert:") for s in msg.status):
            with ros.lock:
                ros.messages[topics.DIAGNOSTICS + "#expert"].append(msg)
    ros.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, keep_expert, qos.DIAGNOSTICS)
    ros.spawn("sim_node", {"cameras_enabled": False, "task": "bimanual_box", "use_sim_time": True},
              log_path=tmp_path / "sim.log")
    ros.spawn("whole_body_controller", {"active_source": "teleop", "use_sim_time": True},
              log_path=tmp_path / "controller.log")
    expert = ros.spawn("expert_node", {"task": "bimanual_box", "expert_class": "reach_expert:ReachExpert",
                                       "use_sim_time": True}, log_path=tmp_path / "expert.log")
    wait_for(lambda: ros.last(topics.JOINT_STATES), 30, message="/joint_states")
    wait_for(lambda: _status(ros).get("state") == "idle", 30, message="expert idle")
    return expert


def test_expert_drives_robot_and_reports_done_then_homes(ros, graph):
    objects = wait_for(lambda: ros.last(topics.SIM_OBJECTS), 10, message="/sim/objects")
    poses = markers_to_object_poses(objects)
    assert {"box", "trash_bin", "block_2"} <= set(poses)
    assert poses["box"][2] == pytest.approx(0.101, abs=0.01)  # on the floor, where the task put it
    assert ros.count(topics.whole_body_command("teleop")) == 0  # idle: sends nothing
    ros.assert_parameters_described("/expert")

    # the node refuses to start until it has /joint_states, /odom and object poses (a loaded machine
    # may report "idle" before the first /odom reached it): ask until it accepts
    wait_for(lambda: ros.call(Trigger, "/expert/start", Trigger.Request(), timeout=10).success, 20,
             message="the expert accepting /expert/start")
    wait_for(lambda: _status(ros).get("state") == "done", 30, message="expert done")
    q = np.asarray(ros.last(topics.JOINT_STATES).position)
    assert q[RIGHT1] == pytest.approx(0.5, abs=0.02)  # it got there through the controller
    cmd = ros.last(topics.whole_body_command("teleop"))
    assert list(cmd.joint_names) == list(spec.ACTION_JOINTS)
    assert _status(ros)["phase"] == "reached"

    assert ros.call(Trigger, "/expert/home", Trigger.Request()).success
    wait_for(lambda: _status(ros).get("state") == "home", 30, message="home pose")
    q = np.asarray(ros.last(topics.JOINT_STATES).position)
    home = np.array([spec.JOINT_BY_NAME[n].home for n in spec.STATE_JOINTS])
    assert np.abs(q - home).max() < 0.03


def test_expert_node_refuses_unknown_task(ros_domain, tmp_path):
    proc = NodeProcess("expert_node", {"task": "cook_dinner"}, log_path=tmp_path / "log")
    assert proc.proc.wait(timeout=30) == 2
    assert "task must be one of" in proc.log()
    proc = NodeProcess("expert_node", {"task": "bimanual_box", "max_wait": 1.0}, log_path=tmp_path / "log2")
    assert proc.proc.wait(timeout=30) == 2
    assert "max_wait 1: BimanualBoxExpert has no phases to wait before" in proc.log()


def test_action_noise_is_smooth_with_the_asked_std_and_spares_the_grippers():
    from brs_sim.expert_node import NOISE_TAU, NOISY, ActionNoise

    noise = ActionNoise(0.05, 0.1, seed=0)
    noise.reset()
    x = np.array([noise() for _ in range(20000)])
    assert np.all(x[:, ~NOISY] == 0.0) and (~NOISY).sum() == 2  # the two grippers
    std = x[:, NOISY].std()
    assert std == pytest.approx(0.05, rel=0.1), std
    lag = int(round(NOISE_TAU / 0.1))  # correlation e^-1 one time constant apart
    corr = np.mean([np.corrcoef(x[:-lag, j], x[lag:, j])[0, 1] for j in np.flatnonzero(NOISY)])
    assert corr == pytest.approx(np.exp(-1), abs=0.08), corr


def test_noise_injection_executes_a_perturbed_target_and_publishes_the_clean_one(ros, monkeypatch, tmp_path):
    """action_noise:=0.05: the teleop command (what the robot executes) wanders around the
    expert's target; ~/clean_command (what the recorder stores as the action) is the target."""
    from brs_common.convert import joint_state_arrays, trajectory_to_arrays

    monkeypatch.setenv("PYTHONPATH", FIXTURES + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = topics.whole_body_command("teleop")
    ros.record(command, JointTrajectory, qos.COMMAND, keep=200)
    ros.record("/expert/clean_command", JointState, qos.STATE, keep=200)
    ros.record(topics.JOINT_STATES, JointState, qos.STATE, keep=5)
    ros.spawn("sim_node", {"cameras_enabled": False, "task": "bimanual_box", "use_sim_time": True},
              log_path=tmp_path / "sim.log")
    ros.spawn("whole_body_controller", {"active_source": "teleop", "use_sim_time": True},
              log_path=tmp_path / "controller.log")
    ros.spawn("expert_node", {"task": "bimanual_box", "expert_class": "reach_expert:ReachExpert",
                              "use_sim_time": True, "action_noise": 0.05, "noise_seed": 1},
              log_path=tmp_path / "expert.log")
    wait_for(lambda: ros.last(topics.JOINT_STATES), 30, message="/joint_states")
    wait_for(lambda: ros.call(Trigger, "/expert/start", Trigger.Request(), timeout=10).success, 20,
             message="the expert accepting /expert/start")
    # (the reach ends when the noisy arm passes within 1 cm of 0.5: ~2-3 s of 10 Hz commands)
    wait_for(lambda: ros.count(command) >= 15 and ros.count("/expert/clean_command") >= 15, 30,
             message="15 commands and clean targets")
    with ros.lock:
        executed = np.array([trajectory_to_arrays(m)[1][0] for m in ros.messages[command]])[:15]
        clean = [joint_state_arrays(m, spec.ACTION_JOINTS) for m in ros.messages["/expert/clean_command"]]
    clean_pos = np.array([c[0] for c in clean])[:15]
    j = spec.ACTION_JOINTS.index("right_arm_joint1")
    g = [spec.ACTION_JOINTS.index(f"{s}_gripper_joint") for s in ("left", "right")]
    assert np.all(clean_pos[:, j] == 0.5), clean_pos[:, j]  # the expert's target, untouched
    offsets = executed[:, j] - 0.5
    assert 0.005 < offsets.std() and np.abs(offsets).max() < 0.3, offsets
    np.testing.assert_allclose(executed[:, g], clean_pos[:, g], atol=1e-6)  # grippers are never perturbed
