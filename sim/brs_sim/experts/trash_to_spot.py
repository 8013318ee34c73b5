"""Scripted expert for `trash_to_spot`: fetch the trash bin from room B to the red spot in room A.

The robot turns north and drives through the doorway centre to a stand pose square to the bin
wall that faces the door, bows the torso (whole-body IK) and grasps that wall's rim from above
with the right hand (fingers straddle the 1 cm wall), lifts the bin 10 cm, turns to face north
again and backs out through the doorway (the bin trails north of the base, so base and bin both
stay on the doorway's centre line), turns east in the free corridor between table and shelf,
drives until the bin hangs over the spot, sets it down, releases and backs off.
Arm motions are smooth Cartesian paths (`PoseMove`) solved by IK each tick; the base follows
waypoints (`WaypointFollower`).
"""

from __future__ import annotations

import numpy as np

from brs_common import robot_spec as spec

from .cartesian_path import rot_z
from .common import POSITION, Observation, OneHandExpert
from .waypoints import Waypoint, WaypointFollower

BIN = "trash_bin"
SIDE = "right"
TARGET = np.array([1.8, -1.2])  # site trash_target
WALL = 0.12  # bin centre -> wall mid-plane
GRASP_AT = np.array([0.36, -0.12])  # grasp point (wall rim centre) in the base frame
HOVER_Z, GRIP_Z = 0.44, 0.295  # hand heights; the rim top is at 0.32, pads reach 2.2 cm down
LIFT = 0.10
NORTH, EAST = np.pi / 2, 0.0
DOOR_IN = [Waypoint((0.0, 1.4), NORTH, 0.08), Waypoint((0.0, 2.6), NORTH, 0.1, 0.3)]
# carried: back out through the doorway facing north, turn east in the corridor south of the table
DOOR_OUT = [Waypoint((0.0, 2.75), NORTH, 0.08, 0.06), Waypoint((0.0, 1.25), NORTH, 0.08, 0.06),
            Waypoint((0.0, -1.1), NORTH, 0.1), Waypoint((0.0, -1.1), EAST, 0.05, 0.05)]
OPEN, CLOSED = 0.04, 0.0
# top-down hand (approach -z) with the fingers opening along base x, across the wall facing the base
DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
TIMEOUTS = {"navigate": 40.0, "pre_grasp": 6.0, "grasp": 5.0, "lift": 4.0, "carry": 50.0,
            "to_spot": 15.0, "place": 5.0, "release": 2.0, "retreat": 8.0}
MAX_GRASP_TRIES = 3


def _grasp_wall(obs: Observation) -> tuple[np.ndarray, float]:
    """(rim centre xy, base heading) of the bin wall facing the doorway: the base faces it square."""
    c, yaw = obs.object_xyz(BIN)[:2], obs.object_yaw(BIN)
    to_door = np.arctan2(2.0 - c[1], 0.0 - c[0])
    k = np.round((to_door - yaw) / (np.pi / 2))
    normal = yaw + k * np.pi / 2  # outward normal of the chosen wall
    return c + WALL * np.array([np.cos(normal), np.sin(normal)]), float(normal + np.pi)


