"""Dynamixel Protocol 2.0 bus emulator on a pseudo-terminal (written from the protocol spec).

A chain of X-series motors behind one "USB adapter": the host opens `emulator.path` with the
ROBOTIS SDK (or anything else) exactly as it would open /dev/ttyUSB0.

Protocol: packets `FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAMS | CRC_L CRC_H`, LEN counting
INST..CRC, CRC-16 (polynomial 0x8005, table-driven, over the whole stuffed packet), byte stuffing
`FF FF FD` -> `FF FF FD FD` in INST..PARAMS. Instructions: PING (incl. broadcast), READ, WRITE,
REBOOT, SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE; status packets (INST 0x55) carry an error
byte (0x80 alert bit while Hardware_Error_Status is non-zero). Status_Return_Level and
Return_Delay_Time (2 us units, factory 250 = 500 us) are honoured.

Motors: a 256-byte X-series control table each (EEPROM locked while torque is on, read-only
registers refuse writes, goals outside the limits give a data-limit error), and first-order
dynamics: with torque on, position modes approach Goal_Position with time constant `tau`
(default 0.05 s: ~95 % in 0.15 s) capped at the model's no-load speed / Profile_Velocity,
velocity mode tracks Goal_Velocity, current mode turns current into speed; Present_Velocity and
Present_Current follow. Current-based position mode saturates the current at Goal_Current, and
`set_obstacle` blocks a motor (a gripper closing on an object: stalls at Goal_Current); `hold`
pins it where an operator's hand holds it (no goal or current moves it) until `release`.
Dynamics advance lazily whenever a packet arrives or the test API is used (no physics thread).

Faults: everything of `PtyDevice` (dropped/corrupted/garbage replies, mute, vanish/reappear)
plus per motor `set_responsive(id, False)` (one motor stops answering), `set_hardware_error`,
and `power_cycle` (RAM reset: torque off, goal = present). Every applied register write is
logged (`writes()`), so tests can prove what did or did not reach the bus.

Console script (runs until Ctrl-C; SIGUSR1 toggles vanish/reappear, SIGUSR2 toggles mute):
    dxl_emulator --port-link /tmp/brs_dxl_left_arm --ids 11-17 --baud 1000000
    dxl_emulator --chain left_arm          # ids, models and link from hardware/motors.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping

import numpy as np

from ..dynamixel import control_table as ct
from ..dynamixel.protocol import (BROADCAST_ID, ERR_ACCESS, ERR_ALERT, ERR_CRC, ERR_DATA_LENGTH,
                                  ERR_DATA_LIMIT, ERR_DATA_RANGE, ERR_INSTRUCTION,
                                  INST_BULK_READ, INST_BULK_WRITE, INST_PING, INST_READ,
                                  INST_REBOOT, INST_SYNC_READ, INST_SYNC_WRITE, INST_WRITE,
                                  PacketParser, status_packet)
from .pty_device import PtyDevice, Reply

# ----------------------------------------------------------------------------- motors

_READ_ONLY = np.zeros(ct.CONTROL_TABLE_SIZE, dtype=bool)
_REG_AT = [None] * ct.CONTROL_TABLE_SIZE  # byte address -> Register covering it
for _r in ct.REGISTERS.values():
    _READ_ONLY[_r.address: _r.address + _r.size] = not _r.writable
    for _a in range(_r.address, _r.address + _r.size):
        _REG_AT[_a] = _r
_GOALS = {ct.GOAL_POSITION.address, ct.GOAL_CURRENT.address, ct.GOAL_VELOCITY.address}
_BAUD_CODES = {9600: 0, 57600: 1, 115200: 2, 1_000_000: 3, 2_000_000: 4, 3_000_000: 5,
               4_000_000: 6, 4_500_000: 7}


class DynamixelEmulator:
    """A chain of emulated X-series motors on a pty; see the module docstring.

    `models`: one model name for all, a list (per id) or a mapping id -> name.
    `positions`: initial Present_Position ticks (scalar, list per id or mapping); default 2048.
    `framing`: emulate wire time at `baudrate` (10 bits per byte) so cycle rates are honest.
    `reply_delay`: extra device turnaround in seconds on top of Return_Delay_Time.
    """

    def __init__(self, ids: Iterable[int], models: str | Iterable[str] | Mapping[int, str] = "XM430-W350",
                 link: str | None = None, baudrate: int = 1_000_000, framing: bool = True,
                 reply_delay: float = 0.0, tau: float = 0.05, positions=None,
                 seed: int | None = None, name: str = "dxl_emulator"):
        self.ids = [int(i) for i in ids]
        if not self.ids or len(set(self.ids)) != len(self.ids) or not all(0 <= i < 253 for i in self.ids):
            raise ValueError(f"ids must be unique integers in 0..252; got {self.ids}")
        n = len(self.ids)
        if isinstance(models, str):
            names = [models] * n
        elif isinstance(models, Mapping):
            names = [models.get(i, "XM430-W350") for i in self.ids]
        else:
            names = list(models)
            if len(names) != n:
                raise ValueError(f"{len(names)} models for {n} ids")
        self.models = [ct.model_by_name(m) for m in names]
        self.tau = float(tau)
        self.reply_delay = float(reply_delay)
        self._lock = threading.RLock()
        self._index = {dxl_id: k for k, dxl_id in enumerate(self.ids)}
        self.table = np.zeros((n, ct.CONTROL_TABLE_SIZE), dtype=np.uint8)
        self._views: dict[str, np.ndarray] = {}
        self._speed = np.array([m.no_load_speed for m in self.models]) / ct.RAD_PER_TICK  # ticks/s
        self.responsive = np.ones(n, dtype=bool)
        self.obstacle = np.full(n, np.nan)  # tick a motor cannot pass (NaN: none)
        self.held = np.full(n, np.nan)  # tick a hand pins the motor at (NaN: free)
        self._pos = np.full(n, float(ct.CENTER_TICK))
        if positions is not None:
            if isinstance(positions, Mapping):
                self._pos = np.array([float(positions.get(i, ct.CENTER_TICK)) for i in self.ids])
            else:
                self._pos = np.broadcast_to(np.asarray(positions, dtype=np.float64), (n,)).copy()
        self._vel = np.zeros(n)  # ticks/s
        self._cur = np.zeros(n)  # current units
        self._last = time.monotonic()
        self._t0 = self._last
        self.parser = PacketParser()
        self.instructions: Counter = Counter()
        self._writes: deque = deque(maxlen=20000)
        self._init_tables(baudrate)
        self.device = PtyDevice(self._handle, link=link, baudrate=baudrate if framing else None,
                                name=name, seed=seed)

    # ------------------------------------------------------------------ tables

    def _view(self, reg: ct.Register) -> np.ndarray:
        """(n,) view of a register across all motors, writes go to the tables."""
        return self.table[:, reg.address: reg.address + reg.size].view(reg.dtype)[:, 0]

    def _reg(self, name: str) -> np.ndarray:
        view = self._views.get(name)
        if view is None:  # views of the fixed table buffer stay valid: build each once
            view = self._views[name] = self._view(ct.REGISTERS[name])
        return view

    def _init_tables(self, baudrate: int) -> None:
        r = self._reg
        r("Model_Number")[:] = [m.number for m in self.models]
        r("Firmware_Version")[:] = 46
        r("ID")[:] = self.ids
        r("Baud_Rate")[:] = _BAUD_CODES.get(baudrate, 3)
        r("Return_Delay_Time")[:] = 250  # factory default: 500 us
        r("Operating_Mode")[:] = ct.MODE_POSITION
        r("Protocol_Type")[:] = 2
        r("Moving_Threshold")[:] = 10
        r("Temperature_Limit")[:] = 80
        r("Max_Voltage_Limit")[:] = 160
        r("Min_Voltage_Limit")[:] = 95
        r("PWM_Limit")[:] = 885
        r("Current_Limit")[:] = [m.current_limit for m in self.models]
        r("Velocity_Limit")[:] = [int(ct.rad_s_to_velocity(m.no_load_speed)) for m in self.models]
        r("Max_Position_Limit")[:] = ct.MAX_TICK
        r("Min_Position_Limit")[:] = ct.MIN_TICK
        r("Shutdown")[:] = 52  # overload | electrical shock | overheating
        self._reset_ram(np.ones(len(self.ids), dtype=bool))

    def _reset_ram(self, which: np.ndarray) -> None:
        """Power-on RAM values for the motors selected by the boolean mask `which`."""
        t = self.table
        t[which, 64:] = 0
        r = self._reg
        r("Status_Return_Level")[which] = 2
        r("Velocity_I_Gain")[which] = 1920
        r("Velocity_P_Gain")[which] = 100
        r("Position_P_Gain")[which] = 800
        r("Goal_PWM")[which] = r("PWM_Limit")[which]
        r("Goal_Current")[which] = r("Current_Limit")[which].astype(np.int16)
        r("Goal_Position")[which] = np.rint(self._pos[which]).astype(np.int32)
        r("Present_Input_Voltage")[which] = 120
        r("Present_Temperature")[which] = 35
        self._vel[which] = 0.0
        self._cur[which] = 0.0
        self._publish_present()

    # ------------------------------------------------------------------ dynamics

    def _advance(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        dt = now - self._last
        self._last = now
        if dt <= 0:
            return
        dt = min(dt, 0.5)  # a long idle gap is not a huge jump
        r = self._reg
        torque = r("Torque_Enable") != 0
        mode = r("Operating_Mode")
        pos_mode = torque & ((mode == ct.MODE_POSITION) | (mode == ct.MODE_EXTENDED_POSITION)
                             | (mode == ct.MODE_CURRENT_BASED_POSITION))
        vel_mode = torque & (mode == ct.MODE_VELOCITY)
        cur_mode = torque & (mode == ct.MODE_CURRENT)
        cur_limit = np.maximum(r("Current_Limit").astype(np.float64), 1.0)
        goal_cur = np.minimum(np.abs(r("Goal_Current").astype(np.float64)), cur_limit)
        tick_s = 1.0 / ct.RAD_PER_TICK  # ticks per rad
        speed = self._speed
        profile = r("Profile_Velocity").astype(np.float64) * ct.RAD_S_PER_VELOCITY_UNIT * tick_s
        speed = np.where(profile > 0, np.minimum(speed, profile), speed)

        step = np.zeros_like(self._pos)
        current = np.zeros_like(self._pos)
        if pos_mode.any():
            goal = r("Goal_Position").astype(np.float64)
            err = goal - self._pos
            alpha = 1.0 - math.exp(-dt / self.tau) if self.tau > 0 else 1.0
            s = np.clip(err * alpha, -speed * dt, speed * dt)
            demand = err * 2.0  # current units a P controller would ask for
            limit = np.where(mode == ct.MODE_CURRENT_BASED_POSITION, goal_cur, cur_limit)
            sat = np.abs(demand) > limit
            s = np.where(sat & (mode == ct.MODE_CURRENT_BASED_POSITION),
                         s * limit / np.maximum(np.abs(demand), 1e-9), s)
            step = np.where(pos_mode, s, step)
            current = np.where(pos_mode, np.clip(demand, -limit, limit), current)
        if vel_mode.any():
            goal_v = r("Goal_Velocity").astype(np.float64) * ct.RAD_S_PER_VELOCITY_UNIT * tick_s
            goal_v = np.clip(goal_v, -speed, speed)
            alpha = 1.0 - math.exp(-dt / max(self.tau, 1e-3))
            v = self._vel + (goal_v - self._vel) * alpha
            step = np.where(vel_mode, v * dt, step)
            current = np.where(vel_mode, np.clip((goal_v - self._vel) * 0.5, -cur_limit, cur_limit), current)
        if cur_mode.any():
            goal_c = np.clip(r("Goal_Current").astype(np.float64), -cur_limit, cur_limit)
            v = np.clip(goal_c / cur_limit * speed, -speed, speed)
            step = np.where(cur_mode, v * dt, step)
            current = np.where(cur_mode, goal_c, current)

        new = self._pos + step
        if np.isfinite(self.obstacle).any():
            blocked = np.isfinite(self.obstacle) & (
                ((step > 0) & (self._pos <= self.obstacle) & (new > self.obstacle))
                | ((step < 0) & (self._pos >= self.obstacle) & (new < self.obstacle)))
            new = np.where(blocked, self.obstacle, new)
            limit = np.where(mode == ct.MODE_CURRENT_BASED_POSITION, goal_cur, cur_limit)
            current = np.where(blocked, np.sign(step) * limit, current)
        held = np.isfinite(self.held)
        if held.any():  # a hand holds these: they stay put and stall against whatever drives them
            limit = np.where(mode == ct.MODE_CURRENT_BASED_POSITION, goal_cur, cur_limit)
            current = np.where(held & (step != 0), np.sign(step) * limit, np.where(held, 0.0, current))
            new = np.where(held, self.held, new)
        self._vel = (new - self._pos) / dt
        self._pos = new
        self._cur = current
        self._publish_present(now)

    def _publish_present(self, now: float | None = None) -> None:
        r = self._reg
        r("Present_Position")[:] = np.rint(self._pos).astype(np.int32)
        r("Present_Velocity")[:] = np.rint(self._vel * ct.RAD_PER_TICK / ct.RAD_S_PER_VELOCITY_UNIT).astype(np.int32)
        r("Present_Current")[:] = np.rint(self._cur).astype(np.int16)
        r("Moving")[:] = np.abs(self._vel) * ct.RAD_PER_TICK / ct.RAD_S_PER_VELOCITY_UNIT > r("Moving_Threshold")
        if now is not None:
            r("Realtime_Tick")[:] = int((now - self._t0) * 1000) % 32768

    # ------------------------------------------------------------------ request handling

    def _handle(self, data: bytes) -> list[Reply]:
        now = time.monotonic()
        with self._lock:
            replies: list[Reply] = []
            packets = self.parser.feed(data, now)
            if packets:
                self._advance(now)
            for dxl_id, inst, params in packets:
                self.instructions[inst] += 1
                self._dispatch(dxl_id, inst, params, replies)
            return replies

    def _reply(self, replies: list[Reply], k: int, error: int = 0, params: bytes = b"",
               instruction: int = INST_READ) -> None:
        """Queue motor k's status packet, honouring Status_Return_Level and return delays."""
        level = int(self.table[k, 68])
        if instruction != INST_PING and (level == 0 or (level == 1 and instruction != INST_READ)):
            return
        if not self.responsive[k]:
            return
        if self.table[k, ct.HARDWARE_ERROR_STATUS.address]:
            error |= ERR_ALERT
        packet = status_packet(self.ids[k], error, params)
        # A chained reply starts after the previous reply on the wire plus this motor's delay.
        delay = int(self.table[k, ct.RETURN_DELAY_TIME.address]) * 2e-6 + self.reply_delay
        if replies:
            prev = replies[-1]
            delay += prev.delay + len(prev.data) * self.device.byte_time
        replies.append(Reply(packet, delay))

    def _dispatch(self, dxl_id: int, inst: int, params: bytes, replies: list[Reply]) -> None:
        k = self._index.get(dxl_id)
        broadcast = dxl_id == BROADCAST_ID
        if inst == -1:  # CRC error: an addressed motor says so, nobody answers a broadcast
            if k is not None:
                self._reply(replies, k, ERR_CRC, instruction=INST_WRITE)
            return
        if inst == INST_PING:
            targets = range(len(self.ids)) if broadcast else ([k] if k is not None else [])
            for j in sorted(targets, key=lambda j: self.ids[j]):
                model = int(self._reg("Model_Number")[j])
                fw = int(self.table[j, ct.FIRMWARE_VERSION.address])
                self._reply(replies, j, 0, bytes([model & 0xFF, model >> 8, fw]), INST_PING)
            return
        if inst in (INST_SYNC_READ, INST_SYNC_WRITE, INST_BULK_READ, INST_BULK_WRITE):
            if broadcast:
                self._dispatch_group(inst, params, replies)
            return
        if k is None:
            return  # not on this bus (or a broadcast single-motor instruction: unsupported here)
        if inst == INST_READ:
            if len(params) != 4:
                self._reply(replies, k, ERR_DATA_LENGTH)
                return
            addr, size = params[0] | params[1] << 8, params[2] | params[3] << 8
            if addr + size > ct.CONTROL_TABLE_SIZE:
                self._reply(replies, k, ERR_ACCESS)
                return
            self._reply(replies, k, 0, self.table[k, addr: addr + size].tobytes())
        elif inst == INST_WRITE:
            if len(params) < 3:
                self._reply(replies, k, ERR_DATA_LENGTH, instruction=INST_WRITE)
                return
            addr = params[0] | params[1] << 8
            error = self._write(k, addr, params[2:])
            self._reply(replies, k, error, instruction=INST_WRITE)
        elif inst == INST_REBOOT:
            self._reply(replies, k, 0, instruction=INST_WRITE)
            mask = np.zeros(len(self.ids), dtype=bool)
            mask[k] = True
            self.table[k, ct.HARDWARE_ERROR_STATUS.address] = 0
            self._reset_ram(mask)
        else:
            self._reply(replies, k, ERR_INSTRUCTION, instruction=INST_WRITE)

    def _dispatch_group(self, inst: int, params: bytes, replies: list[Reply]) -> None:
        if inst in (INST_SYNC_READ, INST_SYNC_WRITE):
            if len(params) < 4:
                return
            addr, size = params[0] | params[1] << 8, params[2] | params[3] << 8
            body = params[4:]
            if inst == INST_SYNC_READ:
                if addr + size > ct.CONTROL_TABLE_SIZE:
                    return
                for dxl_id in body:
                    k = self._index.get(dxl_id)
                    if k is not None:
                        self._reply(replies, k, 0, self.table[k, addr: addr + size].tobytes())
            else:
                stride = 1 + size
                for off in range(0, len(body) - stride + 1, stride):
                    k = self._index.get(body[off])
                    if k is not None:
                        self._write(k, addr, body[off + 1: off + stride])
        elif inst == INST_BULK_READ:
            for off in range(0, len(params) - 4, 5):
                k = self._index.get(params[off])
                addr = params[off + 1] | params[off + 2] << 8
                size = params[off + 3] | params[off + 4] << 8
                if k is not None and addr + size <= ct.CONTROL_TABLE_SIZE:
                    self._reply(replies, k, 0, self.table[k, addr: addr + size].tobytes())
        elif inst == INST_BULK_WRITE:
            off = 0
            while off + 5 <= len(params):
                k = self._index.get(params[off])
                addr = params[off + 1] | params[off + 2] << 8
                size = params[off + 3] | params[off + 4] << 8
                data = params[off + 5: off + 5 + size]
                if k is not None and len(data) == size:
                    self._write(k, addr, data)
                off += 5 + size

    def _write(self, k: int, addr: int, data: bytes) -> int:
        """Apply a register write to motor k; returns the status error (0: applied)."""
        end = addr + len(data)
        if not data or end > ct.CONTROL_TABLE_SIZE:
            return ERR_ACCESS
        if _READ_ONLY[addr:end].any():
            return ERR_ACCESS
        torque_on = self.table[k, ct.TORQUE_ENABLE.address] != 0
        if addr < 64 and torque_on:
            return ERR_ACCESS  # EEPROM is locked while torque is on
        # Value checks on a scratch copy so an invalid write changes nothing.
        row = self.table[k].copy()
        row[addr:end] = np.frombuffer(bytes(data), dtype=np.uint8)

        def value(reg):
            return int(row[reg.address: reg.address + reg.size].view(reg.dtype)[0])

        touches = {reg.address for reg in _REG_AT[addr:end] if reg is not None}
        mode = value(ct.OPERATING_MODE)
        if ct.OPERATING_MODE.address in touches and mode not in self.models[k].modes:
            return ERR_DATA_RANGE
        if ct.GOAL_POSITION.address in touches and mode in (ct.MODE_POSITION, ct.MODE_CURRENT_BASED_POSITION):
            goal = value(ct.GOAL_POSITION)
            if not value(ct.MIN_POSITION_LIMIT) <= goal <= value(ct.MAX_POSITION_LIMIT):
                return ERR_DATA_LIMIT
        if ct.GOAL_CURRENT.address in touches and abs(value(ct.GOAL_CURRENT)) > value(ct.CURRENT_LIMIT):
            return ERR_DATA_LIMIT
        if ct.GOAL_VELOCITY.address in touches and abs(value(ct.GOAL_VELOCITY)) > value(ct.VELOCITY_LIMIT):
            return ERR_DATA_LIMIT
        if ct.REGISTERS["ID"].address in touches:
            new_id = value(ct.REGISTERS["ID"])
            if new_id > 252 or (new_id in self._index and self._index[new_id] != k):
                return ERR_DATA_RANGE
            del self._index[self.ids[k]]
            self.ids[k] = new_id
            self._index[new_id] = k
        self.table[k] = row
        self._writes.append((time.monotonic(), self.ids[k], addr, bytes(data)))
        return 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def path(self) -> str:
        return self.device.path

    def start(self) -> DynamixelEmulator:
        self.device.start()
        return self

    def stop(self) -> None:
        self.device.stop()

    close = stop

    def __enter__(self) -> DynamixelEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ test / tool API

    def _k(self, dxl_id: int) -> int:
        try:
            return self._index[dxl_id]
        except KeyError:
            raise KeyError(f"no motor with id {dxl_id} on this emulated bus (ids {self.ids})") from None

    def read(self, dxl_id: int, register: str) -> int:
        """Current value of a register (dynamics advanced to now first)."""
        with self._lock:
            self._advance()
            reg = ct.REGISTERS[register]
            k = self._k(dxl_id)
            return int(self.table[k, reg.address: reg.address + reg.size].view(reg.dtype)[0])

    def read_all(self, register: str) -> np.ndarray:
        """A register of every motor, in `ids` order."""
        with self._lock:
            self._advance()
            return self._reg(register).astype(np.int64)

    def poke(self, dxl_id: int, register: str, value: int) -> None:
        """Set a register behind the bus's back (no checks, not logged)."""
        with self._lock:
            reg = ct.REGISTERS[register]
            k = self._k(dxl_id)
            self.table[k, reg.address: reg.address + reg.size] = np.frombuffer(
                int(value).to_bytes(reg.size, "little", signed=reg.signed), dtype=np.uint8)

    def set_position(self, dxl_id: int, ticks: float) -> None:
        """Move a motor by hand (external force): Present_Position jumps to `ticks`."""
        with self._lock:
            self._advance()
            self._pos[self._k(dxl_id)] = float(ticks)
            self._publish_present()

    def positions(self) -> np.ndarray:
        """Present positions (float ticks) in `ids` order."""
        with self._lock:
            self._advance()
            return self._pos.copy()

    def goals(self) -> np.ndarray:
        """Goal_Position registers in `ids` order."""
        return self.read_all("Goal_Position")

    def set_responsive(self, dxl_id: int, responsive: bool) -> None:
        """False: this motor stops answering (cable break after it, dead motor)."""
        with self._lock:
            self.responsive[self._k(dxl_id)] = responsive

    def set_obstacle(self, dxl_id: int, ticks: float | None) -> None:
        """Block the motor at `ticks` (e.g. a grasped object); None removes the obstacle."""
        with self._lock:
            self._advance()
            self.obstacle[self._k(dxl_id)] = np.nan if ticks is None else float(ticks)

    def hold(self, dxl_id: int, ticks: float) -> None:
        """An operator's hand moves the motor to `ticks` and holds it there: no goal or current
        moves it (it stalls against them) until `release`. One step under the lock, so the bus
        never sees it anywhere in between."""
        with self._lock:
            self._advance()
            k = self._k(dxl_id)
            self.held[k] = self._pos[k] = float(ticks)
            self._vel[k] = 0.0
            self._publish_present()

    def release(self, dxl_id: int) -> None:
        """The hand lets go of the motor (and of any obstacle on it)."""
        with self._lock:
            self._advance()
            k = self._k(dxl_id)
            self.held[k] = self.obstacle[k] = np.nan

    def set_hardware_error(self, dxl_id: int, bits: int) -> None:
        """Raise Hardware_Error_Status bits; shutdown bits turn torque off (like the firmware)."""
        with self._lock:
            self._advance()
            k = self._k(dxl_id)
            self.table[k, ct.HARDWARE_ERROR_STATUS.address] = bits
            if bits & int(self.table[k, ct.REGISTERS["Shutdown"].address]):
                self.table[k, ct.TORQUE_ENABLE.address] = 0

    def power_cycle(self, ids: Iterable[int] | None = None) -> None:
        """Power loss and return: RAM reset (torque off, goal = present), EEPROM kept."""
        with self._lock:
            self._advance()
            mask = np.zeros(len(self.ids), dtype=bool)
            for dxl_id in (self.ids if ids is None else ids):
                mask[self._k(dxl_id)] = True
            self.table[mask, ct.HARDWARE_ERROR_STATUS.address] = 0
            self._reset_ram(mask)

    def writes(self, address: int | None = None, dxl_id: int | None = None) -> list[tuple]:
        """Applied register writes (monotonic time, id, address, data bytes), oldest first."""
        with self._lock:
            return [w for w in self._writes
                    if (address is None or w[2] == address) and (dxl_id is None or w[1] == dxl_id)]

    def goal_writes(self, dxl_id: int | None = None) -> list[tuple[float, int, int]]:
        """(time, id, ticks) of every Goal_Position value that reached a motor."""
        out = []
        for t, i, addr, data in self.writes(dxl_id=dxl_id):
            lo, hi = ct.GOAL_POSITION.address, ct.GOAL_POSITION.address + 4
            if addr <= lo and addr + len(data) >= hi:
                out.append((t, i, int.from_bytes(data[lo - addr: hi - addr], "little", signed=True)))
        return out

    def clear_writes(self) -> None:
        with self._lock:
            self._writes.clear()

    # fault shortcuts (the PtyDevice has the full set)
    def vanish(self) -> None:
        self.device.vanish()

    def reappear(self) -> None:
        self.device.reappear()


