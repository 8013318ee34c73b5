"""Conditional 1-D temporal UNet (Diffusion Policy structure): GroupNorm, Mish, FiLM with scale.

Inference fast path: the FiLM scale/bias of every residual block depends only on (diffusion step,
global condition), both known before denoising starts, so `film_table` computes them for all
inference steps in one batched pass and `forward_with_film` skips the conditioning MLPs per step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32)
                         * (-math.log(10000.0) / max(half - 1, 1)))
        arg = t.float()[:, None] * freq[None]
        return torch.cat((arg.sin(), arg.cos()), dim=-1)


class Conv1d(nn.Conv1d):
    """nn.Conv1d (same parameters and state_dict) computed as im2col + one matmul.

    The action sequences are short (T=8), so the convolutions are tiny; PyTorch's CPU conv1d takes
    its slow generic path for them (~4x slower here). unfold + F.linear is exact and fast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, (s,), (p,) = self.kernel_size[0], self.stride, self.padding
        if self.groups != 1 or self.dilation[0] != 1:
            return super().forward(x)
        if k == 1 and s == 1:
            return F.linear(x.transpose(1, 2), self.weight[:, :, 0], self.bias).transpose(1, 2)
        b, c, _ = x.shape
        cols = F.pad(x, (p, p)).unfold(2, k, s)  # (B, C, L_out, k)
        cols = cols.permute(0, 2, 1, 3).reshape(b, cols.shape[2], c * k)
        return F.linear(cols, self.weight.reshape(self.out_channels, c * k), self.bias).transpose(1, 2)


class Upsample1d(nn.ConvTranspose1d):
    """ConvTranspose1d(C, C, 4, stride 2, padding 1) (same parameters) as one matmul + overlap-add."""

    def __init__(self, channels: int):
        super().__init__(channels, channels, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, n = x.shape
        # contributions of every input step to the 4 output taps: (B, L, 4, C_out)
        w = self.weight.permute(0, 2, 1).reshape(c, -1)  # (C_in, 4 * C_out), tap-major
        contrib = (x.transpose(1, 2) @ w).view(b, n, 4, -1)
        zero = contrib.new_zeros(b, 1, contrib.shape[-1])
        # out[2m] = c[m, 1] + c[m-1, 3]; out[2m+1] = c[m, 2] + c[m+1, 0]
        even = contrib[:, :, 1] + torch.cat((zero, contrib[:, :-1, 3]), dim=1)
        odd = contrib[:, :, 2] + torch.cat((contrib[:, 1:, 0], zero), dim=1)
        out = torch.stack((even, odd), dim=2).reshape(b, 2 * n, -1) + self.bias
        return out.transpose(1, 2)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int):
        super().__init__()
        self.conv = Conv1d(c_in, c_out, kernel, padding=kernel // 2)
        self.norm = nn.GroupNorm(groups, c_out)

    def forward(self, x):
        return F.mish(self.norm(self.conv(x)))


class CondResBlock1D(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int,
                 predict_scale: bool = True):
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, kernel, groups)
        self.block2 = Conv1dBlock(c_out, c_out, kernel, groups)
        self.c_out, self.predict_scale = c_out, predict_scale
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, c_out * (2 if predict_scale else 1)))
        self.residual = Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def film(self, cond: torch.Tensor) -> torch.Tensor:
        """(..., cond_dim) -> (..., k * c_out, 1) FiLM parameters."""
        return self.cond_encoder(cond).unsqueeze(-1)

    def forward(self, x, cond=None, film=None):
        if film is None:
            film = self.film(cond)
        out = self.block1(x)
        if self.predict_scale:
            scale, bias = film[:, : self.c_out], film[:, self.c_out:]
            out = torch.addcmul(bias, scale, out)
        else:
            out = out + film
        out = self.block2(out)
        return out + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """eps_theta(x_t, t, global_cond): x (B, T, D) -> (B, T, D)."""

    def __init__(self, input_dim: int, global_cond_dim: int, step_embed_dim: int = 128,
                 down_dims=(64, 128), kernel_size: int = 5, n_groups: int = 8,
                 cond_predict_scale: bool = True):
        super().__init__()
        dsed = step_embed_dim
        self.step_encoder = nn.Sequential(SinusoidalPosEmb(dsed), nn.Linear(dsed, dsed * 4), nn.Mish(),
                                          nn.Linear(dsed * 4, dsed))
        cond_dim = dsed + global_cond_dim
        dims = [input_dim, *down_dims]
        in_out = list(zip(dims[:-1], dims[1:]))
        kw = dict(cond_dim=cond_dim, kernel=kernel_size, groups=n_groups, predict_scale=cond_predict_scale)
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(in_out):
            last = i == len(in_out) - 1
            self.down.append(nn.ModuleList([
                CondResBlock1D(c_in, c_out, **kw), CondResBlock1D(c_out, c_out, **kw),
                Conv1d(c_out, c_out, 3, 2, 1) if not last else nn.Identity()]))
        mid = dims[-1]
        self.mid = nn.ModuleList([CondResBlock1D(mid, mid, **kw), CondResBlock1D(mid, mid, **kw)])
        self.up = nn.ModuleList()
        for c_in, c_out in reversed(in_out[1:]):  # each up level undoes one downsampling
            self.up.append(nn.ModuleList([
                CondResBlock1D(c_out * 2, c_in, **kw), CondResBlock1D(c_in, c_in, **kw),
                Upsample1d(c_in)]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
                                   Conv1d(down_dims[0], input_dim, 1))
        self.res_blocks = [m for m in self.modules() if isinstance(m, CondResBlock1D)]

    def condition(self, timesteps: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """(B,) steps + (B, G) global condition -> (B, dsed + G) FiLM input."""
        return torch.cat((self.step_encoder(timesteps), global_cond), dim=-1)

    def film_table(self, timesteps: torch.Tensor, global_cond: torch.Tensor) -> list[list[torch.Tensor]]:
        """FiLM params for every (step, batch item): result[s][block] is (B, k*C, 1)."""
        s, b = timesteps.shape[0], global_cond.shape[0]
        step = self.step_encoder(timesteps)  # (S, dsed)
        cond = torch.cat((step[:, None].expand(s, b, -1), global_cond[None].expand(s, b, -1)), -1)
        per_block = [blk.film(cond) for blk in self.res_blocks]  # each (S, B, kC, 1)
        return [[f[i] for f in per_block] for i in range(s)]

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(x.shape[0])
        cond = self.condition(timesteps, global_cond)
        return self._run(x, [blk.film(cond) for blk in self.res_blocks])

    def forward_with_film(self, x: torch.Tensor, films: list[torch.Tensor]) -> torch.Tensor:
        return self._run(x, films)

    def _run(self, x: torch.Tensor, films: list[torch.Tensor]) -> torch.Tensor:
        x = x.transpose(1, 2)  # (B, D, T)
        it = iter(films)
        skips = []
        for r1, r2, down in self.down:
            x = r2(r1(x, film=next(it)), film=next(it))
            skips.append(x)
            x = down(x)
        for r in self.mid:
            x = r(x, film=next(it))
        for r1, r2, up in self.up:
            x = torch.cat((x, skips.pop()), dim=1)
            x = r2(r1(x, film=next(it)), film=next(it))
            x = up(x)
        return self.final(x).transpose(1, 2)
