"""The robot: reach a point with the right gripper, through the whole-body controller in the sim
graph (rl_agents.ros_env.RosSimEnv, task `reach`), lock-stepped with the sim so a model that
takes seconds per answer sees the same episode as one that takes microseconds.

Observation (snapshot after each agent step, 0.1 s of sim): the gripper and the target in the
robot's base frame and the task's 21-D vector (arm joints, commanded - measured, gripper, target,
target - gripper). Action: three numbers in [-1, 1], the gripper's Cartesian step in the base
frame (x forward, y left, z up) as a fraction of 3 cm; the task turns it into a damped IK step of
the arm command. Reward: the task's (progress toward the target in units of a full step, plus a
hold bonus inside 5 cm). An episode here ends at the first step within 5 cm (success) or at the
task's time limit; the RL task itself runs on to the limit so that MR.Q learns to stay. The expert steps
straight at the target, a full step while it is farther than one: the shortest path the step
size allows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..actions import VectorActions
from ..env import Env


class ReachObs(NamedTuple):
    gripper: tuple[float, float, float]  # m, base frame
    target: tuple[float, float, float]
    vector: tuple[float, ...]  # the task's observation (ros_tasks.ReachTask.observation)


class RobotReach(Env):
    name = "robot_reach"
    title = "robot arm reaching (BRS sim, whole-body controller)"
    formats = ("text", "vector")
    _space = VectorActions(3)

    def __init__(self, domain_id: int | None = None, env=None):
        """`env`: a RosSimEnv to use (and close) instead of starting a graph on the first reset."""
        from ...ros_tasks import make_task

        self.task = make_task("reach")
        self.max_steps = self.task.max_steps
        self._env, self._domain_id = env, domain_id
        self.obs: ReachObs | None = None
        self.distance = float("inf")

    @property
    def action_space(self):
        return self._space

    def instructions(self) -> str:
        return ("You control the right arm of a mobile robot in a simulator. Each turn, move its gripper "
                "toward the target point. Positions are in metres in the robot's base frame: x forward, "
                "y left, z up. An action is three numbers in [-1, 1], the step of the gripper along x, "
                "y and z as a fraction of 3 cm, e.g. `0.5, -1.0, 0.2`. The episode succeeds when the "
                f"gripper is within 5 cm of the target; at most {self.max_steps} steps.")

    def _sim(self):
        if self._env is None:
            from ...ros_env import RosSimEnv

            self._env = RosSimEnv("reach", domain_id=self._domain_id)
        return self._env

    def from_vector(self, vector) -> ReachObs:
        """The observation of the task's 21-D vector (ReachTask.observation: arm (6), command - arm
        (6), gripper (3), target (3), target - gripper (3))."""
        v = np.asarray(vector, np.float64)
        if v.shape != (self.task.obs_dim,) or not np.all(np.isfinite(v)):
            raise ValueError(f"expected {self.task.obs_dim} finite numbers, got shape {v.shape}")
        return ReachObs(tuple(np.round(v[12:15], 4)), tuple(np.round(v[15:18], 4)), tuple(float(x) for x in v))

    def reset(self, seed: int) -> ReachObs:
        vector, info = self._sim().reset(seed=int(seed))
        self.distance = float(info["distance"])
        self.obs = self.from_vector(vector)
        return self.obs

    def legal_actions(self) -> list[str]:
        return []

    def step(self, action) -> tuple[ReachObs, float, bool]:
        vector, reward, _, truncated, info = self._sim().step(np.asarray(action, np.float32).reshape(3))
        self.distance = float(info["distance"])
        self.obs = self.from_vector(vector)
        return self.obs, float(reward), bool(info["success"] or truncated)

    def state(self) -> ReachObs:
        return self.obs

    def expert(self, state: ReachObs | None = None) -> np.ndarray:
        obs = self.obs if state is None else state
        delta = np.subtract(obs.target, obs.gripper) / self.task.step_size
        norm = float(np.linalg.norm(delta))
        return np.asarray(delta / norm if norm > 1.0 else delta, np.float32)  # a full step toward it

    @property
    def success(self) -> bool:
        return self.task.success(self.distance)

    def render_text(self, obs: ReachObs) -> str:
        g, t = np.asarray(obs.gripper), np.asarray(obs.target)
        d = t - g
        return (f"gripper at ({g[0]:+.3f}, {g[1]:+.3f}, {g[2]:+.3f}) m; target at ({t[0]:+.3f}, {t[1]:+.3f}, "
                f"{t[2]:+.3f}) m; target - gripper = ({d[0]:+.3f}, {d[1]:+.3f}, {d[2]:+.3f}) m, "
                f"distance {np.linalg.norm(d):.3f} m")

    def render_vector(self, obs: ReachObs) -> np.ndarray:
        return np.asarray(obs.vector, np.float32)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
