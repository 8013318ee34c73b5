"""The real-mode graph (`use_sim:=false`) end to end against the device emulators on ptys.

`brs emulate`'s emulators stand in for the Dynamixel chains and ODrive boards; `brs bringup`
runs the drivers, the joint-state merger and the whole-body controller as separate processes.
A teleop whole-body command must come out as motion of the emulated motors and wheels.
"""

from __future__ import annotations

import signal
import subprocess

import numpy as np
import psutil
import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from brs import emulate
from brs_bringup import graph
from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import make_trajectory
from rosutil import BIN, wait_for


@pytest.fixture
def real_graph(ros, tmp_path):
    procs, overrides, links = emulate.start(tmp_path / "dev", log_dir=tmp_path)
    runner = None
    try:
        wait_for(lambda: all(link.exists() for link in links), 20, message="emulator ptys")
        log = open(tmp_path / "bringup.log", "wb")
        runner = subprocess.Popen(
            [str(BIN / "brs"), "bringup", "use_sim:=false", "mode:=teleop", "--no-status",
             "--log-dir", str(tmp_path / "logs"), *(f"{k}:={v}" for k, v in overrides.items())],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        yield runner, tmp_path
    finally:
        if runner is not None and runner.poll() is None:
            runner.send_signal(signal.SIGINT)
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
        emulate.stop(procs)


def test_teleop_command_moves_emulated_motors_and_wheels(ros, real_graph):
    runner, tmp_path = real_graph
    ros.record(topics.JOINT_STATES, JointState, qos.STATE)
    ros.record(topics.ODOM, Odometry, qos.STATE)
    wait_for(lambda: (ros.count(topics.JOINT_STATES) > 5 and ros.count(topics.ODOM) > 5)
             or runner.poll() is not None, 60, message="merged /joint_states and /odom from the drivers")
    assert runner.poll() is None, (tmp_path / "bringup.log").read_text()
    msg = ros.last(topics.JOINT_STATES)
    assert list(msg.name[:len(spec.STATE_JOINTS)]) == list(spec.STATE_JOINTS)

    pub = ros.node.create_publisher(JointTrajectory, topics.whole_body_command("teleop"), qos.COMMAND)
    wait_for(lambda: pub.get_subscription_count() > 0, 20, message="controller subscribed")
    target = dict(zip(msg.name, msg.position))
    names = ["left_arm_joint1", "torso_joint4", "right_gripper_joint"]
    goal = np.array([target["left_arm_joint1"] + 0.3, target["torso_joint4"] - 0.2, 0.01])
    base = np.array([0.2, 0.0, 0.0])

    def command():  # 20 Hz, like a teleop source, from the harness's executor
        pub.publish(make_trajectory([*names, *spec.BASE_JOINTS], np.r_[goal, 0, 0, 0][None], [0.05],
                                    velocities=np.r_[0, 0, 0, base][None]))

    def arrived():
        now = dict(zip(ros.last(topics.JOINT_STATES).name, ros.last(topics.JOINT_STATES).position))
        moved = all(abs(now[n] - g) < 0.02 for n, g in zip(names, goal))
        return moved and ros.last(topics.ODOM).pose.pose.position.x > 0.1

    timer = ros.node.create_timer(0.05, command)
    try:
        wait_for(arrived, 30, message="emulated joints at their targets and base moving")
        # the median over the last 10 odometry messages: one late command on a loaded machine
        # may cost a sample of braking, the commanded speed is what the base keeps
        with ros.lock:
            vx = [m.twist.twist.linear.x for m in list(ros.messages[topics.ODOM])[-10:]]
        assert np.median(vx) == pytest.approx(0.2, abs=0.05), vx
    finally:
        ros.node.destroy_timer(timer)
    # Stop commanding: the controller's watchdog zeroes the base, the wheels stop.
    wait_for(lambda: abs(ros.last(topics.ODOM).twist.twist.linear.x) < 0.01, 10, message="base stopped")

    # every node of the graph explains every parameter (`ros2 param describe`)
    nodes = [f"/{n.name}" for n in graph.describe(use_sim=False, mode="teleop")]
    wait_for(lambda: set(nodes) <= {f"{ns.rstrip('/')}/{name}" for name, ns in
                                    ros.node.get_node_names_and_namespaces()}, 20, message=f"nodes {nodes}")
    for node in nodes:
        ros.assert_parameters_described(node)

    children = psutil.Process(runner.pid).children(recursive=True)
    assert len(children) >= 6  # 3 Dynamixel drivers, wheel driver, merger, controller
    runner.send_signal(signal.SIGINT)
    assert runner.wait(30) == 0, (tmp_path / "bringup.log").read_text()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
