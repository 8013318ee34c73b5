"""PLDM vs GCBC vs GCIQL on Two Rooms: a small, resumable experiment grid.

    python -m rl_agents.pldm.experiments [--out outputs/pldm_grid] [--seeds 0 1 2] [--steps 1500]

Grid: method (pldm, gcbc, gciql) x data quality (noisy goal-directed, random walk) x seed. Each
cell trains on the default layout (vertical wall, door at 0.5) and is evaluated on four cases with
fixed evaluation seeds (the same starts/goals for every method): same room, across the door, and
an unseen layout (horizontal wall at 0.5, door at 0.3) same room and across its door. A uniform
random policy is evaluated once per case. Small scale as in docs/pldm.md: 32x32 observations,
max_step 0.08, success radius 0.1, datasets 1000 episodes x 30 steps (coverage 0.3).

Resumable: every finished cell is written to OUT/cells/<method>_<quality>_s<seed>.json and skipped
on the next run; OUT/results.json and OUT/results.md aggregate whatever cells exist.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rl_agents.pldm.baselines import METHODS, load_agent, train_method
from rl_agents.pldm.train import evaluate
from rl_agents.two_rooms import Layout, TwoRoomsEnv
from rl_agents.two_rooms_data import generate, load

SMALL = {"img_size": 32, "max_step": 0.08, "success_radius": 0.1, "episodes": 1000, "length": 30, "coverage": 0.3}
UNSEEN = Layout("horizontal", 0.5, 0.3, 0.2)
# name -> (layout, goal_mode, max_episode_steps, eval seed)
CASES = {
    "same_room": (Layout(), "same_room", 40, 10_000),
    "across_door": (Layout(), "other_room", 60, 20_000),
    "unseen_same_room": (UNSEEN, "same_room", 40, 30_000),
    "unseen_across_door": (UNSEEN, "other_room", 60, 40_000),
}


def make_env(case: str, scale: dict = SMALL) -> TwoRoomsEnv:
    layout, mode, steps, _ = CASES[case]
    return TwoRoomsEnv(layout, scale["img_size"], scale["max_step"], steps, scale["success_radius"], mode,
                       min_goal_dist=0.3)


def dataset(out: Path, quality: str, scale: dict = SMALL) -> dict:
    path = out / "data" / quality
    if path.with_suffix(".json").exists():
        return load(path)
    return generate(scale["episodes"], scale["length"], quality, scale["coverage"], seed=0, max_step=scale["max_step"],
                    img_size=scale["img_size"], out=path, progress=False)


def eval_cases(policy, episodes: int, cases=tuple(CASES), scale: dict = SMALL) -> dict:
    res = {}
    for case in cases:
        r = evaluate(make_env(case, scale), policy, episodes, seed=CASES[case][3])
        res[case] = {k: r[k] for k in ("success_rate", "mean_final_dist", "episodes", "seconds")}
    return res


def run_cell(out: Path, method: str, quality: str, seed: int, steps: int, episodes: int, lr: float) -> dict:
    key = f"{method}_{quality}_s{seed}"
    path = out / "cells" / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    data = dataset(out, quality)
    t0 = time.monotonic()
    ck = out / "checkpoints" / f"{key}.pt"
    train_method(method, data, steps, seed, ck, lr=lr, progress=False)
    train_s = time.monotonic() - t0
    agent, _ = load_agent(ck, seed=seed)
    res = {"method": method, "quality": quality, "seed": seed, "steps": steps, "lr": lr, "train_seconds": train_s,
           "dataset": {"episodes": SMALL["episodes"], "length": SMALL["length"], "coverage": SMALL["coverage"],
                       "stats": data["meta"]["stats"]},
           "cases": eval_cases(agent, episodes)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2))
    return res


def aggregate(out: Path) -> dict:
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    rows: dict = {}
    for c in cells:
        row = rows.setdefault(f"{c['method']}|{c['quality']}", {"method": c["method"], "quality": c["quality"],
                                                                 "seeds": [], "cases": {}})
        row["seeds"].append(c["seed"])
        for case, r in c["cases"].items():
            d = row["cases"].setdefault(case, {"success": [], "final_dist": []})
            d["success"].append(r["success_rate"])
            d["final_dist"].append(r["mean_final_dist"])
    for row in rows.values():
        for d in row["cases"].values():
            for k in ("success", "final_dist"):
                d[f"{k}_mean"] = float(np.mean(d[k]))
                d[f"{k}_std"] = float(np.std(d[k]))
    summary = {"scale": SMALL, "cases": {k: {"layout": v[0].to_dict(), "goal_mode": v[1], "max_episode_steps": v[2],
                                             "eval_seed": v[3]} for k, v in CASES.items()},
               "rows": list(rows.values())}
    rnd = out / "random.json"
    if rnd.exists():
        summary["random"] = json.loads(rnd.read_text())
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "results.md").write_text(table(summary))
    return summary


def table(summary: dict) -> str:
    cases = list(CASES)
    head = "| method | data | seeds | " + " | ".join(c.replace("_", " ") for c in cases) + " |"
    lines = [head, "|" + "---|" * (3 + len(cases))]
    order = {m: i for i, m in enumerate(METHODS)}
    for row in sorted(summary["rows"], key=lambda r: (r["quality"], order.get(r["method"], 9))):
        cells = []
        for c in cases:
            d = row["cases"].get(c)
            cells.append("-" if d is None else
                         f"{d['success_mean']:.2f} ± {d['success_std']:.2f} ({d['final_dist_mean']:.2f})")
        lines.append(f"| {row['method']} | {row['quality']} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    if "random" in summary:
        r = summary["random"]
        lines.append("| random actions | - | - | " + " | ".join(
            f"{r[c]['success_rate']:.2f} ({r[c]['mean_final_dist']:.2f})" for c in cases) + " |")
    return "\n".join(lines) + "\n\nsuccess rate mean ± std over seeds (mean final distance)\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/pldm_grid"))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--qualities", nargs="+", choices=("noisy", "random", "expert"), default=["noisy", "random"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=1500, help="training steps for every method")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes per case")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if not (a.out / "random.json").exists():
        (a.out / "random.json").write_text(json.dumps(eval_cases("random", a.episodes), indent=2))
    # seed-major order: a partial grid still has every method and quality for the first seeds
    for seed in a.seeds:
        for quality in a.qualities:
            for method in a.methods:
                c0 = time.monotonic()
                res = run_cell(a.out, method, quality, seed, a.steps, a.episodes, a.lr)
                print(f"[{time.monotonic() - t0:7.0f} s] {method:5s} {quality:6s} s{seed}: " + "  ".join(
                    f"{k} {v['success_rate']:.2f}" for k, v in res["cases"].items())
                      + f"  ({time.monotonic() - c0:.0f} s)", flush=True)
                aggregate(a.out)
    print(table(aggregate(a.out)))
    print(f"grid done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
