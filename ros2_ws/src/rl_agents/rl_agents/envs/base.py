"""The common environment interface of rl_agents."""

from __future__ import annotations

import numpy as np


class Env:
    name: str = ""
    obs_shape: tuple = ()
    action_dim: int = 0
    discrete: bool = False
    pixel_obs: bool = False
    action_low: np.ndarray | None = None  # None for discrete
    action_high: np.ndarray | None = None
    max_episode_steps: int = 0

    def reset(self, seed: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def step(self, action):
        """-> (obs, reward, terminated, truncated, info)."""
        raise NotImplementedError

    def close(self) -> None:
        pass
