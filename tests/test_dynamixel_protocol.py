"""Dynamixel Protocol 2.0: CRC, byte stuffing, packet parsing, the emulator and the bus.

Real pseudo-terminals: the ROBOTIS SDK (through DynamixelBus) on one side, our emulator on the
other. No ROS here; the driver node is tested in test_dynamixel_driver.py.
"""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from dynamixel_sdk import PacketHandler

from brs_control.dynamixel import control_table as ct
from brs_control.dynamixel.bus import (BusCorrupt, BusDisconnected, BusTimeout, DynamixelBus,
                                       MotorCalibration, MotorError)
from brs_control.dynamixel.protocol import (CRC_TABLE, PacketParser, build_packet, crc16,
                                           status_packet, stuff, unstuff)
from brs_control.emulators.dynamixel_emulator import DynamixelEmulator, parse_ids
from brs_control.emulators.pty_device import PtyDevice

from rosutil import wait_for

IDS14 = list(range(1, 15))


def barrier(bus):
    """Sync writes have no status packet; a ping answered means every earlier packet was applied
    (the emulator handles packets in order)."""
    bus.ping(bus.ids[0])


@pytest.fixture
def make_emulator(tmp_path):
    made = []

    def make(ids=IDS14, **kwargs):
        kwargs.setdefault("framing", False)
        emu = DynamixelEmulator(ids, link=str(tmp_path / f"dxl{len(made)}"), seed=0, **kwargs).start()
        made.append(emu)
        return emu

    yield make
    for emu in made:
        emu.stop()


@pytest.fixture
def bus_on(make_emulator):
    buses = []

    def make(ids=IDS14, calibration=None, emulator_kwargs=None, **kwargs):
        emu = make_emulator(ids, **(emulator_kwargs or {}))
        # generous packet timeout: a loaded CI machine must not turn into spurious timeouts
        kwargs.setdefault("timeout_margin_ms", 100.0)
        bus = DynamixelBus(emu.path, 1_000_000, ids, calibration, **kwargs)
        bus.open()
        buses.append(bus)
        return emu, bus

    yield make
    for bus in buses:
        bus.close()


# ----------------------------------------------------------------------------- CRC and packets

# Packets from the ROBOTIS e-manual (Protocol 2.0 examples), CRC bytes included.
EMANUAL = {
    "ping": "FF FF FD 00 01 03 00 01 19 4E",
    "ping_status": "FF FF FD 00 01 07 00 55 00 06 04 26 65 5D",  # model 1030, firmware 38
    "read_present_position": "FF FF FD 00 01 07 00 02 84 00 04 00 1D 15",
    "read_status": "FF FF FD 00 01 08 00 55 00 A6 00 00 00 8C C0",
    "write_goal_512": "FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89",
}


@pytest.mark.parametrize("name", sorted(EMANUAL))
def test_crc_matches_emanual_examples(name):
    packet = bytes.fromhex(EMANUAL[name])
    assert crc16(packet[:-2]) == packet[-2] | packet[-1] << 8
    assert crc16(packet[:-2]) == PacketHandler(2.0).updateCRC(0, list(packet[:-2]), len(packet) - 2)


def test_build_packet_reproduces_emanual_bytes():
    assert build_packet(1, 0x01) == bytes.fromhex(EMANUAL["ping"])
    assert status_packet(1, 0, bytes([0x06, 0x04, 0x26])) == bytes.fromhex(EMANUAL["ping_status"])
    assert build_packet(1, 0x02, bytes([0x84, 0, 4, 0])) == bytes.fromhex(EMANUAL["read_present_position"])
    assert build_packet(1, 0x03, bytes([0x74, 0, 0, 2, 0, 0])) == bytes.fromhex(EMANUAL["write_goal_512"])


def test_crc_table_is_the_spec_table():
    assert CRC_TABLE[:4] == (0x0000, 0x8005, 0x800F, 0x000A) and CRC_TABLE[255] == 0x0202
    rng = random.Random(1)
    ph = PacketHandler(2.0)
    for _ in range(50):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 80)))
        assert crc16(data) == ph.updateCRC(0, list(data), len(data))


