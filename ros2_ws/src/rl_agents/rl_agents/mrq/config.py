"""MR.Q hyperparameters: the paper's single set (Fujimoto et al., 2025, Table of hyperparameters)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class MRQConfig:
    # generic
    batch_size: int = 256
    buffer_size: int = 1_000_000
    discount: float = 0.99
    target_update_freq: int = 250  # targets copied every N updates; encoder trained N batches in a row then
    random_steps: int = 10_000  # uniform-random actions before training starts
    # exploration / TD3-style target smoothing (halved for discrete actions)
    exploration_noise: float = 0.2
    target_policy_noise: float = 0.2
    noise_clip: float = 0.3
    # encoder loss
    dyn_weight: float = 1.0
    reward_weight: float = 0.1
    done_weight: float = 0.1
    enc_horizon: int = 5
    q_horizon: int = 3
    # LAP prioritised replay
    prioritized: bool = True
    alpha: float = 0.4
    min_priority: float = 1.0
    # encoder
    zs_dim: int = 512
    zsa_dim: int = 512
    za_dim: int = 256
    enc_hdim: int = 512
    enc_activ: str = "elu"
    enc_lr: float = 1e-4
    enc_wd: float = 1e-4
    pixel_augs: bool = True
    pixel_pad: int = 4
    # value
    value_hdim: int = 512
    value_activ: str = "elu"
    value_lr: float = 3e-4
    value_wd: float = 1e-4
    value_grad_clip: float = 20.0
    # policy
    policy_hdim: int = 512
    policy_activ: str = "relu"
    policy_lr: float = 3e-4
    policy_wd: float = 1e-4
    gumbel_tau: float = 10.0
    pre_activ_weight: float = 1e-5
    # reward two-hot
    num_bins: int = 65
    lower: float = -10.0
    upper: float = 10.0
    # implementation switches (not hyperparameters of the method)
    fast_update: bool = True  # fused optimisers, policy grads only for the policy, fused twin-Q heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MRQConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
