"""`brs eval`: closed-loop success rate of a WB-VIMA checkpoint in the sim. Importing this is cheap."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
examples:
  brs eval --task bimanual_box --episodes 20 --checkpoint outputs/wbvima/bimanual_box/policy.pt
  brs eval --task trash_to_spot --episodes 5 --first-seed 100 --checkpoint policy.pt --record-failures
  brs eval --task bimanual_box --episodes 2 --checkpoint policy.pt --time-limit 20 policy.device:=cuda
"""


def add_parser(sub) -> None:
    """Register `eval` on brs's subparsers."""
    from brs_sim.tasks import TASKS

    p = sub.add_parser(
        "eval", help="evaluate a WB-VIMA checkpoint closed loop in the sim graph",
        description="Bring up use_sim:=true mode:=policy with the task and the checkpoint (sim, "
                    "whole-body controller, perception, policy node; + episode recorder with "
                    "--record-failures) and run EPISODES episodes with seeds FIRST_SEED, ...: home, "
                    "reset, /policy/start, wait for the task's success or time limit. Prints the "
                    "success rate with a Wilson 95 % interval; OUTPUT_DIR/TASK/summary.json.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(TASKS), help="sim task")
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default %(default)s)")
    p.add_argument("--checkpoint", required=True, help="policy.pt from `brs train`")
    p.add_argument("--first-seed", type=int, default=1000,
                   help="seed of the first episode (default %(default)s: away from `brs collect`'s 0..)")
    p.add_argument("--output-dir", type=Path, default=Path("outputs/eval"),
                   help="summary.json, logs/, episodes/ and videos/ go to OUTPUT_DIR/TASK (default %(default)s)")
    p.add_argument("--record-failures", action="store_true",
                   help="record every episode, keep failed ones (HDF5 + camera video), discard successes")
    p.add_argument("--record-all", action="store_true",
                   help="record and keep every episode, successes too (e.g. for success videos)")
    p.add_argument("--no-video", dest="video", action="store_false", help="no videos of recorded failures")
    p.add_argument("--time-limit", type=float, default=None,
                   help="sim seconds per episode (default: the task's time limit)")
    p.add_argument("--speed-factor", type=float, default=1.0, help="sim time / wall time (default %(default)s)")
    p.add_argument("arguments", nargs="*", metavar="key:=value", help="parameter overrides, as for brs bringup")
    p.set_defaults(func=run)


def run(args) -> int:
    from brs_bringup.graph import parse_launch_arguments

    from .evaluate import evaluate, format_summary

    summary = evaluate(args.task, args.episodes, args.checkpoint, args.first_seed, args.output_dir,
                       args.record_failures or args.record_all, args.speed_factor, args.time_limit, args.video,
                       parse_launch_arguments(args.arguments), keep_successes=args.record_all)
    for e in summary["episodes"]:
        print(f"episode {e['episode']} seed {e['seed']}: {'success' if e['success'] else 'FAIL'} "
              f"({e['sim_seconds']:.1f} s sim, {e['wall_seconds']:.0f} s wall, {e['chunks']} chunks)"
              + (f" {e['file']} {e['video']}" if e["file"] else ""))
    if summary["episodes_run"] < args.episodes:
        print(f"stopped after {summary['episodes_run']} of {args.episodes} episodes")
    print(format_summary(summary))
    print(f"summary: {args.output_dir / args.task / 'summary.json'}")
    return 0 if summary["episodes_run"] else 1
