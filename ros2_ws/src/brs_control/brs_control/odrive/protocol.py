"""Host side of the ODrive ASCII protocol (the subset the base needs), over pyserial.

Line format (ODrive docs, "ASCII protocol"): `command *checksum ; comment\\n`. The checksum is
optional and GCode-compatible: the XOR of every byte before the `*`, in decimal. When a command
carries a checksum the device answers with one too (`reply*checksum`) and silently ignores a
command whose checksum is wrong. This client always sends the checksum form (unless
`use_checksum=False`), so a corrupted request is dropped by the device and a corrupted reply is
detected here (ChecksumMismatch) instead of being parsed as a wrong number.

Commands used (axis = 0 or 1 on a two-axis board):
    v <axis> <turns/s> [torque_ff]   velocity setpoint; no reply; feeds the axis watchdog
    f <axis>                         feedback; reply "<pos turns> <vel turns/s>"
    u <axis>                         feed the watchdog; no reply
    r <property>                     read, e.g. vbus_voltage, axis0.error, axis0.current_state
    w <property> <value>             write, e.g. axis0.requested_state 8; no reply unless refused
    sc                               clear errors of all axes; no reply
Refusals come back as text: "invalid property", "invalid value", "invalid motor",
"invalid command format", "unknown command".

Replies carry no request id, so the input buffer is flushed before every query: a late reply to
an earlier (timed-out) query can never be taken for the answer to the current one.

Errors are typed: WheelTimeout (no complete line in time), ChecksumMismatch, MalformedReply
(garbage, wrong shape), DeviceRefused (the device said no; not retried) and PortUnavailable
(the port cannot be opened, vanished, or an I/O call failed; the port is closed, reconnect).
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections import Counter

import serial

try:  # pyserial's POSIX backend lets termios.error (not an OSError) escape from tcflush & co.
    import termios

    _IO_ERRORS: tuple = (serial.SerialException, OSError, termios.error)
except ImportError:  # pragma: no cover - Windows
    _IO_ERRORS = (serial.SerialException, OSError)

DEFAULT_BAUDRATE = 115200
DEFAULT_TIMEOUT = 0.02  # s per reply; USB CDC answers in ~1 ms
MAX_LINE = 256


class AxisState(enum.IntEnum):
    """ODrive AxisState values used here."""

    UNDEFINED = 0
    IDLE = 1
    STARTUP_SEQUENCE = 2
    FULL_CALIBRATION_SEQUENCE = 3
    MOTOR_CALIBRATION = 4
    ENCODER_INDEX_SEARCH = 6
    ENCODER_OFFSET_CALIBRATION = 7
    CLOSED_LOOP_CONTROL = 8


# ODrive AxisError bits (firmware 0.5.x) the emulator and the driver report.
AXIS_ERROR_INVALID_STATE = 0x1
AXIS_ERROR_MOTOR_FAILED = 0x40
AXIS_ERROR_WATCHDOG_TIMER_EXPIRED = 0x800

DEVICE_REFUSALS = ("invalid property", "invalid value", "invalid motor", "invalid command format",
                   "unknown command", "not implemented")


class WheelProtocolError(Exception):
    """Base class of all wheel-controller protocol errors."""


class WheelTimeout(WheelProtocolError):
    """No complete reply line within the timeout."""


class ChecksumMismatch(WheelProtocolError):
    """A reply's checksum does not match its payload (corrupted on the line)."""


class MalformedReply(WheelProtocolError):
    """A reply that is not what the command answers (garbage, wrong field count, not a number)."""


class DeviceRefused(WheelProtocolError):
    """The device answered with an error text (unknown property, bad value...). Not retried."""


class PortUnavailable(WheelProtocolError):
    """The serial port cannot be opened or failed (unplugged, device vanished): reconnect."""


# ----------------------------------------------------------------------------- line codec

def checksum(payload: bytes) -> int:
    """GCode/ODrive checksum: XOR of all bytes."""
    c = 0
    for b in payload:
        c ^= b
    return c


def encode_line(command: str, with_checksum: bool = True) -> bytes:
    """`command*NN\\n` (or `command\\n`) as bytes; the command must be printable ASCII."""
    body = command.strip().encode("ascii")
    if not body or any(b < 0x20 or b > 0x7E or b in b"*;" for b in body):
        raise ValueError(f"invalid ODrive ASCII command {command!r}")
    if with_checksum:
        return body + b"*%d\n" % checksum(body)
    return body + b"\n"


