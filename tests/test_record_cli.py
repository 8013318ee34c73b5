"""`brs record` on the command line without a graph: argument errors come back at once, before any
ROS setup (walk17 finding 15: `--task ""` was refused only after ~9.7 s of rclpy start and
discovery), and `brs record status` prints one snapshot when stdout is not a terminal (finding 1:
from a script it waited for Ctrl-C and printed nothing)."""

from __future__ import annotations

import subprocess
import time

import pytest

from rosutil import BIN

BAD_ARGUMENTS = [
    (["start", "--task", ""], "--task must not be empty"),
    (["start", "--task", "   "], "--task must not be empty"),
    (["start", "--task", "lift the box", "--timeout", "0"], "--timeout must be a number of seconds > 0, got 0"),
    (["stop", "--timeout", "-3"], "--timeout must be a number of seconds > 0, got -3"),
    (["discard", "--timeout", "inf"], "--timeout must be a number of seconds > 0, got inf"),
    (["status", "--timeout", "nan"], "--timeout must be a number of seconds > 0, got nan"),
]


@pytest.mark.parametrize("args, message", BAD_ARGUMENTS)
def test_bad_arguments_fail_before_any_ros_setup(no_ros_setup, capsys, args, message):
    from brs.cli import main

    assert main(["record", *args]) == 2
    err = capsys.readouterr().err
    assert err == f"brs record: error: {message}\n", err  # one line


def test_an_argument_error_comes_back_as_fast_as_the_cli_starts(ros_domain):
    """Wall time of `brs record start --task ""` in a fresh process: the CLI's own start (what
    `brs record --help` costs, measured here the same way) and nothing more, under 2 s when the
    machine is not loaded."""
    def run(*args) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.monotonic()
        proc = subprocess.run([str(BIN / "brs"), "record", *args], capture_output=True, text=True, timeout=60)
        return time.monotonic() - t0, proc

    startup, helped = run("--help")
    assert helped.returncode == 0, helped
    took, refused = run("start", "--task", "")
    assert refused.returncode == 2 and refused.stderr == "brs record: error: --task must not be empty\n", refused
    assert took < max(2.0, startup + 1.0), f"the error took {took:.2f} s; `brs record --help` {startup:.2f} s"
