"""`brs plan`: Two Rooms datasets, PLDM / GCBC / GCIQL training and goal-reaching evaluation.

  brs plan data   -> rl_agents.two_rooms_data.generate (writes PATH.npz + PATH.json)
  brs plan train  -> pldm | gcbc | gciql on a dataset, one checkpoint file (torch.load weights_only)
  brs plan eval   -> success rate (with a 95% Wilson interval) and final distance vs random actions

Errors (missing or unreadable dataset / checkpoint, bad arguments) exit with code 2 and name the file.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from brs_common.cli_args import check_count
from brs_common.stats import wilson_interval
from rl_agents.pldm.fit_args import METHODS, add_device_arguments, add_fit_arguments, apply_threads

DATA_EXAMPLES = """examples:
  brs plan data --out data/two_rooms/noisy --episodes 1000 --length 30 --quality noisy --coverage 0.3 \\
      --max-step 0.08 --img-size 32
  brs plan data --out data/two_rooms/random --quality random --coverage 0.3
"""

TRAIN_EXAMPLES = """examples:
  brs plan train --method pldm  --data data/two_rooms/noisy --out outputs/plan/pldm.pt  --steps 1500 --seed 0
  brs plan train --method gcbc  --data data/two_rooms/noisy --out outputs/plan/gcbc.pt  --steps 1500
  brs plan train --method gciql --data data/two_rooms/random --out outputs/plan/gciql.pt --steps 1500 --device cuda
"""

EVAL_EXAMPLES = """examples:
  brs plan eval --checkpoint outputs/plan/pldm.pt --episodes 20
  brs plan eval --checkpoint outputs/plan/gcbc.pt --goal-mode other_room --max-episode-steps 60
  brs plan eval --checkpoint outputs/plan/pldm.pt --layout horizontal,0.5,0.3,0.2   # unseen layout
"""


def add_parser(sub) -> None:
    """Register `plan` (data, train, eval) on brs's subparsers."""
    plan = sub.add_parser("plan", help="goal-reaching planners on Two Rooms (PLDM, GCBC, GCIQL)",
                          description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = plan.add_subparsers(dest="plan_command", required=True, metavar="command")
    _add_data(s)
    _add_train(s)
    _add_eval(s)


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="generate an offline reward-free Two Rooms dataset",
                       description="Generate an offline reward-free Two Rooms dataset (positions, actions, "
                                   "pursued goals; images are rendered on the fly by the trainers).",
                       epilog=DATA_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output path without suffix (.npz and .json are written)")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--length", type=int, default=30, help="steps per episode (default %(default)s)")
    p.add_argument("--quality", choices=("random", "expert", "noisy"), default="noisy")
    p.add_argument("--coverage", type=float, default=None, help="fraction of episodes crossing the door")
    p.add_argument("--noise", type=float, default=0.5, help="action noise std (x max_step) for 'noisy'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-step", type=float, default=0.08)
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--layout", default="vertical,0.5,0.5,0.2", help="WALL,WALL_POS,DOOR_CENTER,DOOR_WIDTH")
    p.set_defaults(func=_data)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train pldm | gcbc | gciql on a dataset",
                       description="Train a goal-reaching method on a Two Rooms dataset and write one checkpoint "
                                   "(loadable with torch.load(weights_only=True); it records the method and the "
                                   "dataset's max_step, image size and layout).",
                       epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=METHODS, required=True)
    add_fit_arguments(p, data_help="dataset path (with or without .npz), from `brs plan data`",
                      steps=1500, batch_size=64, seq_len=4)
    p.add_argument("--channels", type=int, default=32, help="conv channels (all methods)")
    p.add_argument("--hidden", type=int, default=128, help="MLP width (all methods)")
    p.set_defaults(func=_train)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="success rate of a checkpoint vs random actions",
                       description="Evaluate a pldm / gcbc / gciql checkpoint on Two Rooms goal reaching and "
                                   "print a table: success rate with a 95% Wilson interval and the std over "
                                   "episodes, mean final distance, for the agent and for uniform random actions "
                                   "(the same starts and goals).",
                       epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint from `brs plan train`")
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes (default %(default)s)")
    p.add_argument("--layout", default=None,
                   help="WALL,WALL_POS,DOOR_CENTER,DOOR_WIDTH, e.g. horizontal,0.5,0.3,0.2 "
                        "(default: the training layout)")
    p.add_argument("--goal-mode", choices=("same_room", "other_room", "any"), default="same_room")
    p.add_argument("--max-episode-steps", type=int, default=40)
    p.add_argument("--success-radius", type=float, default=0.1)
    p.add_argument("--min-goal-dist", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=10_000, help="first evaluation episode seed")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    p.add_argument("--max-step", type=float, default=None,
                   help="only for checkpoints that do not record it (from `python -m rl_agents.pldm.train`)")
    add_device_arguments(p)
    p.set_defaults(func=_eval)


