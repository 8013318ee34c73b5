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
