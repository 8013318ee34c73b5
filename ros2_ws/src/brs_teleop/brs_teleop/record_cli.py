"""`brs record status|start|stop|discard|list|validate|show|video|plot`: the episode recorder on
the command line.

status/start/stop/discard talk to a running `episode_recorder` node (brs_bringup.graph_client);
list/validate/show/video/plot only read files. Importing this module is cheap (registered in brs.cli).
Arguments are checked before any ROS setup (rclpy context, DDS discovery), so a bad one fails at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from brs_common.cli_args import check_timeout

EXAMPLES = """\
examples:
  brs bringup use_sim:=true mode:=record            # terminal 1: sim + controller + JoyLo + recorder
  brs record start --task "put the box on the table" # terminal 2: new episode (or Joy-Con +)
  brs record stop                                   # save it (Joy-Con -), or: brs record discard
  brs record status                                 # live: episode, duration, frames, dropped; Ctrl-C quits
  brs record status --once                          # one snapshot (also what a pipe or script gets)
  brs record list outputs/episodes                  # frames, duration, task, status per episode
  brs record validate outputs/episodes/episode_000003.h5
  brs record validate outputs/episodes              # every episode of a folder
  brs record show outputs/episodes/episode_000003.h5    # task, length, cameras, tracking error
  brs record video outputs/episodes/episode_000003.h5   # -> outputs/episodes/episode_000003.mp4
  brs record plot outputs/episodes/episode_000003.h5    # -> outputs/episodes/episode_000003.png