def test_byte_stuffing_round_trip_and_matches_sdk():
    rng = random.Random(2)
    for _ in range(300):
        raw = bytearray(rng.choice([0xFF, 0xFD, 0x00, rng.getrandbits(8)]) for _ in range(rng.randrange(0, 40)))
        stuffed = stuff(bytes(raw))
        assert unstuff(stuffed) == bytes(raw)
        # after stuffing, every FF FF FD is followed by FD: no header can appear inside a packet
        for i in range(len(stuffed) - 3):
            if stuffed[i:i + 3] == b"\xff\xff\xfd":
                assert stuffed[i + 3] == 0xFD
    assert stuff(b"\x03\xff\xff\xfd\x01") == b"\x03\xff\xff\xfd\xfd\x01"
    # the bus's packet handler (the SDK's, with stuffing actually applied) sends our bytes
    from brs_control.dynamixel.bus import _PacketHandler

    params = bytes([0x74, 0x00, 0xFF, 0xFF, 0xFD, 0x00])
    tx = [0, 0, 0, 0, 1, len(params) + 3, 0, 0x03, *params, 0, 0]

    class Capture:
        is_using = False
        written = b""

        def clearPort(self):
            pass

        def writePort(self, packet):
            Capture.written = bytes(packet)
            return len(packet)

    assert _PacketHandler().txPacket(Capture(), tx) == 0
    assert Capture.written == build_packet(1, 0x03, params)


def test_stuffed_packets_end_to_end(bus_on):
    emu, bus = bus_on([1])
    bus.ping_all()
    # host -> motor: raw FF FF FD FD in the parameters must arrive intact
    value = int.from_bytes(b"\xff\xff\xfd\xfd", "little", signed=True)
    bus.sync_write("Homing_Offset", [value])
    barrier(bus)
    assert emu.read(1, "Homing_Offset") == value
    # motor -> host: a status packet whose data contains FF FF FD needs stuffing
    emu.poke(1, "Goal_Current", -1)  # FF FF
    emu.poke(1, "Goal_Velocity", 0xFD)  # FD 00 00 00
    data, result, error = bus._ph.readTxRx(bus._port, 1, 102, 6)
    bus._port.is_using = False
    assert result == 0 and bytes(data) == b"\xff\xff\xfd\x00\x00\x00"


def test_parser_resynchronises_on_garbage_split_chunks_and_bad_crc():
    good = build_packet(7, 0x02, bytes([0x84, 0, 4, 0]))
    bad = bytearray(build_packet(8, 0x01))
    bad[-1] ^= 0xFF
    stream = b"\x00\xff\x13\xff\xff" + good + bytes(bad) + b"\xff\xff\xfd" + good
    parser = PacketParser()
    out = []
    for i in range(0, len(stream), 3):  # any chunking
        out += parser.feed(stream[i:i + 3])
    assert out[0] == (7, 0x02, bytes([0x84, 0, 4, 0]))
    assert out[1] == (8, -1, b"") and parser.crc_errors[8] == 1
    assert out[2] == (7, 0x02, bytes([0x84, 0, 4, 0]))


def test_parse_ids():
    assert parse_ids("11-13,17") == [11, 12, 13, 17]


# ----------------------------------------------------------------------------- emulator via the SDK bus

def test_ping_registers_and_error_statuses(bus_on):
    emu, bus = bus_on([1, 2], emulator_kwargs={"models": ["XM540-W270", "XL330-M288"]})
    assert bus.ping_all() == {1: 1120, 2: 1200}
    assert bus.current_units[0] == pytest.approx(2.69e-3) and bus.current_units[1] == pytest.approx(1e-3)
    assert bus.read_register(1, "Return_Delay_Time") == 250  # factory default
    assert bus.set_return_delay_time(0) == [1, 2] and bus.set_return_delay_time(0) == []
    assert bus.set_operating_mode({1: "position", 2: "current_based_position"}) == [2]
    bus.set_torque(True)
    with pytest.raises(MotorError):  # EEPROM locked while torque is on
        bus.write_register(1, "Return_Delay_Time", 5)
    with pytest.raises(MotorError):  # read-only register
        bus.write_register(1, "Present_Position", 5)
    with pytest.raises(MotorError) as info:  # outside Min/Max_Position_Limit: data limit error
        bus.write_register(1, "Goal_Position", 5000)
    assert info.value.error == 0x06 and emu.read(1, "Goal_Position") == 2048
    with pytest.raises(MotorError):  # torque on: mode change refused unless forced
        bus.set_operating_mode({1: "velocity"})
    assert bus.set_operating_mode({1: "velocity"}, force_torque_off=True) == [1]
    assert emu.read(1, "Torque_Enable") == 0 and emu.read(1, "Operating_Mode") == ct.MODE_VELOCITY


