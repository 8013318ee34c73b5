"""Observation encoders (PointNet, proprio MLP) and the GEGLU transformer over interleaved tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(d_in: int, hidden: int, depth: int, d_out: int) -> nn.Sequential:
    """`depth` hidden layers of width `hidden` (Linear + GELU), then a Linear to d_out."""
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.GELU()]
        d = hidden
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class PointNet(nn.Module):
    """Shared per-point MLP + max pooling: (B, P, 6) -> (B, d_out)."""

    def __init__(self, d_in: int = 6, hidden: int = 256, depth: int = 2, d_out: int = 256):
        super().__init__()
        layers, d = [], d_in
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), nn.GELU()]
            d = hidden
        self.point_mlp = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, d_out))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.point_mlp(points).amax(dim=-2))


class GEGLU(nn.Module):
    def __init__(self, d: int, hidden: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(d, hidden * 2)
        self.out = nn.Linear(hidden, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return self.drop(self.out(a * F.gelu(gate)))


class Block(nn.Module):
    """Pre-LN transformer block; attention through F.scaled_dot_product_attention (fused)."""

    def __init__(self, d: int, n_heads: int, dropout: float, geglu: bool = True):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.resid_drop = nn.Dropout(dropout)
        self.ff = GEGLU(d, 4 * d, dropout) if geglu else nn.Sequential(
            nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        x = x + self.resid_drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.ff(self.ln2(x))


def interleaved_mask(n_steps: int, n_obs_tokens: int, device=None) -> torch.Tensor:
    """Boolean attention mask (True = may attend) for tokens laid out per step as
    [obs_1 .. obs_k, readout]: every token sees the observation tokens of its own and earlier
    steps (causal over time); a readout token also sees itself; no token sees a readout token."""
    per = n_obs_tokens + 1
    n = n_steps * per
    idx = torch.arange(n, device=device)
    step, slot = idx // per, idx % per
    is_readout = slot == n_obs_tokens
    allowed = (step[None, :] <= step[:, None]) & ~is_readout[None, :]
    allowed |= torch.eye(n, dtype=torch.bool, device=device) & is_readout[:, None]
    return allowed


class InterleavedTransformer(nn.Module):
    """Tokens (B, S, k, E) of k observation modalities per step -> readout features (B, S, E)."""

    def __init__(self, d: int, n_layers: int, n_heads: int, dropout: float, max_steps: int,
                 n_obs_tokens: int, geglu: bool = True):
        super().__init__()
        self.n_obs_tokens = n_obs_tokens
        self.readout = nn.Parameter(torch.zeros(d))
        self.step_pos = nn.Parameter(torch.zeros(max_steps, 1, d))
        self.slot_pos = nn.Parameter(torch.zeros(1, n_obs_tokens + 1, d))
        nn.init.normal_(self.step_pos, std=0.02)
        nn.init.normal_(self.slot_pos, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, n_heads, dropout, geglu) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        self._masks: dict = {}

    def mask(self, n_steps: int, device) -> torch.Tensor:
        key = (n_steps, str(device))
        if key not in self._masks:
            self._masks[key] = interleaved_mask(n_steps, self.n_obs_tokens, device)
        return self._masks[key]

    def forward(self, obs_tokens: torch.Tensor) -> torch.Tensor:
        b, s, k, d = obs_tokens.shape
        readout = self.readout.expand(b, s, 1, d)
        x = torch.cat((obs_tokens, readout), dim=2) + self.step_pos[:s] + self.slot_pos
        x = self.drop(x.reshape(b, s * (k + 1), d))
        mask = self.mask(s, x.device)
        for blk in self.blocks:
            x = blk(x, mask)
        x = self.ln_f(x).view(b, s, k + 1, d)
        return x[:, :, -1]
