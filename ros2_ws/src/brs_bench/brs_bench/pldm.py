"""PLDM planning latency: MPPI per step (encode observation + plan) with the default config.

Baseline, measured in the same run: the same MPPI with the same sample budget, rolled out one
sample at a time (`plan_unbatched`), i.e. a naive implementation.
"""

from __future__ import annotations

TITLE = "PLDM: MPPI planning time per step (Two Rooms, default config) vs unbatched MPPI"  # make bench's heading of this module

import time

import numpy as np
import torch

from brs_bench.result import Result
from rl_agents.pldm import PLDM, MPPIConfig, PLDMAgent, PLDMConfig, plan_unbatched
from rl_agents.two_rooms import TwoRoomsEnv


def run(repeats: int = 3) -> list[Result]:
    # one intra-op thread: for these small batched MLP calls it is 2-4x faster than 2 threads on
    # the shared 2-core CPU (thread spin/oversubscription); restored afterwards
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(repeats)
    finally:
        torch.set_num_threads(threads)


def _run(repeats: int) -> list[Result]:
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = PLDM(PLDMConfig()).to(dev).eval()
    cfg = MPPIConfig()
    env = TwoRoomsEnv(img_size=model.cfg.img_size)
    agent = PLDMAgent(model, env.max_step, cfg, seed=0)
    obs, info = env.reset(seed=0)
    steps = 20
    times = []
    for r in range(max(repeats, 1)):
        agent.reset()
        agent.act(obs, info["goal_obs"])  # warm-up (and goal encoding)
        for _ in range(steps):
            t0 = time.perf_counter()
            a = agent.act(obs, info["goal_obs"])
            times.append((time.perf_counter() - t0) * 1e3)
            obs, _, _, _, info = env.step(a)
    p50 = float(np.median(times))
    base = []
    with torch.no_grad():
        z0 = model.encoder(torch.from_numpy(obs).to(dev))
        zg = model.encoder(torch.from_numpy(info["goal_obs"]).to(dev))
        gen = torch.Generator(device=dev).manual_seed(0)
        for _ in range(max(1, min(repeats, 2))):
            t0 = time.perf_counter()
            plan_unbatched(model.predictor, z0, zg, cfg, 2, gen)
            base.append((time.perf_counter() - t0) * 1e3)
    note = (f"H={cfg.horizon}, N={cfg.samples}, iters={cfg.iterations}, latent {model.cfg.latent_dim}, "
            f"64x64 obs, {dev}, torch threads {torch.get_num_threads()}; p50 over {len(times)} steps")
    return [Result("pldm_plan_ms_p50", p50, "ms", float(np.median(base)), "unbatched MPPI, same sample budget",
                   "<= 100", higher_is_better=False, note=note)]


if __name__ == "__main__":
    for r in run(1):
        print(r)