def split_checksum(line: bytes) -> tuple[bytes, int | None]:
    """(payload, checksum or None) of a line without its newline; comments are dropped.

    Raises MalformedReply for non-printable bytes or an unparsable checksum field.
    """
    text = line.rstrip(b"\r\n")
    if b";" in text:
        text = text.split(b";", 1)[0]
    if any(b < 0x20 or b > 0x7E for b in text):
        raise MalformedReply(f"non-printable bytes in line {line!r}")
    if b"*" not in text:
        return text.strip(), None
    payload, _, tail = text.rpartition(b"*")
    tail = tail.strip()
    if not tail.isdigit() or int(tail) > 255:
        raise MalformedReply(f"bad checksum field in line {line!r}")
    return payload, int(tail)


def decode_line(line: bytes, require_checksum: bool) -> str:
    """Payload text of a reply line after checksum verification."""
    payload, cs = split_checksum(line)
    if cs is None:
        if require_checksum:
            raise MalformedReply(f"reply without checksum: {line!r}")
    elif checksum(payload) != cs:
        raise ChecksumMismatch(f"checksum {cs} != {checksum(payload)} for {payload!r}")
    return payload.decode("ascii").strip()


def format_number(x: float) -> str:
    """Compact float text the firmware's strtof accepts (no exponent surprises, no NaN)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"refusing to send non-finite value {x!r}")
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_feedback(text: str) -> tuple[float, float]:
    """(position turns, velocity turns/s) of an `f` reply."""
    parts = text.split()
    if len(parts) != 2:
        raise MalformedReply(f"feedback reply needs 2 numbers: {text!r}")
    try:
        pos, vel = float(parts[0]), float(parts[1])
    except ValueError:
        raise MalformedReply(f"feedback reply is not numeric: {text!r}") from None
    if not (math.isfinite(pos) and math.isfinite(vel)):
        raise MalformedReply(f"feedback reply not finite: {text!r}")
    return pos, vel


def _check_refusal(text: str) -> None:
    if text.lower() in DEVICE_REFUSALS:
        raise DeviceRefused(text)


# ----------------------------------------------------------------------------- client

class ODriveAscii:
    """One ODrive board on one serial port. Thread-safe (one lock per port).

    >>> dev = ODriveAscii("/dev/ttyACM0"); dev.open()
    >>> dev.set_velocity(0, 1.5); pos, vel = dev.feedback(0)
    """

    def __init__(self, port: str, baudrate: int = DEFAULT_BAUDRATE, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = 2, use_checksum: bool = True, serial_factory=None):
        self.port = port
        self.baudrate = int(baudrate)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.use_checksum = bool(use_checksum)
        self._factory = serial_factory or serial.Serial
        self._ser = None
        self._lock = threading.RLock()
        self.stats: Counter = Counter()  # timeouts, checksum_errors, malformed, retries, io_errors...

    # --- connection ---------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._ser is not None

    def open(self) -> None:
        with self._lock:
            self.close()
            try:
                self._ser = self._factory(port=self.port, baudrate=self.baudrate, timeout=self.timeout,
                                          write_timeout=max(self.timeout, 0.05), exclusive=True)
            except (*_IO_ERRORS, ValueError) as exc:
                self._ser = None
                raise PortUnavailable(f"cannot open {self.port}: {exc}") from exc
            self.stats["opens"] += 1

    def close(self) -> None:
        with self._lock:
            ser, self._ser = self._ser, None
            if ser is not None:
                try:
                    ser.close()
                except _IO_ERRORS:
                    pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def _io_failed(self, exc: Exception):
        self.stats["io_errors"] += 1
        self.close()
        raise PortUnavailable(f"{self.port}: {exc}") from exc

    # --- raw line I/O -------------------------------------------------------------------------
    def _require_open(self):
        if self._ser is None:
            raise PortUnavailable(f"{self.port} is not open")
        return self._ser

    def send(self, command: str) -> None:
        """Write one command that has no reply."""
        line = encode_line(command, self.use_checksum)
        with self._lock:
            ser = self._require_open()
            try:
                ser.write(line)
            except _IO_ERRORS as exc:
                self._io_failed(exc)
            self.stats["sent"] += 1

    def send_many(self, commands) -> None:
        """Write several reply-less commands in one system call."""
        data = b"".join(encode_line(c, self.use_checksum) for c in commands)
        with self._lock:
            ser = self._require_open()
            try:
                ser.write(data)
            except _IO_ERRORS as exc:
                self._io_failed(exc)
            self.stats["sent"] += 1

    def _read_line(self) -> bytes:
        ser = self._require_open()
        try:
            line = ser.read_until(b"\n", MAX_LINE)
        except _IO_ERRORS as exc:
            self._io_failed(exc)
        if not line.endswith(b"\n"):
            if len(line) >= MAX_LINE:
                raise MalformedReply(f"reply longer than {MAX_LINE} bytes")
            raise WheelTimeout(f"{self.port}: no reply within {self.timeout * 1e3:.0f} ms"
                               + (f" (partial {line!r})" if line else ""))
        return line

    def query(self, command: str, parse=None):
        """Send a command and return its reply text (or `parse(text)`), retrying on timeouts,
        checksum errors and malformed replies. DeviceRefused and PortUnavailable propagate."""
        line = encode_line(command, self.use_checksum)
        last: WheelProtocolError | None = None
        with self._lock:
            for attempt in range(self.retries + 1):
                ser = self._require_open()
                if attempt:
                    self.stats["retries"] += 1
                try:
                    ser.reset_input_buffer()  # no stale/late line can answer this query
                    ser.write(line)
                except _IO_ERRORS as exc:
                    self._io_failed(exc)
                try:
                    text = decode_line(self._read_line(), self.use_checksum)
                    _check_refusal(text)
                    return parse(text) if parse else text
                except WheelTimeout as exc:
                    self.stats["timeouts"] += 1
                    last = exc
                except ChecksumMismatch as exc:
                    self.stats["checksum_errors"] += 1
                    last = exc
                except MalformedReply as exc:
                    self.stats["malformed"] += 1
                    last = exc
            self.stats["failed_queries"] += 1
            raise last

    # --- commands -----------------------------------------------------------------------------
    def set_velocity(self, axis: int, turns_per_s: float, torque_ff: float | None = None) -> None:
        self.send(self.velocity_command(axis, turns_per_s, torque_ff))

    @staticmethod
    def velocity_command(axis: int, turns_per_s: float, torque_ff: float | None = None) -> str:
        cmd = f"v {int(axis)} {format_number(turns_per_s)}"
        return cmd if torque_ff is None else f"{cmd} {format_number(torque_ff)}"

    def feedback(self, axis: int) -> tuple[float, float]:
        """(position turns, velocity turns/s) of an axis."""
        return self.query(f"f {int(axis)}", parse_feedback)

    def feed_watchdog(self, axis: int) -> None:
        self.send(f"u {int(axis)}")

    def read(self, prop: str) -> str:
        return self.query(f"r {prop}")

    def read_float(self, prop: str) -> float:
        def parse(text):
            try:
                return float(text)
            except ValueError:
                raise MalformedReply(f"{prop}: not a number: {text!r}") from None
        return self.query(f"r {prop}", parse)

    def read_int(self, prop: str) -> int:
        def parse(text):
            try:
                return int(text)
            except ValueError:
                raise MalformedReply(f"{prop}: not an integer: {text!r}") from None
        return self.query(f"r {prop}", parse)

    def write(self, prop: str, value, verify: bool = False) -> None:
        """`w prop value`; with `verify` read it back (the device only answers refusals)."""
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = format_number(value)
        self.send(f"w {prop} {text}")
        if verify:
            back = self.read(prop)
            try:
                same = math.isclose(float(back), float(text), rel_tol=1e-5, abs_tol=1e-6)
            except ValueError:
                same = False
            if not same:
                raise DeviceRefused(f"{prop}: wrote {text}, reads back {back!r}")

    def clear_errors(self) -> None:
        self.send("sc")

    def vbus_voltage(self) -> float:
        return self.read_float("vbus_voltage")

    def axis_state(self, axis: int) -> AxisState:
        value = self.read_int(f"axis{int(axis)}.current_state")
        try:
            return AxisState(value)
        except ValueError:
            raise MalformedReply(f"unknown axis state {value}") from None

    def axis_error(self, axis: int) -> int:
        return self.read_int(f"axis{int(axis)}.error")

    def request_state(self, axis: int, state: AxisState) -> None:
        self.write(f"axis{int(axis)}.requested_state", int(state))

    def configure_watchdog(self, axis: int, timeout_s: float) -> None:
        """Enable the device-side watchdog: the axis goes idle if not fed for `timeout_s`."""
        self.write(f"axis{int(axis)}.config.watchdog_timeout", float(timeout_s), verify=True)
        self.write(f"axis{int(axis)}.config.enable_watchdog", True, verify=True)

    def arm(self, axis: int, settle_timeout: float = 0.5) -> None:
        """Zero velocity, clear errors, enter closed-loop control and wait until it is active."""
        self.set_velocity(axis, 0.0)
        self.request_state(axis, AxisState.CLOSED_LOOP_CONTROL)
        deadline = time.monotonic() + settle_timeout
        while True:
            state = self.axis_state(axis)
            if state == AxisState.CLOSED_LOOP_CONTROL:
                return
            if time.monotonic() > deadline:
                raise DeviceRefused(f"axis{axis} stays in {state.name}, error "
                                    f"0x{self.axis_error(axis):x}")
            time.sleep(0.005)
