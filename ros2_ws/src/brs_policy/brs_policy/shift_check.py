"""Does a policy look at an object? Move the object's points and see whether the actions follow.

For chosen frames of held-out episodes (the training windows: same clouds, same proprio), the
points of both observation frames that lie inside `region` (a box in base_link, e.g. around the
box on the floor during the approach) are moved by -shift and +shift, and the policy's action
chunk is predicted for the moved and the original windows with the same noise seeds. A policy that
uses the object answers with different actions; one that reproduces the demos' mean trajectory does
not. The low open-loop error of such a policy says nothing about this: when the demos' object
positions vary little, the mean trajectory is close to every demo.

    python -m brs_policy.shift_check CKPT --episodes EP.h5 ... --frames 10 25 \\
        --region 0.2,1.3,-1,1,0.015,0.25 --shift 0,0.1,0

prints per window the points moved and the mean predicted base velocity (vx, vy, wz over the
chunk and the seeds) for -shift / 0 / +shift, the recorded one, and the mean absolute change of
the arm targets between -shift and +shift. Bad input: one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def shift_response(checkpoint, episodes, frames, region, shift, seeds: int = 8, points_fn=None) -> list[dict]:
    """One dict per (episode, frame): moved (points per observation frame), base (3 rows: mean
    predicted base velocity for -shift, 0, +shift), recorded (mean recorded base velocity),
    arms_change (mean |arm/gripper target(+shift) - target(-shift)|)."""
    import torch

    from brs_common import robot_spec as spec

    from .dataset import WindowDataset
    from .wbvima import load_policy

    box = np.asarray(region, dtype=np.float32).reshape(3, 2)
    shift = np.asarray(shift, dtype=np.float32).reshape(3)
    policy = load_policy(checkpoint, device="cpu")
    cfg = policy.config
    ds = WindowDataset([Path(e) for e in episodes], cfg.obs_window, cfg.horizon, n_points=cfg.n_points,
                       points_fn=points_fn, crop=cfg.xyz_box)
    base, arms = spec.group_slice("base"), slice(spec.group_slice("torso").stop, spec.ACTION_DIM)
    rows = []
    for e, ep in enumerate(ds.episodes):
        for t in frames:
            if not 0 <= t < ep.n:
                raise ValueError(f"frame {t} is outside episode {ep.path.name} ({ep.n} frames)")
            s = ds.sample(int(np.flatnonzero((ds.index[:, 0] == e) & (ds.index[:, 1] == t))[0]))
            xyz = s["points"][..., :3]
            inside = np.all((xyz >= box[:, 0]) & (xyz <= box[:, 1]), axis=-1)  # (To, P)
            chunks = []
            for sign in (-1.0, 0.0, 1.0):
                pts = s["points"].copy()
                pts[..., :3] += np.where(inside[..., None], sign * shift, 0.0)
                chunks.append(np.stack([
                    policy.predict_chunk(pts[None], s["proprio"][None],
                                         generator=torch.Generator().manual_seed(k))[0].numpy()
                    for k in range(seeds)]))  # (seeds, Ta, 21)
            rows.append({"episode": ep.path.name, "frame": int(t), "moved": inside.sum(-1).tolist(),
                         "base": [c[..., base].mean((0, 1)).tolist() for c in chunks],
                         "recorded": s["actions"][-1][:, base].mean(0).tolist(),
                         "arms_change": float(np.abs(chunks[2][..., arms] - chunks[0][..., arms]).mean())})
    return rows


def _floats(text: str, n: int) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n or not np.all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated numbers, got {text!r}")
    return values


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m brs_policy.shift_check", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--episodes", nargs="+", required=True, help="held-out episode files")
    p.add_argument("--frames", nargs="+", type=int, default=[10], help="frame indices (default 10)")
    p.add_argument("--region", type=lambda s: _floats(s, 6), required=True,
                   help="xmin,xmax,ymin,ymax,zmin,zmax in base_link: the points to move")
    p.add_argument("--shift", type=lambda s: _floats(s, 3), default=[0.0, 0.1, 0.0], help="dx,dy,dz (m)")
    p.add_argument("--seeds", type=int, default=8, help="noise seeds per window (default 8)")
    args = p.parse_args(argv)
    from .wbvima import CheckpointError

    try:
        rows = shift_response(args.checkpoint, args.episodes, args.frames, args.region, args.shift, args.seeds)
    except (CheckpointError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"shift_check: {exc}", file=sys.stderr)
        return 2
    print("| episode | frame | points moved | base v, -shift | base v, 0 | base v, +shift | recorded | arms change |")
    print("|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "(" + ", ".join(f"{x:+.3f}" for x in v) + ")"  # noqa: E731
    for r in rows:
        print(f"| {r['episode']} | {r['frame']} | {r['moved']} | {fmt(r['base'][0])} | {fmt(r['base'][1])} | "
              f"{fmt(r['base'][2])} | {fmt(r['recorded'])} | {r['arms_change']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
