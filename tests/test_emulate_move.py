"""`brs emulate move`: a user moves an emulated leader arm from the shell, seen through the real
Dynamixel protocol (dynamixel-sdk on the emulator's pty); stale links of a killed emulator go."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

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
                          ((CHAIN, "32=2400"), f"no emulator of {CHAIN} in {tmp_path} (brs_dxl_{CHAIN}.ctl: no such socket)")):
        run = brs(*args, "--dir", str(tmp_path))
        assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run


def test_no_emulator_names_the_folder_and_dir_and_answers_at_once(tmp_path, monkeypatch):
    """Finding 8c: `brs emulate move` without an emulator in its folder says which folder it
    looked in and how to point it elsewhere (--dir), before any calibration lookup or CSV read."""
    from brs import emulate

    monkeypatch.setenv("ROS_DOMAIN_ID", "77")
    default = emulate.default_dir()
    assert default == Path(f"/tmp/brs_emulated_{os.getuid()}_77")
    # a joint angle would need the chain's calibration: there is none here, and none is looked for
    monkeypatch.setenv("BRS_CALIBRATION_DIR", str(tmp_path / "nothing"))
    t0 = time.monotonic()
    with pytest.raises(ValueError) as exc:
        emulate.move(tmp_path, CHAIN, ["left_arm_joint2=0.5"])
    took = time.monotonic() - t0
    text = str(exc.value)
    assert f"in {tmp_path}" in text and f"brs emulate --joylo --dir {tmp_path}" in text, text
    assert "give --dir" in text and str(default) in text, text
    assert took < 0.5, f"{took:.2f} s to find no emulator"
    with pytest.raises(ValueError, match=f"no emulator of {CHAIN} in "):
        emulate.move(tmp_path, CHAIN, [], trajectory=tmp_path / "missing.csv")  # not a CSV error first
    # a socket that nobody serves any more (an emulator killed with SIGKILL)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / f"brs_dxl_{CHAIN}.ctl"))
    sock.close()
    with pytest.raises(ValueError, match="nobody answers"):
        emulate.move(tmp_path, CHAIN, ["32=2000"])
    # the default folder: no --dir in the hint to start them
    with pytest.raises(ValueError) as exc:
        emulate.move(default, CHAIN, ["32=2000"])
    assert "`brs emulate --joylo`" in str(exc.value), exc.value


def test_default_folder_is_per_user_and_domain_and_the_printed_command_runs(tmp_path, ros_domain):
    """Finding 8a/b: without --dir, `brs emulate` and `brs emulate move` meet in
    /tmp/brs_emulated_<uid>_<domain>; the printed bringup command starts with this brs (not a bare
    `brs` that PATH may not have) and runs as printed."""
    folder = Path(f"/tmp/brs_emulated_{os.getuid()}_{ros_domain}")
    assert not folder.exists(), f"{folder} is left over from another run"
    proc = subprocess.Popen([str(BIN / "brs"), "emulate", "--joylo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    link = folder / f"brs_dxl_{CHAIN}"
    try:
        wait_for(lambda: link.exists() and link.with_name(link.name + ".ctl").exists() or proc.poll() is not None,
                 30, message=f"the emulators in {folder}")
        assert proc.poll() is None
        run = brs(CHAIN, f"{MOTOR}=2222")  # no --dir: the same default
        assert run.returncode == 0, run.stderr
        wait_for(lambda: present_position(link, MOTOR) == 2222, 5, message="moved through the default folder")
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    assert not folder.exists(), f"{folder} left behind: {os.listdir(folder)}"
    command = next(line.strip() for line in out.splitlines() if "bringup use_sim:=false" in line)
    assert command.startswith(f"{(BIN / 'brs').resolve()} bringup use_sim:=false mode:=teleop "), command
    assert f"'joylo.left_port:={link}'" in command, command
    dry = subprocess.run(["bash", "-c", command + " --dry-run"], capture_output=True, text=True, timeout=60)
    joylo = next((line for line in dry.stdout.splitlines() if "__node:=joylo " in line), "")
    assert dry.returncode == 0 and f'left_port:="{link}"' in joylo, dry


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


def test_trajectory_holds_every_point_while_the_host_drives_the_motor(emulator, tmp_path):
    """A JoyLo leader under haptics: the host keeps writing a far goal with a current limit
    (current-based position mode), which moves a free motor. `--trajectory` holds the motor at
    each point until the next one and at the last point after the end (finding 9 of walk17)."""
    link, _ = emulator
    points = [2100, 2200, 2300]
    csv = tmp_path / "wave.csv"
    csv.write_text("time_s,%d\n" % MOTOR + "".join(f"{0.4 * k:.1f},{p}\n" for k, p in enumerate(points)))
    port = sdk.PortHandler(str(link))
    assert port.openPort() and port.setBaudRate(1_000_000)
    packet = sdk.PacketHandler(2.0)

    def txrx(call):
        """`call()` again after a missing status packet, as a host does on a real bus: on a loaded
        machine the emulator process can be descheduled past the SDK's ~34 ms status timeout."""
        for _ in range(5):
            *value, result, error = call()
            if result != sdk.COMM_RX_TIMEOUT:
                break
        assert result == sdk.COMM_SUCCESS and error == 0, packet.getTxRxResult(result)
        return value

    def write(register, value, size=4):
        fn = packet.write4ByteTxRx if size == 4 else packet.write2ByteTxRx if size == 2 else packet.write1ByteTxRx
        txrx(lambda: fn(port, MOTOR, register.address, value & ((1 << 8 * size) - 1)))

    def position():
        value, = txrx(lambda: packet.read4ByteTxRx(port, MOTOR, ct.PRESENT_POSITION.address))
        return value - (1 << 32) if value >= 1 << 31 else value

    samples = []  # (monotonic time, present position)
    try:
        write(ct.OPERATING_MODE, ct.MODE_CURRENT_BASED_POSITION, 1)
        write(ct.TORQUE_ENABLE, 1, 1)
        run = subprocess.Popen([str(BIN / "brs"), "emulate", "move", CHAIN, "--trajectory", str(csv),
                                "--dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        end = None
        while end is None or time.monotonic() < end + 0.6:
            write(ct.GOAL_CURRENT, 350, 2)  # the haptic pull: toward a robot far below
            write(ct.GOAL_POSITION, 1000)
            samples.append((time.monotonic(), position()))
            if end is None and run.poll() is not None:
                end = time.monotonic()
            assert time.monotonic() - samples[0][0] < 60, "brs emulate move --trajectory did not end"
        out = run.communicate()[0]
        assert run.returncode == 0, out
    finally:
        port.closePort()
    first = next((i for i, (_, p) in enumerate(samples) if abs(p - points[0]) <= 1), None)
    assert first is not None, f"never at the first point {points[0]}; saw {sorted({p for _, p in samples})}"
    seen = [p for _, p in samples[first:]]
    off = [p for p in seen if min(abs(p - q) for q in points) > 1]
    assert not off, f"between points the motor was at {sorted(set(off))} (points {points})"
    visited = [min(range(len(points)), key=lambda k: abs(p - points[k])) for p in seen]
    assert visited == sorted(visited) and set(visited) == set(range(len(points))), visited
    after = [p for t, p in samples if t >= end]
    assert after and all(abs(p - points[-1]) <= 1 for p in after), f"after the end: {after}"
