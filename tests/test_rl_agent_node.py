"""rl_agent_node: bad checkpoints exit 2; stale inputs hold; in the `mode:=rl` bringup with the
stored MR.Q checkpoint the right gripper reaches the goal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import make_joint_state, state_positions
from conftest import harness_on_new_domain
from rosutil import wait_for
from rl_agents.ros_tasks import ARM_SLICE, POSITION, ReachTask

CHECKPOINT = Path(__file__).resolve().parents[1] / "ros2_ws/src/rl_agents/checkpoints/ros_reach_mrq.pt"
HOME_STATE = spec.HOME[POSITION]


def _exit_code(h, tmp_path, checkpoint: str, timeout: float = 60.0):
    proc = h.spawn("rl_agent_node", {"checkpoint": checkpoint}, log_path=tmp_path / "node.log")
    rc = proc.proc.wait(timeout)
    return rc, proc.log()


def test_bad_checkpoints_exit_with_code_2(ros, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    rc, log = _exit_code(ros, tmp_path, str(garbage))
    assert rc == 2 and "not a weights-only torch checkpoint" in log
    rc, log = _exit_code(ros, tmp_path, str(tmp_path / "missing.pt"))
    assert rc == 2 and "no such file" in log
    # a valid MR.Q checkpoint for another observation size
    from rl_agents.mrq.agent import MRQAgent
    from rl_agents.mrq.cli import REDUCED
    from rl_agents.mrq.config import MRQConfig

    other = tmp_path / "other.pt"
    MRQAgent((5,), 2, config=MRQConfig(**{**REDUCED, "buffer_size": 100})).save(other)
    rc, log = _exit_code(ros, tmp_path, str(other))
    assert rc == 2 and "was trained for observations (5,)" in log


@pytest.mark.skipif(not CHECKPOINT.exists(), reason="stored checkpoint missing")
def test_stale_inputs_hold_once_then_resume(ros, tmp_path):
    """Wall-clock node (use_sim_time false) fed by the test: commands at 10 Hz while /joint_states
    and /odom arrive; when they stop, one hold command (arm at its measured pose) and silence."""
    h = ros
    h.record(topics.whole_body_command("rl"), JointTrajectory, qos.COMMAND, keep=1000)
    h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    js_pub = h.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    odom_pub = h.node.create_publisher(Odometry, topics.ODOM, qos.STATE)
    h.spawn("rl_agent_node", {"checkpoint": str(CHECKPOINT), "stale_timeout": 0.3},
            log_path=tmp_path / "node.log")
    wait_for(lambda: js_pub.get_subscription_count() > 0 and odom_pub.get_subscription_count() > 0, 30,
             message="the node's subscriptions")
    q = HOME_STATE.copy()
    q[list(spec.STATE_JOINTS).index("right_arm_joint2")] = -0.1  # measured arm pose to hold

    def feed():
        js_pub.publish(make_joint_state(spec.STATE_JOINTS, q))
        odom_pub.publish(Odometry())
        return h.count(topics.whole_body_command("rl")) >= 5

    wait_for(feed, 30, interval=0.02, message="5 commands while fed")
    wait_for(lambda: (h.diagnostic_status("rl_agent: rl_agent") or (0, {}))[1].get("state") == "stale", 5,
             message="state stale")
    # the last command is the hold: the right arm at its measured pose, the rest at home, base at rest
    hold = np.array(h.last(topics.whole_body_command("rl")).points[0].positions)
    arm = [q[list(spec.STATE_JOINTS).index(n)] for n in spec.GROUPS["right_arm"].joints]
    np.testing.assert_array_equal(hold[ARM_SLICE], arm)
    n_after = h.count(topics.whole_body_command("rl"))
    time.sleep(0.5)  # an observation window (not synchronisation): no action without inputs
    assert h.count(topics.whole_body_command("rl")) == n_after
    level, values = h.diagnostic_status("rl_agent: rl_agent")
    assert level == 1 and int(values["stale_events"]) == 1 and int(values["holds"]) == 1
    wait_for(lambda: feed() and h.count(topics.whole_body_command("rl")) >= n_after + 3, 10, interval=0.02,
             message="acting again once inputs are back")
    h.assert_parameters_described("/rl_agent")


@pytest.mark.skipif(not CHECKPOINT.exists(), reason="stored checkpoint missing")
def test_bringup_mode_rl_reaches_the_default_goal(tmp_path):
    """`brs bringup use_sim:=true mode:=rl checkpoint:=...` (real time, cameras off): the stored
    policy brings the right gripper within 5 cm of the default goal (10 cm ahead, 5 cm up) and
    keeps it there.

    The agent starts idle (`rl_agent.autostart:=false`) and is started by the test once it sees the
    sim's states, and every /joint_states sample from then on is judged (it reaches the radius in
    ~0.5 s: a test that let it start unseen, or sampled only the latest state, could miss that)."""
    task = ReachTask()
    goal = task.home_ee + np.array([0.1, 0.0, 0.05])
    with harness_on_new_domain() as h:
        h.record(topics.JOINT_STATES, JointState, qos.STATE, keep=100_000)
        h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
        log = open(tmp_path / "bringup.log", "wb")
        proc = subprocess.Popen([str(Path(sys.executable).parent / "brs"), "bringup", "use_sim:=true", "mode:=rl",
                                 f"checkpoint:={CHECKPOINT}", "cameras_enabled:=false", "rl_agent.autostart:=false"],
                                env={**os.environ}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def idle_agent_and_states():
                status = h.diagnostic_status("rl_agent: rl_agent")
                return (h.count(topics.JOINT_STATES) > 0 and status is not None and status[1]["state"] == "idle") \
                    or proc.poll() is not None

            wait_for(idle_agent_and_states, 90, message="the graph with the agent idle")
            assert proc.poll() is None, (tmp_path / "bringup.log").read_text()
            first = h.last(topics.JOINT_STATES)
            d_first = task.distance(state_positions(first), np.zeros(3), goal)
            assert d_first > 0.1, f"goal {goal} is {d_first:.3f} m from the idle gripper: nothing to reach"
            judged = [h.count(topics.JOINT_STATES)]  # samples before the start are not judged
            t_start = _stamp(h.last(topics.JOINT_STATES))
            assert h.call(Trigger, "/rl_agent/start", Trigger.Request(), timeout=30).success
            closest = [np.inf, None]  # distance, sim s after the start

            def reached():
                with h.lock:
                    new = h.messages[topics.JOINT_STATES][judged[0]:]
                judged[0] += len(new)
                for msg in new:
                    d = task.distance(state_positions(msg), np.zeros(3), goal)
                    if d < closest[0]:
                        closest[:] = [d, _stamp(msg) - t_start]
                    if task.success(d):
                        return _stamp(msg) - t_start
                return None

            elapsed = wait_for(reached, 60, interval=0.02, message=lambda: (
                f"the gripper within {task.success_radius} m of the goal ({d_first:.3f} m at the start; "
                f"closest {closest[0]:.3f} m, {closest[1]} s sim after the start)"))
            assert elapsed <= 10, f"reached {elapsed:.2f} s (sim) after the start"
            # and it stays: every sample from 1 s to 3 s (sim) after reaching is inside the radius
            # (the policy settles ~0.7 cm away; an earlier one, trained on episodes that ended at
            # the radius, drifted back out to 5.5 cm)
            hold = (t_start + elapsed + 1.0, t_start + elapsed + 3.0)
            wait_for(lambda: _stamp(h.last(topics.JOINT_STATES)) > hold[1], 60, message="3 s of sim after reaching")
            with h.lock:
                held = [task.distance(state_positions(m), np.zeros(3), goal) for m in h.messages[topics.JOINT_STATES]
                        if hold[0] <= _stamp(m) <= hold[1]]
            assert len(held) >= 100 and max(held) < task.success_radius, \
                f"{len(held)} samples, farthest {max(held, default=np.nan):.3f} m"
            # the node's own report (at its 10 Hz ticks) agrees: running, the goal reached (latched)
            def reported():
                status = h.diagnostic_status("rl_agent: rl_agent")
                return status is not None and status[1]["state"] == "running" and status[1]["reached"] == "True"

            wait_for(reported, 10, message=lambda: f"the node reporting the goal reached: "
                     f"{h.diagnostic_status('rl_agent: rl_agent')}")
        finally:
            from brs_common.process import stop_process

            stop_process(proc, 20)
            log.close()


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
