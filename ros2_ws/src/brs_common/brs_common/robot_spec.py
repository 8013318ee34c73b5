"""The robot spec: the single source of joint names, limits, groups, frames and cameras.

BRS-class robot (Galaxea R1 like): holonomic base (3 virtual velocity joints), 4-DoF torso,
two 6-DoF arms, two parallel-jaw grippers. The whole-body action is 21-D in the order
base(3) torso(4) left_arm(6) left_gripper(1) right_arm(6) right_gripper(1).
Nothing else in the stack may hard-code these names or numbers: import them from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

CONTROL_RATE_HZ = 100.0
JOINT_STATE_RATE_HZ = 100.0
CAMERA_RATE_HZ = 10.0


@dataclass(frozen=True)
class Joint:
    name: str
    group: str
    lower: float  # rad or m (position joints); -max speed for velocity joints
    upper: float
    max_velocity: float  # rad/s or m/s
    max_acceleration: float  # rad/s^2 or m/s^2
    velocity_controlled: bool = False  # True only for the virtual base joints
    home: float = 0.0


@dataclass(frozen=True)
class Group:
    name: str
    controller: str  # ros2_control controller name; '' for the base (cmd_vel)
    joints: tuple[str, ...]


@dataclass(frozen=True)
class Camera:
    name: str  # head | left_wrist | right_wrist
    width: int
    height: int
    fovy_deg: float
    near: float  # m, closer depth is invalid
    far: float  # m, farther depth is invalid

    @property
    def frame(self) -> str:
        """MuJoCo camera / body name and ROS link name."""
        return f"{self.name}_camera_link"

    @property
    def optical_frame(self) -> str:
        """ROS optical frame (z forward, x right, y down) used in image headers."""
        return f"{self.name}_camera_optical_frame"


def _joints() -> tuple[Joint, ...]:
    base = (
        Joint("base_x", "base", -0.6, 0.6, 0.6, 1.5, velocity_controlled=True),
        Joint("base_y", "base", -0.6, 0.6, 0.6, 1.5, velocity_controlled=True),
        Joint("base_yaw", "base", -1.2, 1.2, 1.2, 3.0, velocity_controlled=True),
    )
    # Torso: knee + hip pitch fold the torso down to the floor, waist pitch and yaw on top.
    torso = (
        Joint("torso_joint1", "torso", -1.10, 1.80, 1.0, 3.0, home=0.0),
        Joint("torso_joint2", "torso", -2.70, 2.50, 1.0, 3.0, home=0.0),
        Joint("torso_joint3", "torso", -1.80, 1.55, 1.0, 3.0, home=0.0),
        Joint("torso_joint4", "torso", -3.00, 3.00, 1.0, 3.0, home=0.0),
    )
    # Arm: shoulder pitch, shoulder roll, upper-arm yaw, elbow, wrist pitch, wrist roll.
    arm_limits = (
        (-2.90, 2.90, 0.0),
        (-1.80, 1.80, 0.0),
        (-2.90, 2.90, 0.0),
        (-2.60, 0.00, -1.2),
        (-1.80, 1.80, 0.0),
        (-2.90, 2.90, 0.0),
    )
    arms = []
    for side in ("left", "right"):
        for i, (lo, hi, home) in enumerate(arm_limits, start=1):
            arms.append(Joint(f"{side}_arm_joint{i}", f"{side}_arm", lo, hi, 3.0, 10.0, home=home))
    # Gripper: travel of each finger from closed (0) to fully open (0.04 m).
    grippers = {
        side: Joint(f"{side}_gripper_joint", f"{side}_gripper", 0.0, 0.04, 0.2, 2.0, home=0.04)
        for side in ("left", "right")
    }
    left_arm = tuple(j for j in arms if j.group == "left_arm")
    right_arm = tuple(j for j in arms if j.group == "right_arm")
    return base + torso + left_arm + (grippers["left"],) + right_arm + (grippers["right"],)


JOINTS: tuple[Joint, ...] = _joints()
JOINT_BY_NAME: dict[str, Joint] = {j.name: j for j in JOINTS}

# Action layout order (21-D; docs/architecture.md, "Topic contract").
GROUP_ORDER = ("base", "torso", "left_arm", "left_gripper", "right_arm", "right_gripper")
GROUPS: dict[str, Group] = {
    g: Group(
        name=g,
        controller="" if g == "base" else f"{g}_controller",
        joints=tuple(j.name for j in JOINTS if j.group == g),
    )
    for g in GROUP_ORDER
}
ACTION_JOINTS: tuple[str, ...] = tuple(j.name for j in JOINTS)
ACTION_DIM = len(ACTION_JOINTS)
BASE_JOINTS: tuple[str, ...] = GROUPS["base"].joints
# Physical joints reported on /joint_states by the hardware layer (the base is reported on /odom).
STATE_JOINTS: tuple[str, ...] = tuple(j.name for j in JOINTS if not j.velocity_controlled)
POSITION_GROUPS: tuple[str, ...] = tuple(g for g in GROUP_ORDER if g != "base")


def group_slice(group: str) -> slice:
    """Slice of `group` inside the 21-D action vector."""
    names = GROUPS[group].joints
    start = ACTION_JOINTS.index(names[0])
    return slice(start, start + len(names))


LOWER = np.array([j.lower for j in JOINTS])
UPPER = np.array([j.upper for j in JOINTS])
MAX_VELOCITY = np.array([j.max_velocity for j in JOINTS])
MAX_ACCELERATION = np.array([j.max_acceleration for j in JOINTS])
HOME = np.array([j.home for j in JOINTS])
# Action entries that are positions (the base's are velocities), and the bounds of a valid action:
# positions within the joint limits, base velocities within +-MAX_VELOCITY.
POSITION = np.array([not j.velocity_controlled for j in JOINTS])
ACTION_LOWER = np.where(POSITION, LOWER, -MAX_VELOCITY)
ACTION_UPPER = np.where(POSITION, UPPER, MAX_VELOCITY)

# Holonomic base hardware: three omni wheels (kiwi drive), wheel 0 in front, then rear left and
# rear right. The MuJoCo model draws the same geometry; the wheel driver reports these joints.
@dataclass(frozen=True)
class Wheel:
    joint: str
    angle_deg: float  # polar angle of the wheel hub around the base centre


WHEELS: tuple[Wheel, ...] = (
    Wheel("wheel_front_joint", 0.0),
    Wheel("wheel_rear_left_joint", 120.0),
    Wheel("wheel_rear_right_joint", 240.0),
)
WHEEL_BASE_RADIUS = 0.19  # m, base centre to wheel contact
WHEEL_RADIUS = 0.06  # m
MAX_WHEEL_SPEED = 20.0  # rad/s at the wheel (~1.2 m/s rim speed)

# Frames (REP-105): odom -> base_link; torso top; end effectors (gripper centre between fingers).
FRAMES = {
    "odom": "odom",
    "base": "base_link",
    "torso": "torso_link4",
    "left_ee": "left_ee_link",
    "right_ee": "right_ee_link",
}

CAMERAS: dict[str, Camera] = {
    "head": Camera("head", 320, 240, 58.0, 0.1, 6.0),
    "left_wrist": Camera("left_wrist", 320, 240, 70.0, 0.04, 2.0),
    "right_wrist": Camera("right_wrist", 320, 240, 70.0, 0.04, 2.0),
}


def spec_hash() -> str:
    """Stable hash of the spec, stored with recordings and checkpoints to detect mismatches."""
    blob = json.dumps(
        {"joints": [asdict(j) for j in JOINTS], "cameras": [asdict(c) for c in CAMERAS.values()]},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
