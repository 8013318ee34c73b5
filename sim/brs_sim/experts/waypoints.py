"""Base navigation for scripted experts: follow a list of (xy, yaw) waypoints with `base_velocity_to`.

Intermediate waypoints are passed within a loose tolerance (the base does not stop there); the
last one is reached precisely. The speed limit ramps up after `start` so a carried object does
not swing from a velocity step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import Observation, base_velocity_to, wrap_angle


@dataclass(frozen=True)
class Waypoint:
    xy: tuple[float, float]  # world
    yaw: float | None = None  # heading to hold (None: keep turning free)
    tol: float = 0.08  # m, when to switch to the next waypoint (the last: when to stop)
    yaw_tol: float = 0.1  # rad


class WaypointFollower:
    def __init__(self, waypoints, vmax: float = 0.3, wmax: float = 0.4, ramp: float = 1.0):
        self.waypoints = list(waypoints)
        self.vmax, self.wmax, self.ramp = vmax, wmax, ramp
        self.index = 0
        self.t0 = None

    @property
    def finished(self) -> bool:
        return self.index >= len(self.waypoints)

    def reached(self, obs: Observation, wp: Waypoint) -> bool:
        near = np.linalg.norm(obs.base_pose[:2] - np.asarray(wp.xy)) < wp.tol
        return near and (wp.yaw is None or abs(wrap_angle(wp.yaw - obs.base_pose[2])) < wp.yaw_tol)

    def step(self, obs: Observation) -> np.ndarray:
        """Base-frame (vx, vy, wz) towards the current waypoint; zero once the last is reached."""
        if self.t0 is None:
            self.t0 = obs.time
        while not self.finished and self.reached(obs, self.waypoints[self.index]):
            self.index += 1
        if self.finished:
            return np.zeros(3)
        wp = self.waypoints[self.index]
        scale = min(1.0, 0.1 + (obs.time - self.t0) / self.ramp) if self.ramp > 0 else 1.0
        return base_velocity_to(obs, wp.xy, wp.yaw, vmax=self.vmax * scale, wmax=self.wmax * scale)
