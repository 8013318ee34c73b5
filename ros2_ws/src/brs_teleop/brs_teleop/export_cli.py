"""`brs export lerobot|mcap ...`: dataset exporters on the command line (registered in brs.cli).

Importing this module is cheap; the exporters (pyarrow, rosbags, ffmpeg) load when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LEROBOT_EXAMPLES = """\
examples:
  brs export lerobot data/demos data/demos_lerobot
  brs export lerobot data/demos data/demos_lerobot --repo-id me/brs_demos --fps 5 --overwrite
  brs export lerobot data/demos /tmp/no_depth --no-depth --skip-incomplete

Load it with lerobot:
  LeRobotDataset("me/brs_demos", root="data/demos_lerobot")
"""

MCAP_EXAMPLES = """\
examples:
  brs export mcap data/demos/episode_000003.h5 data/bags   # -> data/bags/episode_000003/
  brs export mcap data/demos data/bags --overwrite          # one bag per episode
  brs export mcap data/demos data/bags --task "put the cup in the sink"   # for unlabelled episodes

Open a bag in Foxglove (the .mcap file), with `ros2 bag info data/bags/episode_000003`,
or in Python with rosbags.highlevel.AnyReader([Path("data/bags/episode_000003")]).
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT_DIR if it exists and is not empty (only once the export succeeded)")
    p.add_argument("--skip-incomplete", action="store_true",
                   help="export the complete episodes even if the folder holds .partial ones "
                        "(default: refuse)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.add_argument("--task", default="", help="task text for episodes recorded without one (default: "
                                              "refuse such episodes)")


def add_parser(sub) -> None:
    """Register `export` with its `lerobot` and `mcap` subcommands on brs's subparsers."""
    p = sub.add_parser(
        "export", help="convert recorded episodes to LeRobot v3.0 or rosbag2 MCAP",
        description="Convert brs episode files (HDF5, docs/episode_format.md) to other formats. "
                    "Only complete, valid episodes are read; sources are never modified and the "
                    "output appears only when the export succeeded.",
        epilog="`brs export lerobot --help`, `brs export mcap --help` for each format.")
    formats = p.add_subparsers(dest="format", required=True, metavar="format")

    lr = formats.add_parser(
        "lerobot", help="a folder of episodes -> LeRobotDataset v3.0",
        description="Write a LeRobotDataset v3.0 (meta/, data/ parquet, videos/ H.264 mp4) from\n"
                    "the complete episodes of DATASET_DIR. Features: observation.state (joint\n"
                    "positions + base velocity), action (21-D, ACTION_JOINTS), observation.velocity,\n"
                    "observation.effort, observation.base_pose, observation.images.<camera> (video),\n"
                    "observation.depth.<camera> (uint16 millimetres, 0 = no depth).",
        epilog=LEROBOT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    lr.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR", help="folder of episode_*.h5 files")
    lr.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="the LeRobot dataset folder to write")
    lr.add_argument("--repo-id", default=None,
                    help="dataset name for the card, e.g. me/brs_demos (default: local/<OUT_DIR name>)")
    lr.add_argument("--fps", type=int, default=None,
                    help="output frame rate (default: the recorded rate); lower picks the "
                         "nearest frames")
    lr.add_argument("--no-depth", dest="depth", action="store_false",
                    help="leave out observation.depth.* (much smaller data files)")
    _common(lr)
    lr.set_defaults(func=_lerobot)

    mc = formats.add_parser(
        "mcap", help="an episode or a folder -> rosbag2 MCAP bag(s)",
        description="Write one rosbag2 MCAP bag per episode into OUT_DIR/<episode name>/:\n"
                    "/joint_states, /odom, the controller's commanded state, camera images\n"
                    "(rgb8, 32FC1) and camera_info, stamped with the recorded frame times.",
        epilog=MCAP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    mc.add_argument("source", type=Path, metavar="EPISODE_OR_DIR",
                    help="an episode_*.h5 file or a folder of them")
    mc.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder for the bag folders")
    mc.add_argument("--no-compress", dest="compress", action="store_false",
                    help="write uncompressed MCAP chunks (default: zstd, about 2x smaller for "
                         "camera images, slower to write)")
    _common(mc)
    mc.set_defaults(func=_mcap)


def _lerobot(args) -> int:
    from brs_teleop.export_lerobot import export_lerobot

    s = export_lerobot(args.dataset_dir, args.out_dir, repo_id=args.repo_id, fps=args.fps,
                       include_depth=args.depth, overwrite=args.overwrite,
                       skip_incomplete=args.skip_incomplete, default_task=args.task,
                       progress=args.progress)
    print(f"wrote {s.out_dir}: {s.episodes} episodes, {s.frames} frames at {s.fps} fps "
          f"in {s.seconds:.1f} s ({s.frames_per_s:.0f} frames/s)")
    for warning in s.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _mcap(args) -> int:
    from brs_teleop.export_mcap import export_mcap

    s = export_mcap(args.source, args.out_dir, overwrite=args.overwrite,
                    skip_incomplete=args.skip_incomplete, compress=args.compress,
                    default_task=args.task, progress=args.progress)
    print(f"wrote {len(s.bags)} bag(s) to {s.out_dir}: {s.frames} frames, {s.messages} messages "
          f"in {s.seconds:.1f} s")
    for bag in s.bags:
        print(f"  {bag}")
    return 0
