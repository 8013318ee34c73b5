"""The model interface of the harness, and the baselines that need no model.

A model gets a `Query` per action and returns a `Reply` (its raw text; the harness parses it and
applies the replacement rule). Language-model back-ends read `query.prompt.messages`; the
baselines read the structured fields, so every model runs through the identical loop:

- `random`: a uniformly random legal action (its own seeded stream per episode);
- `expert`: the env's expert (the normalisation's upper reference, through the harness);
- `nn`: in-context nearest neighbour: among the demonstrations in the prompt (the same k), the
  observation closest to the current one (text: Hamming distance of the ASCII renderings,
  characters beyond the shorter one count as different; vectors and images: L2), and replays its
  action; with no demos, or when that action is illegal now, the reply is not a legal action
  and the replacement rule applies (counted as illegal).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from .prompt import Prompt


@dataclass
class Query:
    prompt: Prompt  # the chat messages (with prompt.num_demos demonstrations)
    observation: Any  # the current observation rendered in the run's format (str or ndarray)
    # every recorded demo, rendered like `observation`, and its actions; the prompt holds the
    # first prompt.num_demos of them (the nested demo sets of the run)
    demo_observations: Sequence[Sequence[Any]]
    demo_actions: Sequence[Sequence[str]]
    legal_actions: list[str]
    env: Any  # the live env (the expert baseline asks it)
    step: int  # 0-based action index in the episode


class BackendError(RuntimeError):
    """A model back-end failed (e.g. the endpoint, after its retries): the run stops, resumable."""


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Model(Protocol):
    name: str
    max_context_tokens: int | None  # None: no budget check
    max_output_tokens: int  # reserved out of the budget

    def reset(self, seed: int) -> None:
        """A new episode (seed: the episode seed, for models with randomness)."""

    def act(self, query: Query) -> Reply: ...


class RandomModel:
    name = "random"
    max_context_tokens = None
    max_output_tokens = 0

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def reset(self, seed: int) -> None:
        self.rng = random.Random(f"random-model-{seed}")

    def act(self, query: Query) -> Reply:
        space = query.env.action_space
        return Reply(space.format(space.sample(self.rng, query.env)))


class ExpertModel:
    name = "expert"
    max_context_tokens = None
    max_output_tokens = 0

    def reset(self, seed: int) -> None:
        pass

    def act(self, query: Query) -> Reply:
        return Reply(query.env.action_space.format(query.env.expert()))


def _features(rendered: Sequence[Any]) -> np.ndarray:
    """Rows to compare: text as padded byte codes, arrays flattened (float32)."""
    if rendered and isinstance(rendered[0], str):
        codes = [np.frombuffer(s.encode("utf-8", "replace"), np.uint8) for s in rendered]
        out = np.zeros((len(codes), max(map(len, codes))), np.uint8)
        for i, c in enumerate(codes):
            out[i, :len(c)] = c
        return out
    return np.stack([np.asarray(r, np.float32).reshape(-1) for r in rendered])


class NearestNeighbourModel:
    name = "nn"
    max_context_tokens = None
    max_output_tokens = 0

    def __init__(self) -> None:
        self._source: Sequence | None = None  # the demo list the index was built from (held: `is` stays valid)
        self._rows = np.zeros((0, 0))
        self._ends: list[int] = [0]  # rows of the first k demos: _rows[:_ends[k]]
        self._actions: list[str] = []

    def reset(self, seed: int) -> None:
        pass

    def _index(self, query: Query) -> tuple[np.ndarray, list[str]]:
        """Feature rows and actions of the demos in the prompt; built once per demo list."""
        if self._source is not query.demo_observations:
            obs = [o for ep in query.demo_observations for o in ep]
            self._rows = _features(obs) if obs else np.zeros((0, 0))
            self._ends = [0]
            for ep in query.demo_observations:
                self._ends.append(self._ends[-1] + len(ep))
            self._actions = [a for ep in query.demo_actions for a in ep]
            self._source = query.demo_observations
        end = self._ends[query.prompt.num_demos]
        return self._rows[:end], self._actions[:end]

    def act(self, query: Query) -> Reply:
        rows, actions = self._index(query)
        if not len(rows):
            return Reply("")
        cur = query.observation
        if isinstance(cur, str):
            c = np.frombuffer(cur.encode("utf-8", "replace"), np.uint8)
            width = rows.shape[1]
            padded = np.zeros(width, np.uint8)
            padded[:min(width, len(c))] = c[:width]
            dist = (rows != padded).sum(1) + max(0, len(c) - width)
        else:
            dist = ((rows - np.asarray(cur, np.float32).reshape(1, -1)) ** 2).sum(1)
        return Reply(actions[int(np.argmin(dist))])  # ties: the earliest demo step
