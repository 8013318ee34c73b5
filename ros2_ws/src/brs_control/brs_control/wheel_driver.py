"""Wheel driver: cmd_vel -> three omni wheels on ODrive boards (ASCII protocol), odometry back.

Node `wheel_driver`
  subscribes  topics.CMD_VEL (geometry_msgs/TwistStamped, base_link)
  publishes   topics.ODOM (nav_msgs/Odometry, odom -> base_link, twist in base_link, REP-105)
              ~/joint_states (sensor_msgs/JointState: wheel joints, rad and rad/s)
              /diagnostics (components: input, base, odometry, board <port>)
  services    ~/reset (std_srvs/Trigger): clear latched motor faults and re-arm all boards

Command path. Every cmd_vel is validated: NaN/inf -> rejected; stamp older (or newer) than
`cmd_vel_timeout` against this node's clock -> rejected (a zero stamp is accepted); frame_id
other than '' or base_link -> rejected; components beyond the spec base limits
(robot_spec base_x/base_y/base_yaw max_velocity) -> clamped. All counted on /diagnostics. The
twist goes through kiwi inverse kinematics and direction-preserving saturation at
`max_wheel_speed`, then becomes motor turns/s (gear ratio, mounting direction).

Bus path. One worker thread per serial port (board). Each runs at `rate_hz`: it writes a `v`
command for each of its axes (feeding the board's own watchdog) and reads `f` feedback; every
`state_check_every` cycles it reads each axis state. A new cmd_vel wakes the workers so it
reaches the wire at once (not at the next period). A worker sends zero unless ALL of:
  * every board is ready (one undriven omni wheel makes the base skid: all stop together);
  * the latest command is fresher than `cmd_vel_timeout` (host watchdog);
  * that command was received after the moment the last board became ready (no stale command
    is executed after a reconnect, re-arm or transient fault: until a new cmd_vel, zero).

Faults. Timeouts, checksum errors and garbage are retried per query (`retries`); a cycle that
still fails marks the board degraded (all wheels zero); `fail_threshold` consecutive failed
cycles or an I/O error (port vanished) close the port and reconnect with exponential backoff
between `reconnect_backoff_min` and `_max`. Connecting = open, read vbus_voltage, zero the
setpoints, clear errors, enable the board watchdog (`device_watchdog_timeout`, so the wheels
stop if this process dies), enter closed loop. An axis that dropped out of closed loop because
its board watchdog expired (a bus outage) is re-armed automatically; any other axis error
latches: ERROR on /diagnostics, base stopped, until ~/reset. The node never exits on a fault.

Odometry integrates encoder increments (not velocities): forward kinematics of the wheel-angle
deltas is the body-frame displacement, applied with the exact SE(2) exponential. A board that
reconnected starts a new encoder epoch (its first sample is a new baseline, never a jump).

Wheel geometry and joint names are parameters with defaults below (matching the MuJoCo model);
they belong in robot_spec once the lead moves them there.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from brs_common import qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import stamp_to_sec
from brs_common.node_main import run_node
from brs_common.diagnostics import ERROR, OK, WARN, DiagnosticsReporter

from .base_kinematics import (
    DEFAULT_BASE_RADIUS,
    DEFAULT_MAX_WHEEL_SPEED,
    DEFAULT_WHEEL_RADIUS,
    KiwiDrive,
    KiwiGeometry,
    OdometryIntegrator,
)
from .wheel_protocol import (
    AXIS_ERROR_WATCHDOG_TIMER_EXPIRED,
    AxisState,
    ODriveAscii,
    PortUnavailable,
    WheelProtocolError,
)

# Defaults of the "hardware config" (to move into robot_spec): wheel 0 front, 1 rear left,
# 2 rear right; board A drives wheels 0 and 1 on axes 0/1, board B wheel 2 on axis 0.
DEFAULT_WHEEL_JOINTS = [w.joint for w in spec.WHEELS]
DEFAULT_WHEEL_ANGLES_DEG = [w.angle_deg for w in spec.WHEELS]
DEFAULT_PORTS = ["/dev/brs_wheels_a", "/dev/brs_wheels_b"]
DEFAULT_WHEEL_PORT_INDEX = [0, 0, 1]
DEFAULT_WHEEL_AXIS = [0, 1, 0]
TWO_PI = 2.0 * math.pi


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


class WheelDriver(Node):
    def __init__(self, **node_kwargs):
        super().__init__("wheel_driver", **node_kwargs)
        self.cfg = self._read_parameters()
        cfg = self.cfg
        self.kiwi = KiwiDrive(KiwiGeometry(cfg["base_radius"], cfg["wheel_radius"],
                                           tuple(math.radians(a) for a in cfg["wheel_angles_deg"])))
        self.joints = list(cfg["wheel_joints"])
        self.direction = np.asarray(cfg["wheel_direction"], dtype=np.float64)
        self.gear = cfg["gear_ratio"]
        self.wheel_port = list(cfg["wheel_port_index"])
        self.wheel_axis = list(cfg["wheel_axis"])
        base = [spec.JOINT_BY_NAME[n] for n in spec.BASE_JOINTS]
        self.twist_limit = np.array([j.max_velocity for j in base])

        self.diag = DiagnosticsReporter(self, hardware_id="odrive_wheels", default_component="input")
        self._diag_dirty = threading.Event()
        self.odom = OdometryIntegrator()
        self.bus = WheelBus(cfg, self.wheel_port, self.wheel_axis, self.get_logger(), self._diag_dirty.set)
        self._epochs = [-1] * len(self.joints)
        self._last_turns = np.zeros(len(self.joints))
        self.wheel_angle = np.zeros(len(self.joints))
        self.wheel_rate = np.zeros(len(self.joints))
        self.timeouts = 0
        self.odom_jumps = 0
        self._was_executing = False
        self._last_nonzero = False
        self._base_state = None
        self._ticks = 0

        self.sub = self.create_subscription(TwistStamped, topics.CMD_VEL, self._on_cmd_vel, qos.COMMAND)
        self.pub_odom = self.create_publisher(Odometry, topics.ODOM, qos.STATE)
        self.pub_joints = self.create_publisher(JointState, "~/joint_states", qos.STATE)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._odom_msg = self._make_odom_msg()
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.timer = self.create_timer(1.0 / cfg["rate_hz"], self._tick, clock=steady)
        self.bus.start()
        self.get_logger().info(
            f"wheel driver: {len(self.joints)} wheels on {cfg['ports']} at {cfg['rate_hz']:.0f} Hz, "
            f"cmd_vel timeout {cfg['cmd_vel_timeout']} s")

    # --- parameters ------------------------------------------------------------------------------
    def _read_parameters(self) -> dict:
        def arr(kind, default, text):
            return default, ParameterDescriptor(type=kind, description=text)

        S, I, D = (ParameterType.PARAMETER_STRING_ARRAY, ParameterType.PARAMETER_INTEGER_ARRAY,
                   ParameterType.PARAMETER_DOUBLE_ARRAY)
        arrays = {
            "ports": arr(S, DEFAULT_PORTS, "serial port per ODrive board"),
            "wheel_joints": arr(S, DEFAULT_WHEEL_JOINTS, "wheel joint names"),
            "wheel_port_index": arr(I, DEFAULT_WHEEL_PORT_INDEX, "index into ports per wheel"),
            "wheel_axis": arr(I, DEFAULT_WHEEL_AXIS, "ODrive axis per wheel"),
            "wheel_direction": arr(D, [1.0, 1.0, 1.0], "+1/-1 per wheel: motor turns vs wheel convention"),
            "wheel_angles_deg": arr(D, DEFAULT_WHEEL_ANGLES_DEG, "polar angle of each wheel, deg"),
        }
        for name, (default, desc) in arrays.items():
            if desc.type == D:  # accept integers too ([1, 1, -1] from a YAML file)
                desc = ParameterDescriptor(description=desc.description, dynamic_typing=True)
            self.declare_parameter(name, default, desc)
        scalars = {
            "base_radius": DEFAULT_BASE_RADIUS, "wheel_radius": DEFAULT_WHEEL_RADIUS,
            "gear_ratio": 1.0, "max_wheel_speed": DEFAULT_MAX_WHEEL_SPEED,
            "rate_hz": spec.CONTROL_RATE_HZ, "cmd_vel_timeout": 0.5,
            "baudrate": 115200, "serial_timeout": 0.03, "retries": 2, "use_checksum": True,
            "device_watchdog_timeout": 0.25, "fail_threshold": 3,
            "reconnect_backoff_min": 0.05, "reconnect_backoff_max": 2.0, "state_check_every": 10,
        }
        for name, default in scalars.items():
            dynamic = isinstance(default, float)  # `cmd_vel_timeout:=5` is fine too
            self.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=dynamic))
        cfg = {n: self.get_parameter(n).value for n in list(arrays) + list(scalars)}
        for name, default in scalars.items():
            if isinstance(default, float):
                value = cfg[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"parameter {name} must be a number, got {value!r}")
                cfg[name] = float(value)
        for name in ("wheel_direction", "wheel_angles_deg"):
            value = cfg[name]
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise ValueError(f"parameter {name} must be a list of numbers, got {value!r}")
            cfg[name] = [float(v) for v in value]
        for n in ("ports", "wheel_joints", "wheel_port_index", "wheel_axis", "wheel_direction",
                  "wheel_angles_deg"):
            cfg[n] = list(cfg[n])
        n = len(cfg["wheel_joints"])
        for key in ("wheel_port_index", "wheel_axis", "wheel_direction", "wheel_angles_deg"):
            if len(cfg[key]) != n:
                raise ValueError(f"parameter {key} has {len(cfg[key])} entries for {n} wheels")
        if any(not 0 <= p < len(cfg["ports"]) for p in cfg["wheel_port_index"]):
            raise ValueError(f"wheel_port_index {cfg['wheel_port_index']} out of range for ports {cfg['ports']}")
        pairs = list(zip(cfg["wheel_port_index"], cfg["wheel_axis"]))
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"two wheels share a (port, axis): {pairs}")
        if any(abs(abs(d) - 1.0) > 1e-9 for d in cfg["wheel_direction"]):
            raise ValueError("wheel_direction entries must be +1 or -1")
        for key in ("base_radius", "wheel_radius", "gear_ratio", "max_wheel_speed", "rate_hz",
                    "cmd_vel_timeout", "serial_timeout"):
            if not cfg[key] > 0:
                raise ValueError(f"parameter {key} must be positive")
        return cfg

    # --- commands ---------------------------------------------------------------------------------
    def _on_cmd_vel(self, msg: TwistStamped):
        t = msg.twist
        v = np.array([t.linear.x, t.linear.y, t.angular.z], dtype=np.float64)
        if not np.all(np.isfinite(v)):
            self.diag.reject("non_finite", "cmd_vel: NaN or inf")
            return
        if msg.header.frame_id not in ("", spec.FRAMES["base"]):
            self.diag.reject("wrong_frame", f"cmd_vel in frame {msg.header.frame_id!r}, expected "
                             f"{spec.FRAMES['base']!r}")
            return
        stamp = stamp_to_sec(msg.header.stamp)
        if stamp > 0:
            age = self.get_clock().now().nanoseconds * 1e-9 - stamp
            if abs(age) > self.cfg["cmd_vel_timeout"]:
                self.diag.reject("stale" if age > 0 else "future_stamp",
                                 f"cmd_vel stamped {age:+.3f}s from now")
                return
        clamped = np.clip(v, -self.twist_limit, self.twist_limit)
        if not np.array_equal(clamped, v):
            self.diag.reject("clamped", "cmd_vel above base velocity limits, clamped")
        wheels, factor = self.kiwi.saturate(self.kiwi.inverse(clamped), self.cfg["max_wheel_speed"])
        if factor < 1.0:
            self.diag.reject("wheel_saturated", f"wheel speeds scaled by {float(factor):.3f}")
        motor = wheels * self.direction * self.gear / TWO_PI
        self.bus.set_command(motor, time.monotonic())

    def _on_reset(self, request, response):
        for b in self.bus.boards:
            b.request_reset()
        response.success = True
        response.message = "latched faults cleared; boards re-arm (send a new cmd_vel to move)"
        return response

    # --- periodic: odometry, joint states, diagnostics -------------------------------------------
    def _tick(self):
        now = time.monotonic()
        self._integrate(now)
        self._update_base_status(now)
        self._ticks += 1
        if self._diag_dirty.is_set() or self._ticks % 10 == 0:
            dirty = self._diag_dirty.is_set()
            self._diag_dirty.clear()
            self._report_boards()
            if dirty:
                self.diag.publish()

    def _integrate(self, now: float):
        period = 1.0 / self.cfg["rate_hz"]
        d_angle = np.zeros(len(self.joints))
        fresh = True
        for w in range(len(self.joints)):
            board = self.bus.boards[self.wheel_port[w]]
            sample = board.sample
            if sample is None:
                fresh = False
                continue
            k = board.axes.index(self.wheel_axis[w])
            scale = TWO_PI / self.gear * self.direction[w]
            if self._epochs[w] != sample.epoch:  # first sample of a (re)connection: new baseline
                self._epochs[w] = sample.epoch
                self._last_turns[w] = sample.pos[k]
                self.wheel_rate[w] = 0.0
                continue
            d_angle[w] = (sample.pos[k] - self._last_turns[w]) * scale
            self._last_turns[w] = sample.pos[k]
            stale = now - sample.t > 3 * period or board.state != "ready"
            self.wheel_rate[w] = 0.0 if stale else sample.vel[k] * scale
            fresh = fresh and not stale
        # An encoder jump (silent board reset, garbage that parsed) must not teleport the base.
        limit = 2.0 * self.cfg["max_wheel_speed"] * max(period, 0.05) + 0.5
        if np.any(np.abs(d_angle) > limit):
            self.odom_jumps += 1
            self.diag.reject("encoder_jump", f"wheel increment {np.max(np.abs(d_angle)):.2f} rad "
                             f"ignored", component="odometry")
            d_angle[:] = 0.0
        self.wheel_angle += d_angle
        if np.any(d_angle):
            self.odom.update_displacement(*self.kiwi.forward(d_angle))
        twist = self.kiwi.forward(self.wheel_rate)
        stamp = self.get_clock().now().to_msg()
        self._publish_odom(stamp, twist)
        if fresh:
            js = JointState()
            js.header.stamp = stamp
            js.name = self.joints
            js.position = self.wheel_angle.tolist()
            js.velocity = self.wheel_rate.tolist()
            self.pub_joints.publish(js)

    def _make_odom_msg(self) -> Odometry:
        msg = Odometry(child_frame_id=spec.FRAMES["base"])
        msg.header.frame_id = spec.FRAMES["odom"]
        # planar odometry: small variance in x, y, yaw; z, roll, pitch unobserved (large)
        cov = np.diag([1e-3, 1e-3, 1e6, 1e6, 1e6, 1e-3]).reshape(-1)
        msg.pose.covariance = cov.tolist()
        msg.twist.covariance = np.diag([1e-3, 1e-3, 1e6, 1e6, 1e6, 1e-3]).reshape(-1).tolist()
        return msg

    def _publish_odom(self, stamp, twist):
        msg = self._odom_msg
        msg.header.stamp = stamp
        x, y, _yaw = self.odom.pose
        qx, qy, qz, qw = self.odom.quaternion()
        msg.pose.pose.position.x, msg.pose.pose.position.y = float(x), float(y)
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = float(qz), float(qw)
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = float(twist[0]), float(twist[1])
        msg.twist.twist.angular.z = float(twist[2])
        self.pub_odom.publish(msg)

    def _update_base_status(self, now: float):
        executing = self.bus.executing(now)
        nonzero = self.bus.command_nonzero()
        age = self.bus.command_age(now)
        if self._was_executing and not executing and nonzero and age > self.cfg["cmd_vel_timeout"]:
            self.timeouts += 1
            self.get_logger().warning(f"cmd_vel timeout ({self.cfg['cmd_vel_timeout']} s): base stopped")
        self._was_executing = executing
        if not self.bus.all_ready():
            state = (ERROR, "stopped: wheel controller not ready")
        elif executing:
            state = (OK, "driving")
        elif nonzero and age > self.cfg["cmd_vel_timeout"] and self.timeouts:
            state = (WARN, "cmd_vel timeout: base stopped")
        elif nonzero and not executing and age <= self.cfg["cmd_vel_timeout"]:
            state = (OK, "stopped: waiting for a cmd_vel received after the boards became ready")
        else:
            state = (OK, "idle")
        values = {"cmd_vel_timeouts": self.timeouts,
                  "wheel_cmd_turns_s": " ".join(f"{v:+.3f}" for v in self.bus.last_sent)}
        self.diag.set_status("base", state[0], state[1], values)
        x, y, yaw = self.odom.pose
        self.diag.set_status("odometry", OK if self.bus.all_ready() else WARN,
                             "ok" if self.bus.all_ready() else "a board is not ready: motion may be missed",
                             {"x": f"{x:.3f}", "y": f"{y:.3f}", "yaw": f"{yaw:.3f}",
                              "encoder_jumps": self.odom_jumps})
        if state != self._base_state:
            self._base_state = state
            self._diag_dirty.set()

    def _report_boards(self):
        for b in self.bus.boards:
            level = {"ready": OK, "degraded": WARN, "connecting": WARN}.get(b.state, ERROR)
            st = b.client.stats
            values = {"state": b.state, "axes": b.axes, "reconnects": max(0, b.reconnects - 1),
                      "failed_cycles": b.failed_cycles, "watchdog_recoveries": b.recoveries,
                      "retries": st["retries"], "timeouts": st["timeouts"],
                      "checksum_errors": st["checksum_errors"], "malformed": st["malformed"],
                      "io_errors": st["io_errors"], "vbus_voltage": f"{b.vbus:.2f}"}
            self.diag.set_status(f"board {b.port}", level, f"{b.state}: {b.detail}", values)

    def close(self):
        self.bus.stop()



def main(args=None) -> int:
    return run_node(WheelDriver, args, on_stop=lambda node: node.close())

if __name__ == "__main__":
    raise SystemExit(main())
