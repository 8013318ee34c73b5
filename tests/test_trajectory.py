"""Chunk interpolation (brs_control.trajectory): values at known times, anchors, holds, cubic shape."""

from __future__ import annotations

import numpy as np
import pytest

from brs_common import robot_spec as spec
from brs_control.trajectory import (CUBIC, LINEAR, Chunk, Reference, interp_hermite, interp_linear,
                                    pchip_slopes)

J1 = spec.ACTION_JOINTS.index("left_arm_joint1")
J2 = spec.ACTION_JOINTS.index("left_arm_joint2")
BX = spec.ACTION_JOINTS.index("base_x")


def test_linear_values_at_known_times():
    times = np.array([1.0, 2.0, 4.0])
    values = np.array([[0.0, 10.0], [1.0, 20.0], [-1.0, 20.0]])
    assert interp_linear(times, values, 0.0).tolist() == [0.0, 10.0]  # before: first point
    assert interp_linear(times, values, 1.0).tolist() == [0.0, 10.0]
    assert interp_linear(times, values, 1.25).tolist() == [0.25, 12.5]
    assert interp_linear(times, values, 2.0).tolist() == [1.0, 20.0]
    assert interp_linear(times, values, 3.0).tolist() == [0.0, 20.0]
    assert interp_linear(times, values, 9.0).tolist() == [-1.0, 20.0]  # after: hold the last


def test_hermite_hits_knots_with_given_slopes():
    times = np.array([0.0, 0.5, 1.5])
    values = np.array([[0.0], [1.0], [0.5]])
    slopes = np.array([[0.0], [2.0], [-1.0]])
    for t, v in zip(times, values):
        assert interp_hermite(times, values, slopes, t) == pytest.approx(v)
    eps = 1e-6
    f = lambda t: interp_hermite(times, values, slopes, t)[0]  # noqa: E731
    assert (f(0.5 + eps) - f(0.5 - eps)) / (2 * eps) == pytest.approx(2.0, abs=1e-4)
    assert (f(eps) - f(0.0)) / eps == pytest.approx(0.0, abs=1e-4)
    assert (f(1.5) - f(1.5 - eps)) / eps == pytest.approx(-1.0, abs=1e-4)


def test_pchip_never_overshoots_its_knots():
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = rng.integers(3, 10)
        times = np.cumsum(rng.uniform(0.01, 0.3, k))
        values = rng.uniform(-1, 1, (k, 3))
        slopes = pchip_slopes(times, values)
        ts = np.linspace(times[0], times[-1], 400)
        samples = np.array([interp_hermite(times, values, slopes, t) for t in ts])
        seg = np.clip(np.searchsorted(times, ts, side="right") - 1, 0, k - 2)
        lo = np.minimum(values[seg], values[seg + 1]) - 1e-12
        hi = np.maximum(values[seg], values[seg + 1]) + 1e-12
        assert np.all((samples >= lo) & (samples <= hi))


def test_reference_anchor_interpolation_and_hold():
    ref = Reference(np.zeros(spec.ACTION_DIM))
    ref.value[J1] = 0.5
    chunk = Chunk([J1], times=[10.2, 10.4], values=[[1.0], [2.0]])
    ref.install(chunk, now=10.0)
    assert ref.sample(10.0)[J1] == pytest.approx(0.5)  # anchor: where the reference was
    assert ref.sample(10.1)[J1] == pytest.approx(0.75)
    assert ref.sample(10.2)[J1] == pytest.approx(1.0)
    assert ref.sample(10.3)[J1] == pytest.approx(1.5)
    assert ref.busy
    assert ref.sample(10.5)[J1] == pytest.approx(2.0)  # after the end: hold the last point
    assert not ref.busy
    assert ref.sample(20.0)[J1] == pytest.approx(2.0)
    assert np.count_nonzero(ref.value) == 1  # other joints untouched


def test_reference_without_anchor_when_the_chunk_started_in_the_past():
    ref = Reference(np.zeros(spec.ACTION_DIM))
    chunk = Chunk([J1], times=[9.0, 11.0], values=[[0.0], [2.0]])  # stamped in the past
    ref.install(chunk, now=10.0)
    assert ref.sample(10.0)[J1] == pytest.approx(1.0)  # mid-chunk, no anchor at the old value
    assert ref.sample(10.5)[J1] == pytest.approx(1.5)


