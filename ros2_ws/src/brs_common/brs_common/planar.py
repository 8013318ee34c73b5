"""Planar (x, y, yaw) geometry of the mobile base, shared by the experts, the planner, odometry
and the training targets: one copy of the angle wrap and of the world -> base_link rotation."""

from __future__ import annotations

import numpy as np


def wrap_angle(a):
    """Angle(s) in rad wrapped to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def to_base_frame(v_world, yaw: float) -> np.ndarray:
    """A world (odom) frame planar vector or twist (vx, vy[, wz]) expressed in base_link, the base
    heading `yaw`; a third entry (a rotation rate or a height) is unchanged."""
    v = np.asarray(v_world, dtype=float)
    c, s = np.cos(yaw), np.sin(yaw)
    return np.concatenate([[c * v[0] + s * v[1], -s * v[0] + c * v[1]], v[2:]])
