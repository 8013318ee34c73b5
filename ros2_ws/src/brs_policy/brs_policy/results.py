"""Compare policies on a sim task: success table (Wilson 95 % CI) and one figure.

Inputs are the files the tools already write: `summary.json` of `brs eval` (a checkpoint) or of
`brs collect` (the scripted expert; same `episodes` list of {seed, success, sim_seconds}), and
`metrics.json` of `brs train` (loss histories).

    python -m brs_policy.results --eval "WB-VIMA=outputs/eval/ar/bimanual_box/summary.json" \\
        --eval "expert=outputs/expert_eval/bimanual_box/summary.json" \\
        --train "WB-VIMA=outputs/wbvima/bimanual_box/metrics.json" --plot docs/img/wbvima_results.png

prints a markdown table (label, successes/episodes, rate, Wilson CI, seeds, mean sim seconds of the
successful episodes) and draws validation losses next to success rates with their intervals.
`--open-loop LABEL=policy.pt --episodes EP.h5 ...` adds how far each checkpoint's action chunks are
from the recorded ones on held-out episodes (open loop, per body part), next to holding still.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brs_common.stats import wilson_interval


@dataclass(frozen=True)
class Outcome:
    label: str
    successes: int
    episodes: int
    seeds: tuple[int, ...]
    success_seconds: float  # mean sim seconds of the successful episodes (nan if none)

    @property
    def rate(self) -> float:
        return self.successes / self.episodes

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)


def _read_json(path: Path, key: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict) or key not in data:
        raise ValueError(f"{path}: no {key!r} (expected a summary.json of brs eval/collect or a metrics.json of brs train)")
    return data


def load_outcome(label: str, *summaries: str | Path) -> Outcome:
    """The episodes of one or more summaries (e.g. two eval runs on consecutive seeds) as one row."""
    episodes = [e for path in summaries for e in _read_json(Path(path), "episodes")["episodes"]]
    if not episodes:
        raise ValueError(f"{', '.join(map(str, summaries))}: no episodes")
    wins = [e for e in episodes if e["success"]]
    return Outcome(label, len(wins), len(episodes), tuple(int(e["seed"]) for e in episodes),
                   float(np.mean([e["sim_seconds"] for e in wins])) if wins else float("nan"))


GROUPS = {"base": ["base"], "torso": ["torso"], "arms": ["left_arm", "right_arm"],
          "grippers": ["left_gripper", "right_gripper"]}


def open_loop_error(checkpoint: str | Path, episodes, stride: int = 4, batch: int = 32,
                    seed: int = 0, points_fn=None) -> dict:
    """Mean absolute error of the policy's action chunks against the recorded ones, per body part
    (base m/s and rad/s, the rest rad or gripper units), over every `stride`-th frame of `episodes`
    (the same windows and point clouds as training's validation). Also for holding still (base 0,
    every position joint where it is): the error a policy that does nothing makes.
    -> {"policy": {part: MAE}, "hold still": {part: MAE}, "windows": count}. `points_fn`: as for
    WindowDataset (default: the stack's perception with the crop box the checkpoint was trained on)."""
    import torch
    from brs_common import robot_spec as spec

    from .dataset import WindowDataset
    from .wbvima import load_policy

    policy = load_policy(checkpoint, device="cpu")
    cfg = policy.config
    ds = WindowDataset([Path(e) for e in episodes], cfg.obs_window, cfg.horizon, n_points=cfg.n_points,
                       points_fn=points_fn, crop=cfg.xyz_box)
    idx = np.arange(0, len(ds), stride)
    gen = torch.Generator().manual_seed(seed)
    err_policy, err_hold = [], []
    for k in range(0, len(idx), batch):
        b = ds.batch(idx[k:k + batch])
        truth = b["actions"][:, -1, :cfg.n_action_steps]  # (B, Ta, 21): the chunk from the last observation
        pred = policy.predict_chunk(b["points"], b["proprio"], generator=gen).float().numpy()
        hold = np.repeat(b["proprio"][:, -1:, :], truth.shape[1], axis=1)
        hold[..., spec.group_slice("base")] = 0.0  # proprio's first three entries are base velocities
        err_policy.append(np.abs(pred - truth).reshape(-1, truth.shape[-1]))
        err_hold.append(np.abs(hold - truth).reshape(-1, truth.shape[-1]))
    out = {}
    for name, err in (("policy", err_policy), ("hold still", err_hold)):
        err = np.concatenate(err)
        out[name] = {part: float(np.mean(np.concatenate([err[:, spec.group_slice(g)] for g in groups], axis=1)))
                     for part, groups in GROUPS.items()}
    out["windows"] = len(idx)
    return out


def open_loop_table(errors: dict[str, dict]) -> str:
    rows = ["| actions vs recorded (MAE) | " + " | ".join(GROUPS) + " |", "|---" * (len(GROUPS) + 1) + "|"]
    hold = None
    for label, err in errors.items():
        rows.append(f"| {label} | " + " | ".join(f"{err['policy'][p]:.3f}" for p in GROUPS) + " |")
        hold = err["hold still"]
    if hold is not None:
        rows.append("| hold still | " + " | ".join(f"{hold[p]:.3f}" for p in GROUPS) + " |")
    return "\n".join(rows)


def _seeds(seeds: tuple[int, ...]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) else ", ".join(map(str, seeds))


def markdown_table(outcomes: list[Outcome]) -> str:
    rows = ["| policy | success | rate | Wilson 95 % CI | seeds | mean sim s (successes) |",
            "|---|---|---|---|---|---|"]
    for o in outcomes:
        lo, hi = o.ci
        secs = "-" if np.isnan(o.success_seconds) else f"{o.success_seconds:.1f}"
        rows.append(f"| {o.label} | {o.successes}/{o.episodes} | {100 * o.rate:.0f} % | "
                    f"{100 * lo:.0f}-{100 * hi:.0f} % | {_seeds(o.seeds)} | {secs} |")
    return "\n".join(rows)


def plot(outcomes: list[Outcome], runs: dict[str, dict], path: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if runs else 1, figsize=(11 if runs else 5, 4), squeeze=False)
    if runs:
        ax = axes[0, 0]
        for label, m in runs.items():
            line = None
            if m.get("history"):
                s, l = np.array(m["history"]).T
                k = max(1, len(l) // 50)
                line, = ax.plot(s[k - 1:], np.convolve(l, np.ones(k) / k, "valid"), lw=1, alpha=0.6,
                                label=f"{label} train ({k}-step mean)")
            if m.get("val_history"):
                s, l = np.array(m["val_history"]).T
                ax.plot(s, l, "o-", ms=3, color=None if line is None else line.get_color(), label=f"{label} validation")
        ax.set_yscale("log")
        ax.set(xlabel="step", ylabel="epsilon MSE", title="training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[0, -1]
    x = np.arange(len(outcomes))
    rates = np.array([o.rate for o in outcomes])
    lo, hi = np.array([o.ci for o in outcomes]).T
    ax.bar(x, rates, color="tab:blue", alpha=0.7)
    ax.errorbar(x, rates, yerr=np.clip([rates - lo, hi - rates], 0, None), fmt="none", color="k", capsize=4)
    for xi, o in zip(x, outcomes):
        ax.text(xi, min(o.rate + 0.03, 0.95), f"{o.successes}/{o.episodes}", ha="center")
    ax.set_xticks(x, [o.label for o in outcomes])
    ax.set(ylim=(0, 1.05), ylabel="success rate (Wilson 95 % CI)", title=title or "closed loop in the sim")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pair(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brs_policy.results", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--eval", type=_pair, action="append", required=True, metavar="LABEL=SUMMARY",
                        help="summary.json of brs eval or brs collect (repeat; a repeated LABEL adds episodes to its row)")
    parser.add_argument("--train", type=_pair, action="append", default=[], metavar="LABEL=METRICS",
                        help="metrics.json of brs train (repeat)")
    parser.add_argument("--open-loop", type=_pair, action="append", default=[], metavar="LABEL=POLICY",
                        help="policy.pt to score open loop on --episodes (repeat)")
    parser.add_argument("--episodes", nargs="+", default=[], help="held-out episodes for --open-loop")
    parser.add_argument("--plot", help="write the figure here (png)")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        by_label: dict[str, list[str]] = {}
        for label, path in args.eval:
            by_label.setdefault(label, []).append(path)
        outcomes = [load_outcome(label, *paths) for label, paths in by_label.items()]
        runs = {label: _read_json(Path(path), "history") for label, path in args.train}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(outcomes))
    if args.open_loop:
        if not args.episodes:
            print("error: --open-loop needs --episodes", file=sys.stderr)
            return 2
        errors = {label: open_loop_error(path, args.episodes) for label, path in args.open_loop}
        print(f"\nopen loop on {len(args.episodes)} episode(s), "
              f"{next(iter(errors.values()))['windows']} windows:\n")
        print(open_loop_table(errors))
    if args.plot:
        plot(outcomes, runs, args.plot, args.title)
        print(f"figure: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