# ----------------------------------------------------------------------------- console script

def parse_ids(text: str) -> list[int]:
    """'1,2,5-7' -> [1, 2, 5, 6, 7]."""
    ids: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            ids.extend(range(int(lo), int(hi) + 1))
        else:
            ids.append(int(part))
    return ids


def apply_control(emulator: DynamixelEmulator, message: dict) -> None:
    """{"hold": {id: ticks, ...}}: a hand moves each motor there and holds it (`hold`: goals and
    currents a host writes do not move it); {"release": [id, ...]}: let go."""
    for key, ticks in (message.get("hold") or {}).items():
        emulator.hold(int(key), float(ticks))
    for dxl_id in message.get("release") or ():
        emulator.release(int(dxl_id))


def serve_control(emulator: DynamixelEmulator, path: str, stop: threading.Event) -> None:
    """JSON datagrams on a unix socket at `path` -> apply_control; removed when `stop` is set."""
    import json
    import socket

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    try:
        while not stop.is_set():
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            try:
                apply_control(emulator, json.loads(data))
            except (ValueError, KeyError, TypeError) as exc:  # a bad message must not kill the device
                print(f"dxl_emulator: control message refused: {exc}", flush=True)
    finally:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dxl_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--chain", help="chain name in motors.yaml (torso, left_arm, ...): ids, models, "
                        "baud rate and link default from there")
    parser.add_argument("--motors", help="motors.yaml (default: hardware/motors.yaml of this checkout)")
    parser.add_argument("--port-link", help="symlink to create for the pty (e.g. /tmp/brs_dxl_left_arm)")
    parser.add_argument("--ids", help="motor ids, e.g. 11-17 or 1,2,3")
    parser.add_argument("--model", default=None, help="model of every motor (default XM430-W350)")
    parser.add_argument("--models", default=None, help="per-id models, e.g. 11:XM540-W270,17:XM430-W350")
    parser.add_argument("--baud", type=int, default=None, help="baud rate for wire-time emulation (1000000)")
    parser.add_argument("--no-framing", action="store_true", help="answer instantly (no wire-time emulation)")
    parser.add_argument("--reply-delay-us", type=float, default=0.0, help="extra turnaround per reply")
    parser.add_argument("--tau", type=float, default=0.05, help="motor time constant, s")
    parser.add_argument("--drop-prob", type=float, default=0.0, help="probability a reply is dropped")
    parser.add_argument("--corrupt-prob", type=float, default=0.0, help="probability a reply's CRC is corrupted")
    parser.add_argument("--garbage-prob", type=float, default=0.0, help="probability of noise before a reply")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--control", help="unix datagram socket for moving motors by hand (default: "
                                          "PORT_LINK.ctl; `brs emulate move` talks to it)")
    args = parser.parse_args(argv)

    ids, models, link, baud = None, {}, args.port_link, args.baud
    if args.chain:
        from ..dynamixel.calibration import load_motor_map

        chain = load_motor_map(args.motors).chain(args.chain)
        ids = [m.id for m in chain.motors]
        models = {m.id: m.model for m in chain.motors}
        link = link or chain.emulator_link
        baud = baud or chain.baudrate
    if args.ids:
        ids = parse_ids(args.ids)
    if not ids:
        parser.error("give --ids or --chain")
    if args.model:
        models = {i: args.model for i in ids}
    if args.models:
        for item in args.models.split(","):
            key, name = item.split(":", 1)
            models[int(key)] = name
    baud = baud or 1_000_000
    emulator = DynamixelEmulator(ids, models or "XM430-W350", link=link, baudrate=baud,
                                 framing=not args.no_framing, reply_delay=args.reply_delay_us * 1e-6,
                                 tau=args.tau, seed=args.seed)
    dev = emulator.device
    dev.drop_probability, dev.corrupt_probability = args.drop_prob, args.corrupt_prob
    dev.garbage_probability = args.garbage_prob

    stop, wake = threading.Event(), threading.Event()
    toggles: deque[str] = deque()

    def on_signal(signum, frame):
        if signum in (signal.SIGINT, signal.SIGTERM):
            stop.set()
        else:
            toggles.append("vanish" if signum == signal.SIGUSR1 else "mute")
        wake.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, on_signal)
    muted = False
    control = args.control or (f"{link}.ctl" if link else None)
    server = threading.Thread(target=serve_control, args=(emulator, control, stop), daemon=True) if control else None
    if server is not None:
        server.start()
    with emulator:
        print(f"dxl_emulator: ids {ids} on {emulator.path} -> {dev.slave_path}, "
              f"{baud} baud, framing {'off' if args.no_framing else 'on'}", flush=True)
        while not stop.is_set():
            wake.wait(1.0)
            wake.clear()
            while toggles:
                if toggles.popleft() == "vanish":
                    dev.reappear() if not dev.present else dev.vanish()
                    print(f"dxl_emulator: port {'present' if dev.present else 'vanished'}", flush=True)
                else:
                    muted = not muted
                    dev.mute(muted)
                    print(f"dxl_emulator: {'muted' if muted else 'answering'}", flush=True)
    if server is not None:
        server.join(timeout=2.0)  # it removes its socket
    return 0


if __name__ == "__main__":
    sys.exit(main())
