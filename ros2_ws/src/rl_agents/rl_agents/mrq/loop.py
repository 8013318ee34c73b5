"""Training / evaluation loop shared by the CLI, the benchmark and the tests."""

from __future__ import annotations

import time

import numpy as np

from .agent import MRQAgent


def evaluate(env, agent: MRQAgent, episodes: int = 10, seed: int | None = None) -> float:
    """Mean undiscounted return of the deterministic policy (no exploration noise)."""
    returns = []
    for ep in range(episodes):
        obs = env.reset(seed=None if seed is None else seed + ep)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(agent.act(obs, explore=False))
            total += r
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


class Trainer:
    """Steps an env and an agent; keeps the episode state so that training can be resumed in chunks."""

    def __init__(self, env, agent: MRQAgent):
        self.env, self.agent = env, agent
        self.obs = env.reset()
        self.ep_return, self.ep_len = 0.0, 0
        self.episode_returns: list[tuple[int, float]] = []  # (env step at the end, return)

    def step(self) -> dict | None:
        a = self.agent.act(self.obs)
        next_obs, r, term, trunc, _ = self.env.step(a)
        self.agent.observe(self.obs, a, r, next_obs, term, trunc)
        self.ep_return += r
        self.ep_len += 1
        self.obs = next_obs
        if term or trunc:
            self.episode_returns.append((self.agent.env_steps, self.ep_return))
            self.obs = self.env.reset()
            self.ep_return, self.ep_len = 0.0, 0
        return self.agent.update()

    def run(self, steps: int, callback=None) -> float:
        """Run `steps` env steps (each followed by one agent update); returns the wall time."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
            if callback is not None:
                callback(self)
        return time.perf_counter() - t0
