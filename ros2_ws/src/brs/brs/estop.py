"""`brs estop` / `brs estop reset` / `brs estop status`: the whole-body controller's e-stop from a
shell. The latch: std_msgs/Bool True on the e-stop topic (what a hardware e-stop button node
publishes); the reset: the controller's ~/reset_estop service. Both confirm from the
controller's own /diagnostics status, so "latched" means the controller said so.
Arguments are checked before any ROS setup, so a bad one fails at once (exit 2)."""

from __future__ import annotations

import sys
import time

from brs_common import topics
from brs_common.cli_args import check_timeout

ACTIONS = ("latch", "reset", "status")
STATUS = f"{topics.WHOLE_BODY_CONTROLLER_NODE}: state"


def _latched(values: dict) -> bool:
    return values.get("estop_latched") == "True"


def latch(client, timeout: float) -> tuple[bool, str]:
    """Publish True on the e-stop topic until the controller reports the latch (or timeout)."""
    from std_msgs.msg import Bool

    from brs_common import qos

    pub = client.node.create_publisher(Bool, topics.ESTOP, qos.COMMAND)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.publish(Bool(data=True))  # repeated: a subscriber may still be matching
        entry = client.status(STATUS)
        if entry is not None and _latched(entry[1]):
            return True, entry[0]
        time.sleep(0.05)
    return False, f"published on {topics.ESTOP}, but no controller reported the latch within {timeout:g} s " \
                  "(is the graph running?)"


def reset(client, timeout: float) -> tuple[bool, str]:
    from std_srvs.srv import Trigger

    response = client.call(Trigger, topics.ESTOP_RESET, timeout=timeout,
                           on_wait=lambda text: print(f"brs estop reset: {text}", file=sys.stderr))
    if not response.success:
        return False, response.message
    client.wait_status(STATUS, lambda v: not _latched(v), timeout, "the controller to report the reset")
    return True, response.message


def status(client, timeout: float) -> tuple[bool, str]:
    values = client.wait_status(STATUS, lambda v: "estop_latched" in v, timeout, "the controller's status")
    return True, "latched" if _latched(values) else "clear"


def check_arguments(action: str, timeout: float) -> None:
    """ValueError (brs: exit 2) for a bad action or timeout."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    check_timeout(timeout)


def main(action: str, timeout: float) -> int:
    check_arguments(action, timeout)  # before ROS starts (rclpy init, discovery take seconds)
    from brs_bringup.graph_client import GraphClient

    client = GraphClient("brs_estop")
    try:
        ok, message = {"latch": latch, "reset": reset, "status": status}[action](client, timeout)
    except (RuntimeError, TimeoutError) as exc:
        print(f"brs estop {action}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
