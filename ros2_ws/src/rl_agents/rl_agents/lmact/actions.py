"""Action spaces: how a model's answer becomes an action, and the replacement rule.

Parsing is tolerant of presentation, never of content: surrounding whitespace, quotes, backticks,
markdown emphasis, a trailing period, an "Action: ..." / "Action 3: ..." prefix (the text after the last one is
taken) and a code fence are removed, and only the first non-empty line counts. What remains must
name a legal action (exactly; else via the env's other spelling, e.g. chess SAN; else
case-insensitively when that match is unique).

Replacement rule (as in the LMAct paper): an answer that does not parse to a legal action is
counted as illegal and replaced by a uniformly random legal action (vector actions: uniform in
[low, high] per dimension), drawn from the episode's seeded `random.Random`.
"""

from __future__ import annotations

import math
import random
import re

import numpy as np

_PREFIX = re.compile(r"\baction(?:\s+\d+)?\s*[:=]", re.IGNORECASE)  # "Action:", "Action 3:"
_QUOTES = " \t\"'`*"
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.IGNORECASE)


def extract_answer(text: str | None) -> str:
    """The part of a model's reply that should name the action ("" when there is none)."""
    if not text:
        return ""
    text = text.replace("```", "\n")
    found = list(_PREFIX.finditer(text))
    if found:
        text = text[found[-1].end():]
    for line in text.splitlines():
        line = line.strip(_QUOTES).rstrip(".,;").strip(_QUOTES)
        if line:
            return " ".join(line.split())
    return ""


class DiscreteActions:
    """One of the env's legal action strings."""

    kind = "discrete"

    def parse(self, text: str | None, env) -> str | None:
        """The legal action the reply names, or None (illegal or unparsable)."""
        answer = extract_answer(text)
        if not answer:
            return None
        legal = env.legal_actions()
        if answer in legal:
            return answer
        other = env.canonical_action(answer)
        if other is not None and other in legal:
            return other
        folded = [a for a in legal if " ".join(a.split()).lower() == answer.lower()]
        return folded[0] if len(folded) == 1 else None

    def sample(self, rng: random.Random, env) -> str:
        return rng.choice(env.legal_actions())

    def format(self, action) -> str:
        return str(action)


class VectorActions:
    """n floats in [low, high], written as "a1, a2, ..." (brackets optional). A reply with the
    wrong count or a non-finite value is illegal; finite values outside the bounds are clipped."""

    kind = "vector"

    def __init__(self, n: int, low: float = -1.0, high: float = 1.0, decimals: int = 3):
        if n < 1 or not low < high:
            raise ValueError(f"bad vector action space: n={n}, [{low}, {high}]")
        self.n, self.low, self.high, self.decimals = n, low, high, decimals

    def parse(self, text: str | None, env=None) -> np.ndarray | None:
        values = [float(x) for x in _FLOAT.findall(extract_answer(text))]
        if len(values) != self.n or not all(math.isfinite(v) for v in values):
            return None
        return np.clip(np.asarray(values, np.float32), self.low, self.high)

    def sample(self, rng: random.Random, env=None) -> np.ndarray:
        return np.asarray([rng.uniform(self.low, self.high) for _ in range(self.n)], np.float32)

    def format(self, action) -> str:
        return ", ".join(f"{float(v):.{self.decimals}f}" for v in np.asarray(action).reshape(-1))


def act_or_replace(space, text: str | None, env, rng: random.Random) -> tuple[object, bool]:
    """(action, legal): the parsed action, or a random legal one (the replacement rule) and False."""
    action = space.parse(text, env)
    if action is None:
        return space.sample(rng, env), False
    return action, True
