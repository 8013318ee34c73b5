"""PLDM model: conv encoder, action-conditioned latent predictor, inverse dynamics; JEPA losses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class PLDMConfig:
    img_size: int = 64
    in_channels: int = 2
    latent_dim: int = 32
    channels: int = 32
    hidden: int = 128
    action_dim: int = 2
    # loss weights (prediction has weight 1)
    var_coef: float = 1.0
    cov_coef: float = 0.5
    idm_coef: float = 1.0
    smooth_coef: float = 0.1
    var_target: float = 1.0  # hinge target of the per-dimension std
    # "conv": images (..., in_channels, img_size, img_size) (Two Rooms); "mlp": state vectors
    # (..., state_dim), e.g. the base pose features of rl_agents.base_nav
    encoder: str = "conv"
    state_dim: int = 4


def conv_trunk(in_channels: int, channels: int, img_size: int) -> tuple[nn.Sequential, int]:
    """3 conv layers 4x4 stride 2 (+ ReLU) -> (the layers, flattened output size)."""
    c = channels
    conv = nn.Sequential(
        nn.Conv2d(in_channels, c, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(c, c, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(c, c, 4, 2, 1), nn.ReLU(),
    )
    return conv, c * (img_size // 8) ** 2


class Encoder(nn.Module):
    def __init__(self, cfg: PLDMConfig):
        super().__init__()
        self.conv, flat = conv_trunk(cfg.in_channels, cfg.channels, cfg.img_size)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, cfg.hidden), nn.ReLU(),
                                nn.Linear(cfg.hidden, cfg.latent_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 or float images (..., C, S, S) -> latents (..., D)."""
        lead = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:]).float()
        if obs.dtype == torch.uint8:
            x = x / 255.0
        return self.fc(self.conv(x)).reshape(*lead, -1)


class VectorEncoder(nn.Module):
    """MLP encoder for low-dimensional states (..., state_dim) -> latents (..., D)."""

    def __init__(self, cfg: PLDMConfig):
        super().__init__()
        h = cfg.hidden
        self.net = nn.Sequential(nn.Linear(cfg.state_dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                 nn.Linear(h, cfg.latent_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.float())


ENCODERS = {"conv": Encoder, "mlp": VectorEncoder}


class Predictor(nn.Module):
    """z_{t+1} = z_t + f(z_t, a_t)."""

    def __init__(self, cfg: PLDMConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim + cfg.action_dim, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, cfg.latent_dim))

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return z + self.net(torch.cat([z, a], -1))


class PLDM(nn.Module):
    def __init__(self, cfg: PLDMConfig | None = None):
        super().__init__()
        self.cfg = cfg or PLDMConfig()
        if self.cfg.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.cfg.encoder!r}; expected one of {tuple(ENCODERS)}")
        self.encoder = ENCODERS[self.cfg.encoder](self.cfg)
        self.predictor = Predictor(self.cfg)
        d, h = self.cfg.latent_dim, self.cfg.hidden
        self.idm = nn.Sequential(nn.Linear(2 * d, h), nn.ReLU(), nn.Linear(h, self.cfg.action_dim))

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """z0 (B, D), actions (B, T, A) -> predicted latents (B, T, D) for steps 1..T."""
        z, out = z0, []
        for t in range(actions.shape[1]):
            z = self.predictor(z, actions[:, t])
            out.append(z)
        return torch.stack(out, 1)


def variance_loss(z: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """VICReg variance hinge on (N, D) embeddings."""
    std = torch.sqrt(z.var(dim=0) + 1e-4)
    return F.relu(target - std).mean()


def covariance_loss(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    z = z - z.mean(0)
    cov = (z.T @ z) / max(n - 1, 1)
    off = cov - torch.diag(torch.diag(cov))
    return off.pow(2).sum() / d


def pldm_loss(model: PLDM, obs: torch.Tensor, actions: torch.Tensor,
              use_vicreg: bool = True, use_idm: bool = True) -> tuple[torch.Tensor, dict]:
    """obs (B, T+1, C, S, S) (or (B, T+1, F) states for the "mlp" encoder), actions (B, T, A)
    normalised to the unit disc.

    JEPA objective: the predictor unrolled T steps from the encoded first frame must match the
    encodings of the next frames (gradients reach the encoder through both sides; the VICReg
    variance/covariance terms on every time step's batch of embeddings prevent collapse).
    """
    cfg = model.cfg
    z = model.encoder(obs)  # (B, T+1, D)
    pred = model.rollout(z[:, 0], actions)
    losses = {"pred": F.mse_loss(pred, z[:, 1:])}
    if use_vicreg:
        zt = z.transpose(0, 1)  # (T+1, B, D): statistics over the batch at each time step
        losses["var"] = cfg.var_coef * torch.stack([variance_loss(x, cfg.var_target) for x in zt]).mean()
        losses["cov"] = cfg.cov_coef * torch.stack([covariance_loss(x) for x in zt]).mean()
    if use_idm and cfg.idm_coef:
        a_hat = model.idm(torch.cat([z[:, :-1], z[:, 1:]], -1))
        losses["idm"] = cfg.idm_coef * F.mse_loss(a_hat, actions)
    if cfg.smooth_coef:
        losses["smooth"] = cfg.smooth_coef * (z[:, 1:] - z[:, :-1]).pow(2).sum(-1).mean()
    total = sum(losses.values())
    return total, {k: float(v.detach()) for k, v in losses.items()}
