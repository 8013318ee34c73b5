"""File helpers shared by the trainers and dataset generators: atomic checkpoints, .npz + .json datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def atomic_torch_save(obj, path: str | Path) -> Path:
    """torch.save to PATH.tmp, then rename: a crash never leaves a half-written checkpoint."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def save_npz_json(out: str | Path, arrays: dict, meta: dict) -> Path:
    """Write `arrays` to OUT.npz (compressed) and `meta` to OUT.json."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out.with_suffix(".npz"), **arrays)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return out


def load_npz_json(path: str | Path) -> dict:
    """The arrays of PATH.npz plus "meta" from PATH.json (what save_npz_json wrote)."""
    path = Path(path)
    with np.load(path.with_suffix(".npz")) as z:
        data = {k: z[k] for k in z.files}
    data["meta"] = json.loads(path.with_suffix(".json").read_text())
    return data
