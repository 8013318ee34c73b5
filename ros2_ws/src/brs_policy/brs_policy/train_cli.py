"""`brs train`: train a WB-VIMA policy on recorded episodes. Importing this module is cheap.

Also runnable as `python -m brs_policy.train_cli ...` (and under torchrun for multi-GPU DDP).
"""

from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """\
examples:
  # CPU preset (this 2-core machine): 512 points, width 128, relative targets
  brs train --preset cpu --data outputs/collect/bimanual_box/episodes --out outputs/wbvima/bimanual_box \\
            --batch 64 --steps 15000 --threads 2
  brs train --preset cpu --data ... --out outputs/wbvima/bimanual_box --steps 20000 --resume   # continue
  # public scale on a GPU: 4096 points, batch 256, 300k steps (the defaults)
  brs train --data DIR --out DIR --device cuda
  # several GPUs (DistributedDataParallel, batch split across ranks)
  torchrun --nproc_per_node 4 -m brs_policy.train_cli --data DIR --out DIR
  # tiny smoke run (small model, 256 points)
  brs train --data DIR --out /tmp/wbvima_smoke --tiny --points 256 --batch 8 --steps 50
"""


def add_parser(sub) -> None:
    """Register `train` on brs's subparsers."""
    p = sub.add_parser("train", help="train a WB-VIMA policy on recorded episodes",
                       description="Train WB-VIMA (docs/wbvima.md): point clouds are computed once per "
                                   "episode with the stack's perception and cached next to the data.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    p.set_defaults(func=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, nargs="+", help="dataset folder(s) or episode files")
    p.add_argument("--out", required=True, help="output folder (checkpoints, policy.pt, loss.png)")
    p.add_argument("--steps", type=int, default=300_000, help="training steps (default: public 300k)")
    p.add_argument("--batch", type=int, default=256, help="batch size, all ranks together (default 256)")
    p.add_argument("--preset", choices=("public", "cpu"), default="public",
                   help="model configuration: the public WB-VIMA one (default; GPU scale) or the CPU preset")
    p.add_argument("--points", type=int, default=None,
                   help="points per cloud fed to the model (default: the preset's, 4096 public, 512 cpu)")
    p.add_argument("--lr", type=float, default=7e-4)
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default min(1000, steps/20))")
    p.add_argument("--ckpt-every", type=int, default=1000)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-episodes", type=int, default=None, help="held-out episodes (default 10%%)")
    p.add_argument("--include-failures", action="store_true",
                   help="also train on episodes that record a failure (left out by default)")
    p.add_argument("--crop", default=None, help="perception crop: task name (default: the episodes' task)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--tiny", action="store_true", help="a small model (smoke tests on a CPU)")
    p.add_argument("--no-autoregressive", action="store_true",
                   help="ablation: every part's denoiser sees only the transformer readout")
    p.add_argument("--aux-object-weight", type=float, default=None, metavar="W",
                   help="training only: weight of the loss that makes the point token predict the sim "
                        "task object's pose in base_link (default 0: off; needs sim episodes)")
    p.add_argument("--aux-object-scale", type=float, nargs=3, default=None, metavar=("X", "Y", "YAW"),
                   help="units of the object-pose loss (default 0.25 m, 0.25 m, 0.5 rad; smaller weighs more)")
    p.add_argument("--targets", choices=("absolute", "relative"), default=None,
                   help="joint position targets as absolute positions or relative to the observed joints "
                        "(default: the preset's, absolute for both)")
    p.add_argument("--aux-object-token", choices=("point", "readout"), default=None,
                   help="the token the object-pose head reads: the point encoder's (default) or the "
                        "transformer readout that conditions the action heads")
    p.add_argument("--part-loss-weight", action="append", default=[], metavar="PART=W",
                   help="extra loss weight of a part (base, torso, arms) on top of its share of the "
                        "action's dimensions; repeatable, e.g. --part-loss-weight base=4")
    p.add_argument("--no-progress", action="store_true")


def _part_weight(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise ValueError(f"--part-loss-weight {text!r}: expected PART=W, e.g. base=4") from None


def config_from_args(args):
    from .train import TrainConfig
    from .wbvima import WBVIMAConfig

    preset = WBVIMAConfig.tiny() if args.tiny else WBVIMAConfig.cpu() if args.preset == "cpu" else WBVIMAConfig()
    points = args.points if args.points is not None else preset.n_points
    model = {k: v for k, v in preset.to_dict().items() if k not in ("parts", "xyz_box", "n_points")}
    model = {k: v for k, v in model.items() if v != WBVIMAConfig().to_dict()[k]}  # only what differs
    if args.no_autoregressive:
        model["autoregressive"] = False
    if args.targets is not None:
        model["relative_actions"] = args.targets == "relative"
    if args.aux_object_token:
        model["aux_object_token"] = args.aux_object_token
    if args.part_loss_weight:
        model["part_loss_weights"] = dict(_part_weight(text) for text in args.part_loss_weight)
    if args.aux_object_weight:
        model["aux_object_weight"] = args.aux_object_weight
    if args.aux_object_scale:
        model["aux_object_scale"] = list(args.aux_object_scale)
    return TrainConfig(data=args.data, include_failures=args.include_failures, out=args.out, steps=args.steps, batch=args.batch, points=points,
                       lr=args.lr, warmup_steps=args.warmup, ckpt_every=args.ckpt_every,
                       val_every=args.val_every, val_episodes=args.val_episodes, crop=args.crop,
                       seed=args.seed, device=args.device, threads=args.threads, resume=args.resume,
                       model=model, progress=not args.no_progress)


def run(args) -> int:
    from .train import train

    try:
        metrics = train(config_from_args(args))
    except FileNotFoundError as exc:  # a missing dataset: one line, exit 2 (ValueError: brs's own handler)
        print(f"brs train: error: {exc}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in metrics.items() if k not in ("history", "val_history")}
    print(json.dumps(summary, indent=1))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="brs train", epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