def parse_layout(text: str):
    from rl_agents.two_rooms import Layout

    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"--layout expects WALL,WALL_POS,DOOR_CENTER,DOOR_WIDTH, got {text!r}")
    try:
        return Layout(parts[0], float(parts[1]), float(parts[2]), float(parts[3]))
    except ValueError as exc:
        raise ValueError(f"bad --layout {text!r}: {exc}") from exc


def load_dataset(path: str | Path) -> dict:
    """two_rooms_data.load with errors that name the file (ValueError -> exit code 2)."""
    from rl_agents.two_rooms_data import load

    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    for f in (p.with_suffix(".npz"), p.with_suffix(".json")):
        if not f.is_file():
            raise ValueError(f"dataset file not found: {f} (create it with `brs plan data --out {p}`)")
    try:
        data = load(p)
        for k in ("positions", "actions"):
            if k not in data:
                raise KeyError(k)
        for k in ("max_step", "img_size", "layout"):
            if k not in data["meta"]:
                raise KeyError(f"meta.{k}")
    except Exception as exc:  # noqa: BLE001 - zip/json/key errors all mean an unusable dataset
        raise ValueError(f"{p.with_suffix('.npz')}: not a valid Two Rooms dataset ({type(exc).__name__}: {exc})") from exc
    return data


def _data(args) -> int:
    from rl_agents.two_rooms_data import generate

    d = generate(args.episodes, args.length, args.quality, args.coverage, args.seed, parse_layout(args.layout),
                 args.max_step, args.noise, args.out, img_size=args.img_size)
    print(json.dumps(d["meta"]["stats"], indent=2))
    print(f"wrote {Path(args.out).with_suffix('.npz')} and {Path(args.out).with_suffix('.json')}")
    return 0


def _train(args) -> int:
    from rl_agents.pldm.baselines import train_method

    check_count("--steps", args.steps)
    apply_threads(args)
    data = load_dataset(args.data)
    if args.method == "pldm" and args.seq_len > int(data["meta"]["length"]):
        raise ValueError(f"--seq-len {args.seq_len} is longer than the dataset's episodes ({data['meta']['length']})")
    _, log = train_method(args.method, data, args.steps, args.seed, args.out, args.device, args.batch_size, args.lr,
                          args.seq_len, progress=True, model_size={"channels": args.channels, "hidden": args.hidden})
    last = {k: round(v, 4) for k, v in log[-1].items()}
    print(f"{args.method}: {args.steps} steps, final losses {last}; checkpoint {args.out}")
    return 0


def _eval(args) -> int:
    from rl_agents.pldm.baselines import load_agent
    from rl_agents.pldm.train import evaluate, pick_device
    from rl_agents.two_rooms import Layout, TwoRoomsEnv

    check_count("--episodes", args.episodes)
    apply_threads(args)
    agent, ck = load_agent(args.checkpoint, pick_device(args.device), max_step=args.max_step)
    meta = ck.get("meta", {})
    img_size = int(meta.get("img_size", ck["config"].get("img_size", 0)))
    if not img_size:
        raise ValueError(f"{args.checkpoint} does not record the image size")
    layout = parse_layout(args.layout) if args.layout else Layout(**meta.get("layout", {}))
    env = TwoRoomsEnv(layout, img_size, agent.max_step, args.max_episode_steps,
                      args.success_radius, args.goal_mode, args.min_goal_dist)
    method = ck.get("method", "pldm")
    rows = {method: evaluate(env, agent, args.episodes, args.seed, progress=True),
            "random": evaluate(env, "random", args.episodes, args.seed)}
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.checkpoint}: {args.episodes} episodes, {args.goal_mode}, layout "
                        f"{layout.wall_orientation} wall {layout.wall_pos} door {layout.door_center}",
                  title_justify="left")
    for col in ("policy", "success", "95% CI", "std", "final dist"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    out = {}
    for name, r in rows.items():
        k = round(r["success_rate"] * args.episodes)
        lo, hi = wilson_interval(k, args.episodes)
        std = math.sqrt(r["success_rate"] * (1 - r["success_rate"]))
        out[name] = {**r, "ci95": [lo, hi], "std": std}
        table.add_row(name, f"{r['success_rate']:.2f}", f"[{lo:.2f}, {hi:.2f}]", f"{std:.2f}",
                      f"{r['mean_final_dist']:.3f}")
    Console().print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"checkpoint": str(args.checkpoint), "layout": layout.to_dict(),
                                         "goal_mode": args.goal_mode, "results": out}, indent=2))
    return 0
