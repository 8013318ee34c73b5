"""JoyLo leader arms: two 6-DoF Dynamixel kinematic twins read over the shared DynamixelBus.

One bus per arm (hardware/motors.yaml: chains `joylo_left`, `joylo_right`, one adapter each).
Each cycle is ONE sync read of position+velocity(+current) per arm; the calibration
(offset, sign per joint, see hardware/calibration/joylo_*.yaml) maps motor angles to the robot
joint each leader joint drives, clamped to the joint's limits (spec limits narrowed by the
calibration's `range`). Both arms -> 12 values, left arm then right arm (spec order).

Virtual haptics: the leader motors run in current-based position mode (Operating_Mode 5):
Goal_Current caps the force with which a motor pulls toward Goal_Position. `haptic_command` (pure)
picks per joint
  - lag:   the robot arm trails the leader by more than `deadband` -> spring toward the robot's
           measured position, current = lag_gain * (|error| - deadband);
  - limit: the leader is within `limit_margin` of the robot joint's limit -> spring toward the
           margin's edge, current = limit_gain * depth into the margin;
  - free:  otherwise Goal_Current = `free_current` (0: no torque), goal = where the leader is;
the stronger of lag and limit wins; currents are capped at `max_current`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from brs_common import robot_spec as spec
from brs_control.dynamixel import control_table as ct
from brs_control.dynamixel.bus import BusError, BusTimeout, DynamixelBus
from brs_control.dynamixel.calibration import (CalibrationError, ChainCalibration, calibration_dir,
                                               device_id_of, find_calibration, load_calibration)

SIDES = ("left", "right")
FREE, LAG, LIMIT = 0, 1, 2  # haptic reason per joint


def chain_name(side: str) -> str:
    return f"joylo_{side}"


def arm_joints(side: str) -> tuple[str, ...]:
    return spec.GROUPS[f"{side}_arm"].joints


ARM_JOINTS: tuple[str, ...] = arm_joints("left") + arm_joints("right")


# ----------------------------------------------------------------------------- haptics (pure)

@dataclass(frozen=True)
class HapticConfig:
    enabled: bool = True
    lag_deadband: float = 0.15  # rad of leader-robot difference that is still free
    lag_gain: float = 1.0  # A per rad beyond the deadband
    limit_margin: float = 0.15  # rad before a robot joint limit where resistance starts
    limit_gain: float = 2.0  # A per rad into the margin
    max_current: float = 0.35  # A (XL330-M288 stall ~1.5 A)
    free_current: float = 0.0  # A while free (0: no torque at all)

    def __post_init__(self):
        for name in ("lag_deadband", "lag_gain", "limit_margin", "limit_gain", "max_current",
                     "free_current"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"haptics: {name} must be a finite number >= 0, got {value}")
        if self.free_current > self.max_current:
            raise ValueError("haptics: free_current must not exceed max_current")


def haptic_command(leader, robot, lower, upper, config: HapticConfig = HapticConfig()):
    """Per joint (goal position, goal current A >= 0, reason FREE/LAG/LIMIT).

    `leader`: leader joint positions in robot joint units (before clamping); `robot`: the robot's
    measured positions (NaN where unknown: no lag force); `lower`/`upper`: the joint limits.
    """
    q = np.asarray(leader, dtype=float)
    r = np.asarray(robot, dtype=float)
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    known = np.isfinite(r)
    err = np.where(known, q - r, 0.0)
    lag_cur = config.lag_gain * np.maximum(np.abs(err) - config.lag_deadband, 0.0)
    lag_goal = np.where(known, r, q)
    edge_hi = hi - config.limit_margin
    edge_lo = lo + config.limit_margin
    depth = np.maximum(q - edge_hi, 0.0) + np.maximum(edge_lo - q, 0.0)
    limit_cur = config.limit_gain * depth
    limit_goal = np.clip(q, edge_lo, edge_hi)
    use_limit = (limit_cur >= lag_cur) & (limit_cur > 0)
    use_lag = ~use_limit & (lag_cur > 0)
    current = np.where(use_limit, limit_cur, np.where(use_lag, lag_cur, config.free_current))
    current = np.minimum(current, config.max_current)
    goal = np.where(use_limit, limit_goal, np.where(use_lag, lag_goal, q))
    reason = np.where(use_limit, LIMIT, np.where(use_lag, LAG, FREE)).astype(int)
    return goal, current, reason


# ----------------------------------------------------------------------------- calibration

class LeaderCalibrationError(CalibrationError):
    """Missing or mismatched leader calibration; the message names the file and the fix."""


def fix_hint(side: str, port: str) -> str:
    return f"run `brs calibrate joylo --side {side} --port {port}` (docs/teleop.md, JoyLo)"


def load_leader_calibration(side: str, port: str = "", file: str = "",
                            directory: str | Path | None = None) -> ChainCalibration:
    """The calibration of one leader arm, checked against this side's joints and, when the
    adapter has a /dev/serial/by-id name, against its device id."""
    directory = Path(directory) if directory else calibration_dir()
    if file:
        path = Path(file)
    else:
        found = find_calibration(port, directory, chain=chain_name(side)) if port else None
        if found is None:
            raise LeaderCalibrationError(
                f"no calibration for the {side} leader arm (port {port or '?'}) in {directory}: "
                + fix_hint(side, port or f"/dev/brs_joylo_{side}"))
        path = found
    if not path.is_file():
        raise LeaderCalibrationError(f"{path}: calibration file missing: "
                                     + fix_hint(side, port or f"/dev/brs_joylo_{side}"))
    cal = load_calibration(path)
    port = port or cal.port
    joints = arm_joints(side)
    if sorted(cal.joint_names) != sorted(joints):
        raise LeaderCalibrationError(
            f"{path}: has joints {list(cal.joint_names)} (ids {cal.ids}); the {side} leader arm "
            f"needs exactly {list(joints)}: wrong file or chain; " + fix_hint(side, port))
    cal = cal.for_joints(joints)
    device = device_id_of(port) if port else None
    if device and cal.device_id and device != cal.device_id:
        raise LeaderCalibrationError(
            f"{path}: made for adapter {cal.device_id!r}, but {port} is adapter {device!r} "
            "(another leader arm or a swapped cable): " + fix_hint(side, port))
    return cal


# ----------------------------------------------------------------------------- one arm

def who_answers(bus: DynamixelBus) -> dict[int, int]:
    """Every motor on the bus's line (the SDK's broadcast ping through the bus's own port and
    handler): id -> model number."""
    with bus._lock:
        data, _ = bus._call(bus._ph.broadcastPing, bus._require_port())
    return {int(i): int(v[0]) for i, v in data.items()}


class LeaderArm:
    """One leader chain: its bus, calibration, limits and reconnect state."""

    def __init__(self, side: str, calibration: ChainCalibration, port: str = "", *,
                 retries: int = 1, latency_timer_ms: float | None = None,
                 timeout_margin_ms: float = 2.0, backoff_min: float = 0.1, backoff_max: float = 2.0):
        self.side = side
        self.cal = calibration
        self.port = port or calibration.port
        self.bus = DynamixelBus(self.port, calibration.baudrate, calibration.ids,
                                calibration.motors(), retries=retries,
                                latency_timer_ms=latency_timer_ms, timeout_margin_ms=timeout_margin_ms)
        self.lower = np.array([j.lower for j in calibration.joints])
        self.upper = np.array([j.upper for j in calibration.joints])
        self.signs = np.array([j.sign for j in calibration.joints], dtype=float)
        self.connected = False
        self.ever_connected = False  # a later connect is a reconnect (bus.stats["reconnects"])
        self.haptics_on = False
        self.fault = ""  # why the arm is not readable ('' when it is)
        self.mismatch = ""  # a wrong chain on the port: not retried silently
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.backoff = backoff_min
        self.next_attempt = 0.0
        self._last_current: np.ndarray | None = None

    def connect(self, haptics: bool, scan: bool = False) -> None:
        """Open, ping (ids and models checked against the calibration), Return_Delay_Time 0,
        current-based position mode, goal := present, Goal_Current 0; torque on for haptics.
        Raises LeaderCalibrationError for a wrong chain, BusError when the bus is not there.
        `scan`: when no motor answers, a broadcast ping (~0.8 s) tells a wrong chain from a
        powered-off one."""
        bus = self.bus
        try:
            if self.ever_connected:
                bus.reconnect()  # open + ping, counted as a reconnect
            else:
                bus.open()
                bus.ping_all()
        except BusTimeout as exc:
            answered = [i for i in bus.ids if i not in exc.ids]
            if not answered and scan:
                answered = sorted(who_answers(bus))
            if answered:  # other ids answer: another chain (or a cable broken mid-chain)
                raise LeaderCalibrationError(
                    f"{self.cal.path}: motors {list(exc.ids)} do not answer on {self.port} but "
                    f"{answered} do: the chain does not match the calibration (or its cable is "
                    "broken after the last answering motor); " + fix_hint(self.side, self.port)) from exc
            raise
        expected = [ct.model_by_name(j.model).number for j in self.cal.joints]
        if [int(m) for m in bus.models] != expected:
            raise LeaderCalibrationError(
                f"{self.cal.path}: model numbers {[int(m) for m in bus.models]} on {self.port} differ "
                f"from the calibration's {expected}; " + fix_hint(self.side, self.port))
        bus.set_return_delay_time(0)
        bus.set_operating_mode(ct.MODE_CURRENT_BASED_POSITION, force_torque_off=True)
        bus.read_limits()
        bus.hold_present()
        bus.write_currents(np.zeros(bus.n))
        self._last_current = np.zeros(bus.n)
        bus.set_torque(haptics)
        self.haptics_on = haptics
        self.connected = self.ever_connected = True
        self.fault = ""
        self.mismatch = ""
        self.backoff = self.backoff_min

    def try_connect(self, haptics: bool, now: float, scan: bool = False) -> bool:
        """Connect unless backing off; on failure close and schedule the next attempt."""
        if self.connected:
            return True
        if now < self.next_attempt:
            return False
        try:
            self.connect(haptics, scan)
            return True
        except (BusError, LeaderCalibrationError) as exc:
            self.bus.close()
            self.fault = str(exc)
            if isinstance(exc, LeaderCalibrationError):
                self.mismatch = str(exc)
            self.next_attempt = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, self.backoff_max)
            return False

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(joint positions unclamped, velocities) in robot joint units: ONE sync read."""
        pos, vel, _ = self.bus.read_state()
        return pos, vel

    def write_haptics(self, goal, current) -> None:
        """Goal_Position then Goal_Current (two sync writes); both skipped while every current
        is and stays zero (no torque: the goal does not matter)."""
        current = np.asarray(current, dtype=float)
        if not current.any() and self._last_current is not None and not self._last_current.any():
            return
        self.bus.write_positions(np.clip(goal, self.lower, self.upper))
        # Goal_Current is a magnitude here: undo the bus's joint sign so the register is >= 0
        self.bus.write_currents(current * self.signs)
        self._last_current = current.copy()

    def lost(self, exc: BaseException) -> None:
        self.bus.close()
        self.connected = False
        self.fault = str(exc)
        self.backoff = self.backoff_min
        self.next_attempt = time.monotonic() + self.backoff_min

    def close(self, torque_off: bool = True) -> None:
        if self.connected and torque_off:
            try:
                self.bus.set_torque(False)
            except BusError:
                pass
        self.bus.close()
        self.connected = False