"""

SERVICE_HELP = {
    "start": "begin a new episode (the Joy-Con + button does the same)",
    "stop": "finish the episode and save it as complete (Joy-Con -)",
    "discard": "finish the episode and delete it (Joy-Con capture)",
}


def add_parser(sub) -> None:
    """Register `record` and its subcommands on brs's subparsers."""
    p = sub.add_parser(
        "record", help="episode recorder: start/stop/discard, live status, list and validate episodes",
        description="Control the episode recorder node of a running graph (mode:=record) and inspect "
                    "the HDF5 episodes it writes (docs/teleop.md, 'Recording episodes').",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="record_command", required=True, metavar="command")

    s = cmds.add_parser("status", help="live recorder status from /diagnostics (Ctrl-C quits)",
                        description="Show the recorder's status (recording?, episode, duration, "
                                    "frames, dropped frames, output dir, free space, limits) as it "
                                    "arrives on /diagnostics. On a terminal the view stays live; Ctrl-C "
                                    "quits. When stdout is not a terminal (a pipe, a file, a script) it "
                                    "prints one snapshot and exits, as --once does.",
                        epilog="examples:\n  brs record status            # live; Ctrl-C quits\n"
                               "  brs record status --once     # one snapshot, for scripts\n"
                               "  brs record status | cat      # not a terminal: one snapshot",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--once", action="store_true",
                   help="print the first status received and exit (the default when stdout is not a terminal)")
    s.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the recorder's first status (default %(default)s)")
    s.set_defaults(func=_status)

    for name, text in SERVICE_HELP.items():
        c = cmds.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}: calls "
                            f"/episode_recorder/{name} (std_srvs/Trigger) and prints its answer.",
                            epilog=f"example:\n  brs record {name}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        c.add_argument("--timeout", type=float, default=30.0,
                       help="seconds to wait for the recorder (default %(default)s)")
        if name == "start":
            c.add_argument("--task", help="task label of this and the next episodes (the recorder's `task` "
                                          "parameter; required unless the graph has one, e.g. task:=...)")
        c.set_defaults(func=_service, service=name)

    ls = cmds.add_parser("list", help="episodes of a folder: frames, duration, task, status",
                         description="List the episode files of DIR (complete and .partial).",
                         epilog="example:\n  brs record list outputs/episodes",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.add_argument("dir", type=Path, metavar="DIR")
    ls.set_defaults(func=_list)

    v = cmds.add_parser("validate", help="check episode files; exit 1 if any is invalid",
                        description="Validate episode files (schema, completeness, shapes, finite "
                                    "values, robot spec hash, a task label); a folder means all its "
                                    "episodes.",
                        epilog="examples:\n  brs record validate outputs/episodes/episode_000003.h5\n"
                               "  brs record validate outputs/episodes --any-spec",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("paths", type=Path, nargs="+", metavar="FILE")
    v.add_argument("--any-spec", action="store_true",
                   help="accept episodes recorded with another robot spec (joints, limits, cameras)")
    v.set_defaults(func=_validate)

    sh = cmds.add_parser("show", help="one episode: task, source, length, cameras, motion, tracking error",
                         description="Print an episode's metadata and a summary of what happened: frames, "
                                     "duration, measured rate, cameras, base distance and turn, and per "
                                     "group the largest gap between the recorded target and the measured joint.",
                         epilog="examples:\n  brs record show outputs/episodes/episode_000003.h5\n"
                                "  brs record show outputs/episodes/episode_000003.h5 --json",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sh.add_argument("episode", type=Path, metavar="EPISODE")
    sh.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    sh.set_defaults(func=_show)

    for name, what, ext in (("video", "an mp4 of the cameras side by side, at the record rate", "mp4"),
                            ("plot", "a PNG: measured joints vs targets per group, base velocity "
                                     "commanded vs measured", "png")):
        c = cmds.add_parser(name, help=f"write {what.split(':')[0]}",
                            description=f"Write {what} of EPISODE (default: next to it, .{ext}).",
                            epilog=f"examples:\n  brs record {name} outputs/episodes/episode_000003.h5\n"
                                   f"  brs record {name} outputs/episodes/episode_000003.h5 -o /tmp/ep3.{ext}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        c.add_argument("episode", type=Path, metavar="EPISODE")
        c.add_argument("-o", "--output", type=Path, help=f"output .{ext} file")
        c.set_defaults(func=_video if name == "video" else _plot, ext=ext)


# ---- files -------------------------------------------------------------------------------------

def _list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from brs_teleop import episode as ep

    if not args.dir.is_dir():
        raise ValueError(f"{args.dir} is not a folder")
    complete, incomplete = ep.list_episodes(args.dir)
    rows = ep.summarize(sorted(complete + incomplete, key=ep.episode_index))
    if not rows:
        print(f"no episodes in {args.dir}")
        return 0
    table = Table(title=f"{args.dir}: {len(complete)} complete, {len(incomplete)} incomplete",
                  title_justify="left")
    for column in ("episode", "frames", "duration", "task", "source", "success", "status"):
        table.add_column(column, justify="right" if column in ("frames", "duration") else "left",
                         no_wrap=column == "episode")
    success = {1: "yes", 0: "no"}
    for r in rows:
        style = {"complete": "", "incomplete": "yellow"}.get(r["status"], "red")
        table.add_row(r["path"].name, str(r["n_frames"]), f"{r['duration']:.1f} s", r["task"],
                      r["source"], success.get(r["success"], "?"),
                      r["status"] + (f": {r['error']}" if r["error"] else ""), style=style)
    Console(width=None if sys.stdout.isatty() else 160).print(table)  # piped: no truncation
    return 0


def _validate(args) -> int:
    from brs_common.robot_spec import spec_hash
    from brs_teleop import episode as ep

    paths = []
    for p in args.paths:
        if p.is_dir():
            complete, incomplete = ep.list_episodes(p)
            paths += sorted(complete + incomplete, key=ep.episode_index)
        else:
            paths.append(p)
    bad = 0
    for path in paths:
        try:
            meta = ep.validate_episode(path, spec_hash=None if args.any_spec else spec_hash())
        except ep.EpisodeError as exc:
            bad += 1
            print(f"INVALID {exc}")
        else:
            if not ep.has_task_label(meta):  # datasets index episodes by it
                bad += 1
                print(f"INVALID {path}: no task label (task {meta.get('task', '')!r}): {ep.NO_TASK_LABEL_FIX}")
                continue
            print(f"ok      {path}: {meta['n_frames']} frames, task {meta['task']!r}, "
                  f"{meta['dropped_frames']} dropped")
    if not paths:
        print("no episode files given")
    return 1 if bad or not paths else 0


def _open_episode(path: Path):
    from brs_teleop import episode as ep

    if not path.is_file():
        raise ValueError(f"{path}: no such episode file")
    try:
        episode = ep.read_episode(path)
    except ep.EpisodeError as exc:
        raise ValueError(str(exc)) from None
    if episode.n_frames == 0:
        episode.close()
        raise ValueError(f"{path}: no frames")
    return episode


def _output(args) -> Path:
    out = args.output or args.episode.with_name(args.episode.name.split(".")[0] + f".{args.ext}")
    if out.suffix != f".{args.ext}":
        raise ValueError(f"--output must end in .{args.ext}; got {out}")
    return out


def _show(args) -> int:
    import json

    from brs_teleop.episode_plot import summary

    with _open_episode(args.episode) as episode:
        info = summary(episode)
    if args.json:
        print(json.dumps(info, indent=1, default=str))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _video(args) -> int:
    import shutil
    import tempfile

    from brs_teleop.episode_video import episode_video

    out = _output(args)
    with _open_episode(args.episode) as episode:
        if not episode.cameras:
            raise ValueError(f"{args.episode}: recorded without cameras, no video to make")
    with tempfile.TemporaryDirectory() as tmp:  # episode_video names its file after the episode
        made = episode_video(args.episode, Path(tmp))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(made, out)
    print(out)
    return 0


def _plot(args) -> int:
    from brs_teleop.episode_plot import episode_plot

    _open_episode(args.episode).close()
    print(episode_plot(args.episode, _output(args)))
    return 0


# ---- the running recorder ----------------------------------------------------------------------

def _client():
    from brs_bringup.graph_client import GraphClient

    return GraphClient("brs_record")


def _service(args) -> int:
    # every argument check comes first: before ROS starts (rclpy init, discovery take seconds)
    check_timeout(args.timeout)
    task = getattr(args, "task", None)
    if task is not None and not task.strip():
        raise ValueError("--task must not be empty")
    from std_srvs.srv import Trigger

    from brs_common import topics

    name = {"start": topics.RECORDER_START, "stop": topics.RECORDER_STOP,
            "discard": topics.RECORDER_DISCARD}[args.service]
    client = _client()
    try:
        if task is not None:
            client.set_parameters(topics.RECORDER_NODE, {"task": task}, timeout=args.timeout)
        response = client.call(Trigger, name, timeout=args.timeout,
                               on_wait=lambda text: print(f"brs record {args.service}: {text}", file=sys.stderr))
    except RuntimeError as exc:
        print(f"brs record {args.service}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(response.message, file=sys.stdout if response.success else sys.stderr)
    return 0 if response.success else 1


STATUS_NAME_SUFFIX = ": recorder"


def status_table(message: str, values: dict):
    from rich.table import Table

    recording = values.get("recording") == "true"
    table = Table(show_header=False, title="episode recorder", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    dropped = int(values.get("dropped_frames", 0))
    frames = int(values.get("frames", 0))
    rows = [
        ("state", f"[red]● recording[/] {values.get('episode', '')}" if recording else "idle"),
        ("duration", f"{float(values.get('duration_s', 0)):.1f} s"),
        ("frames", str(frames)),
        ("dropped", f"{dropped} ({100.0 * dropped / max(1, frames + dropped):.1f} %): "
                    f"stale {values.get('dropped_stale', 0)}, "
                    f"queue full {values.get('dropped_queue_full', 0)}, invalid {values.get('dropped_invalid', 0)}"),
        ("queued", values.get("queued", "0")),
        ("output dir", values.get("output_dir", "")
         + (f" ({values['free_mb']} MB free)" if "free_mb" in values else "")),
        ("limits", f"max_duration {values.get('max_duration_s', '-')} s, "
                   f"min_free_mb {values.get('min_free_mb', '-')} MB (0 = off)"),
        ("saved", f"{values.get('saved_episodes', 0)} this session; last {values.get('last_saved') or '-'}"),
        ("message", message),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _status(args) -> int:
    check_timeout(args.timeout)  # before ROS starts
    from rich.console import Console
    from rich.live import Live

    from brs_common import topics

    name = topics.RECORDER_NODE + STATUS_NAME_SUFFIX
    client = _client()
    try:
        try:
            client.wait_status(name, lambda v: True, args.timeout, "the episode recorder's status")
        except TimeoutError:
            print(f"no status from {topics.RECORDER_NODE} on /diagnostics within {args.timeout:g} s: "
                  "is it running (brs bringup ... mode:=record) on this ROS_DOMAIN_ID?", file=sys.stderr)
            return 1
        # a live view only on a terminal: a pipe or a script gets one snapshot, never a wait for Ctrl-C
        if args.once or not sys.stdout.isatty():
            Console().print(status_table(*client.status(name)))
            return 0
        with Live(status_table(*client.status(name)), refresh_per_second=4) as live:
            try:
                while True:
                    time.sleep(0.25)
                    live.update(status_table(*client.status(name)))
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        client.close()
