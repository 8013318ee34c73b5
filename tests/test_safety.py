"""Safety core (brs_control.safety): validation, limits over random command streams, arbitration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brs_common import robot_spec as spec
from brs_common import topics
from brs_control.safety import (BASE_INDEX, POSITION_INDEX, Arbiter, BaseLimiter, CommandRejected,
                                JointLimiter, braking_speed, check_stamp, validate_command)

DT = 1.0 / spec.CONTROL_RATE_HZ
ARM = list(spec.GROUPS["left_arm"].joints)


def _reason(names, positions, velocities, times, **kw) -> str:
    with pytest.raises(CommandRejected) as info:
        validate_command(names, positions, velocities, times, **kw)
    return info.value.reason


# ----------------------------------------------------------------------------- validation

def test_valid_subset_in_any_order_with_base_velocities():
    names = ["right_gripper_joint", "base_yaw", "left_arm_joint3", "base_x"]
    positions = [[0.02, 0.0, 0.1, 0.0], [0.03, 0.0, 0.2, 0.0]]
    velocities = [[0.0, 0.5, 0.0, 0.1], [0.0, 0.4, 0.0, 0.2]]
    cmd = validate_command(names, positions, velocities, [0.0, 0.1])
    assert [spec.ACTION_JOINTS[i] for i in cmd.idx] == names
    assert cmd.is_base.tolist() == [False, True, False, True]
    # position joints from positions, base joints from velocities
    assert cmd.values.tolist() == [[0.02, 0.5, 0.1, 0.1], [0.03, 0.4, 0.2, 0.2]]
    assert cmd.clamped == 0
    chunk = cmd.to_chunk(100.0)
    assert chunk.times.tolist() == pytest.approx([100.0, 100.1])
    assert chunk.linear_cols.tolist() == [False, True, False, True]


def test_base_only_command_may_leave_positions_empty():
    cmd = validate_command(["base_x", "base_y", "base_yaw"], [[]], [[0.1, 0.0, -0.2]], [0.0])
    assert cmd.values.tolist() == [[0.1, 0.0, -0.2]]
    assert cmd.slopes is None


@pytest.mark.parametrize("case, reason", [
    (dict(names=[], positions=[], velocities=[], times=[]), "empty"),
    (dict(names=ARM, positions=[], velocities=[], times=[]), "empty"),
    (dict(names=["left_arm_joint1", "elbow"], positions=[[0, 0]], velocities=[[]], times=[0]), "unknown_joint"),
    (dict(names=["left_arm_joint1"] * 2, positions=[[0, 0]], velocities=[[]], times=[0]), "duplicate_joint"),
    (dict(names=ARM, positions=[[0.0] * 5], velocities=[[]], times=[0]), "wrong_length"),
    (dict(names=ARM, positions=[[0.0] * 6, [0.0] * 5], velocities=[[], []], times=[0, 1]), "wrong_length"),
    (dict(names=ARM, positions=[[0.0] * 6], velocities=[[0.0] * 3], times=[0]), "wrong_length"),
    (dict(names=["base_x", "left_arm_joint1"], positions=[[0, 0]], velocities=[[]], times=[0]), "wrong_length"),
    (dict(names=ARM, positions=[[0.0, math.nan, 0, 0, 0, 0]], velocities=[[]], times=[0]), "non_finite"),
    (dict(names=ARM, positions=[[0.0] * 6], velocities=[[math.inf] + [0.0] * 5], times=[0]), "non_finite"),
    (dict(names=ARM, positions=[[0.0] * 6], velocities=[[]], times=[math.nan]), "non_finite"),
    (dict(names=ARM, positions=[[0.0] * 6] * 2, velocities=[[]] * 2, times=[0.2, 0.1]), "non_monotonic"),
    (dict(names=ARM, positions=[[0.0] * 6] * 2, velocities=[[]] * 2, times=[0.1, 0.1]), "non_monotonic"),
    (dict(names=ARM, positions=[[0.0] * 6], velocities=[[]], times=[-0.1]), "non_monotonic"),
    (dict(names=ARM, positions=[[0.0] * 6] * 3, velocities=[[]] * 3, times=[0, 1, 2], max_points=2),
     "too_many_points"),
])
def test_bad_commands_are_rejected_with_their_reason(case, reason):
    assert _reason(**case) == reason


def test_out_of_limit_values_are_clamped_and_counted():
    names = ["left_arm_joint4", "base_x", "left_gripper_joint"]
    cmd = validate_command(names, [[1.0, 0.0, 0.02]], [[9.0, -5.0, 0.0]], [0.0])
    lim = spec.JOINT_BY_NAME
    assert cmd.values.tolist() == [[lim["left_arm_joint4"].upper, -lim["base_x"].max_velocity, 0.02]]
    assert cmd.clamped == 2  # the velocity given for a position joint is ignored


def test_stamp_checks():
    check_stamp(99.8, 100.0, 0.5)
    check_stamp(100.3, 100.0, 0.5)
    with pytest.raises(CommandRejected, match="stale"):
        check_stamp(99.0, 100.0, 0.5)
    with pytest.raises(CommandRejected, match="future_stamp"):
        check_stamp(101.0, 100.0, 0.5)


# ----------------------------------------------------------------------------- limiters

def test_braking_speed_stops_exactly_within_the_distance():
    dv = 0.1
    for d in np.linspace(0.0, 0.5, 501):
        v = float(braking_speed(d, dv, DT))
        assert v <= d / DT + 1e-12
        travelled, speed = 0.0, v
        while speed > 0:
            travelled += speed * DT
            speed -= dv
        assert travelled <= d + 1e-12
        # and it is the largest such speed (a little faster would not stop in time)
        travelled, speed = 0.0, v + 1e-6
        while speed > 0:
            travelled += speed * DT
            speed -= dv
        assert travelled > d - 1e-9


def _joint_limiter(q0=None):
    p = POSITION_INDEX
    q0 = spec.HOME[p] if q0 is None else q0
    return JointLimiter(q0, spec.LOWER[p], spec.UPPER[p], spec.MAX_VELOCITY[p], spec.MAX_ACCELERATION[p], DT)


def _random_targets(rng, ticks: int) -> np.ndarray:
    """Jumps anywhere (also far outside the limits), holds, and fast sweeps."""
    p = POSITION_INDEX
    lo, hi = spec.LOWER[p], spec.UPPER[p]
    span = hi - lo
    out = np.empty((ticks, len(p)))
    target = spec.HOME[p].copy()
    for k in range(ticks):
        r = rng.random()
        if r < 0.02:
            target = rng.uniform(lo - 0.5 * span, hi + 0.5 * span)  # may be out of limits
        elif r < 0.04:
            target = np.where(rng.random(len(p)) < 0.5, lo, hi)  # at the limits
        elif r < 0.3:
            target = target + rng.normal(0, 0.05, len(p)) * span
        out[k] = target
    return out


@pytest.mark.parametrize("seed", range(5))
def test_joint_limits_never_exceeded_over_random_command_streams(seed):
    rng = np.random.default_rng(seed)
    lim = _joint_limiter()
    p = POSITION_INDEX
    lo, hi, vmax, amax = spec.LOWER[p], spec.UPPER[p], spec.MAX_VELOCITY[p], spec.MAX_ACCELERATION[p]
    q_prev, v_prev = lim.q.copy(), np.zeros(len(p))
    for target in _random_targets(rng, 3000):
        q = lim.step(target).copy()
        v = (q - q_prev) / DT
        assert np.all(q >= lo) and np.all(q <= hi)
        assert np.all(np.abs(q - q_prev) <= vmax * DT + 1e-12)
        assert np.all(np.abs(v - v_prev) <= amax * DT + 1e-9)
        assert np.allclose(lim.v, v, atol=1e-9)
        q_prev, v_prev = q, v
    assert lim.counts["target_clamped"] > 0 and lim.counts["velocity_limited"] > 0


def test_joint_limiter_reaches_a_target_exactly_at_rest_without_overshoot():
    lim = _joint_limiter()
    j = 0  # torso_joint1
    target = lim.q.copy()
    target[j] = lim.q[j] + 1.0
    trace = []
    for _ in range(400):
        trace.append(lim.step(target)[j])
    trace = np.array(trace)
    assert trace[-1] == pytest.approx(target[j], abs=1e-12)
    assert lim.v[j] == 0.0
    assert np.all(trace <= target[j] + 1e-12)  # no overshoot
    assert np.all(np.diff(trace) >= -1e-15)  # monotone
    # time optimal within a tick: 1 rad at 1 rad/s, 3 rad/s^2 -> 1/1 + 1/3 s
    arrival = np.argmax(np.abs(trace - target[j]) < 1e-12) * DT
    assert arrival == pytest.approx(1.0 + 1.0 / 3.0, abs=3 * DT)


def test_joint_limiter_brakes_before_a_limit_while_the_target_runs_past_it():
    lim = _joint_limiter()
    j = 0
    hi = spec.UPPER[POSITION_INDEX][j]
    target = lim.q.copy()
    for k in range(600):  # a target sweeping at the velocity limit straight through the upper limit
        target[j] = min(lim.q[j] + 5.0, 10.0)
        q = lim.step(target)
        assert q[j] <= hi
    assert q[j] == pytest.approx(hi) and lim.v[j] == 0.0


def test_hold_jumps_to_a_pose_at_rest():
    lim = _joint_limiter()
    target = lim.q + 0.5
    for _ in range(20):
        lim.step(target)
    assert np.any(lim.v != 0)
    lim.hold(spec.HOME[POSITION_INDEX])
    p = POSITION_INDEX
    assert np.array_equal(lim.q, np.clip(spec.HOME[p], spec.LOWER[p], spec.UPPER[p]))
    assert not np.any(lim.v)


def test_base_limiter_velocity_and_acceleration_over_random_streams():
    rng = np.random.default_rng(7)
    b = BASE_INDEX
    lim = BaseLimiter(spec.MAX_VELOCITY[b], spec.MAX_ACCELERATION[b], DT)
    v_prev = np.zeros(3)
    for _ in range(3000):
        target = rng.uniform(-2, 2, 3) if rng.random() < 0.05 else v_prev + rng.normal(0, 0.05, 3)
        v = lim.step(target).copy()
        assert np.all(np.abs(v) <= spec.MAX_VELOCITY[b] + 1e-12)
        assert np.all(np.abs(v - v_prev) <= spec.MAX_ACCELERATION[b] * DT + 1e-12)
        v_prev = v
    assert not np.any(lim.stop())  # the watchdog/e-stop stop is immediate


# ----------------------------------------------------------------------------- arbitration

def test_arbiter_priority_freshness_and_chunk_horizon():
    arb = Arbiter(topics.COMMAND_SOURCES, "policy", command_timeout=0.2, max_chunk_horizon=2.0)
    assert arb.select(0.0) is None  # nothing received: watchdog state
    arb.touch("policy", 1.0)
    assert arb.select(1.1) == "policy" and arb.select(1.2) == "policy"
    assert arb.select(1.2001) is None  # stale after command_timeout
    arb.touch("policy", 2.0, chunk_end=2.8)  # a chunk keeps its source fresh to its end
    assert arb.select(2.75) == "policy" and arb.select(2.81) is None
    arb.touch("policy", 3.0, chunk_end=60.0)  # ... but not beyond max_chunk_horizon
    assert arb.select(4.9) == "policy" and arb.select(5.01) is None
    arb.touch("policy", 10.0)
    arb.touch("teleop", 10.05)  # higher priority preempts
    assert arb.select(10.1) == "teleop"
    assert arb.select(10.26) is None  # policy stale too
    arb.touch("policy", 10.3)
    arb.touch("demo", 10.3)  # lower priority than the active one: never in control
    assert not arb.competes("demo")
    assert arb.select(10.31) == "policy"
    arb.touch("estop", 10.32)
    assert arb.select(10.33) == "estop"
    arb.set_active("demo")
    arb.expire_all()
    assert arb.select(10.33) is None
    with pytest.raises(ValueError):
        arb.set_active("joystick")


@pytest.mark.parametrize("seed", range(3))
def test_limits_hold_with_feedforward_and_stop_points_too(seed):
    rng = np.random.default_rng(100 + seed)
    lim = _joint_limiter()
    p = POSITION_INDEX
    lo, hi, vmax, amax = spec.LOWER[p], spec.UPPER[p], spec.MAX_VELOCITY[p], spec.MAX_ACCELERATION[p]
    q_prev, v_prev = lim.q.copy(), np.zeros(len(p))
    targets = _random_targets(rng, 3000)
    for target in targets:
        ff = rng.normal(0, 2.0, len(p)) * vmax  # nonsense feed-forward must not break the limits
        stop = target + rng.normal(0, 0.3, len(p))
        q = lim.step(target, ff, stop).copy()
        v = (q - q_prev) / DT
        assert np.all(q >= lo) and np.all(q <= hi)
        assert np.all(np.abs(q - q_prev) <= vmax * DT + 1e-12)
        assert np.all(np.abs(v - v_prev) <= amax * DT + 1e-9)
        q_prev, v_prev = q, v


def _follow_ramp(feedforward: bool, ticks: int = 120, speed: float = 0.5):
    """A target ramping at `speed` for `ticks` ticks then stopping dead: (lag in the middle of the
    ramp, overshoot past the final point)."""
    lim = _joint_limiter()
    j = POSITION_INDEX.tolist().index(spec.ACTION_JOINTS.index("left_arm_joint1"))
    start = lim.q[j]
    final = start + speed * ticks * DT
    target, ff, stop = lim.q.copy(), np.zeros(len(lim.q)), lim.q.copy()
    lag, peak = None, -np.inf
    for k in range(1, ticks + 150):
        moving = k <= ticks
        target[j] = start + speed * min(k, ticks) * DT
        ff[j] = speed if moving else 0.0
        stop[j] = final
        q = lim.step(target, ff, stop) if feedforward else lim.step(target)
        if k == ticks // 2:
            lag = target[j] - q[j]
        peak = max(peak, q[j])
    assert q[j] == pytest.approx(final, abs=1e-12) and lim.v[j] == 0.0
    return lag, peak - final


def test_feedforward_follows_a_moving_target_without_lag_or_overshoot():
    lag_ff, over_ff = _follow_ramp(True)
    lag_fb, over_fb = _follow_ramp(False)
    assert abs(lag_ff) < 1e-9  # exactly on the moving target
    assert lag_fb > 0.005  # braking-only tracking lags (here 0.01 rad: v^2/(2 amax) less a tick)
    assert over_ff <= 1e-12 and over_fb <= 1e-12  # neither overshoots the end of the motion


def _stream(tfs: float, rate: float = 50.0, seconds: float = 3.0) -> float:
    """A source streaming a 0.5 Hz sine (peak 0.94 rad/s) as single-point commands; the largest
    distance between the commanded joint and the controller's reference after the first second."""
    from brs_control.trajectory import Reference

    j = spec.ACTION_JOINTS.index("left_arm_joint1")
    p = POSITION_INDEX
    q0 = spec.HOME.copy()
    ref, lim = Reference(q0), _joint_limiter(q0[p])
    col = p.tolist().index(j)
    worst, next_send = 0.0, 0.0
    for k in range(int(seconds / DT)):
        t = k * DT
        if t >= next_send - 1e-9:
            cmd = validate_command(["left_arm_joint1"], [[0.3 * math.sin(math.pi * t)]], [[]], [tfs])
            chunk = cmd.to_chunk(t)
            chunk.rest_at_end = chunk.end - t > 0.2  # as the controller decides (command_timeout)
            ref.install(chunk, t)
            next_send += 1.0 / rate
        ref.sample(t)
        q = lim.step(ref.value[p], ref.velocity[p], ref.stop[p])
        if t > 1.0:
            worst = max(worst, abs(q[col] - ref.value[j]))
    return worst


def test_streams_with_time_from_start_one_period_are_followed_exactly():
    assert _stream(tfs=0.02) < 1e-9  # interpolated towards each sample: lag-free feed-forward
    assert _stream(tfs=0.0) > 0.02  # jumps: the limiter can only brake towards each new sample
