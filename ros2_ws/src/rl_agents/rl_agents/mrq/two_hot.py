"""Two-hot encoding over symexp-spaced bins (reward head of the MR.Q encoder)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(torch.abs(x))


class TwoHot:
    """Bins symexp(linspace(lower, upper, n)); a scalar becomes weights on its two neighbouring bins."""

    def __init__(self, lower: float = -10.0, upper: float = 10.0, num_bins: int = 65, device="cpu"):
        self.bins = symexp(torch.linspace(lower, upper, num_bins, dtype=torch.float32, device=device))
        self.num_bins = num_bins

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1) or (B,) -> (B, num_bins); values outside the bin range clamp to the end bins."""
        x = x.reshape(-1, 1).clamp(self.bins[0], self.bins[-1])
        hi = torch.searchsorted(self.bins, x, right=False).clamp(1, self.num_bins - 1)  # bins[hi-1] < x <= bins[hi]
        lo = hi - 1
        b_lo, b_hi = self.bins[lo], self.bins[hi]
        w_hi = ((x - b_lo) / (b_hi - b_lo)).clamp(0.0, 1.0)
        out = torch.zeros(x.shape[0], self.num_bins, dtype=x.dtype, device=x.device)
        out.scatter_(1, lo, 1.0 - w_hi)
        out.scatter_add_(1, hi, w_hi)
        return out

    def decode(self, probs: torch.Tensor) -> torch.Tensor:
        """Expected value of a distribution over bins: (B, num_bins) -> (B, 1)."""
        return (probs * self.bins).sum(-1, keepdim=True)

    def decode_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return self.decode(F.softmax(logits, dim=-1))

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample cross-entropy (B, 1) of logits against the two-hot encoding of target."""
        return -(self.encode(target) * F.log_softmax(logits, dim=-1)).sum(-1, keepdim=True)

    def to(self, device) -> "TwoHot":
        self.bins = self.bins.to(device)
        return self
