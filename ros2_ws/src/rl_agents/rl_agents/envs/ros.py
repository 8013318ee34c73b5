"""`ros/<task>`: a ROS task (rl_agents/ros_tasks.py) in the lock-stepped sim graph (RosSimEnv),
behind the registry's Env interface. Each instance brings up its own sim + controller graph on
a private ROS domain; close() stops it."""

from __future__ import annotations

import numpy as np

from .base import Env


class RosEnv(Env):
    def __init__(self, task: str, seed: int = 0, **kwargs):
        from rl_agents.ros_env import RosSimEnv

        self.name = f"ros/{task}"
        self.env = RosSimEnv(task, seed=seed, **kwargs)
        self.obs_shape = self.env.observation_space.shape
        self.action_dim = int(self.env.action_space.shape[0])
        self.action_low = self.env.action_space.low.astype(np.float64)
        self.action_high = self.env.action_space.high.astype(np.float64)
        self.max_episode_steps = self.env.task.max_steps
        self._seed = seed

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._reset_seed(seed))
        return obs

    def step(self, action):
        return self.env.step(action)

    def close(self) -> None:
        self.env.close()
