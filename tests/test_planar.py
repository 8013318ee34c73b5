"""brs_common.planar: the one copy of the base's angle wrap and world -> base_link rotation."""

import math

import numpy as np
import pytest

from brs_common.planar import to_base_frame, wrap_angle


def test_wrap_angle_lands_in_minus_pi_to_pi():
    a = np.array([0.0, math.pi, -math.pi, 3 * math.pi / 2, -7.0, 12.5])
    w = wrap_angle(a)
    assert np.all(w >= -math.pi) and np.all(w < math.pi)
    np.testing.assert_allclose(np.cos(w), np.cos(a), atol=1e-12)
    np.testing.assert_allclose(np.sin(w), np.sin(a), atol=1e-12)
    assert wrap_angle(math.pi) == pytest.approx(-math.pi)


def test_to_base_frame_rotates_by_minus_yaw_and_keeps_the_third_entry():
    # base facing +y (yaw pi/2): a world +y velocity is straight ahead, world +x is to its right
    np.testing.assert_allclose(to_base_frame([0.0, 0.3, 0.2], math.pi / 2), [0.3, 0.0, 0.2], atol=1e-12)
    np.testing.assert_allclose(to_base_frame([1.0, 0.0], math.pi / 2), [0.0, -1.0], atol=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(20):  # a rotation: lengths kept, and undone by the inverse rotation
        v, yaw = rng.normal(size=3), rng.uniform(-4, 4)
        b = to_base_frame(v, yaw)
        assert np.hypot(*b[:2]) == pytest.approx(np.hypot(*v[:2]))
        np.testing.assert_allclose(to_base_frame(b, -yaw), v, atol=1e-12)
