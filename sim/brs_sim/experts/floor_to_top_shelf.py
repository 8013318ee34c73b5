"""Scripted expert for `floor_to_top_shelf`: block from the floor onto the top shelf board.

The robot grasps facing +x (folded forward, its head reaches ~1 m ahead: facing the shelf it
would hit it), with the block ahead of its right hand: it folds the torso down (whole-body IK) for
a top-down grasp with the fingers turned to the block's faces, lifts, straightens the torso to
full height while turning the hand horizontal, turns to face the shelf (-y) while driving up to
a stand-off, docks, slides the block horizontally into the top compartment (opening ~10 cm),
sets it down, releases and backs off. Arm motions near things are smooth Cartesian end-effector
paths (`PoseMove`) solved by IK every tick; the big reconfiguration in free space (raise) is a
joint-space move.
"""

from __future__ import annotations

import numpy as np

from brs_common import robot_spec as spec

from .cartesian_path import JointMove, PoseMove, rot_z
from .common import POSITION, Observation, OneHandExpert, base_velocity_to, wrap_angle

BLOCK = "block_2"
SIDE = "right"  # the right hand keeps the base clear of the shelf (north of the block)
GRASP_YAW, PLACE_YAW = 0.0, -np.pi / 2  # base yaw when grasping / placing (facing the shelf)
GRASP_AT = np.array([0.52, -0.12])  # block in the base frame when grasping (ahead, a bit right:
# the left shoulder stays clear of the table edge at y = -0.6)
PLACE_AT = np.array([0.47, -0.22])  # block goal in the base frame when placing
STANDOFF = 0.2  # m further back while turning to the shelf
HALF_BLOCK = 0.025
HOVER_Z, GRIP_Z, LIFT_Z = 0.13, 0.026, 0.30  # hand heights at the floor
CARRY = np.array([0.40, -0.22, 1.545])  # hand in the base frame while driving to the shelf: the
# block enters the top compartment (z 1.50..1.60) mid-height
SHELF_TOP_Z = 1.50  # top board surface
PLACE_XY = np.array([0.60, -1.68])  # block goal on the top board (front edge y = -1.62: the palm
# stays out)
SLIDE_Z, SET_Z = SHELF_TOP_Z + HALF_BLOCK + 0.02, SHELF_TOP_Z + HALF_BLOCK + 0.004  # block centre
OPEN, CLOSED = 0.04, 0.0
# top-down grasp (approach -z, fingers along base y) and horizontal (approach along base x)
DOWN = np.diag([-1.0, 1.0, -1.0])
FORWARD = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
# on timeout: drive phases and pre_grasp go on from where they are, the others are timed anyway
TIMEOUTS = {"approach": 15.0, "pre_grasp": 5.0, "turn": 12.0, "dock": 5.0, "place": 6.0, "retreat": 5.0}
MAX_GRASP_TRIES = 3
TORSO = spec.group_slice("torso")
ARM = spec.group_slice(f"{SIDE}_arm")
OTHER_ARM = spec.group_slice(f"{'left' if SIDE == 'right' else 'right'}_arm")
TUCK = np.array([0.0, 0.0, 0.0, -2.6, 0.0, 0.0])  # idle arm folded along the chest: clear of the
# floor when the torso folds down, and of the shelf
LOOK = np.array([0.2, 0.0, 0.0, 0.0])  # torso while approaching: bowed just enough that the head
# camera keeps the block in view down to the grasp stance (upright it leaves the view ~0.6 m out);
# upright again only after the lift, so the pose also tells the two phases at the stance apart


