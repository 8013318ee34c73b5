"""Prompts: OpenAI-style chat messages with k demonstrations, the episode so far and the observation.

Layout (one system and one user message):

  system: the task (env.instructions()), that expert demonstrations follow, and
          "Answer with one action only ..."
  user:   Here are k expert demonstration episodes.
          Demonstration 1:
          Observation 1:
          <obs>
          Action 1: <action>
          ...
          Current episode:
          Observation 1: <obs>  Action 1: <action taken> ... (the episode's history)
          Observation t:
          <current obs>
          Action t:

Observations are text (ASCII), vectors (printed as a list of numbers) or RGB images; images go
as `image_url` content parts with PNG data URLs, so an image prompt's user content is a list of
parts, a text prompt's a string.

`build_messages` is the reference (it renders everything on every call); `PromptBuilder` gives
the same messages, rendering each demo once and each episode step once (the harness's hot path).

Token estimate (for the context budget): ceil(characters / 4) of the text, `image_tokens` per
image (default 300) and 4 per message. It is a rough guide, not a tokenizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .demos import Episode
from .images import data_url

IMAGE_TOKENS = 300
MESSAGE_TOKENS = 4

Part = dict  # an OpenAI content part: {"type": "text", "text": ...} or {"type": "image_url", "image_url": {"url": ...}}


def text_part(text: str) -> Part:
    return {"type": "text", "text": text}


def image_part(url: str) -> Part:
    return {"type": "image_url", "image_url": {"url": url}}


class ContextBudgetError(ValueError):
    """The prompt does not fit the model's context budget."""


@dataclass
class Prompt:
    messages: list[dict]
    est_tokens: int
    num_demos: int  # demonstrations in this prompt (fewer than asked when the budget cut them)


def system_message(env) -> str:
    return (f"You act in {env.title}. {env.instructions()}\n"
            "You are shown expert demonstrations (whole episodes played by an expert), then the current "
            "episode so far. Choose the next action of the current episode. Answer with one action only, "
            "written exactly like the demonstrated actions, and nothing else.")


def format_vector(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in np.asarray(v).reshape(-1)) + "]"


def render_parts(env, obs, fmt: str) -> tuple[Any, list[Part]]:
    """(the raw rendering, its prompt parts)."""
    r = env.render(obs, fmt)
    if fmt == "rgb":
        return r, [image_part(data_url(r))]
    return r, [text_part(format_vector(r) if fmt == "vector" else r)]


def _step(t: int, obs_parts: list[Part], action: str) -> list[Part]:
    return [text_part(f"Observation {t}:\n"), *obs_parts, text_part(f"\nAction {t}: {action}\n")]


def _current(t: int, obs_parts: list[Part]) -> list[Part]:
    return [text_part(f"Observation {t}:\n"), *obs_parts, text_part(f"\nAction {t}:")]


def _header(k: int) -> Part:
    if k == 0:
        return text_part("There are no demonstrations.\n")
    return text_part(f"Here {'is 1 expert demonstration episode' if k == 1 else f'are {k} expert demonstration episodes'}.\n")


def _demo_title(i: int) -> Part:
    return text_part(f"\nDemonstration {i}:\n")


CURRENT_TITLE: Part = text_part("\nCurrent episode:\n")


def merge(parts: Sequence[Part]) -> list[Part]:
    """Adjacent text parts joined (into new dicts: parts are shared between prompts, never mutated)."""
    out: list[Part] = []
    for part in parts:
        if part["type"] == "text" and out and out[-1]["type"] == "text":
            out[-1] = text_part(out[-1]["text"] + part["text"])
        else:
            out.append(part)
    return out


def concat(*merged: Sequence[Part]) -> list[Part]:
    """Already merged part lists joined (only the joints are merged): cheap for long lists."""
    out: list[Part] = []
    for seq in merged:
        if seq and out and out[-1]["type"] == "text" and seq[0]["type"] == "text":
            out[-1] = text_part(out[-1]["text"] + seq[0]["text"])
            out.extend(seq[1:])
        else:
            out.extend(seq)
    return out


def _cost(parts: Sequence[Part]) -> tuple[int, int]:
    """(text characters, images)."""
    return sum(len(p["text"]) for p in parts if p["type"] == "text"), sum(p["type"] == "image_url" for p in parts)


def estimate_tokens(chars: int, images: int, messages: int = 2, image_tokens: int = IMAGE_TOKENS) -> int:
    return math.ceil(chars / 4) + images * image_tokens + messages * MESSAGE_TOKENS


def estimate_message_tokens(messages: list[dict], image_tokens: int = IMAGE_TOKENS) -> int:
    """The same estimate for any chat message list."""
    chars = images = 0
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content:
            if part.get("type") == "image_url":
                images += 1
            else:
                chars += len(part.get("text", ""))
    return estimate_tokens(chars, images, len(messages), image_tokens)


def to_messages(system: str, parts: Sequence[Part], merged: bool = False) -> list[dict]:
    if not merged:
        parts = merge(parts)
    content: Any = parts
    if all(p["type"] == "text" for p in parts):
        content = "".join(p["text"] for p in parts)
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]


