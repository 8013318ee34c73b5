"""Exponential moving average of a model's weights (Diffusion Policy's schedule)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """decay = clamp(1 - (1 + step / inv_gamma) ** -power, min_value, max_value); buffers copied.

    Defaults = Diffusion Policy / WB-VIMA: power 0.75, max 0.9999 (decay ~0.999 after 10k steps).
    """

    def __init__(self, model: nn.Module, power: float = 0.75, max_value: float = 0.9999,
                 min_value: float = 0.0, inv_gamma: float = 1.0, update_after_step: int = 0):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power, self.max_value, self.min_value = power, max_value, min_value
        self.inv_gamma, self.update_after_step = inv_gamma, update_after_step
        self.step = 0
        self.decay = 0.0

    def get_decay(self, step: int) -> float:
        s = max(0, step - self.update_after_step - 1)
        if s <= 0:
            return 0.0
        value = 1 - (1 + s / self.inv_gamma) ** -self.power
        return max(self.min_value, min(value, self.max_value))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.decay = self.get_decay(self.step)
        ema_params = dict(self.model.named_parameters())
        for name, p in model.named_parameters():
            e = ema_params[name]
            if p.requires_grad:
                e.lerp_(p.detach().to(e.dtype), 1.0 - self.decay)
            else:
                e.copy_(p)
        ema_buffers = dict(self.model.named_buffers())
        for name, b in model.named_buffers():
            ema_buffers[name].copy_(b)
        self.step += 1
        if hasattr(self.model, "clear_cache"):
            self.model.clear_cache()  # weights changed: cached observation tokens are stale

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "step": self.step, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.step = int(state["step"])
        self.decay = float(state.get("decay", 0.0))
