"""Kiwi-drive kinematics and odometry integration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brs_control.odrive.kinematics import (
    KiwiDrive,
    KiwiGeometry,
    OdometryIntegrator,
    integrate_poses,
    wrap_angle,
)


@pytest.fixture
def kiwi():
    return KiwiDrive(KiwiGeometry(base_radius=0.2, wheel_radius=0.05))


def test_round_trip_vectorised(kiwi):
    rng = np.random.default_rng(0)
    twists = rng.uniform(-1, 1, size=(1000, 3))
    wheels = kiwi.inverse(twists)
    assert wheels.shape == (1000, 3)
    np.testing.assert_allclose(kiwi.forward(wheels), twists, atol=1e-12)
    np.testing.assert_allclose(kiwi.J_inv @ kiwi.J, np.eye(3), atol=1e-12)
    # batch dims of any shape
    assert kiwi.inverse(twists.reshape(10, 100, 3)).shape == (10, 100, 3)


def test_pure_rotation_spins_all_wheels_equally(kiwi):
    w = kiwi.inverse([0.0, 0.0, 1.0])
    np.testing.assert_allclose(w, np.full(3, 0.2 / 0.05))


def test_pure_forward_motion(kiwi):
    # Wheel 0 in front (axle along x) does not turn; rear wheels turn in opposite senses.
    w = kiwi.inverse([0.3, 0.0, 0.0])
    s = math.sin(2 * math.pi / 3)
    np.testing.assert_allclose(w, [0.0, -s * 0.3 / 0.05, s * 0.3 / 0.05], atol=1e-12)
    assert abs(w.sum()) < 1e-12  # no net rotation
    # Pure sideways motion: the front wheel rolls at full speed
    w = kiwi.inverse([0.0, 0.3, 0.0])
    assert w[0] == pytest.approx(0.3 / 0.05)
    np.testing.assert_allclose(w[1], w[2])


def test_least_squares_for_four_wheels():
    kd = KiwiDrive(KiwiGeometry(wheel_angles=(0, math.pi / 2, math.pi, 3 * math.pi / 2)))
    twist = np.array([0.2, -0.1, 0.5])
    np.testing.assert_allclose(kd.forward(kd.inverse(twist)), twist, atol=1e-12)


def test_bad_geometry_refused():
    with pytest.raises(ValueError):
        KiwiDrive(KiwiGeometry(wheel_angles=(0.0, 0.0, 0.0)))
    with pytest.raises(ValueError):
        KiwiGeometry(wheel_radius=0.0)


def test_saturation_preserves_direction(kiwi):
    twists = np.array([[2.0, 1.0, 3.0], [0.1, 0.0, 0.0], [-5.0, 4.0, -1.0]])
    wheels = kiwi.inverse(twists)
    limited, factor = kiwi.saturate(wheels, 10.0)
    assert np.all(np.abs(limited) <= 10.0 + 1e-12)
    assert factor[1] == 1.0 and factor[0] < 1.0 and factor[2] < 1.0
    out = kiwi.forward(limited)
    for t, o in zip(twists, out):
        cos = np.dot(t, o) / np.linalg.norm(t) / np.linalg.norm(o)
        assert cos == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(out[1], twists[1], atol=1e-12)
    # at least one wheel sits exactly at the limit when saturating
    np.testing.assert_allclose(np.max(np.abs(limited[[0, 2]]), axis=1), 10.0)


def test_constant_twist_integrates_to_circle():
    v, w, T = 0.4, 0.8, 5.0  # radius 0.5 m
    odo = OdometryIntegrator()
    dt = 0.01
    for _ in range(int(T / dt)):
        odo.update(v, 0.0, w, dt)
    R = v / w
    expected = (R * math.sin(w * T), R * (1 - math.cos(w * T)), wrap_angle(w * T))
    np.testing.assert_allclose(odo.pose, expected, atol=1e-9)
    assert odo.distance == pytest.approx(v * T, rel=1e-4)
    # exact integration: one big step equals many small ones
    big = OdometryIntegrator()
    big.update(v, 0.0, w, T)
    np.testing.assert_allclose(big.pose, expected, atol=1e-12)


def test_holonomic_arc_with_sideways_velocity():
    # body twist (vx, vy, w): the body-frame velocity rotates with yaw; closed form by integration
    vx, vy, w, T = 0.1, 0.2, -0.6, 3.0
    odo = OdometryIntegrator(1.0, -2.0, 0.3)
    odo.update(vx, vy, w, T)
    yaw0 = 0.3
    # x(T) = x0 + int_0^T R(yaw0 + w t) v dt
    x = 1.0 + (vx * (math.sin(yaw0 + w * T) - math.sin(yaw0)) + vy * (math.cos(yaw0 + w * T) - math.cos(yaw0))) / w
    y = -2.0 + (-vx * (math.cos(yaw0 + w * T) - math.cos(yaw0)) + vy * (math.sin(yaw0 + w * T) - math.sin(yaw0))) / w
    np.testing.assert_allclose(odo.pose, (x, y, wrap_angle(yaw0 + w * T)), atol=1e-12)


def test_vectorised_integration_matches_integrator():
    rng = np.random.default_rng(1)
    twists = rng.uniform(-0.5, 0.5, size=(200, 3))
    dts = rng.uniform(0.005, 0.02, size=200)
    poses = integrate_poses((0.1, 0.2, 0.3), twists, dts)
    odo = OdometryIntegrator(0.1, 0.2, 0.3)
    for t, dt in zip(twists, dts):
        odo.update(*t, dt)
    np.testing.assert_allclose(poses[-1, :2], odo.pose[:2], atol=1e-12)
    assert wrap_angle(poses[-1, 2]) == pytest.approx(odo.pose[2], abs=1e-12)


def test_straight_line_and_quaternion():
    odo = OdometryIntegrator()
    odo.update(0.2, 0.0, 0.0, 1.0)
    assert odo.pose == pytest.approx((0.2, 0.0, 0.0))
    odo.reset(yaw=math.pi / 2)
    odo.update(0.0, 0.1, 0.0, 1.0)  # body left = world -x
    assert odo.pose[:2] == pytest.approx((-0.1, 0.0))
    qx, qy, qz, qw = odo.quaternion()
    assert (qz, qw) == pytest.approx((math.sin(math.pi / 4), math.cos(math.pi / 4)))
