"""Scripted expert for `bimanual_box`: squeeze the box between both hands, lift it, put it on the table.

The base backs up square to the box (its +-y faces left and right), the torso squats (knees
forward, trunk upright) and then bows at the waist, so the head stays low and clear of the
table edge, while both hands come down beside the box's +-y faces: palms facing the box, fingers
open and spread along the box's x axis, so the fingertip pads span 12 cm of each face. The hands
close in past the faces (the arm servos' stiffness makes the squeeze force), the torso
stands up while the arms keep the box on its path, the base drives to the table (the box passes
between the can and the block), the arms set the box on the top, open out and rise, and the
base backs off. A box that did not come up, or slipped out on the way, is grasped again.

Motion: a keyframe (box pose in the base frame, grip half-width, torso posture) is blended
between phase goals with a minimum-jerk profile; every tick one IK call solves both arms for
the two hand targets it implies, the torso held at the keyframe's posture (joint-space key
postures: IK with a free torso drifts into bows that hit the table or the box).
"""

from __future__ import annotations

import mujoco
import numpy as np

from .cartesian_path import min_jerk, rot_z
from .common import ACTION_INDEX, Observation, PhasedExpert, wrap_angle
from .waypoints import Waypoint, WaypointFollower

BOX = "box"
SIDES = (("left", 1.0), ("right", -1.0))
HALF_WIDTH = 0.15  # box centre -> squeezed face (box y)
HALF_HEIGHT = 0.1
TIP = 0.022  # ee site -> fingertip face, along the approach axis
SQUEEZE = 0.015  # hand targets this far inside each face (~15-25 N per hand)
OPEN = HALF_WIDTH + TIP + 0.07  # grip half-width with the hands clear of the faces
GRIP = HALF_WIDTH + TIP - SQUEEZE
GRIP_DZ = 0.06  # contact height above the box centre
FINGERS = 0.0  # closed: both pads touch the face as one patch right above the box centre
TORSO_HOME = np.zeros(4)
TORSO_SQUAT = np.array([1.8, -1.8, 0.0, 0.0])  # knees forward, trunk upright: the head stays back
TORSO_BOW = np.array([1.8, -1.8, 1.45, 0.0])  # then bow the waist: the head passes below the table top
TORSO_CARRY = np.array([0.0, 0.0, 0.6, 0.0])  # waist bowed only: the trunk stays clear of the table edge
READY = np.array([0.35, 0.0, 0.8])  # keyframe box centre (base frame) with the hands up and open
GRASP_AT = 0.7  # box centre ahead of base_link while bowing
CARRY_AT = np.array([0.42, 0.0, 0.97])  # box centre in the base frame while carrying
PLACE_X = 1.12  # box centre (world x) on the table: beyond the can and the block at x ~0.95
PLACE_CLEARANCE = 0.01  # box bottom above the table top when let go
MAX_TRIES = 3
DURATIONS = {"approach": 2.0, "squat": 2.0, "pre_grasp": 2.5, "grasp": 2.0, "lift": 4.0, "place": 2.3,
             "release": 1.5, "retreat": 3.0, "regrasp": 1.5}  # blend time (+ settling) per phase
TIMEOUTS = {"approach": 12.0, "carry": 15.0, "retreat": 6.0}  # phases that end on the base arriving


def _palm_in(side_sign: float) -> np.ndarray:
    """Hand rotation in the box frame: approach axis into the face, fingers spread along box x."""
    z = np.array([0.0, -side_sign, 0.0])
    y = np.array([side_sign, 0.0, 0.0])
    return np.column_stack([np.cross(y, z), y, z])


def _table_top_z() -> float:
    from brs_sim.model import load_model

    model = load_model("scene")
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "table_top")
    return float(data.geom_xpos[g][2] + model.geom_size[g][2])


