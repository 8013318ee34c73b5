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
    _seed: int | None = None  # the constructor's seed, for the first reset without one
    _first: bool = True

    def reset(self, seed: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def _reset_seed(self, seed: int | None) -> int | None:
        """The seed to reset with: `_seed` on the first reset when none is given, else `seed`."""
        if seed is None and self._first:
            seed = self._seed
        self._first = False
        return seed

    def step(self, action):
        """-> (obs, reward, terminated, truncated, info)."""
        raise NotImplementedError

    def close(self) -> None:
        pass
