"""The node processes a graph benchmark starts: each in its own session with its output in a log
file, and a check that none has died (with the end of its log)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def spawn(argv: list[str], log: Path) -> subprocess.Popen:
    """Start `argv` in a new session, stdout and stderr to `log`, cameras rendered headless."""
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env)


def check_alive(procs: dict[str, subprocess.Popen], logs: Path) -> None:
    """RuntimeError naming the first process that exited, with the end of `logs/<name>.log`."""
    for name, proc in procs.items():
        if proc.poll() is not None:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{tail}")


def use_domain(domain: int) -> str | None:
    """Put this process and the nodes it spawns on ROS domain `domain`; returns the previous
    ROS_DOMAIN_ID for `stop_graph`."""
    saved = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    return saved


def stop_graph(processes, saved_domain: str | None, timeout: float = 30.0) -> None:
    """Stop the node processes in the order given (SIGINT, then harder), and put ROS_DOMAIN_ID back."""
    from brs_common.process import stop_process

    for proc in processes:
        stop_process(proc, timeout)
    if saved_domain is None:
        os.environ.pop("ROS_DOMAIN_ID", None)
    else:
        os.environ["ROS_DOMAIN_ID"] = saved_domain
