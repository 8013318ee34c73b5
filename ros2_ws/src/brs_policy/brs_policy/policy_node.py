"""WB-VIMA policy node: /perception/points + /joint_states + /odom -> action chunks on
/whole_body/policy/command (docs/wbvima.md, "Deploying and evaluating").

Every observation is one fused cloud (perception_node, ~10 Hz = the record rate of the training
episodes) paired with the proprioception closest to its stamp: base velocity (vx, vy, wz in
base_link, from /odom's twist) + STATE_JOINTS positions (/joint_states), i.e. ACTION_JOINTS order,
exactly what `brs_policy.dataset` trains on. The node keeps the last To (= 2) observations and
predicts a (Ta, 21) chunk, published as ONE JointTrajectory over ACTION_JOINTS; then it lets the
controller execute `actions_per_inference` of its actions (default: all Ta, as BRS does) before it
predicts again, from the observation of that moment. (Predicting at every tick with fresh noise
executed ~1 of 8 actions and made the reference jump between the modes of the samples.) The
timer runs at `rate_hz` (node clock = sim time in sim) and starts the next prediction when the
executed span, less the recent observation-to-publish latency, has passed. The dataset's action k of an observation at time
t is the command executed at t + k * action_period, so the chunk is stamped with the publish
time and point k gets time_from_start = k * action_period - latency (latency = publish time -
observation stamp; the points already in the past become one point at 0, the chunk interpolated
at now; an observation older than
`max_observation_age` is not acted on, counted as `late_observation`). The 21-D action goes into
both positions and velocities (base entries are velocities, the rest positions; docs/controller.md).

States (diagnostics component "policy", key `state`):
  idle     publishes nothing (the controller's watchdog holds the robot)
  homing   streams the spec home pose (base at rest) until every joint is within tolerance
  home     reached home; keeps holding it
  running  acts on observations
  stale    running, but no cloud for `stale_timeout`: one hold command (current joint positions,
           zero base velocity) was sent, no chunks until clouds return (then: running)
Services (std_srvs/Trigger): ~/start (clears the observation history, running),
~/stop (idle), ~/home. Parameter `autostart` starts running at once.

A missing, unreadable or incompatible checkpoint is a configuration error: exit code 2 with
the reason (brs_common.node_main.run_node).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import JointState, PointCloud2
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import (cloud_to_points, state_positions, make_trajectory, stamp_to_sec,
                                whole_body_command_msg)
from brs_common.diagnostics import DiagnosticsReporter
from brs_common.node_main import ConfigError, run_node
from brs_common.stamped_history import StampedHistory

NODE_NAME = "policy"
DEFAULT_ACTION_PERIOD = 1.0 / 10.0  # the episode recorder's default rate (config/recorder.yaml)
HOME_TOLERANCE = 0.02  # rad / m, every position joint
POSITION = spec.POSITION
BASE = ~POSITION
IDLE, HOMING, HOME, RUNNING, STALE = "idle", "homing", "home", "running", "stale"


def action_period_of(extra: dict, override: float) -> float:
    """Seconds between a chunk's actions: the parameter when > 0, else what the checkpoint stores
    (`action_period` s or `rate_hz` / `record_rate_hz` Hz in its extra dict), else 0.1 s."""
    if override > 0:
        return float(override)
    for key in ("action_period",):
        if key in extra:
            return float(extra[key])
    for key in ("rate_hz", "record_rate_hz"):
        if key in extra and float(extra[key]) > 0:
            return 1.0 / float(extra[key])
    return DEFAULT_ACTION_PERIOD


def cloud_points(msg: PointCloud2, n_points: int) -> np.ndarray:
    """(n_points, 6) float32 xyz + rgb 0..1 of a PointCloud2: the first n_points (what training
    validates on; perception's FPS order), padded by repetition when the cloud is smaller."""
    xyz, rgb = cloud_to_points(msg)
    if rgb is None:
        raise ValueError("cloud has no rgb/rgba field (WB-VIMA needs xyz + colour)")
    if len(xyz) == 0:
        raise ValueError("empty cloud")
    pts = np.concatenate([xyz, rgb.astype(np.float32) / 255.0], axis=1).astype(np.float32)
    if not np.all(np.isfinite(pts)):
        raise ValueError("cloud holds NaN/inf points")
    if len(pts) >= n_points:
        return pts[:n_points]
    return pts[np.arange(n_points) % len(pts)]


def chunk_from_now(chunk: np.ndarray, period: float, age: float):
    """(points, times from now) of a chunk observed `age` s ago: action k is due at
    k * period - age; the actions already past are replaced by one point at time 0, the chunk
    interpolated linearly at now. (None, None) when the whole chunk lies in the past."""
    t = period * np.arange(len(chunk)) - age
    future = t > 1e-9
    if not future.any():
        return None, None
    if future.all():  # no latency (or an unstamped observation)
        return chunk, t
    i = int(np.flatnonzero(~future)[-1])  # the last action at or before now; i + 1 is ahead
    s = -t[i] / period
    now_value = chunk[i] + s * (chunk[i + 1] - chunk[i])
    return np.vstack([now_value[None], chunk[future]]), np.concatenate([[0.0], t[future]])


def _value(item):
    return None if item is None else item[1]


def _value_near(history: StampedHistory, t: float):
    """The value of the sample nearest `t`; the latest for an unstamped (t <= 0) observation."""
    return _value(history.latest() if t <= 0.0 else history.nearest(t))


class PolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = params.declare(self, [
            ("checkpoint", "", "WB-VIMA policy checkpoint (policy.pt) (required)"),
            ("rate_hz", 20.0, "timer rate, Hz (node clock): a prediction starts once the last chunk's "
                              "executed span is over; > 0"),
            ("device", "auto", "torch device: auto (cuda when present), cpu, cuda, cuda:N"),
            ("stale_timeout", 0.5, "s (node clock) without a cloud before holding once and stopping; > 0"),
            ("action_period", 0.0, "s between a chunk's actions; <= 0: the checkpoint's, else 0.1 s"),
            ("autostart", True, "start running at once (false: idle until ~/start)"),
            ("use_ema", True, "use the checkpoint's EMA weights when it has them"),
            ("threads", 1, "torch CPU threads; <= 0: torch's default"),
            ("max_observation_age", 0.6, "s: older observations are not acted on"),
            ("actions_per_inference", 0, "actions of a chunk executed before the next prediction; "
                                         "0: all (Ta)"),
            ("seed", -1, "sampler noise seed, set at startup and at every ~/start; < 0: unseeded"),
        ])
        self.rate_hz = float(p["rate_hz"])
        self.stale_timeout = float(p["stale_timeout"])
        if not self.rate_hz > 0 or not self.stale_timeout > 0:
            raise ConfigError(f"rate_hz ({self.rate_hz}) and stale_timeout ({self.stale_timeout}) must be > 0")
        self.checkpoint = str(p["checkpoint"])
        self.policy, extra = self._load(self.checkpoint, str(p["device"]), bool(p["use_ema"]), int(p["threads"]))
        cfg = self.policy.config
        self.obs_window, self.n_points = cfg.obs_window, cfg.n_points
        self.action_period = action_period_of(extra, float(p["action_period"]))
        self.max_observation_age = float(p["max_observation_age"])
        k = int(p["actions_per_inference"]) or cfg.n_action_steps
        if not 1 <= k <= cfg.n_action_steps:
            raise ConfigError(f"actions_per_inference must be in 1..{cfg.n_action_steps} (the checkpoint's "
                              f"executed actions) or 0 for all; got {p['actions_per_inference']}")
        self.actions_per_inference = k
        self.next_inference = None  # node time at which the executed span of the last chunk ends
        self.seed = int(p["seed"])  # >= 0: the sampler's noise is seeded at every start
        self._seed_sampler()

        self.clouds: deque[tuple[float, np.ndarray, np.ndarray]] = deque(maxlen=self.obs_window)
        self.joints = StampedHistory(maxlen=400)
        self.base_vel = StampedHistory(maxlen=400)
        self.last_cloud_time: float | None = None  # node clock at receipt
        self.state = RUNNING if p["autostart"] else IDLE
        self.state_since = self._now()
        self.chunks = 0
        self.stale_events = 0
        self.holds = 0
        self.clouds_received = 0
        self.infer_ms: deque[float] = deque(maxlen=100)
        self.age_ms: deque[float] = deque(maxlen=100)  # observation stamp -> chunk published

        self.diag = DiagnosticsReporter(self, hardware_id="wbvima")
        self.pub = self.create_publisher(JointTrajectory, topics.whole_body_command("policy"), qos.COMMAND)
        self.create_subscription(PointCloud2, topics.POINTS, self._on_cloud, qos.SENSOR)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/home", self._on_home)
        self.create_timer(1.0 / self.rate_hz, self._tick)
        self._report(force=True)
        self.get_logger().info(
            f"WB-VIMA policy {self.checkpoint}: device {self.policy.device}, To={cfg.obs_window}, "
            f"Ta={cfg.n_action_steps}, {cfg.n_points} points, {cfg.num_inference_steps} DDIM steps, "
            f"{self.rate_hz:g} Hz, action period {self.action_period:g} s, state {self.state} "
            f"-> {topics.whole_body_command('policy')}")

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _load(path: str, device: str, use_ema: bool, threads: int):
        if not path:
            raise ConfigError("parameter `checkpoint` is empty: give the trained policy, e.g. "
                              "checkpoint:=outputs/wbvima/bimanual_box/policy.pt")
        import torch

        from .wbvima import CheckpointError, load_policy, read_checkpoint

        if threads > 0:
            torch.set_num_threads(threads)
        try:
            extra = read_checkpoint(path).get("extra", {}) or {}
            policy = load_policy(path, use_ema=use_ema, device=device)
        except CheckpointError as exc:
            raise ConfigError(f"checkpoint: {exc}") from None
        except (RuntimeError, ValueError) as exc:  # e.g. device "cuda" without CUDA
            raise ConfigError(f"checkpoint {path} on device {device!r}: {exc}") from None
        policy.warmup()  # one-time tracing of the denoisers now, not in the first control step
        return policy, extra

    def _seed_sampler(self):
        if self.seed >= 0:
            import torch

            torch.manual_seed(self.seed)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs
    def _on_joint_states(self, msg: JointState):
        try:
            pos = state_positions(msg)
        except ValueError as exc:
            self.diag.reject("bad_joint_state", str(exc))
            return
        self.joints.add(stamp_to_sec(msg.header.stamp), pos)

    def _on_odom(self, msg: Odometry):
        tw = msg.twist.twist
        v = np.array([tw.linear.x, tw.linear.y, tw.angular.z])
        if not np.all(np.isfinite(v)):
            self.diag.reject("bad_odom", "NaN/inf twist")
            return
        self.base_vel.add(stamp_to_sec(msg.header.stamp), v)

    def _on_cloud(self, msg: PointCloud2):
        try:
            pts = cloud_points(msg, self.n_points)
        except ValueError as exc:
            self.diag.reject("bad_cloud", str(exc))
            return
        t = stamp_to_sec(msg.header.stamp)
        q, v = _value_near(self.joints, t), _value_near(self.base_vel, t)
        if q is None or v is None:
            self.diag.reject("no_proprio", "no /joint_states or /odom yet")
            return
        proprio = np.concatenate([v, q]).astype(np.float32)  # ACTION_JOINTS order (dataset.proprio_of)
        self.clouds.append((t, pts, proprio))
        self.clouds_received += 1
        self.last_cloud_time = self._now()

    # ------------------------------------------------------------------ services
    def _set_state(self, state: str):
        if state != self.state:
            self.state, self.state_since = state, self._now()
            self._report(force=True)

    def _on_start(self, request, response):
        self.clouds.clear()  # a new episode: never mix observations across a reset
        self.policy.clear_cache()
        self.last_cloud_time = None
        self.next_inference = None
        self._seed_sampler()
        self._set_state(RUNNING)
        response.success, response.message = True, "policy running"
        return response

    def _on_stop(self, request, response):
        self._set_state(IDLE)
        response.success, response.message = True, "idle"
        return response

    def _on_home(self, request, response):
        self._set_state(HOMING)
        response.success, response.message = True, "homing"
        return response

    # ------------------------------------------------------------------ loop
    def _hold(self):
        """One command: every position joint at its current measured position, base at rest."""
        q = _value(self.joints.latest())
        if q is None:
            return
        target = np.zeros(spec.ACTION_DIM)
        target[POSITION] = q
        self.pub.publish(whole_body_command_msg(target, 1.0 / self.rate_hz))
        self.holds += 1

    def _tick(self):
        now = self._now()
        if self.state in (HOMING, HOME):
            q = _value(self.joints.latest())
            if q is not None:
                target = np.where(POSITION, spec.HOME, 0.0)
                if np.all(np.abs(q - target[POSITION]) < HOME_TOLERANCE):
                    self._set_state(HOME)
                self.pub.publish(whole_body_command_msg(target, 1.0 / self.rate_hz))
        elif self.state in (RUNNING, STALE):
            # before the first cloud of a run nothing was commanded: nothing to hold, just wait
            seen = self.last_cloud_time is not None
            fresh = seen and now - self.last_cloud_time <= self.stale_timeout
            if self.state == RUNNING and seen and not fresh:
                self.stale_events += 1
                self._hold()
                self.clouds.clear()  # after the stall the window restarts from the new frames
                self.next_inference = None
                self.get_logger().warning(
                    f"no cloud on {topics.POINTS} for {now - self.last_cloud_time:.2f} s: holding, no new chunks")
                self._set_state(STALE)
            elif self.state == STALE and fresh:
                self.get_logger().info("clouds are back: acting again")
                self._set_state(RUNNING)
            due = self.next_inference is None or now >= self.next_inference
            if self.state == RUNNING and fresh and self.clouds and due:
                self._act()
        self._report()

    def _act(self):
        window = list(self.clouds)
        while len(window) < self.obs_window:  # the first frame repeats at the start (dataset)
            window.insert(0, window[0])
        stamp = window[-1][0]
        points = np.stack([w[1] for w in window])
        proprio = np.stack([w[2] for w in window])
        t0 = time.perf_counter()
        try:
            chunk = self.policy.predict({"points": points, "proprio": proprio})
        except Exception as exc:  # never take the node down; count, report and hold
            self.get_logger().error(f"inference failed: {exc!r}")
            self.diag.reject("inference_error", repr(exc)[:200])
            return
        self.infer_ms.append((time.perf_counter() - t0) * 1e3)
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2 or chunk.shape[1] != spec.ACTION_DIM or not np.all(np.isfinite(chunk)):
            self.diag.reject("bad_chunk", f"shape {chunk.shape} or non-finite values")
            return
        # within the spec's limits (the controller clamps too, but never counts a policy's action
        # as a violation): positions in [LOWER, UPPER], base velocities within MAX_VELOCITY
        chunk = np.clip(chunk, spec.ACTION_LOWER, spec.ACTION_UPPER)
        # action k is due at observation time + k * period. Stamped now, the chunk starts with
        # the action interpolated at now; the part that perception + inference latency already
        # ate is dropped (so no stamp is ever stale for the controller, whatever the latency)
        now = self._now()
        age = max(0.0, now - stamp) if stamp > 0 else 0.0
        points, times = chunk_from_now(chunk, self.action_period, age)
        if age > self.max_observation_age or points is None:
            self.diag.reject("late_observation", f"observation {age:.2f} s old > max_observation_age "
                             f"{self.max_observation_age:g} s (inference {self.infer_ms[-1]:.0f} ms)")
            return
        self.age_ms.append(age * 1e3)
        self.pub.publish(make_trajectory(spec.ACTION_JOINTS, points, times, velocities=points, stamp=now))
        self.chunks += 1
        # the next prediction: when this chunk's executed span ends, early by the latency the next
        # one will have (so the new chunk takes over on time)
        lead = float(np.median(self.age_ms)) * 1e-3
        self.next_inference = (stamp if stamp > 0 else now) + self.actions_per_inference * self.action_period - lead

    def _report(self, force: bool = False):
        level = DiagnosticStatus.WARN if self.state == STALE else DiagnosticStatus.OK
        ms = self.infer_ms
        message = f"{self.state}: {self.chunks} chunks"
        if self.state == STALE:
            message = f"perception stale (> {self.stale_timeout:g} s without a cloud): holding"
        elif self.state == RUNNING and self.last_cloud_time is None:
            message = f"running: waiting for the first cloud on {topics.POINTS}"
        self.diag.set_status("policy", level, message, {
            "state": self.state,
            "chunks_published": self.chunks,
            "stale_events": self.stale_events,
            "holds": self.holds,
            "clouds_received": self.clouds_received,
            "inference_ms_last": f"{ms[-1]:.1f}" if ms else "nan",
            "inference_ms_p50": f"{np.median(ms):.1f}" if ms else "nan",
            "inference_ms_max": f"{max(ms):.1f}" if ms else "nan",
            "observation_age_ms_p50": f"{np.median(self.age_ms):.1f}" if self.age_ms else "nan",
            "device": str(self.policy.device),
            "action_period": f"{self.action_period:g}",
            "rate_hz": f"{self.rate_hz:g}",
            "actions_per_inference": self.actions_per_inference,
            "checkpoint": self.checkpoint,
        })
        if force:
            self.diag.publish()


def main(args=None):
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
