"""`brs emulate` cleans up on every way out: SIGHUP (an SSH drop) and SIGQUIT stop its emulators
and remove their links like Ctrl-C does; an emulator that dies on its own is noticed, in one line,
and the others are stopped (exit code 1). The emulators run in sessions of their own, so nothing
else would stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rosutil import BIN, wait_for

LINKS = ("brs_dxl_torso", "brs_dxl_left_arm", "brs_dxl_right_arm", "brs_wheels_a", "brs_wheels_b")


def children(pid: int) -> dict[int, str]:
    """{pid: command line} of the processes whose parent is `pid` (from /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            out[int(entry.name)] = cmdline
    return out


def running(pid: int, cmdline: str) -> bool:
    """That process still runs (not gone, not a zombie, and not its pid reused by another)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return False
    return state != "Z" and now == cmdline


@pytest.fixture
def emulate(tmp_path):
    """start() -> (`brs emulate --dir <tmp>/emu` with every link up, {pid: command} of its
    emulators); the folder is made by brs emulate, so it removes it again. Whatever a test
    leaves running (a failed cleanup) is killed afterwards, not left to the next test."""
    folder = tmp_path / "emu"
    started = []

    def start() -> tuple[subprocess.Popen, dict[int, str], Path]:
        proc = subprocess.Popen([str(BIN / "brs"), "emulate", "--dir", str(folder)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        started.append((proc, {}))
        links = [folder / name for name in LINKS]

        def up():
            started[-1] = (proc, children(proc.pid))
            ready = all(link.exists() for link in links) and len(started[-1][1]) == len(LINKS)
            return ready or proc.poll() is not None

        wait_for(up, 60, message=lambda: f"{len(LINKS)} emulators; saw {started[-1][1]}, "
                                         f"{sorted(os.listdir(folder)) if folder.exists() else 'no folder'}")
        assert proc.poll() is None, proc.communicate()
        return proc, dict(started[-1][1]), folder

    yield start
    for proc, emulators in started:  # what a failed test left running
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid, cmd in emulators.items():
            if running(pid, cmd):
                os.kill(pid, signal.SIGKILL)


def assert_all_gone(proc, emulators: dict[int, str], folder: Path) -> None:
    left = {pid: cmd for pid, cmd in emulators.items() if running(pid, cmd)}
    assert not left, f"emulators still running after brs emulate exited ({proc.returncode}): {left}"
    assert not folder.exists(), f"left in {folder}: {sorted(os.listdir(folder))}"


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT], ids=["SIGHUP", "SIGQUIT"])
def test_a_hangup_or_quit_stops_every_emulator_and_removes_the_links(emulate, sig):
    proc, emulators, folder = emulate()
    t0 = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert_all_gone(proc, emulators, folder)
    print(f"\n{sig.name}: brs emulate and its {len(emulators)} emulators gone after {took:.2f} s")


def test_an_emulator_that_dies_is_noticed_and_the_others_are_stopped(emulate):
    proc, emulators, folder = emulate()
    victim = next(pid for pid, cmd in emulators.items() if "--chain torso" in cmd)
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert err.strip().splitlines() == [f"brs emulate: the emulator of brs_dxl_torso (pid {victim}) was killed by "
                                        "SIGKILL; stopped the others"], err
    assert_all_gone(proc, emulators, folder)
    print(f"\nan emulator killed: brs emulate noticed, stopped the others and exited in {took:.2f} s")
