"""Kinematics of the holonomic base: three omni wheels at 120 degrees ("kiwi" drive).

Geometry (top view, base_link: x forward, y left, z up). Wheel i sits at distance R from the
base centre at polar angle a_i; its axle is radial and its rolling direction is the tangent
t_i = (-sin a_i, cos a_i). The wheel joint axis points towards the base centre, so a positive
wheel speed pushes the base counter-clockwise. With wheel radius r and body twist
(vx, vy, wz), the free rollers make the wheel see only the tangential component of its hub
velocity (v + wz x p_i), which gives the inverse kinematics

    w_i = ( -sin(a_i) vx + cos(a_i) vy + R wz ) / r            w = J @ [vx, vy, wz]

          1 [ -sin a_0   cos a_0   R ]
    J  =  - [ -sin a_1   cos a_1   R ]
          r [ -sin a_2   cos a_2   R ]

For three distinct wheel angles J is invertible (det = 3 sqrt(3) R / (2 r^3) at 120 deg), so
forward kinematics is the exact inverse J^-1; for n > 3 wheels it is the least-squares
pseudo-inverse (the twist that best explains slightly inconsistent wheel speeds).

Why kiwi, not swerve (or mecanum): three actuators instead of six to eight for a swerve base, no
steering axes that must re-orient before moving (swerve modules have singular transitions when
the commanded direction flips and must stop to steer), every twist reachable instantly, a
rotation-symmetric round footprint that turns in place in narrow household spaces. The cost is
lower traction/payload per motor and roller vibration, acceptable for indoor floors. The BRS
paper's robot (Galaxea R1) is holonomic too but uses steered wheel modules for payload; the
topic contract above the driver (TwistStamped in, Odometry out) is the same for either layout,
so this BRS-class robot uses the simpler kiwi layout of its MuJoCo model (wheels at 0, 120,
240 deg, R = 0.19 m, r = 0.06 m).

Everything here is vectorised: twists are arrays (..., 3), wheel speeds arrays (..., n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from brs_common import robot_spec as spec
from brs_common.planar import wrap_angle

# Defaults come from the robot spec (the MuJoCo model draws the same geometry).
DEFAULT_BASE_RADIUS = spec.WHEEL_BASE_RADIUS  # m
DEFAULT_WHEEL_RADIUS = spec.WHEEL_RADIUS  # m
DEFAULT_WHEEL_ANGLES = tuple(math.radians(w.angle_deg) for w in spec.WHEELS)  # rad
DEFAULT_MAX_WHEEL_SPEED = spec.MAX_WHEEL_SPEED  # rad/s at the wheel


@dataclass(frozen=True)
class KiwiGeometry:
    """Omni-wheel base geometry: hub radius R, wheel radius r, wheel polar angles (rad)."""

    base_radius: float = DEFAULT_BASE_RADIUS
    wheel_radius: float = DEFAULT_WHEEL_RADIUS
    wheel_angles: tuple[float, ...] = field(default=DEFAULT_WHEEL_ANGLES)

    def __post_init__(self):
        if not (self.base_radius > 0 and self.wheel_radius > 0):
            raise ValueError("base_radius and wheel_radius must be positive")
        if len(self.wheel_angles) < 3:
            raise ValueError("a holonomic omni base needs at least 3 wheels")
        object.__setattr__(self, "wheel_angles", tuple(float(a) for a in self.wheel_angles))

    @property
    def n_wheels(self) -> int:
        return len(self.wheel_angles)


class KiwiDrive:
    """Inverse / forward kinematics and speed saturation of an omni-wheel base."""

    def __init__(self, geometry: KiwiGeometry | None = None):
        self.geometry = geometry or KiwiGeometry()
        g = self.geometry
        a = np.asarray(g.wheel_angles, dtype=np.float64)
        self.J = np.column_stack([-np.sin(a), np.cos(a), np.full_like(a, g.base_radius)]) / g.wheel_radius
        if np.linalg.matrix_rank(self.J) < 3:
            raise ValueError(f"wheel angles {g.wheel_angles} do not span the planar twist space")
        # Exact inverse for 3 wheels, least-squares pseudo-inverse otherwise.
        self.J_inv = np.linalg.inv(self.J) if g.n_wheels == 3 else np.linalg.pinv(self.J)

    @property
    def n_wheels(self) -> int:
        return self.geometry.n_wheels

    def inverse(self, twist) -> np.ndarray:
        """Wheel angular velocities (rad/s), shape (..., n), from twists (..., 3) = (vx, vy, wz)."""
        t = np.asarray(twist, dtype=np.float64)
        if t.shape[-1] != 3:
            raise ValueError(f"twist must have shape (..., 3); got {t.shape}")
        return t @ self.J.T

    def forward(self, wheel_speeds) -> np.ndarray:
        """Twists (..., 3) from wheel angular velocities (..., n); also maps angle increments to
        body-frame displacements (the map is linear)."""
        w = np.asarray(wheel_speeds, dtype=np.float64)
        if w.shape[-1] != self.n_wheels:
            raise ValueError(f"wheel speeds must have shape (..., {self.n_wheels}); got {w.shape}")
        return w @ self.J_inv.T

    @staticmethod
    def saturate(wheel_speeds, max_wheel_speed: float) -> tuple[np.ndarray, np.ndarray]:
        """Scale all wheels of each row by one factor so none exceeds `max_wheel_speed`.

        A common factor keeps the direction of the resulting twist (the kinematics are linear)
        and only slows the motion down. Returns (scaled speeds, factor in (0, 1] per row).
        """
        w = np.asarray(wheel_speeds, dtype=np.float64)
        if not max_wheel_speed > 0:
            raise ValueError("max_wheel_speed must be positive")
        peak = np.max(np.abs(w), axis=-1, keepdims=True)
        factor = np.minimum(1.0, max_wheel_speed / np.maximum(peak, 1e-300))
        return w * factor, factor[..., 0]

    def twist_to_wheels(self, twist, max_wheel_speed: float | None = None) -> np.ndarray:
        """Inverse kinematics followed by direction-preserving saturation."""
        w = self.inverse(twist)
        if max_wheel_speed is not None:
            w, _ = self.saturate(w, max_wheel_speed)
        return w


# ----------------------------------------------------------------------------- odometry

def _exp_coeffs(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin(th)/th and (1 - cos(th))/th, with Taylor series near 0."""
    small = np.abs(theta) < 1e-6
    safe = np.where(small, 1.0, theta)
    th2 = theta * theta
    s = np.where(small, 1.0 - th2 / 6.0, np.sin(safe) / safe)
    c = np.where(small, theta / 2.0 - theta * th2 / 24.0, (1.0 - np.cos(safe)) / safe)
    return s, c


