"""Whole-body controller: command sources in, per-controller commands and base twist out, at 100 Hz.

Subscribes: /whole_body/<source>/command (trajectory_msgs/JointTrajectory) for every source of
topics.COMMAND_SOURCES, /joint_states, /whole_body/estop (std_msgs/Bool).
Publishes once per control period: /<group>_controller/commands (std_msgs/Float64MultiArray) for
the position groups, /base_controller/cmd_vel (geometry_msgs/TwistStamped), ~/commanded
(sensor_msgs/JointState: what was commanded, stamped with the time of the step); /diagnostics.
Services: ~/reset_estop (std_srvs/Trigger), ~/set_source/<source> (std_srvs/Trigger).
Parameters: active_source, command_timeout, max_command_age, max_chunk_horizon, interpolation,
control_rate_hz, max_points, publish_commanded, velocity_feedforward, executor, event_driven
(see docs/controller.md).

Nothing is published before the first complete /joint_states: the hold targets start from the
measured positions. The control loop is a timer on the node clock (sim time with use_sim_time).

Event-driven path (`event_driven`, default true): a command of the source in control is applied
in its subscription callback. The limiters take exactly one step per control period, as on the
tick path; the on-receipt step is that period's step taken early (at receipt instead of at the
next tick), and the next tick then only runs the watchdog and arbitration (it publishes only if
they changed something). So at most one on-receipt step per control period: further commands
arriving before the next tick are coalesced into the reference and executed by the next step
(the output rate never exceeds the tick rate), and every limit (joint limits, per-step velocity
and acceleration, arbitration, watchdog, e-stop latch) applies unchanged. A step that would change
nothing (the output at rest on its target) is not taken early, and neither is one while the clock
has not advanced since the last step (sim time between two /clock messages).

All callbacks (timer, subscriptions, services) run in one single-threaded executor (`executor`:
EventsExecutor or SingleThreadedExecutor, both run every callback on the spinning thread), so
the on-receipt and tick paths never run concurrently and the state needs no locks.
"""

from __future__ import annotations

import array
import json
import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from brs_common import params, qos, topics
from brs_common import robot_spec as spec
from brs_common.convert import joint_state_arrays, make_float64_array, stamp_to_sec
from brs_common.node_main import run_node
from brs_common.diagnostics import DiagnosticsReporter

from .safety import (BASE_INDEX, POSITION_INDEX, Arbiter, BaseLimiter, CommandRejected, JointLimiter,
                     check_stamp, validate_command)
from .trajectory import INTERPOLATIONS, Reference

SOURCES = topics.COMMAND_SOURCES  # priority order, highest first
STATE_NAMES = list(spec.STATE_JOINTS)
# The position joints of the action vector are exactly the joints reported on /joint_states.
assert [spec.ACTION_JOINTS[i] for i in POSITION_INDEX] == STATE_NAMES
# Slices of each position group inside the 18 position joints.
_POS_SLICES = {}
for _g in spec.POSITION_GROUPS:
    _s = spec.group_slice(_g)
    _POS_SLICES[_g] = slice(_s.start - len(BASE_INDEX), _s.stop - len(BASE_INDEX))

STATUS_EVERY = 10  # ticks between diagnostics status refreshes (10 Hz)
PUBLISHER_CHECK_PERIOD = 1.0  # s (wall): how often the command topics' publishers are counted
# the latch's log line and ERROR status: the operator's command first, the service for ROS tools
ESTOP_MESSAGE = "E-STOP latched: base stopped, joints holding; clear it with `brs estop reset` (service ~/reset_estop)"


