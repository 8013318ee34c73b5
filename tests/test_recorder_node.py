"""Episode recorder node against the real sim node and whole-body controller (separate processes):
complete episodes, kill -9 safety, discard, Joy-Con buttons, Ctrl-C, bad parameters, a disk that
fills up (write errors), the max_duration and min_free_mb limits."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Joy
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_teleop import episode as ep
from brs_teleop import joycon
from conftest import harness_on_new_domain
from rosutil import BIN, NO_SHARED_MEMORY, NodeProcess, wait_for

RATE = 10.0
# Sim speed factor. Faster runs fine on an idle machine, but with other work on 2 cores the
# controller then falls behind sim time and its stale commands cost frames (counted, as designed).
SPEED = 1.0
STATUS_NAME = f"{topics.RECORDER_NODE}: recorder"
DISK_FULL = str(Path(__file__).parent / "fixtures" / "recorder_disk_full.py")


def test_frame_from_messages_and_history():
    """The pure parts: stream history lookup, message -> frame conversion (yaw, base action, encodings)."""
    import math

    from nav_msgs.msg import Odometry

    from brs_common.convert import make_joint_state, numpy_to_image
    from brs_common.stamped_history import StampedHistory
    from brs_teleop.recorder_node import frame_from_messages

    hist = StampedHistory(horizon=1.0)  # as the recorder keeps each stream
    for k in range(30):
        hist.add(0.1 * k, k)
    assert hist.at_or_before(2.45) == (pytest.approx(2.4), 24) and hist.at_or_before(5.0)[1] == 29
    assert hist.at_or_before(0.7 * 3)[1] == 21  # 0.1 * 21 != 0.7 * 3 in floats: 1 us tolerance
    assert hist.at_or_before(1.5) is None  # trimmed: more than the horizon behind the newest

    n = len(spec.STATE_JOINTS)
    odom = Odometry()
    odom.pose.pose.position.x, odom.pose.pose.position.y = 1.5, -2.0
    odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = math.sin(1.2), math.cos(1.2)
    odom.twist.twist.linear.x, odom.twist.twist.angular.z = 0.3, -0.4
    commanded = make_joint_state(spec.ACTION_JOINTS, np.arange(21.0), vel=100 + np.arange(21.0))
    rgb = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    depth_mm = np.full((240, 320), 1500, np.uint16)
    depth_mm[0, 0] = 0
    msgs = {"joint_states": make_joint_state(list(reversed(spec.STATE_JOINTS)), np.arange(n)[::-1],
                                             np.zeros(n), np.ones(n)),
            "odom": odom, "action": commanded,
            "head/color": numpy_to_image(rgb[..., ::-1], "bgr8"),
            "head/depth": numpy_to_image(depth_mm, "16UC1")}
    frame = frame_from_messages(5.0, msgs, ("head",))
    np.testing.assert_array_equal(frame.joint_position, np.arange(n))  # reordered to STATE_JOINTS
    np.testing.assert_allclose(frame.base_pose, [1.5, -2.0, 2.4])
    np.testing.assert_allclose(frame.base_velocity, [0.3, 0.0, -0.4])
    np.testing.assert_array_equal(frame.action[:3], [100, 101, 102])  # base: commanded velocities
    np.testing.assert_array_equal(frame.action[3:], np.arange(3.0, 21.0))
    color, depth = frame.images["head"]
    np.testing.assert_array_equal(color, rgb)
    assert depth.dtype == np.float32 and depth[0, 0] == 0 and depth[1, 1] == pytest.approx(1.5)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """Sim node (3 cameras) + whole-body controller for the module; recorders per test."""
    logs = tmp_path_factory.mktemp("recorder_graph")
    with harness_on_new_domain() as h:
        h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS, keep=200)
        h.logs = logs
        h.spawn("sim_node", {"speed_factor": SPEED, "cameras_enabled": True}, log_path=logs / "sim.log")
        h.spawn("whole_body_controller", {"use_sim_time": True}, log_path=logs / "controller.log")
        h.recorders = []
        yield h


@pytest.fixture
def graph_recorders_stopped(graph):
    """The module's graph; every recorder a test started has exited when it ends, passed or
    failed: all share the node name, so a leftover would answer the next test's calls. (Not
    "gone from get_node_names()": a SIGKILLed one stays there until its DDS lease expires.)"""
    yield graph
    for proc in graph.recorders:
        if proc.proc.poll() is None:
            proc.stop(timeout=30)
    graph.recorders.clear()


def recorder(h, out, name="recorder", executable="episode_recorder", env=None, **params) -> NodeProcess:
    params = {"use_sim_time": True, "output_dir": str(out), "rate_hz": RATE, "task": "test episode", **params}
    h.clear(topics.DIAGNOSTICS)  # no status of an earlier recorder
    proc = h.spawn(executable, params, log_path=h.logs / f"{name}.log", env=env)
    h.recorders.append(proc)
    return proc


def full_status(h) -> tuple[int, str, dict] | None:
    """(level, message, values) of the recorder's latest /diagnostics status."""
    with h.lock:
        arrays = list(h.messages[topics.DIAGNOSTICS])
    for msg in reversed(arrays):
        for s in msg.status:
            if s.name == STATUS_NAME:
                return s.level[0], s.message, {kv.key: kv.value for kv in s.values}
    return None


