"""MR.Q training throughput: agent steps/s with one update per step, DEFAULT configuration.

Env: DMC cheetah-run (dm_control 1.0.50, action repeat 2). After the 10k-step random phase, each
measured window is one full target-update cycle of 250 agent steps: 250 value/policy updates plus
the block of 250 encoder updates that starts it, so the number is the steady-state average.

Baselines:
- the reference implementation (facebookresearch/MRQ), default hyperparameters, same task: run
  side by side in this run when MRQ_REFERENCE_DIR points at a checkout of it (its own Env, Agent and
  loop, interleaved with ours). Without one, the row shows a value a review recorded on a quiet
  2-core CPU (REFERENCE_RECORDED, per thread count), labelled "recorded", and judges nothing.
- same run: this implementation with its fast paths off (`fast_update=False`: per-parameter AdamW,
  full backward of the policy loss into value/encoder weights, unfused grad clipping).
Environment variables: MRQ_BENCH_WINDOW (steps per window, default 250), MRQ_BENCH_RANDOM
(random steps, default 10000) to shorten it for a smoke run, MRQ_BENCH_THREADS (torch threads; default
torch's own). On a 2-core machine shared with another busy process, 2 torch threads are ~15x slower
than 1 (OpenMP threads spin against the other process): run the benchmark on an otherwise idle
machine, or with MRQ_BENCH_THREADS=1 (chosen automatically on <= 2 cores when the 1-min load is >= 1).
"""

from __future__ import annotations

TITLE = "MR.Q training steps/s, default config, DMC cheetah-run, vs the reference"  # make bench's heading of this module

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from brs_bench.result import Result

# facebookresearch/MRQ, DMC cheetah-run, default config, 250 steps after 10k random steps, measured by
# a review side by side with this implementation on a quiet 2-core CPU: torch threads -> steps/s
REFERENCE_RECORDED = {1: 3.98, 2: 7.00}
RECORDED_WHERE = "by a review before 2026-12-06, quiet 2-core CPU, no other load"
ENV = "dmc/cheetah-run"
REFERENCE_ENV = "Dmc-cheetah-run"  # the reference's name for it


class ReferenceTrainer:
    """The reference implementation's online loop (its main.py without evaluation or logging):
    act (random until its buffer holds `random_steps`), step its Env, add to its buffer, train."""

    def __init__(self, checkout: str | Path, random_steps: int, seed: int = 0):
        src = Path(checkout) / "MRQ"
        if not (src / "MRQ.py").is_file() or not (src / "env_preprocessing.py").is_file():
            raise FileNotFoundError(f"MRQ_REFERENCE_DIR={checkout}: no MRQ/MRQ.py and MRQ/env_preprocessing.py "
                                    "(a checkout of facebookresearch/MRQ)")
        sys.path.insert(0, str(src))
        import env_preprocessing
        import MRQ

        np.random.seed(seed)
        torch.manual_seed(seed)
        self.env = env = env_preprocessing.Env(REFERENCE_ENV, seed, eval=False)
        self.agent = MRQ.Agent(env.obs_shape, env.action_dim, env.max_action, env.pixel_obs, env.discrete,
                               torch.device("cpu"), env.history, {"buffer_size_before_training": random_steps})
        self.state = env.reset()

    def run(self, steps: int) -> float:
        """`steps` agent steps (one update each once training started); returns the wall time."""
        t0 = time.perf_counter()
        for _ in range(steps):
            action = self.agent.select_action(np.array(self.state))
            if action is None:
                action = self.env.action_space.sample()
            next_state, reward, terminated, truncated = self.env.step(action)
            self.agent.replay_buffer.add(self.state, action, next_state, reward, terminated, truncated)
            self.state = self.env.reset() if terminated or truncated else next_state
            self.agent.train()
        return time.perf_counter() - t0


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
    trainers = {"fast": _trainer(True, random_steps), "slow": _trainer(False, random_steps)}
    checkout = os.environ.get("MRQ_REFERENCE_DIR")
    if checkout:
        reference = ReferenceTrainer(checkout, random_steps)
        reference.run(random_steps)  # its random phase: no updates
        trainers["reference"] = reference
    rates: dict[str, list[float]] = {k: [] for k in trainers}
    for _ in range(repeats):  # interleaved, so load from other processes hits all alike
        for name, trainer in trainers.items():
            rates[name].append(window / trainer.run(window))
    fast, slow = statistics.median(rates["fast"]), statistics.median(rates["slow"])
    threads = torch.get_num_threads()
    where = (f"{ENV}, default config (batch 256, widths 512), {window}-step windows after {random_steps} "
             f"random steps, torch {torch.__version__}, {threads} threads")
    if checkout:
        ref, recorded = statistics.median(rates["reference"]), ""
    else:
        key = 1 if threads == 1 else 2
        ref = REFERENCE_RECORDED[key]
        recorded = f"{RECORDED_WHERE}, {key} thread(s); set MRQ_REFERENCE_DIR to measure it"
    return [
        Result("mrq_steps_per_s", fast, "steps/s", ref, "reference implementation", f">= {1.5 * ref:.3g}",
               note=where, recorded=recorded),
        Result("mrq_steps_per_s_same_run", fast, "steps/s", slow, "own update without fast paths",
               f">= {slow:.3g}", note="fast paths: fused AdamW, policy-only grads, foreach clip"),
    ]
