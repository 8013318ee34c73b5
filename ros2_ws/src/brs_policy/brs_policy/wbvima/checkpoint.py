"""WB-VIMA checkpoints: config + weights (+ EMA, normaliser stats, robot spec hash, train state).

Only tensors and plain containers are stored, so they load with `torch.load(weights_only=True)`:
no pickled code runs from a checkpoint file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from brs_common import robot_spec as spec

from .config import WBVIMAConfig
from .policy import WBVIMAPolicy, pick_device

FORMAT = "brs-wbvima"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A file that is not a usable WB-VIMA checkpoint (the message says why)."""


def save_checkpoint(path: str | Path, model: WBVIMAPolicy, ema_state: dict | None = None,
                    train_state: dict | None = None, extra: dict | None = None) -> Path:
    """Atomic write (tmp file + rename) of a checkpoint; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # DDP
    data = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "config_json": model.config.to_json(),
        "robot_spec_hash": spec.spec_hash(),
        "action_joints": list(spec.ACTION_JOINTS),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    if ema_state is not None:
        data["ema"] = {**ema_state, "model": {k: v.detach().cpu() for k, v in ema_state["model"].items()}}
    if train_state is not None:
        data["train_state"] = train_state
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path, check_spec: bool = True, map_location="cpu") -> dict:
    """The checkpoint dict, validated; CheckpointError with a clear message otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for garbage (UnpicklingError, RuntimeError, ...)
        raise CheckpointError(f"{path}: not a readable WB-VIMA checkpoint (torch.load with "
                              f"weights_only=True failed: {type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a WB-VIMA checkpoint (format "
                              f"{data.get('format') if isinstance(data, dict) else type(data).__name__!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format_version {data.get('format_version')!r}; "
                              f"this code reads {FORMAT_VERSION}")
    for key in ("config_json", "model", "robot_spec_hash"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    if check_spec and data["robot_spec_hash"] != spec.spec_hash():
        raise CheckpointError(
            f"{path}: robot spec hash {data['robot_spec_hash']} != this robot's {spec.spec_hash()}: the "
            "policy was trained for a different robot spec (joints, limits or cameras changed); retrain, "
            "or pass check_spec=False if you know the action layout is the same")
    return data


def export_policy(src: str | Path, dst: str | Path, half: bool = True) -> Path:
    """A deployable copy of a checkpoint: the EMA weights (when present) as the model, no optimizer,
    EMA or train state; with `half` the large weight tensors stored as float16 (loaded back into
    the float32 model: ~2x smaller again; buffers and small tensors stay float32). What
    `brs_policy/checkpoints/*.pt` are."""
    data = read_checkpoint(src)
    state = data["ema"]["model"] if "ema" in data else data["model"]
    if half:
        state = {k: v.half() if v.is_floating_point() and v.numel() >= 1024 else v for k, v in state.items()}
    out = {k: data[k] for k in ("format", "format_version", "config_json", "robot_spec_hash", "action_joints")
           if k in data}
    out.update(model=state, extra={**data.get("extra", {}), "exported_from": str(src), "half": half})
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(out, tmp)
    os.replace(tmp, dst)
    return dst


def load_policy(path: str | Path, use_ema: bool = True, device=None, check_spec: bool = True,
                strict: bool = True) -> WBVIMAPolicy:
    """A WBVIMAPolicy in eval mode from a checkpoint (EMA weights when present and use_ema)."""
    data = read_checkpoint(path, check_spec)
    try:
        config = WBVIMAConfig.from_json(data["config_json"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad config in checkpoint: {exc}") from None
    model = WBVIMAPolicy(config)
    state = data["ema"]["model"] if use_ema and "ema" in data else data["model"]
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config: {str(exc)[:300]}") from None
    if not bool(model.action_normalizer.fitted):
        raise CheckpointError(f"{path}: action normaliser was never fitted (an untrained model?)")
    return model.to(pick_device(device)).eval()