class FloorToTopShelfExpert(OneHandExpert):
    task = "floor_to_top_shelf"
    timeouts = TIMEOUTS
    wait_before = ("pre_grasp", "raise", "turn")  # the fold, the straightening, the turn to the shelf
    side, open_width, closed_width, max_grasp_tries = SIDE, OPEN, CLOSED, MAX_GRASP_TRIES

    # ---- bookkeeping -----------------------------------------------------------------------
    def reset(self, obs: Observation) -> None:
        super().reset(obs)
        self.q[OTHER_ARM] = TUCK
        self.q[TORSO] = LOOK
        self.in_hand = np.zeros(3)  # block centre in the hand frame, measured before placing
        self.stage = ""  # within `place`: slide | lower
        self.enter("approach", obs)

    # ---- geometry --------------------------------------------------------------------------
    def _base_point(self, obs: Observation, xyz) -> np.ndarray:
        """Base-frame point -> world."""
        x, y, yaw = obs.base_pose
        return np.array([x, y, 0.0]) + rot_z(yaw) @ np.asarray(xyz, float)

    def _grasp_rotation(self, obs: Observation) -> np.ndarray:
        """Top-down, fingers across the pair of block faces nearest to the base's y axis."""
        yaw = obs.base_pose[2]
        twist = (obs.object_yaw(BLOCK) - yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
        return rot_z(yaw + twist) @ DOWN

    def _settled(self, obs: Observation, tol: float = 0.01) -> bool:
        """The move is over and the measured hand is within `tol` of its goal (or the phase timed out)."""
        if not self.move.finished(obs.time):
            return False
        return np.linalg.norm(self._hand(obs)[0] - self.move.goal_xyz) < tol or self.clock.timed_out(obs.time)

    def _holding(self, obs: Observation) -> bool:
        return np.linalg.norm(obs.object_xyz(BLOCK) - self._hand(obs)[0]) < 0.06

    def _drive_to(self, obs: Observation, target_xy, yaw: float, offset) -> tuple[np.ndarray, bool]:
        """Base velocity that brings `target_xy` (world) to `offset` in the base frame, facing `yaw`."""
        goal = np.asarray(target_xy, float) - (rot_z(yaw) @ np.append(offset, 0.0))[:2]
        v = base_velocity_to(obs, goal, yaw)
        arrived = (np.linalg.norm(obs.base_pose[:2] - goal) < 0.015
                   and abs(wrap_angle(yaw - obs.base_pose[2])) < 0.02)
        return v, arrived

    # ---- phases (each returns the base velocity) ---------------------------------------------
    def _approach(self, obs):
        v, arrived = self._drive_to(obs, obs.object_xyz(BLOCK)[:2], GRASP_YAW, GRASP_AT)
        if arrived or self.clock.timed_out(obs.time):
            self.enter("pre_grasp", obs)
        return v

    def _pre_grasp(self, obs):
        block = obs.object_xyz(BLOCK)
        if self.move is None:
            self.q[self.gripper] = OPEN
            self._start_move(obs, [block[0], block[1], HOVER_Z], self._grasp_rotation(obs), 2.5)
        self._follow(obs, use_torso=True)
        if self._settled(obs, 0.015):
            self.enter("grasp", obs)
        return np.zeros(3)

    def _grasp(self, obs):
        block = obs.object_xyz(BLOCK)
        if self.move is None:
            self._start_move(obs, [block[0], block[1], GRIP_Z], self._grasp_rotation(obs), 1.5)
        self._follow(obs, use_torso=True)
        self._close_and_check(obs, 0.3, 0.8, held_above=0.3 * HALF_BLOCK)  # fingers stopped on the block
        return np.zeros(3)

    def _lift(self, obs):
        if self.move is None:
            xyz, rot = self._hand(obs)
            self._start_move(obs, [xyz[0], xyz[1], LIFT_Z], rot, 1.5)
        self._follow(obs, use_torso=True)
        if self.move.finished(obs.time):
            if obs.object_xyz(BLOCK)[2] > LIFT_Z - 0.1:
                self.enter("raise", obs)
            else:
                self._retry(obs)
        return np.zeros(3)

    def _raise(self, obs):
        """Torso up to full height (straight) while the hand turns horizontal at shelf height: a
        joint-space move to an IK solution found from the home arm pose (IK from the folded pose
        would wander into a contorted arm)."""
        if self.move is None:
            seed = self.q.copy()
            seed[TORSO] = 0.0
            seed[ARM] = spec.HOME[ARM]
            carry = (self._base_point(obs, CARRY), rot_z(obs.base_pose[2]) @ FORWARD)
            goal, _ = self.ik.solve(obs, {SIDE: carry}, start=seed, iterations=300)
            self.move = JointMove.within_limits(self.q[POSITION], goal[POSITION], obs.time,
                                                spec.MAX_VELOCITY[POSITION], min_duration=2.0)
        self.q[POSITION] = self.move.at(obs.time)
        if self.move.finished(obs.time + 0.2):
            self.enter("turn", obs)
        return np.zeros(3)

    def _turn(self, obs):
        """Face the shelf from a stand-off (the hand sweeps clear of it), the arm held as it is."""
        v, arrived = self._drive_to(obs, PLACE_XY, PLACE_YAW, PLACE_AT + [STANDOFF, 0.0])
        if not self._holding(obs):
            return self.finish(obs)
        if arrived or self.clock.timed_out(obs.time):
            self.enter("dock", obs)
        return v

    def _dock(self, obs):
        """Drive straight up to the shelf: the block passes over the top board's front edge."""
        v, arrived = self._drive_to(obs, PLACE_XY, PLACE_YAW, PLACE_AT)
        if arrived or self.clock.timed_out(obs.time):
            self.enter("place", obs)
        return v

    def _place(self, obs):
        """Slide the block horizontally over the top board, then set it down."""
        if self.move is None:
            if not self._holding(obs):
                return self.finish(obs)
            xyz, rot = self._hand(obs)
            self.in_hand = rot.T @ (obs.object_xyz(BLOCK) - xyz)
            self._start_move(obs, self._hand_for(SLIDE_Z, rot), rot, 2.0)
            self.stage = "slide"
        self._follow(obs, use_torso=False)
        if self.stage == "slide" and self._settled(obs, 0.015):
            rot = self.move.goal_rot
            self.move = PoseMove(self.move.goal_xyz, rot, self._hand_for(SET_Z, rot), rot, obs.time, 1.0)
            self.stage = "lower"
        elif self.stage == "lower" and self.move.finished(obs.time - 0.3):
            self.enter("release", obs)
        return np.zeros(3)

    def _hand_for(self, block_z: float, rot) -> np.ndarray:
        """Hand position (hand rotation `rot`) that puts the held block's centre at PLACE_XY, `block_z`."""
        return np.array([PLACE_XY[0], PLACE_XY[1], block_z]) - rot @ self.in_hand

    def _release(self, obs):
        """Open, then raise the open hand off the board (the fingertips rest ~1 cm above it)."""
        self.q[self.gripper] = OPEN
        if self.move is None and self.clock.elapsed(obs.time) > 0.5:
            self._shift_hand(obs, [0.0, 0.0, 0.015], 0.5)
        if self.move is not None:
            self._follow(obs, use_torso=False)
            if self.move.finished(obs.time - 0.1):
                self.enter("retreat", obs)
        return np.zeros(3)

    def _retreat(self, obs):
        """Back the base off to the stand-off: the open hand slides straight out of the compartment."""
        v, arrived = self._drive_to(obs, PLACE_XY, PLACE_YAW, PLACE_AT + [STANDOFF, 0.0])
        if arrived or self.clock.timed_out(obs.time):
            return self.finish(obs)
        return v