def set_parameters(h, **values):
    """Set recorder parameters through its ~/set_parameters service (as `ros2 param set`)."""
    req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    results = h.call(SetParameters, f"/{topics.RECORDER_NODE}/set_parameters", req, timeout=30).results
    assert all(r.successful for r in results), [r.reason for r in results]


def status(h) -> dict | None:
    """Values of the recorder's latest /diagnostics status."""
    return (st := full_status(h)) and st[2]


def call(h, service, timeout=30.0) -> Trigger.Response:
    """Trigger call through one client per service for the module: DDS can drop the response to
    a brand-new client whose reader the server has not discovered yet (worse under load)."""
    clients = h.__dict__.setdefault("trigger_clients", {})
    if service not in clients:
        clients[service] = h.node.create_client(Trigger, service)
    client = clients[service]
    wait_for(client.service_is_ready, timeout, message=f"service {service}")
    future = client.call_async(Trigger.Request())
    wait_for(future.done, timeout, message=f"response from {service}")
    return future.result()


def start(h, proc):
    """Start an episode once the recorder has seen every camera_info (retries until then)."""
    replies = []

    def attempt():
        assert proc.proc.poll() is None, proc.log()
        try:
            reply = call(h, topics.RECORDER_START, timeout=5)
            replies.append(reply.message)
            return reply.success
        except TimeoutError:  # a lost response: the status says whether it started
            replies.append("(no response)")
            return (s := status(h)) is not None and s["recording"] == "true"
    wait_for(attempt, 90, interval=0.5,
             message=f"recorder start (replies {replies[-3:]}, status {full_status(h)}, log {proc.log()[-600:]!r})")


def frames_at_least(h, n, episode="episode_000000"):
    wait_for(lambda: (s := status(h)) and s["episode"] == episode and int(s["frames"]) >= n,
             60, message=f"{n} recorded frames of {episode}")


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_frames(e: ep.Episode, n: int):
    """Whole frames: spaced 1/RATE in sim time, finite proprio, non-trivial equal-shaped images."""
    t = e.time[:n]
    assert np.all(np.isfinite(t))
    slots = np.diff(t) * RATE  # exactly 1 apart; more where a frame was dropped (and counted)
    np.testing.assert_allclose(slots, np.round(slots), atol=1e-6)
    assert slots.min() >= 1 - 1e-6 and np.median(slots) == pytest.approx(1.0)
    for values in (e.joint_position, e.action, e.base_pose):
        assert np.all(np.isfinite(values[:n]))
    for name in spec.CAMERAS:
        cam = e.cameras[name]
        for i in (0, n - 1):
            color, depth = cam.color[i], cam.depth[i]
            assert color.shape == (240, 320, 3) and depth.shape == (240, 320)
            assert color.std() > 5, f"{name} color frame {i} is flat"
            assert np.nanmax(depth) > 0.1, f"{name} depth frame {i} is empty"
        assert cam.depth.encoding == "mm16"  # the recorder's default: uint16 millimetres on disk


