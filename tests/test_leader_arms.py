"""JoyLo leader arms without ROS: the haptic law, calibrated reading on the emulated bus, haptic
writes reaching the emulated motors, calibration checks and `brs calibrate joylo`.

Leader chains are the protocol emulator (XL330-M288, ids 31-36 / 41-46 as in motors.yaml) on
ptys, read through the shared DynamixelBus.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from brs_common import robot_spec as spec
from brs_control.dynamixel import control_table as ct
from brs_control.dynamixel.calibration import dump_calibration, load_calibration
from brs_control.emulators.dynamixel_emulator import DynamixelEmulator
from brs_teleop import calibrate_cli
from rosutil import wait_for

from brs_teleop.leader_arms import (FREE, LAG, LIMIT, HapticConfig, LeaderArm, LeaderArms,
                                    LeaderCalibrationError, haptic_command, load_leader_calibration)

IDS = {"left": list(range(31, 37)), "right": list(range(41, 47))}
ROBOT_LEFT_ARM = Path(__file__).resolve().parents[1] / "hardware" / "calibration" / "left_arm.yaml"
HOME_ARM = np.array([spec.JOINT_BY_NAME[j].home for j in spec.GROUPS["left_arm"].joints])


def tick_of(q, sign=1, offset=0.0):
    return float(ct.rad_to_ticks(sign * q + offset))


def write_cal(directory, side, port, device_id="", joints=None):
    """A leader calibration file; `joints`: {index: {sign, offset, range}} overrides."""
    entries = {}
    for k, (name, dxl_id) in enumerate(zip(spec.GROUPS[f"{side}_arm"].joints, IDS[side])):
        entry = {"id": dxl_id, "model": "XL330-M288", "mode": "current_based_position",
                 "offset": 0.0, "sign": 1}
        entry.update((joints or {}).get(k, {}))
        entries[name] = entry
    path = directory / f"joylo_{side}.yaml"
    path.write_text(yaml.safe_dump({"format": "brs_dynamixel_calibration/1", "chain": f"joylo_{side}",
                                    "device_id": device_id, "port": port, "baudrate": 1000000,
                                    "joints": entries}, sort_keys=False))
    return path


@pytest.fixture
def leader_emulators(tmp_path):
    """Both leader chains emulated, standing in the home pose."""
    emus = {}
    for side in ("left", "right"):
        home = {i: tick_of(h) for i, h in zip(IDS[side], HOME_ARM)}
        emus[side] = DynamixelEmulator(IDS[side], "XL330-M288", link=str(tmp_path / f"joylo_{side}"),
                                       positions=home, seed=0).start()
    yield emus
    for emu in emus.values():
        emu.stop()


# ----------------------------------------------------------------------------- haptic law

def test_haptic_law_free_lag_and_limit():
    cfg = HapticConfig(lag_deadband=0.1, lag_gain=1.0, limit_margin=0.2, limit_gain=2.0, max_current=0.5)
    lo, hi = np.full(4, -1.0), np.full(4, 1.0)
    leader = np.array([0.0, 0.3, 0.95, 0.5])
    robot = np.array([0.05, 0.0, 0.95, np.nan])  # joint 3: robot unknown -> no lag force
    goal, cur, why = haptic_command(leader, robot, lo, hi, cfg)
    assert why.tolist() == [FREE, LAG, LIMIT, FREE]
    assert cur[0] == 0.0 and goal[0] == 0.0  # inside the deadband: free, goal where the leader is
    assert cur[1] == pytest.approx(0.2) and goal[1] == 0.0  # spring toward the robot's position
    assert cur[2] == pytest.approx(2.0 * 0.15) and goal[2] == pytest.approx(0.8)  # toward the margin edge
    assert cur[3] == 0.0
    # capped at max_current; lower limit too; the stronger of lag and limit wins
    goal, cur, why = haptic_command([3.0, -0.9, 0.9], [0.0, -0.9, -0.9], lo[:3], hi[:3], cfg)
    assert cur.tolist() == pytest.approx([0.5, 0.2, 0.5])
    assert why.tolist() == [LIMIT, LIMIT, LAG]
    assert goal.tolist() == pytest.approx([0.8, -0.8, -0.9])
    # off: free_current everywhere
    goal, cur, why = haptic_command([0.0], [0.0], [-1.0], [1.0], HapticConfig(free_current=0.02))
    assert cur.tolist() == [0.02] and why.tolist() == [FREE]
    with pytest.raises(ValueError, match="lag_gain"):
        HapticConfig(lag_gain=-1)


# ----------------------------------------------------------------------------- reading + haptics

def test_leader_arms_map_calibration_and_clamp_on_emulated_bus(leader_emulators, tmp_path):
    ports = {s: leader_emulators[s].path for s in leader_emulators}
    write_cal(tmp_path, "left", ports["left"],
              joints={1: {"sign": -1, "offset": 0.2}, 2: {"range": [-1.0, 1.0]}})
    write_cal(tmp_path, "right", ports["right"], joints={0: {"sign": -1}})
    arms = LeaderArms.from_parameters(ports, directory=tmp_path, haptics=HapticConfig(enabled=False),
                                      timeout_margin_ms=50.0)
    try:
        arms.connect()
        assert all(a.connected for a in arms.arms.values()), [a.fault for a in arms.arms.values()]
        left, right = leader_emulators["left"], leader_emulators["right"]
        left.set_position(31, tick_of(0.5))
        left.set_position(32, tick_of(0.3, sign=-1, offset=0.2))  # sign and offset applied
        left.set_position(33, tick_of(1.5))  # beyond the calibration's range [-1, 1]
        left.set_position(36, tick_of(3.05))  # beyond the spec limit 2.9 (single turn still)
        right.set_position(41, tick_of(0.7, sign=-1))
        reading = arms.read()
        q = reading.arms()
        res = ct.RAD_PER_TICK
        assert q[0] == pytest.approx(0.5, abs=res)
        assert q[1] == pytest.approx(0.3, abs=res)
        assert q[2] == 1.0  # clamped to the range
        assert q[3] == pytest.approx(HOME_ARM[3], abs=res)
        assert q[5] == 2.9  # clamped to the spec limit
        assert q[6] == pytest.approx(0.7, abs=res)
        assert reading.raw["left"][2] == pytest.approx(1.5, abs=res)  # unclamped kept for haptics
        # torque stays off without haptics; current-based position mode is set
        assert not left.read_all("Torque_Enable").any()
        assert (left.read_all("Operating_Mode") == ct.MODE_CURRENT_BASED_POSITION).all()
    finally:
        arms.close()


def test_haptics_reach_the_emulated_leader_motors(leader_emulators, tmp_path):
    ports = {s: leader_emulators[s].path for s in leader_emulators}
    for side in ports:
        write_cal(tmp_path, side, ports[side], joints={1: {"sign": -1}} if side == "left" else None)
    cfg = HapticConfig(lag_deadband=0.1, lag_gain=1.0, limit_margin=0.15, limit_gain=2.0, max_current=0.3)
    arms = LeaderArms.from_parameters(ports, directory=tmp_path, haptics=cfg, timeout_margin_ms=50.0)
    left = leader_emulators["left"]
    left.set_obstacle(32, tick_of(0.0, sign=-1))  # the operator's hand holds joint 2 at 0
    try:
        arms.connect()
        assert left.read_all("Torque_Enable").all()  # haptics: torque on, Goal_Current 0
        assert (left.read_all("Goal_Current") == 0).all()
        robot = {"left": HOME_ARM.copy(), "right": HOME_ARM.copy()}
        written = len(left.writes(address=ct.GOAL_CURRENT.address))  # 6 zeros at connect
        arms.apply_haptics(arms.read(), robot)
        assert len(left.writes(address=ct.GOAL_CURRENT.address)) == written  # free: no writes
        robot["left"][1] = 0.5  # the robot's joint 2 lags 0.5 rad behind the leader
        left.set_position(31, tick_of(2.8))  # joint 1 within 0.1 rad of its 2.9 limit ...
        robot["left"][0] = 2.8  # ... and the robot with it (no lag there)
        arms.apply_haptics(arms.read(), robot)
        assert arms.last_reason["left"].tolist()[:2] == [LIMIT, LAG]
        # sync writes have no reply: wait until the emulated motors applied them
        expected = {(31, "Goal_Current"): 100,  # 2 A/rad * 0.05 rad into the margin, XL330: 1 mA units
                    (31, "Goal_Position"): tick_of(2.75),  # toward the margin's edge
                    (32, "Goal_Current"): 300,  # lag 0.5 - 0.1 deadband, 1 A/rad: capped at 0.3 A
                    (32, "Goal_Position"): tick_of(0.5, sign=-1),  # toward the robot (sign -1)
                    (33, "Goal_Current"): 0}
        got = lambda: {k: left.read(*k) for k in expected}  # noqa: E731
        wait_for(lambda: all(abs(got()[k] - v) <= 2 for k, v in expected.items()), 2.0,
                 message=f"haptic goals on the leader motors {expected}")
        robot["left"][:2] = 0.0  # the robot caught up, the leader left the limit zone: free again
        left.set_position(31, tick_of(0.0))
        arms.apply_haptics(arms.read(), robot)
        wait_for(lambda: not left.read_all("Goal_Current").any(), 2.0, message="zero currents")
    finally:
        arms.close()
    assert not left.read_all("Torque_Enable").any()  # close: torque off, the arm is limp


# ----------------------------------------------------------------------------- calibration checks

def test_missing_and_mismatched_calibration_name_file_and_fix(leader_emulators, tmp_path, monkeypatch):
    port = leader_emulators["left"].path
    with pytest.raises(LeaderCalibrationError, match=r"no calibration for the left leader arm.*"
                       r"brs calibrate joylo --side left --port " + port):
        load_leader_calibration("left", port, directory=tmp_path)
    # another adapter's file (device id differs from the port's /dev/serial/by-id name)
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    os.symlink(os.path.realpath(port), by_id / "usb-FTDI_NEW-if00-port0")
    monkeypatch.setenv("BRS_SERIAL_BY_ID_DIR", str(by_id))
    path = write_cal(tmp_path, "left", port, device_id="usb-FTDI_OLD-if00-port0")
    with pytest.raises(LeaderCalibrationError, match=f"{path}: made for adapter 'usb-FTDI_OLD.*"
                       r"is adapter 'usb-FTDI_NEW.*brs calibrate joylo"):
        load_leader_calibration("left", port, directory=tmp_path)
    # the robot arm's file is no leader calibration
    robot_file = tmp_path / "robot_left_arm.yaml"
    robot_file.write_text(dump_calibration(load_calibration(ROBOT_LEFT_ARM)))
    with pytest.raises(LeaderCalibrationError, match="needs exactly"):
        load_leader_calibration("left", port, file=str(robot_file))
    # right file, wrong chain on the port: ids 31-33 answer, 34-36 do not
    monkeypatch.delenv("BRS_SERIAL_BY_ID_DIR")
    cal = load_calibration(write_cal(tmp_path, "left", port))
    for dxl_id in (34, 35, 36):
        leader_emulators["left"].set_responsive(dxl_id, False)
    arm = LeaderArm("left", cal, port, retries=0, timeout_margin_ms=20.0)
    with pytest.raises(LeaderCalibrationError, match=r"motors \[34, 35, 36\] do not answer.*"
                       r"\[31, 32, 33\] do: the chain does not match"):
        arm.connect(haptics=False)
    arm.close()


# ----------------------------------------------------------------------------- brs calibrate joylo

def calibrate_args(tmp_path, port, **kw):
    ns = dict(device="joylo", side="left", port=port, left_port="", right_port="", dir=tmp_path,
              out=None, yes=False, sweep_s=0.0)
    ns.update(kw)
    return argparse.Namespace(**ns)


def test_calibrate_joylo_writes_offsets_and_signs(leader_emulators, tmp_path, monkeypatch):
    emu = leader_emulators["left"]
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    device = "usb-FTDI_USB__-__Serial_Converter_FTJOYLO1-if00-port0"
    os.symlink(os.path.realpath(emu.path), by_id / device)
    monkeypatch.setenv("BRS_SERIAL_BY_ID_DIR", str(by_id))
    # horns mounted 100 ticks off, joint 2 mounted mirrored (sign -1): the home pose reads as
    home_ticks = {31: 2148.0, 32: 1948.0, 33: 2048.0, 34: tick_of(-1.2) + 50, 35: 2048.0, 36: 2048.0}
    for i, t in home_ticks.items():
        emu.set_position(i, t)
    home = dict(home_ticks)

    def ask(prompt):  # the operator: moves joint k in its positive direction when asked
        if "POSITIVE" in prompt:
            k = int(prompt.split("joint")[1][0])
            dxl_id = 30 + k
            emu.set_position(dxl_id, home[dxl_id] + (-200 if k == 2 else 200))
        elif "back in the home pose" in prompt:
            for i, t in home.items():
                emu.set_position(i, t)
        elif "full range" in prompt:
            emu.set_position(31, home[31] + 1500)  # a sweep the sampler (50 Hz) sees
            time.sleep(0.2)
            emu.set_position(31, home[31])
        return ""

    lines = []
    assert calibrate_cli.run(calibrate_args(tmp_path, emu.path), ask=ask, say=lines.append) == 0
    path = tmp_path / "joylo_left.yaml"
    cal = load_calibration(path)
    assert cal.device_id == device and cal.port == emu.path and cal.ids == IDS["left"]
    assert [j.sign for j in cal.joints] == [1, -1, 1, 1, 1, 1]
    assert all(j.mode == ct.MODE_CURRENT_BASED_POSITION for j in cal.joints)
    # the pose held at the first prompt now reads as the home pose
    arm = LeaderArm("left", load_leader_calibration("left", emu.path, directory=tmp_path), emu.path,
                    timeout_margin_ms=50.0)
    try:
        arm.connect(haptics=False)
        assert arm.read()[0] == pytest.approx(HOME_ARM, abs=2 * ct.RAD_PER_TICK)
    finally:
        arm.close()
    assert any("sign -1" in line for line in lines) and any("measured" in line for line in lines)
    assert any("did not move" in line for line in lines)  # joints 2-6 were not swept

    # non-interactive recalibration (--yes): same file (same device id), signs kept
    emu.set_position(31, 2248.0)
    assert calibrate_cli.run(calibrate_args(tmp_path, emu.path, yes=True), say=lines.append) == 0
    again = load_calibration(path)
    assert [j.sign for j in again.joints] == [1, -1, 1, 1, 1, 1]
    assert again.joints[0].offset == pytest.approx(200 * ct.RAD_PER_TICK, abs=1e-3)
    # a horn 200 ticks off centre cannot reach +2.9 rad in one turn: the range says so
    assert again.joints[0].lower == -2.9 and 2.8 < again.joints[0].upper < 2.9
    assert any("covers only" in line for line in lines)
    assert sorted(p.name for p in tmp_path.glob("joylo_left*.yaml")) == ["joylo_left.yaml"]


def test_calibrate_joylo_clear_errors(tmp_path, capsys):
    args = calibrate_args(tmp_path, str(tmp_path / "nope"), yes=True)
    assert calibrate_cli.run(args) == 1
    assert "left leader arm" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--side left or --side right"):
        calibrate_cli.run(calibrate_args(tmp_path, "/tmp/x", side="both"))
