"""MuJoCo physics of the robot in its scene, free of ROS: commands in, state and images out.

The sim node wraps this class; benchmarks and tests drive it directly. One `step()` advances
one control period (1 / CONTROL_RATE_HZ) of physics.
"""

from __future__ import annotations

import mujoco
import numpy as np

from brs_common import robot_spec as spec

from .model import JointMap, load_model

HOME_KEY = "home"


class SimCore:
    """Robot + scene physics with position targets for joints and a base-frame velocity command."""

    def __init__(self, scene: str = "scene", seed: int = 0, object_jitter: float = 0.02):
        self.model = load_model(scene)
        self.data = mujoco.MjData(self.model)
        self.joints = JointMap(self.model)
        period = 1.0 / spec.CONTROL_RATE_HZ
        self.substeps = max(1, round(period / self.model.opt.timestep))
        self.control_period = self.substeps * self.model.opt.timestep
        self.period_ns = round(self.control_period * 1e9)
        # Sim time counts control periods in integer ns. MuJoCo's float data.time, summed 2 ms at a
        # time, drifts: after 605.74 s its stamp came out 1 ns short of a multiple of the 10 ms
        # period, a use_sim_time timer due at that multiple did not fire, and lock-stepped
        # training waited forever for the controller's tick.
        self.periods = 0
        self.object_jitter = object_jitter
        self._free_objects = [
            j for j in range(self.model.njnt)
            if self.model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE
        ]
        self.object_names = {
            j: mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, self.model.jnt_bodyid[j])
            for j in self._free_objects
        }
        self.base_cmd = np.zeros(3)  # vx, vy (m/s, base frame), wz (rad/s)
        self.reset(seed)

    # --- commands -------------------------------------------------------------------------------
    def set_position_targets(self, names, values) -> None:
        """Position targets for torso/arm/gripper joints (clamped to the actuator range)."""
        self.data.ctrl[self.joints.actuator_ids(names)] = values

    def set_base_velocity(self, vx: float, vy: float, wz: float) -> None:
        self.base_cmd[:] = (vx, vy, wz)

    # --- stepping -------------------------------------------------------------------------------
    def reset(self, seed: int = 0) -> None:
        """Home keyframe, objects jittered in the plane by a seeded RNG, zero base command.

        Sim time keeps running: /clock never jumps back, so every use_sim_time node stays valid.
        """
        key = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, HOME_KEY)
        if key >= 0:
            mujoco.mj_resetDataKeyframe(self.model, self.data, key)
        else:
            mujoco.mj_resetData(self.model, self.data)
        rng = np.random.default_rng(seed)
        for j in self._free_objects:
            adr = self.model.jnt_qposadr[j]
            self.data.qpos[adr:adr + 2] += rng.uniform(-self.object_jitter, self.object_jitter, 2)
        self.base_cmd[:] = 0.0
        self.data.time = self.time
        mujoco.mj_forward(self.model, self.data)

    def step(self) -> None:
        """Advance one control period. The base command is rotated into the world frame."""
        yaw = self.data.qpos[self.joints.base_qpos[2]]
        c, s = np.cos(yaw), np.sin(yaw)
        vx, vy, wz = self.base_cmd
        self.data.ctrl[self.joints.base_actuators] = (c * vx - s * vy, s * vx + c * vy, wz)
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        self.periods += 1
        self.data.time = self.time

    @property
    def time(self) -> float:
        """Sim time in s: control periods stepped since start (resets keep counting)."""
        return self.time_ns * 1e-9

    @property
    def time_ns(self) -> int:
        """Sim time in integer ns, an exact multiple of the control period."""
        return self.periods * self.period_ns

    # --- state ----------------------------------------------------------------------------------
    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, velocity and actuator effort of spec.STATE_JOINTS."""
        pos = self.data.qpos[self.joints.state_qpos]
        vel = self.data.qvel[self.joints.state_qvel]
        effort = self.data.qfrc_actuator[self.joints.state_qvel]
        return pos, vel, effort

    def base_pose(self) -> np.ndarray:
        """x, y, yaw of base_link in the odom (= world) frame."""
        return self.data.qpos[self.joints.base_qpos].copy()

    def object_poses(self) -> dict[str, np.ndarray]:
        """World pose of every free object of the scene: name -> (x, y, z, qw, qx, qy, qz)."""
        out = {}
        for j in self._free_objects:
            adr = self.model.jnt_qposadr[j]
            out[self.object_names[j]] = self.data.qpos[adr:adr + 7].copy()
        return out

    def base_twist(self) -> np.ndarray:
        """vx, vy (base frame) and wz of base_link."""
        yaw = self.data.qpos[self.joints.base_qpos[2]]
        vxw, vyw, wz = self.data.qvel[self.joints.base_qvel]
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * vxw + s * vyw, -s * vxw + c * vyw, wz])