def build_messages(env, demos: Sequence[Episode], history: Sequence[tuple[Any, str]], obs, fmt: str,
                   image_tokens: int = IMAGE_TOKENS) -> Prompt:
    """The prompt with all of `demos`, the episode's (observation, action) history and `obs`."""
    parts: list[Part] = [_header(len(demos))]
    for i, ep in enumerate(demos, 1):
        parts.append(_demo_title(i))
        for t, (o, a) in enumerate(zip(ep.observations, ep.actions), 1):
            parts += _step(t, render_parts(env, o, fmt)[1], a)
    parts.append(CURRENT_TITLE)
    for t, (o, a) in enumerate(history, 1):
        parts += _step(t, render_parts(env, o, fmt)[1], a)
    parts += _current(len(history) + 1, render_parts(env, obs, fmt)[1])
    system = system_message(env)
    chars, images = _cost(parts)
    return Prompt(to_messages(system, parts), estimate_tokens(chars + len(system), images, 2, image_tokens), len(demos))


@dataclass
class _Block:
    parts: list[Part]
    chars: int
    images: int


class PromptBuilder:
    """Cached prompts for one env, one demo list and one observation format.

    `rendered[i][t]` is demo i's observation t as rendered in `fmt` (text, array); the
    nearest-neighbour baseline reads these. Use one `episode()` context per episode.
    """

    def __init__(self, env, demos: Sequence[Episode], fmt: str, image_tokens: int = IMAGE_TOKENS):
        if fmt not in env.formats:
            raise ValueError(f"{env.name} renders {', '.join(env.formats)} observations, not {fmt!r}")
        self.env, self.demos, self.fmt, self.image_tokens = env, list(demos), fmt, image_tokens
        self.system = system_message(env)
        self.rendered: list[list[Any]] = []
        self._demo_parts: list[list[Part]] = []
        for i, ep in enumerate(self.demos, 1):
            raws, parts = [], [_demo_title(i)]
            for t, (o, a) in enumerate(zip(ep.observations, ep.actions), 1):
                raw, obs_parts = render_parts(env, o, fmt)
                raws.append(raw)
                parts += _step(t, obs_parts, a)
            self.rendered.append(raws)
            self._demo_parts.append(merge(parts))
        self._blocks: dict[int, _Block] = {}

    def block(self, k: int) -> _Block:
        """The user message up to "Current episode:" with the first k demos."""
        if not 0 <= k <= len(self.demos):
            raise ValueError(f"{k} demonstrations asked, {len(self.demos)} recorded")
        if k not in self._blocks:
            parts = merge([_header(k), *(p for d in self._demo_parts[:k] for p in d), CURRENT_TITLE])
            chars, images = _cost(parts)
            self._blocks[k] = _Block(parts, chars + len(self.system), images)
        return self._blocks[k]

    def episode(self) -> "EpisodeContext":
        return EpisodeContext(self)


@dataclass
class EpisodeContext:
    """One episode's history, rendered once per step: prompt(obs) ... add(action) ... prompt(obs)."""

    builder: PromptBuilder
    parts: list[Part] = field(default_factory=list)
    chars: int = 0
    images: int = 0
    steps: int = 0
    _pending: tuple[Any, Any, list[Part]] | None = None  # (obs, raw rendering, parts) of the last prompt

    def render(self, obs) -> tuple[Any, list[Part]]:
        if self._pending is None or self._pending[0] is not obs:
            raw, parts = render_parts(self.builder.env, obs, self.builder.fmt)
            self._pending = (obs, raw, parts)
        return self._pending[1], self._pending[2]

    def prompt(self, obs, k: int, budget: int | None = None, drop_demos: bool = True) -> tuple[Prompt, Any]:
        """(the prompt for `obs` with k demos, obs's raw rendering). With a token `budget`: the most
        demos (at most k) whose prompt fits when `drop_demos`, else ContextBudgetError."""
        b = self.builder
        raw, obs_parts = self.render(obs)
        current = _current(self.steps + 1, obs_parts)
        chars, images = _cost(current)
        chars, images = chars + self.chars, images + self.images

        def est(n: int) -> int:
            block = b.block(n)
            return estimate_tokens(block.chars + chars, block.images + images, 2, b.image_tokens)

        if budget is not None and est(k) > budget:
            if not drop_demos:
                raise ContextBudgetError(f"the prompt with {k} demonstrations needs ~{est(k)} tokens, more than "
                                         f"the budget of {budget}")
            k = next((n for n in range(k - 1, -1, -1) if est(n) <= budget), -1)
            if k < 0:
                raise ContextBudgetError(f"the prompt needs ~{est(0)} tokens even without demonstrations, more than "
                                         f"the budget of {budget}")
        parts = concat(b.block(k).parts, self.parts, merge(current))
        return Prompt(to_messages(b.system, parts, merged=True), est(k), k), raw

    def add(self, obs, action: str) -> None:
        """Record the action taken at `obs` (the observation of the last prompt)."""
        step = _step(self.steps + 1, self.render(obs)[1], action)
        c, i = _cost(step)
        self.parts = concat(self.parts, merge(step))
        self.chars, self.images, self.steps = self.chars + c, self.images + i, self.steps + 1
