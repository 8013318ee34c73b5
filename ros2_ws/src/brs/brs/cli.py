"""The `brs` command line: bringup, demo and graph inspection of the BRS stack.

Arguments after the subcommand are ros2-launch style `key:=value` pairs: the bringup arguments
of brs_bringup.graph.LAUNCH_ARGUMENTS (use_sim, mode) and node parameter overrides (speed_factor:=3.0).
A new subcommand is one `_add_<name>(subparsers)` function registered in SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from brs_bringup import graph
from brs_bringup.graph import parse_launch_arguments
from brs_common.cli_args import check_count


def _arguments_help() -> str:
    lines = ["bringup arguments (key:=value):"]
    for arg in graph.LAUNCH_ARGUMENTS:
        choices = f" {{{'|'.join(arg.choices)}}}" if arg.choices else ""
        lines.append(f"  {arg.name}:={arg.default}{choices}\n      {arg.description}")
    lines.append("  <parameter>:=<value>\n      override a node parameter from config/*.yaml, "
                 "e.g. speed_factor:=3.0 (list them with `brs graph`)")
    return "\n".join(lines)


def _add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arguments", nargs="*", metavar="key:=value",
                        help="bringup arguments and parameter overrides (see below)")


# ---- bringup -----------------------------------------------------------------------------------

def _add_bringup(sub) -> None:
    p = sub.add_parser(
        "bringup", help="run the node graph here, one process per node (like ros2 launch)",
        description="Run the BRS node graph, one OS process per node, the same graph that "
                    "`ros2 launch brs bringup.launch.py` starts. Ctrl-C stops every node cleanly.",
        epilog=_arguments_help() + "\n\nexample: brs bringup use_sim:=true mode:=idle speed_factor:=2.0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_args(p)
    p.add_argument("--log-dir", type=Path, default=Path("outputs/logs"),
                   help="copy each node's output to LOG_DIR/<node>.log (default: %(default)s)")
    p.add_argument("--status", action=argparse.BooleanOptionalAction, default=None,
                   help="live status table (default: when stdout is a terminal)")
    p.add_argument("--dry-run", action="store_true", help="print the node command lines and exit")
    p.set_defaults(func=_bringup)


def _run(nodes, args) -> int:
    from brs_bringup.graph_client import GraphClient
    from brs_bringup.runner import Runner

    runner = Runner(nodes, log_dir=args.log_dir, live=args.status)  # sets the graph's DDS defaults
    console = GraphClient("brs_bringup_console")  # every node's /diagnostics level on the console
    runner.health = console.node_health  # the table: each node's worst component
    runner.components = console.component_health  # the console lines: every component's changes
    runner.summary = console.operator_summary
    try:
        return runner.run()
    finally:
        console.close()


def _bringup(args) -> int:
    nodes = graph.describe_from_arguments(parse_launch_arguments(args.arguments))
    if args.dry_run:
        return _print_commands(nodes)
    return _run(nodes, args)


# ---- demo --------------------------------------------------------------------------------------

def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo", help="sim demo: scripted motion, head-camera video and joint-tracking plot",
        description="Bring up the sim with the scripted demo (= brs bringup use_sim:=true "
                    "mode:=demo). It ends by itself after ~15 s; the recorder then writes a "
                    "head-camera video and a joint-tracking plot to OUTPUT_DIR.",
        epilog="example: brs demo speed_factor:=2.0 --output-dir /tmp/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_args(p)
    p.add_argument("--output-dir", type=Path, default=Path("outputs"),
                   help="where the video, plot and logs/ go (default: %(default)s)")
    p.add_argument("--status", action=argparse.BooleanOptionalAction, default=None,
                   help="live status table (default: when stdout is a terminal)")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    arguments = parse_launch_arguments(args.arguments)
    fixed = {"use_sim": "true", "mode": "demo"}
    for key in fixed:
        if key in arguments:
            raise ValueError(f"brs demo always runs {key}:={fixed[key]}; use brs bringup instead")
    out = args.output_dir.resolve()
    nodes = graph.describe_from_arguments({**arguments, **fixed})
    if "output_dir" not in arguments and any("output_dir" in n.parameters for n in nodes):
        nodes = graph.describe_from_arguments({**arguments, **fixed, "output_dir": str(out)})
    args.log_dir = out / "logs"
    start = time.time()
    rc = _run(nodes, args)
    produced = sorted(p for p in out.glob("*") if p.is_file() and p.stat().st_mtime >= start - 1)
    if produced:
        print("demo outputs:")
        for path in produced:
            print(f"  {path}")
    else:
        print(f"the demo wrote no outputs to {out}; node logs are in {args.log_dir}")
        rc = rc or 1
    return rc


# ---- graph -------------------------------------------------------------------------------------

def _add_graph(sub) -> None:
    p = sub.add_parser(
        "graph", help="print the nodes a bringup would run",
        description="Print the node graph for the given bringup arguments, as described by "
                    "brs_bringup.graph (the same description the runner and the launch file use).",
        epilog=_arguments_help() + "\n\nexample: brs graph use_sim:=false mode:=teleop",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_args(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--commands", action="store_true",
                     help="print equivalent `ros2 run` command lines")
    p.set_defaults(func=_graph)


def _graph(args) -> int:
    nodes = graph.describe_from_arguments(parse_launch_arguments(args.arguments))
    if args.json:
        print(json.dumps([asdict(n) for n in nodes], indent=2))
        return 0
    if args.commands:
        return _print_commands(nodes)
    from rich.console import Console
    from rich.table import Table

    from brs_bringup.runner import format_value

    table = Table(title=f"{len(nodes)} nodes", title_justify="left", show_lines=True)
    remaps = any(n.remappings for n in nodes)
    for column in ("node", "package/executable", "parameters") + (("remappings",) * remaps):
        # long values fold onto the next line instead of being cut with an ellipsis
        table.add_column(column, no_wrap=column == "node", overflow="fold")
    for n in nodes:
        flags = [f for f, on in (("required", n.required), ("respawn", n.respawn)) if on]
        row = [
            n.name + "".join(f"\n[dim]{f}[/]" for f in flags), f"{n.package}/{n.executable}",
            "\n".join(f"{k}:={format_value(v)}" for k, v in n.parameters.items()),
        ]
        if remaps:
            row.append("\n".join(f"{a}:={b}" for a, b in n.remappings))
        table.add_row(*row)
    # piped (`brs graph | cat`, a file): no terminal width to fit, print every value whole
    Console(width=None if sys.stdout.isatty() else 1000).print(table)
    for n in nodes:
        print(f"{n.name}: {n.description}")
    return 0


def _print_commands(nodes) -> int:
    from brs_bringup.runner import command_line

    for n in nodes:
        print("ros2 run", n.package, shlex.join(command_line(n)))
    if not nodes:
        print("# the described graph is empty")
    return 0


# ---- collect -----------------------------------------------------------------------------------

def _add_collect(sub) -> None:
    p = sub.add_parser(
        "collect", help="record a dataset of scripted-expert episodes through the sim graph",
        description="Bring up the sim graph with the task, the whole-body controller, the episode "
                    "recorder and the task's scripted expert (mode:=collect), and record EPISODES "
                    "episodes with seeds FIRST_SEED, FIRST_SEED+1, ...: one HDF5 file and one camera "
                    "video per episode, and summary.json with the outcomes, under OUTPUT_DIR/TASK.",
        epilog="example: brs collect --task bimanual_box --episodes 20\n"
               "         brs collect --task trash_to_spot --episodes 3 --speed-factor 2 --output-dir /tmp/ds",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from brs_sim.experts import EXPERTS

    p.add_argument("--task", required=True, choices=sorted(EXPERTS), help="sim task (and its expert)")
    p.add_argument("--episodes", type=int, default=5, help="number of episodes (default %(default)s)")
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first episode (default %(default)s)")
    p.add_argument("--output-dir", type=Path, default=Path("outputs/collect"),
                   help="dataset root; episodes go to OUTPUT_DIR/TASK/episodes (default %(default)s)")
    p.add_argument("--speed-factor", type=float, default=1.0,
                   help="sim time / wall time; the recorder must keep up (default %(default)s)")
    p.add_argument("--no-record", dest="record", action="store_false", help="run the expert without recording")
    p.add_argument("--no-video", dest="video", action="store_false", help="skip the per-episode videos")
    p.add_argument("--action-noise", type=float, default=0.0,
                   help="DART-style noise: std (rad, m/s) of a smooth offset added to what the expert "
                        "executes; the expert's clean target is recorded as the action (default 0: off)")
    p.add_argument("--max-wait", type=float, default=0.0,
                   help="varied waits: the expert holds still for uniform(0, MAX_WAIT) s before each of "
                        "its key phases (e.g. the fold and the turn to the shelf), s (default 0: off)")
    _add_args(p)
    p.set_defaults(func=_collect)


def _collect(args) -> int:
    from brs_bringup.collect import collect
    from brs_sim.experts import expert_class
    from brs_teleop.episode_video import episode_video

    check_count("--episodes", args.episodes)
    if not 0.0 <= args.action_noise <= 0.3:
        raise ValueError(f"--action-noise must be in [0, 0.3]; got {args.action_noise}")
    if not 0.0 <= args.max_wait <= 10.0:
        raise ValueError(f"--max-wait must be in [0, 10] s; got {args.max_wait}")
    if args.max_wait > 0 and not expert_class(args.task).wait_before:
        raise ValueError(f"--max-wait: the {args.task} expert has no phases to wait before")
    arguments = parse_launch_arguments(args.arguments)
    if args.max_wait > 0:
        arguments = {f"{graph.EXPERT.name}.max_wait": str(args.max_wait),
                     f"{graph.EXPERT.name}.wait_seed": str(args.first_seed), **arguments}
    if args.action_noise > 0:
        arguments = {f"{graph.EXPERT.name}.action_noise": str(args.action_noise),
                     f"{graph.EXPERT.name}.noise_seed": str(args.first_seed),
                     "episode_recorder.action_topic": f"/{graph.EXPERT.name}/clean_command", **arguments}
    outcomes = collect(args.task, args.episodes, args.first_seed, args.output_dir, args.speed_factor,
                       args.record, episode_video if args.video else None, arguments)
    wins = sum(o.success for o in outcomes)
    for o in outcomes:
        print(f"episode {o.episode} seed {o.seed}: {'success' if o.success else 'FAIL'} "
              f"({o.sim_seconds:.1f} s sim, {o.wall_seconds:.0f} s wall) {o.file} {o.video}")
    print(f"{args.task}: {wins}/{len(outcomes)} successful; summary in "
          f"{(args.output_dir / args.task / 'summary.json')}")
    return 0 if outcomes else 1


def _add_estop(sub) -> None:
    p = sub.add_parser(
        "estop", help="latch, reset or show the whole-body controller's e-stop",
        description="`brs estop` latches the e-stop (base stopped, joints holding) and returns once the "
                    "controller reports it; `brs estop reset` clears it (~/reset_estop); `brs estop "
                    "status` prints latched or clear. Exit 1 when no controller answers.",
        epilog="examples:\n  brs estop\n  brs estop reset\n  brs estop status",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=("latch", "reset", "status"), default="latch",
                   help="latch (default), reset or status")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the controller (default 10)")
    p.set_defaults(func=_estop)


def _estop(args) -> int:
    from brs import estop

    return estop.main(args.action, args.timeout)


def _add_viz(sub) -> None:
    p = sub.add_parser(
        "viz", help="the running graph live in Foxglove (browser): robot, frames, cloud, cameras, joints",
        description="Start the Foxglove WebSocket bridge (viz_bridge) next to a running graph and stream "
                    "/tf (from the URDF), joint states, the controller's command, odometry, the fused "
                    "point cloud and the colour cameras. Open https://app.foxglove.dev -> Open connection "
                    "-> Foxglove WebSocket -> ws://HOST:PORT (docs/viz.md). Ctrl-C stops it. "
                    "`brs bringup ... viz:=true` starts the same node inside the graph.",
        epilog="examples:\n  brs viz\n  brs viz --host 0.0.0.0 --port 8765   # reachable from another machine\n"
               "  brs viz image_rate_hz:=2 cameras:='[head]'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1; 0.0.0.0: all)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--sim-time", action="store_true", help="use /clock (the sim graph's time) for the node")
    p.add_argument("arguments", nargs="*", metavar="key:=value", help="viz_bridge parameters")
    p.set_defaults(func=_viz)


def _viz(args) -> int:
    from brs.viz_bridge import main as bridge
    from brs_bringup.graph import parse_launch_arguments

    overrides = parse_launch_arguments(args.arguments)
    params = {"host": args.host, "port": str(args.port), "use_sim_time": str(args.sim_time).lower(), **overrides}
    return bridge(["viz_bridge", "--ros-args", *[x for k, v in params.items() for x in ("-p", f"{k}:={v}")]])


def _add_view(sub) -> None:
    p = sub.add_parser(
        "view", help="look at a recorded episode in Rerun: cameras, fused cloud, joints vs targets",
        description="Log an episode file to Rerun (rerun-sdk): every camera's colour and depth under its "
                    "pinhole, the fused point cloud the policy would see, measured joints vs recorded "
                    "targets, base velocity measured vs commanded, the base path and the outcome. Opens "
                    "the viewer, or writes an .rrd with --save (headless machines: `rerun FILE.rrd` "
                    "elsewhere). No running graph needed.",
        epilog="examples:\n  brs view outputs/episodes/episode_000003.h5\n"
               "  brs view outputs/episodes/episode_000003.h5 --save /tmp/ep3.rrd --every 2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("episode", type=Path, metavar="EPISODE")
    p.add_argument("--save", type=Path, metavar="FILE.rrd", help="write a recording instead of opening the viewer")
    p.add_argument("--cloud-points", type=int, default=4096, help="points of the fused cloud per frame (0: none)")
    p.add_argument("--every", type=int, default=1, help="log every N-th frame's images and cloud (default 1)")
    p.set_defaults(func=_view)


def _view(args) -> int:
    from brs_policy.episode_view import view_episode

    saved = view_episode(args.episode, save=args.save, cloud_points=args.cloud_points, every=args.every)
    if saved is not None:
        print(f"{saved} (open it with: rerun {saved})")
    return 0


# ---- main --------------------------------------------------------------------------------------

def _add_emulate(sub) -> None:
    from brs.emulate import default_dir

    here = default_dir()
    p = sub.add_parser(
        "emulate", help="run the robot's serial devices as emulators on pseudo-terminals",
        description="Start protocol-level emulators of the three Dynamixel chains and the two ODrive "
                    "wheel boards on ptys, and print the `brs bringup use_sim:=false ...` command "
                    "that points the real-mode graph at them. Ctrl-C stops them.",
    )
    p.add_argument("--dir", type=Path, default=here,
                   help=f"folder for the pty symlinks (default /tmp/brs_emulated_<uid>_<ROS_DOMAIN_ID>, "
                        f"here {here})")
    p.add_argument("--joylo", action="store_true",
                   help="also emulate the two JoyLo leader arms (for mode:=teleop / record)")
    p.set_defaults(func=_emulate)
    cmds = p.add_subparsers(dest="emulate_command", metavar="[move]")
    m = cmds.add_parser(
        "move", help="move motors of running emulated chains by hand (e.g. a JoyLo leader joint)",
        description="Hold motors of a chain that `brs emulate` runs where a hand would put them (goals a "
                    "host writes do not move them), play a CSV trajectory at real time (each point held until the next, "
                    "the last one after the end), or let go. "
                    "JOINT=RAD goes through the chain's calibration file; ID=TICKS is raw.",
        epilog="examples:\n  brs emulate move joylo_left left_arm_joint2=0.5 left_arm_joint4=-1.0\n"
               "  brs emulate move joylo_left 32=2400\n"
               "  brs emulate move joylo_left --trajectory wave.csv   # header: time_s,left_arm_joint1,...\n"
               "  brs emulate move joylo_left --release 32 33",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("chain", help="joylo_left, joylo_right, torso, left_arm or right_arm")
    m.add_argument("targets", nargs="*", metavar="JOINT=RAD|ID=TICKS", help="where to hold the motors")
    m.add_argument("--trajectory", type=Path, help="CSV: time_s, then one column per joint or motor id")
    m.add_argument("--release", type=int, nargs="+", metavar="ID", help="let go of these motors")
    m.add_argument("--calibration", type=Path, help="calibration file for JOINT=RAD (default: the chain's, "
                                                    "found in the calibration dir by its port)")
    m.add_argument("--dir", type=Path, default=here,
                   help=f"the emulators' folder: the one `brs emulate` was given (default {here})")
    m.set_defaults(func=_emulate_move)


def _emulate(args) -> int:
    from brs import emulate

    return emulate.main(args.dir, joylo=args.joylo)


def _emulate_move(args) -> int:
    from brs import emulate

    return emulate.move(args.dir, args.chain, args.targets, release=args.release, trajectory=args.trajectory,
                        calibration=args.calibration)


# Commands whose parsers live in their own packages register an `add_parser(subparsers)` under
# the entry point group "brs.commands" (their setup.py). Only the command being run is loaded
# (all of them for `brs --help`), and its heavy imports (torch, exporters) wait until it runs.
COMMANDS_GROUP = "brs.commands"


def package_commands():
    from importlib.metadata import entry_points

    return sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name)


SUBCOMMANDS = (_add_bringup, _add_demo, _add_graph, _add_emulate, _add_collect, _add_estop, _add_viz, _add_view)


def _add_unavailable(sub, name: str, exc: ImportError) -> None:
    """A command whose package cannot be imported here (e.g. a driver computer without torch)."""
    p = sub.add_parser(name, help=f"(not available here: {exc})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def run(args) -> int:
        print(f"brs {name}: error: needs a module that is not installed here ({exc}); "
              "install the full requirements.txt", file=sys.stderr)
        return 2
    p.set_defaults(func=run, unavailable=True)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the package command it names is loaded."""
    parser = argparse.ArgumentParser(
        prog="brs", description="BRS household-robot stack: bringup, demo and tools.",
        epilog="`brs <command> --help` for each command's arguments.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in SUBCOMMANDS:
        add(sub)
    entries = package_commands()
    chosen = argv[0] if argv else None
    if chosen in {e.name for e in entries}:
        entries = [e for e in entries if e.name == chosen]
    elif chosen in sub.choices:
        entries = []  # a built-in command: no package command is needed
    for entry in entries:
        try:
            add_parser = entry.load()
        except ImportError as exc:
            _add_unavailable(sub, entry.name, exc)
        else:
            add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    # key:=value arguments may also follow options (argparse stops collecting them at the first one)
    if getattr(args, "unavailable", False):
        return args.func(args)
    if extra and (not hasattr(args, "arguments") or any(":=" not in x for x in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.arguments = [*args.arguments, *extra]
    from brs_bringup.runner import RunnerError

    try:
        return args.func(args)
    except (ValueError, RunnerError) as exc:
        print(f"brs {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
