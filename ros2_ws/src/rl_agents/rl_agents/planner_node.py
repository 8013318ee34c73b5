"""Base planner node: PLDM latent MPPI drives the base to a goal pose (docs/base_planner.md, "The node").

Subscribes: /planner/goal (geometry_msgs/PoseStamped, odom frame), /odom. Publishes: base-only
velocity commands on /whole_body/rl/command (every other joint keeps its target), /diagnostics.
Services (std_srvs/Trigger): ~/cancel (drop the goal and stop). Every `1 / rate_hz` s (node clock)
a worker thread plans from the latest pose with MPPI toward the goal; at `publish_rate_hz` the
first planned (odom-frame) velocity goes out rotated into base_link with the latest odometry yaw.

States (diagnostics component "planner", key `state`): idle (no goal, sends nothing), moving,
reached (zero velocity; replans when pushed beyond twice the tolerance), stale (no /odom for
`odom_timeout`: zero velocity until it returns, then back to the state it left), timeout
(`goal_timeout` elapsed: zero velocity). A missing, unreadable or wrong checkpoint: exit code 2.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from std_srvs.srv import Trigger

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.command_source import IDLE, STALE, CommandSource, latency_stats, load_checkpoint
from brs_common.convert import base_command_msg, odom_pose, quaternion_yaw
from brs_common.node_main import ConfigError, run_node
from brs_common.planar import to_base_frame, wrap_angle

MOVING, REACHED, TIMEOUT = "moving", "reached", "timeout"

# m/s: after "reached" the base is still braking (controller acceleration limit) above this speed
BRAKING_SPEED = 0.02


class PlannerNode(CommandSource):
    SOURCE, COMPONENT = "rl", "planner"
    WARN_STATES = (STALE, TIMEOUT)

    def __init__(self, **kwargs):
        super().__init__(topics.PLANNER_NODE, **kwargs)
        p = params.declare(self, [
            ("checkpoint", "", "PLDM base-planner checkpoint (.pt) (required)"),
            ("rate_hz", 0.0, "replanning rate, Hz (node clock); 0: 1 / the checkpoint's action period"),
            ("publish_rate_hz", 20.0, "base velocity command rate, Hz (node clock)"),
            ("device", "cpu", "torch device of the planner: cpu, cuda, cuda:N"),
            ("threads", 1, "torch CPU threads; <= 0: torch's default"),
            ("position_tolerance", 0.15, "goal reached within this distance, m"),
            ("yaw_tolerance", 0.3, "goal reached within this heading error, rad"),
            ("odom_timeout", 0.5, "s without /odom before streaming zero velocity (stale)"),
            ("goal_timeout", 0.0, "s to reach a goal before stopping; 0: no limit"),
            ("horizon", 60, "MPPI horizon, steps of the checkpoint's action period"),
            ("samples", 256, "MPPI samples per iteration"),
            ("iterations", 3, "MPPI iterations per replanning"),
            ("seed", 0, "MPPI noise seed"),
        ])
        self.checkpoint = str(p["checkpoint"])
        self.planner = self._load(p)
        self.rate_hz = float(p["rate_hz"]) or 1.0 / float(self.planner.motion["dt"])
        self.publish_rate_hz = float(p["publish_rate_hz"])
        self.stale_timeout = float(p["odom_timeout"])
        self.goal_timeout = float(p["goal_timeout"])
        for name, value in (("rate_hz", self.rate_hz), ("publish_rate_hz", self.publish_rate_hz),
                            ("odom_timeout", self.stale_timeout)):
            if not value > 0:
                raise ConfigError(f"{name} must be > 0")
        from rl_agents.base_nav.agent import Tolerance

        self.tol = Tolerance(float(p["position_tolerance"]), float(p["yaw_tolerance"]))
        self.v_max = spec.MAX_VELOCITY[spec.group_slice("base")]

        self.pose: np.ndarray | None = None
        self.speed = 0.0  # base speed from /odom (m/s)
        self.input_times = {"odom": None}
        self.goal: np.ndarray | None = None
        self.goal_id = 0  # bumped by every new goal and cancel: a plan for an older one is dropped
        self.goal_time = 0.0
        self.v_world = np.zeros(3)
        self.resume_state = MOVING  # the state a stall interrupted
        self.goal_counted = False  # goals_reached already counts the current goal
        self.goals_received = self.goals_reached = self.plans = self.commands = 0
        self.plan_ms: deque[float] = deque(maxlen=100)

        self._open(hardware_id="pldm_base_planner", ticking=False)
        # MPPI runs on one worker thread that alone touches the planner; every ROS callback stays
        # on the single-threaded executor, so the command stream never waits for a plan (rclpy's
        # MultiThreadedExecutor starved the planning of the GIL: docs/base_planner.md, "The node")
        self._lock = threading.Lock()  # goal_id and v_world against the worker's results
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mppi")
        self._pending = None  # the plan in progress (a Future) or None
        self._planner_goal_id = -1  # worker thread: the goal the planner (and its warm start) is set to
        self.create_subscription(PoseStamped, topics.PLANNER_GOAL, self._on_goal, qos.COMMAND)
        self.create_service(Trigger, "~/cancel", self._on_cancel)
        self.create_timer(1.0 / self.rate_hz, self._plan)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        self.create_timer(1.0 / self.publish_rate_hz, self._publish)
        self._report(force=True)
        m = self.planner.mppi
        self.get_logger().info(
            f"PLDM base planner {self.checkpoint}: horizon {m.horizon} x {self.planner.motion['dt']:g} s, "
            f"{m.samples} samples x {m.iterations} iterations, replanning at {self.rate_hz:g} Hz; "
            f"goals on {topics.PLANNER_GOAL} -> {topics.whole_body_command(self.SOURCE)}")

    @staticmethod
    def _load(p):
        def load():
            from rl_agents.base_nav.agent import BasePlanner
            from rl_agents.base_nav.train import CheckpointError

            try:
                return BasePlanner.from_checkpoint(p["checkpoint"], str(p["device"]), seed=int(p["seed"]),
                                                   horizon=int(p["horizon"]),
                                                   samples=int(p["samples"]), iterations=int(p["iterations"]))
            except CheckpointError as exc:
                raise ConfigError(f"checkpoint: {exc}") from None

        return load_checkpoint(p["checkpoint"], load, what="a base-planner PLDM checkpoint", device=str(p["device"]),
                               threads=int(p["threads"]), example="ros2_ws/src/rl_agents/checkpoints/pldm_base.pt")

    # ------------------------------------------------------------------ inputs
    def _on_odom(self, msg: Odometry):
        pose = odom_pose(msg)
        if not np.all(np.isfinite(pose)):
            self.diag.reject("bad_odom", "NaN/inf pose")
            return
        self.pose = pose
        self.speed = math.hypot(msg.twist.twist.linear.x, msg.twist.twist.linear.y)
        self.input_times["odom"] = self._now()

    def _on_goal(self, msg: PoseStamped):
        frame = msg.header.frame_id
        if frame not in ("", spec.FRAMES["odom"]):
            self.diag.reject("wrong_frame", f"goal in frame {frame!r}; expected {spec.FRAMES['odom']!r}")
            return
        goal = np.array([msg.pose.position.x, msg.pose.position.y, quaternion_yaw(msg.pose.orientation)])
        if not np.all(np.isfinite(goal)):
            self.diag.reject("non_finite", "NaN/inf goal")
            return
        if (self.goal is not None and self.state in (MOVING, REACHED, STALE)
                and np.allclose(goal, self.goal, atol=1e-6)):
            return  # the same goal again (goals are re-sent until acknowledged): keep the plan
        with self._lock:
            self.goal = goal
            self.goal_id += 1
            self.v_world = np.zeros(3)
        self.goal_time = self._now()
        self.goals_received += 1
        self.goal_counted = False
        self.get_logger().info(f"goal ({goal[0]:.2f}, {goal[1]:.2f}, yaw {goal[2]:.2f})")
        self._set_state(MOVING)
        self._plan()

    def _on_cancel(self, request, response):
        with self._lock:
            self.goal = None
            self.goal_id += 1
        self._set_state(IDLE)
        self._publish_velocity(np.zeros(3))
        response.success, response.message = True, "goal cancelled, base stopped"
        return response

    # ------------------------------------------------------------------ loop
    def _set_state(self, state: str):
        """Only `moving` sends the planned velocity: any other state drops it."""
        with self._lock:
            changed, self.state = state != self.state, state
            if state != MOVING:
                self.v_world = np.zeros(3)
        if changed:
            self._report(force=True)

    def _distance(self) -> tuple[float, float]:
        if self.pose is None or self.goal is None:
            return math.nan, math.nan
        d = self.pose[:2] - self.goal[:2]
        return float(math.hypot(*d)), float(abs(wrap_angle(self.pose[2] - self.goal[2])))

    def _plan(self):
        """Replanning tick: state transitions; when moving, one MPPI plan for the worker thread."""
        if self.goal is None:
            return
        if not self._fresh(self._now()):
            if self.state != STALE and self.state != TIMEOUT:
                self.stale_events += 1
                self.get_logger().warning(f"no {topics.ODOM} for > {self.stale_timeout:g} s: stopping the base")
                self.resume_state = self.state if self.state in (MOVING, REACHED) else MOVING
                self._set_state(STALE)
            return
        if self.state == TIMEOUT:
            return
        dist, dyaw = self._distance()
        if self.state == STALE:
            self._set_state(self.resume_state)  # odometry is back
        if self.tol.reached(self.pose, self.goal):
            if self.state != REACHED:
                self.get_logger().info(f"goal reached: {dist:.3f} m, {dyaw:.3f} rad off")
            if not self.goal_counted:
                self.goals_reached += 1
                self.goal_counted = True
            self._set_state(REACHED)
            return
        if self.state == REACHED and ((dist <= 2 * self.tol.position and dyaw <= 2 * self.tol.yaw)
                                      or self.speed > BRAKING_SPEED):
            return  # hold: hysteresis against dithering at the border, and no replan while braking
        if self.goal_timeout > 0 and self._now() - self.goal_time > self.goal_timeout:
            self.get_logger().warning(f"goal not reached within {self.goal_timeout:g} s: stopping")
            self._set_state(TIMEOUT)
            return
        self._set_state(MOVING)
        if self._pending is None or self._pending.done():
            self._pending = self._worker.submit(self._mppi, self.goal_id, self.goal, self.pose.copy())

    def _mppi(self, goal_id: int, goal: np.ndarray, pose: np.ndarray):
        """Worker thread: one MPPI plan from `pose`; its first action becomes the velocity if the
        goal is still the one planned for."""
        try:
            if goal_id != self._planner_goal_id:
                self.planner.set_goal(goal)  # also resets the MPPI warm start
                self._planner_goal_id = goal_id
            seq = self.planner.plan(pose)
        except Exception as exc:  # never take the node down; count, report and stop
            self.get_logger().error(f"planning failed: {exc!r}")
            self.diag.reject("planning_error", repr(exc)[:200])
            v = np.zeros(3)
        else:
            self.plan_ms.append(self.planner.plan_ms[-1])
            del self.planner.plan_ms[:-1]
            self.plans += 1
            v = self.planner.velocity(seq[0])
        with self._lock:
            if goal_id == self.goal_id and self.state == MOVING:
                self.v_world = v

    def _publish_velocity(self, v_world: np.ndarray):
        v = to_base_frame(v_world, self.pose[2] if self.pose is not None else 0.0)
        v = np.clip(v, -self.v_max, self.v_max)
        self.pub.publish(base_command_msg(v, 1.0 / self.publish_rate_hz))
        self.commands += 1

    def _publish(self):
        if self.goal is not None:
            # stale odometry stops the base at once, not only at the next replanning tick
            moving = self.state == MOVING and self._fresh(self._now())
            self._publish_velocity(self.v_world if moving else np.zeros(3))
        self._report()

    def destroy_node(self):
        if hasattr(self, "_worker"):  # not on a config error: rclpy destroys the half-built node
            self._worker.shutdown(wait=True, cancel_futures=True)
        return super().destroy_node()

    def _status(self):
        dist, dyaw = self._distance()
        message = {IDLE: f"idle: waiting for a goal on {topics.PLANNER_GOAL}",
                   MOVING: f"moving: {dist:.2f} m to the goal", REACHED: f"at the goal ({dist:.2f} m)",
                   STALE: f"odometry stale (> {self.stale_timeout:g} s without {topics.ODOM}): base stopped",
                   TIMEOUT: f"goal not reached within {self.goal_timeout:g} s: base stopped"}[self.state]
        g = self.goal
        return message, {
            "goal": "none" if g is None else f"{g[0]:.3f} {g[1]:.3f} {g[2]:.3f}",
            "pose": "none" if self.pose is None else " ".join(f"{v:.3f}" for v in self.pose),
            "distance": f"{dist:.3f}", "yaw_error": f"{dyaw:.3f}",
            "goals_received": self.goals_received, "goals_reached": self.goals_reached,
            "plans": self.plans, "commands": self.commands, "stale_events": self.stale_events,
            **latency_stats("plan_ms", self.plan_ms, ("last", "p50")),
            "rate_hz": f"{self.rate_hz:g}", "checkpoint": self.checkpoint,
        }


def main(args=None):
    return run_node(PlannerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
