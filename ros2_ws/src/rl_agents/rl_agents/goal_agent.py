"""What the agent nodes that reach a goal with the robot share (rl_agent_node: an MR.Q policy;
lmact_agent_node: a model imitating demos in its context): the ROS task (rl_agents/ros_tasks.py:
observation, action -> whole-body command, success), the goal, the inputs and the stale hold.

Inputs: /joint_states, /odom, the goal: parameter `target` (settable at run time) or a
geometry_msgs/PointStamped on `~/goal` (frame odom or empty). Output: whole-body commands on
/whole_body/rl/command. States (diagnostics key `state`): the command source's
(brs_common.command_source: idle; running, with `reached` latched at the goal until a new goal
or ~/start; stale: no /joint_states or /odom for `stale_timeout`, one hold command with the arm at
its measured pose). A subclass loads what acts (`_load`) and turns an observation into an action
(`_action`, None: no action this tick).
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PointStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import JointState

from brs_common import params, qos, topics
from brs_common.command_source import IDLE, RUNNING, STALE, CommandSource
from brs_common.convert import odom_pose, state_positions
from brs_common.node_main import ConfigError

from .ros_tasks import TASKS, make_task

COMMON_PARAMETERS = [
    ("task", "reach", f"ROS task to act on: {', '.join(TASKS)}"),
    ("target", [0.0], "goal [x, y, z] of the right gripper, m in odom; [0.0]: 10 cm ahead of "
                      "home; settable at run time"),
    ("rate_hz", 0.0, "agent rate, Hz (node clock); 0: the task's agent rate"),
    ("stale_timeout", 0.3, "s (node clock) without /joint_states or /odom before holding"),
    ("autostart", True, "start running at once (false: idle until ~/start)"),
]
FIXED = ("task", "rate_hz")  # parameters read once at startup (subclasses add theirs)


class GoalAgentNode(CommandSource):
    SOURCE = "rl"
    PARAMETERS: list = []  # the subclass's own (name, default, description)
    FIXED_PARAMETERS: tuple = ()

    def __init__(self, node_name: str, hardware_id: str, **kwargs):
        super().__init__(node_name, **kwargs)
        p = params.declare(self, COMMON_PARAMETERS + self.PARAMETERS)
        if p["task"] not in TASKS:
            raise ConfigError(f"unknown task {p['task']!r}; known: {', '.join(TASKS)}")
        self.task = make_task(p["task"])
        self._timing(float(p["rate_hz"]) or 1.0 / self.task.agent_period, float(p["stale_timeout"]))
        self.target = self._parse_target(p["target"])
        self._load(p)

        self.q = self.pose = None
        self.input_times = {"joint_states": None, "odom": None}
        self.arm_cmd = None  # None: restart from the next measured pose
        self.state = RUNNING if p["autostart"] else IDLE
        self.actions = 0
        self.distance = float("nan")
        self.reached = False

        self._open(hardware_id=hardware_id)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        self.create_subscription(PointStamped, "~/goal", self._on_goal, qos.COMMAND)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._report(force=True)

    def _load(self, p: dict) -> None:
        """Load what acts from the parameters `p`; ConfigError (exit code 2) when it cannot."""
        raise NotImplementedError

    def _action(self, obs: np.ndarray):
        """The task action for observation `obs`, or None for no action this tick."""
        raise NotImplementedError

    def _new_goal(self) -> None:
        """A new goal or ~/start: the run so far is over."""
        self.reached = False

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
                self._new_goal()
            elif prm.name in FIXED + self.FIXED_PARAMETERS:
                return SetParametersResult(successful=False, reason=f"{prm.name} is fixed at startup")
        return SetParametersResult(successful=True)

    def _on_goal(self, msg: PointStamped):
        v = np.array([msg.point.x, msg.point.y, msg.point.z])
        if msg.header.frame_id not in ("", "odom") or not np.all(np.isfinite(v)):
            self.diag.reject("bad_goal", f"goal must be finite and in frame odom (got {msg.header.frame_id!r})")
            return
        self.target = v
        self._new_goal()

    # ------------------------------------------------------------------ inputs
    def _on_joint_states(self, msg: JointState):
        try:
            self.q = state_positions(msg)
        except ValueError as exc:
            self.diag.reject("bad_joint_state", str(exc)[:200])
            return
        self.input_times["joint_states"] = self._now()

    def _on_odom(self, msg: Odometry):
        pose = odom_pose(msg)
        if not np.all(np.isfinite(pose)):
            self.diag.reject("bad_odom", "NaN/inf pose")
            return
        self.pose, self.input_times["odom"] = pose, self._now()

    # ------------------------------------------------------------------ run
    def _start(self) -> str:
        self.arm_cmd = None
        self._new_goal()
        return f"running; target {np.round(self.target, 4).tolist()}"

    def _hold_command(self):
        """The arm at its measured pose, everything else at home, base at rest (once inputs came)."""
        return None if self.q is None else self.task.command_msg(self.task.initial_command(self.q))

    def _stalled(self, now: float) -> str:
        self.arm_cmd = None  # restarts from the measured pose when the inputs are back
        return f"/joint_states or /odom older than {self.stale_timeout:g} s: holding, no actions"

    def _step(self, now: float):
        if self.arm_cmd is None:
            self.arm_cmd = self.task.initial_command(self.q)
        self.distance = self.task.distance(self.q, self.pose, self.target)
        self.reached = self.reached or self.task.success(self.distance)  # latched until a new goal / start
        action = self._action(self.task.observation(self.q, self.pose, self.target, self.arm_cmd))
        if action is None:
            return
        self.arm_cmd = self.task.apply_action(self.arm_cmd, action)
        self.pub.publish(self.task.command_msg(self.arm_cmd))
        self.actions += 1

    def _status_message(self) -> str:
        return {IDLE: "idle", STALE: f"inputs stale (> {self.stale_timeout:g} s): holding",
                RUNNING: "running" + (": goal reached" if self.reached else "")}[self.state]

    def _goal_values(self) -> dict:
        return {"task": self.task.name, "actions": self.actions, "holds": self.holds,
                "stale_events": self.stale_events, "distance": f"{self.distance:.4f}", "reached": self.reached,
                "target": ",".join(f"{v:.4f}" for v in self.target), "rate_hz": f"{self.rate_hz:g}"}
