"""RL agent node: a trained MR.Q policy acting in the graph (`brs bringup use_sim:=true mode:=rl
checkpoint:=...`).

Inputs: /joint_states, /odom, the goal. Output: whole-body commands on /whole_body/rl/command at
the task's agent rate (10 Hz for `reach`; node clock = sim time in sim). The observation, the
action -> command mapping and the success predicate are the task's (rl_agents/ros_tasks.py), the
same code RosSimEnv trains with.

Goal (task `reach`: a point in the odom frame for the right gripper): parameter `target`
([x, y, z], settable at run time with `ros2 param set`) or a geometry_msgs/PointStamped on
`~/goal` (frame odom; an empty frame_id counts as odom).

States (diagnostics component "rl_agent", key `state`):
  idle     publishes nothing (the controller's watchdog holds the robot)
  running  acts every agent period on the latest /joint_states + /odom
  stale    no /joint_states or /odom for `stale_timeout` (node clock): one hold command (arm at
           its measured pose, everything else at home, base at rest) was sent, no actions until
           both are fresh again (then running, with the arm command restarted from the measured pose)
  (running, with `reached`: the gripper came within the task's success radius of the current goal
   at an agent tick; latched until a new goal or ~/start; the policy keeps acting)
Services (std_srvs/Trigger): ~/start (the arm command restarts from the next measured pose;
running), ~/stop (idle). Parameter `autostart` starts running at once.

A missing, unreadable or incompatible checkpoint is a configuration error: exit code 2 with the
reason (brs_common.node_main.run_node).
"""

from __future__ import annotations

import pickle

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PointStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from brs_common import params, qos, topics
from brs_common.convert import odom_pose, state_positions
from brs_common.diagnostics import DiagnosticsReporter
from brs_common.node_main import ConfigError, run_node

from .ros_tasks import TASKS, make_task

NODE_NAME = "rl_agent"
IDLE, RUNNING, STALE = "idle", "running", "stale"


def load_policy(path: str, task, device: str = "cpu", threads: int = 1):
    """An MRQAgent from a checkpoint (torch.load weights_only=True), checked against the task."""
    if not path:
        raise ConfigError("parameter `checkpoint` is empty: give a trained MR.Q policy, e.g. "
                          "checkpoint:=ros2_ws/src/rl_agents/checkpoints/ros_reach_mrq.pt")
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    try:
        agent = _load_agent(torch, path, device)
    except FileNotFoundError:
        raise ConfigError(f"checkpoint {path}: no such file") from None
    except pickle.UnpicklingError:
        raise ConfigError(f"checkpoint {path} is not a weights-only torch checkpoint (refused: no pickle "
                          "from files)") from None
    except Exception as exc:  # unpickling refused, truncated file, wrong keys or shapes ...
        raise ConfigError(f"checkpoint {path} is not a usable MR.Q checkpoint: {type(exc).__name__}: "
                          f"{str(exc)[:300]}") from None
    if agent.obs_shape != (task.obs_dim,) or agent.action_dim != task.action_dim or agent.discrete:
        raise ConfigError(f"checkpoint {path} was trained for observations {agent.obs_shape} and "
                          f"{agent.action_dim} actions; task {task.name!r} has ({task.obs_dim},) and "
                          f"{task.action_dim}")
    return agent


def _load_agent(torch, path: str, device: str):
    """MRQAgent.load without the replay buffer (a training checkpoints/last.pt carries one)."""
    from .mrq.agent import MRQAgent
    from .mrq.config import MRQConfig

    d = torch.load(path, map_location="cpu", weights_only=True)
    d.pop("buffer", None)
    m = d["meta"]
    cfg = MRQConfig.from_dict({**d["config"], "buffer_size": 64})
    agent = MRQAgent(tuple(m["obs_shape"]), m["action_dim"], discrete=m["discrete"], pixel_obs=m["pixel_obs"],
                     action_low=m["action_low"].numpy(), action_high=m["action_high"].numpy(), config=cfg,
                     device=device, seed=m["seed"])
    agent.load_state_dict(d)
    return agent


class RlAgentNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = params.declare(self, [
            ("checkpoint", "", "MR.Q checkpoint (.pt) to act with (required)"),
            ("task", "reach", f"ROS task the checkpoint was trained on: {', '.join(TASKS)}"),
            ("target", [0.0], "goal [x, y, z] of the right gripper, m in odom; [0.0]: 10 cm ahead of "
                              "home; settable at run time"),
            ("rate_hz", 0.0, "agent rate, Hz (node clock); 0: the task's agent rate"),
            ("stale_timeout", 0.3, "s (node clock) without /joint_states or /odom before holding"),
            ("autostart", True, "start running at once (false: idle until ~/start)"),
            ("device", "cpu", "torch device of the policy: cpu, cuda, cuda:N"),
            ("threads", 1, "torch CPU threads; <= 0: torch's default"),
        ])
        if p["task"] not in TASKS:
            raise ConfigError(f"unknown task {p['task']!r}; known: {', '.join(TASKS)}")
        self.task = make_task(p["task"])
        self.rate_hz = float(p["rate_hz"]) or 1.0 / self.task.agent_period
        self.stale_timeout = float(p["stale_timeout"])
        if not self.rate_hz > 0 or not self.stale_timeout > 0:
            raise ConfigError(f"rate_hz ({self.rate_hz}) and stale_timeout ({self.stale_timeout}) must be > 0")
        self.target = self._parse_target(p["target"])
        self.checkpoint = str(p["checkpoint"])
        self.agent = load_policy(self.checkpoint, self.task, str(p["device"]), int(p["threads"]))

        self.q = self.pose = None
        self.q_time = self.pose_time = None  # node clock at receipt
        self.arm_cmd = None  # None: restart from the next measured pose
        self.state = RUNNING if p["autostart"] else IDLE
        self.actions = self.holds = self.stale_events = 0
        self.distance = float("nan")
        self.reached = False

        self.diag = DiagnosticsReporter(self, hardware_id="mrq")
        self.pub = self.create_publisher(JointTrajectory, topics.whole_body_command("rl"), qos.COMMAND)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        self.create_subscription(PointStamped, "~/goal", self._on_goal, qos.COMMAND)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(1.0 / self.rate_hz, self._tick)
        self._report(force=True)
        self.get_logger().info(
            f"MR.Q agent {self.checkpoint}: task {self.task.name}, {self.rate_hz:g} Hz, target "
            f"{np.round(self.target, 3).tolist() if self.target is not None else 'none'} (odom), "
            f"state {self.state} -> {topics.whole_body_command('rl')}")

    # ------------------------------------------------------------------ goal
    def _parse_target(self, value):
        v = np.asarray(list(value), dtype=np.float64)
        if v.size == 1:  # the default [0.0]: the task's default goal, 10 cm ahead of home
            return self.task.home_ee + np.array([0.1, 0.0, 0.05])
        if v.shape != (3,) or not np.all(np.isfinite(v)):
            raise ConfigError(f"target must be [x, y, z] in the odom frame, got {list(value)}")
        return v

    def _on_set_parameters(self, params):
        for prm in params:
            if prm.name == "target":
                try:
                    self.target = self._parse_target(prm.value)
                except ConfigError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
                self.reached = False
            elif prm.name in ("checkpoint", "task", "rate_hz", "device", "threads"):
                return SetParametersResult(successful=False, reason=f"{prm.name} is fixed at startup")
        return SetParametersResult(successful=True)

    def _on_goal(self, msg: PointStamped):
        v = np.array([msg.point.x, msg.point.y, msg.point.z])
        if msg.header.frame_id not in ("", "odom") or not np.all(np.isfinite(v)):
            self.diag.reject("bad_goal", f"goal must be finite and in frame odom (got {msg.header.frame_id!r})")
            return
        self.target = v
        self.reached = False

    # ------------------------------------------------------------------ inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_states(self, msg: JointState):
        try:
            self.q = state_positions(msg)
        except ValueError as exc:
            self.diag.reject("bad_joint_state", str(exc)[:200])
            return
        self.q_time = self._now()

    def _on_odom(self, msg: Odometry):
        pose = odom_pose(msg)
        if not np.all(np.isfinite(pose)):
            self.diag.reject("bad_odom", "NaN/inf pose")
            return
        self.pose, self.pose_time = pose, self._now()

    def _on_start(self, request, response):
        self.arm_cmd = None
        self.reached = False
        self._set_state(RUNNING)
        response.success = True
        response.message = f"running; target {np.round(self.target, 4).tolist()}"
        return response

    def _on_stop(self, request, response):
        self._set_state(IDLE)
        response.success, response.message = True, "idle"
        return response

    def _set_state(self, state: str):
        if state != self.state:
            self.state = state
            self._report(force=True)

    # ------------------------------------------------------------------ loop
    def _fresh(self, now: float) -> bool:
        return (self.q_time is not None and self.pose_time is not None
                and now - self.q_time <= self.stale_timeout and now - self.pose_time <= self.stale_timeout)

    def _tick(self):
        now = self._now()
        if self.state == IDLE:
            self._report()
            return
        if not self._fresh(now):
            if self.state == RUNNING and self.q is not None:  # had inputs, lost them: hold once
                self.stale_events += 1
                self.holds += 1
                self.pub.publish(self.task.command_msg(self.task.initial_command(self.q)))
                self.get_logger().warning(f"/joint_states or /odom older than {self.stale_timeout:g} s: "
                                          "holding, no actions")
                self.arm_cmd = None
                self._set_state(STALE)
            self._report()
            return
        if self.state == STALE:
            self.get_logger().info("inputs are back: acting again")
            self._set_state(RUNNING)
        if self.arm_cmd is None:
            self.arm_cmd = self.task.initial_command(self.q)
        obs = self.task.observation(self.q, self.pose, self.target, self.arm_cmd)
        action = self.agent.act(obs, explore=False)
        self.arm_cmd = self.task.apply_action(self.arm_cmd, action)
        self.pub.publish(self.task.command_msg(self.arm_cmd))
        self.actions += 1
        self.distance = self.task.distance(self.q, self.pose, self.target)
        self.reached = self.reached or self.task.success(self.distance)  # latched until a new goal / start
        self._report()

    def _report(self, force: bool = False):
        level = DiagnosticStatus.WARN if self.state == STALE else DiagnosticStatus.OK
        message = {IDLE: "idle", STALE: f"inputs stale (> {self.stale_timeout:g} s): holding",
                   RUNNING: "running" + (": goal reached" if self.reached else "")}[self.state]
        self.diag.set_status("rl_agent", level, message, {
            "state": self.state, "task": self.task.name, "actions": self.actions, "holds": self.holds,
            "stale_events": self.stale_events, "distance": f"{self.distance:.4f}", "reached": self.reached,
            "target": ",".join(f"{v:.4f}" for v in self.target), "checkpoint": self.checkpoint,
            "rate_hz": f"{self.rate_hz:g}",
        })
        if force:
            self.diag.publish()


def main(args=None):
    return run_node(RlAgentNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
