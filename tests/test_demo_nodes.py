"""The demo motion script and the demo recorder node."""

from __future__ import annotations

import re
import signal
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rosgraph_msgs.msg import Clock
from rosutil import wait_for
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from brs.demo_source import DEMO_DURATION, demo_targets
from brs_common import convert as cv
from brs_common import qos, topics
from brs_common import robot_spec as spec

DT = 1e-3


@pytest.fixture(scope="module")
def script():
    t = np.arange(0.0, DEMO_DURATION + DT / 2, DT)
    return t, np.stack([demo_targets(x) for x in t])


def test_demo_within_limits(script):
    t, q = script
    assert 12.0 <= DEMO_DURATION <= 15.0 and q.shape == (t.size, spec.ACTION_DIM)
    base = spec.group_slice("base")
    pos = slice(base.stop, spec.ACTION_DIM)
    assert np.all(q[:, pos] >= spec.LOWER[pos]) and np.all(q[:, pos] <= spec.UPPER[pos])
    vel = np.gradient(q[:, pos], DT, axis=0)
    acc = np.gradient(vel, DT, axis=0)
    assert np.all(np.abs(vel) <= spec.MAX_VELOCITY[pos]), "joint velocity limit exceeded"
    assert np.all(np.abs(acc) <= spec.MAX_ACCELERATION[pos] * 1.01), "joint acceleration limit exceeded"
    # base entries are velocities: within limits, smooth, zero at both ends
    assert np.all(np.abs(q[:, base]) <= spec.MAX_VELOCITY[base])
    assert np.all(np.abs(np.gradient(q[:, base], DT, axis=0)) <= spec.MAX_ACCELERATION[base])
    np.testing.assert_allclose(q[0, base], 0.0)
    np.testing.assert_allclose(q[-1, base], 0.0)
    # starts and ends at home
    np.testing.assert_allclose(q[0, pos], spec.HOME[pos])
    np.testing.assert_allclose(q[-1, pos], spec.HOME[pos], atol=1e-9)


def test_demo_moves_every_group(script):
    t, q = script
    for group in spec.GROUP_ORDER:
        s = spec.group_slice(group)
        span = np.ptp(q[:, s], axis=0).max()
        rng = (spec.UPPER[s] - spec.LOWER[s]).max()
        assert span >= 0.2 * rng if group == "base" else span >= 0.15 * rng, \
            f"group {group} barely moves (span {span:.3f})"
    base = q[:, spec.group_slice("base")]
    travel = base.sum(axis=0) * DT
    assert travel[0] > 0.3, "base should drive forward"
    assert abs(travel[2]) > 0.5, "base should turn"


def test_demo_duration_scale():
    for t in (0.7, 3.1, 6.0, 11.2):
        slow = demo_targets(2 * t, duration_scale=2.0)
        fast = demo_targets(t)
        base = spec.group_slice("base")
        np.testing.assert_allclose(slow[base.stop:], fast[base.stop:])
        np.testing.assert_allclose(slow[base], fast[base] / 2)  # same distance, half the speed


# ----------------------------------------------------------------------------- recorder

