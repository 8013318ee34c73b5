"""The environment interface of the LMAct harness.

An environment is a turn-based episode the model acts in, one action per call:

- `reset(seed) -> obs`, `legal_actions() -> [str]`, `step(action) -> (obs, reward, done)`;
  the same seed always gives the same episode (opponent moves, maps and puzzles included);
- `render(obs, fmt)` for each format in `formats`: "text" (an ASCII string), "rgb" (numpy uint8
  H x W x 3) and "vector" (numpy float32, 1-D); obs objects are immutable snapshots, so a
  recorded episode can be rendered in any format later;
- `action_space`: how the model writes an action and how its answer is parsed
  (`actions.DiscreteActions`: one of `legal_actions()`; `actions.VectorActions`: n floats in
  [-1, 1], for continuous-control tasks);
- `expert(state=None)`: the expert's action in `state` (default: the current state).

Scores: the episode's return (sum of rewards); `success` says whether the episode counts as solved
(for the Wilson intervals of success rates).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

FORMATS = ("text", "rgb", "vector")


class Env(ABC):
    name: str = ""  # registry name (envs.ENVS)
    title: str = ""  # what the system prompt calls the task, e.g. "tic-tac-toe"
    formats: tuple[str, ...] = ("text",)  # observation formats this env renders
    max_steps: int = 100  # agent actions per episode at most (the episode is cut there)

    @property
    @abstractmethod
    def action_space(self):
        """An `actions.DiscreteActions` or `actions.VectorActions`."""

    @abstractmethod
    def instructions(self) -> str:
        """The task and the action format, for the system prompt (no per-episode content)."""

    @abstractmethod
    def reset(self, seed: int) -> Any:
        """Start the episode of `seed`; -> its first observation."""

    @abstractmethod
    def legal_actions(self) -> list[str]:
        """The actions allowed now, as the strings a model must write (empty for vector actions)."""

    @abstractmethod
    def step(self, action) -> tuple[Any, float, bool]:
        """Apply a legal action (a string, or an array for vector actions); -> (obs, reward, done)."""

    @abstractmethod
    def state(self) -> Any:
        """A snapshot of the current state that `expert` accepts."""

    @abstractmethod
    def expert(self, state: Any = None) -> str:
        """The expert's action in `state` (default: now), as an action string."""

    @property
    def success(self) -> bool:
        """Whether the episode so far counts as solved."""
        return False

    def render_text(self, obs) -> str:
        raise NotImplementedError(f"{self.name} has no text observations")

    def render_rgb(self, obs) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no image observations")

    def render_vector(self, obs) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no vector observations")

    def render(self, obs, fmt: str):
        if fmt not in self.formats:
            raise ValueError(f"{self.name} renders {', '.join(self.formats)} observations, not {fmt!r}")
        return {"text": self.render_text, "rgb": self.render_rgb, "vector": self.render_vector}[fmt](obs)

    def canonical_action(self, text: str) -> str | None:
        """Another spelling of a legal action (e.g. chess SAN for UCI) -> the legal string, else None."""
        return None

    def close(self) -> None:
        """Release external resources (engines, simulators)."""
