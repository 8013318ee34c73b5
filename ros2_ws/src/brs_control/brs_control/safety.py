"""Safety core of the whole-body controller: pure numpy, no ROS.

- `validate_command`: a JointTrajectory's content (names, per-point positions/velocities,
  time_from_start) -> a `Command` in spec units, or `CommandRejected(reason, detail)`.
  Out-of-limit values are clamped (and counted), everything else that is malformed is rejected.
- `check_stamp`: stale / future header stamps.
- `JointLimiter`: per-tick position command for the position joints that never leaves
  [LOWER, UPPER], never moves faster than MAX_VELOCITY and never changes velocity faster than
  MAX_ACCELERATION (it brakes ahead of targets and of the position limits).
- `BaseLimiter`: base twist with velocity and acceleration limits; `stop()` zeroes it at once.
- `Arbiter`: which command source is in control (priority + freshness).

Command convention (see docs/controller.md): `joint_names` is any subset of spec.ACTION_JOINTS in
any order; position joints take their targets from each point's `positions`; the virtual base
joints (base_x, base_y, base_yaw) take their velocities from each point's `velocities`. The
other entries (positions of base joints, velocities of position joints) are ignored but must be
finite, so a 21-D action can be sent as-is in both fields.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brs_common import robot_spec as spec

from .trajectory import Chunk

# Rejection reasons (the diagnostics keys are "rejected.<reason>").
REASONS = (
    "empty",  # no joint names or no points
    "too_many_points",  # more points than max_points
    "unknown_joint",  # a name that is not in spec.ACTION_JOINTS
    "duplicate_joint",  # a name given twice
    "wrong_length",  # positions/velocities per point do not match joint_names
    "non_finite",  # NaN or inf anywhere
    "non_monotonic",  # time_from_start negative or not strictly increasing
    "stale",  # header stamp older than max_command_age
    "future_stamp",  # header stamp more than max_command_age in the future
)
CLAMPED = "clamped"  # not a rejection: values outside the limits were clamped and used

_INDEX = {name: i for i, name in enumerate(spec.ACTION_JOINTS)}
IS_BASE = np.array([j.velocity_controlled for j in spec.JOINTS])
POSITION_INDEX = np.flatnonzero(~IS_BASE)
BASE_INDEX = np.flatnonzero(IS_BASE)


class CommandRejected(ValueError):
    """A command that must not be executed; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Command:
    """A validated command, times relative to its start (header stamp or receipt)."""

    idx: np.ndarray  # (n,) action indices
    times: np.ndarray  # (K,) seconds from start, >= 0, strictly increasing
    values: np.ndarray  # (K, n) positions (position joints) / velocities (base joints), clamped
    slopes: np.ndarray | None  # (K, n) knot slopes for cubic interpolation (None: estimated)
    is_base: np.ndarray  # (n,) bool
    clamped: int  # how many values were clamped into the limits

    def to_chunk(self, start: float) -> Chunk:
        """The command in absolute time, starting at `start` (seconds on the controller clock)."""
        return Chunk(self.idx, start + self.times, self.values, self.slopes, self.is_base.copy())


def validate_command(names: Sequence[str], positions: Sequence[Sequence[float]],
                     velocities: Sequence[Sequence[float]], times: Sequence[float],
                     max_points: int = 256) -> Command:
    """Check and convert one trajectory; raises CommandRejected for anything not executable."""
    names = list(names)
    n, k = len(names), len(times)
    if n == 0 or k == 0:
        raise CommandRejected("empty", f"{n} joint names, {k} points")
    if k > max_points:
        raise CommandRejected("too_many_points", f"{k} points > max_points {max_points}")
    unknown = [name for name in names if name not in _INDEX]
    if unknown:
        raise CommandRejected("unknown_joint", f"{unknown}")
    if len(set(names)) != n:
        dup = sorted({name for name in names if names.count(name) > 1})
        raise CommandRejected("duplicate_joint", f"{dup}")
    if len(positions) != k or len(velocities) != k:
        raise CommandRejected("wrong_length", "points disagree in count")
    idx = np.fromiter((_INDEX[name] for name in names), dtype=np.intp, count=n)
    is_base = IS_BASE[idx]
    pos_lens = {len(p) for p in positions}
    vel_lens = {len(v) for v in velocities}
    if pos_lens != {n} and not (is_base.all() and pos_lens == {0}):
        raise CommandRejected("wrong_length", f"positions per point {sorted(pos_lens)}, joint_names {n}")
    if vel_lens not in ({0}, {n}):
        raise CommandRejected("wrong_length", f"velocities per point {sorted(vel_lens)}, expected 0 or {n}")
    if is_base.any() and vel_lens != {n}:
        raise CommandRejected("wrong_length", "base joints need their velocities in every point's `velocities`")

    t = np.asarray(times, dtype=np.float64).reshape(-1)
    pos = np.zeros((k, n)) if pos_lens == {0} else np.asarray(positions, dtype=np.float64).reshape(k, n)
    vel = None if vel_lens == {0} else np.asarray(velocities, dtype=np.float64).reshape(k, n)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(pos)) and (vel is None or np.all(np.isfinite(vel)))):
        raise CommandRejected("non_finite", "NaN or inf in positions, velocities or time_from_start")
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        raise CommandRejected("non_monotonic", f"time_from_start must be >= 0 and strictly increasing: {t.tolist()}")

    raw = pos if vel is None else np.where(is_base, vel, pos)
    # For the base joints spec LOWER/UPPER are -/+ max speed, so one clip serves both kinds.
    values = np.clip(raw, spec.LOWER[idx], spec.UPPER[idx])
    clamped = int(np.count_nonzero(values != raw))
    return Command(idx, t, values, None, is_base, clamped)


