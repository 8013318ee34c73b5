"""Gymnasium adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .base import Env


class GymEnv(Env):
    def __init__(self, env_id: str, seed: int = 0):
        self.name = f"gym/{env_id}"
        self.env = gym.make(env_id)
        space = self.env.action_space
        if isinstance(space, gym.spaces.Discrete):
            self.discrete, self.action_dim = True, int(space.n)
            self.action_low = self.action_high = None
        elif isinstance(space, gym.spaces.Box):
            self.discrete, self.action_dim = False, int(np.prod(space.shape))
            self.action_low = space.low.astype(np.float64).reshape(-1)
            self.action_high = space.high.astype(np.float64).reshape(-1)
        else:
            raise ValueError(f"{env_id}: unsupported action space {space}")
        self.obs_shape = (int(np.prod(self.env.observation_space.shape)),)
        self.max_episode_steps = int(self.env.spec.max_episode_steps or 0)
        self._seed = seed

    def reset(self, seed: int | None = None) -> np.ndarray:
        seed = self._reset_seed(seed)
        obs, _ = self.env.reset(seed=seed)
        if seed is not None:
            self.env.action_space.seed(seed)
        return np.asarray(obs, dtype=np.float32).reshape(-1)

    def step(self, action):
        if not self.discrete:
            action = np.asarray(action, dtype=np.float32).reshape(self.env.action_space.shape)
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.asarray(obs, dtype=np.float32).reshape(-1), float(reward), bool(terminated), bool(truncated), info

    def close(self) -> None:
        self.env.close()