def _frame(k: int, h=120, w=160) -> np.ndarray:
    """A moving colour bar, so frames differ."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 2] = 40
    x = (8 * (k % 17)) % (w - 20)
    y = (6 * (k // 17)) % (h - 20)  # a second bar, so frames stay distinct for ~270 frames
    img[:, x:x + 20] = (230, 60, 10)
    img[y:y + 10, :] = (20, 200, 20)
    return img


def _diag_value(ros, key):
    status = ros.diagnostic_status("demo_recorder: recording")
    return None if status is None or key not in status[1] else int(status[1][key])


def _publish_demo_traffic(ros, n_frames: int, height: int = 120, width: int = 160, until=None):
    """Publish images, joint states and commands like the sim + demo source, from a 40 Hz timer.

    Sends `n_frames`, or with `until` keeps sending until it holds: best-effort frames published
    before the subscriber side of discovery has matched are lost, and that can take a while.
    """
    node = ros.node
    img_pub = node.create_publisher(Image, topics.camera_topic("head", "color"), qos.SENSOR)
    js_pub = node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    cmd_pubs = {g: node.create_publisher(Float64MultiArray, topics.controller_command(g), qos.COMMAND)
                for g in spec.POSITION_GROUPS}
    pubs = [img_pub, js_pub, *cmd_pubs.values()]
    wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs), 15.0,
             message="recorder subscriptions")
    sent = []

    def tick():  # a fake camera + joint state source; idle once all frames are out
        k = len(sent)
        if k >= n_frames and (until is None or until() or k >= 20 * n_frames):
            return
        t = 0.05 * k
        targets = demo_targets(t)
        js_pub.publish(cv.make_joint_state(spec.STATE_JOINTS, targets[3:] - 0.02 * np.sin(t)))
        for g, pub in cmd_pubs.items():
            pub.publish(cv.make_float64_array(targets[spec.group_slice(g)]))
        img_pub.publish(cv.numpy_to_image(_frame(k, height, width), "rgb8", "head"))
        sent.append(k)

    timer = node.create_timer(1 / 40, tick)
    wait_for(lambda: len(sent) >= n_frames and (until is None or until()), 30.0, message="frames published")
    node.destroy_timer(timer)
    return len(sent)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_recorder_writes_video_and_plot_on_signal(ros, tmp_path, sig):
    ros.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    log = tmp_path / "recorder.log"
    proc = ros.spawn("demo_recorder", {"output_dir": str(tmp_path / "out")}, log_path=log)
    n = 30
    n_sent = _publish_demo_traffic(ros, n, until=lambda: (_diag_value(ros, "frames_written") or 0) >= n)
    if sig == signal.SIGINT:
        ros.assert_parameters_described("/demo_recorder")
    proc.proc.send_signal(sig)
    try:
        rc = proc.proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"recorder did not exit after {sig!r}:\n{proc.log()}")
    out = proc.log()
    assert rc == 0, out
    video = tmp_path / "out" / "demo_head_camera.mp4"
    plot = tmp_path / "out" / "demo_joint_tracking.png"
    assert str(video) in out and str(plot) in out
    written = int(re.search(r"\((\d+) frames\)", out).group(1))
    assert written >= int(0.8 * n)
    frames = _read_video(video)
    assert frames.shape == (written, 120, 160, 3)
    # every decoded frame is one of the published frames (H.264 is lossy: small error), in order
    sent = np.stack([_frame(k) for k in range(n_sent)]).astype(np.int16)
    err = np.abs(frames[:, None].astype(np.int16) - sent[None]).mean(axis=(2, 3, 4))
    match = err.argmin(axis=1)
    assert err.min(axis=1).max() < 6, err.min(axis=1)
    assert np.all(np.diff(match) > 0), match
    png = iio.imread(plot)
    assert png.ndim == 3 and png.shape[0] > 400 and png.shape[1] > 600
    assert png[..., :3].std() > 10  # not blank


def _read_video(path) -> np.ndarray:
    import imageio.v2 as iio2

    with iio2.get_reader(path, "ffmpeg") as reader:
        return np.stack([frame for frame in reader.iter_data()])


def test_recorder_stops_at_max_duration_and_crops_odd_size(ros, tmp_path):
    log = tmp_path / "recorder.log"
    proc = ros.spawn("demo_recorder", {"output_dir": str(tmp_path), "max_duration": 1.0},
                     log_path=log)
    _publish_demo_traffic(ros, 20, height=121, width=161)
    try:
        rc = proc.proc.wait(20)  # exits by itself, no signal
    except subprocess.TimeoutExpired:
        pytest.fail(f"recorder ignored max_duration:\n{proc.log()}")
    assert rc == 0, proc.log()
    frames = _read_video(tmp_path / "demo_head_camera.mp4")
    assert frames.shape[1:] == (120, 160, 3) and frames.shape[0] >= 1
    assert (tmp_path / "demo_joint_tracking.png").stat().st_size > 10_000


def test_demo_source_runs_script_on_sim_time_and_exits(ros):
    """demo_source waits for /joint_states, streams whole-body commands on sim time, stops the
    base and exits 0."""
    command = topics.whole_body_command("demo")
    ros.record(command, JointTrajectory, qos.COMMAND, keep=100000)
    proc = ros.spawn("demo_source", {"use_sim_time": True})
    wait_for(lambda: ros.node.count_subscribers(topics.JOINT_STATES) > 0
             and ros.node.count_publishers(command) > 0, 15.0,
             message="demo_source subscriptions and publishers")
    ros.assert_parameters_described("/demo_source")
    clock_pub = ros.node.create_publisher(Clock, topics.CLOCK, qos.CLOCK)
    js_pub = ros.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    sim = {"t": 1000.0, "joint_states": False}
    home = spec.HOME[spec.group_slice("base").stop:]

    def tick():  # sim time at 5x real time; joint states only once enabled
        sim["t"] += 0.05
        clock_pub.publish(Clock(clock=cv.to_stamp(sim["t"])))
        if sim["joint_states"]:
            js_pub.publish(cv.make_joint_state(spec.STATE_JOINTS, home, stamp=sim["t"]))

    timer = ros.node.create_timer(0.01, tick)
    try:
        wait_for(lambda: sim["t"] > 1001.0, 10.0, message="1 s of sim time")
        assert ros.count(command) == 0, "must not command before /joint_states"
        sim["joint_states"] = True
        t_start = sim["t"]
        rc = wait_for(lambda: proc.proc.poll() is not None and [proc.proc.returncode], 30.0,
                      message="demo_source to finish")[0]
        t_end = sim["t"]
    finally:
        ros.node.destroy_timer(timer)
    assert rc == 0
    assert t_end - t_start >= DEMO_DURATION, "script must run on sim time"
    msgs = list(ros.messages[command])
    assert len(msgs) >= 0.5 * DEMO_DURATION / 0.05
    assert all(cv.stamp_to_sec(m.header.stamp) > 1000.0 for m in msgs), "stamps use sim time"
    full = [cv.trajectory_to_arrays(m) for m in msgs if len(m.joint_names) == spec.ACTION_DIM]
    assert all(names == list(spec.ACTION_JOINTS) for names, *_ in full)
    positions = np.concatenate([p for _, p, _, _ in full])
    velocities = np.concatenate([v for _, _, v, _ in full])
    base = spec.group_slice("base")
    assert 0.2 < velocities[:, base][:, 0].max() <= spec.MAX_VELOCITY[0]  # drives forward
    assert np.ptp(positions[:, spec.group_slice("left_arm")][:, 0]) > 0.5  # the arm moves
    names, _, last_v, _ = cv.trajectory_to_arrays(msgs[-1])
    assert names == list(spec.BASE_JOINTS) and not last_v.any()  # ends with the base stopped


def test_recorder_video_survives_sigkill(ros, tmp_path):
    """The mp4 is fragmented and written frame by frame: a killed recorder leaves a playable file."""
    ros.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    proc = ros.spawn("demo_recorder", {"output_dir": str(tmp_path)})
    n = 30
    _publish_demo_traffic(ros, n, until=lambda: (_diag_value(ros, "frames_written") or 0) >= n)
    proc.proc.kill()
    proc.proc.wait(10)
    video = tmp_path / "demo_head_camera.mp4"
    # ffmpeg (own process group) finishes on EOF of its input; wait for a readable file
    frames = wait_for(lambda: _try_read(video), 15.0, message="readable mp4 after SIGKILL")[0]
    assert frames.shape[1:] == (120, 160, 3) and frames.shape[0] >= 10


def _try_read(path):
    try:
        frames = _read_video(path)
    except Exception:
        return None
    return [frames] if len(frames) else None
