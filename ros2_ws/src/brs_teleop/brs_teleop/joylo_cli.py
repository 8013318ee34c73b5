"""`brs joylo press BUTTON`: press a Joy-Con button on a running JoyLo node from a shell, no
Joy-Con needed (Y: disengage / engage both arms, +: start an episode, -: stop it, capture: discard
it, home: e-stop, x: torso mode, ...).

The name goes to the node's ~/press topic (std_msgs/String); the node turns it into a button-down
and a button-up event on its next two ticks, handled exactly like the Joy-Con's own SDL events.
The command returns once the node's /diagnostics count the press. Importing this module is cheap
(registered in brs.cli); argument errors come before any ROS setup.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from brs_common.cli_args import check_timeout

EXAMPLES = """\
examples:
  brs joylo press y         # disengage both arms (their targets hold); again: engage both
  brs joylo press +         # start an episode (mode:=record), like the Joy-Con's + button
  brs joylo press -         # stop and save it; `brs joylo press capture` discards it
  brs joylo press home      # e-stop (brs estop reset clears it)
"""


def _config():
    from . import joycon as jc

    return jc.load_config()


def add_parser(sub) -> None:
    """Register `joylo` and its subcommands on brs's subparsers."""
    p = sub.add_parser("joylo", help="a running JoyLo node from a shell: press Joy-Con buttons",
                       description="Talk to the joylo node of a running graph (mode:=teleop / record).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_commands(p)


def _add_commands(p: argparse.ArgumentParser) -> None:
    cmds = p.add_subparsers(dest="joylo_command", required=True, metavar="command")
    names = ", ".join(_config().button_names)
    c = cmds.add_parser("press", help="press (and release) one Joy-Con button on the running JoyLo node",
                        description="Press and release a Joy-Con button on the joylo node, as if on the "
                                    f"Joy-Con. Buttons: {names}; + and - stand for plus and minus.",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("button", metavar="BUTTON", help=f"one of: {names} (or + / -)")
    c.add_argument("--node", default="joylo", help="the JoyLo node's name (default %(default)s)")
    c.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the node and its confirmation (default %(default)s)")
    c.set_defaults(func=_press)


def _press(args) -> int:
    from .joycon import press_button

    name, _ = press_button(args.button, _config())  # ValueError: one line, exit 2 (before rclpy)
    check_timeout(args.timeout)
    node = args.node.strip("/")
    ok, message = press(name, node, args.timeout)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def press(name: str, node: str = "joylo", timeout: float = 10.0) -> tuple[bool, str]:
    """Send `name` to /<node>/press and wait until the node's "joycon" status counts it."""
    from std_msgs.msg import String

    from brs_bringup.graph_client import GraphClient
    from brs_common import qos

    status_name, topic = f"{node}: joycon", f"/{node}/press"
    client = GraphClient("brs_joylo_press")
    try:
        deadline = time.monotonic() + timeout
        pub = client.node.create_publisher(String, topic, qos.COMMAND)
        # the node's status carries its press count: the baseline to see this press arrive
        while (pub.get_subscription_count() == 0 or client.status(status_name) is None) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        entry = client.status(status_name)
        if pub.get_subscription_count() == 0 or entry is None:
            return False, (f"brs joylo press: no JoyLo node ({topic}, /diagnostics '{status_name}') on "
                           f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')} within {timeout:g} s: "
                           "is a JoyLo graph running (brs bringup ... mode:=teleop)?")
        before = int(entry[1].get("presses", 0))
        pub.publish(String(data=name))
        while time.monotonic() < deadline:
            entry = client.status(status_name)
            if int(entry[1].get("presses", 0)) > before:
                return True, f"{node}: pressed {name}"
            time.sleep(0.02)
        return False, (f"brs joylo press: /{node} did not report the press of {name} within {timeout:g} s "
                       f"(its status: {entry[0]}; it ignores presses until it publishes commands, see its log)")
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m brs_teleop.joylo_cli press y`: `brs joylo ...` without the brs entry point."""
    parser = argparse.ArgumentParser(prog="brs joylo", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_commands(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"brs joylo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
