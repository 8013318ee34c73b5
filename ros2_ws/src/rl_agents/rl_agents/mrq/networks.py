"""MR.Q networks: state encoder zs, state-action encoder zsa with the model head, twin-Q value, policy."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_ACTIVATIONS = {"elu": F.elu, "relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}


def activation(name: str):
    return _ACTIVATIONS[name]


def ln_act(x: torch.Tensor, act) -> torch.Tensor:
    """LayerNorm (no affine parameters) followed by the activation, as after every hidden layer."""
    return act(F.layer_norm(x, x.shape[-1:]))


def init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("relu"))
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class MLP(nn.Module):
    """Linear -> LN -> act -> Linear -> LN -> act -> Linear."""

    def __init__(self, in_dim: int, out_dim: int, hdim: int, act: str):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(in_dim, hdim), nn.Linear(hdim, hdim), nn.Linear(hdim, out_dim)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ln_act(self.l1(x), self.act)
        x = ln_act(self.l2(x), self.act)
        return self.l3(x)


class PixelTrunk(nn.Module):
    """Conv encoder for (C, 84, 84) uint8 images: 4 conv layers (32 ch), 3x3, strides 2, 2, 2, 1."""

    def __init__(self, channels: int, out_dim: int, act: str, image_size: int = 84):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(channels, 32, 3, stride=2), nn.Conv2d(32, 32, 3, stride=2),
            nn.Conv2d(32, 32, 3, stride=2), nn.Conv2d(32, 32, 3, stride=1)])
        self.act = activation(act)
        with torch.no_grad():
            n = self._features(torch.zeros(1, channels, image_size, image_size)).shape[1]
        self.lin = nn.Linear(n, out_dim)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.act(conv(x))
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self._features(x.float() / 255.0 - 0.5))


class Encoder(nn.Module):
    """zs = f(s); zsa = g(zs, a); the linear model head predicts (termination, next zs, reward logits) from zsa."""

    def __init__(self, obs_shape: tuple, action_dim: int, pixel_obs: bool, cfg):
        super().__init__()
        self.pixel_obs = pixel_obs
        self.zs_dim = cfg.zs_dim
        self.act = activation(cfg.enc_activ)
        if pixel_obs:
            self.zs_net = PixelTrunk(obs_shape[0], cfg.zs_dim, cfg.enc_activ, obs_shape[-1])
        else:
            self.zs_net = MLP(int(obs_shape[0]), cfg.zs_dim, cfg.enc_hdim, cfg.enc_activ)
        self.za = nn.Linear(action_dim, cfg.za_dim)
        self.zsa_net = MLP(cfg.zs_dim + cfg.za_dim, cfg.zsa_dim, cfg.enc_hdim, cfg.enc_activ)
        self.model = nn.Linear(cfg.zsa_dim, 1 + cfg.zs_dim + cfg.num_bins)
        self.apply(init_weights)

    def zs(self, obs: torch.Tensor) -> torch.Tensor:
        return ln_act(self.zs_net(obs), self.act)

    def zsa(self, zs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        za = self.act(self.za(action))
        return self.zsa_net(torch.cat([zs, za], dim=-1))

    def predict(self, zs: torch.Tensor, action: torch.Tensor):
        """One model step: returns (done (B,1), next zs (B, zs_dim), reward logits (B, bins))."""
        out = self.model(self.zsa(zs, action))
        return out[:, :1], out[:, 1:1 + self.zs_dim], out[:, 1 + self.zs_dim:]


class QHead(nn.Module):
    def __init__(self, in_dim: int, hdim: int, act: str):
        super().__init__()
        self.mlp = MLP(in_dim, hdim, hdim, act)
        self.out = nn.Linear(hdim, 1)
        self.act = activation(act)

    def forward(self, zsa: torch.Tensor) -> torch.Tensor:
        return self.out(ln_act(self.mlp(zsa), self.act))


class Value(nn.Module):
    """Two Q heads on zsa; forward returns (B, 2)."""

    def __init__(self, cfg):
        super().__init__()
        self.q1 = QHead(cfg.zsa_dim, cfg.value_hdim, cfg.value_activ)
        self.q2 = QHead(cfg.zsa_dim, cfg.value_hdim, cfg.value_activ)
        self.apply(init_weights)

    def forward(self, zsa: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.q1(zsa), self.q2(zsa)], dim=1)


class Policy(nn.Module):
    """Deterministic policy on zs: tanh for continuous actions, Gumbel-softmax for discrete ones."""

    def __init__(self, action_dim: int, discrete: bool, cfg):
        super().__init__()
        self.net = MLP(cfg.zs_dim, action_dim, cfg.policy_hdim, cfg.policy_activ)
        self.discrete = discrete
        self.tau = cfg.gumbel_tau
        self.apply(init_weights)

    def forward(self, zs: torch.Tensor):
        pre = self.net(zs)
        action = F.gumbel_softmax(pre, tau=self.tau) if self.discrete else torch.tanh(pre)
        return action, pre

    def act(self, zs: torch.Tensor) -> torch.Tensor:
        return self.forward(zs)[0]
