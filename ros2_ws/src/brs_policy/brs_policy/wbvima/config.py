"""WB-VIMA model configuration. Defaults = the public BRS config (REFERENCE: WB-VIMA section)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from brs_common import robot_spec as spec


def _parts() -> dict[str, tuple[int, int]]:
    """Kinematic-tree parts of the 21-D action, in denoising order: name -> (start, stop)."""
    base = spec.group_slice("base")
    torso = spec.group_slice("torso")
    # arms + grippers: everything after the torso (left_arm, left_gripper, right_arm, right_gripper)
    return {"base": (base.start, base.stop), "torso": (torso.start, torso.stop),
            "arms": (torso.stop, spec.ACTION_DIM)}


@dataclass
class WBVIMAConfig:
    # observation / action windows
    obs_window: int = 2  # To
    horizon: int = 8  # T: actions predicted per observation step (public WB-VIMA: 8)
    n_action_steps: int = 8  # Ta: actions executed per prediction (<= horizon)
    action_dim: int = spec.ACTION_DIM
    proprio_dim: int = spec.ACTION_DIM  # base velocity 3 + torso 4 + arms 6+6 + grippers 1+1
    n_points: int = 4096
    point_dim: int = 6  # xyz (m, base_link) + rgb (0..1)
    # xyz normalisation box in base_link ((xmin, xmax), (ymin, ymax), (zmin, zmax)); the crop box
    xyz_box: tuple = ((0.0, 4.0), (-1.0, 1.0), (-0.5, 1.6))
    # encoders
    pointnet_hidden: int = 256
    pointnet_depth: int = 2
    proprio_hidden: int = 256
    proprio_depth: int = 2
    # transformer
    embed_dim: int = 256
    n_layers: int = 2
    n_heads: int = 8
    dropout: float = 0.1
    geglu: bool = True
    # diffusion heads
    unet_down_dims: tuple = (64, 128)
    unet_kernel_size: int = 5
    unet_n_groups: int = 8
    unet_cond_predict_scale: bool = True
    diffusion_step_embed_dim: int = 128
    num_train_timesteps: int = 100
    num_inference_steps: int = 16
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    autoregressive: bool = True  # False: the ablation, every part sees only the readout
    # normalisers: "minmax" (data range to [-1, 1]), "meanstd", or for proprio "limits" (the spec's
    # joint limits and base velocity limits to [-1, 1], as BRS does)
    action_norm: str = "minmax"
    proprio_norm: str = "limits"
    # position targets predicted relative to the joint positions of the chunk's observation
    # (base entries stay velocities); False: absolute targets
    relative_actions: bool = False
    # feed the measured base velocity to the proprio encoder. False zeroes it: in scripted demos the
    # next base command is the measured velocity (R^2 0.98), a shortcut that lets the policy copy
    # its own motion instead of steering by what it sees (causal confusion / "copycat")
    base_velocity_input: bool = True
    # training only: weight of an auxiliary loss that makes the point token predict the task
    # object's pose in base_link (x, y, yaw; brs_policy.object_targets) while the object rests.
    # The policy still sees no privileged state at run time; 0 turns the loss (and its head) off
    aux_object_weight: float = 0.0
    # which token the object-pose head reads: "point" (the point encoder's) or "readout" (the
    # transformer's, what conditions the denoisers: the pose then has to reach the action heads)
    aux_object_token: str = "point"
    # extra loss weight per part, on top of its share of the action's dimensions, e.g. {"base": 4}:
    # the base's 3 of 21 dimensions otherwise weigh 1/7 while it steers the whole approach
    part_loss_weights: dict = field(default_factory=dict)
    # the loss's units per component (x m, y m, yaw rad): the error is divided by these before it
    # is squared, so a smaller value weighs that component more
    aux_object_scale: tuple = (0.25, 0.25, 0.5)
    parts: dict = field(default_factory=_parts)

    def __post_init__(self):
        self.xyz_box = tuple(tuple(float(v) for v in pair) for pair in self.xyz_box)
        self.unet_down_dims = tuple(int(d) for d in self.unet_down_dims)
        self.aux_object_scale = tuple(float(v) for v in self.aux_object_scale)
        if len(self.aux_object_scale) != 3 or min(self.aux_object_scale) <= 0:
            raise ValueError(f"aux_object_scale needs 3 positive values (x, y, yaw), got {self.aux_object_scale}")
        self.parts = {k: tuple(int(i) for i in v) for k, v in self.parts.items()}
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"n_action_steps {self.n_action_steps} must be in 1..horizon {self.horizon}")
        if self.horizon % (2 ** (len(self.unet_down_dims) - 1)):
            raise ValueError(f"horizon {self.horizon} must be divisible by "
                             f"{2 ** (len(self.unet_down_dims) - 1)} (UNet downsampling)")
        if self.embed_dim % self.n_heads:
            raise ValueError(f"embed_dim {self.embed_dim} not divisible by n_heads {self.n_heads}")
        if self.action_norm not in ("minmax", "meanstd"):
            raise ValueError(f"action_norm must be 'minmax' or 'meanstd', got {self.action_norm!r}")
        if self.proprio_norm not in ("minmax", "meanstd", "limits"):
            raise ValueError(f"proprio_norm must be 'minmax', 'meanstd' or 'limits', got {self.proprio_norm!r}")
        if self.aux_object_token not in ("point", "readout"):
            raise ValueError(f"aux_object_token must be 'point' or 'readout', got {self.aux_object_token!r}")
        unknown = set(self.part_loss_weights) - set(self.parts)
        if unknown or not all(float(w) >= 0 for w in self.part_loss_weights.values()):
            raise ValueError(f"part_loss_weights {self.part_loss_weights}: parts of {sorted(self.parts)}, "
                             f"weights >= 0")
        self.part_loss_weights = {k: float(w) for k, w in self.part_loss_weights.items()}
        covered = sorted(i for a, b in self.parts.values() for i in range(a, b))
        if covered != list(range(self.action_dim)):
            raise ValueError(f"parts {self.parts} must tile the {self.action_dim}-D action exactly")

    def to_dict(self) -> dict:
        d = asdict(self)
        return json.loads(json.dumps(d))  # tuples -> lists, plain JSON types only

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> WBVIMAConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown WB-VIMA config keys {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> WBVIMAConfig:
        return cls.from_dict(json.loads(s))

    @classmethod
    def cpu(cls, **overrides) -> WBVIMAConfig:
        """The CPU preset: what trains in hours on a 2-core machine (docs/wbvima.md, "CPU preset").
        Same structure as the public config; 512 points, PointNet/proprio/transformer width 128
        (the PointNet was ~85 % of a training step at 1024 points and width 256), no base velocity
        input (the base steers by the points, not by copying its own motion), the base's loss
        weighted x4 (it steers the approach with 3 of 21 dimensions). Absolute joint targets, as
        the public config: relative ones (this preset until runs 1-5) drifted off the demos'
        posture keyframes in closed loop."""
        kw = dict(n_points=512, pointnet_hidden=128, proprio_hidden=128, embed_dim=128, n_heads=4,
                  base_velocity_input=False, part_loss_weights={"base": 4.0})
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def tiny(cls, **overrides) -> WBVIMAConfig:
        """A small model for tests and CPU smoke runs (same structure, fewer channels/points)."""
        kw = dict(n_points=128, pointnet_hidden=32, proprio_hidden=32, embed_dim=32, n_heads=4,
                  unet_down_dims=(16, 32), unet_n_groups=4, diffusion_step_embed_dim=16,
                  num_inference_steps=8)
        kw.update(overrides)
        return cls(**kw)
