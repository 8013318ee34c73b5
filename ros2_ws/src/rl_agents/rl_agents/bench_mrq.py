"""MR.Q training throughput: agent steps/s with one update per step, DEFAULT configuration.

Env: DMC cheetah-run (dm_control 1.0.50, action repeat 2). After the 10k-step random phase, each
measured window is one full target-update cycle of 250 agent steps: 250 value/policy updates plus
the block of 250 encoder updates that starts it, so the number is the steady-state average.

Baselines:
- the reference implementation (facebookresearch/MRQ), default hyperparameters, same task, on this
  2-core CPU with torch 2.13: 3.3 steps/s. Recorded once (shared/reference_results/mrq/README.md);
  the reference code is not vendored, so it cannot be re-measured in the same run.
- same run: this implementation with its fast paths off (`fast_update=False`: per-parameter AdamW,
  full backward of the policy loss into value/encoder weights, unfused grad clipping).
Environment variables: MRQ_BENCH_WINDOW (steps per window, default 250), MRQ_BENCH_RANDOM
(random steps, default 10000) to shorten it for a smoke run, MRQ_BENCH_THREADS (torch threads; default
torch's own). On a 2-core machine shared with another busy process, 2 torch threads are ~15x slower
than 1 (OpenMP threads spin against the other process): run the benchmark on an otherwise idle
machine, or with MRQ_BENCH_THREADS=1 (chosen automatically on <= 2 cores when the 1-min load is >= 1).
"""

from __future__ import annotations

import os
import statistics

import torch

from brs.bench import Result

REFERENCE_STEPS_PER_S = 3.3  # facebookresearch/MRQ on this CPU, DMC cheetah-run, default config (recorded)
ENV = "dmc/cheetah-run"


def _trainer(fast: bool, random_steps: int):
    from rl_agents.envs import make_env
    from rl_agents.mrq import MRQAgent, MRQConfig
    from rl_agents.mrq.loop import Trainer

    env = make_env(ENV, seed=0)
    cfg = MRQConfig(fast_update=fast, random_steps=random_steps)
    agent = MRQAgent(env.obs_shape, env.action_dim, action_low=env.action_low, action_high=env.action_high,
                     config=cfg, seed=0)
    trainer = Trainer(env, agent)
    trainer.run(random_steps)  # random phase: no updates
    return trainer


def run(repeats: int = 3) -> list[Result]:
    window = int(os.environ.get("MRQ_BENCH_WINDOW", "250"))
    random_steps = int(os.environ.get("MRQ_BENCH_RANDOM", "10000"))
    if os.environ.get("MRQ_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["MRQ_BENCH_THREADS"]))
    elif os.getloadavg()[0] >= 1.0 and (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)  # a busy 2-core machine: 2 OpenMP threads would spin against the load
    trainers = {True: _trainer(True, random_steps), False: _trainer(False, random_steps)}
    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):  # interleaved, so load from other processes hits both alike
        for fast_paths, trainer in trainers.items():
            rates[fast_paths].append(window / trainer.run(window))
    fast, slow = statistics.median(rates[True]), statistics.median(rates[False])
    where = (f"{ENV}, default config (batch 256, widths 512), {window}-step windows after {random_steps} "
             f"random steps, torch {torch.__version__}, {torch.get_num_threads()} threads")
    return [
        Result("mrq_steps_per_s", fast, "steps/s", REFERENCE_STEPS_PER_S,
               "reference implementation, recorded on this CPU", f">= {1.5 * REFERENCE_STEPS_PER_S:.3g}",
               note=where),
        Result("mrq_steps_per_s_same_run", fast, "steps/s", slow, "own update without fast paths, same run",
               f">= {slow:.3g}", note="fast paths: fused AdamW, policy-only grads, foreach clip"),
    ]
