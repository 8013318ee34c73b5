"""`brs emulate move`: a user moves an emulated leader arm from the shell, seen through the real
Dynamixel protocol (dynamixel-sdk on the emulator's pty); stale links of a killed emulator go."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import dynamixel_sdk as sdk
import pytest

from brs_common.process import stop_process
from brs_control.dynamixel import control_table as ct
from rosutil import BIN, wait_for
from test_leader_arms import write_cal

CHAIN, MOTOR = "joylo_left", 32  # left leader, joint 2


@pytest.fixture
def emulator(tmp_path):
    link = tmp_path / f"brs_dxl_{CHAIN}"
    proc = subprocess.Popen([str(BIN / "dxl_emulator"), "--chain", CHAIN, "--port-link", str(link)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: link.exists() and link.with_name(link.name + ".ctl").exists() or proc.poll() is not None,
             20, message="the emulator's pty and control socket")
    assert proc.poll() is None
    yield link, proc
    stop_process(proc)


def present_position(link, dxl_id: int) -> int:
    port = sdk.PortHandler(str(link))
    assert port.openPort() and port.setBaudRate(1_000_000)
    try:
        packet = sdk.PacketHandler(2.0)
        value, result, error = packet.read4ByteTxRx(port, dxl_id, ct.PRESENT_POSITION.address)
        assert result == sdk.COMM_SUCCESS and error == 0, packet.getTxRxResult(result)
        return value - (1 << 32) if value >= 1 << 31 else value
    finally:
        port.closePort()


def brs(*args, **kw):
    return subprocess.run([str(BIN / "brs"), "emulate", "move", *args], capture_output=True, text=True, timeout=60, **kw)


def test_move_hold_trajectory_and_release(emulator, tmp_path):
    link, _ = emulator
    run = brs(CHAIN, f"{MOTOR}=2400", "--dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    wait_for(lambda: present_position(link, MOTOR) == 2400, 5, message="motor 32 at 2400 ticks")
    # joint angles go through the calibration: sign -1 and an offset of 0.3 rad on joint 2
    cal = write_cal(tmp_path, "left", str(link), joints={1: {"sign": -1, "offset": 0.3}})
    run = brs(CHAIN, "left_arm_joint2=0.5", "--calibration", str(cal), "--dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    want = int(ct.rad_to_ticks(-0.5 + 0.3))
    wait_for(lambda: present_position(link, MOTOR) == want, 5, message=f"motor 32 at {want} ticks")
    # a trajectory at real time: the last point is where it ends, after its duration
    csv = tmp_path / "wave.csv"
    csv.write_text(f"time_s,{MOTOR},31\n0.0,2100,2000\n0.3,2200,2050\n0.6,2300,2100\n")
    t0 = time.monotonic()
    run = brs(CHAIN, "--trajectory", str(csv), "--dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - t0 >= 0.6
    assert present_position(link, MOTOR) == 2300 and present_position(link, 31) == 2100
    assert brs(CHAIN, "--release", str(MOTOR), "--dir", str(tmp_path)).returncode == 0


def test_bad_input_and_no_emulator_are_one_line_exit_2(tmp_path):
    for args, message in ((("nochain", "1=2"), "unknown chain 'nochain'"),
                          ((CHAIN, "joint2"), "expected JOINT=RAD or ID=TICKS"),
                          ((CHAIN, "32=2400"), "no emulator listens on")):
        run = brs(*args, "--dir", str(tmp_path))
        assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run


def test_emulate_removes_what_a_killed_emulator_left(tmp_path, ros_domain):
    """An emulator SIGKILLed mid-test leaves its pty link and control socket; the next
    `brs emulate` says so and removes them, and its own Ctrl-C leaves nothing behind."""
    link = tmp_path / f"brs_dxl_{CHAIN}"
    stale = subprocess.Popen([str(BIN / "dxl_emulator"), "--chain", CHAIN, "--port-link", str(link)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: link.with_name(link.name + ".ctl").exists(), 20, message="the first emulator")
    stale.kill()
    stale.wait(10)
    assert link.is_symlink() and not link.exists()  # dangling
    proc = subprocess.Popen([str(BIN / "brs"), "emulate", "--joylo", "--dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: link.exists() and link.with_name(link.name + ".ctl").exists(), 30,
                 message="the new emulators")
        assert brs(CHAIN, f"{MOTOR}=2222", "--dir", str(tmp_path)).returncode == 0
        wait_for(lambda: present_position(link, MOTOR) == 2222, 5, message="moved on the new emulator")
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    assert f"removed a stale {link}" in out
    assert not os.listdir(tmp_path), os.listdir(tmp_path)  # every link and socket gone
