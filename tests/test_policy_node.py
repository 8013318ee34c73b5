"""The WB-VIMA policy node over real DDS with a tiny checkpoint made here: synthetic clouds,
/joint_states and /odom in, 8-point action chunks out; perception stall -> one hold + WARN;
resume; a garbage checkpoint -> exit code 2 with a clear message."""

from __future__ import annotations

import threading

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState, PointCloud2
from trajectory_msgs.msg import JointTrajectory

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import (make_joint_state, points_to_cloud, stamp_to_sec, to_stamp,
                                trajectory_to_arrays)
from rosutil import NodeProcess, wait_for

COMMAND = topics.whole_body_command("policy")
POSITION = np.array([not j.velocity_controlled for j in spec.JOINTS])


def make_tiny_checkpoint(path, n_points: int = 32, extra: dict | None = None):
    """A tiny WB-VIMA (random weights, normalisers fitted around the home pose) saved with the
    module's checkpoint API."""
    from brs_policy.wbvima import WBVIMAConfig, WBVIMAPolicy, save_checkpoint

    rng = np.random.default_rng(0)
    model = WBVIMAPolicy(WBVIMAConfig.tiny(n_points=n_points, num_inference_steps=4))
    home = np.where(POSITION, spec.HOME, 0.0)
    spread = np.where(POSITION, 0.05, 0.05)
    samples = home + spread * rng.uniform(-1, 1, size=(200, spec.ACTION_DIM))
    model.fit_normalizers(samples, samples)
    return save_checkpoint(path, model, extra=extra)


def test_chunk_from_now_drops_the_past_and_interpolates_now():
    from brs_policy.chunking import chunk_from_now

    chunk = np.arange(8, dtype=float)[:, None] * np.ones((1, 21))  # action k = k
    pts, t = chunk_from_now(chunk, 0.1, 0.0)
    assert len(pts) == 8 and np.allclose(t, 0.1 * np.arange(8)) and np.array_equal(pts, chunk)
    pts, t = chunk_from_now(chunk, 0.1, 0.25)  # actions 0..2 are past; now is action 2.5
    assert np.allclose(t, [0.0, 0.05, 0.15, 0.25, 0.35, 0.45])
    assert np.allclose(pts[:, 0], [2.5, 3, 4, 5, 6, 7])
    assert chunk_from_now(chunk, 0.1, 0.7) == (None, None)


class Feeder:
    """Publishes /joint_states + /odom at 50 Hz and (while `clouds` is set) clouds at 10 Hz,
    stamped with the harness's clock (wall time, like the node's)."""

    def __init__(self, h):
        self.h = h
        self.pub_js = h.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
        self.pub_odom = h.node.create_publisher(Odometry, topics.ODOM, qos.STATE)
        self.pub_pc = h.node.create_publisher(PointCloud2, topics.POINTS, qos.SENSOR)
        rng = np.random.default_rng(1)
        self.xyz = rng.uniform([0.2, -0.8, 0.0], [1.8, 0.8, 1.4], size=(64, 3)).astype(np.float32)
        self.rgb = rng.integers(0, 255, size=(64, 3), dtype=np.uint8)
        self.q = np.asarray(spec.HOME)[POSITION]
        self.clouds = threading.Event()
        self.clouds.set()
        self.sent_clouds = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        k = 0
        while not self._stop.wait(0.02):
            now = self.h.node.get_clock().now().nanoseconds * 1e-9
            self.pub_js.publish(make_joint_state(spec.STATE_JOINTS, self.q, stamp=now))
            odom = Odometry()
            odom.header.stamp = to_stamp(now)
            odom.pose.pose.orientation.w = 1.0
            odom.twist.twist.linear.x = 0.01
            self.pub_odom.publish(odom)
            if k % 5 == 0 and self.clouds.is_set():
                self.pub_pc.publish(points_to_cloud(self.xyz, self.rgb, spec.FRAMES["base"], now))
                self.sent_clouds += 1
            k += 1

    def close(self):
        self._stop.set()
        self.thread.join(2)


