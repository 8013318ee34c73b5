"""lmact_agent_node: a model with expert demos in its context acting in the graph. The demo file
(`brs lmact demos`), bad configurations (exit 2), the nearest-neighbour baseline reaching the
default goal in `brs bringup mode:=lmact`, and a slow, sometimes garbage-answering endpoint
that the node waits for without stalling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
from rl_agents.lmact.demos import load_demos
from rl_agents.lmact.envs.robot_reach import RobotReach
from rl_agents.ros_tasks import POSITION
from test_lmact_openai import GARBAGE, StubServer

STATUS = "lmact_agent: lmact_agent"
COMMAND = topics.whole_body_command("rl")


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    """Four expert episodes of robot_reach, recorded by the CLI in the lock-stepped sim graph."""
    from brs.cli import main

    path = tmp_path_factory.mktemp("lmact_demos") / "demos.json"
    assert main(["lmact", "demos", "--env", "robot_reach", "--count", "4", "--out", str(path), "--no-progress"]) == 0
    return path


def test_demo_file_holds_the_expert_episodes_and_bad_files_are_refused(demo_file, tmp_path):
    env = RobotReach()
    doc = json.loads(demo_file.read_text())
    assert doc["env"] == "robot_reach" and [e["seed"] for e in doc["episodes"]] == [1_000_000 + i for i in range(4)]
    demos = load_demos(demo_file, env)
    for ep, raw in zip(demos, doc["episodes"]):
        assert ep.success and 2 <= len(ep) <= env.max_steps and ep.actions == raw["actions"]
        # every observation comes back as the env renders it; the target stays put in the base
        # frame all episode long (to the base's few-mm drift while the arm moves)
        for obs, vector in zip(ep.observations, raw["observations"]):
            np.testing.assert_allclose(env.render_vector(obs), vector, atol=1e-6)
        assert np.ptp([o.target for o in ep.observations], axis=0).max() < 5e-3
        # the expert's step: straight at the target, a full step while farther than one
        d = np.subtract(ep.observations[0].target, ep.observations[0].gripper)
        np.testing.assert_allclose(env.action_space.parse(ep.actions[0]), d / np.linalg.norm(d), atol=2e-3)

    def refused(text: str) -> str:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError) as exc:
            load_demos(bad, env)
        return str(exc.value)

    assert "no such file" in str(pytest.raises(ValueError, load_demos, tmp_path / "absent.json", env).value)
    assert "not readable JSON" in refused("{")
    assert "of env 'robot_reach'" in refused(json.dumps({**doc, "env": "tictactoe"}))
    broken = json.loads(demo_file.read_text())
    broken["episodes"][1]["observations"][0] = [0.0] * 5
    assert "episode 1 is malformed" in refused(json.dumps(broken))
    broken = json.loads(demo_file.read_text())
    broken["episodes"][0]["actions"][0] = "forward, please"
    assert "episode 0 is malformed" in refused(json.dumps(broken))


@pytest.mark.parametrize("params, message", [
    ({"demos": "/nonexistent/demos.json"}, "no such file"),
    ({"model": "oracle"}, "unknown model 'oracle'"),
    ({"num_demos": 9}, "num_demos 9 but the demo file"),
    ({"obs": "rgb"}, "obs must be one of text, vector"),
])
def test_bad_configuration_exits_with_code_2(ros, tmp_path, demo_file, params, message):
    proc = ros.spawn("lmact_agent_node", {"demos": str(demo_file), **params}, log_path=tmp_path / "node.log")
    rc = proc.proc.wait(60)
    assert rc == 2 and message in proc.log(), proc.log()


def test_bringup_mode_lmact_nearest_neighbour_reaches_the_default_goal_and_stops(tmp_path, demo_file):
    """`brs bringup use_sim:=true mode:=lmact demos:=FILE model:=nn` (real time, cameras off): the
    nearest-neighbour baseline, replaying the demo actions closest to what it sees, brings the
    gripper within 5 cm of the default goal, then sends nothing more (its episode is over)."""
    env = RobotReach()
    task = env.task
    goal = task.home_ee + np.array([0.1, 0.0, 0.05])
    with harness_on_new_domain() as h:
        h.record(topics.JOINT_STATES, JointState, qos.STATE, keep=100_000)
        h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
        h.record(COMMAND, JointTrajectory, qos.COMMAND, keep=1000)
        log = open(tmp_path / "bringup.log", "wb")
        proc = subprocess.Popen([str(Path(sys.executable).parent / "brs"), "bringup", "use_sim:=true", "mode:=lmact",
                                 f"demos:={demo_file}", "model:=nn", "obs:=text", "cameras_enabled:=false",
                                 "lmact_agent.autostart:=false"],
                                env={**os.environ}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def idle_agent_and_states():
                status = h.diagnostic_status(STATUS)
                return (h.count(topics.JOINT_STATES) > 0 and status is not None and status[1]["state"] == "idle") \
                    or proc.poll() is not None

            wait_for(idle_agent_and_states, 90, message="the graph with the agent idle")
            assert proc.poll() is None, (tmp_path / "bringup.log").read_text()
            judged = [h.count(topics.JOINT_STATES)]
            assert h.call(Trigger, "/lmact_agent/start", Trigger.Request(), timeout=30).success
            closest = [np.inf]

            def reached():
                with h.lock:
                    new = h.messages[topics.JOINT_STATES][judged[0]:]
                judged[0] += len(new)
                for msg in new:
                    closest[0] = min(closest[0], task.distance(state_positions(msg), np.zeros(3), goal))
                return task.success(closest[0])

            wait_for(reached, 60, interval=0.02, message=lambda: f"the gripper within 5 cm (closest {closest[0]:.3f} m)")

            def over():
                status = h.diagnostic_status(STATUS)
                return status is not None and status[1]["reached"] == "True" and status[1]
            values = wait_for(over, 10, message=lambda: f"the node reporting the goal reached: {h.diagnostic_status(STATUS)}")
            assert values["demos_in_context"] == "4" and values["illegal_replies"] == "0" and values["model"] == "nn"
            steps = int(values["episode_steps"])
            # every command is an action, or the one hold a late /joint_states causes on a loaded
            # machine (counted in `holds`)
            sent = int(values["actions"]) + int(values["holds"])
            assert 2 <= steps <= task.max_steps and int(values["actions"]) == steps and sent == h.count(COMMAND), \
                (values, h.count(COMMAND))
            n = h.count(COMMAND)
            later = wait_for(lambda: int(h.diagnostic_status(STATUS)[1]["episode_steps"]) == steps and
                             h.diagnostic_status(STATUS) != values and h.diagnostic_status(STATUS)[1], 5,
                             message="a later report")
            holds_since = int(later["holds"]) - int(values["holds"])
            assert int(later["actions"]) == steps and h.count(COMMAND) - n <= holds_since, \
                ("actions after the goal was reached", later, h.count(COMMAND) - n)
            h.assert_parameters_described("/lmact_agent")
        finally:
            from brs_common.process import stop_process

            stop_process(proc, 20)
            log.close()


def test_a_slow_endpoint_is_waited_for_and_garbage_is_replaced(ros, tmp_path, demo_file):
    """An OpenAI-compatible endpoint (a local stub) that takes 0.3 s per answer, every third one
    garbage: each answer becomes exactly one command (garbage replaced by a random action and
    counted), the prompt holds the demos, and the node reports its model latency."""
    server = StubServer()
    server.delay = 0.3
    server.garbage_every = 3
    server.answer = lambda body: GARBAGE if (len(server.sent) + 1) % 3 == 0 else "Action: 0.5, 0.0, 0.5"
    h = ros
    try:
        h.record(COMMAND, JointTrajectory, qos.COMMAND, keep=1000)
        h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
        js_pub = h.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
        odom_pub = h.node.create_publisher(Odometry, topics.ODOM, qos.STATE)
        # the goal is far (2 m ahead): no answer reaches it, every answer is acted on
        h.spawn("lmact_agent_node", {"demos": str(demo_file), "num_demos": 2, "model": "openai",
                                     "model_name": "stub-model", "base_url": server.url, "timeout": 5.0,
                                     "target": [2.0, 0.0, 1.0], "stale_timeout": 1.0},
                log_path=tmp_path / "node.log")
        wait_for(lambda: js_pub.get_subscription_count() > 0 and odom_pub.get_subscription_count() > 0, 30,
                 message="the node's subscriptions")
        q = spec.HOME[POSITION].copy()

        def feed():
            js_pub.publish(make_joint_state(spec.STATE_JOINTS, q))
            odom_pub.publish(Odometry())
            return len(server.sent) >= 6

        wait_for(feed, 30, interval=0.02, message=lambda: f"6 answers (sent {len(server.sent)})")
        sent = len(server.sent)

        def reported():
            feed()
            status = h.diagnostic_status(STATUS)
            return status is not None and int(status[1]["episode_steps"]) >= sent and status[1]

        values = wait_for(reported, 10, interval=0.02, message=lambda: f"the node's report: {h.diagnostic_status(STATUS)}")
        steps = int(values["episode_steps"])
        garbage = sum(a["text"] == GARBAGE for a in server.sent[:steps])
        assert garbage >= 2 and int(values["illegal_replies"]) == garbage, (values, server.sent)
        assert int(values["actions"]) == steps and h.count(COMMAND) >= steps - 1
        assert float(values["model_ms_p50"]) >= 300.0 and values["model_errors"] == "0"
        prompt = server.requests[0]["body"]["messages"][1]["content"]
        assert "Demonstration 2:" in prompt and "Demonstration 3:" not in prompt and "Current episode:" in prompt
        stamps = h.stamps[COMMAND]
        gaps = np.diff(stamps[:steps])
        assert np.all(gaps > 0.2), gaps  # one command per answer, not one per 0.1 s tick
    finally:
        server.close()
