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


def main(directory: Path, joylo: bool = False) -> int:
    procs, overrides, _ = start(directory, joylo=joylo)
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
    return 0
