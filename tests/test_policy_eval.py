"""`brs eval`: the Wilson interval, the eval graph, and one short closed-loop episode end to end
(sim + controller + perception + policy node with a tiny random checkpoint + recorder): the
outcome is read from the sim's task status, the failure is recorded with a video, summary.json."""

from __future__ import annotations

import json
import math

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from trajectory_msgs.msg import JointTrajectory

from brs.cli import main as brs_main
from brs_bringup.episodes import EpisodeDriver
from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import make_trajectory
from brs_common.stats import wilson_interval
from brs_policy.evaluate import POLICY_STATUS, eval_nodes, evaluate, format_summary
from brs_teleop.episode import read_episode, validate_episode
from test_policy_node import make_tiny_checkpoint


def test_wilson_interval_known_values():
    # textbook values (z = 1.96): Wilson (1927); e.g. Newcombe (1998) table I
    for (k, n), (lo, hi) in {(0, 10): (0.0, 0.2775), (10, 10): (0.7225, 1.0), (5, 10): (0.2366, 0.7634),
                              (3, 10): (0.1078, 0.6032), (81, 263): (0.2553, 0.3662),
                              (15, 148): (0.0624, 0.1605)}.items():
        got = wilson_interval(k, n)
        assert got == pytest.approx((lo, hi), abs=1e-4), (k, n)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(1, 1, confidence=0.6826894921)  # z = 1
    assert lo == pytest.approx(0.5) and hi == 1.0
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
    assert math.isclose(sum(wilson_interval(7, 20)) / 2, (7 + 1.96**2 / 2) / (20 + 1.96**2), rel_tol=1e-3)


def test_eval_graph_is_the_policy_graph_with_the_task_and_the_recorder(tmp_path):
    ckpt = tmp_path / "p.pt"
    nodes = {n.name: n for n in eval_nodes("bimanual_box", ckpt, 1.0, tmp_path / "ep",
                                           {"episode_recorder.rate_hz": "5.0", "policy.device": "cpu"})}
    assert set(nodes) == {"sim", "whole_body_controller", "robot_description_publisher", "perception", "policy",
                          "episode_recorder"}
    assert nodes["whole_body_controller"].parameters["active_source"] == "policy"
    assert nodes["sim"].parameters["task"] == "bimanual_box"
    assert nodes["perception"].parameters["crop"] == "bimanual_box"
    assert nodes["policy"].parameters["checkpoint"] == str(ckpt)
    assert nodes["policy"].parameters["autostart"] is False and nodes["policy"].parameters["device"] == "cpu"
    assert nodes["episode_recorder"].parameters["rate_hz"] == 5.0
    assert nodes["episode_recorder"].parameters["use_sim_time"] is True
    assert "episode_recorder" not in {n.name for n in eval_nodes("bimanual_box", ckpt, 1.0, None)}
    with pytest.raises(ValueError, match="mode:=policy"):
        eval_nodes("bimanual_box", ckpt, 1.0, None, {"mode": "teleop"})


def test_eval_cli_rejects_a_garbage_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert brs_main(["eval", "--task", "bimanual_box", "--episodes", "1", "--checkpoint", str(bad)]) == 2
    assert "not a readable WB-VIMA checkpoint" in capsys.readouterr().err


def test_one_short_eval_episode_end_to_end(ros, tmp_path, monkeypatch):
    """Also the stuck-robot path: a failed episode can leave the robot unable to drive home (caught
    against furniture). Here a teleop stream (it outranks the policy) pins an arm away from
    home until the eval gives up homing and stops the policy; the eval must then free the robot
    (sim reset, controller ~/hold), home it and run the episode, and count that in the summary."""
    monkeypatch.setattr(EpisodeDriver, "stuck_after", 5.0)  # give up the first homing after 5 s wall
    h = ros
    h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    teleop = h.node.create_publisher(JointTrajectory, topics.whole_body_command("teleop"), qos.COMMAND)
    pin_at = float(spec.HOME[spec.ACTION_JOINTS.index("left_arm_joint1")]) + 0.4
    phase = ["waiting"]  # -> pinning (the policy is homing) -> released (the eval stopped it)

    def pin():
        status = h.diagnostic_status(POLICY_STATUS)
        state = status[1].get("state") if status else None
        if state == "homing" and phase[0] == "waiting":
            phase[0] = "pinning"
        elif state == "idle" and phase[0] == "pinning":
            phase[0] = "released"
        if phase[0] != "released":
            teleop.publish(make_trajectory(["left_arm_joint1"], [[pin_at]], [0.1]))  # zero stamp: now

    timer = h.node.create_timer(0.05, pin)
    ckpt = make_tiny_checkpoint(tmp_path / "policy.pt")
    try:
        summary = evaluate("bimanual_box", 1, ckpt, first_seed=3, output_dir=tmp_path / "eval",
                           record_failures=True, time_limit=3.0, progress=False,
                           arguments={"policy.device": "cpu", "perception.n_points": "1024"})
    finally:
        h.node.destroy_timer(timer)
    assert phase[0] == "released" and summary["homing_resets"] == 1, (phase, summary)
    written = json.loads((tmp_path / "eval" / "bimanual_box" / "summary.json").read_text())
    assert written == summary
    assert summary["episodes_run"] == 1 and summary["successes"] == 0 and summary["success_rate"] == 0.0
    assert summary["wilson_95"] == pytest.approx(list(wilson_interval(0, 1)))
    (episode,) = summary["episodes"]
    assert episode["seed"] == 3 and episode["success"] is False
    assert episode["sim_seconds"] >= 3.0  # the outcome was read from the sim's task status at the limit
    assert episode["chunks"] > 0  # the policy acted during the episode
    # how the graph ran: perception's clouds reached the policy (10 Hz in sim time, fewer when
    # starved; counted between status reads, which may each be up to a second old), inference
    # and observation age measured, the machine's load noted
    assert episode["sim_seconds"] <= episode["clouds"] <= 10 * (episode["sim_seconds"] + 2), episode
    assert episode["inference_ms_p50"] > 0 and episode["observation_age_ms_p50"] > 0, episode
    assert episode["load_1min"] > 0 and episode["stale_events"] >= 0, episode
    validate_episode(episode["file"])
    with read_episode(episode["file"]) as ep:
        assert ep.metadata["task"] == "bimanual_box" and ep.metadata["seed"] == 3
        assert ep.metadata["source"] == "policy" and ep.metadata["success"] == 0
    assert episode["video"].endswith(".mp4")
    assert "0/1 successful" in format_summary(summary)


def test_the_driver_waits_for_the_recorders_cameras(tmp_path):
    """On a loaded machine the sim's first camera_info can come after the graph is up: the driver
    waits until the recorder has every camera's (a collect run under two busy loops had its start
    refused), not only until the recorder reports."""
    import threading

    class Client:
        def __init__(self):
            self.waits = {}

        def wait_status(self, name, predicate, timeout, what):
            self.waits[name] = predicate

    client = Client()
    EpisodeDriver(client, "bimanual_box", tmp_path, True, None, 1.0, threading.Event()).wait_for_graph()
    ready = client.waits["episode_recorder: recorder"]
    assert not ready({"cameras_waiting": "head,left_wrist"}) and not ready({}) and ready({"cameras_waiting": ""})