def test_policy_node_publishes_chunks_holds_when_perception_stalls_and_resumes(ros, tmp_path):
    h = ros
    ckpt = make_tiny_checkpoint(tmp_path / "policy.pt")
    h.record(COMMAND, JointTrajectory, qos.COMMAND, keep=500)
    h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    # action period 0.5 s (a parameter overriding the 0.1 s default): the latency (< 0.5 s) then
    # never eats a whole action, so every chunk keeps all 8 points
    node = h.spawn("policy_node", {"checkpoint": str(ckpt), "rate_hz": 8.0, "stale_timeout": 0.4,
                                   "device": "cpu", "action_period": 0.5, "actions_per_inference": 2},
                   log_path=tmp_path / "policy.log")
    feeder = Feeder(h)
    try:
        wait_for(lambda: h.count(COMMAND) >= 4 or node.proc.poll() is not None, 45,
                 message="4 chunks on the policy command")
        assert node.proc.poll() is None, node.log()
        with h.lock:
            chunks = list(h.messages[COMMAND])
        for msg in chunks:
            names, pos, vel, times = trajectory_to_arrays(msg)
            assert names == list(spec.ACTION_JOINTS)
            assert pos.shape == (8, spec.ACTION_DIM) and vel is not None and vel.shape == pos.shape
            # point 0 = the chunk at now, then the actions at the action period (minus the latency)
            assert times[0] == 0.0 and 0 < times[1] <= 0.5
            np.testing.assert_allclose(np.diff(times[1:]), 0.5, atol=1e-6)
            assert np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))
            assert np.all(pos[:, POSITION] >= spec.LOWER[POSITION] - 1e-9)
            assert np.all(pos[:, POSITION] <= spec.UPPER[POSITION] + 1e-9)
            assert np.all(np.abs(vel[:, ~POSITION]) <= spec.MAX_VELOCITY[~POSITION] + 1e-9)
            np.testing.assert_array_equal(pos, vel)  # one action array in both fields
            assert stamp_to_sec(msg.header.stamp) > 0  # stamped (publish time; latency compensated)

        # perception stalls: exactly one hold command (current positions, base at rest), WARN
        feeder.clouds.clear()
        wait_for(lambda: (h.diagnostic_status("policy: policy") or (0, {}))[1].get("state") == "stale", 10,
                 message="policy state stale")
        level, values = h.diagnostic_status("policy: policy")
        assert level == 1 and values["stale_events"] == "1" and values["holds"] == "1"
        n_stalled = h.count(COMMAND)
        with h.lock:
            hold = h.messages[COMMAND][-1]
        names, pos, vel, times = trajectory_to_arrays(hold)
        assert len(hold.points) == 1 and names == list(spec.ACTION_JOINTS)
        np.testing.assert_allclose(pos[0, POSITION], feeder.q)
        np.testing.assert_array_equal(vel[0, ~POSITION], 0.0)
        # no new chunks while stale: two more 1-Hz reports (>= 1 s, 8 policy periods) later
        chunks_then = values["chunks_published"]
        h.clear(topics.DIAGNOSTICS)
        wait_for(lambda: h.count(topics.DIAGNOSTICS) >= 2, 5, message="two fresh reports")
        level, values = h.diagnostic_status("policy: policy")
        assert values["state"] == "stale" and values["chunks_published"] == chunks_then
        assert h.count(COMMAND) == n_stalled

        # clouds return: chunks again, OK
        feeder.clouds.set()
        wait_for(lambda: h.count(COMMAND) >= n_stalled + 2, 15, message="chunks after the stall")
        with h.lock:
            assert len(h.messages[COMMAND][-1].points) == 8
        wait_for(lambda: (h.diagnostic_status("policy: policy") or (0, {}))[1].get("state") == "running", 5,
                 message="state running again")
        level, values = h.diagnostic_status("policy: policy")
        assert level == 0 and values["stale_events"] == "1" and values["holds"] == "1"
        assert float(values["inference_ms_p50"]) > 0
        h.assert_parameters_described("/policy")
    finally:
        feeder.close()
    assert node.stop() in (0, -2, 130), node.log()


def _chunk_intervals(h, tmp_path, params: dict, n: int) -> np.ndarray:
    """Seconds between the stamps of the first n chunks of a node fed clouds at 10 Hz."""
    h.clear(COMMAND)
    node = h.spawn("policy_node", {"device": "cpu", "rate_hz": 20.0, **params}, log_path=tmp_path / "policy.log")
    feeder = Feeder(h)
    try:
        wait_for(lambda: h.count(COMMAND) >= n or node.proc.poll() is not None, 60,
                 message=f"{n} chunks (log: {tmp_path / 'policy.log'})")
        assert node.proc.poll() is None, node.log()
        with h.lock:
            stamps = [stamp_to_sec(m.header.stamp) for m in list(h.messages[COMMAND])[:n]]
    finally:
        feeder.close()
        node.stop()
    return np.diff(stamps)


def test_node_executes_the_chunk_before_it_predicts_again(ros, tmp_path):
    """Ta = 8 actions at 0.1 s: one prediction per 0.8 s less the latency the node measured
    (observation age at publish, ~0.1-0.2 s here), not one per 20 Hz timer tick (0.05 s);
    actions_per_inference:=2 at 0.25 s: one per 0.5 s less that latency."""
    h = ros
    ckpt = make_tiny_checkpoint(tmp_path / "policy.pt")
    h.record(COMMAND, JointTrajectory, qos.COMMAND, keep=500)
    full = _chunk_intervals(h, tmp_path, {"checkpoint": str(ckpt), "action_period": 0.1}, 5)
    assert np.all(full > 0.4) and np.median(full) < 1.0, f"intervals between chunks: {np.round(full, 3)}"
    two = _chunk_intervals(h, tmp_path, {"checkpoint": str(ckpt), "action_period": 0.25,
                                         "actions_per_inference": 2}, 6)
    assert 0.15 < np.median(two) < 0.6, f"intervals between chunks: {np.round(two, 3)}"


def test_garbage_or_missing_checkpoint_exits_2_with_a_clear_message(ros_domain, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    for params, expected in (({"checkpoint": str(garbage)}, "not a readable WB-VIMA checkpoint"),
                             ({}, "parameter `checkpoint` is empty")):
        log = tmp_path / "policy.log"
        proc = NodeProcess("policy_node", params, log_path=log)
        assert proc.proc.wait(timeout=60) == 2
        text = log.read_text()
        assert "configuration error" in text and expected in text, text
