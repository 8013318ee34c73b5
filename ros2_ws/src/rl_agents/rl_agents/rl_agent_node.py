"""RL agent node: a trained MR.Q policy acting in the graph (`brs bringup use_sim:=true mode:=rl
checkpoint:=...`; docs/mrq.md, "MR.Q in the ROS graph").

Inputs, goal, output and states: rl_agents/goal_agent.py (/joint_states + /odom + goal ->
/whole_body/rl/command at the task's agent rate; diagnostics component "rl_agent"). The
observation, the action -> command mapping and the success predicate are the task's
(rl_agents/ros_tasks.py), the same code RosSimEnv trains with; the policy acts at every tick,
also after the goal is reached (the task trains it to stay). Services (std_srvs/Trigger): ~/start
(the arm command restarts from the measured pose), ~/stop. A missing, unreadable or incompatible
checkpoint: exit code 2 with the reason.
"""

from __future__ import annotations

from brs_common.command_source import MISSING, PICKLED, load_checkpoint
from brs_common.node_main import ConfigError, run_node

from .goal_agent import GoalAgentNode

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


class RlAgentNode(GoalAgentNode):
    COMPONENT = "rl_agent"
    PARAMETERS = [
        ("checkpoint", "", "MR.Q checkpoint (.pt) to act with (required)"),
        ("device", "cpu", "torch device of the policy: cpu, cuda, cuda:N"),
        ("threads", 1, "torch CPU threads; <= 0: torch's default"),
    ]
    FIXED_PARAMETERS = ("checkpoint", "device", "threads")

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, hardware_id="mrq", **kwargs)
        self.get_logger().info(
            f"MR.Q agent {self.checkpoint}: task {self.task.name}, {self.rate_hz:g} Hz, target "
            f"{[round(float(v), 3) for v in self.target]} (odom), state {self.state} -> /whole_body/rl/command")

    def _load(self, p: dict) -> None:
        self.checkpoint = str(p["checkpoint"])
        self.policy = load_policy(self.checkpoint, self.task, str(p["device"]), int(p["threads"]))

    def _action(self, obs):
        return self.policy.act(obs, explore=False)

    def _status(self):
        return self._status_message(), {**self._goal_values(), "checkpoint": self.checkpoint}


def main(args=None):
    return run_node(RlAgentNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
