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
    code = ("import sys; from brs_common import domains\n"
            "print(not any(domains.held_elsewhere(d) for d in map(int, sys.argv[2:])))")
    out = subprocess.run([sys.executable, "-c", code, str(TESTS), *map(str, domains)], capture_output=True,
                         text=True, timeout=120, cwd=TESTS)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_jobs_take_domains_outside_the_tests_range_and_hold_them():
    """RosSimEnv training, `brs rl eval`, the graph benches: 201-232, held until released."""
    from brs_common import domains

    job, other = domains.claim(domains.JOBS), domains.claim(domains.JOBS)
    try:
        assert 201 <= job <= 232 and 201 <= other <= 232 and job != other
        assert all(_free_elsewhere([d]) == "False" for d in (job, other))
    finally:
        domains.release(job)
        domains.release(other)
    assert _free_elsewhere([job, other]) == "True"
