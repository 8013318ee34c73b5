"""Stopping a node process like ros2 launch does: SIGINT, then SIGKILL of its process group."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT (Ctrl-C); if it has not exited after `timeout` s, SIGKILL its process group.

    The process must have been started with start_new_session=True. Returns its exit code.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
