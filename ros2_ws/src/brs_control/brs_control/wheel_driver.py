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

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import stamp_to_sec
from brs_common.node_main import run_node
from brs_common.diagnostics import ERROR, OK, WARN, DiagnosticsReporter

from .odrive import WheelBus
from .odrive.kinematics import (
    DEFAULT_BASE_RADIUS,
    DEFAULT_MAX_WHEEL_SPEED,
    DEFAULT_WHEEL_RADIUS,
    KiwiDrive,
    KiwiGeometry,
    OdometryIntegrator,
)

# Defaults of the "hardware config" (to move into robot_spec): wheel 0 front, 1 rear left,
# 2 rear right; board A drives wheels 0 and 1 on axes 0/1, board B wheel 2 on axis 0.
DEFAULT_WHEEL_JOINTS = [w.joint for w in spec.WHEELS]
DEFAULT_WHEEL_ANGLES_DEG = [w.angle_deg for w in spec.WHEELS]
DEFAULT_PORTS = ["/dev/brs_wheels_a", "/dev/brs_wheels_b"]
DEFAULT_WHEEL_PORT_INDEX = [0, 0, 1]
DEFAULT_WHEEL_AXIS = [0, 1, 0]
TWO_PI = 2.0 * math.pi


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
        self._last_t = np.zeros(len(self.joints))  # time of each wheel's last sample
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
        rows = [
            ("ports", DEFAULT_PORTS, "serial port per ODrive board"),
            ("wheel_joints", DEFAULT_WHEEL_JOINTS, "wheel joint names (on ~/joint_states)"),
            ("wheel_port_index", DEFAULT_WHEEL_PORT_INDEX, "index into ports per wheel"),
            ("wheel_axis", DEFAULT_WHEEL_AXIS, "ODrive axis per wheel"),
            ("wheel_direction", [1.0, 1.0, 1.0], "+1/-1 per wheel: motor turns vs wheel convention"),
            ("wheel_angles_deg", DEFAULT_WHEEL_ANGLES_DEG, "polar angle of each wheel, deg"),
            ("base_radius", DEFAULT_BASE_RADIUS, "base centre to wheel contact, m; > 0"),
            ("wheel_radius", DEFAULT_WHEEL_RADIUS, "wheel radius, m; > 0"),
            ("gear_ratio", 1.0, "motor turns per wheel turn; > 0"),
            ("max_wheel_speed", DEFAULT_MAX_WHEEL_SPEED, "wheel speed limit, rad/s: faster commands are "
                                                         "scaled down keeping their direction; > 0"),
            ("rate_hz", spec.CONTROL_RATE_HZ, "board cycle and odometry rate, Hz; > 0"),
            ("cmd_vel_timeout", 0.5, "s: host watchdog (wheels stop without a fresher cmd_vel) and "
                                     "bound on a cmd_vel stamp's age; > 0"),
            ("baudrate", 115200, "serial baud rate"),
            ("serial_timeout", 0.03, "serial read timeout per query, s; > 0"),
            ("retries", 2, "retries of a failed query"),
            ("use_checksum", True, "send and require ODrive ASCII checksums"),
            ("device_watchdog_timeout", 0.25, "board watchdog set at every connection, s; <= 0: off"),
            ("fail_threshold", 3, "failed cycles in a row before the port is closed and reopened"),
            ("reconnect_backoff_min", 0.05, "first delay between reconnect attempts, s"),
            ("reconnect_backoff_max", 2.0, "longest delay between reconnect attempts, s"),
            ("state_check_every", 10, "cycles between axis state checks"),
        ]
        # numbers: `cmd_vel_timeout:=5` and `wheel_direction:=[1, 1, -1]` (ints) are fine too
        dynamic = ["wheel_direction", "wheel_angles_deg", *(n for n, default, _ in rows if isinstance(default, float))]
        cfg = params.declare(self, rows, dynamic=dynamic)
        scalars = {n: default for n, default, _ in rows if not isinstance(default, list)}
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
        dt = np.full(len(self.joints), period)  # time the increments span
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
                self._last_turns[w], self._last_t[w] = sample.pos[k], sample.t
                self.wheel_rate[w] = 0.0
                continue
            d_angle[w] = (sample.pos[k] - self._last_turns[w]) * scale
            dt[w] = sample.t - self._last_t[w]
            self._last_turns[w], self._last_t[w] = sample.pos[k], sample.t
            stale = now - sample.t > 3 * period or board.state != "ready"
            self.wheel_rate[w] = 0.0 if stale else sample.vel[k] * scale
            fresh = fresh and not stale
        # An encoder jump (silent board reset, garbage that parsed) must not teleport the base.
        # The bound is twice what the wheel can turn in the time between its samples: a cycle
        # that ran late on a loaded machine still brings all of the motion in.
        limit = 2.0 * self.cfg["max_wheel_speed"] * np.maximum(dt, 0.05) + 0.5
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
