"""Per-dimension normaliser whose statistics live in the model's state_dict (buffers)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Normalizer(nn.Module):
    """x -> [-1, 1] per dimension ("minmax"), x -> (x - mean) / std ("meanstd"), or x -> [-1, 1]
    over a given range ("limits": e.g. the robot's joint limits, set with `set_range`).

    Dimensions with (almost) no spread in the data map to 0 and back to their constant value,
    instead of dividing by ~0. `fitted` is a buffer too, so a checkpoint says whether stats exist.
    A "limits" normaliser is not fitted from data: a joint that barely moves in the demos would
    otherwise be scaled up until its sensor noise fills the whole input range.
    """

    def __init__(self, dim: int, mode: str = "minmax", eps: float = 1e-4):
        super().__init__()
        if mode not in ("minmax", "meanstd", "limits"):
            raise ValueError(f"normaliser mode must be 'minmax', 'meanstd' or 'limits', got {mode!r}")
        self.mode, self.dim, self.eps = mode, dim, eps
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("offset", torch.zeros(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, data) -> Normalizer:
        """Fit from samples (..., dim) (numpy or torch)."""
        if self.mode == "limits":
            raise ValueError("a 'limits' normaliser takes its range from set_range, not from data")
        x = torch.as_tensor(np.asarray(data, dtype=np.float64) if not torch.is_tensor(data) else data,
                            dtype=torch.float64).reshape(-1, self.dim)
        if x.shape[0] == 0 or not torch.isfinite(x).all():
            raise ValueError("normaliser needs finite samples, got none or NaN/inf")
        if self.mode == "minmax":
            lo, hi = x.min(0).values, x.max(0).values
            half = (hi - lo) / 2
            scale = torch.where(half > self.eps, 1.0 / half.clamp_min(self.eps), torch.ones_like(half))
            offset = (hi + lo) / 2
        else:
            mean, std = x.mean(0), x.std(0, unbiased=False)
            scale = torch.where(std > self.eps, 1.0 / std.clamp_min(self.eps), torch.ones_like(std))
            offset = mean
        self.scale.copy_(scale.to(self.scale))
        self.offset.copy_(offset.to(self.offset))
        self.fitted.fill_(True)
        return self

    @torch.no_grad()
    def set_range(self, lo, hi) -> Normalizer:
        """Map [lo, hi] (per dimension, finite, lo < hi) to [-1, 1]."""
        lo = torch.as_tensor(np.asarray(lo, dtype=np.float64)).reshape(-1)
        hi = torch.as_tensor(np.asarray(hi, dtype=np.float64)).reshape(-1)
        if lo.numel() != self.dim or hi.numel() != self.dim or not (torch.isfinite(lo).all()
                                                                   and torch.isfinite(hi).all() and (hi > lo).all()):
            raise ValueError(f"range needs {self.dim} finite pairs with lo < hi")
        self.scale.copy_((2.0 / (hi - lo)).to(self.scale))
        self.offset.copy_(((hi + lo) / 2).to(self.offset))
        self.fitted.fill_(True)
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.offset) * self.scale

    def unnormalize(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.scale + self.offset

    def extra_repr(self) -> str:
        return f"dim={self.dim}, mode={self.mode}"
