"""PLDM: MPPI on a known quadratic problem, VICReg anti-collapse, checkpoints, a small end-to-end run."""

import numpy as np
import pytest
import torch

from rl_agents.pldm import (MPPI, PLDM, MPPIConfig, PLDMAgent, PLDMConfig, TrainConfig, evaluate, load_checkpoint,
                            pldm_loss, plan_unbatched, save_checkpoint)
from rl_agents.pldm.train import train
from rl_agents.pldm.planner import rollout_cost
from rl_agents.two_rooms import Layout, TwoRoomsEnv, render_batch
from rl_agents.two_rooms_data import generate


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _quadratic_problem():
    # z_{t+1} = A z_t + B a_t; cost = ||z_H - g||^2 + lam * sum ||a_t||^2; closed form by least squares
    A = torch.tensor([[1.0, 0.1], [0.0, 0.9]])
    B = torch.tensor([[0.5, 0.0], [0.2, 1.0]])
    H, lam = 4, 0.3
    z0, g = torch.tensor([1.0, -1.0]), torch.tensor([-0.5, 2.0])
    # z_H = A^H z0 + sum_t A^{H-1-t} B a_t  ->  M a = g - A^H z0
    M = torch.cat([torch.linalg.matrix_power(A, H - 1 - t) @ B for t in range(H)], 1)  # (2, 2H)
    r = g - torch.linalg.matrix_power(A, H) @ z0
    a_opt = torch.linalg.solve(M.T @ M + lam * torch.eye(2 * H), M.T @ r).reshape(H, 2)
    cfg = MPPIConfig(horizon=H, samples=1024, iterations=12, temperature=0.02, noise_std=1.0, min_std=0.005,
                     max_norm=100.0, action_cost=lam, all_steps=False)
    return (lambda z, a: z @ A.T + a @ B.T), z0, g, a_opt, cfg


def test_mppi_finds_the_quadratic_optimum():
    dyn, z0, g, a_opt, cfg = _quadratic_problem()
    best = rollout_cost(dyn, z0, g, a_opt[None], cfg)[0]
    plan = MPPI(dyn, 2, cfg, seed=0).plan(z0, g)
    got = rollout_cost(dyn, z0, g, plan[None], cfg)[0]
    zero = rollout_cost(dyn, z0, g, torch.zeros_like(a_opt)[None], cfg)[0]
    assert got <= best + 0.01 * (zero - best)
    torch.testing.assert_close(plan, a_opt, atol=0.1, rtol=0)
    # the unbatched reference implementation agrees
    ref = plan_unbatched(dyn, z0, g, MPPIConfig(**{**cfg.__dict__, "samples": 128, "iterations": 12}), 2,
                         torch.Generator().manual_seed(0))
    assert rollout_cost(dyn, z0, g, ref[None], cfg)[0] <= best + 0.05 * (zero - best)


def test_mppi_respects_max_norm_and_warm_starts():
    dyn, z0, g, _, cfg = _quadratic_problem()
    cfg.max_norm = 0.5
    mppi = MPPI(dyn, 2, cfg, seed=1)
    plan = mppi.plan(z0, g)
    assert torch.all(plan.norm(dim=-1) <= 0.5 + 1e-5)
    torch.testing.assert_close(mppi.mean[:-1], plan[1:])


def _embed_std(model, size):
    pos = np.random.default_rng(0).uniform(0.05, 0.95, (256, 2))
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(render_batch(pos, Layout(), size)))
    return z.std(0)


def test_vicreg_terms_prevent_collapse():
    data = generate(100, 20, "random", None, seed=0, img_size=16, progress=False)
    mcfg = PLDMConfig(img_size=16, channels=8, hidden=64, latent_dim=8)
    with_reg, _ = train(data, mcfg, TrainConfig(steps=100, batch_size=32, seq_len=3, use_idm=False), progress=False)
    without, _ = train(data, mcfg, TrainConfig(steps=100, batch_size=32, seq_len=3, use_vicreg=False, use_idm=False),
                       progress=False)
    assert _embed_std(with_reg, 16).min() > 0.15
    assert _embed_std(without, 16).max() < 0.02


def test_loss_terms_and_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = PLDM(PLDMConfig(img_size=16, channels=8, hidden=32, latent_dim=4))
    obs = torch.randint(0, 255, (5, 4, 2, 16, 16), dtype=torch.uint8)
    act = torch.rand(5, 3, 2) - 0.5
    loss, parts = pldm_loss(model, obs, act)
    assert set(parts) == {"pred", "var", "cov", "idm", "smooth"} and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    save_checkpoint(tmp_path / "m.pt", model, 7)
    back = load_checkpoint(tmp_path / "m.pt")
    assert torch.load(tmp_path / "m.pt", weights_only=True)["step"] == 7
    with torch.no_grad():
        torch.testing.assert_close(back.encoder(obs), model.encoder(obs))


def test_end_to_end_beats_random():
    """Tiny dataset, 300 training steps, 8 eval episodes per case (same room; across the door)."""
    data = generate(200, 30, "noisy", 0.3, seed=0, img_size=32, max_step=0.08, progress=False)
    model, _ = train(data, PLDMConfig(img_size=32, channels=16, hidden=128, latent_dim=16),
                     TrainConfig(steps=300, batch_size=32, seq_len=4, seed=0), progress=False)
    env = TwoRoomsEnv(img_size=32, max_step=0.08, max_episode_steps=30, success_radius=0.1, goal_mode="same_room",
                      min_goal_dist=0.3)
    agent = PLDMAgent(model, 0.08, MPPIConfig(horizon=8, samples=128, iterations=2), seed=0)
    pldm = evaluate(env, agent, 8, seed=100)
    rand = evaluate(env, "random", 8, seed=100)
    assert pldm["success_rate"] >= rand["success_rate"] + 0.5
    assert pldm["mean_final_dist"] < rand["mean_final_dist"]
    env = TwoRoomsEnv(img_size=32, max_step=0.08, max_episode_steps=50, success_radius=0.1, goal_mode="other_room",
                      min_goal_dist=0.3)
    pldm = evaluate(env, agent, 8, seed=200)
    rand = evaluate(env, "random", 8, seed=200)
    print("across the door: pldm", pldm, "random", rand)
    assert pldm["success_rate"] > rand["success_rate"]