def test_newer_chunk_takes_over_only_the_joints_it_names():
    ref = Reference(np.zeros(spec.ACTION_DIM))
    ref.install(Chunk([J1, J2], times=[0.0, 1.0], values=[[0.0, 0.0], [1.0, 1.0]]), now=0.0)
    assert ref.sample(0.5)[[J1, J2]].tolist() == pytest.approx([0.5, 0.5])
    ref.install(Chunk([J2], times=[0.5, 1.0], values=[[0.5], [-1.0]]), now=0.5)
    out = ref.sample(0.75)
    assert out[J1] == pytest.approx(0.75)  # still the first chunk
    assert out[J2] == pytest.approx(-0.25)  # the second chunk
    ref.clear()
    assert ref.sample(5.0)[[J1, J2]].tolist() == pytest.approx([0.75, -0.25])  # cleared: holds


def test_cubic_reference_is_smooth_and_base_columns_stay_linear():
    ref = Reference(np.zeros(spec.ACTION_DIM), interpolation=CUBIC)
    times = np.array([0.1, 0.2, 0.3, 0.4])
    chunk = Chunk([J1, BX], times=times, values=[[0.1, 0.1], [0.3, 0.2], [0.4, 0.2], [0.4, 0.0]],
                  linear_cols=np.array([False, True]))
    ref.install(chunk, now=0.0, velocity=np.zeros(spec.ACTION_DIM))
    ts = np.arange(0.0, 0.5, 0.001)
    out = np.array([ref.sample(t)[[J1, BX]].copy() for t in ts])
    for t, (p, b) in zip(times, chunk.values):
        i = int(round(t / 0.001))
        assert out[i] == pytest.approx([p, b], abs=1e-9)  # knots are hit
    # base velocity is linear between knots: exact midpoint values
    assert out[150, 1] == pytest.approx(0.15)
    # position: C1 (no velocity jumps), monotone (PCHIP), at rest at the end
    vel = np.diff(out[:, 0]) / 0.001
    assert np.max(np.abs(np.diff(vel))) < 0.2
    assert np.all(np.diff(out[:, 0]) >= -1e-12)
    assert abs(vel[-1]) < 1e-9


def test_cubic_uses_given_velocities_as_slopes():
    ref = Reference(np.zeros(spec.ACTION_DIM), interpolation=CUBIC)
    slopes = np.array([[0.0], [3.0], [0.0]])
    chunk = Chunk([J1], times=[0.0, 0.5, 1.0], values=[[0.0], [1.0], [1.0]], slopes=slopes)
    ref.install(chunk, now=0.0)
    eps = 1e-5
    d = (ref.sample(0.5 + eps)[J1] - ref.sample(0.5 - eps)[J1]) / (2 * eps)
    assert d == pytest.approx(3.0, abs=1e-3)


def test_linear_is_the_default_and_interpolation_is_checked():
    assert Reference(np.zeros(3)).interpolation == LINEAR
    with pytest.raises(ValueError):
        Reference(np.zeros(3), interpolation="quintic")
    with pytest.raises(ValueError):
        Chunk([J1], times=[0.2, 0.1], values=[[0.0], [1.0]])


def test_turning_knots_velocity_and_stop_points():
    from brs_control.trajectory import turning_knots

    values = np.array([[0.0], [1.0], [2.0], [2.0], [1.0], [0.5]])
    assert turning_knots(values)[:, 0].tolist() == [2, 2, 3, 5, 5]
    ref = Reference(np.zeros(spec.ACTION_DIM))
    ref.install(Chunk([J1], times=np.arange(6) * 0.1 + 1.0, values=values), now=1.0)
    ref.sample(1.05)
    assert ref.velocity[J1] == pytest.approx(10.0) and ref.stop[J1] == 2.0  # rising to 2.0
    ref.sample(1.25)
    assert ref.velocity[J1] == 0.0 and ref.stop[J1] == 2.0  # flat
    ref.sample(1.35)
    assert ref.velocity[J1] == pytest.approx(-10.0) and ref.stop[J1] == 0.5  # falling to the end
    ref.sample(2.0)
    assert ref.velocity[J1] == 0.0 and ref.stop[J1] == 0.5 == ref.value[J1]  # holding
    assert ref.stop[J2] == ref.value[J2] and ref.velocity[J2] == 0.0  # joints without a chunk


def test_streaming_samples_have_no_stop_point_at_their_end():
    ref = Reference(np.zeros(spec.ACTION_DIM))
    chunk = Chunk([J1], times=[1.02], values=[[0.1]], rest_at_end=False)
    ref.install(chunk, now=1.0)
    ref.sample(1.01)
    assert np.isnan(ref.stop[J1]) and ref.velocity[J1] == pytest.approx(5.0)
    ref.sample(1.03)  # over: holds, and the held value is its own stop point
    assert ref.stop[J1] == ref.value[J1] == pytest.approx(0.1)
