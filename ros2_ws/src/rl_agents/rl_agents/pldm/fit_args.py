"""The command-line arguments every PLDM-style trainer shares (`brs plan train`, the Two Rooms
and base-planner training scripts); `rl_agents.pldm.train.fit_config` turns them into a
TrainConfig. Cheap to import (argparse only)."""

from __future__ import annotations

import argparse

METHODS = ("pldm", "gcbc", "gciql")  # the goal-reaching methods `brs plan train` trains


def add_device_arguments(p: argparse.ArgumentParser, threads: int = 0) -> None:
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda when available)")
    p.add_argument("--threads", type=int, default=threads,
                   help="torch CPU threads (0: torch default; 1 on a busy CPU; default %(default)s)")


def add_fit_arguments(p: argparse.ArgumentParser, *, data_help: str, steps: int, batch_size: int,
                      seq_len: int, threads: int = 0) -> None:
    """The arguments of every PLDM-style trainer (`brs plan train`, Two Rooms and base-planner
    scripts); the defaults differ per trainer. Pair with `rl_agents.pldm.train.fit_config`."""
    p.add_argument("--data", required=True, help=data_help)
    p.add_argument("--out", required=True, help="checkpoint file (.pt)")
    p.add_argument("--steps", type=int, default=steps, help="optimiser steps (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="(default %(default)s)")
    p.add_argument("--seq-len", type=int, default=seq_len,
                   help="predicted steps per training sequence (default %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="(default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    add_device_arguments(p, threads)


def apply_threads(args) -> None:
    """`--threads` of `add_device_arguments`: torch's CPU threads (0 leaves torch's default)."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
