"""Dynamixel bus cycle-rate benchmarks (registered in brs_bench).

dxl_cycle_hz: one control cycle of a 14-motor chain = ONE sync read of Present_Current ..
Present_Position (10 bytes per motor) + ONE sync write of Goal_Position, through DynamixelBus
(the ROBOTIS SDK) against the protocol emulator running in its own process with 1 Mbps wire-time
emulation (10 bits per byte; Return_Delay_Time 0). Baseline, same bus, same run: the naive
per-motor loop through the bus's public unicast calls (14 READ of Present_Position + 14 WRITE of
Goal_Position, each with its status packet).
dxl_cycle_hz_4mbps: the same at 4 Mbps, the motors.yaml option.

The wire alone bounds the rate: a cycle moves 28 + 27 * n bytes (n motors), 406 bytes for 14,
so at most 246 Hz at 1 Mbps and 985 Hz at 4 Mbps; the notes give the share of that bound reached.
A real U2D2 adds its USB latency (latency timer 1 ms) on top, which the emulator does not model.
"""

from __future__ import annotations

TITLE = "Dynamixel sync read + sync write cycle on the emulated bus"  # make bench's heading of this module

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

N_MOTORS = 14
SYNC_SECONDS = 1.0  # per repeat
NAIVE_SECONDS = 0.5


def cycle_bytes(n: int) -> int:
    """Bytes on the wire for one sync read (10-byte block) + one sync write (4 bytes)."""
    sync_read = 14 + n  # header 7, inst 1, address 2, length 2, ids n, CRC 2
    status = 11 + 10  # header 7, inst 1, error 1, data 10, CRC 2
    sync_write = 14 + n * 5  # header 7, inst 1, address 2, length 2, (id + 4) * n, CRC 2
    return sync_read + n * status + sync_write


def _start_emulator(link: str, baud: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "brs_control.emulators.dynamixel_emulator", "--port-link", link,
         "--ids", f"1-{N_MOTORS}", "--baud", str(baud), "--model", "XM430-W350"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not os.path.exists(link):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"dxl_emulator did not come up on {link}")
        time.sleep(0.02)
    return proc


def _sync_hz(bus, seconds: float) -> float:
    n, t0, k = 0, time.monotonic(), 0
    while True:
        q = 0.2 * np.sin(0.01 * k + np.arange(N_MOTORS))
        bus.read_state()
        bus.write_positions(q)
        n, k = n + 1, k + 1
        elapsed = time.monotonic() - t0
        if elapsed >= seconds:
            return n / elapsed


def _naive_hz(bus, seconds: float) -> float:
    from brs_control.dynamixel import control_table as ct

    n, t0 = 0, time.monotonic()
    while True:
        for dxl_id in bus.ids:
            bus.read_register(dxl_id, "Present_Position")
        for dxl_id in bus.ids:
            bus.write_register(dxl_id, ct.GOAL_POSITION, ct.CENTER_TICK)
        n += 1
        elapsed = time.monotonic() - t0
        if elapsed >= seconds:
            return n / elapsed


def measure(baud: int, repeats: int) -> tuple[float, float]:
    """(median sync cycle Hz, median naive cycle Hz) on a fresh emulator at `baud`."""
    from brs_control.dynamixel.bus import DynamixelBus

    with tempfile.TemporaryDirectory(prefix="brs_bench_dxl_") as tmp:
        link = os.path.join(tmp, "dxl")
        proc = _start_emulator(link, baud)
        bus = DynamixelBus(link, baud, list(range(1, N_MOTORS + 1)))
        try:
            bus.open()
            bus.ping_all()
            bus.set_return_delay_time(0)
            bus.hold_present()
            bus.set_torque(True)
            _sync_hz(bus, 0.2)  # warm-up
            sync = statistics.median(_sync_hz(bus, SYNC_SECONDS) for _ in range(repeats))
            naive = statistics.median(_naive_hz(bus, NAIVE_SECONDS) for _ in range(repeats))
        finally:
            bus.close()
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return sync, naive


def run(repeats: int = 3):
    from brs_bench.result import Result

    results = []
    for baud, name in ((1_000_000, "dxl_cycle_hz"), (4_000_000, "dxl_cycle_hz_4mbps")):
        sync, naive = measure(baud, repeats)
        bound = baud / (10 * cycle_bytes(N_MOTORS))
        note = (f"{N_MOTORS} motors, 1 sync read (126..135) + 1 sync write per cycle, emulator in its "
                f"own process, {baud / 1e6:g} Mbps wire time; wire bound {bound:.0f} Hz "
                f"({cycle_bytes(N_MOTORS)} B/cycle), reached {sync / bound:.0%}; median of {repeats}")
        if sync < 500 and bound < 500:
            note += f"; >= 500 Hz is impossible at {baud / 1e6:g} Mbps for {N_MOTORS} motors"
        results.append(Result(name, sync, "Hz", naive, "per-motor READ + WRITE loop (28 transactions)",
                              ">= 500", note=note))
    return results


if __name__ == "__main__":  # quick look without brs installed: python -m brs_bench.dynamixel_bus
    for baud in (1_000_000, 4_000_000):
        s, b = measure(baud, 1)
        print(f"{baud / 1e6:g} Mbps: sync {s:.0f} Hz, naive {b:.0f} Hz, bound "
              f"{baud / (10 * cycle_bytes(N_MOTORS)):.0f} Hz")