def check_stamp(stamp: float, now: float, max_age: float) -> None:
    """Reject a header stamp more than `max_age` seconds before or after `now`."""
    age = now - stamp
    if age > max_age:
        raise CommandRejected("stale", f"stamped {age:.3f} s ago > max_command_age {max_age}")
    if age < -max_age:
        raise CommandRejected("future_stamp", f"stamped {-age:.3f} s in the future > max_command_age {max_age}")


# ----------------------------------------------------------------------------- limiters

def braking_speed(distance, dv: float | np.ndarray, dt: float) -> np.ndarray:
    """Largest speed from which braking by `dv` per tick stops within `distance` (discrete time).

    Moving at v for one tick then at v-dv, v-2dv, ... covers dt*(v + (v-dv) + ...). The largest v
    whose stopping distance (this tick included) is <= distance: with E = distance/(dt*dv),
    n = floor(sqrt(1/4 + 2E) - 1/2), v = (n + E/(n+1) - n/2) * dv. Never more than distance/dt,
    so a joint on this curve reaches its target exactly and at rest.
    """
    e = np.maximum(np.asarray(distance, dtype=np.float64), 0.0) / (dt * dv)
    n = np.floor(np.sqrt(0.25 + 2.0 * e) - 0.5)
    f = np.minimum(np.maximum(e / (n + 1.0) - 0.5 * n, 0.0), 1.0)
    return (n + f) * dv


class JointLimiter:
    """Rate-limits position commands: |dq| <= vmax*dt, |dv| <= amax*dt, LOWER <= q <= UPPER.

    Each tick it heads for the (clamped) target as fast as allowed while staying on the braking
    curve of the target and of both position limits, so it arrives at a fixed target at rest
    without overshoot and cannot run into a limit. An optional feed-forward velocity (the
    reference's own velocity) is added to the braking speed so a moving target is followed without
    lag; with it, an optional `stop` (where the moving target will come to rest or turn back; NaN =
    unknown) keeps the joint on the braking curve of that point too, so it does not overshoot the
    end of a motion. Without a stop point a target that stops dead is overshot by at most
    v^2/(2 amax), within the position limits, and then reached.
    State: commanded position q and velocity v (v = 0 at start).
    """

    def __init__(self, q0, lower, upper, vmax, amax, dt: float):
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        self.vmax = np.asarray(vmax, dtype=np.float64)
        self.dv = np.asarray(amax, dtype=np.float64) * dt
        self.dt = float(dt)
        self.q = np.clip(np.asarray(q0, dtype=np.float64), self.lower, self.upper)
        self.v = np.zeros_like(self.q)
        self.counts: Counter = Counter()

    def hold(self, q) -> None:
        """Command `q` (clamped) at rest from now on: used for the e-stop (a jump by design)."""
        self.q = np.clip(np.asarray(q, dtype=np.float64), self.lower, self.upper)
        self.v = np.zeros_like(self.q)

    def step(self, target, feedforward=None, stop=None) -> np.ndarray:
        """Next commanded position towards `target` (moving at `feedforward`, coming to rest at `stop`).

        Returns the internal array (do not modify).
        """
        lo, hi, vmax, dt, dv = self.lower, self.upper, self.vmax, self.dt, self.dv
        target = np.asarray(target, dtype=np.float64)
        t = np.minimum(np.maximum(target, lo), hi)
        outside = t != target
        if outside.any():
            self.counts["target_clamped"] += int(np.count_nonzero(outside))
        q, v = self.q, self.v
        if feedforward is None:
            ff = 0.0
            e_rel = t - q
        else:
            # In the frame moving with the target: t - q includes this tick's target motion ff*dt.
            ff = np.where(outside, 0.0, feedforward)
            e_rel = t - q - ff * dt
        # One vectorised braking-curve evaluation: target, upper limit, lower limit, stop point.
        d = np.empty((4, len(q)))
        np.abs(e_rel, out=d[0])
        np.subtract(hi, q, out=d[1])
        np.subtract(q, lo, out=d[2])
        if stop is not None:  # NaN entries: no stop point
            has_stop = np.isfinite(stop)
            np.subtract(np.minimum(np.maximum(np.where(has_stop, stop, q), lo), hi), q, out=d[3])
            d_stop = d[3].copy()
            np.abs(d[3], out=d[3])
        else:
            d[3] = 0.0
        b = braking_speed(d, dv, dt)
        v_des = ff + np.sign(e_rel) * b[0]
        v_des = np.minimum(np.maximum(v_des, -vmax), vmax)
        if np.any(np.abs(v_des) >= vmax):
            self.counts["velocity_limited"] += 1
        if stop is not None:  # never faster towards the stop point than one can stop there
            capped = np.where(d_stop >= 0, np.minimum(v_des, b[3]), np.maximum(v_des, -b[3]))
            v_des = np.where(has_stop, capped, v_des)
        v_new = np.minimum(np.maximum(v_des, v - dv), v + dv)
        if np.any(v_new != v_des):
            self.counts["acceleration_limited"] += 1
        # Stay on the braking curves of both position limits (-b[2] <= 0 <= b[1]).
        limited = np.minimum(np.maximum(v_new, -b[2]), b[1])
        if np.any(limited != v_new):
            self.counts["limit_braking"] += 1
        limited = np.minimum(np.maximum(limited, -vmax), vmax)
        self.q = np.minimum(np.maximum(q + limited * dt, lo), hi)
        self.v = limited
        return self.q


