"""WB-VIMA policy node: /perception/points + /joint_states + /odom -> action chunks on
/whole_body/policy/command (docs/wbvima.md, "Deploying and evaluating").

Each cloud with the proprioception nearest its stamp is one observation (`observation`). From
the last To of them the node predicts a (Ta, 21) chunk, publishes it as one JointTrajectory over
ACTION_JOINTS timed from the publish time (`chunking`), and predicts again once
`actions_per_inference` of its actions are executed, less the latency it measured.

States (diagnostics component "policy", key `state`): the command source's (brs_common.
command_source: idle; running; stale: no cloud for `stale_timeout`, one hold command with the
measured joint positions and the base at rest), and
  homing   streams the spec home pose (base at rest) until every joint is within tolerance
  home     reached home; keeps holding it
Services (std_srvs/Trigger): ~/start (clears the observation history, running), ~/stop (idle),
~/home. A missing, unreadable or incompatible checkpoint: exit code 2 with the reason.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState, PointCloud2

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.command_source import IDLE, RUNNING, STALE, CommandSource, latency_stats, load_checkpoint
from brs_common.convert import make_trajectory, stamp_to_sec, whole_body_command_msg
from brs_common.node_main import ConfigError, run_node
from brs_common.stamped_history import StampedHistory

from .chunking import action_period_of, timed_chunk
from .observation import (add_base_velocity, add_joint_state, cloud_points, value_near, value_of,
                          window_observation)

NODE_NAME = "policy"
HOME_TOLERANCE = 0.02  # rad / m, every position joint
POSITION = spec.POSITION
HOMING, HOME = "homing", "home"


class PolicyNode(CommandSource):
    SOURCE = COMPONENT = "policy"
    BACK = "clouds are back: acting again"

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
        self._timing(float(p["rate_hz"]), float(p["stale_timeout"]))
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
        self.input_times = {"cloud": None}
        self.state = RUNNING if p["autostart"] else IDLE
        self.chunks = self.clouds_received = 0
        self.age_ms: deque[float] = deque(maxlen=100)  # observation stamp -> chunk published

        self._open(hardware_id="wbvima")
        self.create_subscription(PointCloud2, topics.POINTS, self._on_cloud, qos.SENSOR)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        self._state_service("~/home", HOMING, "homing")
        self._report(force=True)
        self.get_logger().info(
            f"WB-VIMA policy {self.checkpoint}: device {self.policy.device}, To={cfg.obs_window}, "
            f"Ta={cfg.n_action_steps}, {cfg.n_points} points, {cfg.num_inference_steps} DDIM steps, "
            f"{self.rate_hz:g} Hz, action period {self.action_period:g} s, state {self.state} "
            f"-> {topics.whole_body_command('policy')}")

    @staticmethod
    def _load(path: str, device: str, use_ema: bool, threads: int):
        def load():
            from .wbvima import CheckpointError, load_policy, read_checkpoint

            try:
                extra = read_checkpoint(path).get("extra", {}) or {}
                return load_policy(path, use_ema=use_ema, device=device), extra
            except CheckpointError as exc:
                raise ConfigError(f"checkpoint: {exc}") from None

        policy, extra = load_checkpoint(path, load, what="the trained policy", device=device, threads=threads,
                                        example="outputs/wbvima/bimanual_box/policy.pt")
        policy.warmup()  # one-time tracing of the denoisers now, not in the first control step
        return policy, extra

    def _seed_sampler(self):
        if self.seed >= 0:
            import torch

            torch.manual_seed(self.seed)

    # ------------------------------------------------------------------ inputs
    def _on_joint_states(self, msg: JointState):
        add_joint_state(self.joints, msg, self.diag)

    def _on_odom(self, msg: Odometry):
        add_base_velocity(self.base_vel, msg, self.diag)

    def _on_cloud(self, msg: PointCloud2):
        try:
            pts = cloud_points(msg, self.n_points)
        except ValueError as exc:
            self.diag.reject("bad_cloud", str(exc))
            return
        t = stamp_to_sec(msg.header.stamp)
        q, v = value_near(self.joints, t), value_near(self.base_vel, t)
        if q is None or v is None:
            self.diag.reject("no_proprio", "no /joint_states or /odom yet")
            return
        proprio = np.concatenate([v, q]).astype(np.float32)  # ACTION_JOINTS order (dataset.proprio_of)
        self.clouds.append((t, pts, proprio))
        self.clouds_received += 1
        self.input_times["cloud"] = self._now()

    # ------------------------------------------------------------------ run
    def _start(self) -> str:
        self.clouds.clear()  # a new episode: never mix observations across a reset
        self.input_times["cloud"] = None
        self.next_inference = None
        self._seed_sampler()
        return "policy running"

    def _tick(self):
        if self.state in (HOMING, HOME):
            q = value_of(self.joints.latest())
            if q is not None:
                target = np.where(POSITION, spec.HOME, 0.0)
                if np.all(np.abs(q - target[POSITION]) < HOME_TOLERANCE):
                    self._set_state(HOME)
                self.pub.publish(whole_body_command_msg(target, 1.0 / self.rate_hz))
        super()._tick()

    def _hold_command(self):
        """Every position joint at its measured position, base at rest; before the first cloud of a
        run nothing was commanded: nothing to hold."""
        if self.input_times["cloud"] is None:
            return None
        target = np.zeros(spec.ACTION_DIM)
        target[POSITION] = value_of(self.joints.latest())  # a cloud is only taken with joints
        return whole_body_command_msg(target, 1.0 / self.rate_hz)

    def _stalled(self, now: float) -> str:
        self.clouds.clear()  # after the stall the window restarts from the new frames
        self.next_inference = None
        return f"no cloud on {topics.POINTS} for {now - self.input_times['cloud']:.2f} s: holding, no new chunks"

    def _step(self, now: float):
        if not self.clouds or (self.next_inference is not None and now < self.next_inference):
            return
        stamp, obs = window_observation(self.clouds, self.obs_window)
        try:
            chunk = self._act(obs)
        except Exception as exc:  # never take the node down; count, report and hold
            self.get_logger().error(f"inference failed: {exc!r}")
            self.diag.reject("inference_error", repr(exc)[:200])
            return
        # action k is due at observation time + k * period. Stamped now, the chunk starts with
        # the action interpolated at now; the part that perception + inference latency already
        # ate is dropped (so no stamp is ever stale for the controller, whatever the latency)
        now = self._now()
        age = max(0.0, now - stamp) if stamp > 0 else 0.0
        try:
            points, times = timed_chunk(chunk, self.action_period, age)
        except ValueError as exc:
            self.diag.reject("bad_chunk", str(exc))
            return
        if age > self.max_observation_age or points is None:
            self.diag.reject("late_observation", f"observation {age:.2f} s old > max_observation_age "
                             f"{self.max_observation_age:g} s (inference {self.act_ms[-1]:.0f} ms)")
            return
        self.age_ms.append(age * 1e3)
        self.pub.publish(make_trajectory(spec.ACTION_JOINTS, points, times, velocities=points, stamp=now))
        self.chunks += 1
        # the next prediction: when this chunk's executed span ends, early by the latency the next
        # one will have (so the new chunk takes over on time)
        lead = float(np.median(self.age_ms)) * 1e-3
        self.next_inference = (stamp if stamp > 0 else now) + self.actions_per_inference * self.action_period - lead

    def _status(self):
        message = f"{self.state}: {self.chunks} chunks"
        if self.state == STALE:
            message = f"perception stale (> {self.stale_timeout:g} s without a cloud): holding"
        elif self.state == RUNNING and self.input_times["cloud"] is None:
            message = f"running: waiting for the first cloud on {topics.POINTS}"
        return message, {
            "chunks_published": self.chunks, "stale_events": self.stale_events, "holds": self.holds,
            "clouds_received": self.clouds_received, **latency_stats("inference_ms", self.act_ms),
            **latency_stats("observation_age_ms", self.age_ms, ("p50",)),
            "device": str(self.policy.device), "action_period": f"{self.action_period:g}",
            "rate_hz": f"{self.rate_hz:g}", "actions_per_inference": self.actions_per_inference,
            "checkpoint": self.checkpoint,
        }


def main(args=None):
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
