"""joylo: JoyLo teleoperation node (two Joy-Cons on two Dynamixel leader arms).

Every tick (`rate_hz`, 100 Hz, a dedicated thread on a steady absolute schedule): Joy-Con events
(live through pygame/SDL2, or replayed from a log) + the leader arms (one sync read per arm,
calibrated to robot joints) -> `teleop_mapping.joycon_targets` -> publishes
  - the teleop command (docs/teleop.md) on topics.whole_body_command('teleop'),
  - sensor_msgs/Joy on topics.JOY (the episode recorder reads its buttons),
  - std_msgs/Bool(True) on topics.ESTOP on the e-stop button;
then writes the haptic goals to the leader motors (leader_arms.haptic_command against the robot's
/joint_states). The alt torso mode (X button) is kept here.

Event-driven (`event_driven`, default true): between two ticks the thread keeps reading the leader
arms (one sync read per arm, back to back, at most one every `event_min_interval`, 2 ms) and
publishes the teleop command as soon as a reading differs from the one the last command was
made from: the last tick's targets with the arms moved toward the new reading by at most one
tick's step (`JoyloCore.preview`: exactly what the next tick commands if the reading stays). The
core's state only changes at ticks, so the log and its replay are unchanged and the speed limit
holds: every command's arm targets are within one step (max_arm_speed / rate_hz) of the last
tick's. Joy-Con, haptics, /joy, the e-stop and the log stay on the tick; the extra commands are
bounded by the read rate (and only come when the leader moved). `event_driven:=false`: the leader
is read once per tick only.

Engage step (`engage_tolerance`, 0.2 rad): an arm does not follow its leader until every leader
joint is within the tolerance of the arm's current target (the robot's pose at start), as GELLO
and BRS operators expect; meanwhile its targets hold, the haptics pull the leader toward them
(lag spring with a deadband of half the tolerance, so it brings the leader within it) and
/diagnostics (component `engage`) lists each joint beyond the tolerance with its leader - target
mismatch (values `<side>.mismatch_rad`: all six). Once engaged an arm stays engaged (an
unplugged leader only holds). `engage_tolerance:=0` follows at once.
The Y button (`toggle_engage`) disengages both arms (their targets hold, the leaders can be put
down) and, pressed again, engages both at once whatever the mismatch (the arms then move to the
leaders at `max_arm_speed`).
Arm targets follow the leader at most `max_arm_speed` rad/s, so a leader that comes back after a
bus fault never makes the command jump. While an arm is
unreadable its targets are held and /diagnostics says so; the bus reconnects with backoff.
Nothing is published before /joint_states and, with live leader arms, before the first complete
leader reading (so the node never fights another teleop source while its arms are unplugged).

Inputs without hardware: `record_file:=log.jsonl` logs each published tick (joylo_log.py);
`input:=replay replay_file:=log.jsonl` replays it: same ticks in, same commands out. A log without
leader values (a scripted Joy-Con sequence) takes the arms from the live leader.
A button press from the command line (`brs joylo press y`, or std_msgs/String "y" on ~/press):
a button-down event at the next tick and its button-up at the one after, added to that tick's
Joy-Con (or replayed) events, so it goes where an SDL event goes: the mapping, /joy, the log.

The tick logic is `JoyloCore` (pure, no ROS) so replays and tests run it directly.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque

import numpy as np

from brs_common import robot_spec as spec
from brs_common.node_main import ConfigError

from . import joycon as jc
from . import teleop_mapping as tm
from .joylo_log import JoyloLogError, LogWriter, read_log
from .leader_arms import ARM_JOINTS, SIDES, HapticConfig, LeaderArms, LeaderCalibrationError, arm_joints

ARM_MAX_SPEED = float(spec.MAX_VELOCITY[tm.ARMS].min())
ENGAGE_TOLERANCE = 0.2  # rad: an arm follows once every leader joint is this close to its target
GUIDE_DEADBAND = 0.5  # of the engage tolerance: the haptic lag deadband while an arm waits for it


class JoyloCore:
    """One JoyLo tick, pure: (Joy-Con events, 12 leader values or NaN) -> (21-D target, events)."""

    def __init__(self, joy_config: jc.JoyConConfig, rate_hz: float = spec.CONTROL_RATE_HZ,
                 mapping: tm.MappingConfig = tm.MappingConfig(), max_arm_speed: float = ARM_MAX_SPEED,
                 engage_tolerance: float = ENGAGE_TOLERANCE):
        if rate_hz <= 0 or max_arm_speed <= 0:
            raise ValueError("rate_hz and max_arm_speed must be positive")
        if engage_tolerance < 0:
            raise ValueError(f"engage_tolerance must be >= 0 (0: follow at once), got {engage_tolerance}")
        self.joy_config = joy_config
        self.mapping = mapping
        self.dt = 1.0 / rate_hz
        self.max_step = max_arm_speed * self.dt
        self.engage_tolerance = engage_tolerance
        self.targets: np.ndarray | None = None
        self.engaged = np.zeros(len(SIDES), bool)
        self.disengaged = False  # by the operator (toggle_engage): no arm follows until pressed again
        self.mismatch = np.full(len(tm.ARMS), np.nan)  # leader - arm target at the last step
        self.state = jc.JoyConState()
        self.alt_mode = False

    def _engagement(self, leader: np.ndarray, arms: np.ndarray) -> np.ndarray:
        """Which arms follow the leader from this step on (per side; once engaged, always, unless
        the operator disengaged them)."""
        if self.disengaged:
            return np.zeros(len(SIDES), bool)
        diff = np.abs(leader - arms).reshape(len(SIDES), -1)  # NaN where unreadable
        aligned = np.all(diff <= self.engage_tolerance, axis=1) if self.engage_tolerance > 0 else \
            np.ones(len(SIDES), bool)
        return self.engaged | aligned

    def _follow(self, leader, arms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(arm targets moved toward `leader` by at most one step where engaged and readable,
        engagement after this step)."""
        leader = np.asarray(leader, dtype=float)
        engaged = self._engagement(leader, arms)
        ok = np.isfinite(leader) & np.repeat(engaged, len(tm.ARMS) // len(SIDES))
        arms = arms.copy()
        arms[ok] += np.clip(leader[ok] - arms[ok], -self.max_step, self.max_step)
        return arms, engaged

    def preview(self, leader) -> np.ndarray:
        """The current targets with the arms moved toward a newer `leader` reading (12, NaN: hold)
        by at most one step: what the next step() commands if that reading stays and the Joy-Con
        does not change. Pure: the core's state is not touched."""
        if self.targets is None:
            raise RuntimeError("JoyloCore.preview before start()")
        out = self.targets.copy()
        arms, _ = self._follow(leader, out[tm.ARMS])
        out[tm.ARMS] = np.clip(arms, spec.LOWER[tm.ARMS], spec.UPPER[tm.ARMS])
        return out

    def start(self, joint_positions: dict[str, float] | None) -> np.ndarray:
        self.targets = tm.initial_targets(joint_positions)
        self.engaged[:] = False
        self.disengaged = False
        return self.targets

    def arm_mismatch(self, side: str) -> np.ndarray:
        """The `side` arm's leader - target per joint at the last step (6; NaN when unread)."""
        k = SIDES.index(side)
        n = len(tm.ARMS) // len(SIDES)
        return self.mismatch[k * n:(k + 1) * n].copy()

    def worst_mismatch(self, side: str) -> tuple[str, float]:
        """(joint, |leader - target|) of the `side` arm's joint furthest from its target at the
        last step (NaN when unread)."""
        first = SIDES.index(side) * (len(tm.ARMS) // len(SIDES))
        diff = np.abs(self.arm_mismatch(side))
        if not np.isfinite(diff).any():
            return ARM_JOINTS[first], float("nan")
        j = int(np.nanargmax(diff))
        return ARM_JOINTS[first + j], float(diff[j])

    def waiting(self) -> list[str]:
        """The sides whose arm waits for its leader to come within the engage tolerance (not
        engaged, and not disengaged by the operator)."""
        if self.targets is None or self.disengaged:
            return []
        return [side for k, side in enumerate(SIDES) if not self.engaged[k]]

    def step(self, events, leader) -> tuple[np.ndarray, list[str]]:
        if self.targets is None:
            raise RuntimeError("JoyloCore.step before start()")
        prev = self.state
        self.state = jc.state_from_events(events, self.joy_config, prev)
        arms = self.targets[tm.ARMS].copy()
        if leader is not None:  # NaN entries: that arm is unreadable -> hold
            self.mismatch = np.asarray(leader, dtype=float) - arms
            arms, self.engaged = self._follow(leader, arms)
        self.targets, events_out = tm.joycon_targets(self.targets, self.state, prev, self.dt,
                                                     arms, self.alt_mode, self.mapping)
        if tm.TOGGLE_MODE in events_out:
            self.alt_mode = not self.alt_mode
        if tm.TOGGLE_ENGAGE in events_out:  # from the next step on
            self.disengaged = not self.disengaged
            self.engaged[:] = not self.disengaged
        return self.targets, events_out

    def release_events(self) -> list[dict]:
        """Events that return every input to rest (a disconnected Joy-Con must not keep driving)."""
        trigger_axes = {i for kind, i in self.joy_config.triggers.values() if kind == "axis"}
        out = [{"type": jc.AXIS, "axis": i, "value": -1.0 if i in trigger_axes else 0.0}
               for i in sorted(self.state.raw_axes)]
        out += [{"type": jc.BUTTON_UP, "button": i}
                for i, down in sorted(self.state.raw_buttons.items()) if down]
        return out


class RateAlarm:
    """Loop-rate WARN with hysteresis (pure): WARN once the rate has stayed below `threshold` for
    `hold_s`, OK again once it has stayed at or above `threshold + margin` for `hold_s`, so a
    rate hovering at the threshold under load (88-92 Hz against 90) does not flip the level."""

    def __init__(self, threshold: float, margin: float, hold_s: float = 3.0):
        self.threshold, self.margin, self.hold_s = threshold, margin, hold_s
        self.slow = False  # the loop is slow: WARN
        self._since: float | None = None  # when the rate started to argue for the other state

    def update(self, now: float, rate: float) -> bool:
        """The rate measured at `now` (s, monotonic); returns whether the loop is slow (WARN)."""
        other = rate >= self.threshold + self.margin if self.slow else rate < self.threshold
        if not other:
            self._since = None
        elif self._since is None:
            self._since = now
        if other and now - self._since >= self.hold_s:
            self.slow, self._since = not self.slow, None
        return self.slow


def alignment_text(side: str, mismatch, tolerance: float) -> str:
    """What an arm waiting for alignment needs: each joint beyond `tolerance` with its leader -
    target, e.g. 'left waits for alignment: joint2 +0.42, joint4 -0.31 rad'."""
    mismatch = np.asarray(mismatch, dtype=float)
    if not np.isfinite(mismatch).all():
        return f"{side} waits for alignment: leader not read"
    off = [f"{joint.removeprefix(side + '_arm_')} {m:+.2f}"
           for joint, m in zip(arm_joints(side), mismatch) if abs(m) > tolerance]
    return f"{side} waits for alignment: " + (", ".join(off) + " rad" if off else "within tolerance")


class JoyConSource:
    """Live Joy-Con events; opens (and reopens) the device every `retry_s` while it is absent."""

    def __init__(self, config: jc.JoyConConfig, retry_s: float = 2.0):
        self.config = config
        self.retry_s = retry_s
        self.reader: jc.JoyConReader | None = None
        self.name = ""
        self.error = "not opened yet"
        self.next_try = 0.0
        self.just_lost = False

    @property
    def connected(self) -> bool:
        return self.reader is not None and self.reader.connected

    def poll(self, now: float) -> list[dict]:
        if self.reader is not None and not self.reader.connected:
            self._drop("Joy-Con disconnected")
        if self.reader is None:
            if now < self.next_try:
                return []
            self.next_try = now + self.retry_s
            try:
                self.reader = jc.JoyConReader(self.config)
                self.name = self.reader.joystick.get_name()
                self.error = ""
            except Exception as exc:  # RuntimeError (none found) or pygame.error
                self.error = str(exc)
                return []
        try:
            return self.reader.poll_events()[1]
        except Exception as exc:  # SDL failure: treat as a disconnect
            self._drop(f"Joy-Con read failed: {exc}")
            return []

    def _drop(self, why: str) -> None:
        try:
            self.reader.close()
        except Exception:
            pass
        self.reader = None
        self.error = why
        self.just_lost = True

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


# ----------------------------------------------------------------------------- ROS node

def _make_node():
    from rclpy.duration import Duration
    from rclpy.node import Node
    from sensor_msgs.msg import Joy, JointState
    from std_msgs.msg import Bool, String
    from trajectory_msgs.msg import JointTrajectory

    from brs_common import params, qos, topics
    from brs_common.convert import joint_state_to_dict
    from brs_common.diagnostics import ERROR, OK, WARN, DiagnosticsReporter

    class JoyloNode(Node):
        def __init__(self):
            super().__init__("joylo")
            default_map = tm.MappingConfig()
            p = params.declare(self, [
                ("rate_hz", spec.CONTROL_RATE_HZ, "tick rate, Hz (steady clock); > 0"),
                ("input", "joycon", "Joy-Con events from: joycon (live) or replay (replay_file)"),
                ("replay_file", "", "log (.jsonl) to replay with input:=replay"),
                ("record_file", "", "log every published tick to this .jsonl file; '': no log"),
                ("joycon_config", "", "Joy-Con mapping YAML; '': the default"),
                *((f"{s}_port", f"/dev/brs_joylo_{s}", f"serial port of the {s} leader arm") for s in SIDES),
                *((f"{s}_calibration", "", f"calibration file of the {s} leader arm; '': found by port")
                  for s in SIDES),
                ("calibration_dir", "", "directory searched for leader calibrations; '': the default"),
                ("haptics", True, "haptic currents on the leader arms (false: torque off, passive)"),
                ("haptic_lag_deadband", 0.15, "leader-robot difference with no lag force, rad; >= 0"),
                ("haptic_lag_gain", 1.0, "lag force beyond the deadband, A/rad; >= 0"),
                ("haptic_limit_margin", 0.15, "distance before a joint limit where resistance starts, rad; >= 0"),
                ("haptic_limit_gain", 2.0, "resistance into the limit margin, A/rad; >= 0"),
                ("haptic_max_current", 0.35, "cap of the haptic current, A; >= 0"),
                ("haptic_free_current", 0.0, "current while free, A (0: no torque); <= haptic_max_current"),
                ("max_arm_speed", ARM_MAX_SPEED, "fastest arm target motion following the leader, rad/s; > 0"),
                ("engage_tolerance", ENGAGE_TOLERANCE, "an arm follows once every leader joint is this close "
                                                       "to its target, rad; 0: at once"),
                ("base_max", list(default_map.base_max), "base speed at full stick [vx, vy m/s, wz rad/s], "
                                                         "clipped to the spec limits"),
                ("torso_rate", default_map.torso_rate, "torso joint speed at full stick, rad/s"),
                ("retries", 1, "retries of a failed leader bus transaction"),
                ("latency_timer_ms", -1.0, "USB latency in packet timeouts, ms; < 0: auto"),
                ("timeout_margin_ms", 2.0, "margin added to every packet timeout, ms"),
                ("reconnect_backoff_max", 2.0, "longest delay between leader reconnect attempts, s"),
                ("event_driven", True, "publish a new leader reading between ticks (false: once per tick)"),
                ("event_min_interval", 0.002, "shortest spacing of leader reads between ticks, s; "
                                              "(0, 1 / rate_hz]"),
            ])
            self.rate_hz = float(p["rate_hz"])
            self.input = str(p["input"])
            replay_file = str(p["replay_file"])
            record_file = str(p["record_file"])
            joycon_config = str(p["joycon_config"])
            ports = {s: str(p[f"{s}_port"]) for s in SIDES}
            files = {s: str(p[f"{s}_calibration"]) for s in SIDES}
            cal_dir = str(p["calibration_dir"])
            haptics = HapticConfig(
                enabled=bool(p["haptics"]),
                lag_deadband=float(p["haptic_lag_deadband"]),
                lag_gain=float(p["haptic_lag_gain"]),
                limit_margin=float(p["haptic_limit_margin"]),
                limit_gain=float(p["haptic_limit_gain"]),
                max_current=float(p["haptic_max_current"]),
                free_current=float(p["haptic_free_current"]))
            max_arm_speed = float(p["max_arm_speed"])
            engage_tolerance = float(p["engage_tolerance"])
            mapping = tm.MappingConfig(base_max=tuple(p["base_max"]), torso_rate=float(p["torso_rate"]))
            retries = int(p["retries"])
            latency = float(p["latency_timer_ms"])
            margin = float(p["timeout_margin_ms"])
            backoff_max = float(p["reconnect_backoff_max"])
            self.event_driven = bool(p["event_driven"])
            self.event_min_interval = float(p["event_min_interval"])
            if self.input not in ("joycon", "replay"):
                raise ConfigError(f"input must be 'joycon' or 'replay', got {self.input!r}")
            if self.rate_hz <= 0:
                raise ConfigError(f"rate_hz must be positive, got {self.rate_hz}")
            if not 0 < self.event_min_interval <= 1.0 / self.rate_hz:
                raise ConfigError(f"event_min_interval must be > 0 and at most one tick "
                                  f"({1.0 / self.rate_hz:g} s), got {self.event_min_interval}")

            self.joy_config = jc.load_config(joycon_config or None)
            try:
                self.core = JoyloCore(self.joy_config, self.rate_hz, mapping, max_arm_speed, engage_tolerance)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            self.ticks = []
            self.tick_index = 0
            if self.input == "replay":
                if not replay_file:
                    raise ConfigError("input:=replay needs replay_file:=<log.jsonl> (written with "
                                      "record_file:=...)")
                _, self.ticks = read_log(replay_file, ARM_JOINTS)
                self.replay_file = replay_file
            needs_leader = self.input == "joycon" or any(isinstance(t.leader, str) for t in self.ticks)
            self.leader: LeaderArms | None = None
            if needs_leader:
                self.leader = LeaderArms.from_parameters(
                    ports, files, cal_dir or None, haptics, retries=retries,
                    latency_timer_ms=None if latency < 0 else latency, timeout_margin_ms=margin,
                    backoff_max=backoff_max)
                self.leader.connect(scan=True)  # a wrong chain on a port refuses to start
                bad = [a.mismatch for a in self.leader.arms.values() if a.mismatch]
                if bad:
                    self.leader.close()
                    raise LeaderCalibrationError("; ".join(bad))
            self.joycon = JoyConSource(self.joy_config) if self.input == "joycon" else None
            self.log = LogWriter(record_file, self.rate_hz, ARM_JOINTS) if record_file else None

            self.cmd_pub = self.create_publisher(JointTrajectory, topics.whole_body_command("teleop"),
                                                 qos.COMMAND)
            self.joy_pub = self.create_publisher(Joy, topics.JOY, qos.SENSOR)
            self.estop_pub = self.create_publisher(Bool, topics.ESTOP, qos.COMMAND)
            self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, qos.STATE)
            self.diag = DiagnosticsReporter(self, hardware_id="joylo")
            # buttons pressed through ~/press, applied one at a time by the loop (_press_events)
            self._presses: deque[tuple[str, int]] = deque(maxlen=32)
            self._press_down: tuple[str, int] | None = None  # down at the last tick: up at this one
            self.presses = 0
            self.last_press = ""
            self.create_subscription(String, "~/press", self._on_press, qos.COMMAND)
            self.joint_positions: dict[str, float] | None = None
            self.leader_seen = self.leader is None  # live arms: wait for one complete reading
            self.publishing = False
            self.tick_times: deque[float] = deque(maxlen=int(self.rate_hz * 2) + 2)
            self.max_period = 0.0
            self.overruns = 0
            self.commands = 0
            self.event_commands = 0  # published on a new leader reading between ticks
            self.event_reads = 0
            self._made_from: np.ndarray | None = None  # leader reading of the last command
            self._last_targets: np.ndarray | None = None  # targets of the last command
            self.replay_done = False
            self._announced = [False] * len(SIDES)
            self._last_diag = 0.0
            # WARN below 90 % of the rate for 3 s, OK again at >= 93 % for 3 s (3 Hz at 100 Hz)
            self.rate_alarm = RateAlarm(0.9 * self.rate_hz, 0.03 * self.rate_hz)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._loop, name="joylo_loop", daemon=True)
            self._thread.start()
            self.get_logger().info(
                f"input {self.input}{' ' + replay_file if replay_file else ''}, {self.rate_hz:.0f} Hz"
                f"{' + leader reads between ticks (event-driven)' if self.event_driven and self.leader else ''}, "
                f"leader {'from the log' if self.leader is None else ports}, haptics "
                f"{'on' if haptics.enabled and self.leader else 'off'}"
                f"{', recording ' + record_file if record_file else ''}")

        def _on_joint_states(self, msg):
            self.joint_positions = joint_state_to_dict(msg)

        def _on_press(self, msg):
            """A button press from the command line (std_msgs/String: "y", "plus", "+", ...)."""
            try:
                button = jc.press_button(msg.data, self.joy_config)
            except ValueError as exc:
                self.diag.reject("press", str(exc), component="joycon")
                self.get_logger().warning(f"~/press: {exc}")
                return
            if not self.publishing or self.replay_done:
                why = "the replay has finished" if self.replay_done else \
                    "not publishing yet (waiting for /joint_states or the leader arms)"
                self.diag.reject("press", f"{button[0]} ignored: {why}", component="joycon")
                self.get_logger().warning(f"~/press {button[0]} ignored: {why}")
                return
            self._presses.append(button)

        def _press_events(self) -> list[dict]:
            """This tick's events from ~/press: the last tick's button goes up, else the next
            queued button goes down (one press per two ticks, so every press is an edge)."""
            if self._press_down is not None:
                _, index = self._press_down
                self._press_down = None
                return [{"type": jc.BUTTON_UP, "button": index}]
            if not self._presses:
                return []
            name, index = self._press_down = self._presses.popleft()
            self.presses += 1
            self.last_press = name
            self.get_logger().info(f"button {name} pressed (~/press)")
            return [{"type": jc.BUTTON_DOWN, "button": index}]

        # -------------------------------------------------------------- the loop

        def _loop(self):
            period = 1.0 / self.rate_hz
            next_t = time.monotonic()
            last = None
            while not self._stop.is_set():
                now = time.monotonic()
                if last is not None:
                    self.max_period = max(self.max_period, now - last)
                last = now
                self.tick_times.append(now)
                try:
                    self._tick(now)
                except Exception as exc:  # report and keep the loop alive
                    self.get_logger().error(f"tick failed: {exc!r}", throttle_duration_sec=1.0)
                if now - self._last_diag >= 0.2:
                    self._last_diag = now
                    self._diagnostics(now)
                next_t += period
                delay = next_t - time.monotonic()
                if delay < 0:  # overrun: skip the missed ticks, keep the schedule's phase
                    self.overruns += 1
                    next_t += period * np.ceil(-delay / period)
                self._until(next_t)

        def _until(self, deadline: float):
            """Wait for the next tick; event-driven: read the leader meanwhile and publish changes."""
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= deadline:
                    return
                wake = deadline
                if self.event_driven and self._reads_between_ticks():
                    try:
                        self._read_between_ticks(now)
                    except Exception as exc:  # report and keep the loop alive
                        self.get_logger().error(f"leader read failed: {exc!r}", throttle_duration_sec=1.0)
                    wake = min(deadline, now + self.event_min_interval)
                self._stop.wait(max(0.0, wake - time.monotonic()))

        def _reads_between_ticks(self) -> bool:
            """Live leader arms, commands being published, and (replay) the next tick reads the live arms."""
            if self.leader is None or self._made_from is None or self.core.targets is None:
                return False
            if self.input == "joycon":
                return True
            return (self.tick_index < len(self.ticks)
                    and isinstance(self.ticks[self.tick_index].leader, str))

        def _read_between_ticks(self, now: float):
            """One read of both arms; a reading that differs from the last command's is published
            at once (JoyloCore.preview), unless the command would not change."""
            reading = self.leader.read(now)
            self.event_reads += 1
            leader = np.concatenate([reading.positions[s] if reading.positions[s] is not None
                                     else np.full(6, np.nan) for s in SIDES])
            if np.array_equal(leader, self._made_from, equal_nan=True):
                return
            self._made_from = leader
            targets = self.core.preview(leader)
            if np.array_equal(targets, self._last_targets):
                return
            self.cmd_pub.publish(tm.command_msg(targets, 1.0 / self.rate_hz))
            self._last_targets = targets
            self.commands += 1
            self.event_commands += 1

        def _inputs(self, now: float):
            """(events, leader 12 with NaN where unreadable | None when waiting) of this tick."""
            if self.input == "replay":
                if self.tick_index >= len(self.ticks):
                    if not self.replay_done:
                        self.replay_done = True
                        self.get_logger().info(f"replay finished ({len(self.ticks)} ticks)")
                    return None, None
                tick = self.ticks[self.tick_index]
                events = tick.events
                if not isinstance(tick.leader, str):
                    return events, tick.leader
            else:
                events = self.joycon.poll(now)
                if self.joycon.just_lost:
                    self.joycon.just_lost = False
                    events = events + self.core.release_events()
                    self.get_logger().warning(f"{self.joycon.error}: inputs released")
            reading = self.leader.read(now)
            self._reading = reading
            leader = np.concatenate([reading.positions[s] if reading.positions[s] is not None
                                     else np.full(6, np.nan) for s in SIDES])
            if not self.leader_seen:
                if not np.all(np.isfinite(leader)):
                    return None, None
                self.leader_seen = True
                self.get_logger().info("leader arms read: publishing commands")
            return events, leader

        def _tick(self, now: float):
            if self.core.targets is None:
                if self.joint_positions is None:
                    if self.leader is not None:
                        self.leader.connect(now)
                    return
                self.core.start(self.joint_positions)
            self._reading = None
            events, leader = self._inputs(now)
            if events is None:
                return
            if self.input == "replay":
                self.tick_index += 1
            pressed = self._press_events()
            joy_device = self.input == "replay" or self.joycon.connected
            if pressed and not joy_device and pressed[0]["type"] == jc.BUTTON_DOWN:
                # no Joy-Con stream on /joy: first the state before the press, since /joy readers
                # (the recorder's + / - / capture) take a first message as the baseline, not an edge
                self.joy_pub.publish(jc.to_joy_msg(self.core.state, self.joy_config,
                                                   stamp=self.get_clock().now()))
            if pressed:
                events = events + pressed  # after the device's own events of this tick
            targets, out = self.core.step(events, leader)
            self.cmd_pub.publish(tm.command_msg(targets, 1.0 / self.rate_hz))
            self._made_from = (np.full(12, np.nan) if leader is None
                               else np.asarray(leader, dtype=float).copy())
            self._last_targets = targets.copy()
            self.commands += 1
            self.publishing = True
            if joy_device or pressed:  # a shell press is published without a Joy-Con too
                self.joy_pub.publish(jc.to_joy_msg(self.core.state, self.joy_config,
                                                   stamp=self.get_clock().now()))
            if tm.ESTOP in out:
                self.estop_pub.publish(Bool(data=True))
                self.get_logger().warning("e-stop sent")
            if self.log is not None:
                self.log.write(now, events, leader, targets)
            if pressed and pressed[0]["type"] == jc.BUTTON_DOWN:  # tell `brs joylo press` at once
                self._diagnostics(now)
                self.diag.publish()
            if self._reading is not None and self.joint_positions is not None:
                self.leader.apply_haptics(self._reading, *self._haptic_references())

        def _haptic_references(self) -> tuple[dict, dict]:
            """(robot arm positions, lag deadband overrides) per side for the haptics. An engaged
            arm: its measured joints, the configured deadband. An arm waiting for alignment: its
            targets (what engaging compares the leader with) and a deadband of GUIDE_DEADBAND of
            the engage tolerance, so the spring brings the leader within the tolerance, not just
            within the deadband (the configured one may be wider)."""
            robot = {s: np.array([self.joint_positions.get(j, np.nan) for j in
                                  spec.GROUPS[f"{s}_arm"].joints]) for s in SIDES}
            targets = self.core.targets[tm.ARMS].reshape(len(SIDES), -1)
            deadband = {}
            for side in self.core.waiting():
                robot[side] = targets[SIDES.index(side)]
                deadband[side] = min(self.leader.haptics.lag_deadband,
                                     GUIDE_DEADBAND * self.core.engage_tolerance)
            return robot, deadband

        # -------------------------------------------------------------- diagnostics

        def _diagnostics(self, now: float):
            window = [t for t in self.tick_times if now - t <= 1.0]
            rate = len(window)
            loop = {"rate_hz": f"{rate:.0f}", "target_hz": f"{self.rate_hz:.0f}",
                    "max_period_ms": f"{self.max_period * 1e3:.1f}", "overruns": self.overruns,
                    "commands": self.commands, "publishing": self.publishing,
                    "event_driven": self.event_driven, "event_commands": self.event_commands,
                    "event_reads": self.event_reads}
            self.max_period = 0.0
            level = WARN if self.rate_alarm.update(now, rate) else OK
            self.diag.set_status("loop", level, f"{rate} Hz (target {self.rate_hz:.0f})"
                                 + ("" if self.publishing else "; waiting for /joint_states or the leader"),
                                 loop)
            self._leader_status()
            self._input_status()
            self._engage_status()

        def _leader_status(self):
            if self.leader is None:
                self.diag.set_status("leader", OK, f"replayed from {self.replay_file}", {})
                return
            values, down = {}, []
            for side, arm in self.leader.arms.items():
                st = arm.bus.stats
                values.update({f"{side}.port": arm.port, f"{side}.connected": arm.connected,
                               f"{side}.calibration": arm.cal.path, f"{side}.fault": arm.fault})
                values.update({f"{side}.bus.{k}": st.get(k, 0) for k in (
                    "transactions", "timeouts", "corrupt", "disconnects", "retries", "reconnects")})
                if not arm.connected:
                    down.append(f"{side} arm unreadable ({arm.fault})")
            if self.leader.haptics.enabled:
                for side in SIDES:
                    values[f"{side}.haptic_current_a"] = np.round(self.leader.last_current[side], 3).tolist()
                    values[f"{side}.haptic_reason"] = self.leader.last_reason[side].tolist()
            if down:
                self.diag.set_status("leader", ERROR, "; ".join(down) + "; holding its last arm "
                                     "targets, reconnecting", values)
            else:
                self.diag.set_status("leader", OK, "both leader arms read", values)

        def _engage_status(self):
            core = self.core
            if core.targets is None:
                return
            values = {f"{side}.engaged": bool(core.engaged[k]) for k, side in enumerate(SIDES)}
            values["engage_tolerance"] = core.engage_tolerance
            values["disengaged"] = core.disengaged
            for side in SIDES:  # leader - target per joint (6), and the largest
                values[f"{side}.mismatch_rad"] = np.round(core.arm_mismatch(side), 3).tolist()
                values[f"{side}.max_mismatch_rad"] = round(core.worst_mismatch(side)[1], 3)
            waiting = core.waiting()
            if core.disengaged:
                self.diag.set_status("engage", WARN, "disengaged by the operator: the arms hold; "
                                     "press Y to engage both", values)
            elif waiting:
                text = "; ".join(alignment_text(side, core.arm_mismatch(side), core.engage_tolerance)
                                 for side in waiting)
                self.diag.set_status("engage", WARN, f"{text} (tol {core.engage_tolerance:.2f})", values)
            else:
                self.diag.set_status("engage", OK, "both arms follow their leaders", values)
            for k, side in enumerate(SIDES):
                if core.engaged[k] and not self._announced[k]:
                    self._announced[k] = True
                    self.get_logger().info(f"{side} arm engaged: the robot follows its leader")
                elif not core.engaged[k] and self._announced[k]:
                    self._announced[k] = False
                    self.get_logger().info(f"{side} arm disengaged: its targets hold")

        def _input_status(self):
            presses = {"presses": self.presses, "last_press": self.last_press}  # ~/press (brs joylo press)
            if self.input == "replay":
                msg = (f"replay finished ({len(self.ticks)} ticks)" if self.replay_done else
                       f"replaying {self.tick_index}/{len(self.ticks)} ticks")
                self.diag.set_status("joycon", OK, msg, {"connected": False, "replay": True, **presses})
            elif self.joycon.connected:
                self.diag.set_status("joycon", OK, f"connected: {self.joycon.name}",
                                     {"connected": True, "alt_mode": self.core.alt_mode, **presses})
            else:
                self.diag.set_status("joycon", WARN, f"Joy-Con not connected ({self.joycon.error}); "
                                     "base and torso at rest, retrying; without one: brs joylo press "
                                     "BUTTON", {"connected": False, **presses})

        # -------------------------------------------------------------- shutdown

        def stop(self):
            self._stop.set()
            self._thread.join(timeout=2.0)
            if self.publishing and self.core.targets is not None:
                last = self.core.targets.copy()
                last[tm.BASE] = 0.0
                self.cmd_pub.publish(tm.command_msg(last, 1.0 / self.rate_hz))
                self.cmd_pub.wait_for_all_acked(Duration(seconds=0.5))  # delivered before exit
            if self.leader is not None:
                self.leader.close()
            if self.joycon is not None:
                self.joycon.close()
            if self.log is not None:
                self.log.close()

    return JoyloNode


def main(args=None):
    from brs_common.node_main import run_node

    from brs_control.dynamixel.calibration import CalibrationError

    node_class = _make_node()

    def make():
        return node_class()

    make.__name__ = "joylo"
    return run_node(make, args, on_stop=lambda node: node.stop(),
                    config_errors=(CalibrationError, JoyloLogError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