class WholeBodyController(Node):
    def __init__(self, **node_kwargs):
        super().__init__(topics.WHOLE_BODY_CONTROLLER_NODE, **node_kwargs)
        p = params.declare(self, [
            ("active_source", "teleop", f"command source executed (higher priorities preempt it): "
                                        f"{', '.join(SOURCES)}; settable at run time"),
            ("command_timeout", 0.2, "s a source stays fresh after its last command (watchdog); > 0"),
            ("max_command_age", 0.5, "s: a command stamped further before or after now is rejected "
                                     "(a zero stamp counts as now); > 0"),
            ("max_chunk_horizon", 2.0, "s a long chunk keeps its source fresh at most; >= 0"),
            ("interpolation", "linear", f"between a chunk's points: {', '.join(INTERPOLATIONS)}"),
            ("control_rate_hz", spec.CONTROL_RATE_HZ, "control loop rate, Hz (node clock); fixed at startup"),
            ("max_points", 256, "most points accepted in one command; > 0"),
            ("publish_commanded", True, "publish what was commanded on ~/commanded"),
            ("velocity_feedforward", True, "feed the reference velocity forward (false: braking-only tracking)"),
            ("executor", "events", "events (rclpy's EventsExecutor) or single_threaded; fixed at startup"),
            ("event_driven", True, "apply a command of the source in control on receipt (that period's "
                                   "step, early); false: at the next tick"),
        ])
        error = self._check_params(p)
        if error:
            raise ValueError(error)
        self.dt = 1.0 / float(p["control_rate_hz"])
        self.max_command_age = float(p["max_command_age"])
        self.max_points = int(p["max_points"])
        self.publish_commanded = bool(p["publish_commanded"])
        self.feedforward = bool(p["velocity_feedforward"])
        self.event_driven = bool(p["event_driven"])
        self.arbiter = Arbiter(SOURCES, p["active_source"], p["command_timeout"], p["max_chunk_horizon"])
        self.interpolation = p["interpolation"]
        self.add_on_set_parameters_callback(self._on_set_parameters)

        # Control state; built on the first /joint_states.
        self.measured: np.ndarray | None = None  # 18 position joints, action order
        self.ref: Reference | None = None
        self.joints: JointLimiter | None = None
        self.base = BaseLimiter(spec.MAX_VELOCITY[BASE_INDEX], spec.MAX_ACCELERATION[BASE_INDEX], self.dt)
        self.latest: dict[str, object] = {}  # source -> last valid Chunk
        self.controlling: str | None = None
        self.estop = False
        self.stats = {
            "ticks": 0, "tick_overruns": 0, "max_tick_ms": 0.0, "watchdog_trips": 0,
            "estop_latches": 0, "ignored_estop": 0, "ignored_no_joint_states": 0,
            "ignored_inactive": 0, "source_switches": 0, "holds": 0,
            "event_steps": 0, "event_coalesced": 0,
        }
        # Event-driven path: the step of the coming tick was already taken on receipt.
        self._ahead = False
        self._last_step = -math.inf  # clock time (s) of the last limiter step
        self.received = dict.fromkeys(SOURCES, 0)
        self.accepted = dict.fromkeys(SOURCES, 0)
        self._last_event_publish = -math.inf
        self.command_publishers = dict.fromkeys(SOURCES, 0)  # per command topic, counted every PUBLISHER_CHECK_PERIOD
        self._mixed: dict[str, list[str]] = {}  # source -> publishing nodes, where more than one publishes
        self._last_publisher_check = -math.inf

        self.diag = DiagnosticsReporter(self, hardware_id="whole_body_controller")
        for source in SOURCES:
            self.create_subscription(JointTrajectory, topics.whole_body_command(source),
                                     lambda msg, s=source: self._on_command(s, msg), qos.COMMAND)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
        self.create_subscription(Bool, topics.ESTOP, self._on_estop, qos.COMMAND)
        self.group_pubs = {g: self.create_publisher(Float64MultiArray, topics.controller_command(g), qos.COMMAND)
                           for g in spec.POSITION_GROUPS}
        self.cmd_vel_pub = self.create_publisher(TwistStamped, topics.CMD_VEL, qos.COMMAND)
        self.state_pub = self.create_publisher(JointState, "~/commanded", qos.STATE)
        self.create_service(Trigger, "~/reset_estop", self._on_reset_estop)
        self.create_service(Trigger, "~/hold", self._on_hold)
        self.create_service(Trigger, "~/received", self._on_received)
        for source in SOURCES:
            self.create_service(Trigger, f"~/set_source/{source}",
                                lambda req, res, s=source: self._on_set_source(s, res))
        self._group_msgs = {g: make_float64_array(np.zeros(len(spec.GROUPS[g].joints))) for g in self.group_pubs}
        self._twist = TwistStamped()
        self._twist.header.frame_id = spec.FRAMES["base"]
        self._state = JointState(name=list(spec.ACTION_JOINTS))
        self._cmd = np.zeros(spec.ACTION_DIM)
        self._vel = np.zeros(spec.ACTION_DIM)
        self.timer = self.create_timer(self.dt, self._tick)
        self._update_status()
        self.get_logger().info(
            f"whole-body controller: {1 / self.dt:.0f} Hz, active source {self.arbiter.active}, "
            f"command_timeout {self.arbiter.command_timeout} s, {self.interpolation} interpolation; "
            f"waiting for {topics.JOINT_STATES}")

    # --- parameters ---------------------------------------------------------------------------
    @staticmethod
    def _check_params(p: dict) -> str:
        if "active_source" in p and p["active_source"] not in SOURCES:
            return f"active_source must be one of {SOURCES}, got {p['active_source']!r}"
        if "executor" in p and p["executor"] not in ("events", "single_threaded"):
            return f"executor must be 'events' or 'single_threaded', got {p['executor']!r}"
        if "interpolation" in p and p["interpolation"] not in INTERPOLATIONS:
            return f"interpolation must be one of {INTERPOLATIONS}, got {p['interpolation']!r}"
        for key in ("command_timeout", "max_command_age", "control_rate_hz", "max_points"):
            if key in p and not (isinstance(p[key], (int, float)) and p[key] > 0):
                return f"{key} must be > 0, got {p[key]!r}"
        if "max_chunk_horizon" in p and not (isinstance(p["max_chunk_horizon"], (int, float))
                                             and p["max_chunk_horizon"] >= 0):
            return f"max_chunk_horizon must be >= 0, got {p['max_chunk_horizon']!r}"
        return ""

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        changes = {x.name: x.value for x in params}
        for fixed in ("control_rate_hz", "executor"):
            if fixed in changes:
                return SetParametersResult(successful=False, reason=f"{fixed} is fixed at startup")
        error = self._check_params(changes)
        if error:
            return SetParametersResult(successful=False, reason=error)
        if "active_source" in changes and changes["active_source"] != self.arbiter.active:
            self.arbiter.set_active(changes["active_source"])
            self.get_logger().info(f"active source: {changes['active_source']}")
        if "command_timeout" in changes:
            self.arbiter.command_timeout = float(changes["command_timeout"])
        if "max_chunk_horizon" in changes:
            self.arbiter.max_chunk_horizon = float(changes["max_chunk_horizon"])
        if "max_command_age" in changes:
            self.max_command_age = float(changes["max_command_age"])
        if "max_points" in changes:
            self.max_points = int(changes["max_points"])
        if "publish_commanded" in changes:
            self.publish_commanded = bool(changes["publish_commanded"])
        if "velocity_feedforward" in changes:
            self.feedforward = bool(changes["velocity_feedforward"])
        if "event_driven" in changes:
            self.event_driven = bool(changes["event_driven"])
        if "interpolation" in changes:
            self.interpolation = changes["interpolation"]
            if self.ref is not None:
                self.ref.interpolation = self.interpolation
        self._event()
        return SetParametersResult(successful=True)

    def _on_set_source(self, source: str, response):
        result = self.set_parameters([Parameter("active_source", value=source)])[0]
        response.success = result.successful
        response.message = f"active source: {source}" if result.successful else result.reason
        return response

    # --- inputs -------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_states(self, msg: JointState):
        try:
            if list(msg.name) == STATE_NAMES and len(msg.position) == len(STATE_NAMES):
                pos = np.array(msg.position, dtype=np.float64)
            else:
                pos = joint_state_arrays(msg, STATE_NAMES)[0]
        except (KeyError, ValueError) as exc:
            self.diag.reject("joint_states_incomplete", str(exc)[:200], component="joint_states")
            return
        if not np.all(np.isfinite(pos)):
            self.diag.reject("joint_states_non_finite", "NaN or inf in /joint_states", component="joint_states")
            return
        self.measured = pos

    def _on_command(self, source: str, msg: JointTrajectory):
        self.received[source] += 1
        if self.estop:
            self.stats["ignored_estop"] += 1
            return
        if self.joints is None:
            self.stats["ignored_no_joint_states"] += 1
            return
        clock_now = self.get_clock().now()
        now = clock_now.nanoseconds * 1e-9
        try:
            stamp = stamp_to_sec(msg.header.stamp)
            if stamp != 0.0:
                check_stamp(stamp, now, self.max_command_age)
            points = msg.points
            cmd = validate_command(
                msg.joint_names, [p.positions for p in points], [p.velocities for p in points],
                [stamp_to_sec(p.time_from_start) for p in points], self.max_points)
        except CommandRejected as exc:
            self.diag.reject(exc.reason, f"{source}: {exc.detail}"[:300])
            return
        if cmd.clamped:
            self.diag.reject("clamped", f"{source}: {cmd.clamped} values outside the joint limits, clamped")
        chunk = cmd.to_chunk(stamp if stamp != 0.0 else now)
        # A command ending within command_timeout is a streaming sample (more will follow); a
        # longer one is a motion that comes to rest at its last point.
        chunk.rest_at_end = chunk.end - now > self.arbiter.command_timeout
        self.accepted[source] += 1
        self.latest[source] = chunk
        if not self.arbiter.competes(source):
            self.stats["ignored_inactive"] += 1
        self.arbiter.touch(source, now, chunk.end)
        if source == self.controlling:
            self.ref.install(chunk, now, self._vel)
        if self.event_driven:
            self._step_on_receipt(source, clock_now, now)

    def _step_on_receipt(self, source: str, clock_now, now: float):
        """Apply a just-accepted command of `source` now instead of at the next tick, if `source`
        is the one the arbitration puts in control and this period's step is still to be taken."""
        if not self.arbiter.competes(source) or now <= 0.0:
            return  # a lower-priority source than the active one is never executed
        if self._ahead or now <= self._last_step:
            self.stats["event_coalesced"] += 1  # executed by the next step, with whatever came since
            return
        selected = self.arbiter.select(now)  # the tick's own arbitration, at the receipt time
        if selected != source:
            return  # a fresher higher-priority source is in control: the tick handles it
        if selected != self.controlling:
            self._switch(selected, now)
        joints_q, joints_v, base_v = self.joints.q, self.joints.v, self.base.v
        self._step(now)
        if (np.array_equal(joints_q, self.joints.q) and np.array_equal(joints_v, self.joints.v)
                and np.array_equal(base_v, self.base.v)):
            return  # nothing changed (at rest on the target): leave the step to the tick
        self._ahead = True
        self._last_step = now
        self.stats["event_steps"] += 1
        self._publish(clock_now)

    def _on_estop(self, msg: Bool):
        if not msg.data or self.estop:
            return
        self.estop = True
        self.stats["estop_latches"] += 1
        self._stop_and_hold()
        self.get_logger().error(ESTOP_MESSAGE)
        self._event(force=True)

    def _on_received(self, request, response):
        """How many commands each source sent so far (JSON): lock-stepped clients (RosSimEnv)
        wait on it to know their command was taken in before they advance the sim."""
        response.success, response.message = True, json.dumps(self.received)
        return response

    def _on_hold(self, request, response):
        """Every command so far dropped, base stopped, joints held where they are measured now; not a
        latch (the next fresh command is executed). For episode resets: the sim moved the robot."""
        if self.joints is None:
            response.success, response.message = False, f"no {topics.JOINT_STATES} yet"
            return response
        self.stats["holds"] += 1
        self.arbiter.expire_all()
        self._stop_and_hold()
        self._event(force=True)
        response.success, response.message = True, "holding the measured pose"
        return response

    def _stop_and_hold(self):
        self.controlling = None
        self.latest.clear()
        self.base.stop()
        self._ahead = False
        if self.joints is not None:
            self._hold_measured()
            self._publish(self.get_clock().now())  # base zero and joints held right now, not at the next tick

    def _hold_measured(self):
        self.joints.hold(self.measured)
        self.ref.clear()
        self.ref.value[POSITION_INDEX] = self.joints.q
        self.ref.value[BASE_INDEX] = 0.0

    def _on_reset_estop(self, request, response):
        if not self.estop:
            response.success, response.message = True, "e-stop was not latched"
            return response
        self.estop = False
        self.arbiter.expire_all()  # commands from before the reset are never executed
        self.latest.clear()
        self.get_logger().warning("e-stop reset: waiting for fresh commands")
        self._event(force=True)
        response.success, response.message = True, "e-stop reset"
        return response

    # --- control loop ---------------------------------------------------------------------------
    def _initialise(self):
        q0 = np.clip(self.measured, spec.LOWER[POSITION_INDEX], spec.UPPER[POSITION_INDEX])
        self.joints = JointLimiter(q0, spec.LOWER[POSITION_INDEX], spec.UPPER[POSITION_INDEX],
                                   spec.MAX_VELOCITY[POSITION_INDEX], spec.MAX_ACCELERATION[POSITION_INDEX],
                                   self.dt)
        initial = np.zeros(spec.ACTION_DIM)
        initial[POSITION_INDEX] = self.joints.q
        self.ref = Reference(initial, self.interpolation)
        if self.estop:  # latched before the robot state was known
            self._hold_measured()
        self.get_logger().info("joint states received: holding the measured pose")
        self._event(force=True)

    def _switch(self, source: str | None, now: float):
        previous, self.controlling = self.controlling, source
        if previous is not None:  # bring the old chunks up to date (up to when they went stale) ...
            self.ref.sample(min(now, self.arbiter.deadline[previous]))
        self.ref.clear()  # ... then the reference holds there
        self.ref.value[BASE_INDEX] = 0.0  # a base velocity is never carried over between sources
        self.stats["source_switches"] += 1
        if source is None:
            self.base.stop()  # watchdog: zero twist now, joints hold their last targets
            self.stats["watchdog_trips"] += 1
            self.get_logger().warning(f"watchdog: no fresh command from {previous}; base stopped, joints holding",
                                      throttle_duration_sec=5.0)
        else:
            chunk = self.latest.get(source)
            if chunk is not None:
                self.ref.install(chunk, now, self._vel)
            self.get_logger().info(f"in control: {source}" + (f" (was {previous})" if previous else ""),
                                   throttle_duration_sec=1.0)
        self._event()

    def _tick(self):
        t_start = time.perf_counter()
        clock_now = self.get_clock().now()
        now = clock_now.nanoseconds * 1e-9
        if now <= 0.0 or self.measured is None:  # no clock yet (sim time) or robot state unknown
            return
        if self.joints is None:
            self._initialise()
        ahead, self._ahead = self._ahead, False
        publish = True
        if not self.estop:
            source = self.arbiter.select(now)
            switched = source != self.controlling
            if switched:
                self._switch(source, now)
            if not ahead:
                self._step(now)
                self._last_step = now
            elif not switched:
                publish = False  # this period's step was taken and published on receipt
            # else: the watchdog or a source switch acted: publish it now (base zero at once),
            # the limiters already took this period's step
        if publish:
            self._publish(clock_now)
        stats = self.stats
        stats["ticks"] += 1
        elapsed_ms = (time.perf_counter() - t_start) * 1e3
        stats["max_tick_ms"] = max(stats["max_tick_ms"], elapsed_ms)
        if elapsed_ms > self.dt * 1e3:
            stats["tick_overruns"] += 1
        if stats["ticks"] % STATUS_EVERY == 0:
            self._update_status()

    def _step(self, now: float):
        """One limiter step (one control period) towards the reference sampled at `now`."""
        ref = self.ref.sample(now)
        if self.feedforward:
            self.joints.step(ref[POSITION_INDEX], self.ref.velocity[POSITION_INDEX],
                             self.ref.stop[POSITION_INDEX])
        else:
            self.joints.step(ref[POSITION_INDEX])
        if self.controlling is None:
            self.base.stop()
        else:
            self.base.step(ref[BASE_INDEX])

    def _publish(self, clock_now):
        q, vb = self.joints.q, self.base.v
        for group, pub in self.group_pubs.items():
            msg = self._group_msgs[group]  # built once, refilled: building one costs more than publishing
            data = array.array("d")
            data.frombytes(q[_POS_SLICES[group]].tobytes())
            msg.data = data
            pub.publish(msg)
        stamp = clock_now.to_msg()
        tw = self._twist
        tw.header.stamp = stamp
        tw.twist.linear.x, tw.twist.linear.y, tw.twist.angular.z = float(vb[0]), float(vb[1]), float(vb[2])
        self.cmd_vel_pub.publish(tw)
        cmd, vel = self._cmd, self._vel
        cmd[POSITION_INDEX] = q
        vel[POSITION_INDEX] = self.joints.v
        vel[BASE_INDEX] = vb
        if self.publish_commanded:
            st = self._state
            st.header.stamp = stamp
            st.position = cmd.tolist()
            st.velocity = vel.tolist()
            self.state_pub.publish(st)

    # --- diagnostics ------------------------------------------------------------------------------
    def _event(self, force: bool = False):
        """A state change worth reporting now (rate-limited to 10 Hz unless forced)."""
        self._update_status()
        t = time.monotonic()
        if force or t - self._last_event_publish >= 0.1:
            self._last_event_publish = t
            self.diag.publish()

    def _check_publishers(self):
        """Count the publishers of every command topic. Two on one source (e.g. keyboard_teleop
        and JoyLo both on teleop) mix their commands silently, so say so: WARN + one log line."""
        t = time.monotonic()
        if t - self._last_publisher_check < PUBLISHER_CHECK_PERIOD:
            return
        self._last_publisher_check = t
        mixed = {}
        for source in SOURCES:
            topic = topics.whole_body_command(source)
            self.command_publishers[source] = self.count_publishers(topic)
            if self.command_publishers[source] > 1:
                infos = self.get_publishers_info_by_topic(topic)
                mixed[source] = sorted(f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos)
        for source, nodes in mixed.items():
            if self._mixed.get(source) != nodes:
                self.get_logger().warning(
                    f"{len(nodes)} publishers on {topics.whole_body_command(source)} ({', '.join(nodes)}): "
                    "their commands are mixed; stop all but one")
        self._mixed = mixed

    def _update_status(self):
        self._check_publishers()
        values = {
            "active_source": self.arbiter.active,
            "controlling_source": self.controlling or "none",
            "estop_latched": self.estop,
            "watchdog_tripped": self.joints is not None and not self.estop and self.controlling is None,
            "joint_states_received": self.measured is not None,
            "interpolation": self.interpolation,
            "command_timeout": self.arbiter.command_timeout,
            "event_driven": self.event_driven,
            **self.stats,
            **{f"received.{s}": n for s, n in self.received.items()},
            **{f"accepted.{s}": n for s, n in self.accepted.items()},
            **{f"publishers.{s}": n for s, n in self.command_publishers.items()},
        }
        if self.joints is not None:
            values.update({f"joint_limiter.{k}": v for k, v in self.joints.counts.items()})
        values.update({f"base_limiter.{k}": v for k, v in self.base.counts.items()})
        values["max_tick_ms"] = f"{self.stats['max_tick_ms']:.3f}"
        if self.estop:
            level, message = DiagnosticStatus.ERROR, ESTOP_MESSAGE
        elif self.measured is None:
            level, message = DiagnosticStatus.WARN, f"waiting for {topics.JOINT_STATES}; not commanding"
        elif self.controlling is None:
            level, message = DiagnosticStatus.OK, "idle: no fresh command; base stopped, joints holding"
        else:
            level, message = DiagnosticStatus.OK, f"in control: {self.controlling}"
        if self._mixed and level == DiagnosticStatus.OK:
            level = DiagnosticStatus.WARN
            message += "; " + "; ".join(f"{len(n)} publishers on {s} ({', '.join(n)}): commands mixed"
                                        for s, n in self._mixed.items())
        self.diag.set_status("state", level, message, values)

    def stop_base(self, timeout: float = 1.0):
        """Zero twist on shutdown, delivered before the process exits."""
        if self.joints is None:
            return
        self.base.stop()
        self._publish(self.get_clock().now())
        self.cmd_vel_pub.wait_for_all_acked(Duration(seconds=timeout))


def main(args=None) -> int:
    def make_executor(node):
        if node.get_parameter("executor").value == "events":
            from rclpy.experimental import EventsExecutor

            return EventsExecutor()
        return SingleThreadedExecutor()

    return run_node(WholeBodyController, args, on_stop=lambda node: node.stop_base(),
                    make_executor=make_executor)

if __name__ == "__main__":
    raise SystemExit(main())