class BaseLimiter:
    """Base twist (vx, vy, wz) with |v| <= vmax and |dv| <= amax*dt per tick; stop() is immediate."""

    def __init__(self, vmax, amax, dt: float):
        self.vmax = np.asarray(vmax, dtype=np.float64)
        self.dv = np.asarray(amax, dtype=np.float64) * dt
        self.v = np.zeros_like(self.vmax)
        self.counts: Counter = Counter()

    def stop(self) -> np.ndarray:
        """Zero twist now (watchdog, e-stop): bypasses the acceleration limit on purpose."""
        self.v = np.zeros_like(self.vmax)
        return self.v

    def step(self, target) -> np.ndarray:
        target = np.asarray(target, dtype=np.float64)
        t = np.clip(target, -self.vmax, self.vmax)
        if np.any(t != target):
            self.counts["target_clamped"] += 1
        v_new = np.clip(t, self.v - self.dv, self.v + self.dv)
        if np.any(v_new != t):
            self.counts["acceleration_limited"] += 1
        self.v = v_new
        return self.v


# ----------------------------------------------------------------------------- arbitration

class Arbiter:
    """Which command source is in control.

    `sources` are in priority order, highest first. The active source and every source of higher
    priority compete; the highest-priority *fresh* one is in control; lower-priority sources are
    ignored. A source is fresh until `command_timeout` after its last valid command was received,
    or until the end of that command's chunk if later, but never longer than `max_chunk_horizon`
    after receipt.
    """

    def __init__(self, sources: Sequence[str], active: str, command_timeout: float,
                 max_chunk_horizon: float):
        self.sources = tuple(sources)
        self.command_timeout = float(command_timeout)
        self.max_chunk_horizon = float(max_chunk_horizon)
        self.deadline = dict.fromkeys(self.sources, -math.inf)
        self.active = ""
        self.set_active(active)

    def set_active(self, source: str) -> None:
        if source not in self.sources:
            raise ValueError(f"unknown source {source!r}; expected one of {self.sources}")
        self.active = source

    def priority(self, source: str) -> int:
        """0 is the highest priority."""
        return self.sources.index(source)

    def competes(self, source: str) -> bool:
        """Whether `source` may take control at all (the active one or a higher priority)."""
        return self.priority(source) <= self.priority(self.active)

    def touch(self, source: str, receipt: float, chunk_end: float = -math.inf) -> float:
        """Record a valid command; returns the source's new freshness deadline."""
        hold = max(self.command_timeout, min(chunk_end - receipt, self.max_chunk_horizon))
        self.deadline[source] = receipt + hold
        return self.deadline[source]

    def fresh(self, source: str, now: float) -> bool:
        return now <= self.deadline[source]

    def select(self, now: float) -> str | None:
        """The source in control at `now`, or None (no fresh command: watchdog)."""
        for source in self.sources[: self.priority(self.active) + 1]:
            if now <= self.deadline[source]:
                return source
        return None

    def expire_all(self) -> None:
        """Forget every command (after an e-stop reset sources must command afresh)."""
        for source in self.deadline:
            self.deadline[source] = -math.inf