def test_episodes_survive_kill_9(graph_recorders_stopped, tmp_path):
    h = graph_recorders_stopped
    proc = recorder(h, tmp_path, env=NO_SHARED_MEMORY)  # SIGKILLed below
    start(h, proc)
    frames_at_least(h, 20)
    reply = call(h, topics.RECORDER_STOP)
    assert reply.success, reply.message
    first = tmp_path / "episode_000000.h5"
    assert str(first) in reply.message
    meta = ep.validate_episode(first, spec_hash=spec.spec_hash())
    with ep.read_episode(first) as e:
        n = e.n_frames
        assert n >= 20 and n == meta["n_frames"]
        gaps = round(e.duration * RATE) + 1 - n
        assert 0 <= gaps <= meta["dropped_frames"]  # every missing frame is counted
        assert n >= 0.8 * (e.duration * RATE + 1), f"{gaps} of {n + gaps} frames dropped"
        check_frames(e, n)
    digest = sha(first)

    # Episode 2: killed mid-recording once some frames are on disk.
    assert call(h, topics.RECORDER_START).success
    second = tmp_path / "episode_000001.h5.partial"
    frames_at_least(h, 10, "episode_000001")
    with ep.read_episode(second) as e:  # readable while being written
        assert not e.complete and e.n_frames >= 5
    os.killpg(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait(10)

    assert sha(first) == digest
    ep.validate_episode(first)
    assert ep.list_episodes(tmp_path) == ([first], [second])
    with pytest.raises(ep.EpisodeError, match="status is 'recording'"):
        ep.validate_episode(second)
    with ep.read_episode(second) as e:
        assert e.metadata["status"] == "recording" and not e.complete
        assert e.n_frames >= 10
        check_frames(e, e.n_frames)

    # A new recorder continues the numbering and leaves the crashed file alone; `brs record`
    # shows its status and stops it.
    proc = recorder(h, tmp_path, name="recorder_after_kill")
    start(h, proc)
    frames_at_least(h, 3, "episode_000002")
    cli = subprocess.run([str(BIN / "brs"), "record", "status", "--once"], capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 0 and "recording" in cli.stdout and "episode_000002" in cli.stdout, cli
    # without --once into a pipe (as from a script): one snapshot too, never a wait for Ctrl-C
    cli = subprocess.run([str(BIN / "brs"), "record", "status"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "episode_000002" in cli.stdout, cli
    cli = subprocess.run([str(BIN / "brs"), "record", "stop"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "saved" in cli.stdout, cli
    assert ep.list_episodes(tmp_path) == ([first, tmp_path / "episode_000002.h5"], [second])
    cli = subprocess.run([str(BIN / "brs"), "record", "stop"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and "not recording" in cli.stderr, cli
    assert proc.stop() == 0


def joy(config, *pressed) -> Joy:
    state = joycon.JoyConState(buttons={b: True for b in pressed})
    return joycon.to_joy_msg(state, config)


def test_joycon_buttons_discard_and_ctrl_c(graph_recorders_stopped, tmp_path):
    h = graph_recorders_stopped
    proc = recorder(h, tmp_path, name="recorder_joy", cameras=["head"], task="trash_to_spot", seed=4)
    pub = h.node.create_publisher(Joy, topics.JOY, qos.SENSOR)
    config = joycon.load_config()
    wait_for(lambda: pub.get_subscription_count() > 0, 30, message="recorder subscribed to /joy")
    start(h, proc)

    # discard via the service: the file is gone (and its number is free again)
    frames_at_least(h, 3)
    reply = call(h, topics.RECORDER_DISCARD)
    assert reply.success and "discarded episode_000000" in reply.message, reply.message
    assert ep.list_episodes(tmp_path) == ([], [])
    reply = call(h, topics.RECORDER_STOP)
    assert not reply.success and reply.message == "not recording"

    # Joy-Con: + starts (rising edge; the first message is only the baseline), - stops and saves
    for buttons in ((), ("plus",), ("plus",), ()):
        pub.publish(joy(config, *buttons))
    frames_at_least(h, 5)
    pub.publish(joy(config, "minus"))
    wait_for(lambda: ep.list_episodes(tmp_path)[0], 30, message="episode saved by the - button")
    pub.publish(joy(config))
    first = tmp_path / "episode_000000.h5"
    meta = ep.validate_episode(first)
    assert meta["cameras"] == ["head"] and meta["task"] == "trash_to_spot" and meta["seed"] == 4

    # capture discards, then Ctrl-C saves the running episode as complete
    pub.publish(joy(config, "plus"))
    frames_at_least(h, 3, "episode_000001")
    pub.publish(joy(config))
    pub.publish(joy(config, "capture"))
    wait_for(lambda: status(h)["recording"] == "false", 30, message="discard by the capture button")
    assert ep.list_episodes(tmp_path) == ([first], [])
    pub.publish(joy(config))
    pub.publish(joy(config, "plus"))
    frames_at_least(h, 3, "episode_000001")
    assert proc.stop(timeout=30) == 0, proc.log()
    assert ep.list_episodes(tmp_path) == ([first, tmp_path / "episode_000001.h5"], [])
    assert ep.validate_episode(tmp_path / "episode_000001.h5")["n_frames"] >= 3


def test_recording_without_cameras(graph_recorders_stopped, tmp_path):
    """`episode_recorder.cameras:=[]` (the graph passes [""]): no camera_info needed to start, and
    the episode holds joints, base and actions only."""
    h = graph_recorders_stopped
    proc = recorder(h, tmp_path, "no_cameras", cameras=[""])
    wait_for(lambda: status(h) is not None or proc.proc.poll() is not None, 60, message="recorder status")
    assert proc.proc.poll() is None, proc.log()
    h.assert_parameters_described(f"/{topics.RECORDER_NODE}")
    assert status(h)["cameras_waiting"] == ""  # no camera to wait for: ready at once
    start(h, proc)
    frames_at_least(h, 5)
    assert call(h, topics.RECORDER_STOP).success
    assert proc.stop(timeout=30) == 0, proc.log()
    (path,), _ = ep.list_episodes(tmp_path)
    assert ep.validate_episode(path)["n_frames"] >= 5
    with ep.read_episode(path) as e:
        assert e.cameras == {} and np.all(np.isfinite(e.joint_position))
    assert "cameras []" in proc.log()
    assert "start with the Joy-Con + button or `brs record start`" in proc.log()  # source teleop


def test_ready_line_names_the_sources_start_trigger():
    """teleop:=keyboard sets source=keyboard: the ready line names R, not the Joy-Con + button."""
    from brs_teleop.recorder_node import start_hint

    assert start_hint("keyboard") == "R in keyboard_teleop (F saves, Backspace discards) or `brs record start`"
    assert start_hint("teleop") == "the Joy-Con + button or `brs record start`"
    assert start_hint("scripted") == "`brs record start`"


def test_start_needs_a_task_label_and_the_cli_gives_one(graph_recorders_stopped, tmp_path):
    """An episode without a task label is useless in a dataset: start is refused with the fix;
    `brs record start --task ...` sets the label and starts."""
    h = graph_recorders_stopped
    proc = recorder(h, tmp_path, "no_task", cameras=[""], task="")
    wait_for(lambda: status(h) is not None or proc.proc.poll() is not None, 60, message="recorder status")
    refused = call(h, topics.RECORDER_START)
    assert not refused.success and "no task label" in refused.message and "--task" in refused.message
    cli = subprocess.run([str(BIN / "brs"), "record", "start", "--task", "lift the box onto the table"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli
    frames_at_least(h, 3)
    assert call(h, topics.RECORDER_STOP).success
    assert proc.stop(timeout=30) == 0, proc.log()
    (path,), _ = ep.list_episodes(tmp_path)
    assert ep.validate_episode(path)["task"] == "lift the box onto the table"
    bad = subprocess.run([str(BIN / "brs"), "record", "start", "--task", " "], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "--task must not be empty" in bad.stderr


@pytest.mark.parametrize("params, message", [
    ({"rate_hz": -5.0}, "rate_hz must be > 0, got -5.0"),
    ({"cameras": ["head", "belly"]}, "unknown or repeated ['belly']"),
    ({"max_age": 0.0}, "max_age must be > 0"),
    ({"depth_encoding": "png"}, "depth_encoding 'png': use one of float32, mm16"),
    ({"compression_level": 12}, "compression_level must be 0-9 (gzip), got 12"),
    ({"calibration_file": "/nonexistent/calib.yaml"}, "calibration_file '/nonexistent/calib.yaml' does not exist"),
    ({"max_duration": -1.0}, "max_duration must be 0 (no limit) to 86400 s, got -1.0"),
    ({"min_free_mb": -5}, "min_free_mb must be 0 (no check) to 10000000, got -5"),
])
def test_bad_parameters_fail_at_startup(ros_domain, tmp_path, params, message):
    proc = NodeProcess("episode_recorder", {"output_dir": str(tmp_path), **params},
                       log_path=tmp_path / "recorder.log")
    assert proc.proc.wait(60) == 2
    assert "configuration error" in proc.log() and message in proc.log(), proc.log()


def test_record_start_without_a_graph_says_so_and_fails_fast(ros_domain):
    """No ROS node on the domain: `brs record start` says what it waits for, then fails with the
    reason after the discovery window instead of waiting out its 30 s timeout in silence."""
    import time

    t0 = time.monotonic()
    cli = subprocess.run([str(BIN / "brs"), "record", "start"], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert cli.returncode == 1, cli
    assert "waiting up to 30 s for /episode_recorder/start" in cli.stderr, cli.stderr
    assert f"no ROS 2 node runs on ROS_DOMAIN_ID={ros_domain}" in cli.stderr, cli.stderr
    assert took < 25, f"took {took:.1f} s: {cli.stderr}"  # 3 s discovery + start-up, well under 30 s


def test_a_write_error_shows_as_error_stop_answers_and_the_next_episode_records(graph_recorders_stopped, tmp_path):
    """The disk refuses a write (ENOSPC, fixtures/recorder_disk_full.py) halfway through frame 5.
    The status turns ERROR at once; stop answers within seconds (before: rclpy's 'Logger severity
    cannot be changed' left it unanswered): episode 0 is saved as complete with its 5 whole frames,
    and where completing fails too (episode 1) stop says so and the 5 frames stay readable in the
    .partial; episode 2 records normally."""
    h = graph_recorders_stopped
    proc = recorder(h, tmp_path, "disk_full", executable=DISK_FULL, cameras=[""])

    def error_seen(episode):
        def check():
            assert proc.proc.poll() is None, proc.log()
            st = full_status(h)
            return st is not None and st[0] == 2 and st[2]["episode"] == episode
        wait_for(check, 60, message=f"ERROR status of {episode} (last {full_status(h)})")
        return full_status(h)

    # episode 0: the write error, then a stop that saves the whole frames
    start(h, proc)
    level, message, values = error_seen("episode_000000")
    assert "episode_000000.h5.partial failed at frame 5" in message and "No space left on device" in message
    assert "brs record stop" in message and values["recording"] == "true" and values["frames"] == "5"
    t0 = time.monotonic()
    reply = call(h, topics.RECORDER_STOP)
    took = time.monotonic() - t0
    assert reply.success, reply.message
    assert took < 10, f"stop answered after {took:.1f} s: {reply.message}"
    first = tmp_path / "episode_000000.h5"
    assert "cut short" in reply.message and "No space left on device" in reply.message
    assert reply.message.endswith(f"saved {first}"), reply.message
    meta = ep.validate_episode(first)  # complete: the half-written frame was cut off
    assert meta["n_frames"] == 5 and meta["task"] == "test episode"
    wait_for(lambda: (st := full_status(h)) is not None and st[2]["recording"] == "false", 10,
             message=f"idle status (last {full_status(h)})")
    level, message, _ = full_status(h)
    assert level == 2 and "cut short" in message, (level, message)  # shown until the next start

    # episode 1: completing fails too: stop says so, the whole frames stay in the .partial
    start(h, proc)
    error_seen("episode_000001")
    t0 = time.monotonic()
    reply = call(h, topics.RECORDER_STOP)
    took = time.monotonic() - t0
    partial = tmp_path / "episode_000001.h5.partial"
    assert not reply.success and took < 10, (took, reply.message)
    assert "No space left on device" in reply.message and f"stay readable in {partial}" in reply.message
    with ep.read_episode(partial) as e:
        assert not e.complete and e.n_frames == 5
        assert np.all(np.isfinite(e.time)) and np.all(np.isfinite(e.joint_position))
    wait_for(lambda: (st := full_status(h)) is not None and st[2]["recording"] == "false", 10,
             message=f"idle status (last {full_status(h)})")
    assert full_status(h)[0] == 2

    # episode 2: the disk has room again; the ERROR clears with the start
    start(h, proc)
    frames_at_least(h, 8, "episode_000002")
    assert full_status(h)[0] < 2, full_status(h)
    reply = call(h, topics.RECORDER_STOP)
    assert reply.success and "cut short" not in reply.message, reply.message
    assert ep.validate_episode(tmp_path / "episode_000002.h5")["n_frames"] >= 8
    assert ep.list_episodes(tmp_path) == ([first, tmp_path / "episode_000002.h5"], [partial])
    assert proc.stop(timeout=30) == 0, proc.log()
    log = proc.log()
    assert "Traceback" not in log and "Logger severity" not in log, log


def test_limits_stop_and_save_the_episode_and_refuse_a_start(graph_recorders_stopped, tmp_path):
    """max_duration (node time) and min_free_mb stop a running episode and save it as complete,
    with a WARN status and one log line saying why; a start is refused while free space is under
    min_free_mb (the message names the folder and the free MB). Both are read live."""
    from brs_teleop.recorder_node import MIN_FREE_MB_LIMIT

    h = graph_recorders_stopped
    out = tmp_path.resolve()
    # more than this disk has: the start is refused
    proc = recorder(h, out, "limits", cameras=[""], max_duration=2.0, min_free_mb=MIN_FREE_MB_LIMIT)
    wait_for(lambda: full_status(h) is not None or proc.proc.poll() is not None, 60, message="recorder status")
    assert proc.proc.poll() is None, proc.log()
    refused = call(h, topics.RECORDER_START)
    assert not refused.success and f"MB free in {out} (min_free_mb {MIN_FREE_MB_LIMIT})" in refused.message, \
        refused.message
    assert ep.list_episodes(out) == ([], [])

    # max_duration: stopped after 2 s of sim time, saved as complete
    set_parameters(h, min_free_mb=500)
    start(h, proc)
    wait_for(lambda: ep.list_episodes(out)[0], 60, message=f"episode saved at max_duration (last {full_status(h)})")
    first = out / "episode_000000.h5"
    meta = ep.validate_episode(first)
    with ep.read_episode(first) as e:
        assert e.duration <= 2.0 + 1e-6, e.duration  # frames up to 2 s of node time
    # the 20 slots of 2 s at 10 Hz: recorded, or dropped (and counted) where a stream was late under load
    slots = meta["n_frames"] + meta["dropped_frames"]
    assert 19 <= slots <= 21 and meta["n_frames"] >= 5, meta
    wait_for(lambda: (st := full_status(h)) is not None and st[2]["recording"] == "false", 10,
             message=f"idle status (last {full_status(h)})")
    level, message, _ = full_status(h)
    assert level == 1 and "stopped episode_000000: max_duration 2 s reached" in message, (level, message)
    assert message.endswith(f"saved {first}"), message
    wait_for(lambda: "max_duration 2 s reached" in proc.log(), 10, message="the log line")
    assert proc.log().count("max_duration 2 s reached") == 1, proc.log()

    # min_free_mb raised above the free space while recording (no limit on the duration now)
    set_parameters(h, max_duration=0.0)
    start(h, proc)
    frames_at_least(h, 3, "episode_000001")
    set_parameters(h, min_free_mb=MIN_FREE_MB_LIMIT)
    wait_for(lambda: len(ep.list_episodes(out)[0]) == 2, 30, message=f"episode saved at min_free_mb (last {full_status(h)})")
    assert ep.validate_episode(out / "episode_000001.h5")["n_frames"] >= 3
    wait_for(lambda: (st := full_status(h)) is not None and st[2]["recording"] == "false", 10,
             message=f"idle status (last {full_status(h)})")
    level, message, _ = full_status(h)
    assert level == 1 and re.search(rf"stopped episode_000001: only \d+ MB free in {re.escape(str(out))} "
                                    rf"\(min_free_mb {MIN_FREE_MB_LIMIT}\): .*saved {re.escape(str(out))}", message), \
        (level, message)
    assert ep.list_episodes(out)[1] == []  # nothing left .partial
    assert proc.stop(timeout=30) == 0, proc.log()
