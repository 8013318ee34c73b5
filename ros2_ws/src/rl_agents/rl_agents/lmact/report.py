"""Summaries of results files: normalised scores with intervals, a table and a figure.

Normalised score of an episode = (score - R) / (E - R), where R and E are the mean scores of the
random policy and of the expert on the same evaluation seeds (the run's reference records): 0 is
random, 1 the expert. Its interval is a percentile bootstrap of the mean over episodes (numpy,
seeded: the same file gives the same interval); success rates get Wilson intervals
(brs_common.stats). When E == R the normalised score is undefined (nan).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from brs_common.stats import wilson_interval

from .runner import load_results


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (nan, nan for no values)."""
    x = np.asarray(values, np.float64)
    if x.size == 0 or not np.isfinite(x).all():
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (resamples, x.size))].mean(1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def summarize(results: dict) -> list[dict]:
    """One row per number of demonstrations of one results file (`runner.load_results`)."""
    run = results["run"]
    refs: dict[str, dict[int, float]] = defaultdict(dict)
    for r in results["references"]:
        refs[r["policy"]][r["seed"]] = r["score"]
    by_k: dict[int, list[dict]] = defaultdict(list)
    for e in results["episodes"]:
        by_k[e["num_demos"]].append(e)
    rows = []
    for k in sorted(by_k):
        eps = sorted(by_k[k], key=lambda e: e["seed"])
        seeds = [e["seed"] for e in eps]
        rand = [refs["random"][s] for s in seeds if s in refs["random"]]
        expert = [refs["expert"][s] for s in seeds if s in refs["expert"]]
        r_mean = float(np.mean(rand)) if rand else math.nan
        e_mean = float(np.mean(expert)) if expert else math.nan
        scores = np.array([e["score"] for e in eps], np.float64)
        span = e_mean - r_mean
        norm = (scores - r_mean) / span if span and math.isfinite(span) else np.full_like(scores, math.nan)
        wins, steps = sum(bool(e["success"]) for e in eps), sum(e["steps"] for e in eps)
        lo, hi = bootstrap_ci(norm)
        s_lo, s_hi = wilson_interval(wins, len(eps))
        rows.append({
            "env": run["env"], "model": run["model"], "obs": run["obs"], "num_demos": k, "episodes": len(eps),
            "score": float(scores.mean()), "random_score": r_mean, "expert_score": e_mean,
            "normalised": float(norm.mean()), "normalised_ci": [lo, hi],
            "success_rate": wins / len(eps), "success_ci": [s_lo, s_hi],
            "illegal_per_step": sum(e["illegal"] for e in eps) / max(steps, 1),
            "tokens_per_episode": sum(e["prompt_tokens"] + e["completion_tokens"] for e in eps) / len(eps),
            "ms_per_action": 1000 * sum(e["latency_s"] for e in eps) / max(steps, 1),
            "min_demos_in_context": min(e["demos_in_context"] for e in eps),
        })
    return rows


def summarize_dir(folder: str | Path) -> list[dict]:
    """Rows of every *.jsonl results file in `folder`, sorted by env, model, obs, demos."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise ValueError(f"{folder} holds no results files (*.jsonl)")
    rows = [row for f in files for row in summarize(load_results(f))]
    return sorted(rows, key=lambda r: (r["env"], r["model"], r["obs"], r["num_demos"]))


def _f(x: float, digits: int = 2) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}f}"


def format_table(rows: Sequence[dict]) -> str:
    """A markdown table of `summarize` rows."""
    lines = ["| env | model | obs | demos | episodes | score (random / expert) | normalised [95% CI] "
             "| success [Wilson 95%] | illegal/step | tokens/ep | model ms/action |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["normalised_ci"]
        s_lo, s_hi = r["success_ci"]
        demos = f"{r['num_demos']}" + (f" (>= {r['min_demos_in_context']} fit)"
                                        if r["min_demos_in_context"] < r["num_demos"] else "")
        lines.append(
            f"| {r['env']} | {r['model']} | {r['obs']} | {demos} | {r['episodes']} | {_f(r['score'])} "
            f"({_f(r['random_score'])} / {_f(r['expert_score'])}) | {_f(r['normalised'])} [{_f(lo)}, {_f(hi)}] | "
            f"{100 * r['success_rate']:.0f}% [{100 * s_lo:.0f}, {100 * s_hi:.0f}] | {_f(r['illegal_per_step'])} | "
            f"{r['tokens_per_episode']:.0f} | {_f(r['ms_per_action'], 3)} |")
    return "\n".join(lines)


def _x(k: int) -> float:
    """Demo counts on a log2 axis with 0 one step left of 1."""
    return 0.0 if k == 0 else 1.0 + math.log2(k)


def plot(rows: Sequence[dict], path: str | Path, title: str = "LMAct: normalised score vs demonstrations") -> None:
    """Normalised score vs number of demos, one panel per env, one line per model/obs (bootstrap bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r["env"] for r in rows})
    fig, axes = plt.subplots(1, len(envs), figsize=(3.6 * len(envs), 3.4), squeeze=False, sharey=True)
    for ax, env in zip(axes[0], envs):
        series = defaultdict(list)
        for r in rows:
            if r["env"] == env:
                series[(r["model"], r["obs"])].append(r)
        for i, ((model, obs), rs) in enumerate(sorted(series.items())):
            rs.sort(key=lambda r: r["num_demos"])
            x = np.array([_x(r["num_demos"]) for r in rs]) + 0.06 * (i - (len(series) - 1) / 2)
            y = np.array([r["normalised"] for r in rs])
            lo = np.array([r["normalised_ci"][0] for r in rs])
            hi = np.array([r["normalised_ci"][1] for r in rs])
            label = model if len({o for _, o in series}) == 1 else f"{model} ({obs})"
            ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], marker="o", ms=4, capsize=3,
                        label=label)
        ks = sorted({r["num_demos"] for r in rows if r["env"] == env})
        ax.set_xticks([_x(k) for k in ks], [str(k) for k in ks])
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.axhline(1, color="grey", lw=0.8, ls=":")
        ax.set_title(env)
        ax.set_xlabel("demonstrations in context")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("normalised score (0 random, 1 expert)")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
