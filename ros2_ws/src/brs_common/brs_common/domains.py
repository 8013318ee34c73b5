"""Private ROS 2 domains for processes that bring up their own graph on this machine (test runs,
RosSimEnv training, `brs rl eval`, `brs lmact demos`): a domain one process holds is handed to no
other until it is released or that process exits, so two graphs never see each other's nodes.

One flock'ed file per domain in a folder every user shares. Test suites take domains from
TESTS (1-200), jobs from JOBS (201-232; Fast DDS accepts 0-232), so a training run beside a test
suite never meets it even where one side predates the locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import random
import tempfile
from pathlib import Path

TESTS = range(1, 201)
JOBS = range(201, 233)
LOCKS = Path(tempfile.gettempdir()) / "brs_ros_domains"

_held: dict[int, int] = {}  # domain -> fd of its lock file
# where the next claim starts looking: it moves on, so a domain just released (whose participants
# may linger a moment) is the last one to be handed out again
_counter = itertools.count(random.Random(os.getpid()).randrange(0, 1 << 16))


def _lock_dir() -> Path:
    LOCKS.mkdir(exist_ok=True)
    with contextlib.suppress(PermissionError):
        LOCKS.chmod(0o1777)  # every user's runs share the machine's DDS domains
    return LOCKS


def claim(domains: range = JOBS) -> int:
    """A domain of `domains` that no other process (and no earlier claim here) holds; when all are
    held, one of them anyway (shared rather than none)."""
    folder = _lock_dir()
    for _ in range(len(domains)):
        domain = domains[next(_counter) % len(domains)]
        if domain in _held:
            continue
        try:
            fd = os.open(folder / str(domain), os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held[domain] = fd
        return domain
    return random.Random().choice(domains)


def release(domain: int) -> None:
    """Give a claimed domain back (its nodes have exited); a domain not claimed here is ignored."""
    fd = _held.pop(domain, None)
    if fd is not None:
        os.close(fd)  # closing the file releases the lock


def held_elsewhere(domain: int) -> bool:
    """True when another process holds `domain`."""
    if domain in _held:
        return False
    fd = os.open(_lock_dir() / str(domain), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