def test_sync_read_write_14_motors_and_dynamics(bus_on):
    emu, bus = bus_on(IDS14)
    bus.ping_all()
    before = dict(emu.instructions)
    pos, vel, cur = bus.read_state()
    assert pos.shape == vel.shape == cur.shape == (14,) and np.allclose(pos, 0.0)
    assert emu.instructions[0x82] == before.get(0x82, 0) + 1  # ONE sync read for 14 motors
    held = bus.hold_present()
    bus.set_torque(True)
    target = np.linspace(-1.0, 1.0, 14)
    ticks = bus.write_positions(target)
    barrier(bus)
    assert emu.instructions[0x83] == before.get(0x83, 0) + 2  # hold + goal: sync writes
    assert np.array_equal(emu.goals(), ticks) and np.allclose(held, 0.0)
    assert np.array_equal(ticks, ct.rad_to_ticks(target))
    # first-order dynamics: converges within ~0.1-0.3 s, velocity/current read back meanwhile
    t0 = time.monotonic()
    saw_motion = []

    def converged():
        p, v, c = bus.read_state()
        saw_motion.append(np.abs(v).max() > 0.1 and np.abs(c).max() > 0)
        return np.allclose(p, target, atol=0.01)

    wait_for(converged, 2.0, message="motors reach the goal")
    assert 0.05 < time.monotonic() - t0 < 1.0 and any(saw_motion)


def test_calibration_offset_sign_scale(bus_on):
    cal = [MotorCalibration(1, offset=0.5, sign=-1), MotorCalibration(2, offset=-1.6, scale=0.0125)]
    emu, bus = bus_on([1, 2], cal)
    bus.ping_all()
    emu.set_position(1, ct.CENTER_TICK + 1024)  # motor +pi/2
    emu.set_position(2, ct.CENTER_TICK)  # motor 0 rad
    pos = bus.read_positions()
    assert pos[0] == pytest.approx(-(np.pi / 2 - 0.5), abs=1e-9)
    assert pos[1] == pytest.approx(0.0125 * 1.6, abs=1e-9)
    q = np.array([0.2, 0.035])
    ticks = bus.write_positions(q)
    barrier(bus)
    assert np.allclose(bus.ticks_to_joint(ticks), q, atol=ct.RAD_PER_TICK * 0.0125 + 1e-3)
    assert emu.read(1, "Goal_Position") == ct.rad_to_ticks(-0.2 + 0.5)


def test_non_finite_or_wrong_length_writes_never_reach_the_bus(bus_on):
    emu, bus = bus_on([1, 2, 3])
    bus.ping_all()
    emu.clear_writes()
    for bad in ([0.0, np.nan, 0.0], [0.0, np.inf, 0.0], [0.0, 0.0]):
        with pytest.raises(ValueError):
            bus.write_positions(bad)
    assert emu.writes() == []
    # beyond the single-turn range: bounded to the position limits, never wrapped
    ticks = bus.write_positions([10.0, -10.0, 0.0])
    assert list(ticks) == [4095, 0, 2048] and bus.stats["goal_clipped"] == 2


def test_current_based_position_gripper_stalls_on_object(bus_on):
    emu, bus = bus_on([7])
    bus.ping_all()
    bus.set_operating_mode("current_based_position")
    bus.read_limits()
    bus.write_currents([0.3])
    barrier(bus)
    assert emu.read(7, "Goal_Current") == round(0.3 / 2.69e-3)
    bus.hold_present()
    bus.set_torque(True)
    emu.set_obstacle(7, ct.CENTER_TICK + 200)  # an object in the way
    bus.write_positions([1.0])
    stalled = ct.ticks_to_rad(ct.CENTER_TICK + 200)

    def stalled_at_limit():
        pos, _, cur = bus.read_state()
        return abs(pos[0] - stalled) < 1e-6 and abs(cur[0]) >= 0.29

    wait_for(stalled_at_limit, 3.0, message="gripper stalls on the object at its current limit")
    assert emu.read(7, "Present_Position") == ct.CENTER_TICK + 200
    assert abs(bus.read_state()[2][0]) <= 0.3 + 2.69e-3  # never above the limit


# ----------------------------------------------------------------------------- bus faults

def test_dropped_reply_is_retried(bus_on):
    emu, bus = bus_on([1, 2, 3])
    bus.ping_all()
    emu.device.drop_next(1)
    bus.read_state()  # the retry succeeds
    assert bus.stats["timeouts"] == 1 and bus.stats["retries"] == 1
    emu.device.mute(True)  # fails more often than retries (2): typed error naming the motor
    with pytest.raises(BusTimeout) as info:
        bus.read_state()
    assert info.value.ids == (1,) and bus.stats["timeouts"] == 4
    emu.device.mute(False)
    bus.read_state()  # and the bus works again afterwards


