"""`brs emulate`: the robot's serial devices as protocol-level emulators on pseudo-terminals.

Starts one Dynamixel chain emulator per driver (torso, left arm, right arm) and the two ODrive
wheel boards, each on a pty symlinked under `--dir`, and prints the bringup command whose port
overrides point the real-mode graph (`use_sim:=false`) at them. Nothing else changes: the drivers
talk the same bytes they would to the hardware.

The default folder is per user and per ROS_DOMAIN_ID (`default_dir`), so two operators or test
runs on one machine never share emulators; `brs emulate move` finds them there by default.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from brs_common.dds import configure_dds
from brs_common.process import stop_process

BIN = Path(sys.executable).parent
CHAINS = ("torso", "left_arm", "right_arm")
JOYLO_CHAINS = ("joylo_left", "joylo_right")  # --joylo: the leader arms (the joylo node's ports)
WHEEL_BOARDS = ("a", "b")


def default_dir(environ=None) -> Path:
    """/tmp/brs_emulated_<uid>_<ROS_DOMAIN_ID or 0>: `brs emulate` and `brs emulate move` agree on
    it without --dir, and other users or domains on this machine get folders of their own."""
    environ = os.environ if environ is None else environ
    domain = re.sub(r"[^0-9A-Za-z]", "_", environ.get("ROS_DOMAIN_ID", "").strip()) or "0"
    return Path(f"/tmp/brs_emulated_{os.getuid()}_{domain}")


def brs_command() -> str:
    """The `brs` being run, as a shell can run it again: sys.argv[0] resolved (e.g.
    /home/me/brs/.venv/bin/brs, which need not be on PATH); `python -m brs.cli` when not run
    through the console script."""
    argv0 = Path(sys.argv[0])
    if argv0.name.startswith("brs") and argv0.is_file() and os.access(argv0, os.X_OK):
        return shlex.quote(str(argv0.resolve()))
    return shlex.join([sys.executable, "-m", "brs.cli"])


def emulator_commands(directory: Path, joylo: bool = False) -> tuple[list[list[str]], dict[str, str], list[Path]]:
    """(command lines, bringup port overrides, pty links) for every emulated device."""
    commands, overrides, links = [], {}, []
    for chain in JOYLO_CHAINS if joylo else ():
        link = directory / f"brs_dxl_{chain}"
        commands.append([str(BIN / "dxl_emulator"), "--chain", chain, "--port-link", str(link)])
        overrides[f"joylo.{chain.split('_')[1]}_port"] = str(link)
        links.append(link)
    for chain in CHAINS:
        link = directory / f"brs_dxl_{chain}"
        commands.append([str(BIN / "dxl_emulator"), "--chain", chain, "--port-link", str(link)])
        overrides[f"{chain}_driver.port"] = str(link)
        links.append(link)
    wheel_links = [directory / f"brs_wheels_{board}" for board in WHEEL_BOARDS]
    for link in wheel_links:
        commands.append([str(BIN / "wheel_emulator"), "--port-link", str(link), "--axes", "2",
                         "--status-period", "0"])
    overrides["wheel_driver.ports"] = "[" + ", ".join(str(p) for p in wheel_links) + "]"
    return commands, overrides, links + wheel_links


def start(directory: Path, log_dir: Path | None = None,
          joylo: bool = False) -> tuple[list[subprocess.Popen], dict[str, str], list[Path]]:
    """Start every emulator; returns the processes, bringup overrides and the pty links to wait for."""
    directory.mkdir(parents=True, exist_ok=True)
    configure_dds()
    commands, overrides, links = emulator_commands(directory, joylo)
    procs = []
    for cmd, link in zip(commands, links):
        out = open(log_dir / f"{link.name}.log", "wb") if log_dir else subprocess.DEVNULL
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    return procs, overrides, links


def stop(procs: list[subprocess.Popen], timeout: float = 5.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # all at once, then wait for each
    for proc in procs:
        stop_process(proc, timeout)


def clean_links(links: list[Path]) -> list[Path]:
    """Remove the links (and control sockets) a killed emulator left pointing at nothing."""
    removed = []
    for link in links:
        for path in (link, link.with_name(link.name + ".ctl")):
            if path.is_symlink() and not path.exists() or path.is_socket() and path.suffix == ".ctl" \
                    and not _listening(path):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _listening(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


# ---- moving an emulated motor by hand (`brs emulate move`) ----------------------------------------

def _ticks_of(chain: str, link: Path, targets: dict[str, float], calibration: Path | None) -> dict[int, float]:
    """{motor id: ticks} of JOINT=RAD (through the chain's calibration) or ID=TICKS targets."""
    from brs_control.dynamixel import control_table as ct
    from brs_control.dynamixel.calibration import CalibrationError, find_calibration, load_calibration

    out, joints = {}, {k: v for k, v in targets.items() if not k.isdigit()}
    out.update({int(k): float(v) for k, v in targets.items() if k.isdigit()})
    if joints:
        path = calibration or find_calibration(str(link), chain=chain)
        if path is None:
            raise ValueError(f"no calibration for chain {chain!r} (port {link}) to convert joint angles; "
                             "give --calibration FILE or motor ID=TICKS")
        try:
            by_joint = {j.joint: j for j in load_calibration(path).joints}
        except CalibrationError as exc:
            raise ValueError(str(exc)) from None
        for name, rad in joints.items():
            if name not in by_joint:
                raise ValueError(f"{path}: no joint {name!r}; it has {sorted(by_joint)}")
            j = by_joint[name]
            out[j.id] = float(ct.rad_to_ticks(j.sign * rad / j.scale + j.offset))
    return out


def _control(link: Path) -> Path:
    return link.with_name(link.name + ".ctl")


def _no_emulator(link: Path, why: str) -> ValueError:
    directory, chain = link.parent, link.name.removeprefix("brs_dxl_")
    start = "brs emulate" + (" --joylo" if chain in JOYLO_CHAINS else "")
    if directory != default_dir():
        start += f" --dir {shlex.quote(str(directory))}"
    return ValueError(f"no emulator of {chain} in {directory} ({_control(link).name}: {why}): start them with "
                      f"`{start}`, or give --dir with the folder `brs emulate` uses (default {default_dir()})")


def _send(link: Path, message: dict) -> None:
    import json
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(json.dumps(message).encode(), str(_control(link)))
        except OSError as exc:
            raise _no_emulator(link, exc.strerror) from None


def parse_targets(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ValueError(f"expected JOINT=RAD or ID=TICKS, got {item!r}")
    return out


def move(directory: Path, chain: str, targets: list[str], release: list[int] | None = None,
         trajectory: Path | None = None, calibration: Path | None = None, out=sys.stdout) -> int:
    """Hold motors of a running emulated chain where a hand would put them; play a CSV trajectory
    (time_s, then a JOINT or ID column each) at real time, holding each point until the next and
    the last one after the end; or release them."""
    if chain not in CHAINS + JOYLO_CHAINS:
        raise ValueError(f"unknown chain {chain!r}; chains: {', '.join(CHAINS + JOYLO_CHAINS)}")
    link = directory / f"brs_dxl_{chain}"
    if not release and trajectory is None and not targets:
        raise ValueError("give JOINT=RAD / ID=TICKS targets, --trajectory FILE or --release")
    parsed = parse_targets(targets) if not release and trajectory is None else {}
    # before anything slow (calibration files, the CSV): is an emulator there at all?
    if not _listening(_control(link)):
        raise _no_emulator(link, "no such socket" if not _control(link).exists() else "nobody answers")
    if release:
        _send(link, {"release": [int(k) for k in release]})
        print(f"{chain}: released {list(release)}", file=out)
        return 0
    if trajectory is None:
        ticks = _ticks_of(chain, link, parsed, calibration)
        _send(link, {"hold": {str(k): v for k, v in ticks.items()}})
        print(f"{chain}: holding " + ", ".join(f"id {k} at {v:.0f} ticks" for k, v in ticks.items()), file=out)
        return 0
    import csv

    try:
        rows = list(csv.reader(trajectory.read_text().splitlines()))
    except OSError as exc:
        raise ValueError(f"{trajectory}: {exc.strerror}") from None
    if len(rows) < 2 or rows[0][0].strip() != "time_s":
        raise ValueError(f"{trajectory}: expected a header 'time_s,<joint or id>,...' and rows")
    names = [n.strip() for n in rows[0][1:]]
    try:
        points = [(float(r[0]), {n: float(v) for n, v in zip(names, r[1:])}) for r in rows[1:] if r]
    except ValueError as exc:
        raise ValueError(f"{trajectory}: {exc}") from None
    # every point in ticks up front (one calibration lookup, not one per point), so playing is
    # only sends on time; each is a hold, as for static targets: the motor stays at a point,
    # whatever the host drives, until the next one, and at the last after the end
    holds = [(t, {str(k): v for k, v in _ticks_of(chain, link, values, calibration).items()})
             for t, values in points]
    t0 = time.monotonic()
    for t, hold in holds:
        time.sleep(max(0.0, t0 + t - time.monotonic()))
        _send(link, {"hold": hold})
    print(f"{chain}: played {len(points)} points over {points[-1][0]:.1f} s from {trajectory}; holding the "
          f"last (--release to let go)", file=out)
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)  # Ctrl-C, kill, SSH drop, Ctrl-\


def _catch_stop_signals(received: list[int]) -> dict:
    """Append each stop signal to `received` instead of dying: SIGHUP's and SIGQUIT's default
    would skip the cleanup and leave the emulators (their own sessions) holding their links.
    Returns the previous handlers. The emulators get the defaults back when they exec."""
    return {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in STOP_SIGNALS}


def _ended(returncode: int) -> str:
    return f"was killed by {signal.Signals(-returncode).name}" if returncode < 0 else \
        f"exited with code {returncode}"


def _wait(procs: list[subprocess.Popen], links: list[Path], received: list[int], poll: float = 0.1) -> str:
    """Until a stop signal arrives (''), or an emulator ends on its own: the line that says which."""
    while not received:
        for proc, link in zip(procs, links):
            if proc.poll() is not None:
                return (f"brs emulate: the emulator of {link.name} (pid {proc.pid}) {_ended(proc.returncode)}; "
                        "stopped the others")
        time.sleep(poll)
    return ""


def remove_links(links: list[Path]) -> None:
    """Remove the links and control sockets of emulators that have all exited (a killed one
    leaves its own behind)."""
    for link in links:
        for path in (link, _control(link)):
            if path.is_symlink() or path.is_socket():
                path.unlink(missing_ok=True)


def main(directory: Path | None = None, joylo: bool = False) -> int:
    """Run the emulators until a stop signal (0) or until one of them ends on its own (1); on
    every way out the others are stopped and the links removed."""
    directory = directory or default_dir()
    created = not directory.exists()
    _, _, links = emulator_commands(directory, joylo)
    for path in clean_links(links):
        print(f"removed a stale {path} (left by an emulator that was killed)")
    received: list[int] = []
    previous = _catch_stop_signals(received)
    procs: list[subprocess.Popen] = []
    ours: list[Path] = []  # the links of the emulators started here
    try:
        procs, overrides, ours = start(directory, joylo=joylo)
        args = ("mode:=teleop " if joylo else "") + " ".join(f"'{k}:={v}'" for k, v in overrides.items())
        chains = len(CHAINS) + (len(JOYLO_CHAINS) if joylo else 0)
        print(f"emulating {chains} Dynamixel chains and {len(WHEEL_BOARDS)} wheel boards under {directory}")
        print(f"run the real-mode graph against them:\n  {brs_command()} bringup use_sim:=false {args}")
        print("Ctrl-C stops the emulators.", flush=True)
        died = _wait(procs, ours, received)
    finally:
        stop(procs)
        remove_links(ours)
        if created:  # our own default folder goes too (when nothing else was put there)
            try:
                directory.rmdir()
            except OSError:
                pass
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died:
        print(died, file=sys.stderr)
        return 1
    return 0
