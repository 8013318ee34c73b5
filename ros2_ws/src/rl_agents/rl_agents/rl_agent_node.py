"""RL agent node: a trained MR.Q policy acting in the graph (`brs bringup use_sim:=true mode:=rl
checkpoint:=...`; docs/mrq.md, "MR.Q in the ROS graph").

Inputs: /joint_states, /odom, the goal. Output: whole-body commands on /whole_body/rl/command at
the task's agent rate (node clock). The observation, the action -> command mapping and the success
predicate are the task's (rl_agents/ros_tasks.py), the same code RosSimEnv trains with. Goal (task
`reach`: a point in odom for the right gripper): parameter `target` (settable at run time) or a
geometry_msgs/PointStamped on `~/goal` (frame odom or empty).

States (diagnostics component "rl_agent", key `state`): the command source's (brs_common.
command_source: idle; running, with `reached` latched at the goal; stale: no /joint_states or /odom
for `stale_timeout`, one hold command with the arm at its measured pose). Services
(std_srvs/Trigger): ~/start (the arm command restarts from the measured pose), ~/stop. A missing,
unreadable or incompatible checkpoint: exit code 2 with the reason.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PointStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import JointState

from brs_common import params, qos, topics
from brs_common.command_source import (IDLE, MISSING, PICKLED, RUNNING, STALE, CommandSource,
                                       load_checkpoint)
from brs_common.convert import odom_pose, state_positions
from brs_common.node_main import ConfigError, run_node

from .ros_tasks import TASKS, make_task

NODE_NAME = "rl_agent"
# anything else that fails: unpickling refused, truncated file, wrong keys or shapes ...
UNUSABLE = (Exception, "checkpoint {path} is not a usable MR.Q checkpoint: {type}: {reason:.300}")


def load_policy(path: str, task, device: str = "cpu", threads: int = 1):
    """An MRQAgent from a checkpoint (torch.load weights_only=True; the replay buffer of a training
    checkpoints/last.pt is left out), checked against the task."""
    def load():
        from .mrq.agent import MRQAgent

        return MRQAgent.load(path, device, config_overrides={"buffer_size": 64}, buffer=False)

    agent = load_checkpoint(path, load, what="a trained MR.Q policy", device=device, threads=threads,
                            example="ros2_ws/src/rl_agents/checkpoints/ros_reach_mrq.pt",
                            errors=(MISSING, PICKLED, UNUSABLE))
    if agent.obs_shape != (task.obs_dim,) or agent.action_dim != task.action_dim or agent.discrete:
        raise ConfigError(f"checkpoint {path} was trained for observations {agent.obs_shape} and "
                          f"{agent.action_dim} actions; task {task.name!r} has ({task.obs_dim},) and "
                          f"{task.action_dim}")
    return agent


class RlAgentNode(CommandSource):
    SOURCE, COMPONENT = "rl", "rl_agent"

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
        self._timing(float(p["rate_hz"]) or 1.0 / self.task.agent_period, float(p["stale_timeout"]))
        self.target = self._parse_target(p["target"])
        self.checkpoint = str(p["checkpoint"])
        self.policy = load_policy(self.checkpoint, self.task, str(p["device"]), int(p["threads"]))

        self.q = self.pose = None
        self.input_times = {"joint_states": None, "odom": None}
        self.arm_cmd = None  # None: restart from the next measured pose
        self.state = RUNNING if p["autostart"] else IDLE
        self.actions = 0
        self.distance = float("nan")
        self.reached = False

        self._open(hardware_id="mrq")
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.STATE)
        self.create_subscription(PointStamped, "~/goal", self._on_goal, qos.COMMAND)
        self.add_on_set_parameters_callback(self._on_set_parameters)
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
        self.reached = False
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
        obs = self.task.observation(self.q, self.pose, self.target, self.arm_cmd)
        self.arm_cmd = self.task.apply_action(self.arm_cmd, self.policy.act(obs, explore=False))
        self.pub.publish(self.task.command_msg(self.arm_cmd))
        self.actions += 1
        self.distance = self.task.distance(self.q, self.pose, self.target)
        self.reached = self.reached or self.task.success(self.distance)  # latched until a new goal / start

    def _status(self):
        message = {IDLE: "idle", STALE: f"inputs stale (> {self.stale_timeout:g} s): holding",
                   RUNNING: "running" + (": goal reached" if self.reached else "")}[self.state]
        return message, {
            "task": self.task.name, "actions": self.actions, "holds": self.holds,
            "stale_events": self.stale_events, "distance": f"{self.distance:.4f}", "reached": self.reached,
            "target": ",".join(f"{v:.4f}" for v in self.target), "checkpoint": self.checkpoint,
            "rate_hz": f"{self.rate_hz:g}",
        }


def main(args=None):
    return run_node(RlAgentNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
