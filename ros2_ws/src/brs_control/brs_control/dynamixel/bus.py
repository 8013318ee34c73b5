"""One Dynamixel Protocol 2.0 bus (a chain of X-series motors behind one serial adapter).

Used by the robot's torso/arm/gripper drivers and by the JoyLo leader arms alike, so it knows
nothing about ROS or joint names: a list of motor ids plus per-motor calibration.

    bus = DynamixelBus("/dev/brs_left_arm", 1_000_000, ids=[11, 12, 13],
                       calibration=[MotorCalibration(11), MotorCalibration(12, sign=-1), ...])
    bus.open(); bus.ping_all()
    bus.set_operating_mode("position"); bus.hold_present(); bus.set_torque(True)
    pos, vel, cur = bus.read_state()           # ONE sync read of 126..135 for all motors
    bus.write_positions(pos + 0.1)             # ONE sync write of Goal_Position

Built on the ROBOTIS dynamixel-sdk (PortHandler, Protocol2PacketHandler, GroupSyncRead,
GroupSyncWrite) with these changes, each for a measured reason:
- `readPort` sleeps in poll() until bytes arrive or the packet deadline passes (the SDK's port
  spins on a non-blocking read, burning a core per bus), and reports a hung-up tty (adapter
  unplugged) as BusDisconnected at once instead of as endless timeouts.
- the packet timeout uses the adapter's real USB latency (1 ms after `set_latency_timer`, read
  from sysfs for FTDI adapters) instead of the SDK's fixed 16 ms, so a dropped reply costs
  ~5 ms, not ~35 ms; non-USB ports keep the SDK's conservative default unless told otherwise.
- outgoing packets are byte-stuffed as the spec requires: the SDK's txPacket computes the
  stuffed packet but keeps sending the unstuffed one (it drops addStuffing's return value),
  so parameters containing FF FF FD would reach the motors unescaped.
- the sync read's status packets are read one by one with the SDK's `readRx` (what
  GroupSyncRead does internally) so the failing motor id and each motor's error byte
  (hardware alert bit) are known; GroupSyncRead drops both.
- the handler's per-packet hot spots have fast paths with identical results (a prebuilt CRC
  table; stuffing/unstuffing skipped when no FF FF FD occurs): ~20 % more cycles/s.

Errors are typed: `BusTimeout` (no/partial reply), `BusCorrupt` (CRC/format), `BusDisconnected`
(port missing, unplugged, I/O error), `MotorError` (a status packet reporting an error).
Reads and unicast writes are retried `retries` times on timeout/corrupt; the input is drained
after a failure so a late reply cannot be mistaken for the next one. `reconnect()` closes,
reopens and pings. The bus is thread-safe (one lock); it never writes a non-finite value.

Calibration: joint = sign * scale * (motor_rad - offset), motor_rad = (ticks - 2048) * 2*pi/4096.
Velocity: sign * scale * motor rad/s. Current: sign * A (NaN for models without a current sensor).
"""

from __future__ import annotations

import logging
import os
import select
import termios
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import serial
from dynamixel_sdk import (COMM_PORT_BUSY, COMM_RX_CORRUPT, COMM_RX_FAIL, COMM_RX_TIMEOUT,
                           COMM_SUCCESS, COMM_TX_ERROR, COMM_TX_FAIL, GroupSyncRead, GroupSyncWrite,
                           PortHandler)
from dynamixel_sdk import port_handler as _sdk_port
from dynamixel_sdk import protocol2_packet_handler as _sdk_p2

from . import control_table as ct
from .protocol import crc16

log = logging.getLogger(__name__)

SDK_LATENCY_MS = float(_sdk_port.LATENCY_TIMER)  # 16 ms: the SDK's assumption for any port


# ----------------------------------------------------------------------------- errors

class BusError(Exception):
    """A Dynamixel bus failure; `ids` names the motors involved when known."""

    def __init__(self, message: str, ids: Sequence[int] = ()):
        super().__init__(message)
        self.ids = tuple(ids)


class BusTimeout(BusError):
    """No (complete) status packet in time."""


class BusCorrupt(BusError):
    """A status packet with a bad CRC or format."""


