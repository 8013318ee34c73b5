"""Conditional 1-D temporal UNet (Diffusion Policy structure): GroupNorm, Mish, FiLM with scale.

Inference fast path: the FiLM scale/bias of every residual block depends only on (diffusion step,
global condition), both known before denoising starts, so `film_table` computes them for all
inference steps in one pass (the step part cached across calls) and `forward_with_film` skips the
conditioning MLPs per step.
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
    """nn.Conv1d (same parameters and state_dict) on channels-last input: (B, L, C) -> (B, L_out, C_out),
    computed as im2col + one matmul.

    The action sequences are short (T=8), so the convolutions are tiny; PyTorch's CPU conv1d takes
    its slow generic path for them (~4x slower here). unfold + F.linear is exact and fast.
    No shape arithmetic on x: a traced graph then holds no size/int ops (policy._frozen_unet)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, (s,), (p,) = self.kernel_size[0], self.stride, self.padding
        if self.groups != 1 or self.dilation[0] != 1:
            return super().forward(x.transpose(1, 2)).transpose(1, 2)
        if k == 1 and s == 1 and p == 0:
            return F.linear(x, self.weight.squeeze(-1), self.bias)
        cols = F.pad(x, (0, 0, p, p)).unfold(1, k, s).flatten(2)  # (B, L_out, C * k), (channel, tap)
        return F.linear(cols, self.weight.flatten(1), self.bias)


class Upsample1d(nn.ConvTranspose1d):
    """ConvTranspose1d(C, C, 4, stride 2, padding 1) (same parameters) as one matmul + overlap-add,
    channels-last: (B, L, C) -> (B, 2L, C)."""

    def __init__(self, channels: int):
        super().__init__(channels, channels, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # contributions of every input step to the 4 output taps: (B, L, 4, C_out)
        w = self.weight.permute(2, 1, 0).flatten(0, 1)  # (4 * C_out, C_in), tap-major
        contrib = F.linear(x, w).unflatten(-1, (4, self.out_channels))
        # out[2m] = c[m, 1] + c[m-1, 3]; out[2m+1] = c[m, 2] + c[m+1, 0] (zero outside)
        even = contrib[:, :, 1] + F.pad(contrib[:, :-1, 3], (0, 0, 1, 0))
        odd = contrib[:, :, 2] + F.pad(contrib[:, 1:, 0], (0, 0, 0, 1))
        return torch.stack((even, odd), dim=2).flatten(1, 2) + self.bias


def group_norm_cl(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """nn.GroupNorm on channels-last (B, L, C): viewed as a channels-last (B, C, L, 1) tensor, which
    PyTorch's GroupNorm kernel takes as it is (a transposed 3-D view would be copied first)."""
    y = F.group_norm(x.unsqueeze(2).permute(0, 3, 1, 2), norm.num_groups, norm.weight, norm.bias, norm.eps)
    return y.permute(0, 2, 3, 1).squeeze(2)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish, channels-last (B, L, C)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int):
        super().__init__()
        self.conv = Conv1d(c_in, c_out, kernel, padding=kernel // 2)
        self.norm = nn.GroupNorm(groups, c_out)

    def forward(self, x):
        return F.mish(group_norm_cl(self.norm, self.conv(x)))


class CondResBlock1D(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int,
                 predict_scale: bool = True):
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, kernel, groups)
        self.block2 = Conv1dBlock(c_out, c_out, kernel, groups)
        self.c_out, self.predict_scale = c_out, predict_scale
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, c_out * (2 if predict_scale else 1)))
        self.residual = Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def film(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """(..., cond_dim) -> FiLM parameters [scale, bias], each (..., 1, c_out) ([bias] without
        predict_scale)."""
        f = self.cond_encoder(cond).unsqueeze(-2)
        return list(f.split(self.c_out, dim=-1)) if self.predict_scale else [f]

    def forward(self, x, cond=None, film: list[torch.Tensor] | None = None):
        if film is None:
            film = self.film(cond)
        out = self.block1(x)
        out = torch.addcmul(film[1], film[0], out) if self.predict_scale else out + film[0]
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
        self.step_embed_dim = dsed
        self.film_sizes = [blk.c_out for blk in self.res_blocks for _ in range(2 if cond_predict_scale else 1)]
        self._step_cache: dict = {}

    def condition(self, timesteps: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """(B,) steps + (B, G) global condition -> (B, dsed + G) FiLM input."""
        return torch.cat((self.step_encoder(timesteps), global_cond), dim=-1)

    def film_table(self, timesteps: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """FiLM parameters of every residual block for every (step, batch item), one tensor
        (S, B, 1, F) (F: all blocks' [scale, bias] channels); row s is `forward_with_film`'s film.

        A block's FiLM is Linear(mish(cat(step_emb(t), cond))) = W_t mish(step_emb(t)) + b +
        W_c mish(cond) (Mish is elementwise), so the step part, which depends only on the
        inference timesteps and the weights, is cached; the condition part is one row per block."""
        dsed = self.step_embed_dim
        step = self._step_film(timesteps)  # (S, F)
        g = F.mish(global_cond)
        cond = torch.cat([F.linear(g, blk.cond_encoder[1].weight[:, dsed:]) for blk in self.res_blocks], -1)
        return (step[:, None] + cond[None]).unsqueeze(-2)

    def _step_film(self, timesteps: torch.Tensor) -> torch.Tensor:
        """(S,) timesteps -> (S, F): W_t mish(step_emb(t)) + b of every block, cached per timesteps
        and weights (parameter version counters and storage) when no gradient is recorded."""
        params = [*self.step_encoder.parameters(), *(p for blk in self.res_blocks
                                                     for p in blk.cond_encoder.parameters())]
        dsed = self.step_embed_dim

        def compute():
            emb = F.mish(self.step_encoder(timesteps))
            lin = [blk.cond_encoder[1] for blk in self.res_blocks]
            return torch.cat([F.linear(emb, m.weight[:, :dsed], m.bias) for m in lin], -1)

        if torch.is_grad_enabled():
            return compute()
        key = (tuple(timesteps.tolist()), str(timesteps.device), params[0].dtype)
        version = tuple((p._version, p.data_ptr()) for p in params)
        hit = self._step_cache.get(key)
        if hit is None or hit[0] != version:
            hit = self._step_cache[key] = (version, compute())
        return hit[1]

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(x.shape[0])
        cond = self.condition(timesteps, global_cond)
        return self._run(x, [blk.film(cond) for blk in self.res_blocks])

    def forward_with_film(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) + one step's FiLM parameters (B, 1, F) (a `film_table` row) -> eps (B, T, D)."""
        parts = film.split(self.film_sizes, dim=-1)
        per = len(parts) // len(self.res_blocks)  # 2 (scale, bias) or 1 (bias)
        return self._run(x, [list(parts[i:i + per]) for i in range(0, len(parts), per)])

    def _run(self, x: torch.Tensor, films: list[list[torch.Tensor]]) -> torch.Tensor:
        """films: per residual block (in module order) its [scale, bias] or [bias]. Channels-last
        throughout: x (B, T, D) is already (batch, time, channel), as every layer here takes it."""
        it = iter(films)
        skips = []
        for r1, r2, down in self.down:
            x = r2(r1(x, film=next(it)), film=next(it))
            skips.append(x)
            x = down(x)
        for r in self.mid:
            x = r(x, film=next(it))
        for r1, r2, up in self.up:
            x = torch.cat((x, skips.pop()), dim=2)
            x = r2(r1(x, film=next(it)), film=next(it))
            x = up(x)
        return self.final(x)