# ----------------------------------------------------------------------------- both arms

@dataclass
class LeaderReading:
    """One cycle: per side the clamped robot joint targets (None: unreadable this cycle)."""

    positions: dict[str, np.ndarray | None]
    raw: dict[str, np.ndarray | None]
    velocities: dict[str, np.ndarray | None]

    def arms(self) -> np.ndarray | None:
        """12 values (left arm, right arm) when both arms were read, else None."""
        if any(self.positions.get(s) is None for s in SIDES):
            return None
        return np.concatenate([self.positions[s] for s in SIDES])


class LeaderArms:
    """Both leader arms: read -> calibrated, clamped robot joint values; haptic writes.
    The arms' buses are served in parallel (one worker thread each): a cycle costs one bus
    transaction time, not two."""

    def __init__(self, arms: dict[str, LeaderArm], haptics: HapticConfig = HapticConfig()):
        self.arms = arms
        self.haptics = haptics
        self._pool = ThreadPoolExecutor(max_workers=len(arms), thread_name_prefix="leader_bus")
        self.last_reason = {s: np.zeros(6, dtype=int) for s in arms}
        self.last_current = {s: np.zeros(6) for s in arms}

    @classmethod
    def from_parameters(cls, ports: dict[str, str], files: dict[str, str] | None = None,
                        directory: str | Path | None = None, haptics: HapticConfig = HapticConfig(),
                        **bus_options) -> LeaderArms:
        files = files or {}
        arms = {}
        for side in SIDES:
            cal = load_leader_calibration(side, ports.get(side, ""), files.get(side, ""), directory)
            arms[side] = LeaderArm(side, cal, ports.get(side, "") or cal.port, **bus_options)
        return cls(arms, haptics)

    def connect(self, now: float | None = None, scan: bool = False) -> None:
        now = time.monotonic() if now is None else now
        for arm in self.arms.values():
            arm.try_connect(self.haptics.enabled, now, scan)

    def _read_one(self, arm: LeaderArm, now: float):
        if not arm.try_connect(self.haptics.enabled, now):
            return None
        try:
            return arm.read()
        except BusError as exc:
            arm.lost(exc)
            return None

    def read(self, now: float | None = None) -> LeaderReading:
        """Reconnect what is down (with backoff), then one sync read per connected arm."""
        now = time.monotonic() if now is None else now
        futures = {side: self._pool.submit(self._read_one, arm, now) for side, arm in self.arms.items()}
        pos, raw, vel = {}, {}, {}
        for side, future in futures.items():
            result = future.result()
            pos[side] = raw[side] = vel[side] = None
            if result is not None:
                raw[side], vel[side] = result
                pos[side] = np.clip(result[0], self.arms[side].lower, self.arms[side].upper)
        return LeaderReading(pos, raw, vel)

    def apply_haptics(self, reading: LeaderReading, robot: dict[str, np.ndarray | None],
                      lag_deadband: dict[str, float] | None = None) -> None:
        """Haptic goals for every readable arm; `robot[side]` = measured robot arm joints;
        `lag_deadband[side]`: that arm's lag deadband instead of the configured one (the engage
        step guides a leader closer than the deadband)."""
        if not self.haptics.enabled:
            return
        futures = []
        for side, arm in self.arms.items():
            q = reading.raw.get(side)
            if q is None or not arm.connected:
                continue
            measured = robot.get(side)
            measured = np.full(6, np.nan) if measured is None else measured
            config = self.haptics
            if lag_deadband and side in lag_deadband:
                config = replace(config, lag_deadband=lag_deadband[side])
            goal, current, reason = haptic_command(q, measured, arm.lower, arm.upper, config)
            futures.append(self._pool.submit(self._write_one, arm, goal, current))
            self.last_reason[side], self.last_current[side] = reason, current
        for future in futures:
            future.result()

    @staticmethod
    def _write_one(arm: LeaderArm, goal, current) -> None:
        try:
            arm.write_haptics(goal, current)
        except BusError as exc:
            arm.lost(exc)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for arm in self.arms.values():
            arm.close(torque_off=True)
