"""keyboard_teleop: pure key mapping, and the node driven through a pty."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import make_joint_state
from brs_common.process import stop_process
from brs_teleop import teleop_mapping as tm
from brs_teleop.keyboard_teleop import (BlockedBase, KeyboardState, keys_to_targets, parse_keys, recorder_text,
                                       status_line)
from rosutil import BIN, wait_for


def test_help_prints_usage_and_exits_without_ros():
    """`keyboard_teleop --help` prints the usage and exits 0 (before: it started the node in
    silence); a stray plain argument is a one-line error with exit 2."""
    for flag in ("--help", "-h"):
        out = subprocess.run([str(BIN / "keyboard_teleop"), flag], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out
        assert out.stdout.startswith("usage: keyboard_teleop") and "--ros-args -p" in out.stdout, out.stdout
        assert "R / F / Backspace" in out.stdout and "docs/teleop.md" in out.stdout
    bad = subprocess.run([str(BIN / "keyboard_teleop"), "hold_s:=0.3"], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and bad.stdout == "", bad
    assert bad.stderr.strip().count("\n") == 0 and "unknown argument 'hold_s:=0.3'" in bad.stderr, bad.stderr


def test_plain_args_skip_ros_args():
    from brs_teleop.keyboard_teleop import plain_args

    assert plain_args(["--ros-args", "-p", "hold_s:=0.3"]) == []
    assert plain_args(["-h", "--ros-args", "-r", "__node:=kb", "--", "x"]) == ["-h", "x"]


def test_parse_keys():
    keys, rest = parse_keys(b"wA \x1b[A\x1b[D=-\x03\x1b[")
    assert keys == ["w", "a", "space", "up", "left", "+", "-", "quit"]
    assert rest == b"\x1b["
    keys, rest = parse_keys(rest + b"B")
    assert keys == ["down"] and rest == b""


def test_key_mapping_pure():
    st = KeyboardState(hold_s=0.5)
    t0 = tm.initial_targets()
    out, ev, st = keys_to_targets(t0, ["w", "q"], 0.0, 0.02, st)
    cfg = tm.MappingConfig()
    assert out[0] == 0.0 and out[2] == pytest.approx(cfg.base_max[2])  # last base key wins
    out, ev, st = keys_to_targets(out, ["d"], 0.1, 0.02, st)
    assert out[1] == pytest.approx(-cfg.base_max[1])
    out, ev, st = keys_to_targets(out, [], 0.7, 0.02, st)  # hold expired
    np.testing.assert_array_equal(out[tm.BASE], 0.0)
    j1 = spec.ACTION_JOINTS.index("torso_joint1")
    out, ev, st = keys_to_targets(out, ["up", "up"], 1.0, 0.02, st)
    assert out[j1] == pytest.approx(t0[j1] + 0.1)
    out, ev, st = keys_to_targets(out, [], 1.1, 0.02, st)
    assert out[j1] == pytest.approx(t0[j1] + 0.1)  # steps applied once
    r3 = spec.ACTION_JOINTS.index("right_arm_joint3")
    out, ev, st = keys_to_targets(out, ["]", "3", "+", "+", "-", "g"], 1.2, 0.02, st)
    assert out[r3] == pytest.approx(t0[r3] + 0.05)
    assert out[tm.RIGHT_GRIPPER] == spec.LOWER[tm.RIGHT_GRIPPER]
    assert out[tm.LEFT_GRIPPER] == t0[tm.LEFT_GRIPPER]
    out, ev, st = keys_to_targets(out, ["w", "space"], 1.3, 0.02, st)
    assert ev == [tm.ESTOP] and out[0] == 0.0
    # Clamping at joint limits
    out, _, st = keys_to_targets(out, ["up"] * 100, 2.0, 0.02, st)
    assert out[j1] == spec.UPPER[j1]
    # recording keys are events only: the targets do not move
    keys, _ = parse_keys(b"rf\x7f")
    before = out.copy()
    out, ev, st = keys_to_targets(out, keys, 2.1, 0.02, st)
    assert ev == ["record_start", "record_stop", "record_discard"]
    np.testing.assert_array_equal(out, before)
    assert recorder_text(None) is None and recorder_text({"recording": "false"}) == "rec idle (R start)"
    assert recorder_text({"recording": "false", "last_saved": "/data/episode_000002.h5"}) == \
        "rec idle, saved episode_000002.h5 (R start)"
    assert recorder_text({"recording": "true", "episode": "episode_000003", "duration_s": "12.43"}) == \
        "REC episode_000003 12.4 s"


def test_node_on_pty(ros, tmp_path):
    ros.record(topics.whole_body_command("teleop"), JointTrajectory, qos.COMMAND)
    ros.record(topics.ESTOP, Bool, qos.COMMAND)
    pub = ros.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    state = make_joint_state(spec.STATE_JOINTS, spec.HOME[[spec.ACTION_JOINTS.index(n)
                                                          for n in spec.STATE_JOINTS]])
    master, slave = os.openpty()
    log = open(tmp_path / "keyboard.log", "wb")
    proc = subprocess.Popen([str(BIN / "keyboard_teleop")], stdin=slave, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    os.close(slave)
    topic = topics.whole_body_command("teleop")
    try:
        def started():
            pub.publish(state)  # repeat until the node has matched and initialised
            return ros.count(topic) > 0
        wait_for(started, 15.0, interval=0.05, message="teleop commands")
        msg = ros.last(topic)
        assert list(msg.joint_names) == list(spec.ACTION_JOINTS)
        assert msg.points[0].time_from_start.nanosec == 20_000_000
        os.write(master, b"w")

        def forward():
            m = ros.last(topic)
            return m is not None and m.points[0].velocities[0] > 0
        wait_for(forward, 5.0, message="base_x velocity > 0")
        assert ros.last(topic).points[0].velocities[0] <= 0.6
        os.write(master, b" ")
        wait_for(lambda: ros.last(topics.ESTOP) is not None and ros.last(topics.ESTOP).data,
                 5.0, message="e-stop")
        ros.assert_parameters_described("/keyboard_teleop")
    finally:
        stop_process(proc)
        os.close(master)
        log.close()
    assert proc.returncode == 0, (tmp_path / "keyboard.log").read_text(errors="replace")


def test_blocked_base_and_status_line_pure():
    blocked = BlockedBase(min_speed=0.1, ratio=0.3, after=1.0)
    cmd, still, moving = np.array([0.3, 0.0, 0.0]), np.zeros(3), np.array([0.25, 0.0, 0.0])
    assert not blocked.update(cmd, still, 10.0) and not blocked.update(cmd, still, 10.9)
    assert blocked.update(cmd, still, 11.0)  # a second commanded without moving
    assert not blocked.update(cmd, moving, 11.1)  # moving again: clear, and the clock restarts
    assert not blocked.update(cmd, still, 11.5) and blocked.update(cmd, still, 12.6)
    assert not blocked.update(np.zeros(3), still, 13.0)  # not commanded: never blocked
    state = KeyboardState(arm="right", joint=3)
    targets = spec.HOME.astype(float).copy()
    targets[spec.ACTION_JOINTS.index("right_arm_joint3")] = 0.42
    line = status_line(state, targets, cmd, still, True, True)
    assert "right_arm_joint3 +0.42 rad" in line and "base cmd 0.30 m/s" in line and "measured 0.00 m/s" in line
    assert "E-STOP LATCHED" in line and "BASE BLOCKED?" in line
    assert "e-stop clear" in status_line(state, targets, cmd, moving, False, False)


class KeyboardOnPty:
    """keyboard_teleop on a pseudo-terminal; `screen(text)` calls `feed()` (the harness's
    publishers), reads what the node printed and says whether `text` is on it."""

    def __init__(self, feed):
        self.feed, self.seen = feed, bytearray()
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen([str(BIN / "keyboard_teleop")], stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        os.set_blocking(self.master, False)

    def press(self, keys: bytes):
        os.write(self.master, keys)

    def screen(self, text: str) -> bool:
        self.feed()
        try:
            self.seen.extend(os.read(self.master, 65536))
        except (BlockingIOError, OSError):
            pass
        return text in self.seen.decode(errors="replace")

    def tail(self, n: int = 500) -> bytes:
        return bytes(self.seen[-n:])

    def stop(self) -> int:
        stop_process(self.proc)
        os.close(self.master)
        return self.proc.returncode


def test_status_line_on_the_terminal(ros, tmp_path):
    """On a real pty: the status line shows the selection and, while the harness reports an
    unmoving base and a latched e-stop, BASE BLOCKED? and E-STOP LATCHED."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from nav_msgs.msg import Odometry

    pub = ros.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    odom = ros.node.create_publisher(Odometry, topics.ODOM, qos.STATE)
    diag = ros.node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    state = make_joint_state(spec.STATE_JOINTS, spec.HOME[[spec.ACTION_JOINTS.index(n) for n in spec.STATE_JOINTS]])
    latched = DiagnosticArray(status=[DiagnosticStatus(
        name=f"{topics.WHOLE_BODY_CONTROLLER_NODE}: state", level=bytes([2]), message="E-STOP latched",
        values=[KeyValue(key="estop_latched", value="True")])])
    def feed():
        pub.publish(state)
        odom.publish(Odometry())  # the base does not move
        diag.publish(latched)

    kb = KeyboardOnPty(feed)
    try:
        wait_for(lambda: kb.screen("left_arm_joint1"), 20, interval=0.05,
                 message=lambda: f"the status line; terminal shows {kb.tail()!r}")
        kb.press(b"]3")  # right arm, joint 3
        wait_for(lambda: kb.screen("right_arm_joint3"), 5, interval=0.05, message="the new selection")
        wait_for(lambda: kb.screen("E-STOP LATCHED"), 5, interval=0.05, message="the latched e-stop")

        def blocked():
            kb.press(b"w")  # keep driving forward (a terminal's auto-repeat)
            return kb.screen("BASE BLOCKED?")
        wait_for(blocked, 10, interval=0.1, message=lambda: f"BASE BLOCKED?; terminal shows {kb.tail()!r}")
    finally:
        returncode = kb.stop()
    assert returncode == 0