class TrashToSpotExpert(OneHandExpert):
    task = "trash_to_spot"
    timeouts = TIMEOUTS
    wait_before = ("pre_grasp", "carry")  # the reach for the rim, the drive back with the bin
    side, open_width, closed_width, max_grasp_tries = SIDE, OPEN, CLOSED, MAX_GRASP_TRIES

    def reset(self, obs: Observation) -> None:
        super().reset(obs)
        rim, heading = _grasp_wall(obs)
        stand = rim - (rot_z(heading) @ np.append(GRASP_AT, 0.0))[:2]
        self.enter("navigate", obs)
        self.route = WaypointFollower(DOOR_IN + [Waypoint(tuple(stand), heading, 0.012, 0.015)])

    # ---- geometry ------------------------------------------------------------------------------
    def _rim(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Rim centre of the grasped wall (world xy) and the top-down hand rotation for it."""
        rim, heading = _grasp_wall(obs)
        return rim, rot_z(heading) @ DOWN

    # ---- phases (each returns the base velocity) ----------------------------------------------
    def _navigate(self, obs):
        v = self.route.step(obs)
        if self.route.finished or self.clock.timed_out(obs.time):
            self.enter("pre_grasp", obs)
        return v

    def _pre_grasp(self, obs):
        if self.move is None:
            rim, rot = self._rim(obs)
            self.q[self.gripper] = OPEN
            self._start_move(obs, [rim[0], rim[1], HOVER_Z], rot, 3.0)
        self._follow(obs)
        if self.move.finished(obs.time) or self.clock.timed_out(obs.time):
            self.enter("grasp", obs)
        return np.zeros(3)

    def _grasp(self, obs):
        if self.move is None:
            rim, rot = self._rim(obs)
            self._start_move(obs, [rim[0], rim[1], GRIP_Z], rot, 1.5)
        self._follow(obs)
        self._close_and_check(obs, 0.2, 1.0, held_above=0.002)  # fingers stopped on the wall
        return np.zeros(3)

    def _lift(self, obs):
        if self.move is None:
            self._shift_hand(obs, [0.0, 0.0, LIFT], 1.5)
        self._follow(obs)
        if self.move.finished(obs.time - 0.5):
            if obs.object_xyz(BIN)[2] > 0.5 * LIFT:
                bx, by, _ = obs.base_pose
                self.route = WaypointFollower([Waypoint((bx, by), NORTH, 0.05, 0.05)] + DOOR_OUT,
                                              vmax=0.25, wmax=0.3, ramp=1.5)
                self.enter("carry", obs)
            else:
                self._retry(obs)
        return np.zeros(3)

    def _carry(self, obs):
        v = self._check_held(obs, self.route.step(obs))
        if not self.done and (self.route.finished or self.clock.timed_out(obs.time)):
            # the bin hangs at a fixed offset from the base: put the base where the bin is over the spot
            offset = rot_z(EAST) @ obs.to_base(obs.object_xyz(BIN))
            goal = Waypoint(tuple(TARGET - offset[:2]), EAST, 0.01, 0.02)
            self.route = WaypointFollower([goal], vmax=0.25, wmax=0.3, ramp=1.5)
            self.enter("to_spot", obs)
        return v

    def _to_spot(self, obs):
        v = self._check_held(obs, self.route.step(obs))
        if not self.done and (self.route.finished or self.clock.timed_out(obs.time)):
            self.enter("place", obs)
        return v

    def _place(self, obs):
        if self.move is None:
            self._shift_hand(obs, [0.0, 0.0, -(LIFT + 0.01)], 2.0)
        self._follow(obs)
        if self.move.finished(obs.time - 0.5) or self.clock.timed_out(obs.time):
            self.enter("release", obs)
        return np.zeros(3)

    def _release(self, obs):
        self.q[self.gripper] = OPEN
        if self.clock.elapsed(obs.time) > 1.0:
            self.enter("retreat", obs)
        return np.zeros(3)

    def _retreat(self, obs):
        """Hand straight up out of the bin, back the base off 30 cm, stand up in the home pose."""
        if self.move is None:
            self._shift_hand(obs, [0.0, 0.0, 0.15], 1.0)
        t = self.clock.elapsed(obs.time)
        if not self.move.finished(obs.time):
            self._follow(obs)
        elif t < 3.0:
            return np.array([-0.15, 0.0, 0.0])
        else:
            self.q = spec.HOME.copy()
            if np.abs(obs.positions() - self.q)[POSITION].max() < 0.05 or self.clock.timed_out(obs.time):
                self.finish(obs)
        return np.zeros(3)

    def _check_held(self, obs: Observation, v: np.ndarray) -> np.ndarray:
        """Base velocity `v` while the bin hangs in the hand; if it was dropped, stop and give up."""
        if obs.object_xyz(BIN)[2] > 0.03:
            return v
        return self.finish(obs)
