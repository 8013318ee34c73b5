"""Small motion helpers for scripted experts: smooth Cartesian and joint-space moves, a phase clock.

`PoseMove` interpolates an end-effector pose from a start to a goal with a minimum-jerk time
profile (position along the straight line, rotation along the SO(3) geodesic); an expert solves
IK for `move.at(t)` every tick, so the hand follows the line instead of whatever path the joint
limiter would take between two far-apart joint targets. `JointMove` is the joint-space twin for
large reconfigurations in free space (all joints start and stop together), with a duration that
respects the joints' speed limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def min_jerk(s: float) -> float:
    """0 -> 1 with zero velocity and acceleration at both ends (s clipped to [0, 1])."""
    s = float(np.clip(s, 0.0, 1.0))
    return s ** 3 * (10.0 - 15.0 * s + 6.0 * s * s)


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _log_so3(r: np.ndarray) -> np.ndarray:
    """Rotation vector of a rotation matrix."""
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # half-turn: axis from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(r) + 1.0) / 2.0, 0.0))
        i = int(np.argmax(axis))
        axis[np.arange(3) != i] = r[i, np.arange(3) != i] / (2.0 * axis[i])
        return angle * axis / np.linalg.norm(axis)
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return angle * w / (2.0 * np.sin(angle))


def _exp_so3(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v)
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * kx @ kx


@dataclass
class PoseMove:
    """End-effector pose from (start_xyz, start_rot) to (goal_xyz, goal_rot) in `duration` s."""

    start_xyz: np.ndarray
    start_rot: np.ndarray
    goal_xyz: np.ndarray
    goal_rot: np.ndarray
    t0: float
    duration: float

    def __post_init__(self):
        self.start_xyz = np.asarray(self.start_xyz, float)
        self.goal_xyz = np.asarray(self.goal_xyz, float)
        self.start_rot = np.asarray(self.start_rot, float)
        self.goal_rot = np.asarray(self.goal_rot, float)
        self._delta = _log_so3(self.start_rot.T @ self.goal_rot)

    def fraction(self, t: float) -> float:
        return min_jerk((t - self.t0) / max(self.duration, 1e-6))

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        a = self.fraction(t)
        return (self.start_xyz + a * (self.goal_xyz - self.start_xyz),
                self.start_rot @ _exp_so3(a * self._delta))

    def finished(self, t: float) -> bool:
        return t - self.t0 >= self.duration


@dataclass
class JointMove:
    """Joint targets from `start` to `goal` (same-length vectors) in `duration` s."""

    start: np.ndarray
    goal: np.ndarray
    t0: float
    duration: float

    @classmethod
    def within_limits(cls, start, goal, t0: float, max_velocity, min_duration: float = 1.0,
                      margin: float = 1.2) -> JointMove:
        """A move whose peak joint speeds (1.875 x mean for min-jerk) stay under `max_velocity`/margin."""
        start, goal = np.asarray(start, float), np.asarray(goal, float)
        need = 1.875 * np.max(np.abs(goal - start) / np.asarray(max_velocity, float)) * margin
        return cls(start, goal, t0, max(min_duration, float(need)))

    def at(self, t: float) -> np.ndarray:
        return self.start + min_jerk((t - self.t0) / max(self.duration, 1e-6)) * (self.goal - self.start)

    def finished(self, t: float) -> bool:
        return t - self.t0 >= self.duration


class PhaseClock:
    """The current phase's name and start time; `elapsed` and `timed_out` against a per-phase limit."""

    def __init__(self, timeouts: dict[str, float]):
        self.timeouts = timeouts
        self.name = "start"
        self.since = 0.0

    def enter(self, name: str, now: float) -> None:
        self.name, self.since = name, now

    def elapsed(self, now: float) -> float:
        return now - self.since

    def timed_out(self, now: float) -> bool:
        return self.elapsed(now) > self.timeouts.get(self.name, np.inf)
