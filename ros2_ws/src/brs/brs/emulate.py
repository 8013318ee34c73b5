"""`brs emulate`: the robot's serial devices as protocol-level emulators on pseudo-terminals.

Starts one Dynamixel chain emulator per driver (torso, left arm, right arm) and the two ODrive
wheel boards, each on a pty symlinked under `--dir`, and prints the bringup command whose port
overrides point the real-mode graph (`use_sim:=false`) at them. Nothing else changes: the drivers
talk the same bytes they would to the hardware.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from brs_common.dds import configure_dds
from brs_common.process import stop_process

BIN = Path(sys.executable).parent
CHAINS = ("torso", "left_arm", "right_arm")
JOYLO_CHAINS = ("joylo_left", "joylo_right")  # --joylo: the leader arms (the joylo node's ports)
WHEEL_BOARDS = ("a", "b")


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


def _send(link: Path, message: dict) -> None:
    import json
    import socket

    control = link.with_name(link.name + ".ctl")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(json.dumps(message).encode(), str(control))
        except OSError as exc:
            raise ValueError(f"no emulator listens on {control} ({exc.strerror}): start it with "
                             f"`brs emulate{' --joylo' if 'joylo' in link.name else ''}`") from None


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
    (time_s, then a JOINT or ID column each) at real time; or release them."""
    import time

    if chain not in CHAINS + JOYLO_CHAINS:
        raise ValueError(f"unknown chain {chain!r}; chains: {', '.join(CHAINS + JOYLO_CHAINS)}")
    link = directory / f"brs_dxl_{chain}"
    if release:
        _send(link, {"release": [int(k) for k in release]})
        print(f"{chain}: released {list(release)}", file=out)
        return 0
    if trajectory is None:
        if not targets:
            raise ValueError("give JOINT=RAD / ID=TICKS targets, --trajectory FILE or --release")
        ticks = _ticks_of(chain, link, parse_targets(targets), calibration)
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
    t0 = time.monotonic()
    for t, values in points:
        time.sleep(max(0.0, t0 + t - time.monotonic()))
        _send(link, {"hold": {str(k): v for k, v in _ticks_of(chain, link, values, calibration).items()}})
    print(f"{chain}: played {len(points)} points over {points[-1][0]:.1f} s from {trajectory}", file=out)
    return 0


def main(directory: Path, joylo: bool = False) -> int:
    _, _, links = emulator_commands(directory, joylo)
    for path in clean_links(links):
        print(f"removed a stale {path} (left by an emulator that was killed)")
    procs, overrides, links = start(directory, joylo=joylo)
    args = ("mode:=teleop " if joylo else "") + " ".join(f"'{k}:={v}'" for k, v in overrides.items())
    chains = len(CHAINS) + (len(JOYLO_CHAINS) if joylo else 0)
    print(f"emulating {chains} Dynamixel chains and {len(WHEEL_BOARDS)} wheel boards under {directory}")
    print(f"run the real-mode graph against them:\n  brs bringup use_sim:=false {args}")
    print("Ctrl-C stops the emulators.")
    signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        signal.sigwait(signals)
    finally:
        stop(procs)
        clean_links(links)
    return 0