class BusDisconnected(BusError):
    """The port is missing, was unplugged, or failed with an I/O error."""


class MotorError(BusError):
    """A motor answered with a non-zero error field (range, limit, access, ...)."""

    def __init__(self, message: str, ids: Sequence[int] = (), error: int = 0):
        super().__init__(message, ids)
        self.error = error


def _result_error(ph, result: int, what: str, ids: Sequence[int]) -> BusError:
    text = f"{what}: {ph.getTxRxResult(result)} (motor {', '.join(map(str, ids))})"
    if result in (COMM_RX_TIMEOUT, COMM_RX_FAIL):
        return BusTimeout(text, ids)
    if result == COMM_RX_CORRUPT:
        return BusCorrupt(text, ids)
    if result == COMM_TX_FAIL:
        return BusDisconnected(text, ids)
    return BusError(text, ids)


# ----------------------------------------------------------------------------- calibration

@dataclass(frozen=True)
class MotorCalibration:
    """joint = sign * scale * (motor_rad - offset); offset is the motor angle at joint zero."""

    id: int
    offset: float = 0.0
    sign: int = 1
    scale: float = 1.0  # joint units per motor rad (1 for revolute joints; m/rad for a gripper)

    def __post_init__(self):
        if self.sign not in (1, -1):
            raise ValueError(f"motor {self.id}: sign must be +1 or -1, got {self.sign}")
        if not np.isfinite(self.offset) or not np.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"motor {self.id}: offset and scale must be finite, scale non-zero")


# ----------------------------------------------------------------------------- port

def usb_latency_timer_path(port: str) -> Path | None:
    """sysfs latency_timer of the USB-serial adapter behind `port` (FTDI), or None."""
    name = os.path.basename(os.path.realpath(port))
    path = Path("/sys/bus/usb-serial/devices") / name / "latency_timer"
    return path if path.exists() else None


def set_latency_timer(port: str, ms: int = 1) -> int | None:
    """Set the FTDI latency timer to `ms` if it is higher (needs write access; the udev rule
    in hardware/udev does it at plug-in). Returns the value in effect, None if not FTDI."""
    path = usb_latency_timer_path(port)
    if path is None:
        return None
    try:
        current = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if current > ms:
        try:
            path.write_text(str(ms))
            current = int(path.read_text().strip())
        except OSError as exc:
            log.warning("%s: latency timer is %d ms and cannot be set to %d ms (%s); install "
                        "hardware/udev/99-brs.rules", port, current, ms, exc)
    return current


class _Port(PortHandler):
    """PortHandler that sleeps in poll() instead of spinning and raises on hang-up."""

    def __init__(self, port_name: str, latency_ms: float, margin_ms: float):
        super().__init__(port_name)
        self.latency_ms = latency_ms
        self.margin_ms = margin_ms

    def getCurrentTime(self):  # monotonic ms: immune to wall-clock jumps
        return time.monotonic() * 1000.0

    def setPacketTimeout(self, packet_length):
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * packet_length + 2.0 * self.latency_ms + self.margin_ms

    def clearPort(self):
        try:
            termios.tcflush(self.ser.fd, termios.TCIFLUSH)
        except (termios.error, OSError, AttributeError, TypeError) as exc:
            raise BusDisconnected(f"{self.port_name}: {exc}") from exc

    def wait_readable(self, timeout_s: float) -> bool:
        """poll() the port: True when bytes are ready; BusDisconnected on hang-up (adapter
        unplugged / pty closed: the kernel reports POLLHUP for a hung-up tty)."""
        try:
            poller = select.poll()
            poller.register(self.ser.fd, select.POLLIN)
            events = poller.poll(max(0.0, timeout_s) * 1000.0)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise BusDisconnected(f"{self.port_name}: {exc}") from exc
        if not events:
            return False
        if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            raise BusDisconnected(f"{self.port_name}: device disconnected (hang-up)")
        return True

    def readPort(self, length):
        if not self.wait_readable((self.packet_timeout - self.getTimeSinceStart()) / 1000.0):
            return b""
        try:
            return os.read(self.ser.fd, length)  # b"" (VMIN=0) when a flush raced the poll
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise BusDisconnected(f"{self.port_name}: {exc}") from exc

    def writePort(self, packet):
        try:
            return self.ser.write(bytes(packet))
        except (serial.SerialException, OSError) as exc:
            raise BusDisconnected(f"{self.port_name}: {exc}") from exc


