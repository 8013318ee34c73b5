"""Plots and a text summary of one recorded episode (`brs record plot|show`).

The plot has one panel per command group: the base's commanded vs measured velocity (vx, vy, wz)
and, for the torso, each arm and each gripper, the measured joint positions (solid) against the
recorded action targets (dashed, same colour). A target the joint never reaches is where a
teleoperator pushed against a limit, the safety layer clamped, or the robot hit something.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brs_common import robot_spec as spec

PANELS = ("base", "torso", "left_arm", "left_gripper", "right_arm", "right_gripper")


def tracking_error(ep) -> dict[str, float]:
    """Per group: the largest |action target - measured| over the episode (rad or m; m/s for the
    base), the measured joint read at the same frame as the target."""
    out = {}
    state_of = {name: i for i, name in enumerate(spec.STATE_JOINTS)}
    for group in PANELS:
        cols = spec.group_slice(group)
        target = ep.action[:, cols].astype(float)
        if group == "base":
            measured = ep.base_velocity.astype(float)
        else:
            measured = ep.joint_position[:, [state_of[j] for j in spec.GROUPS[group].joints]].astype(float)
        out[group] = float(np.max(np.abs(target - measured))) if len(target) else 0.0
    return out


def summary(ep) -> dict[str, object]:
    """What `brs record show` prints: metadata, length, cameras, motion and tracking."""
    meta = ep.metadata
    path_xy = np.diff(ep.base_pose[:, :2], axis=0) if ep.n_frames > 1 else np.zeros((0, 2))
    rate = ep.n_frames / ep.duration if ep.duration > 0 else float("nan")
    return {
        "file": str(ep.path),
        "status": "complete" if ep.complete else "incomplete",
        "task": meta.get("task", ""),
        "source": meta.get("source", ""),
        "success": meta.get("success", "?"),
        "seed": meta.get("seed", ""),
        "frames": ep.n_frames,
        "duration_s": round(ep.duration, 2),
        "rate_hz": meta.get("rate_hz", ""),  # the recorder's setting
        "measured_rate_hz": round(rate, 2),  # frames / (last - first frame time): N frames span N-1 periods
        "dropped_frames": meta.get("dropped_frames", ""),
        "cameras": ", ".join(f"{n} {c.width}x{c.height}" for n, c in ep.cameras.items()) or "none",
        "base_distance_m": round(float(np.linalg.norm(path_xy, axis=1).sum()), 3),
        "base_turn_rad": round(float(np.abs(np.diff(np.unwrap(ep.base_pose[:, 2]))).sum()), 3)
        if ep.n_frames > 1 else 0.0,
        **{f"max_tracking_error_{g}": round(v, 4) for g, v in tracking_error(ep).items()},
    }


def episode_plot(episode_file: str | Path, out_png: str | Path) -> Path:
    """Write the episode's plot (see the module docstring) to `out_png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brs_teleop.episode import read_episode

    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    state_of = {name: i for i, name in enumerate(spec.STATE_JOINTS)}
    with read_episode(episode_file) as ep:
        if ep.n_frames < 2:
            raise ValueError(f"{episode_file}: {ep.n_frames} frame(s), nothing to plot")
        t = ep.time - ep.time[0]
        fig, axes = plt.subplots(len(PANELS), 1, figsize=(11, 2.2 * len(PANELS)), sharex=True)
        for ax, group in zip(axes, PANELS):
            cols = spec.group_slice(group)
            names = spec.GROUPS[group].joints
            for k, name in enumerate(names):
                colour = f"C{k}"
                measured = (ep.base_velocity[:, k] if group == "base"
                            else ep.joint_position[:, state_of[name]])
                ax.plot(t, measured, color=colour, lw=1.2, label=name.removeprefix(f"{group}_"))
                ax.plot(t, ep.action[:, cols][:, k], color=colour, lw=1.0, ls="--")
            ax.set_ylabel(f"{group}\n{'m/s, rad/s' if group == 'base' else 'rad / m'}", fontsize=8)
            ax.legend(fontsize=7, ncol=min(7, len(names)), loc="upper right")
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("time (s)")
        meta = ep.metadata
        fig.suptitle(f"{Path(episode_file).name}: {meta.get('task', '') or '(no task label)'} "
                     f"[{meta.get('source', '')}, success {meta.get('success', '?')}]  "
                     f"solid measured, dashed target", fontsize=10)
        fig.tight_layout()
        fig.savefig(out, dpi=90)
        plt.close(fig)
    return out
