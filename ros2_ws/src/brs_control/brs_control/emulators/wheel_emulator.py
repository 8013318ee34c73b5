"""An ODrive motor-controller board (ASCII protocol) on a pseudo-terminal.

The host opens the pty exactly like the USB CDC port of a real board (`/dev/ttyACM0`), so the
real wheel driver and protocol client are exercised end to end. Plumbing (pty, symlink, wire
time, generic faults: drop, corrupt last byte, garbage, mute, vanish/reappear) comes from
`pty_device.PtyDevice`; this module is the device: line parsing with the optional `*checksum`,
the command subset of odrive/protocol.py, a property tree for `r`/`w`, per-axis first-order
velocity dynamics with encoder integration, and the board's own watchdog.

Device behaviour copied from the real firmware (0.5.x):
  * a command with a wrong checksum is ignored without a reply; a command with a checksum gets
    its reply with one (`reply*NN`);
  * `v`/`u` (and entering closed loop) feed the axis watchdog; when the watchdog is enabled and
    not fed for `axisN.config.watchdog_timeout` s in closed loop, the axis drops to IDLE with
    AXIS_ERROR_WATCHDOG_TIMER_EXPIRED set and stays there until errors are cleared (`sc`) and
    closed loop is requested again;
  * `v` only stores `controller.input_vel`: an idle axis does not move, and a setpoint stored
    while idle is applied as soon as it enters closed loop (hence the driver sends `v N 0`
    before arming);
  * requesting closed loop with an error pending is refused (stays IDLE, INVALID_STATE set).

Dynamics (per axis, exact for piecewise-constant input): velocity follows the clamped setpoint
with time constant `tau` (0 in IDLE: the wheel coasts down with the same time constant),
position (turns) integrates velocity. State is advanced lazily to the current time whenever a
line arrives or `snapshot()` is called, including a watchdog expiry between two calls.

Faults of the protocol layer on top of the generic pty ones: `corrupt_next(n)` flips a payload
byte of the next n replies so their checksum no longer matches.

Console script:  wheel_emulator --port-link /tmp/brs_wheels_a --axes 2 [--baudrate 115200]
                 [--drop-rate 0.01] [--corrupt-rate 0.01] [--garbage-rate 0.01] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import re
import signal
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from ..odrive.protocol import (
    AXIS_ERROR_INVALID_STATE,
    AXIS_ERROR_WATCHDOG_TIMER_EXPIRED,
    AxisState,
    checksum,
)
from .pty_device import PtyDevice

MAX_LINE = 256
CONTROL_MODE_VELOCITY = 2


@dataclass
class CommandRecord:
    """One line the device received: monotonic time, text (without checksum), outcome."""

    t: float
    text: str
    outcome: str  # ok | bad_checksum | unknown | refused | garbage


@dataclass
class EmulatedAxis:
    state: int = AxisState.IDLE
    error: int = 0
    pos: float = 0.0  # turns
    vel: float = 0.0  # turns/s
    input_vel: float = 0.0  # turns/s setpoint
    torque_ff: float = 0.0
    vel_limit: float = 10.0  # turns/s
    control_mode: int = CONTROL_MODE_VELOCITY
    enable_watchdog: bool = False
    watchdog_timeout: float = 0.0  # s
    last_feed: float = 0.0
    t: float = 0.0  # time the state was advanced to
    trips: int = 0  # watchdog expiries
    history: list = field(default_factory=list)  # (t, state) transitions

    def target(self) -> float:
        if self.state != AxisState.CLOSED_LOOP_CONTROL:
            return 0.0
        return max(-self.vel_limit, min(self.vel_limit, self.input_vel))


class ODriveEmulator:
    """Protocol and physics of one board; `handle` is the PtyDevice handler."""

    def __init__(self, n_axes: int = 2, tau: float = 0.05, vbus: float = 24.0,
                 vel_limit: float = 10.0, clock=time.monotonic, log_size: int = 200_000):
        if n_axes < 1:
            raise ValueError("n_axes must be >= 1")
        self.n_axes = n_axes
        self.tau = float(tau)
        self.vbus = float(vbus)
        self.default_vel_limit = float(vel_limit)
        self.clock = clock
        self.lock = threading.RLock()
        self.log: deque[CommandRecord] = deque(maxlen=log_size)
        self.stats: Counter = Counter()
        self._buffer = bytearray()
        self._corrupt_n = 0
        self._last_v: dict[int, float] = {}
        self.boots = 0
        self.reboot()

    # --- lifecycle / inspection ---------------------------------------------------------------
    def reboot(self) -> None:
        """Power cycle: axes idle, errors and encoder counts cleared, config back to defaults."""
        with self.lock:
            now = self.clock()
            self.axes = [EmulatedAxis(vel_limit=self.default_vel_limit, t=now, last_feed=now)
                         for _ in range(self.n_axes)]
            self._buffer.clear()
            self.boots += 1

    def snapshot(self) -> list[dict]:
        """Per-axis state advanced to now: state, error, pos, vel, input_vel, trips."""
        with self.lock:
            self._advance(self.clock())
            return [dict(state=a.state, error=a.error, pos=a.pos, vel=a.vel, input_vel=a.input_vel,
                         trips=a.trips) for a in self.axes]

    def commands(self, prefix: str = "", outcome: str | None = "ok") -> list[CommandRecord]:
        """Received lines whose text starts with `prefix` (and with that outcome, None = any)."""
        with self.lock:
            records = list(self.log)  # copy under the lock, filter outside: the device stays responsive
        return [r for r in records if r.text.startswith(prefix) and (outcome is None or r.outcome == outcome)]

    def velocity_commands(self, axis: int, since: float = -math.inf) -> list[tuple[float, float]]:
        """(time, turns/s) of every accepted `v axis ...` command received after `since`."""
        with self.lock:
            records = list(self.log)
        head = f"v {axis} "
        return [(r.t, float(r.text.split()[2])) for r in records
                if r.t >= since and r.outcome == "ok" and r.text.startswith(head)]

    def last_velocity_command(self, axis: int) -> float | None:
        """turns/s of the latest accepted `v axis ...` command (None before the first)."""
        with self.lock:
            return self._last_v.get(axis)

    def corrupt_next(self, n: int = 1) -> None:
        """Flip a payload byte of the next n replies (their checksum no longer matches)."""
        with self.lock:
            self._corrupt_n += n

    # --- physics -------------------------------------------------------------------------------
    def _integrate(self, axis: EmulatedAxis, t_end: float) -> None:
        dt = t_end - axis.t
        if dt <= 0:
            return
        target = axis.target()
        if self.tau > 0:
            decay = math.exp(-dt / self.tau)
            axis.pos += target * dt + (axis.vel - target) * self.tau * (1.0 - decay)
            axis.vel = target + (axis.vel - target) * decay
        else:
            axis.pos += target * dt
            axis.vel = target
        axis.t = t_end

    def _advance(self, now: float) -> None:
        for axis in self.axes:
            if (axis.state == AxisState.CLOSED_LOOP_CONTROL and axis.enable_watchdog
                    and axis.watchdog_timeout > 0):
                expiry = axis.last_feed + axis.watchdog_timeout
                if expiry < now:
                    self._integrate(axis, max(expiry, axis.t))
                    axis.state = AxisState.IDLE
                    axis.error |= AXIS_ERROR_WATCHDOG_TIMER_EXPIRED
                    axis.trips += 1
                    axis.history.append((expiry, int(AxisState.IDLE)))
                    self.stats["watchdog_trips"] += 1
            self._integrate(axis, now)

    def _feed(self, axis: EmulatedAxis, now: float) -> None:
        axis.last_feed = now

    def _set_state(self, axis: EmulatedAxis, requested: int, now: float) -> None:
        if requested == AxisState.CLOSED_LOOP_CONTROL:
            if axis.error:
                axis.error |= AXIS_ERROR_INVALID_STATE
                axis.state = AxisState.IDLE
            else:
                axis.state = AxisState.CLOSED_LOOP_CONTROL
                self._feed(axis, now)
        elif requested == AxisState.IDLE:
            axis.state = AxisState.IDLE
        else:
            axis.error |= AXIS_ERROR_INVALID_STATE  # calibration etc. not emulated
            axis.state = AxisState.IDLE
        axis.history.append((now, int(axis.state)))

    # --- protocol ------------------------------------------------------------------------------
    def handle(self, data: bytes) -> list[bytes]:
        """Bytes from the host (any chunking) -> reply lines (bytes with newline)."""
        replies = []
        with self.lock:
            self._buffer += data
            while True:
                idx = self._buffer.find(b"\n")
                if idx < 0:
                    if len(self._buffer) > MAX_LINE:  # endless garbage without a newline
                        self._buffer.clear()
                        self.stats["overlong"] += 1
                    break
                raw = bytes(self._buffer[:idx])
                del self._buffer[: idx + 1]
                reply = self._handle_line(raw.rstrip(b"\r"))
                if reply is not None:
                    replies.append(reply)
        return replies

    def _handle_line(self, raw: bytes) -> bytes | None:
        now = self.clock()
        self._advance(now)
        text = raw.split(b";", 1)[0]
        if not text.strip():
            return None
        if any(b < 0x20 or b > 0x7E for b in text):
            self.log.append(CommandRecord(now, text.decode("latin-1"), "garbage"))
            self.stats["garbage"] += 1
            return None
        with_cs = b"*" in text
        if with_cs:
            body, _, tail = text.rpartition(b"*")
            tail = tail.strip()
            if not tail.isdigit() or checksum(body) != int(tail):
                self.log.append(CommandRecord(now, body.decode("ascii").strip(), "bad_checksum"))
                self.stats["bad_checksum"] += 1
                return None  # the firmware drops it silently
            text = body
        cmd = text.decode("ascii").strip()
        reply, outcome = self._execute(cmd, now)
        self.log.append(CommandRecord(now, cmd, outcome))
        self.stats[outcome] += 1
        if reply is None:
            return None
        payload = reply.encode("ascii")
        if with_cs:
            payload += b"*%d" % checksum(payload)
            if self._corrupt_n > 0:
                self._corrupt_n -= 1
                payload = bytes([payload[0] ^ 0x01]) + payload[1:]  # a bit error in the payload
                self.stats["corrupted"] += 1
        return payload + b"\n"

    def _axis(self, token: str) -> EmulatedAxis | None:
        try:
            i = int(token)
        except ValueError:
            return None
        return self.axes[i] if 0 <= i < self.n_axes else None

    def _execute(self, cmd: str, now: float) -> tuple[str | None, str]:
        parts = cmd.split()
        op, args = parts[0], parts[1:]
        if op == "v":
            if not 2 <= len(args) <= 3:
                return "invalid command format", "refused"
            axis = self._axis(args[0])
            if axis is None:
                return "invalid motor", "refused"
            try:
                vel = float(args[1])
                ff = float(args[2]) if len(args) > 2 else 0.0
            except ValueError:
                return "invalid command format", "refused"
            if not (math.isfinite(vel) and math.isfinite(ff)):
                return "invalid value", "refused"
            axis.input_vel, axis.torque_ff = vel, ff
            self._last_v[int(args[0])] = vel
            axis.control_mode = CONTROL_MODE_VELOCITY
            self._feed(axis, now)
            return None, "ok"
        if op in ("f", "u"):
            if len(args) != 1:
                return "invalid command format", "refused"
            axis = self._axis(args[0])
            if axis is None:
                return "invalid motor", "refused"
            if op == "u":
                self._feed(axis, now)
                return None, "ok"
            return f"{axis.pos:.6f} {axis.vel:.6f}", "ok"
        if op == "r":
            if len(args) != 1:
                return "invalid command format", "refused"
            value = self._read(args[0])
            return (value, "ok") if value is not None else ("invalid property", "refused")
        if op == "w":
            if len(args) != 2:
                return "invalid command format", "refused"
            result = self._write(args[0], args[1], now)
            return (None, "ok") if result is None else (result, "refused")
        if op == "sc":
            for axis in self.axes:
                axis.error = 0
            return None, "ok"
        if op == "sr":
            self.reboot()
            return None, "ok"
        return "unknown command", "unknown"

    _AXIS_PROP = re.compile(r"^axis(\d+)\.(.+)$")

    def _read(self, path: str) -> str | None:
        if path == "vbus_voltage":
            return f"{self.vbus:.6f}"
        if path == "ibus":
            return f"{sum(abs(a.vel) for a in self.axes) * 0.1:.6f}"
        m = self._AXIS_PROP.match(path)
        if not m:
            return None
        axis = self._axis(m.group(1))
        if axis is None:
            return None
        prop = m.group(2)
        getters = {
            "error": lambda: str(axis.error),
            "current_state": lambda: str(int(axis.state)),
            "requested_state": lambda: "0",
            "encoder.pos_estimate": lambda: f"{axis.pos:.6f}",
            "encoder.vel_estimate": lambda: f"{axis.vel:.6f}",
            "controller.input_vel": lambda: f"{axis.input_vel:.6f}",
            "controller.config.vel_limit": lambda: f"{axis.vel_limit:.6f}",
            "controller.config.control_mode": lambda: str(axis.control_mode),
            "config.enable_watchdog": lambda: "1" if axis.enable_watchdog else "0",
            "config.watchdog_timeout": lambda: f"{axis.watchdog_timeout:.6f}",
        }
        get = getters.get(prop)
        return get() if get else None

    def _write(self, path: str, value: str, now: float) -> str | None:
        """None on success, else the refusal text."""
        m = self._AXIS_PROP.match(path)
        if not m:
            return "invalid property"
        axis = self._axis(m.group(1))
        if axis is None:
            return "invalid property"
        prop = m.group(2)
        try:
            number = float(value)
        except ValueError:
            return "invalid value"
        if not math.isfinite(number):
            return "invalid value"
        if prop == "requested_state":
            self._set_state(axis, int(number), now)
        elif prop == "error":
            axis.error = int(number)
        elif prop == "controller.input_vel":
            axis.input_vel = number
        elif prop == "controller.config.vel_limit":
            if number <= 0:
                return "invalid value"
            axis.vel_limit = number
        elif prop == "controller.config.control_mode":
            axis.control_mode = int(number)
        elif prop == "config.enable_watchdog":
            axis.enable_watchdog = bool(int(number))
            self._feed(axis, now)
        elif prop == "config.watchdog_timeout":
            if number < 0:
                return "invalid value"
            axis.watchdog_timeout = number
        elif prop == "watchdog_feed":
            self._feed(axis, now)
        else:
            return "invalid property"
        return None


class WheelEmulator:
    """An ODrive board behind a pty: `.path` is what the host opens, `.device` the PtyDevice
    (generic faults), `.odrive` the protocol/physics (command log, state, corrupt_next)."""

    def __init__(self, link: str | None = None, n_axes: int = 2, baudrate: int | None = None,
                 tau: float = 0.05, seed: int | None = None, name: str = "odrive", **odrive_kwargs):
        self.odrive = ODriveEmulator(n_axes=n_axes, tau=tau, **odrive_kwargs)
        # USB CDC and the board's UART are full duplex
        self.device = PtyDevice(self.odrive.handle, link=link, baudrate=baudrate, half_duplex=False,
                                name=name, seed=seed)

    @property
    def path(self) -> str:
        return self.device.path

    def start(self) -> WheelEmulator:
        self.device.start()
        return self

    def stop(self) -> None:
        self.device.stop()

    def __enter__(self) -> WheelEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def vanish(self) -> None:
        """USB unplugged: the port disappears (open handles get hang-up / EIO)."""
        self.device.vanish()

    def reappear(self, reboot: bool = True) -> None:
        """Plugged back in; `reboot` (default) resets the board like a power cycle."""
        if reboot:
            self.odrive.reboot()
        self.device.reappear()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="ODrive ASCII-protocol board emulated on a pty")
    parser.add_argument("--port-link", required=True, help="symlink to create, e.g. /tmp/brs_wheels_a")
    parser.add_argument("--axes", type=int, default=2, help="motor axes on this board (default 2)")
    parser.add_argument("--baudrate", type=int, default=0,
                        help="emulate UART wire time at this baud rate (0: USB, instant)")
    parser.add_argument("--tau", type=float, default=0.05, help="velocity time constant, s")
    parser.add_argument("--vbus", type=float, default=24.0, help="bus voltage, V")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="probability a reply is dropped")
    parser.add_argument("--corrupt-rate", type=float, default=0.0,
                        help="probability a reply's last byte is flipped")
    parser.add_argument("--garbage-rate", type=float, default=0.0,
                        help="probability of random bytes before a reply")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--status-period", type=float, default=1.0, help="status print period, s (0: off)")
    args = parser.parse_args(argv)

    emu = WheelEmulator(args.port_link, n_axes=args.axes, baudrate=args.baudrate or None, tau=args.tau,
                        seed=args.seed, vbus=args.vbus)
    emu.device.drop_probability = args.drop_rate
    emu.device.corrupt_probability = args.corrupt_rate
    emu.device.garbage_probability = args.garbage_rate
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emu:
        print(f"wheel_emulator: ODrive with {args.axes} axes on {emu.path} -> {emu.device.slave_path}",
              flush=True)
        while not stop.wait(args.status_period or 3600.0):
            if args.status_period:
                axes = " | ".join(
                    f"ax{i} {AxisState(a['state']).name[:6]} err=0x{a['error']:x} "
                    f"v={a['vel']:+.3f} pos={a['pos']:+.2f}"
                    for i, a in enumerate(emu.odrive.snapshot()))
                print(f"{emu.path}: {axes}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
