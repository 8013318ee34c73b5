"""LMAct harness overhead per action: what the loop adds around the model call (prompt building,
parsing, the replacement rule, the env step, bookkeeping), with the nearest-neighbour model and 64
demos in the context: tic-tac-toe with text observations, and grid world with RGB images (PNG data
URLs). The model's own time (the nn search) is measured apart and left out, as an LLM's would be.

Baseline, measured in the same run: the same loop with the reference prompt builder
(`prompt.build_messages`, which renders all 64 demos again at every action), the naive implementation.
"""

from __future__ import annotations

TITLE = "LMAct harness overhead per action (prompt + parse + env step), 64 demos in context"  # make bench's heading of this module

import random
import time

import numpy as np

from brs_bench.result import Result
from rl_agents.lmact.actions import act_or_replace
from rl_agents.lmact.demos import record_demos
from rl_agents.lmact.envs import make_env
from rl_agents.lmact.models import NearestNeighbourModel, Query
from rl_agents.lmact.prompt import PromptBuilder, build_messages
from rl_agents.lmact.runner import play_episode

DEMOS = 64


def _naive_episode(env, model, demos, rendered, fmt: str, seed: int) -> tuple[float, int]:
    """(seconds outside the model call, actions) of one episode with the prompt rebuilt per action."""
    rng, history = random.Random(seed), []
    obs, done, steps, in_model = env.reset(seed), False, 0, 0.0
    t0 = time.perf_counter()
    while not done and steps < env.max_steps:
        prompt = build_messages(env, demos, history, obs, fmt)
        query = Query(prompt, env.render(obs, fmt), rendered, [ep.actions for ep in demos], env.legal_actions(),
                      env, steps)
        t = time.perf_counter()
        reply = model.act(query)
        in_model += time.perf_counter() - t
        action, _ = act_or_replace(env.action_space, reply.text, env, rng)
        history.append((obs, action))
        obs, _, done = env.step(action)
        steps += 1
    return time.perf_counter() - t0 - in_model, steps


def _measure(env_name: str, fmt: str, repeats: int) -> tuple[list[float], list[float], str]:
    env = make_env(env_name)
    demos = record_demos(env, DEMOS)
    builder = PromptBuilder(env, demos, fmt)
    model = NearestNeighbourModel()
    play_episode(env, model, builder, DEMOS, 0)  # warm-up: the demo blocks and the nn index
    per_action, naive, model_ms = [], [], []
    for r in range(max(repeats, 1)):
        for seed in range(20 * r, 20 * r + 20):
            rec = play_episode(env, model, builder, DEMOS, seed)
            per_action.append((rec["wall_s"] - rec["latency_s"]) * 1e3 / rec["steps"])
            model_ms.append(rec["latency_s"] * 1e3 / rec["steps"])
        for seed in range(2 * r, 2 * r + 2):
            s, n = _naive_episode(env, model, demos, builder.rendered, fmt, seed)
            naive.append(s * 1e3 / n)
    prompt, _ = builder.episode().prompt(env.reset(0), DEMOS)
    size = (f"{len(prompt.messages[1]['content'])} chars" if fmt == "text" else
            f"{sum(p['type'] == 'image_url' for p in prompt.messages[1]['content'])} images")
    note = (f"{env_name}, {fmt} observations, {DEMOS} demos ({sum(map(len, demos))} demo steps; first prompt {size}, "
            f"~{prompt.est_tokens} tokens); median ms per action over {len(per_action)} episodes; the nn model "
            f"itself {np.median(model_ms):.2g} ms per action")
    return per_action, naive, note


def run(repeats: int = 3) -> list[Result]:
    out = []
    for name, env_name, fmt in (("lmact_harness_ms_per_action_p50", "tictactoe", "text"),
                                ("lmact_harness_rgb_ms_per_action_p50", "gridworld", "rgb")):
        per_action, naive, note = _measure(env_name, fmt, repeats)
        out.append(Result(name, float(np.median(per_action)), "ms", float(np.median(naive)),
                          "prompt rebuilt per action", "<= 5", higher_is_better=False, note=note))
    return out


if __name__ == "__main__":
    for r in run(1):
        print(r)
