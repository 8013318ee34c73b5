"""Train PLDM (vector encoder) on reward-free base-motion data; checkpoints for the planner node.

    python -m rl_agents.base_nav.train --data outputs/base_nav/random --out outputs/base_nav/pldm_base.pt

The loss is PLDM's own (`rl_agents.pldm.model.pldm_loss`: multi-step JEPA latent prediction,
VICReg variance + covariance, inverse dynamics, temporal smoothness); only the encoder differs
from Two Rooms: an MLP on the pose features (x, y normalised to the apartment, cos yaw, sin yaw).
The checkpoint (torch.save of tensors and plain types: loads with weights_only=True) carries the
model config, the feature normalisation and the action scaling (`motion`).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rl_agents.files import atomic_torch_save
from rl_agents.pldm.model import PLDM, PLDMConfig
from rl_agents.pldm.train import TrainConfig, fit, fit_config, pick_device, pldm_from_checkpoint

CHECKPOINT_KIND = "pldm_base_nav"


class PoseFeatures:
    """(x, y, yaw) -> (x', y') scaled to about [-1, 1], plus (cos yaw, sin yaw) when `use_yaw`.

    Default: position only (the heading is then tracked by the planner's heading controller,
    docs/base_planner.md "Why the latent holds the position only")."""

    def __init__(self, centre, scale, use_yaw: bool = False):
        self.centre = np.asarray(centre, np.float32)
        self.scale = np.asarray(scale, np.float32)
        self.use_yaw = bool(use_yaw)

    @property
    def dim(self) -> int:
        return 4 if self.use_yaw else 2

    @classmethod
    def from_bounds(cls, bounds, use_yaw: bool = False) -> "PoseFeatures":
        x0, x1, y0, y1 = bounds
        return cls([(x0 + x1) / 2, (y0 + y1) / 2], [(x1 - x0) / 2, (y1 - y0) / 2], use_yaw)

    def __call__(self, pose) -> np.ndarray:
        pose = np.asarray(pose, np.float32)
        xy = (pose[..., :2] - self.centre) / self.scale
        if not self.use_yaw:
            return xy.astype(np.float32)
        return np.concatenate([xy, np.cos(pose[..., 2:3]), np.sin(pose[..., 2:3])], -1).astype(np.float32)

    def state_dict(self) -> dict:
        return {"centre": self.centre.tolist(), "scale": self.scale.tolist(), "use_yaw": self.use_yaw}


def train(data: dict, model_cfg: PLDMConfig | None = None, cfg: TrainConfig | None = None,
          device: str | None = None, out: str | Path | None = None, progress: bool = True,
          use_yaw: bool = False):
    """use_yaw False (default): states (x, y), actions (vx, vy); True: states with cos/sin yaw,
    actions (vx, vy, wz)."""
    cfg = cfg or TrainConfig(steps=2000, batch_size=128, seq_len=16)
    dim = 4 if use_yaw else 2
    model_cfg = model_cfg or PLDMConfig(encoder="mlp", state_dim=dim, action_dim=dim - 1 if use_yaw else 2,
                                        latent_dim=16, hidden=128)
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    meta = data["meta"]
    feats = PoseFeatures.from_bounds(meta["bounds"], use_yaw)
    if model_cfg.state_dim != feats.dim:
        raise ValueError(f"state_dim {model_cfg.state_dim} != pose feature size {feats.dim}")
    states = torch.from_numpy(feats(data["poses"])).to(dev)  # (E, L+1, 2 or 4)
    act = np.asarray(data["actions"], np.float32)[..., :model_cfg.action_dim]
    actions = torch.from_numpy(np.ascontiguousarray(act)).to(dev)  # (E, L, 2 or 3)
    e, length = actions.shape[:2]
    if cfg.seq_len > length:
        raise ValueError(f"seq_len {cfg.seq_len} > episode length {length}")
    model = PLDM(model_cfg).to(dev)
    t0 = time.monotonic()
    ar = torch.arange(cfg.seq_len + 1, device=dev)

    def next_batch():
        ei = torch.from_numpy(rng.integers(0, e, cfg.batch_size)).to(dev)
        t0i = torch.from_numpy(rng.integers(0, length - cfg.seq_len + 1, cfg.batch_size)).to(dev)
        idx = t0i[:, None] + ar
        return states[ei[:, None], idx], actions[ei[:, None], idx[:, :-1]]

    log = fit(model, cfg, next_batch, "pldm base train", progress, cosine_decay=True)
    seconds = time.monotonic() - t0
    if out:
        save(out, model, feats, meta, cfg, seconds)
    return model, feats, log


def save(path, model: PLDM, feats: PoseFeatures, meta: dict, cfg: TrainConfig, seconds: float) -> Path:
    return atomic_torch_save({
        "kind": CHECKPOINT_KIND,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": asdict(model.cfg),
        "features": feats.state_dict(),
        "motion": dict(meta["motion"]),
        "train": {**asdict(cfg), "seconds": float(seconds)},
        "data": {k: meta[k] for k in ("episodes", "length", "seed", "door_crossing_fraction") if k in meta},
        "bounds": list(meta["bounds"]),
    }, path)


class CheckpointError(ValueError):
    pass


def load(path, device: str | torch.device = "cpu"):
    """(model, PoseFeatures, checkpoint dict). Raises CheckpointError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such file: {path}")
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # unpickling errors, truncated zip, not a torch file at all
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ck, dict) or ck.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is not a base-planner PLDM checkpoint (kind {ck.get('kind') if isinstance(ck, dict) else type(ck).__name__!r}, expected {CHECKPOINT_KIND!r}); train one with python -m rl_agents.base_nav.train")
    try:
        model = pldm_from_checkpoint(ck, device)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incompatible model ({exc})") from None
    f = ck["features"]
    return model, PoseFeatures(f["centre"], f["scale"], bool(f.get("use_yaw", True))), ck


def main(argv=None) -> None:
    import argparse
    import json

    from rl_agents.base_nav.data import load as load_data
    from rl_agents.pldm.fit_args import add_fit_arguments, apply_threads

    p = argparse.ArgumentParser(description="Train the base-planner PLDM on random base-motion data.")
    add_fit_arguments(p, data_help="dataset path without suffix (rl_agents.base_nav.data)",
                      steps=2000, batch_size=128, seq_len=16, threads=1)
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--use-yaw", action="store_true", help="encode (x, y, cos, sin yaw) and plan wz too")
    a = p.parse_args(argv)
    apply_threads(a)
    data = load_data(a.data)
    dim = 4 if a.use_yaw else 2
    mcfg = PLDMConfig(encoder="mlp", state_dim=dim, action_dim=3 if a.use_yaw else 2,
                      latent_dim=a.latent_dim, hidden=a.hidden)
    model, _, log = train(data, mcfg, fit_config(a),
                          a.device, a.out, use_yaw=a.use_yaw)
    last = {k: float(np.mean([x[k] for x in log[-100:]])) for k in log[-1]}
    print(json.dumps({"checkpoint": a.out, "final_losses": last}, indent=2))


if __name__ == "__main__":
    main()