def test_corrupted_crc_and_garbage(bus_on):
    emu, bus = bus_on([1, 2, 3])
    bus.ping_all()
    emu.device.corrupt_next(1)
    bus.read_state()
    assert bus.stats["corrupt"] == 1 and bus.stats["retries"] == 1
    emu.device.corrupt_probability = 1.0
    with pytest.raises(BusCorrupt):
        bus.read_state()
    emu.device.corrupt_probability = 0.0
    bus.stats.clear()
    emu.device.garbage_next(3, size=24)  # noise before replies: parsed through, no error
    assert np.allclose(bus.read_state()[0], 0.0) and bus.stats["retries"] == 0
    # noise between transactions is flushed before the next request, or (when it is still in
    # the pty's buffer at that moment, like a late byte on a real line) costs one retry
    emu.device.inject_garbage(40)
    assert np.allclose(bus.read_state()[0], 0.0) and bus.stats["retries"] <= 1
    bus.stats.clear()
    emu.device.garbage_next(1, size=24, replace=True)  # noise instead of a reply: retried
    bus.read_state()
    assert bus.stats["retries"] == 1


def test_motor_stops_answering(bus_on):
    emu, bus = bus_on([1, 2, 3])
    bus.ping_all()
    emu.set_responsive(2, False)
    with pytest.raises(BusTimeout) as info:
        bus.read_state()
    assert info.value.ids == (2,)
    with pytest.raises(BusTimeout) as info:
        bus.ping_all(retries=0)
    assert info.value.ids == (2,)
    emu.set_responsive(2, True)
    bus.read_state()


def test_device_vanishes_and_comes_back(bus_on):
    emu, bus = bus_on([1, 2, 3])
    bus.ping_all()
    emu.vanish()
    with pytest.raises(BusDisconnected):
        bus.read_state()
    with pytest.raises(BusDisconnected):
        bus.reconnect()  # the port is gone
    emu.power_cycle()
    emu.set_position(2, 2500)
    emu.reappear()
    assert bus.reconnect() == {1: 1020, 2: 1020, 3: 1020}
    held = bus.hold_present()
    barrier(bus)
    assert emu.read(2, "Goal_Position") == 2500 and held[1] == pytest.approx(ct.ticks_to_rad(2500))
    # a reconnect is a reopen that worked (the failed attempt above is a disconnect)
    assert bus.stats["reconnects"] == 1 and bus.stats["opens"] == 2 and bus.stats["disconnects"] >= 2


def test_hardware_error_alert_bit(bus_on):
    emu, bus = bus_on([1, 2])
    bus.ping_all()
    bus.set_torque(True)
    emu.set_hardware_error(2, 1 << 5)  # overload: the firmware turns torque off
    bus.read_state()
    assert list(bus.hardware_alert) == [False, True]
    assert bus.read_hardware_errors() == {2: 32} and ct.hardware_error_names(32) == ["overload"]
    assert emu.read(2, "Torque_Enable") == 0
    bus.reboot(2)
    bus.read_state()
    assert not bus.hardware_alert.any()


# ----------------------------------------------------------------------------- wire time

def test_framing_emulation_makes_cycle_time_honest(bus_on):
    emu, bus = bus_on(IDS14, emulator_kwargs={"framing": True})
    bus.ping_all()
    bus.set_return_delay_time(0)
    q = np.zeros(14)
    n = 20
    t0 = time.monotonic()
    for _ in range(n):
        bus.read_state()
        bus.write_positions(q)
    per_cycle = (time.monotonic() - t0) / n
    # 28 B request + 14 x 21 B status + 84 B sync write = 406 B at 10 us/B
    assert per_cycle >= 406 * 10e-6 * 0.98


def test_pty_device_generic_faults(tmp_path):
    import serial

    with PtyDevice(lambda data: [data[::-1]], link=str(tmp_path / "echo"), seed=3) as dev:
        port = serial.Serial(dev.path, 115200, timeout=0.2)
        port.write(b"abc")
        assert port.read(3) == b"cba"
        dev.mute(True)
        port.write(b"abc")
        assert port.read(3) == b""
        dev.mute(False)
        dev.vanish()
        assert not dev.present and not (tmp_path / "echo").exists()
        with pytest.raises(serial.SerialException):
            port.write(b"x")
            port.read(1)
        dev.reappear()
        port.close()
        port = serial.Serial(dev.path, 115200, timeout=0.2)
        assert dev.send(b"hello") and port.read(5) == b"hello"
        port.close()
    assert not (tmp_path / "echo").exists()
