"""ODrive ASCII protocol: codec, checksum, and the client against the emulated board on a pty."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from brs_control.emulators.wheel_emulator import WheelEmulator
from brs_control.odrive.protocol import (
    AXIS_ERROR_WATCHDOG_TIMER_EXPIRED,
    AxisState,
    ChecksumMismatch,
    DeviceRefused,
    MalformedReply,
    ODriveAscii,
    PortUnavailable,
    WheelTimeout,
    checksum,
    decode_line,
    encode_line,
    format_number,
    parse_feedback,
    split_checksum,
)
from rosutil import wait_for


# ----------------------------------------------------------------------------- codec

def test_checksum_is_xor_of_bytes():
    assert checksum(b"") == 0
    assert checksum(b"A") == 0x41
    assert checksum(b"AB") == 0x41 ^ 0x42
    line = encode_line("r vbus_voltage")
    body, cs = split_checksum(line)
    assert body == b"r vbus_voltage" and cs == checksum(body)
    assert line.endswith(b"\n") and b"*" in line
    assert encode_line("f 0", with_checksum=False) == b"f 0\n"


def test_encode_refuses_bad_commands():
    for bad in ("", "v 0 1\nv 1 2", "r x*3", "w a;b 1", "v 0 \x00"):
        with pytest.raises(ValueError):
            encode_line(bad)


def test_decode_verifies_checksum():
    good = b"1.500000 -0.250000*%d\n" % checksum(b"1.500000 -0.250000")
    assert decode_line(good, require_checksum=True) == "1.500000 -0.250000"
    flipped = bytearray(good)
    flipped[0] ^= 0x01
    with pytest.raises(ChecksumMismatch):
        decode_line(bytes(flipped), require_checksum=True)
    with pytest.raises(MalformedReply):
        decode_line(b"1.5 0.2\n", require_checksum=True)  # checksum required
    assert decode_line(b"1.5 0.2 ; comment\n", require_checksum=False) == "1.5 0.2"
    with pytest.raises(MalformedReply):
        decode_line(b"\x8f\x03 1.5*12\n", require_checksum=True)  # garbage bytes
    with pytest.raises(MalformedReply):
        decode_line(b"1.5*x1\n", require_checksum=True)


def test_parse_feedback_and_numbers():
    assert parse_feedback("12.5 -0.75") == (12.5, -0.75)
    for bad in ("12.5", "a b", "1 2 3", "nan 1"):
        with pytest.raises(MalformedReply):
            parse_feedback(bad)
    assert format_number(1.0) == "1"
    assert format_number(-0.0) == "0"
    assert format_number(-1.25) == "-1.25"
    assert format_number(1e-9) == "0"
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            format_number(bad)


# ----------------------------------------------------------------------------- client + emulator

@pytest.fixture
def board(tmp_path):
    with WheelEmulator(str(tmp_path / "odrive"), n_axes=2, tau=0.02, seed=1) as emu:
        client = ODriveAscii(emu.path, timeout=0.05, retries=2)
        client.open()
        try:
            yield emu, client
        finally:
            client.close()


def test_velocity_feedback_and_properties(board):
    emu, dev = board
    assert dev.vbus_voltage() == pytest.approx(24.0)
    assert dev.axis_state(0) == AxisState.IDLE
    dev.configure_watchdog(0, 0.5)
    dev.arm(0)
    dev.set_velocity(0, 2.0)
    wait_for(lambda: dev.feedback(0)[1] > 1.99, 2, message="axis 0 at 2 turns/s")
    pos, vel = dev.feedback(0)
    assert pos > 0 and vel == pytest.approx(2.0, abs=0.01)
    assert dev.feedback(1) == (0.0, 0.0)  # idle axis never moves
    assert dev.read_float("axis0.controller.input_vel") == 2.0
    dev.write("axis0.controller.config.vel_limit", 1.5, verify=True)
    wait_for(lambda: dev.feedback(0)[1] < 1.51, 2, message="velocity limit applied")
    with pytest.raises(DeviceRefused):
        dev.read("axis0.no_such_thing")
    with pytest.raises(DeviceRefused):
        dev.feedback(7)
    # every line the device accepted carried a valid checksum
    assert emu.odrive.stats["bad_checksum"] == 0
    assert [v for _, v in emu.odrive.velocity_commands(0)] == [0.0, 2.0]


def test_device_watchdog_idles_axis(board):
    emu, dev = board
    dev.configure_watchdog(1, 0.05)
    dev.arm(1)
    dev.set_velocity(1, -1.0)
    wait_for(lambda: dev.axis_state(1) == AxisState.IDLE, 2, message="watchdog expiry")
    assert dev.axis_error(1) & AXIS_ERROR_WATCHDOG_TIMER_EXPIRED
    # refused until errors are cleared
    dev.request_state(1, AxisState.CLOSED_LOOP_CONTROL)
    assert dev.axis_state(1) == AxisState.IDLE
    dev.clear_errors()
    dev.arm(1)
    assert dev.axis_error(1) == 0


def test_retries_on_drop_corrupt_garbage(board):
    emu, dev = board
    dev.feedback(0)
    emu.device.drop_next(1)
    assert dev.feedback(0) == (0.0, 0.0)
    assert dev.stats["timeouts"] == 1 and dev.stats["retries"] == 1
    emu.odrive.corrupt_next(1)  # payload bit error: checksum mismatch
    dev.feedback(0)
    assert dev.stats["checksum_errors"] == 1
    emu.device.corrupt_next(1)  # generic fault: last byte (the newline) flipped
    dev.feedback(0)
    emu.device.garbage_next(1, size=24)  # random bytes ahead of the reply
    dev.feedback(0)
    emu.device.garbage_next(1, size=8, replace=True)
    dev.feedback(0)
    emu.device.inject_garbage(32)  # unsolicited line noise between queries
    assert dev.vbus_voltage() == pytest.approx(24.0)
    assert dev.stats["retries"] >= 4
    # persistent silence: the typed timeout after the retries
    emu.device.mute(True)
    with pytest.raises(WheelTimeout):
        dev.feedback(0)
    assert dev.stats["failed_queries"] == 1
    emu.device.mute(False)
    assert dev.feedback(1) == (0.0, 0.0)


def test_corrupted_request_is_ignored_by_device(board):
    emu, dev = board
    dev._require_open().write(b"v 0 5*0\n")  # wrong checksum: the firmware drops it silently
    assert dev.read_float("axis0.controller.input_vel") == 0.0
    assert emu.odrive.commands("v 0 5", outcome="bad_checksum")


def test_vanish_and_reopen(board):
    emu, dev = board
    emu.vanish()
    with pytest.raises(PortUnavailable):
        dev.feedback(0)
        dev.feedback(0)
    assert not dev.is_open
    with pytest.raises(PortUnavailable):
        dev.open()
    emu.reappear()
    dev.open()
    assert dev.axis_state(0) == AxisState.IDLE
    assert emu.odrive.boots == 2


def test_console_script(tmp_path):
    link = tmp_path / "wheels_cli"
    exe = Path(sys.executable).parent / "wheel_emulator"
    proc = subprocess.Popen([str(exe), "--port-link", str(link), "--axes", "1", "--status-period", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # printed once the port exists
        assert "ODrive with 1 axes" in line, line
        with ODriveAscii(str(link), timeout=0.2) as dev:
            assert dev.vbus_voltage() == pytest.approx(24.0)
            with pytest.raises(DeviceRefused):
                dev.feedback(1)  # a single-axis board
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert not os.path.lexists(link)