def body_to_world_increment(displacement, yaw) -> np.ndarray:
    """World-frame (dx, dy, dyaw) of body-frame twist*dt increments (..., 3) applied at `yaw`.

    Exact for a twist held constant over the increment (SE(2) exponential): the path is an arc.
    """
    d = np.asarray(displacement, dtype=np.float64)
    ux, uy, th = d[..., 0], d[..., 1], d[..., 2]
    s, c = _exp_coeffs(th)
    bx = s * ux - c * uy  # displacement in the body frame at the start of the increment
    by = c * ux + s * uy
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.stack([cy * bx - sy * by, sy * bx + cy * by, th], axis=-1)




def integrate_poses(pose0, twists, dts) -> np.ndarray:
    """Poses (N, 3) = (x, y, yaw) after each of N constant-twist steps, vectorised.

    `twists` (N, 3) are body-frame (vx, vy, wz), `dts` (N,) or a scalar. Yaw is not wrapped.
    """
    tw = np.atleast_2d(np.asarray(twists, dtype=np.float64))
    dt = np.broadcast_to(np.asarray(dts, dtype=np.float64), tw.shape[:1])
    inc = tw * dt[:, None]
    x0, y0, yaw0 = (float(v) for v in pose0)
    yaw_after = yaw0 + np.cumsum(inc[:, 2])
    yaw_before = np.concatenate([[yaw0], yaw_after[:-1]])
    world = body_to_world_increment(inc, yaw_before)
    out = np.empty_like(world)
    out[:, 0] = x0 + np.cumsum(world[:, 0])
    out[:, 1] = y0 + np.cumsum(world[:, 1])
    out[:, 2] = yaw_after
    return out


class OdometryIntegrator:
    """Dead-reckoned pose of base_link in odom (REP-105), exact for piecewise-constant twists.

    Feed either twists with their duration (`update`) or body-frame displacements
    (`update_displacement`, e.g. forward kinematics of encoder increments, which makes the
    result independent of sampling jitter).
    """

    def __init__(self, x: float = 0.0, y: float = 0.0, yaw: float = 0.0):
        self.reset(x, y, yaw)

    def reset(self, x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> None:
        self.x, self.y, self.yaw = float(x), float(y), float(wrap_angle(yaw))
        self.distance = 0.0  # path length travelled, m

    @property
    def pose(self) -> tuple[float, float, float]:
        return self.x, self.y, self.yaw

    def update_displacement(self, dx: float, dy: float, dyaw: float) -> tuple[float, float, float]:
        """Apply a body-frame increment (twist * dt); returns the new pose."""
        wx, wy, _ = body_to_world_increment(np.array([dx, dy, dyaw]), self.yaw)
        self.x += float(wx)
        self.y += float(wy)
        self.yaw = float(wrap_angle(self.yaw + dyaw))
        self.distance += math.hypot(float(wx), float(wy))
        return self.pose

    def update(self, vx: float, vy: float, wz: float, dt: float) -> tuple[float, float, float]:
        """Apply a twist held constant for dt seconds; returns the new pose."""
        if dt < 0:
            raise ValueError("dt must be non-negative")
        return self.update_displacement(vx * dt, vy * dt, wz * dt)

    def quaternion(self) -> tuple[float, float, float, float]:
        """(x, y, z, w) of the yaw rotation."""
        return 0.0, 0.0, math.sin(self.yaw / 2.0), math.cos(self.yaw / 2.0)
