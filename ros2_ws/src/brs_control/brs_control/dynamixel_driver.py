"""Dynamixel driver node: one instance per chain (torso, left arm + gripper, right arm + gripper).

    dynamixel_driver --ros-args -r __node:=left_arm_driver \\
        -p groups:="['left_arm','left_gripper']" -p port:=/dev/brs_left_arm \\
        -p calibration_file:=hardware/calibration/left_arm.yaml

Topics (names from brs_common.topics):
  sub  topics.controller_command(g) for each group g   std_msgs/Float64MultiArray (positions)
  pub  ~/joint_states  (/<node name>/joint_states)     sensor_msgs/JointState, every cycle:
       position (rad, gripper m), velocity (rad/s, m/s), effort = motor current (A, NaN if none)
  pub  /diagnostics  components "bus", "command", "input"
Services (std_srvs/Trigger): ~/configure, ~/activate, ~/deactivate, ~/cleanup.

States (lifecycle style, without lifecycle_msgs so it runs on the plain rclpy wheels):
  unconfigured --configure--> inactive --activate--> active --deactivate--> inactive
  inactive --cleanup--> unconfigured;   any --bus lost--> fault --reconnected--> previous target
  configure: open the port (USB latency timer 1 ms where possible), ping every motor, set
             Return_Delay_Time 0, operating modes (position; grippers current-based position
             with Goal_Current = current limit), read position/current limits. Torque untouched
             unless a mode must change. States are published while inactive (torque off).
  activate:  Goal_Position := Present_Position, then torque on (nothing jumps to an old goal).
             The ~/activate service also reboots motors that latched a hardware error
             (overload, overheating, ...): calling it is the operator's acknowledgement.
  deactivate: torque off (the arms go limp: support them). cleanup: close the port.
With autostart (default) the node drives itself to active and keeps retrying while the port is
missing, so bringup order does not matter.

Each cycle (rate_hz, steady clock): ONE sync read of position/velocity/current, publish the
JointState, then, when active and a fresh command is pending, ONE sync write of Goal_Position.

Event-driven writes (`event_driven`, default true): a command that changes the goal is written in
its subscription callback, at once (the executor is single-threaded, so the callback only runs
between transactions and the bus is free; the bus lock keeps one transaction at a time anyway).
On-receipt writes are at least `event_min_interval` (2 ms) apart: a change arriving sooner wakes
a one-shot timer that writes it when the interval is over (coalescing whatever arrived
meanwhile). A command that does not change the goal waits for the cycle, as before. The cycle
stays for the reads, the states, the watchdog and the diagnostics. `event_driven:=false`: goals
are written by the cycle only (the old behaviour).

Commands: length, NaN/inf and joint limits (spec limits narrowed by the calibration's range)
are checked first; bad commands never reach the bus and are counted on /diagnostics
("wrong_length", "non_finite", "out_of_limits" with out_of_limit:=reject, "clamped" with the
default out_of_limit:=clamp, "not_active", "stale"). Watchdog: a group without a command for
command_timeout keeps its last goal (nothing moves) and the "command" component WARNs.

Bus faults: a failed transaction is retried (`retries`); a cycle that still fails is counted
(WARN); `max_failed_cycles` failures in a row or a disconnect -> fault: ERROR on /diagnostics,
port closed, reconnect with exponential backoff (reconnect_backoff_min .. _max). While in fault
no goal is written: the motors hold their last goal on their own (safe stop). On recovery the
node re-pings, re-configures, re-reads Present_Position and holds it (goal = present); every
command received before the recovery is discarded, so a stale command is never executed; the
next fresh command moves the joints again. The node never exits on a bus error.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections import deque

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import make_joint_state
from brs_common.node_main import ConfigError, run_node
from brs_common.diagnostics import ERROR, OK, WARN, DiagnosticsReporter

from .dynamixel import control_table as ct
from .dynamixel.bus import BusDisconnected, BusError, DynamixelBus, MotorCalibration
from .dynamixel.calibration import (CalibrationError, ChainCalibration, JointCalibration,
                                    calibration_dir, find_calibration, load_calibration)

UNCONFIGURED, INACTIVE, ACTIVE, FAULT = "unconfigured", "inactive", "active", "fault"
DEFAULT_GRIPPER_CURRENT_A = 0.6
# s: the "bus" component stays WARN until this long after the last bus error, so sporadic retried
# errors on a loaded machine are one lasting WARN, not a WARN/OK flip (and a console line) each
ERROR_WINDOW_S = 5.0
BUS_ERROR_LOG_PERIOD = 5.0  # s: at most one "bus error (cycle ...)" log line in this time


class DynamixelDriver(Node):
    def __init__(self, **kwargs):
        super().__init__("dynamixel_driver", **kwargs)
        self._declare_parameters()
        self._load_config()
        self.bus = DynamixelBus(self.port, self.baudrate, self.ids, self.motor_cal,
                                retries=self.retries,
                                latency_timer_ms=None if self.latency_ms < 0 else self.latency_ms,
                                timeout_margin_ms=self.timeout_margin_ms)
        self.diag = DiagnosticsReporter(self, hardware_id=f"dynamixel:{self.port}")
        self.state = UNCONFIGURED
        self.target = ACTIVE if self.autostart else UNCONFIGURED
        self.goal = np.array([spec.JOINT_BY_NAME[j].home for j in self.joints])
        self.pending: dict[str, tuple[np.ndarray, float]] = {}
        self.last_command: dict[str, float] = {}
        self.fresh_after_mono = 0.0  # commands received at or before these are stale
        self.fresh_after_wall_ns = 0
        self.active_since = 0.0
        self.failed_cycles = 0
        self.fault_reason = ""
        self.attempts = 0
        self.backoff = self.backoff_min
        self.next_attempt = 0.0
        self.error_times: deque[float] = deque(maxlen=1000)
        self.cycle_times: deque[float] = deque(maxlen=int(self.rate_hz * 2) + 2)
        self.alert_text = ""
        self._levels: dict[str, int] = {}
        self._last_diag = 0.0
        self._last_warn_log = 0.0
        self._unlogged_errors = 0  # failed cycles since the last "bus error" log line
        self._seen_errors = 0
        self.torque_off_pending = False
        self.last_event_write = -np.inf  # monotonic time of the last on-receipt goal write
        self.write_stats = {"event_writes": 0, "deferred_writes": 0, "cycle_writes": 0}

        self.state_pub = self.create_publisher(JointState, "~/joint_states", qos.STATE)
        for group in self.groups:
            self.create_subscription(
                Float64MultiArray, topics.controller_command(group),
                lambda msg, info, g=group: self._on_command(g, msg, info), qos.COMMAND)
        for name, fn in (("configure", self._srv_configure), ("activate", self._srv_activate),
                         ("deactivate", self._srv_deactivate), ("cleanup", self._srv_cleanup)):
            self.create_service(Trigger, f"~/{name}", fn)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.timer = self.create_timer(1.0 / self.rate_hz, self._cycle, clock=steady)
        # one-shot (cancelled in its callback): writes a change that came too soon after the last write
        self.wake = self.create_timer(self.event_min_interval, self._on_wake, clock=steady)
        self.wake.cancel()
        self.get_logger().info(
            f"groups {self.groups} joints {list(self.joints)} ids {self.ids} on {self.port} @ "
            f"{self.baudrate} baud, calibration {self.calibration.path or '(identity)'}; "
            f"{'autostart' if self.autostart else 'waiting for ~/configure'}")

    # ------------------------------------------------------------------ configuration

    def _declare_parameters(self) -> None:
        params.declare(self, [
            ("groups", Parameter.Type.STRING_ARRAY,
             "position groups on this chain, e.g. ['left_arm','left_gripper']; unset: `group`, else "
             "the calibration file's"),
            ("group", "", "one position group, used when `groups` is unset"),
            ("port", "", "serial device; '': the calibration file's"),
            ("baudrate", 0, "bus baud rate; 0: the calibration file's, else 1000000"),
            ("ids", Parameter.Type.INTEGER_ARRAY,
             "motor id per joint (joint order), overrides the calibration's; needed without a calibration"),
            ("calibration_file", "", "chain calibration YAML; '': found by port and chain in the "
                                     "calibration directory"),
            ("chain", "", "chain name for the calibration lookup; '': the first group"),
            ("rate_hz", spec.CONTROL_RATE_HZ, "read/write cycle rate, Hz (steady clock); > 0"),
            ("command_timeout", 0.5, "s without a command before the watchdog warns (the goal is held); > 0"),
            ("out_of_limit", "clamp", "a command beyond the joint limits: clamp (and count) or reject"),
            ("gripper_current_limit", 0.0, "grippers' Goal_Current, A; <= 0: the calibration's, else 0.6 A"),
            ("retries", 2, "retries of a failed bus transaction"),
            ("max_failed_cycles", 3, "failed cycles in a row before the fault state (reconnect)"),
            ("reconnect_backoff_min", 0.1, "first delay between reconnect attempts, s (doubles up to the max)"),
            ("reconnect_backoff_max", 2.0, "longest delay between reconnect attempts, s"),
            ("latency_timer_ms", -1.0, "USB latency in packet timeouts, ms; < 0: auto (FTDI: 1 ms, else 16 ms)"),
            ("timeout_margin_ms", 2.0, "margin added to every packet timeout, ms"),
            ("return_delay_time", 0, "Return_Delay_Time written to every motor at configure, 2 us units"),
            ("autostart", True, "configure and activate at start, retrying while the port is missing "
                                "(false: wait for ~/configure)"),
            ("torque_off_on_exit", False, "torque off at shutdown (the arms go limp); false: motors keep holding"),
            ("event_driven", True, "write a command that changes the goal on receipt; false: only in the cycle"),
            ("event_min_interval", 0.002, "shortest spacing of on-receipt goal writes, s; (0, 1 / rate_hz]"),
        ])

    def _param(self, name, default=None):
        try:
            value = self.get_parameter(name).value
        except ParameterUninitializedException:
            return default
        return default if value is None else value

    def _load_config(self) -> None:
        groups = list(self._param("groups", []) or [])
        if not groups and self._param("group"):
            groups = [self._param("group")]
        port = self._param("port", "")
        chain = self._param("chain", "") or (groups[0] if groups else "")
        cal_file = self._param("calibration_file", "")
        calibration: ChainCalibration | None = None
        if cal_file:
            calibration = load_calibration(cal_file)
        elif port:
            found = find_calibration(port, chain=chain.replace("_gripper", "_arm") or None)
            if found is not None:
                calibration = load_calibration(found)
        if not groups and calibration is not None:
            groups = list(calibration.groups)
        if not groups:
            raise ConfigError("set `groups` (e.g. ['left_arm','left_gripper']) or `calibration_file`")
        bad = [g for g in groups if g not in spec.POSITION_GROUPS]
        if bad:
            raise ConfigError(f"unknown groups {bad}; position groups are {list(spec.POSITION_GROUPS)}")
        self.groups = [g for g in spec.GROUP_ORDER if g in groups]
        self.joints = tuple(j for g in self.groups for j in spec.GROUPS[g].joints)
        ids = [int(i) for i in (self._param("ids", []) or [])]
        if ids and len(ids) != len(self.joints):
            raise ConfigError(f"`ids` has {len(ids)} entries for {len(self.joints)} joints {list(self.joints)}")
        if calibration is not None:
            calibration = calibration.for_joints(self.joints)
            if ids:  # ids override (e.g. a bench setup), calibration otherwise kept
                calibration = ChainCalibration(
                    calibration.chain, calibration.device_id, calibration.port, calibration.baudrate,
                    tuple(dataclasses.replace(j, id=i) for j, i in zip(calibration.joints, ids)),
                    calibration.path)
        else:
            if not ids:
                raise ConfigError(f"no calibration file for port {port!r} in {calibration_dir()} and no "
                                  "`ids`: set calibration_file (see hardware/calibration/README.md)")
            self.get_logger().warning("no calibration file: identity calibration (offset 0, sign +1, "
                                      "scale 1); gripper positions are motor radians")
            calibration = ChainCalibration(
                chain, "", port, 0,
                tuple(JointCalibration(
                    j, i, "XM430-W350",
                    ct.MODE_CURRENT_BASED_POSITION if spec.JOINT_BY_NAME[j].group.endswith("gripper")
                    else ct.MODE_POSITION,
                    lower=spec.JOINT_BY_NAME[j].lower, upper=spec.JOINT_BY_NAME[j].upper)
                    for j, i in zip(self.joints, ids)), "")
        self.calibration = calibration
        self.port = port or calibration.port
        if not self.port:
            raise ConfigError("no `port` parameter and the calibration file names none")
        self.baudrate = int(self._param("baudrate", 0) or calibration.baudrate or 1_000_000)
        self.ids = calibration.ids
        self.motor_cal: list[MotorCalibration] = calibration.motors()
        self.modes = {j.id: j.mode for j in calibration.joints}
        self.lower = np.array([j.lower for j in calibration.joints])
        self.upper = np.array([j.upper for j in calibration.joints])
        slices, start = {}, 0
        for g in self.groups:
            n = len(spec.GROUPS[g].joints)
            slices[g] = slice(start, start + n)
            start += n
        self.slices = slices
        override = float(self._param("gripper_current_limit", 0.0))
        self.current_limits = {
            j.id: override if override > 0 else (j.current_limit or DEFAULT_GRIPPER_CURRENT_A)
            for j in calibration.joints if j.mode == ct.MODE_CURRENT_BASED_POSITION}
        self.rate_hz = float(self._param("rate_hz"))
        self.command_timeout = float(self._param("command_timeout"))
        self.out_of_limit = str(self._param("out_of_limit"))
        if self.out_of_limit not in ("clamp", "reject"):
            raise ConfigError(f"out_of_limit must be 'clamp' or 'reject', got {self.out_of_limit!r}")
        self.retries = int(self._param("retries"))
        self.max_failed_cycles = max(1, int(self._param("max_failed_cycles")))
        self.backoff_min = float(self._param("reconnect_backoff_min"))
        self.backoff_max = max(self.backoff_min, float(self._param("reconnect_backoff_max")))
        self.latency_ms = float(self._param("latency_timer_ms"))
        self.timeout_margin_ms = float(self._param("timeout_margin_ms"))
        self.return_delay_time = int(self._param("return_delay_time"))
        self.autostart = bool(self._param("autostart"))
        self.torque_off_on_exit = bool(self._param("torque_off_on_exit"))
        self.event_driven = bool(self._param("event_driven"))
        self.event_min_interval = float(self._param("event_min_interval"))
        if self.rate_hz <= 0 or self.command_timeout <= 0:
            raise ConfigError("rate_hz and command_timeout must be positive")
        if not (0.0 < self.event_min_interval <= 1.0 / self.rate_hz):
            raise ConfigError(f"event_min_interval must be > 0 and at most one cycle "
                              f"({1.0 / self.rate_hz:g} s), got {self.event_min_interval}")

    # ------------------------------------------------------------------ bring-up steps

    def _configure_motors(self, quick: bool) -> None:
        """Ping, then (re)write everything a power cycle may have reset."""
        self.bus.ping_all(retries=0 if quick else None)
        expected = {j.id: ct.model_by_name(j.model).number for j in self.calibration.joints}
        wrong = {i: int(m) for i, m in zip(self.ids, self.bus.models) if expected.get(i) != int(m)}
        if wrong:
            self.get_logger().warning(f"model numbers {wrong} differ from the calibration's "
                                      f"{ {i: expected[i] for i in wrong} }")
        self.bus.set_return_delay_time(self.return_delay_time)
        changed = self.bus.set_operating_mode(self.modes, force_torque_off=True)
        if changed:
            self.get_logger().warning(f"operating mode changed on motors {changed} (torque was turned off)")
        self.bus.read_limits()
        if self.current_limits:
            ids = list(self.current_limits)
            self.bus.write_currents([self.current_limits[i] for i in ids], ids=ids)

    def _torque_on_holding(self) -> None:
        """Goal := present, torque on; every earlier command becomes stale."""
        held = self.bus.hold_present()
        self.goal = held.copy()
        self.bus.set_torque(True)
        self._mark_fresh()
        self.active_since = time.monotonic()

    def _mark_fresh(self) -> None:
        self.pending.clear()
        self.fresh_after_mono = time.monotonic()
        self.fresh_after_wall_ns = time.time_ns()

    def _bring_up(self, quick: bool = False) -> None:
        """Open + configure, then go to `target` (inactive or active)."""
        self.bus.open()
        self._configure_motors(quick)
        if self.target == ACTIVE:
            self._torque_on_holding()
            self.state = ACTIVE
        else:
            if self.torque_off_pending:  # ~/deactivate was requested while the bus was down
                self.bus.set_torque(False)
                self.torque_off_pending = False
            self.goal = self.bus.read_positions()
            self._mark_fresh()
            self.state = INACTIVE
        self.failed_cycles = 0
        self.alert_text = ""

    # ------------------------------------------------------------------ commands

    def _on_command(self, group: str, msg: Float64MultiArray, info) -> None:
        now = time.monotonic()
        sl = self.slices[group]
        n = sl.stop - sl.start
        values = np.asarray(msg.data, dtype=np.float64)
        if values.size != n:
            self.diag.reject("wrong_length", f"{group}: {values.size} values for {n} joints")
            return
        if not np.all(np.isfinite(values)):
            self.diag.reject("non_finite", f"{group}: {values.tolist()}")
            return
        clipped = np.clip(values, self.lower[sl], self.upper[sl])
        if np.any(clipped != values):
            bad = [self.joints[sl.start + k] for k in np.flatnonzero(clipped != values)]
            if self.out_of_limit == "reject":
                self.diag.reject("out_of_limits", f"{group}: {bad} outside limits")
                return
            self.diag.reject("clamped", f"{group}: {bad} clamped to limits")
            values = clipped
        if self.state != ACTIVE:
            self.diag.reject("not_active", f"{group}: driver is {self.state}")
            return
        received_ns = int(info.get("received_timestamp", 0)) if isinstance(info, dict) else 0
        if received_ns and received_ns <= self.fresh_after_wall_ns:
            self.diag.reject("stale", f"{group}: received before the last (re)activation")
            return
        self.pending[group] = (values, now)
        self.last_command[group] = now
        if self.event_driven and not np.array_equal(values, self.goal[sl]):
            self._write_soon(now)

    def _write_soon(self, now: float) -> None:
        """Write the pending goal now, or once event_min_interval has passed since the last
        on-receipt write (the cycle's own write is bounded by the cycle)."""
        if now - self.last_event_write >= self.event_min_interval:
            self._write_pending(now, "event_writes")
        elif self.wake.is_canceled():
            self.wake.reset()  # fires after event_min_interval: writes what is pending then

    def _on_wake(self) -> None:
        self.wake.cancel()
        if self.state == ACTIVE and self.pending:
            self._write_pending(time.monotonic(), "deferred_writes")

    def _write_pending(self, now: float, kind: str) -> None:
        try:
            if self._apply_commands(now):
                self.last_event_write = time.monotonic()
                self.write_stats[kind] += 1
        except BusError as exc:
            self._bus_failure(exc, now)

    def _apply_commands(self, now: float) -> bool:
        """Goal_Position := the fresh pending commands (ONE sync write); True if written."""
        dirty = False
        for group in self.groups:
            cmd = self.pending.pop(group, None)
            if cmd is None:
                continue
            values, received = cmd
            if received <= self.fresh_after_mono or now - received > self.command_timeout:
                self.diag.reject("stale", f"{group}: command older than the last (re)activation "
                                 "or the command timeout")
                continue
            self.goal[self.slices[group]] = values
            dirty = True
        if dirty:
            self.bus.write_positions(self.goal)
        return dirty

    # ------------------------------------------------------------------ the cycle

    def _cycle(self) -> None:
        now = time.monotonic()
        try:
            self._step(now)
        except Exception as exc:  # never die: report and keep cycling
            self.error_times.append(now)
            self.fault_reason = f"internal error: {exc!r}"
            self.get_logger().error(f"cycle failed: {exc!r}\n{traceback.format_exc()}")
        self.cycle_times.append(now)
        errors = sum(self.bus.stats.get(k, 0) for k in ("timeouts", "corrupt", "disconnects", "motor_errors"))
        if errors > self._seen_errors:  # also the ones a retry absorbed: visible as WARN
            self.error_times.extend([now] * min(errors - self._seen_errors, 100))
            self._seen_errors = errors
        if now - self._last_diag >= 0.1:
            self._last_diag = now
            self._update_diagnostics(now)

    def _step(self, now: float) -> None:
        if self.state in (UNCONFIGURED, FAULT) and self.target != UNCONFIGURED:
            if now < self.next_attempt:
                return
            self._try_bring_up(now)
            if self.state in (UNCONFIGURED, FAULT):
                return
        if self.state not in (INACTIVE, ACTIVE):
            return
        try:
            pos, vel, cur = self.bus.read_state()
            self.failed_cycles = 0
            self.state_pub.publish(make_joint_state(self.joints, pos, vel, cur,
                                                    stamp=self.get_clock().now()))
            if self.bus.hardware_alert.any():
                if not self.alert_text:
                    self._describe_alert()
            elif self.alert_text:
                self.alert_text = ""
            if self.state == ACTIVE and self._apply_commands(now):
                self.write_stats["cycle_writes"] += 1
        except BusError as exc:
            self._bus_failure(exc, now)

    def _try_bring_up(self, now: float) -> None:
        self.attempts += 1
        try:
            self._bring_up(quick=self.attempts > 1)
        except BusError as exc:
            self.bus.close()
            first = self.state != FAULT
            self.state = FAULT
            self.fault_reason = str(exc)
            self.next_attempt = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, self.backoff_max)
            if first or now - self._last_warn_log > 5.0:
                self._last_warn_log = now
                self.get_logger().error(f"bus not available: {exc}; retrying (attempt {self.attempts})")
            self._update_diagnostics(now)
            return
        self.get_logger().info(f"bus up ({self.state}) after {self.attempts} attempt(s); "
                               "holding present positions")
        self.attempts = 0
        self.backoff = self.backoff_min
        self.fault_reason = ""
        self._update_diagnostics(time.monotonic())

    def _bus_failure(self, exc: BusError, now: float) -> None:
        self.failed_cycles += 1
        if isinstance(exc, BusDisconnected) or self.failed_cycles >= self.max_failed_cycles:
            self.get_logger().error(f"bus fault after {self.failed_cycles} failed cycle(s): {exc}; "
                                    "holding, reconnecting")
            self.bus.close()
            self.state = FAULT
            self.fault_reason = str(exc)
            self.pending.clear()
            self.attempts = 0
            self.backoff = self.backoff_min
            self.next_attempt = now + self.backoff_min
            self._update_diagnostics(now)
        elif now - self._last_warn_log >= BUS_ERROR_LOG_PERIOD:
            more = f"; {self._unlogged_errors} more since the last line" if self._unlogged_errors else ""
            self._last_warn_log, self._unlogged_errors = now, 0
            self.get_logger().warning(f"bus error (cycle {self.failed_cycles}/{self.max_failed_cycles}): {exc}{more}")
        else:
            self._unlogged_errors += 1

    def _describe_alert(self) -> None:
        ids = [i for i, a in zip(self.ids, self.bus.hardware_alert) if a]
        try:
            errors = self.bus.read_hardware_errors()
            self.alert_text = "; ".join(f"motor {i}: {ct.hardware_error_names(v) or v}" for i, v in errors.items())
        except BusError:
            self.alert_text = ""
        self.alert_text = self.alert_text or f"hardware alert on motors {ids}"
        self.get_logger().error(self.alert_text)

    # ------------------------------------------------------------------ diagnostics

    def _update_diagnostics(self, now: float) -> None:
        while self.error_times and now - self.error_times[0] > ERROR_WINDOW_S:
            self.error_times.popleft()
        stats = self.bus.stats
        window = [t for t in self.cycle_times if now - t <= 1.0]
        values = {
            "state": self.state, "target": self.target, "port": self.port, "baudrate": self.baudrate,
            "ids": self.ids, "cycle_hz": f"{len(window):.0f}", "failed_cycles": self.failed_cycles,
            "reconnect_attempts": self.attempts, "event_driven": self.event_driven,
            **self.write_stats,
            **{f"bus.{k}": stats.get(k, 0) for k in ("transactions", "timeouts", "corrupt", "disconnects",
                                                     "retries", "reconnects", "opens", "goal_clipped")},
            "last_error": str(self.bus.last_error or self.fault_reason or ""),
        }
        if self.state == FAULT:
            level = ERROR
            message = (f"bus fault: {self.fault_reason}; reconnecting (attempt {self.attempts}, "
                       f"next in {max(0.0, self.next_attempt - now):.1f} s); motors hold their last goal")
        elif self.bus.hardware_alert.any() and self.state in (INACTIVE, ACTIVE):
            level, message = ERROR, f"hardware error: {self.alert_text}"
        elif self.error_times:
            level = WARN
            message = f"{len(self.error_times)} bus errors in the last {ERROR_WINDOW_S:.0f} s (retried)"
        elif self.state == ACTIVE:
            level, message = OK, "active: torque on"
        elif self.state == INACTIVE:
            level, message = OK, "inactive: torque off, publishing states"
        else:
            level, message = OK, "unconfigured: port closed"
        self._set("bus", level, message, values)

        if self.state == ACTIVE:
            idle = {g: now - self.last_command.get(g, self.active_since) for g in self.groups}
            late = {g: dt for g, dt in idle.items() if dt > self.command_timeout}
            if late:
                text = ", ".join(f"{g} {dt:.1f} s" for g, dt in late.items())
                self._set("command", WARN, f"no command ({text}): holding goal", {"timeout_s": self.command_timeout})
            else:
                self._set("command", OK, "commands fresh", {"timeout_s": self.command_timeout})
        else:
            self._set("command", OK, f"not active ({self.state}): commands ignored", {})

    def _set(self, component: str, level: int, message: str, values: dict) -> None:
        self.diag.set_status(component, level, message, values)
        if self._levels.get(component) != level:
            self._levels[component] = level
            self.diag.publish()  # level changes are published at once

    # ------------------------------------------------------------------ services

    def _respond(self, response, ok: bool, message: str):
        response.success, response.message = ok, message
        return response

    def _srv_configure(self, request, response):
        if self.state in (INACTIVE, ACTIVE):
            return self._respond(response, True, f"already {self.state}")
        self.target = INACTIVE
        self.next_attempt = 0.0
        self._try_bring_up(time.monotonic())
        return self._respond(response, self.state == INACTIVE, self.fault_reason or self.state)

    def _clear_hardware_errors(self) -> str:
        """Reboot motors that latched a hardware error (operator-requested activation only)."""
        errors = self.bus.read_hardware_errors()
        if not errors:
            return ""
        for dxl_id in errors:
            self.bus.reboot(dxl_id)
        deadline = time.monotonic() + 2.0  # a rebooting motor is silent for a moment
        while True:
            try:
                self.bus.ping_all(retries=0)
                break
            except BusError:
                if time.monotonic() > deadline:
                    raise
        self._configure_motors(quick=True)  # a reboot resets RAM (current limits)
        self.alert_text = ""
        text = "; ".join(f"motor {i}: {ct.hardware_error_names(v) or v}" for i, v in errors.items())
        self.get_logger().warning(f"rebooted motors to clear hardware errors ({text})")
        return f"; rebooted to clear {text}"

    def _srv_activate(self, request, response):
        self.target = ACTIVE
        if self.state == ACTIVE and not self.bus.hardware_alert.any():
            return self._respond(response, True, "already active")
        if self.state in (INACTIVE, ACTIVE):
            try:
                cleared = self._clear_hardware_errors()
                self._torque_on_holding()
                self.state = ACTIVE
            except BusError as exc:
                self._bus_failure(BusDisconnected(str(exc)), time.monotonic())
                return self._respond(response, False, str(exc))
            return self._respond(response, True, "active: holding present positions" + cleared)
        self.next_attempt = 0.0
        self._try_bring_up(time.monotonic())
        return self._respond(response, self.state == ACTIVE, self.fault_reason or self.state)

    def _srv_deactivate(self, request, response):
        self.target = INACTIVE
        if self.state not in (ACTIVE, INACTIVE):
            self.torque_off_pending = True  # applied when the bus is back
            return self._respond(response, False, f"{self.state}: torque goes off once the bus is back")
        if self.state == ACTIVE:
            try:
                self.bus.set_torque(False)
            except BusError as exc:
                self._bus_failure(BusDisconnected(str(exc)), time.monotonic())
                return self._respond(response, False, f"torque off failed: {exc}")
            self.state = INACTIVE
        return self._respond(response, self.state == INACTIVE, self.state)

    def _srv_cleanup(self, request, response):
        self.target = UNCONFIGURED
        self.bus.close()
        self.state = UNCONFIGURED
        return self._respond(response, True, "port closed (torque left as it was)")

    # ------------------------------------------------------------------ shutdown

    def shutdown(self) -> None:
        if self.torque_off_on_exit and self.state == ACTIVE:
            try:
                self.bus.set_torque(False)
            except BusError as exc:
                self.get_logger().warning(f"torque off on exit failed: {exc}")
        self.bus.close()


def main(args=None) -> int:
    return run_node(DynamixelDriver, args, on_stop=lambda node: node.shutdown(),
                    config_errors=(CalibrationError, ValueError))

if __name__ == "__main__":
    raise SystemExit(main())
