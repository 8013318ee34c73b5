"""Demonstrations: expert episodes recorded as (observation, action) pairs.

Observations are stored raw (the env's immutable snapshots), so one recording serves every
observation format. Demo episodes use seeds from DEMO_SEED_OFFSET on, disjoint from evaluation
seeds (the runner checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEMO_SEED_OFFSET = 1_000_000


@dataclass
class Episode:
    seed: int
    observations: list = field(default_factory=list)  # the observation before each action
    actions: list[str] = field(default_factory=list)  # the actions as the model would write them
    ret: float = 0.0
    success: bool = False

    def __len__(self) -> int:
        return len(self.actions)


def record_expert(env, seed: int) -> Episode:
    """One expert episode of `env` with `seed`."""
    ep = Episode(seed)
    obs, done = env.reset(seed), False
    while not done and len(ep) < env.max_steps:
        action = env.expert()
        ep.observations.append(obs)
        ep.actions.append(env.action_space.format(action))
        obs, reward, done = env.step(action)
        ep.ret += reward
    ep.success = env.success
    return ep


def demo_seeds(n: int, offset: int = DEMO_SEED_OFFSET) -> list[int]:
    return list(range(offset, offset + n))


def record_demos(env, n: int, offset: int = DEMO_SEED_OFFSET) -> list[Episode]:
    """n expert episodes; the first k of them are the demos of a k-demo prompt (nested sets)."""
    return [record_expert(env, s) for s in demo_seeds(n, offset)]
