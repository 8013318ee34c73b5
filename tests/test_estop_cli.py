"""`brs estop` / `brs estop status` / `brs estop reset` against a running whole-body controller."""

from __future__ import annotations

import subprocess
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import JointState

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import make_joint_state
from rosutil import BIN, wait_for

POSITION = [i for i, j in enumerate(spec.ACTION_JOINTS) if j in spec.STATE_JOINTS]


def _brs(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "brs"), "estop", *args], capture_output=True, text=True, timeout=90)


def _latched(h) -> str | None:
    with h.lock:
        msgs = list(h.messages[topics.DIAGNOSTICS])
    for msg in reversed(msgs):
        for s in msg.status:
            if s.name == f"{topics.WHOLE_BODY_CONTROLLER_NODE}: state":
                return {kv.key: kv.value for kv in s.values}.get("estop_latched")
    return None


def test_estop_latch_status_reset(ros, tmp_path):
    h = ros
    h.record(topics.DIAGNOSTICS, DiagnosticArray, qos.DIAGNOSTICS)
    h.record(topics.CMD_VEL, TwistStamped, qos.COMMAND)
    ctrl = h.spawn("whole_body_controller", {}, log_path=tmp_path / "controller.log")
    js = h.node.create_publisher(JointState, topics.JOINT_STATES, qos.STATE)
    wait_for(lambda: js.get_subscription_count() > 0 or ctrl.proc.poll() is not None, 30, message="controller up")
    js.publish(make_joint_state(spec.STATE_JOINTS, spec.HOME[POSITION]))
    wait_for(lambda: _latched(h) == "False", 20, message=f"controller status (saw {_latched(h)!r})")

    cli = _brs()
    assert cli.returncode == 0 and "E-STOP latched" in cli.stdout, cli
    assert "clear it with `brs estop reset`" in cli.stdout, cli  # the operator's command, not only a service
    wait_for(lambda: _latched(h) == "True", 5, message="the latch in the controller's status")
    cli = _brs("status")
    assert cli.returncode == 0 and cli.stdout.strip() == "latched", cli
    assert "E-STOP latched" in ctrl.log() and "brs estop reset" in ctrl.log()

    cli = _brs("reset")
    assert cli.returncode == 0, cli
    wait_for(lambda: _latched(h) == "False", 10, message=f"reset reported (saw {_latched(h)!r})")
    assert ctrl.stop() == 0


def test_estop_without_a_controller_says_so(ros_domain):
    cli = _brs("--timeout", "2")
    assert cli.returncode == 1 and "no controller reported the latch within 2 s" in cli.stderr, cli


@pytest.mark.parametrize("args, message", [
    (["--timeout", "-1"], "--timeout must be a number of seconds > 0, got -1"),
    (["reset", "--timeout", "0"], "--timeout must be a number of seconds > 0, got 0"),
    (["status", "--timeout", "nan"], "--timeout must be a number of seconds > 0, got nan"),
])
def test_bad_arguments_fail_before_any_ros_setup(no_ros_setup, capsys, args, message):
    """A bad argument is one line and exit 2 at once: no rclpy context, no discovery first."""
    from brs.cli import main

    assert main(["estop", *args]) == 2
    assert capsys.readouterr().err == f"brs estop: error: {message}\n"


def test_an_argument_error_comes_back_as_fast_as_the_cli_starts(ros_domain):
    """Wall time in a fresh process: the CLI's own start (`brs estop --help`, measured the same
    way) and nothing more, under 2 s when the machine is not loaded."""
    t0 = time.monotonic()
    assert _brs("--help").returncode == 0
    startup = time.monotonic() - t0
    t0 = time.monotonic()
    cli = _brs("--timeout", "-1")
    took = time.monotonic() - t0
    assert cli.returncode == 2 and "--timeout must be a number of seconds > 0" in cli.stderr, cli
    assert took < max(2.0, startup + 1.0), f"the error took {took:.2f} s; `brs estop --help` {startup:.2f} s"
