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


class FakeRecorder:
    """Stands in for the GraphClient of `brs record status`: a recorder status is there; the
    live view asks for it every 0.25 s, `stop_after` asks end it (Ctrl-C or a failure)."""

    def __init__(self, stop_after: int, stop: BaseException):
        self.asked, self.stop_after, self.stop = 0, stop_after, stop

    def wait_status(self, name, predicate, timeout, what=""):
        return {}

    def status(self, name):
        self.asked += 1
        if self.asked > self.stop_after:
            raise self.stop
        return "recording episode_000002: 30 frames, 3.00 s, 0 dropped", {
            "recording": "true", "episode": "episode_000002", "frames": "30", "duration_s": "3.00"}

    def close(self):
        pass


def test_status_prints_one_snapshot_when_stdout_is_not_a_terminal(monkeypatch, capsys):
    """capsys: stdout is not a terminal, as in a script or a pipe: one table, exit 0, no wait
    (before: a live view that only Ctrl-C ended, printing nothing into the pipe)."""
    from brs.cli import main
    from brs_teleop import record_cli

    fake = FakeRecorder(stop_after=1, stop=AssertionError("live view on a pipe: it would wait for Ctrl-C"))
    monkeypatch.setattr(record_cli, "_client", lambda: fake)
    assert main(["record", "status"]) == 0
    out = capsys.readouterr().out
    assert "episode recorder" in out and "recording episode_000002" in out and fake.asked == 1


def test_status_stays_live_on_a_terminal_until_ctrl_c(monkeypatch, capsys):
    import sys

    from brs.cli import main
    from brs_teleop import record_cli

    fake = FakeRecorder(stop_after=3, stop=KeyboardInterrupt())
    monkeypatch.setattr(record_cli, "_client", lambda: fake)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["record", "status"]) == 0  # Ctrl-C quits cleanly
    assert fake.asked == 4  # the first table, two refreshes, then Ctrl-C


def test_status_help_says_how_to_quit(capsys):
    from brs.cli import main

    with pytest.raises(SystemExit):
        main(["record", "status", "--help"])
    out = capsys.readouterr().out
    assert "Ctrl-C quits" in out and "--once" in out and "not a terminal" in out
