"""ODrive boards on their serial ports: one worker thread per board (connect, arm, the per-cycle
command/feedback exchange, fault handling, reconnect with backoff) and the bus that owns the one
shared wheel command and decides what each board may send (all boards ready, command fresh and
newer than the last (re)arming). No ROS: the wheel_driver node wraps it. The behaviour is
described in wheel_driver.py's docstring (docs/base.md).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from .protocol import AXIS_ERROR_WATCHDOG_TIMER_EXPIRED, AxisState, ODriveAscii, PortUnavailable, WheelProtocolError


class AxisFault(WheelProtocolError):
    """An axis left closed-loop control (error bits set or idle)."""

    def __init__(self, axis: int, state: int, error: int):
        self.axis, self.state, self.error = axis, state, error
        super().__init__(f"axis{axis} in state {state} with error 0x{error:x}")

    @property
    def recoverable(self) -> bool:
        """Only a board-watchdog expiry (our own outage) is re-armed without an operator."""
        return self.error & ~AXIS_ERROR_WATCHDOG_TIMER_EXPIRED == 0


@dataclass
class Sample:
    epoch: int  # increments on every (re)connection of the board
    t: float  # monotonic time of the feedback
    pos: tuple[float, ...]  # motor turns per axis of the board
    vel: tuple[float, ...]  # motor turns/s


class Board(threading.Thread):
    """One serial port / ODrive board: connection, arming, the per-cycle exchange."""

    def __init__(self, bus: "WheelBus", index: int, port: str, axes: list[int], cfg: dict, logger):
        super().__init__(name=f"wheels-{index}", daemon=True)
        self.bus, self.index, self.port, self.axes = bus, index, port, axes
        self.cfg, self.log = cfg, logger
        self.client = ODriveAscii(port, baudrate=cfg["baudrate"], timeout=cfg["serial_timeout"],
                                  retries=cfg["retries"], use_checksum=cfg["use_checksum"])
        self.wake = threading.Event()  # a new command: send it now
        self.interrupt = threading.Event()  # stop or ~/reset: end a backoff wait (commands do not)
        self.state = "connecting"  # connecting | ready | degraded | fault | down | stopped
        self.detail = "not connected yet"
        self.epoch = 0
        self.sample: Sample | None = None
        self.reconnects = 0
        self.failed_cycles = 0
        self.consecutive_failures = 0
        self.recoveries = 0
        self.latched: AxisFault | None = None
        self.vbus = math.nan
        self.cycles = 0
        self.reset_requested = False
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------------------------
    def stop(self):
        self._stopping = True
        self.wake.set()
        self.interrupt.set()

    def request_reset(self):
        self.reset_requested = True
        self.interrupt.set()

    def _set_state(self, state: str, detail: str):
        # rclpy loggers want one severity per call site: one line per level below
        if state != self.state:
            text = f"{self.port}: {self.state} -> {state}: {detail}"
            if state == "ready":
                self.log.info(text)
            elif state in ("down", "fault") and self.state in ("down", "fault"):
                self.log.debug(text)
            else:
                self.log.warning(text)
        self.state, self.detail = state, detail
        self.bus.board_changed(self)

    def _initialise(self):
        """Port is open: check the board, zero setpoints, clear errors, watchdog, closed loop."""
        c = self.client
        self.vbus = c.vbus_voltage()
        c.send_many([c.velocity_command(ax, 0.0) for ax in self.axes])
        c.clear_errors()
        for ax in self.axes:
            if self.cfg["device_watchdog_timeout"] > 0:
                c.configure_watchdog(ax, self.cfg["device_watchdog_timeout"])
            c.arm(ax)

    def run(self):
        """Never dies: an unexpected error is logged, the port closed, and the loop restarts."""
        while not self._stopping:
            try:
                self._loop()
            except Exception as exc:  # noqa: BLE001 - a driver bug must not leave wheels running
                self.log.error(f"{self.port}: unexpected error, reconnecting: {exc!r}")
                self.client.close()
                try:
                    self._set_state("down", f"internal error: {exc!r}")
                except Exception:  # noqa: BLE001
                    pass
                self.interrupt.wait(self.cfg["reconnect_backoff_max"])
                self.interrupt.clear()
        self._shutdown()

    def _loop(self):
        backoff = self.cfg["reconnect_backoff_min"]
        period = 1.0 / self.cfg["rate_hz"]
        check_every = max(1, int(self.cfg["state_check_every"]))
        next_cycle = time.monotonic()
        need_init = True
        while not self._stopping:
            if self.reset_requested:
                self.reset_requested, self.latched, need_init = False, None, True
            if self.latched is not None:  # operator must call ~/reset
                self._zero_quietly()
                self.interrupt.wait(period)
                self.interrupt.clear()
                continue
            if need_init or not self.client.is_open:
                try:
                    reopened = not self.client.is_open
                    if reopened:
                        self.client.open()
                    self._initialise()
                except WheelProtocolError as exc:
                    self.client.close()
                    self._set_state("down", f"connect failed: {exc}")
                    self.interrupt.wait(backoff)  # commands keep arriving: they must not shorten it
                    self.interrupt.clear()
                    backoff = min(2.0 * backoff, self.cfg["reconnect_backoff_max"])
                    continue
                if reopened:
                    self.epoch += 1
                    self.reconnects += 1
                need_init, backoff = False, self.cfg["reconnect_backoff_min"]
                self.consecutive_failures = 0
                self._set_state("ready", f"closed loop on axes {self.axes}, vbus {self.vbus:.1f} V")
                next_cycle = time.monotonic()
            # wait for the next period, or for a new command (fast path: setpoints only)
            woke = self.wake.wait(max(0.0, next_cycle - time.monotonic()))
            self.wake.clear()
            if self._stopping:
                break
            full = not woke or time.monotonic() >= next_cycle
            if full:
                next_cycle = max(next_cycle + period, time.monotonic())
            try:
                self._cycle(full, check=full and self.cycles % check_every == 0)
            except PortUnavailable as exc:
                self.failed_cycles += 1
                self._set_state("down", f"port lost: {exc}")
                need_init = True
                continue
            except AxisFault as exc:
                self._zero_quietly()
                if exc.recoverable:
                    self.recoveries += 1
                    self._set_state("fault", f"{exc}: board watchdog expired, re-arming")
                    need_init = True
                else:
                    self.latched = exc
                    self._set_state("fault", f"{exc}: latched, call ~/reset after fixing")
                continue
            except WheelProtocolError as exc:
                self.failed_cycles += 1
                self.consecutive_failures += 1
                if self.consecutive_failures >= self.cfg["fail_threshold"]:
                    self.client.close()
                    self._set_state("down", f"{self.consecutive_failures} failed cycles ({exc}); reconnecting")
                    need_init = True
                else:
                    self._set_state("degraded", f"cycle failed: {exc}")
                continue
            self.consecutive_failures = 0
            if self.state != "ready":
                self._set_state("ready", "recovered")

    def _cycle(self, full: bool, check: bool):
        c = self.client
        targets = self.bus.targets(self)
        c.send_many([c.velocity_command(ax, v) for ax, v in zip(self.axes, targets)])
        self.bus.note_sent(self, targets)
        if not full:
            return
        pos, vel = [], []
        for ax in self.axes:
            p, v = c.feedback(ax)
            pos.append(p)
            vel.append(v)
        self.sample = Sample(self.epoch, time.monotonic(), tuple(pos), tuple(vel))
        self.cycles += 1
        if check:
            for ax in self.axes:
                state = c.axis_state(ax)
                if state != AxisState.CLOSED_LOOP_CONTROL:
                    raise AxisFault(ax, int(state), c.axis_error(ax))

    def _zero_quietly(self):
        try:
            if self.client.is_open:
                self.client.send_many([self.client.velocity_command(ax, 0.0) for ax in self.axes])
        except WheelProtocolError:
            pass

    def _shutdown(self):
        """Stop the wheels and let them free-wheel (IDLE) so the robot can be pushed by hand."""
        try:
            if self.client.is_open:
                self._zero_quietly()
                for ax in self.axes:
                    self.client.request_state(ax, AxisState.IDLE)
        except WheelProtocolError:
            pass
        self.client.close()
        self.state = "stopped"


class WheelBus:
    """The boards plus the one shared wheel command; decides what each board may send."""

    def __init__(self, cfg: dict, wheel_port: list[int], wheel_axis: list[int], logger, on_change):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.n_wheels = len(wheel_port)
        self._cmd = np.zeros(self.n_wheels)  # motor turns/s
        self._cmd_t: float | None = None  # monotonic receive time
        self.ready_since = math.inf  # when the last board became ready (inf: not all ready)
        self.on_change = on_change
        self.last_sent = np.zeros(self.n_wheels)
        self.boards: list[Board] = []
        self.wheels_of: list[list[int]] = []
        for b, port in enumerate(cfg["ports"]):
            wheels = [w for w in range(self.n_wheels) if wheel_port[w] == b]
            self.wheels_of.append(wheels)
            self.boards.append(Board(self, b, port, [wheel_axis[w] for w in wheels], cfg, logger))

    def start(self):
        for b in self.boards:
            b.start()

    def stop(self, timeout: float = 2.0):
        for b in self.boards:
            b.stop()
        for b in self.boards:
            b.join(timeout)

    def set_command(self, motor_turns: np.ndarray, t: float):
        with self.lock:
            self._cmd = np.asarray(motor_turns, dtype=np.float64).copy()
            self._cmd_t = t
        for b in self.boards:
            b.wake.set()

    def command_age(self, now: float) -> float:
        with self.lock:
            return math.inf if self._cmd_t is None else now - self._cmd_t

    def command_nonzero(self) -> bool:
        with self.lock:
            return self._cmd_t is not None and bool(np.any(self._cmd))

    def executing(self, now: float | None = None) -> bool:
        """True while the latest command is allowed on the wheels."""
        now = time.monotonic() if now is None else now
        with self.lock:
            return self._executable(now)

    def _executable(self, now: float) -> bool:
        return (self._cmd_t is not None and self._cmd_t > self.ready_since
                and now - self._cmd_t <= self.cfg["cmd_vel_timeout"])

    def targets(self, board: Board) -> list[float]:
        with self.lock:
            if self._executable(time.monotonic()):
                return [float(self._cmd[w]) for w in self.wheels_of[board.index]]
        return [0.0] * len(board.axes)

    def note_sent(self, board: Board, targets: list[float]):
        with self.lock:
            self.last_sent[self.wheels_of[board.index]] = targets

    def board_changed(self, board: Board):
        with self.lock:
            all_ready = all(b.state == "ready" for b in self.boards)
            if not all_ready:
                self.ready_since = math.inf
            elif board.state == "ready":
                # a board (re)became ready: only commands received from now on execute
                self.ready_since = time.monotonic()
        self.on_change()

    def all_ready(self) -> bool:
        return all(b.state == "ready" for b in self.boards)
