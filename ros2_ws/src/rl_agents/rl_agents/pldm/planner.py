"""MPPI in latent space (batched over samples), plus a naive unbatched reference for benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class MPPIConfig:
    horizon: int = 16
    samples: int = 256
    iterations: int = 3
    temperature: float = 0.05  # softmax temperature on costs normalised to [0, 1] per iteration
    noise_std: float = 0.6  # initial sampling std (actions in units of max norm)
    min_std: float = 0.05
    max_norm: float = 1.0  # actions clipped to this Euclidean norm
    action_cost: float = 0.0
    terminal_weight: float = 1.0  # weight of ||z_H - g||^2; intermediate steps get weight 1/horizon
    all_steps: bool = True
    # temporal correlation of the sampling noise along the horizon (AR(1) coefficient; 0 = white,
    # the original behaviour). Smooth perturbations explore long manoeuvres (e.g. around a wall)
    # that white noise over a long horizon averages away.
    noise_smoothing: float = 0.0
    # per-action-dimension factor on the sampling std (None = 1 for all), e.g. less yaw than
    # translation noise for a mobile base
    noise_scale: tuple | None = None


def clip_norm(a: torch.Tensor, max_norm: float) -> torch.Tensor:
    n = a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return a * torch.clamp(max_norm / n, max=1.0)


def rollout_cost(dynamics: Callable, z0: torch.Tensor, goal: torch.Tensor, actions: torch.Tensor,
                 cfg: MPPIConfig) -> torch.Tensor:
    """actions (N, H, A) -> costs (N,). z0, goal: (D,)."""
    n, h, _ = actions.shape
    z = z0.expand(n, -1)
    cost = torch.zeros(n, device=actions.device, dtype=z0.dtype)
    for t in range(h):
        z = dynamics(z, actions[:, t])
        d = (z - goal).pow(2).sum(-1)
        if t == h - 1:
            cost = cost + cfg.terminal_weight * d
        elif cfg.all_steps:
            cost = cost + d / h
    if cfg.action_cost:
        cost = cost + cfg.action_cost * actions.pow(2).sum((-1, -2))
    return cost


def smooth_noise(eps: torch.Tensor, beta: float) -> torch.Tensor:
    """AR(1)-filter white noise (N, H, A) along H, keeping unit variance per step."""
    out = torch.empty_like(eps)
    out[:, 0] = eps[:, 0]
    k = (1.0 - beta * beta) ** 0.5
    for t in range(1, eps.shape[1]):
        out[:, t] = beta * out[:, t - 1] + k * eps[:, t]
    return out


class MPPI:
    """Model-predictive path integral control toward a goal latent; warm-started between calls."""

    def __init__(self, dynamics: Callable, action_dim: int, cfg: MPPIConfig | None = None,
                 device: torch.device | str = "cpu", seed: int = 0):
        self.dynamics = dynamics
        self.cfg = cfg or MPPIConfig()
        self.action_dim = action_dim
        self.device = torch.device(device)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.reset()

    def reset(self) -> None:
        self.mean = torch.zeros(self.cfg.horizon, self.action_dim, device=self.device)

    @torch.no_grad()
    def plan(self, z0: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Return the optimised action sequence (H, A); the agent executes its first action."""
        cfg = self.cfg
        mean = self.mean
        std = torch.full_like(mean, cfg.noise_std)
        if cfg.noise_scale is not None:
            std = std * torch.as_tensor(cfg.noise_scale, dtype=std.dtype, device=std.device)
        for _ in range(cfg.iterations):
            eps = torch.randn(cfg.samples, *mean.shape, generator=self.gen, device=self.device)
            if cfg.noise_smoothing > 0:
                eps = smooth_noise(eps, cfg.noise_smoothing)
            acts = clip_norm(mean + std * eps, cfg.max_norm)
            acts[0] = clip_norm(mean, cfg.max_norm)  # always keep the current mean as a candidate
            cost = rollout_cost(self.dynamics, z0, goal, acts, cfg)
            c = (cost - cost.min()) / (cost.max() - cost.min()).clamp_min(1e-12)
            w = torch.softmax(-c / cfg.temperature, dim=0)
            mean = (w[:, None, None] * acts).sum(0)
            var = (w[:, None, None] * (acts - mean).pow(2)).sum(0)
            std = var.sqrt().clamp_min(cfg.min_std)
        mean = clip_norm(mean, cfg.max_norm)
        # warm start: shift by one step for the next call (replanning every step)
        self.mean = torch.cat([mean[1:], torch.zeros_like(mean[:1])])
        return mean


@torch.no_grad()
def plan_unbatched(dynamics: Callable, z0: torch.Tensor, goal: torch.Tensor, cfg: MPPIConfig,
                   action_dim: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """Reference MPPI that rolls out one sample at a time (the naive baseline of brs_bench.pldm)."""
    mean = torch.zeros(cfg.horizon, action_dim, device=z0.device)
    std = torch.full_like(mean, cfg.noise_std)
    for _ in range(cfg.iterations):
        acts, costs = [], []
        for _ in range(cfg.samples):
            a = clip_norm(mean + std * torch.randn(mean.shape, generator=gen, device=z0.device), cfg.max_norm)
            acts.append(a)
            costs.append(rollout_cost(dynamics, z0, goal, a[None], cfg)[0])
        acts, cost = torch.stack(acts), torch.stack(costs)
        c = (cost - cost.min()) / (cost.max() - cost.min()).clamp_min(1e-12)
        w = torch.softmax(-c / cfg.temperature, dim=0)
        mean = (w[:, None, None] * acts).sum(0)
        std = (w[:, None, None] * (acts - mean).pow(2)).sum(0).sqrt().clamp_min(cfg.min_std)
    return clip_norm(mean, cfg.max_norm)
