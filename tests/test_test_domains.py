"""The suite's DDS domain allocation: a domain one test run holds is never handed to another run
on the same machine (two suites at once saw each other's nodes), nor twice within a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import next_domain, release_domain

TESTS = Path(__file__).parent


def test_a_held_domain_goes_to_no_other_run_and_comes_back_when_released():
    mine = [next_domain() for _ in range(5)]
    try:
        assert len(set(mine)) == 5 and all(1 <= d <= 200 for d in mine), mine
        for d in mine:  # held: another process can lock none of them
            assert _free_elsewhere([d]) == "False", d
        # another test run (a process importing the same conftest) takes 20 and never one of mine
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from conftest import next_domain; "
                "print(' '.join(str(next_domain()) for _ in range(20)))")
        out = subprocess.run([sys.executable, "-c", code, str(TESTS)], capture_output=True, text=True,
                             timeout=120, cwd=TESTS)
        assert out.returncode == 0, out.stderr
        theirs = [int(d) for d in out.stdout.split()]
        assert len(theirs) == 20 and not set(theirs) & set(mine), (mine, theirs)
    finally:
        for d in mine:
            release_domain(d)
    assert _free_elsewhere(mine) == "True"  # released: the next run may take them


def _free_elsewhere(domains) -> str:
    """"True" if another process can lock every one of `domains`, else "False" (it stops at the first it cannot)."""
    code = ("import fcntl, os, sys; sys.path.insert(0, sys.argv[1]); import conftest\n"
            "def free(d):\n"
            "    fd = os.open(conftest._DOMAIN_LOCKS / str(d), os.O_RDWR)\n"
            "    try:\n"
            "        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "        return True\n"
            "    except BlockingIOError:\n"
            "        return False\n"
            "print(all(free(d) for d in map(int, sys.argv[2:])))")
    out = subprocess.run([sys.executable, "-c", code, str(TESTS), *map(str, domains)], capture_output=True,
                         text=True, timeout=120, cwd=TESTS)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
