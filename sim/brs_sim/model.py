"""Loading the MJCF models and mapping the robot spec onto MuJoCo indices.

`load_model("scene")` is the household world with the robot, `load_model("robot")` the robot
alone (the kinematic model used for forward kinematics). `JointMap` turns spec names into
vectorised qpos / qvel / actuator index arrays, so callers can write `data.qpos[jm.qpos_adr]`.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
from brs_common import robot_spec as spec

MODELS_DIR = Path(__file__).resolve().parent / "models"
HOME_KEY = "home"


def model_path(scene: str = "scene") -> Path:
    """Path of `models/<scene>.xml` ("scene" or "robot")."""
    path = MODELS_DIR / f"{scene}.xml"
    if not path.is_file():
        known = sorted(p.stem for p in MODELS_DIR.glob("*.xml"))
        raise FileNotFoundError(f"no model {scene!r} in {MODELS_DIR} (have: {known})")
    return path


def load_model(scene: str = "scene") -> mujoco.MjModel:
    """Compile `models/<scene>.xml`: "scene" (world + robot) or "robot" (robot only)."""
    return mujoco.MjModel.from_xml_path(str(model_path(scene)))


def mirror_joint(gripper_joint: str) -> str:
    """Name of the coupled second finger joint of a spec gripper joint."""
    return gripper_joint.replace("_gripper_joint", "_gripper_finger2_joint")


def _id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str, what: str) -> int:
    i = mujoco.mj_name2id(model, obj, name)
    if i < 0:
        raise ValueError(f"model has no {what} named {name!r} (required by brs_common.robot_spec)")
    return i


class JointMap:
    """MuJoCo indices of spec joints, in `names` order (default: the 21-D action order).

    qpos_adr / qvel_adr: int arrays into data.qpos / data.qvel; actuator: int array into
    data.ctrl (actuators are named like their joints). For gripper joints, mirror_qpos_adr /
    mirror_qvel_adr hold the coupled finger (-1 elsewhere): `set_qpos` writes both.
    base_* / state_*: the same for spec.BASE_JOINTS and spec.STATE_JOINTS.
    cameras: spec camera name -> MuJoCo camera id. frames: spec frame key -> (mjtObj, id) for
    the frames that live in the model (base/torso: bodies, left_ee/right_ee: sites).
    Raises ValueError naming the first spec joint, actuator, camera or frame the model lacks.
    """

    def __init__(self, model: mujoco.MjModel, names: tuple[str, ...] = spec.ACTION_JOINTS):
        self.names = tuple(names)
        qpos, qvel, act, mq, mv = [], [], [], [], []
        for name in self.names:
            if name not in spec.JOINT_BY_NAME:
                raise ValueError(f"{name!r} is not a joint of brs_common.robot_spec")
            j = _id(model, mujoco.mjtObj.mjOBJ_JOINT, name, "joint")
            qpos.append(model.jnt_qposadr[j])
            qvel.append(model.jnt_dofadr[j])
            act.append(_id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name, "actuator"))
            if spec.JOINT_BY_NAME[name].group.endswith("_gripper"):
                m = _id(model, mujoco.mjtObj.mjOBJ_JOINT, mirror_joint(name), "joint")
                mq.append(model.jnt_qposadr[m])
                mv.append(model.jnt_dofadr[m])
            else:
                mq.append(-1)
                mv.append(-1)
        arr = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
        self.qpos_adr, self.qvel_adr, self.actuator = arr(qpos), arr(qvel), arr(act)
        self.mirror_qpos_adr, self.mirror_qvel_adr = arr(mq), arr(mv)
        self._index = {n: i for i, n in enumerate(self.names)}

        self.cameras = {
            key: _id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam.frame, "camera")
            for key, cam in spec.CAMERAS.items()
        }
        self.frames: dict[str, tuple[int, int]] = {}
        for key, frame in spec.FRAMES.items():
            if key == "odom":  # the world frame of odometry, not part of the model
                continue
            obj = mujoco.mjtObj.mjOBJ_SITE if key.endswith("_ee") else mujoco.mjtObj.mjOBJ_BODY
            kind = "site" if obj == mujoco.mjtObj.mjOBJ_SITE else "body"
            self.frames[key] = (int(obj), _id(model, obj, frame, kind))

        # Convenience slices used by the sim: base (x, y, yaw) and the /joint_states joints.
        def adr(joint_names, what):
            ids = [_id(model, mujoco.mjtObj.mjOBJ_JOINT, n, "joint") for n in joint_names]
            return arr(model.jnt_qposadr[ids] if what == "qpos" else model.jnt_dofadr[ids])

        self.base_qpos = adr(spec.BASE_JOINTS, "qpos")
        self.base_qvel = adr(spec.BASE_JOINTS, "qvel")
        self.base_actuators = arr([_id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n, "actuator")
                                   for n in spec.BASE_JOINTS])
        self.state_qpos = adr(spec.STATE_JOINTS, "qpos")
        self.state_qvel = adr(spec.STATE_JOINTS, "qvel")
        grippers = [k for k, n in enumerate(spec.STATE_JOINTS) if n.endswith("_gripper_joint")]
        self._state_mirror_src = arr(grippers)
        self._state_mirror_qpos = adr([mirror_joint(spec.STATE_JOINTS[k]) for k in grippers], "qpos")

    def subset(self, names) -> np.ndarray:
        """Positions of `names` inside this map (to index qpos_adr / actuator etc.)."""
        try:
            return np.array([self._index[n] for n in names], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"unknown joint {e.args[0]!r}") from None

    def actuator_ids(self, names) -> np.ndarray:
        """data.ctrl indices of the actuators of `names`."""
        return self.actuator[self.subset(names)]

    def set_qpos(self, data: mujoco.MjData, q: np.ndarray) -> None:
        """Write joint positions (in `names` order) to data.qpos, mirror fingers included."""
        q = np.asarray(q, dtype=float)
        data.qpos[self.qpos_adr] = q
        has = self.mirror_qpos_adr >= 0
        data.qpos[self.mirror_qpos_adr[has]] = q[has]

    def set_state_qpos(self, data: mujoco.MjData, q: np.ndarray) -> None:
        """Write spec.STATE_JOINTS positions (e.g. from /joint_states) to data.qpos, mirrors too.

        For forward kinematics on the robot-only model: follow with mujoco.mj_kinematics.
        """
        q = np.asarray(q, dtype=float)
        data.qpos[self.state_qpos] = q
        data.qpos[self._state_mirror_qpos] = q[self._state_mirror_src]
