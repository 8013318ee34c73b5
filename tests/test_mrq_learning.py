"""MR.Q learns Pendulum-v1 within a CI-sized budget (reduced configuration, fixed seed).

Reduced configuration: all widths 64 (zs, zsa, hidden; action embedding 32), batch 64, 1,000 random
steps, everything else the paper's defaults (5-step encoder unroll, 3-step returns, LAP, targets
every 250 updates). Budget: 3,000 environment steps (15 episodes), one update per step.
Measured (seed 0, one torch thread, this 2-core CPU): deterministic-policy return -87 at 2,500 steps
and -86 at 3,000 (seed 1: -84); a random policy scores about -1,200 to -1,500. Wall time about
20-25 s. The test asserts a mean return >= -300 over 5 evaluation episodes.
"""

from __future__ import annotations

import torch

from rl_agents.envs import make_env
from rl_agents.mrq import MRQAgent, MRQConfig
from rl_agents.mrq.loop import Trainer, evaluate

REDUCED = dict(zs_dim=64, zsa_dim=64, za_dim=32, enc_hdim=64, value_hdim=64, policy_hdim=64, batch_size=64,
               random_steps=1000, buffer_size=20_000)
STEPS = 3000
THRESHOLD = -300.0


def test_mrq_learns_pendulum():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env, eval_env = make_env("gym/Pendulum-v1", seed=0), make_env("gym/Pendulum-v1", seed=100)
        agent = MRQAgent(env.obs_shape, env.action_dim, action_low=env.action_low, action_high=env.action_high,
                         config=MRQConfig(**REDUCED), seed=0)
        before = evaluate(eval_env, agent, episodes=2, seed=1000)
        Trainer(env, agent).run(STEPS)
        after = evaluate(eval_env, agent, episodes=5, seed=1000)
    finally:
        torch.set_num_threads(threads)
    assert agent.num_updates == STEPS - REDUCED["random_steps"]
    assert after >= THRESHOLD, f"return {after:.0f} after {STEPS} steps (untrained {before:.0f})"