class BimanualBoxExpert(PhasedExpert):
    task = "bimanual_box"
    timeouts = TIMEOUTS

    def __init__(self):
        super().__init__()
        self.table_z = _table_top_z()
        self.grippers = [ACTION_INDEX[f"{side}_gripper_joint"] for side, _ in SIDES]

    def reset(self, obs: Observation) -> None:
        super().reset(obs)
        self.q[self.grippers] = FINGERS
        self.box, self.width, self.torso = (READY, 0.0), OPEN, self.q[3:7].copy()
        self._approach_box(obs)

    # ---- keyframe motion -----------------------------------------------------------------------
    def _enter(self, phase: str, obs: Observation, box=None, width=None, torso=None) -> None:
        """Start `phase`: blend the keyframe from where it is to (box, width, torso)."""
        self.enter(phase, obs)
        self.start = (self.box, self.width, self.torso)
        self.goal = (self.box if box is None else box, self.width if width is None else width,
                     self.torso if torso is None else torso)

    def _blend(self, obs: Observation, settle: float = 0.0) -> bool:
        """Move the keyframe along this phase's blend; True `settle` s after it has arrived."""
        elapsed = self.clock.elapsed(obs.time)
        s = min_jerk(elapsed / (DURATIONS[self.phase] - settle))
        (c0, y0), w0, t0 = self.start
        (c1, y1), w1, t1 = self.goal
        self.box = c0 + s * (c1 - c0), y0 + s * (y1 - y0)
        self.width = w0 + s * (w1 - w0)
        self.torso = t0 + s * (t1 - t0)
        return elapsed >= DURATIONS[self.phase]

    def _hands(self, obs: Observation) -> None:
        """One IK call for both hands at the keyframe (torso held at the keyframe's posture)."""
        centre, yaw = self.box
        x, y, base_yaw = obs.base_pose
        to_world, box_rot = rot_z(base_yaw), rot_z(yaw)
        targets = {}
        for side, sign in SIDES:
            local = centre + box_rot @ np.array([0.0, sign * self.width, GRIP_DZ])
            targets[side] = (np.array([x, y, 0.0]) + to_world @ local, to_world @ box_rot @ _palm_in(sign))
        start = self.q.copy()
        start[3:7] = self.torso
        self.q, self.ik_error = self.ik.solve(obs, targets, start=start, iterations=15)
        self.q[self.grippers] = FINGERS

    def _box_in_base(self, obs: Observation) -> tuple[np.ndarray, float]:
        """Box centre in the base frame and its yaw relative to the base (the box is pi-symmetric)."""
        return obs.to_base(obs.object_xyz(BOX)), float(wrap_angle(2 * (obs.object_yaw(BOX) - obs.base_pose[2])) / 2)

    def _held(self, obs: Observation) -> bool:
        """Whether the box is where the keyframe says it is (i.e. still between the hands)."""
        return bool(np.linalg.norm(self._box_in_base(obs)[0] - self.box[0]) < 0.12)

    def after_phase(self, obs: Observation) -> None:
        self._hands(obs)  # every tick: both hands to where the phase put the keyframe

    # ---- phases (each returns the base velocity) ----------------------------------------------
    def _approach_box(self, obs: Observation) -> None:
        """Drive to the stance square to the box, GRASP_AT behind its centre; hands up, torso home."""
        c = obs.object_xyz(BOX)
        yaw = float(wrap_angle(2 * obs.object_yaw(BOX)) / 2)
        stance = c[:2] - GRASP_AT * np.array([np.cos(yaw), np.sin(yaw)])
        self.route = WaypointFollower([Waypoint(tuple(stance), yaw, 0.015, 0.03)], vmax=0.25)
        self._enter("approach", obs, box=(READY, 0.0), width=OPEN, torso=TORSO_HOME)

    def _approach(self, obs):
        v = self.route.step(obs)
        if (self._blend(obs) and self.route.finished) or self.clock.timed_out(obs.time):
            c, yaw = self._box_in_base(obs)
            self._enter("squat", obs, box=(c + np.array([0.0, 0.0, 0.35]), yaw), torso=TORSO_SQUAT)
        return v

    def _squat(self, obs):
        if self._blend(obs):
            self._enter("pre_grasp", obs, box=self._box_in_base(obs), torso=TORSO_BOW)
        return np.zeros(3)

    def _pre_grasp(self, obs):
        if self._blend(obs):
            self._enter("grasp", obs, width=GRIP)
        return np.zeros(3)

    def _grasp(self, obs):
        if self._blend(obs, settle=0.5):
            self._enter("lift", obs, box=(CARRY_AT, 0.0), torso=TORSO_CARRY)
        return np.zeros(3)

    def _lift(self, obs):
        if self._blend(obs, settle=0.5):
            if not self._held(obs):
                return self._regrasp_or_give_up(obs)
            stop = (PLACE_X - CARRY_AT[0], 0.0)
            self.route = WaypointFollower([Waypoint(stop, 0.0, 0.01, 0.02)], vmax=0.3, ramp=1.5)
            self._enter("carry", obs)
        return np.zeros(3)

    def _carry(self, obs):
        if not self._held(obs):
            return self._regrasp_or_give_up(obs)
        v = self.route.step(obs)
        if self.route.finished or self.clock.timed_out(obs.time):
            sag = self.box[0][2] - self._box_in_base(obs)[0][2]  # the box sits a bit low in the hands
            down = np.array([CARRY_AT[0], 0.0, self.table_z + HALF_HEIGHT + PLACE_CLEARANCE + sag])
            self._enter("place", obs, box=(down, 0.0))
        return v

    def _place(self, obs):
        if self._blend(obs, settle=0.3):
            self._enter("release", obs, width=OPEN)
        return np.zeros(3)

    def _release(self, obs):
        if self._blend(obs):
            back = obs.base_pose[:2] - 0.4 * np.array([np.cos(obs.base_pose[2]), np.sin(obs.base_pose[2])])
            self.route = WaypointFollower([Waypoint(tuple(back), obs.base_pose[2], 0.03)], vmax=0.25)
            self._enter("retreat", obs, box=(self.box[0] + np.array([0.0, 0.0, 0.12]), 0.0))
        return np.zeros(3)

    def _retreat(self, obs):
        arms_clear = self._blend(obs) or self.clock.elapsed(obs.time) > 0.8
        v = self.route.step(obs) if arms_clear else np.zeros(3)
        if self.route.finished or self.clock.timed_out(obs.time):
            return self.finish(obs)
        return v

    def _regrasp_or_give_up(self, obs):
        """The box is not between the hands: open them and rise, then start over (or give up)."""
        self.tries += 1
        if self.tries >= MAX_TRIES:
            self.phase, self.done = "failed", True
        else:
            self._enter("regrasp", obs, box=(self.box[0] + np.array([0.0, 0.0, 0.15]), self.box[1]), width=OPEN)
        return np.zeros(3)

    def _regrasp(self, obs):
        if self._blend(obs):
            self._approach_box(obs)
        return np.zeros(3)