class _PacketHandler(_sdk_p2.Protocol2PacketHandler):
    """The SDK's Protocol 2.0 handler with stuffing actually sent (see module doc) and fast
    paths for its per-packet hot spots (same results): a CRC with a prebuilt table (the SDK
    rebuilds a 256-entry list per call) and stuffing/unstuffing skipped when no FF FF FD occurs."""

    def updateCRC(self, crc_accum, data_blk_ptr, data_blk_size):
        return crc16(bytes(data_blk_ptr[:data_blk_size]), crc_accum)

    def addStuffing(self, packet):
        length = packet[_sdk_p2.PKT_LENGTH_L] | packet[_sdk_p2.PKT_LENGTH_H] << 8
        # the SDK looks at the two bytes before each payload byte too (from LEN on)
        if b"\xff\xff\xfd" not in bytes(packet[_sdk_p2.PKT_LENGTH_L: _sdk_p2.PKT_INSTRUCTION + length - 2]):
            return packet
        return super().addStuffing(packet)

    def removeStuffing(self, packet):
        if b"\xff\xff\xfd\xfd" not in bytes(packet):
            return packet
        return super().removeStuffing(packet)

    def txPacket(self, port, txpacket):
        if port.is_using:
            return COMM_PORT_BUSY
        port.is_using = True
        stuffed = self.addStuffing(txpacket)
        if stuffed is not txpacket:
            txpacket[:] = stuffed  # callers keep using their list: give it the stuffed bytes
        total = (txpacket[_sdk_p2.PKT_LENGTH_L] | txpacket[_sdk_p2.PKT_LENGTH_H] << 8) + 7
        if total > _sdk_p2.TXPACKET_MAX_LEN:
            port.is_using = False
            return COMM_TX_ERROR
        txpacket[0:4] = [0xFF, 0xFF, 0xFD, 0x00]
        crc = self.updateCRC(0, txpacket, total - 2)
        txpacket[total - 2] = crc & 0xFF
        txpacket[total - 1] = crc >> 8
        port.clearPort()
        if port.writePort(txpacket[:total]) != total:
            port.is_using = False
            return COMM_TX_FAIL
        return COMM_SUCCESS


# ----------------------------------------------------------------------------- bus

