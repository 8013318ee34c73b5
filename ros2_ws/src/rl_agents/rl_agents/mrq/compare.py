"""Our MR.Q evaluation curves beside the authors' published ones, as a markdown table and a plot.

    python -m rl_agents.mrq.compare outputs/mrq/dmc_cartpole-balance_s0 ... \
        --reference MRQ/results/dmc_results.txt --plot docs/img/mrq_vs_reference.png

Each run folder is one `brs rl train` output (its `config.json` names the env, `eval.csv` holds
`step,return`). The reference file is one of the authors' results files (results/ of
https://github.com/facebookresearch/MRQ, cloned to MRQ/ above), in their format: blocks headed `Env: NAME`,
then rows `timestep seed0 seed1 ...`. Our `dmc/cartpole-balance` is their `Dmc-cartpole-balance`,
`gym/HalfCheetah-v5` their `Gym-HalfCheetah-v4` (the version is named in the table).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np


def parse_reference(path: Path) -> dict[str, dict[int, np.ndarray]]:
    """{reference env name: {agent step: returns of every seed}}."""
    curves: dict[str, dict[int, np.ndarray]] = {}
    current = None
    for line in path.read_text().splitlines():
        head = re.match(r"\s*Env:\s*(\S+)", line)
        if head:
            current = curves.setdefault(head.group(1), {})
            continue
        fields = line.split()
        if current is not None and fields and fields[0].isdigit():
            current[int(fields[0])] = np.array([float(x) for x in fields[1:]])
    return curves


def reference_name(env: str) -> str:
    """Our registry name -> the authors' env name (`dmc/cheetah-run` -> `Dmc-cheetah-run`)."""
    suite, _, task = env.partition("/")
    if suite == "dmc":
        return f"Dmc-{task}"
    if suite == "dmc-pixels":
        return f"Dmc-visual-{task}"
    if suite == "gym":
        return "Gym-" + re.sub(r"-v\d+$", "-v4", task)
    raise ValueError(f"no reference naming for {env!r}")


def read_run(folder: Path) -> tuple[str, int, dict[int, float]]:
    """(env, seed, {agent step: evaluation return}) of one `brs rl train` output folder."""
    config = json.loads((folder / "config.json").read_text())
    with open(folder / "eval.csv", newline="") as f:
        returns = {int(row["step"]): float(row["return"]) for row in csv.DictReader(f)}
    return config["env"], int(config.get("seed", 0)), returns


def comparison_rows(runs: list[Path], reference: dict[str, dict[int, np.ndarray]]) -> list[dict]:
    """One row per (env, evaluated step): our returns over seeds beside the reference's."""
    by_env: dict[str, dict[int, list[float]]] = {}
    seeds: dict[str, list[int]] = {}
    for folder in runs:
        env, seed, returns = read_run(folder)
        seeds.setdefault(env, []).append(seed)
        for step, value in returns.items():
            by_env.setdefault(env, {}).setdefault(step, []).append(value)
    rows = []
    for env, steps in sorted(by_env.items()):
        ref = reference.get(reference_name(env), {})
        for step in sorted(steps):
            ours = np.array(steps[step])
            theirs = ref.get(step)
            rows.append({"env": env, "reference_env": reference_name(env), "step": step,
                         "seeds": sorted(seeds[env]), "ours_mean": float(ours.mean()),
                         "ours_std": float(ours.std()), "n": len(ours),
                         "ref_mean": None if theirs is None else float(theirs.mean()),
                         "ref_std": None if theirs is None else float(theirs.std()),
                         "ref_n": 0 if theirs is None else len(theirs)})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| env (ours / authors') | agent steps | ours (seeds) | authors' (10 seeds) |",
             "|---|---|---|---|"]
    for r in rows:
        ours = f"{r['ours_mean']:.0f}" + (f" ± {r['ours_std']:.0f}" if r["n"] > 1 else "")
        ours += f" ({', '.join(map(str, r['seeds']))})"
        ref = "-" if r["ref_mean"] is None else f"{r['ref_mean']:.0f} ± {r['ref_std']:.0f}"
        lines.append(f"| {r['env']} / {r['reference_env']} | {r['step']:,} | {ours} | {ref} |")
    return "\n".join(lines)


def plot(rows: list[dict], reference: dict[str, dict[int, np.ndarray]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r["env"] for r in rows})
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.2), squeeze=False)
    for ax, env in zip(axes[0], envs):
        mine = [r for r in rows if r["env"] == env]
        last = max(r["step"] for r in mine)
        ref = reference.get(reference_name(env), {})
        steps = sorted(s for s in ref if s <= max(last, 5000) * 1.5)
        if steps:
            mean = np.array([ref[s].mean() for s in steps])
            std = np.array([ref[s].std() for s in steps])
            ax.plot(steps, mean, color="gray", label="authors (10 seeds)")
            ax.fill_between(steps, mean - std, mean + std, color="gray", alpha=0.25)
        ax.plot([r["step"] for r in mine], [r["ours_mean"] for r in mine], "o-", color="C0",
                label="ours")
        ax.set_title(env)
        ax.set_xlabel("agent steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rl_agents.mrq.compare",
        description="Our MR.Q evaluation returns beside the authors' curves (markdown table, plot).")
    parser.add_argument("runs", nargs="+", type=Path, help="`brs rl train` output folders")
    parser.add_argument("--reference", type=Path, required=True,
                        help="the authors' results file (e.g. dmc_results.txt)")
    parser.add_argument("--plot", type=Path, help="write the curves as a PNG here")
    args = parser.parse_args(argv)
    for path in [args.reference, *args.runs]:
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
    try:
        reference = parse_reference(args.reference)
        rows = comparison_rows(args.runs, reference)
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(rows))
    if args.plot:
        plot(rows, reference, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