def test_recording_keys_start_and_save_an_episode(ros, tmp_path):
    """R on the keyboard starts the graph's episode recorder through its already discovered
    service (the operator's fast path: no CLI process, no discovery), F saves the episode."""
    import time

    from brs_teleop import episode as ep
    from rosutil import NodeProcess

    out = tmp_path / "episodes"
    recorder = NodeProcess("episode_recorder", {"output_dir": str(out), "cameras": [""], "task": "keyboard test",
                                                "rate_hz": 10.0}, log_path=tmp_path / "recorder.log")
    joints = ros.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    from nav_msgs.msg import Odometry
    odom = ros.node.create_publisher(Odometry, topics.ODOM, qos.STATE)
    commanded = ros.node.create_publisher(JointState, topics.CONTROLLER_STATE, qos.STATE)
    home = spec.HOME[[spec.ACTION_JOINTS.index(n) for n in spec.STATE_JOINTS]]
    def feed():
        now = ros.node.get_clock().now().to_msg()
        joints.publish(make_joint_state(spec.STATE_JOINTS, home, np.zeros(len(home)), np.zeros(len(home)), stamp=now))
        msg = Odometry()
        msg.header.stamp = now
        odom.publish(msg)
        commanded.publish(make_joint_state(spec.ACTION_JOINTS, spec.HOME, np.zeros(spec.ACTION_DIM), stamp=now))

    kb = KeyboardOnPty(feed)
    try:
        wait_for(lambda: kb.screen("rec idle (R start)"), 30, interval=0.05,
                 message=lambda: f"the recorder on the status line; terminal shows {kb.tail()!r}; "
                                 f"recorder log {recorder.log()[-1000:]}")
        t0 = time.monotonic()
        kb.press(b"r")
        wait_for(lambda: kb.screen("") and ep.list_episodes(out)[1], 10, interval=0.01,
                 message=lambda: f"an episode file after R; terminal shows {kb.tail()!r}")
        started = time.monotonic() - t0
        wait_for(lambda: kb.screen("REC episode_000000 1."), 20, interval=0.05,
                 message="REC with a second of frames on the status line")
        kb.press(b"f")
        wait_for(lambda: kb.screen("") and ep.list_episodes(out)[0], 20, interval=0.05,
                 message=lambda: f"a saved episode after F; recorder log {recorder.log()[-1500:]}")
        wait_for(lambda: kb.screen("rec idle, saved episode_000000.h5"), 10, interval=0.05,
                 message=lambda: f"the saved episode on the status line; terminal shows {kb.tail(300)!r}")
        (path,), _ = ep.list_episodes(out)
        assert ep.validate_episode(path)["task"] == "keyboard test"
    finally:
        returncode = kb.stop()
        recorder.stop(timeout=30)
    assert returncode == 0
    print(f"key R -> episode file: {started * 1e3:.0f} ms")
    assert started < 3.0, f"R took {started:.2f} s to start the episode"