class DynamixelBus:
    """A chain of Dynamixel X-series motors on one port; see the module docstring.

    `latency_timer_ms`: USB latency used in packet timeouts; None = auto (FTDI: set to 1 ms
    and read back; other ports: the SDK's 16 ms). `timeout_margin_ms`: added to every packet
    timeout (the SDK uses 2 ms).
    """

    def __init__(self, port: str, baudrate: int = 1_000_000, ids: Sequence[int] = (),
                 calibration: Sequence[MotorCalibration] | None = None, *, retries: int = 2,
                 latency_timer_ms: float | None = None, timeout_margin_ms: float = 2.0):
        self.port = port
        self.baudrate = int(baudrate)
        self.ids = [int(i) for i in ids]
        if not self.ids or len(set(self.ids)) != len(self.ids) or not all(0 <= i <= 252 for i in self.ids):
            raise ValueError(f"ids must be unique motor ids in 0..252; got {list(ids)}")
        if calibration is None:
            calibration = [MotorCalibration(i) for i in self.ids]
        calibration = list(calibration)
        if [c.id for c in calibration] != self.ids:
            raise ValueError(f"calibration ids {[c.id for c in calibration]} do not match bus ids {self.ids}")
        self.calibration = calibration
        self.n = len(self.ids)
        self._sign = np.array([c.sign for c in calibration], dtype=np.float64)
        self._offset = np.array([c.offset for c in calibration], dtype=np.float64)
        self._scale = np.array([c.scale for c in calibration], dtype=np.float64)
        self._index = {dxl_id: k for k, dxl_id in enumerate(self.ids)}
        self.retries = int(retries)
        self.latency_timer_ms = latency_timer_ms
        self.timeout_margin_ms = float(timeout_margin_ms)
        self.models = np.zeros(self.n, dtype=np.int64)  # model numbers after ping_all
        self.current_units = np.full(self.n, np.nan)  # A per unit (NaN: unknown / no sensor)
        self.modes = np.full(self.n, ct.MODE_POSITION, dtype=np.int64)
        self._tick_lo = np.full(self.n, ct.MIN_TICK, dtype=np.int64)
        self._tick_hi = np.full(self.n, ct.MAX_TICK, dtype=np.int64)
        self._current_limit = np.full(self.n, np.iinfo(np.int16).max, dtype=np.int64)
        self.hardware_alert = np.zeros(self.n, dtype=bool)  # alert bit in the last status packets
        self.stats: Counter = Counter()
        self.last_error: BusError | None = None
        self._lock = threading.RLock()
        self._port: _Port | None = None
        self._ph = _PacketHandler()
        self._state_read: GroupSyncRead | None = None
        self._writers: dict[tuple[int, int], GroupSyncWrite] = {}

    # ------------------------------------------------------------------ conversions

    def to_joint(self, motor_rad) -> np.ndarray:
        return self._sign * self._scale * (np.asarray(motor_rad, dtype=np.float64) - self._offset)

    def to_motor(self, joint) -> np.ndarray:
        return self._sign * np.asarray(joint, dtype=np.float64) / self._scale + self._offset

    def joint_to_ticks(self, joint) -> np.ndarray:
        return ct.rad_to_ticks(self.to_motor(joint))

    def ticks_to_joint(self, ticks) -> np.ndarray:
        return self.to_joint(ct.ticks_to_rad(ticks))

    # ------------------------------------------------------------------ port

    @property
    def is_open(self) -> bool:
        return self._port is not None and self._port.is_open

    def open(self) -> None:
        """Open the port at `baudrate` and set the USB latency timer where possible."""
        with self._lock:
            self.close()
            if not os.path.exists(self.port):
                exc = BusDisconnected(f"{self.port} does not exist (adapter unplugged or udev "
                                      "symlink missing?)")
                self._count(exc)
                raise exc
            latency = self.latency_timer_ms
            if latency is None:
                ftdi = set_latency_timer(self.port, 1)
                latency = float(ftdi) if ftdi is not None else SDK_LATENCY_MS
            port = _Port(self.port, latency, self.timeout_margin_ms)
            port.baudrate = self.baudrate  # openPort() opens once at this rate
            try:
                ok = port.openPort()
            except (serial.SerialException, OSError) as exc:
                err = BusDisconnected(f"cannot open {self.port}: {exc}")
                self._count(err)
                raise err from exc
            if not ok:
                raise BusError(f"{self.port}: baud rate {self.baudrate} is not supported by the SDK")
            self._port = port
            self._state_read = GroupSyncRead(port, self._ph, ct.STATE_ADDRESS, ct.STATE_SIZE)
            for dxl_id in self.ids:
                self._state_read.addParam(dxl_id)
            self._writers.clear()
            if self.stats["opens"]:  # every open after the first brings a lost bus back
                self.stats["reconnects"] += 1
            self.stats["opens"] += 1

    def close(self) -> None:
        with self._lock:
            port, self._port = self._port, None
            if port is not None and port.ser is not None:
                try:
                    port.closePort()
                except (serial.SerialException, OSError):
                    pass

    def reconnect(self) -> dict[int, int]:
        """Close, reopen and ping every motor; returns the model numbers."""
        with self._lock:
            self.open()
            return self.ping_all()

    def __enter__(self) -> DynamixelBus:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ low-level plumbing

    def _require_port(self) -> _Port:
        if self._port is None:
            raise BusDisconnected(f"{self.port} is not open")
        return self._port

    def _call(self, fn, *args):
        """Run one SDK call; serial/OS exceptions become BusDisconnected; the port is freed."""
        port = self._require_port()
        try:
            return fn(*args)
        except BusError:
            raise
        except (serial.SerialException, OSError, termios.error) as exc:
            raise BusDisconnected(f"{self.port}: {exc}") from exc
        finally:
            port.is_using = False

    def _count(self, exc: BusError) -> None:
        key = {BusTimeout: "timeouts", BusCorrupt: "corrupt", BusDisconnected: "disconnects",
               MotorError: "motor_errors"}.get(type(exc), "errors")
        self.stats[key] += 1
        self.last_error = exc

    def _drain(self) -> None:
        """After a failed transaction wait for the line to go quiet, then drop what came in."""
        port = self._port
        if port is None:
            return
        quiet = (2.0 * port.latency_ms + 1.0) / 1000.0
        deadline = time.monotonic() + max(0.02, 4 * quiet)
        try:
            while time.monotonic() < deadline:
                if not port.wait_readable(quiet) or not os.read(port.ser.fd, 4096):
                    break
            termios.tcflush(port.ser.fd, termios.TCIFLUSH)
        except (BusError, OSError, ValueError, TypeError, termios.error):
            pass  # a disconnect shows up on the next transaction

    def _retrying(self, what: str, fn):
        """Run `fn` with bounded retries on timeout/corrupt; disconnects are not retried."""
        with self._lock:
            for attempt in range(self.retries + 1):
                try:
                    self.stats["transactions"] += 1
                    return fn()
                except (BusTimeout, BusCorrupt) as exc:
                    self._count(exc)
                    self._drain()  # the rest of a failed transaction must not poison the next
                    if attempt == self.retries:
                        raise
                    self.stats["retries"] += 1
                except BusError as exc:
                    self._count(exc)
                    raise
        raise AssertionError("unreachable")

    def _check(self, result: int, error: int, what: str, dxl_id: int) -> None:
        if result != COMM_SUCCESS:
            raise _result_error(self._ph, result, what, [dxl_id])
        k = self._index.get(dxl_id)
        if k is not None:
            self.hardware_alert[k] = bool(error & 0x80)
        if error & 0x7F:
            raise MotorError(f"{what}: motor {dxl_id}: {self._ph.getRxPacketError(error)}",
                             [dxl_id], error)

    # ------------------------------------------------------------------ discovery / registers

    def ping(self, dxl_id: int) -> int:
        """Model number of one motor (retried)."""
        def once():
            model, result, error = self._call(self._ph.ping, self._require_port(), dxl_id)
            self._check(result, error, "ping", dxl_id)
            return int(model)
        return self._retrying("ping", once)

    def ping_all(self, retries: int | None = None) -> dict[int, int]:
        """Ping every motor (`retries` overrides the bus default, e.g. 0 for a quick probe);
        BusTimeout naming all missing ids if any does not answer."""
        with self._lock:
            found: dict[int, int] = {}
            missing: list[int] = []
            saved = self.retries
            if retries is not None:
                self.retries = retries
            try:
                for dxl_id in self.ids:
                    try:
                        found[dxl_id] = self.ping(dxl_id)
                    except (BusTimeout, BusCorrupt):
                        missing.append(dxl_id)
            finally:
                self.retries = saved
            if missing:
                raise BusTimeout(f"{self.port}: motors {missing} do not answer (found {sorted(found)})",
                                 missing)
            self.models[:] = [found[i] for i in self.ids]
            self.current_units[:] = ct.current_units_of(self.models)
            return found

    def read_register(self, dxl_id: int, register: ct.Register | str) -> int:
        reg = ct.REGISTERS[register] if isinstance(register, str) else register
        fn = {1: self._ph.read1ByteTxRx, 2: self._ph.read2ByteTxRx, 4: self._ph.read4ByteTxRx}[reg.size]

        def once():
            value, result, error = self._call(fn, self._require_port(), dxl_id, reg.address)
            self._check(result, error, f"read {reg.name}", dxl_id)
            if reg.signed and value >= 1 << (8 * reg.size - 1):
                value -= 1 << (8 * reg.size)
            return int(value)
        return self._retrying(f"read {reg.name}", once)

    def write_register(self, dxl_id: int, register: ct.Register | str, value: int) -> None:
        """Unicast write with status (confirmed, retried)."""
        reg = ct.REGISTERS[register] if isinstance(register, str) else register
        fn = {1: self._ph.write1ByteTxRx, 2: self._ph.write2ByteTxRx, 4: self._ph.write4ByteTxRx}[reg.size]
        raw = int(value) & ((1 << (8 * reg.size)) - 1)

        def once():
            result, error = self._call(fn, self._require_port(), dxl_id, reg.address, raw)
            self._check(result, error, f"write {reg.name}={value}", dxl_id)
        self._retrying(f"write {reg.name}", once)

    def read_all(self, register: ct.Register | str) -> np.ndarray:
        """One register of every motor (unicast reads; for configuration, not the loop)."""
        return np.array([self.read_register(i, register) for i in self.ids], dtype=np.int64)

    def sync_write(self, register: ct.Register | str, values: Mapping[int, int] | Sequence[int],
                   ids: Sequence[int] | None = None) -> None:
        """ONE sync write of `register` (no status packets, so no retries)."""
        reg = ct.REGISTERS[register] if isinstance(register, str) else register
        if isinstance(values, Mapping):
            ids, vals = list(values), list(values.values())
        else:
            ids = self.ids if ids is None else list(ids)
            vals = list(np.asarray(values).reshape(-1))
        if len(vals) != len(ids):
            raise ValueError(f"{len(vals)} values for {len(ids)} motors")
        if not ids:
            return
        key = (reg.address, reg.size)
        with self._lock:
            port = self._require_port()
            writer = self._writers.get(key)
            if writer is None:
                writer = self._writers[key] = GroupSyncWrite(port, self._ph, reg.address, reg.size)
            writer.clearParam()
            for dxl_id, data in zip(ids, ct.to_le_bytes(vals, reg.size)):
                writer.addParam(int(dxl_id), list(data))
            writer.is_param_changed = True
            try:
                result = self._call(writer.txPacket)
            except BusError as exc:
                self._count(exc)
                raise
            self.stats["transactions"] += 1
            if result != COMM_SUCCESS:
                exc = _result_error(self._ph, result, f"sync write {reg.name}", ids)
                self._count(exc)
                raise exc

    # ------------------------------------------------------------------ configuration

    def set_torque(self, enabled: bool, ids: Iterable[int] | None = None) -> None:
        """Torque on/off, confirmed per motor."""
        for dxl_id in (self.ids if ids is None else ids):
            self.write_register(dxl_id, ct.TORQUE_ENABLE, int(bool(enabled)))

    def torque_enabled(self) -> np.ndarray:
        return self.read_all(ct.TORQUE_ENABLE).astype(bool)

    def read_modes(self) -> np.ndarray:
        with self._lock:
            self.modes[:] = self.read_all(ct.OPERATING_MODE)
            self._update_tick_limits()
            return self.modes.copy()

    def set_operating_mode(self, modes: int | str | Sequence[int | str] | Mapping[int, int | str],
                           force_torque_off: bool = False) -> list[int]:
        """Set operating modes (one for all, a list per id, or id -> mode); writes only the
        motors whose mode differs (EEPROM wear). Changing a mode needs torque off: with torque
        on it raises MotorError unless `force_torque_off`. Returns the ids that were changed."""
        with self._lock:
            if isinstance(modes, Mapping):
                wanted = {int(i): ct.mode_value(m) for i, m in modes.items()}
            elif isinstance(modes, (int, str, np.integer)):
                wanted = {i: ct.mode_value(modes) for i in self.ids}
            else:
                modes = list(modes)
                if len(modes) != self.n:
                    raise ValueError(f"{len(modes)} modes for {self.n} motors")
                wanted = {i: ct.mode_value(m) for i, m in zip(self.ids, modes)}
            changed = []
            for dxl_id, mode in wanted.items():
                k = self._index[dxl_id]
                current = self.read_register(dxl_id, ct.OPERATING_MODE)
                if current != mode:
                    if self.read_register(dxl_id, ct.TORQUE_ENABLE):
                        if not force_torque_off:
                            raise MotorError(f"motor {dxl_id}: torque is on; cannot change operating "
                                             f"mode {current} -> {mode}", [dxl_id])
                        log.warning("motor %d: torque off to change operating mode %d -> %d",
                                    dxl_id, current, mode)
                        self.write_register(dxl_id, ct.TORQUE_ENABLE, 0)
                    self.write_register(dxl_id, ct.OPERATING_MODE, mode)
                    changed.append(dxl_id)
                self.modes[k] = mode
            self._update_tick_limits()
            return changed

    def _update_tick_limits(self) -> None:
        limited = np.isin(self.modes, (ct.MODE_POSITION, ct.MODE_CURRENT_BASED_POSITION))
        self._tick_lo[:] = np.where(limited, ct.MIN_TICK, -(1 << 20))
        self._tick_hi[:] = np.where(limited, ct.MAX_TICK, (1 << 20))

    def read_limits(self) -> None:
        """Read Min/Max_Position_Limit and Current_Limit (used to bound every goal write)."""
        with self._lock:
            lo, hi = self.read_all(ct.MIN_POSITION_LIMIT), self.read_all(ct.MAX_POSITION_LIMIT)
            limited = np.isin(self.modes, (ct.MODE_POSITION, ct.MODE_CURRENT_BASED_POSITION))
            self._tick_lo[:] = np.where(limited, lo, -(1 << 20))
            self._tick_hi[:] = np.where(limited, hi, (1 << 20))
            has_current = np.isfinite(self.current_units)
            if has_current.any():
                limits = [self.read_register(i, ct.CURRENT_LIMIT) if ok else 0
                          for i, ok in zip(self.ids, has_current)]
                self._current_limit[:] = limits

    def set_return_delay_time(self, value: int = 0) -> list[int]:
        """Return_Delay_Time (2 us units; factory 250 = 500 us) where it differs; motors with
        torque on are skipped (EEPROM). Returns the ids written."""
        written = []
        with self._lock:
            for dxl_id in self.ids:
                if self.read_register(dxl_id, ct.RETURN_DELAY_TIME) != value:
                    if self.read_register(dxl_id, ct.TORQUE_ENABLE):
                        log.warning("motor %d: torque on, Return_Delay_Time left unchanged", dxl_id)
                        continue
                    self.write_register(dxl_id, ct.RETURN_DELAY_TIME, value)
                    written.append(dxl_id)
        return written

    def read_hardware_errors(self) -> dict[int, int]:
        """Non-zero Hardware_Error_Status per motor id."""
        out = {}
        for dxl_id in self.ids:
            value = self.read_register(dxl_id, ct.HARDWARE_ERROR_STATUS)
            if value:
                out[dxl_id] = value
        return out

    def reboot(self, dxl_id: int) -> None:
        """Reboot one motor (clears a hardware error; torque comes back off)."""
        def once():
            result, error = self._call(self._ph.reboot, self._require_port(), dxl_id)
            self._check(result, error & 0x7F, "reboot", dxl_id)
        self._retrying("reboot", once)

    # ------------------------------------------------------------------ the cycle

    def read_state_raw(self) -> np.ndarray:
        """ONE sync read of Present_Current..Present_Position (126..135) for every motor:
        structured array (current, velocity, position) of raw register values, in `ids` order."""
        return self._retrying("sync read", self._sync_read_once)

    def _sync_read_once(self) -> np.ndarray:
        port = self._require_port()
        result = self._call(self._state_read.txPacket)
        if result != COMM_SUCCESS:
            raise _result_error(self._ph, result, "sync read", self.ids)
        buf = bytearray()
        for dxl_id in self.ids:
            data, result, error = self._call(self._ph.readRx, port, dxl_id, ct.STATE_SIZE)
            if result != COMM_SUCCESS:
                raise _result_error(self._ph, result, "sync read", [dxl_id])
            if len(data) != ct.STATE_SIZE:
                raise BusCorrupt(f"sync read: motor {dxl_id} sent {len(data)} bytes", [dxl_id])
            self.hardware_alert[self._index[dxl_id]] = bool(error & 0x80)
            buf += bytes(data)
        return np.frombuffer(bytes(buf), dtype=ct.STATE_DTYPE)

    def read_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, velocity, current) in joint units after calibration: rad (or the joint's
        unit via scale), rad/s, A (NaN without a current sensor)."""
        raw = self.read_state_raw()
        pos = self.ticks_to_joint(raw["position"])
        vel = self._sign * self._scale * ct.velocity_to_rad_s(raw["velocity"])
        cur = self._sign * ct.current_to_amps(raw["current"], self.current_units)
        return pos, vel, cur

    def read_positions(self) -> np.ndarray:
        return self.read_state()[0]

    def _subset(self, ids: Sequence[int] | None) -> np.ndarray:
        if ids is None:
            return np.arange(self.n)
        try:
            return np.array([self._index[int(i)] for i in ids], dtype=np.intp)
        except KeyError as exc:
            raise ValueError(f"motor {exc.args[0]} is not on this bus ({self.ids})") from None

    def _goals(self, values, ids: Sequence[int] | None, what: str) -> tuple[np.ndarray, np.ndarray]:
        """The motor indices of `ids` and `values` as float64, one finite value per motor (else
        ValueError naming `what`, e.g. "positions")."""
        k = self._subset(ids)
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size != k.size:
            raise ValueError(f"{v.size} {what} for {k.size} motors")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"non-finite goal {what} {v.tolist()}")
        return k, v

    def write_positions(self, joint, ids: Sequence[int] | None = None) -> np.ndarray:
        """ONE sync write of Goal_Position from joint positions (for `ids`, default all).
        Non-finite values raise ValueError and nothing is written; ticks are bounded to the
        motors' position limits. Returns the ticks written."""
        k, q = self._goals(joint, ids, "positions")
        motor = self._sign[k] * q / self._scale[k] + self._offset[k]
        ticks = ct.rad_to_ticks(motor)
        bounded = np.clip(ticks, self._tick_lo[k], self._tick_hi[k])
        if np.any(bounded != ticks):
            self.stats["goal_clipped"] += int(np.count_nonzero(bounded != ticks))
        self.sync_write(ct.GOAL_POSITION, bounded, [self.ids[i] for i in k])
        return bounded

    def hold_present(self) -> np.ndarray:
        """Goal_Position := Present_Position for every motor (call before torque on and after
        a reconnect so nothing moves to an old goal). Returns the joint positions held."""
        with self._lock:
            raw = self.read_state_raw()
            ticks = np.clip(raw["position"].astype(np.int64), self._tick_lo, self._tick_hi)
            self.sync_write(ct.GOAL_POSITION, ticks)
            return self.ticks_to_joint(ticks)

    def write_currents(self, amps, ids: Sequence[int] | None = None) -> np.ndarray:
        """ONE sync write of Goal_Current in A (joint sign applied), bounded to Current_Limit.
        In current-based position mode this is the current (force) limit."""
        k, a = self._goals(amps, ids, "currents")
        if not np.all(np.isfinite(self.current_units[k])):
            bad = [self.ids[i] for i in k if not np.isfinite(self.current_units[i])]
            raise MotorError(f"motors {bad} have no current control (unknown model or no sensor; "
                             "ping_all first)", bad)
        units = ct.amps_to_current(self._sign[k] * a, self.current_units[k])
        units = np.clip(units, -self._current_limit[k], self._current_limit[k])
        self.sync_write(ct.GOAL_CURRENT, units, [self.ids[i] for i in k])
        return units

    def write_velocities(self, joint_rad_s, ids: Sequence[int] | None = None) -> np.ndarray:
        """ONE sync write of Goal_Velocity (velocity mode) from joint velocities."""
        k = self._subset(ids)
        v = np.asarray(joint_rad_s, dtype=np.float64).reshape(-1)
        if v.size != k.size or not np.all(np.isfinite(v)):
            raise ValueError(f"need {k.size} finite velocities, got {v.tolist()}")
        units = ct.rad_s_to_velocity(self._sign[k] * v / self._scale[k])
        self.sync_write(ct.GOAL_VELOCITY, units, [self.ids[i] for i in k])
        return units

