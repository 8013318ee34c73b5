"""Calibration files, the motor map, the emulator console script and the bus's SDK fast paths."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brs_common import robot_spec as spec
from brs_control.dynamixel import control_table as ct
from brs_control.dynamixel.bus import DynamixelBus
from brs_control.dynamixel.calibration import (CalibrationError, find_calibration, load_calibration,
                                               load_motor_map, parse_calibration, save_calibration)

from rosutil import wait_for

HARDWARE = Path(__file__).resolve().parents[1] / "hardware"


def doc(**joints):
    return {"format": "brs_dynamixel_calibration/1", "chain": "left_arm", "device_id": "usb-test",
            "port": "/dev/brs_left_arm", "baudrate": 1000000,
            "joints": joints or {"left_arm_joint1": {"id": 11}}}


def test_example_files_load_and_match_the_motor_map():
    motor_map = load_motor_map(HARDWARE / "motors.yaml")
    files = sorted((HARDWARE / "calibration").glob("*.yaml"))
    assert {f.stem for f in files} == set(motor_map.chains)
    for path in files:
        cal = load_calibration(path)
        chain = motor_map.chain(cal.chain)
        assert cal.ids == chain.ids, path
        assert {j.joint: j.model for j in cal.joints} == {m.joint: m.model for m in chain.motors}, path
        assert cal.baudrate == chain.baudrate and cal.port == chain.port
    # robot chains cover every Dynamixel joint of the spec exactly once; ids are unique robot-wide
    robot = [load_calibration(HARDWARE / "calibration" / f"{c}.yaml") for c in ("torso", "left_arm", "right_arm")]
    assert sorted(j for c in robot for j in c.joint_names) == sorted(spec.STATE_JOINTS)
    all_ids = [i for c in motor_map.chains.values() for i in c.ids]
    assert len(all_ids) == len(set(all_ids))


def test_gripper_calibration_maps_travel_into_one_turn():
    cal = load_calibration(HARDWARE / "calibration" / "left_arm.yaml")
    grip = cal.joints[-1]
    assert grip.joint == "left_gripper_joint" and grip.mode == ct.MODE_CURRENT_BASED_POSITION
    assert grip.current_limit == 0.6
    # emulator default pose (tick 2048 = motor 0 rad) is half open
    assert grip.sign * grip.scale * (0.0 - grip.offset) == pytest.approx(0.02)


@pytest.mark.parametrize("joints, message", [
    ({"left_arm_jiont1": {"id": 1}}, "did you mean 'left_arm_joint1'"),
    ({"base_x": {"id": 1}}, "virtual base joint"),
    ({"left_arm_joint1": {"id": 1}, "left_arm_joint2": {"id": 1}}, "duplicate motor ids [1]"),
    ({"left_arm_joint1": {"id": 300}}, "id must be an integer 0..252"),
    ({"left_arm_joint1": {"id": 1, "sign": 2}}, "sign must be 1 or -1"),
    ({"left_arm_joint1": {"id": 1, "offset": float("nan")}}, "offset must be a finite number"),
    ({"left_arm_joint1": {"id": 1, "scale": 0}}, "scale must be non-zero"),
    ({"left_arm_joint1": {"id": 1, "model": "XM999"}}, "unknown Dynamixel model"),
    ({"left_arm_joint1": {"id": 1, "mode": "teleport"}}, "unknown operating mode"),
    ({"left_arm_joint1": {"id": 1, "model": "XL430-W250", "mode": "current"}}, "does not support mode"),
    ({"left_arm_joint1": {"id": 1, "range": [-3.0, 1.0]}}, "exceeds the spec limits"),
    ({"left_arm_joint1": {"id": 1, "range": [1.0, 0.5]}}, "must be below upper"),
    ({"left_arm_joint1": {"id": 1, "offset": 1.0}}, "outside the single-turn range"),
    ({"left_arm_joint1": {"id": 1, "colour": "red"}}, "unknown keys ['colour']"),
])
def test_invalid_calibrations_are_refused_with_clear_errors(joints, message):
    with pytest.raises(CalibrationError) as info:
        parse_calibration(doc(**joints), "cal.yaml")
    assert message in str(info.value) and "cal.yaml" in str(info.value)


def test_format_and_file_errors(tmp_path):
    with pytest.raises(CalibrationError, match="format must be"):
        parse_calibration({**doc(), "format": "v0"})
    with pytest.raises(CalibrationError, match="missing 'device_id'"):
        parse_calibration({k: v for k, v in doc().items() if k != "device_id"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("joints: [unclosed")
    with pytest.raises(CalibrationError, match="invalid YAML"):
        load_calibration(bad)
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibration(tmp_path / "missing.yaml")
    # extended position mode may span several turns
    cal = parse_calibration(doc(left_arm_joint1={"id": 1, "offset": 1.0, "mode": "extended_position"}))
    assert cal.joints[0].mode == ct.MODE_EXTENDED_POSITION


def test_save_round_trip_order_and_lookup(tmp_path):
    cal = parse_calibration(doc(left_gripper_joint={"id": 17, "scale": 0.0125, "offset": -1.6,
                                                    "mode": "current_based_position", "range": [0.0, 0.03]},
                                left_arm_joint2={"id": 12, "sign": -1}, left_arm_joint1={"id": 11}))
    assert cal.joint_names == ("left_arm_joint1", "left_arm_joint2", "left_gripper_joint")  # spec order
    assert cal.groups == ("left_arm", "left_gripper")
    assert cal.joints[2].upper == 0.03
    path = tmp_path / "left_arm.yaml"
    save_calibration(cal, path)
    again = load_calibration(path)
    assert again.joints == cal.joints
    assert find_calibration("/tmp/nowhere", tmp_path, chain="left_arm") == path
    assert find_calibration("/dev/brs_left_arm", tmp_path) == path  # by port
    assert find_calibration("/tmp/nowhere", tmp_path, chain="torso") is None
    with pytest.raises(CalibrationError, match="missing"):
        cal.for_joints(spec.GROUPS["left_arm"].joints)


def test_fast_packet_handler_paths_equal_the_sdk():
    from dynamixel_sdk.protocol2_packet_handler import Protocol2PacketHandler

    from brs_control.dynamixel.bus import _PacketHandler

    sdk, fast = Protocol2PacketHandler(), _PacketHandler()
    rng = random.Random(0)
    for _ in range(500):
        n = rng.randrange(1, 40)
        payload = [rng.choice([0xFF, 0xFD, rng.getrandbits(8)]) for _ in range(n)]
        packet = [0xFF, 0xFF, 0xFD, 0, 1, (n + 2) & 0xFF, (n + 2) >> 8] + payload + [0, 0]
        assert sdk.updateCRC(0, packet, len(packet)) == fast.updateCRC(0, packet, len(packet))
        stuffed = sdk.addStuffing(list(packet))
        assert fast.addStuffing(list(packet)) == stuffed
        assert fast.removeStuffing(list(stuffed)) == sdk.removeStuffing(list(stuffed))


def test_emulator_console_script_runs_a_chain_from_the_motor_map(tmp_path):
    link = tmp_path / "torso"
    proc = subprocess.Popen([sys.executable, "-m", "brs_control.emulators.dynamixel_emulator",
                             "--chain", "torso", "--motors", str(HARDWARE / "motors.yaml"),
                             "--port-link", str(link), "--no-framing"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(link.exists, 20, message="emulator symlink")
        bus = DynamixelBus(str(link), 1_000_000, [1, 2, 3, 4], timeout_margin_ms=100.0)
        bus.open()
        assert bus.ping_all() == {i: ct.model_by_name("XM540-W270").number for i in (1, 2, 3, 4)}
        bus.close()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "ids [1, 2, 3, 4]" in out
    assert not link.exists()  # the link goes with the emulator


def test_motor_map_errors(tmp_path):
    bad = tmp_path / "motors.yaml"
    bad.write_text(yaml.safe_dump({"format": "brs_motor_map/1", "chains": {"x": {"motors": [
        {"joint": "torso_joint1", "id": 1, "model": "XM430-W350"},
        {"joint": "torso_joint2", "id": 1, "model": "XM430-W350"}]}}}))
    with pytest.raises(CalibrationError, match="duplicate ids"):
        load_motor_map(bad)
    with pytest.raises(CalibrationError, match="no chain 'nope'"):
        load_motor_map(HARDWARE / "motors.yaml").chain("nope")


def test_calibration_tool_sets_offsets_from_the_current_pose(tmp_path):
    from brs_control.dynamixel.calibration import main as calibrate
    from brs_control.emulators.dynamixel_emulator import DynamixelEmulator

    cal_file = tmp_path / "left_arm.yaml"
    cal_file.write_text((HARDWARE / "calibration" / "left_arm.yaml").read_text())
    cal = load_calibration(cal_file)
    with DynamixelEmulator(cal.ids, {j.id: j.model for j in cal.joints}, link=str(tmp_path / "dxl"),
                           framing=False) as emu:
        # the arm assembled with each horn a little off, held at the spec's home pose
        emu.set_position(11, 2048 + 100)
        emu.set_position(14, 2048 - 300)
        before = cal_file.read_text()
        # the gripper is still half open, not at home (fully open): refused, file untouched
        with pytest.raises(CalibrationError, match="single-turn range"):
            calibrate(["set-pose", "--pose", "home", "--file", str(cal_file), "--port", emu.path])
        assert cal_file.read_text() == before
        emu.set_position(17, round(2048 + (0.04 / 0.0125 - 1.6) / ct.RAD_PER_TICK))  # open
        assert calibrate(["set-pose", "--pose", "home", "--file", str(cal_file), "--port", emu.path]) == 0
        new = load_calibration(cal_file)
        bus = DynamixelBus(emu.path, 1_000_000, new.ids, new.motors(), timeout_margin_ms=100.0)
        with bus:
            pos = bus.read_positions()
    home = [spec.JOINT_BY_NAME[j].home for j in new.joint_names]
    assert pos == pytest.approx(home, abs=1e-5)  # offsets are stored to 1e-6 rad
    assert new.joints[0].offset == pytest.approx(100 * ct.RAD_PER_TICK, abs=1e-6)
    assert [j.sign for j in new.joints] == [j.sign for j in cal.joints]
