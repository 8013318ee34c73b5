"""The robot's URDF, generated from the MuJoCo model, and forward kinematics over a URDF.

robot.xml is the one description of the robot; the URDF is derived from it (`robot_urdf()`), so
ROS tools (robot_state_publisher, RViz, MoveIt) see exactly the kinematics the sim and the
controllers use. A generated copy is committed as `models/robot.urdf` (tests/test_urdf.py checks
that it is up to date). Regenerate it with

    python -m brs_sim.urdf -o ros2_ws/src/brs_sim/brs_sim/models/robot.urdf

Mapping (docs/robot_description.md):
  * every body below `base_link` is a link with MuJoCo's inertial (mass, centre of mass,
    principal inertia and axes), visual geoms (contype = conaffinity = 0) and collision geoms;
    box / sphere / cylinder map directly, a capsule becomes a cylinder plus two end spheres;
  * hinge -> revolute, slide -> prismatic: axis, range and damping from the model, effort from
    the joint's actuator force range, velocity from brs_common.robot_spec; a joint driven by a
    joint equality (the second gripper finger) gets a `<mimic>` of the joint it follows;
  * base_x / base_y / base_yaw are left out: base_link is the root, odom -> base_link comes
    from odometry;
  * each camera is a fixed link named like the MuJoCo camera (`<name>_camera_link`, MuJoCo's
    camera convention: looks along -z, +y up) plus `<name>_camera_optical_frame` (ROS optical
    frame: z forward, x right, y down = the camera frame turned by pi about x); each site
    (`<side>_ee_link`) is a fixed link.

`link_transforms(urdf, joint_positions)` is what robot_state_publisher computes: every frame of
a URDF in its root frame, numpy and scipy (no MuJoCo, no tf2), for consumers without a ROS install.
Only `robot_urdf()` and the CLI need MuJoCo (imported when called).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from brs_common import robot_spec as spec

URDF_PATH = Path(__file__).resolve().parent / "models" / "robot.urdf"
REGENERATE = "python -m brs_sim.urdf -o ros2_ws/src/brs_sim/brs_sim/models/robot.urdf"
# ROS optical frame in the MuJoCo camera frame: turned by pi about x (y down, z forward).
OPTICAL_RPY = (math.pi, 0.0, 0.0)


# --------------------------------------------------------------------------- rotations


def quat_to_matrix(q) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion (MuJoCo's order); normalises it."""
    return Rotation.from_quat(np.asarray(q, dtype=float), scalar_first=True).as_matrix()


def rpy_to_matrix(rpy) -> np.ndarray:
    """URDF rpy: roll about x, then pitch about y, then yaw about z, all fixed axes (Rz Ry Rx)."""
    return Rotation.from_euler("xyz", [float(v) for v in rpy]).as_matrix()


def matrix_to_rpy(R) -> tuple[float, float, float]:
    """Inverse of rpy_to_matrix; at pitch = +-pi/2 (gimbal lock) roll is set to 0."""
    R = np.asarray(R, dtype=float)
    pitch = math.atan2(-R[2, 0], math.hypot(R[0, 0], R[1, 0]))
    if math.hypot(R[0, 0], R[1, 0]) > 1e-9:
        roll = math.atan2(R[2, 1], R[2, 2])
        yaw = math.atan2(R[1, 0], R[0, 0])
    else:  # R = Rz(yaw) Ry(+-pi/2): its y column is (-sin yaw, cos yaw, 0)
        roll = 0.0
        yaw = math.atan2(-R[0, 1], R[1, 1])
    return roll, pitch, yaw


def axis_angle_matrix(axis, angle: float) -> np.ndarray:
    """Rotation by `angle` about the unit vector `axis` (Rodrigues)."""
    k = np.asarray(axis, dtype=float)
    k = k / np.linalg.norm(k)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * (K @ K)


def transform(R=None, p=None) -> np.ndarray:
    """4x4 homogeneous transform from a rotation matrix and a translation."""
    T = np.eye(4)
    if R is not None:
        T[:3, :3] = R
    if p is not None:
        T[:3, 3] = p
    return T


# --------------------------------------------------------------------------- URDF generation


def _num(v: float) -> str:
    """A float as URDF text: 12 significant digits (stable across builds), no '-0'."""
    v = float(v)
    if abs(v) < 1e-12:
        v = 0.0
    return format(v, ".12g")


def _vec(values) -> str:
    return " ".join(_num(v) for v in values)


def _origin(parent: ET.Element, pos, R) -> None:
    ET.SubElement(parent, "origin", xyz=_vec(pos), rpy=_vec(matrix_to_rpy(R)))


def optical_frame_name(camera: str) -> str:
    """ROS optical frame of a MuJoCo camera: the spec's name, else `<name>_optical_frame` for
    a camera called `<name>_link`."""
    for cam in spec.CAMERAS.values():
        if cam.frame == camera:
            return cam.optical_frame
    return (camera[: -len("_link")] if camera.endswith("_link") else camera) + "_optical_frame"


def fixed_joint_name(child: str) -> str:
    """Name of the fixed joint above link `child`: `head_camera_link` -> `head_camera_joint`."""
    return (child[: -len("_link")] if child.endswith("_link") else child) + "_joint"


class _Generator:
    def __init__(self, model):
        import mujoco

        self.mj = mujoco
        self.m = model
        self.root_name = spec.FRAMES["base"]
        self.root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, self.root_name)
        if self.root < 0:
            raise ValueError(f"the model has no body {self.root_name!r} (spec.FRAMES['base'])")
        self.materials: dict[str, tuple[float, ...]] = {}

    # ---- model queries
    def name(self, obj, i: int) -> str:
        return self.mj.mj_id2name(self.m, obj, i) or ""

    def body_name(self, b: int) -> str:
        name = self.name(self.mj.mjtObj.mjOBJ_BODY, b)
        if not name:
            raise ValueError(f"body {b} below {self.root_name!r} has no name (URDF links need one)")
        return name

    def bodies(self) -> list[int]:
        """base_link and its descendants, parents before children (MuJoCo's body order)."""
        keep = {self.root}
        for b in range(self.root + 1, self.m.nbody):
            if int(self.m.body_parentid[b]) in keep:
                keep.add(b)
        return sorted(keep)

    def body_joints(self, b: int) -> list[int]:
        adr, num = int(self.m.body_jntadr[b]), int(self.m.body_jntnum[b])
        return list(range(adr, adr + num)) if num > 0 else []

    def actuator_effort(self, j: int) -> float | None:
        m = self.m
        if m.jnt_actfrclimited[j]:
            return float(np.max(np.abs(m.jnt_actfrcrange[j])))
        for a in range(m.nu):
            if m.actuator_trntype[a] == self.mj.mjtTrn.mjTRN_JOINT and m.actuator_trnid[a, 0] == j:
                if m.actuator_forcelimited[a]:
                    return float(np.max(np.abs(m.actuator_forcerange[a])) * abs(m.actuator_gear[a, 0]))
        return None

    def mimic(self, j: int) -> tuple[int, float, float] | None:
        """(leader joint, multiplier, offset) of an active joint equality q_j = c0 + c1 q_leader."""
        m = self.m
        for e in range(m.neq):
            if (m.eq_type[e] != self.mj.mjtEq.mjEQ_JOINT or m.eq_obj1id[e] != j or m.eq_obj2id[e] < 0
                    or not m.eq_active0[e]):
                continue
            c = m.eq_data[e, :5]
            if np.any(np.abs(c[2:]) > 0):
                raise ValueError(f"joint equality on {self.name(self.mj.mjtObj.mjOBJ_JOINT, j)!r} "
                                 "is not linear: URDF <mimic> cannot express it")
            return int(m.eq_obj2id[e]), float(c[1]), float(c[0])
        return None

    # ---- elements
    def material(self, g: int) -> str:
        m = self.m
        mat = int(m.geom_matid[g])
        if mat >= 0:
            name, rgba = self.name(self.mj.mjtObj.mjOBJ_MATERIAL, mat), m.mat_rgba[mat]
        else:
            name, rgba = None, m.geom_rgba[g]
        rgba = tuple(float(v) for v in rgba)
        name = name or "rgba_" + "_".join(format(v, ".6g") for v in rgba)
        self.materials.setdefault(name, rgba)
        return name

    def geom_elements(self, link: ET.Element, g: int, link_name: str) -> None:
        """<visual> or <collision> elements of geom g (a capsule gives three)."""
        m, T = self.m, self.mj.mjtGeom
        collision = bool(m.geom_contype[g] or m.geom_conaffinity[g])
        tag = "collision" if collision else "visual"
        kind, size = int(m.geom_type[g]), m.geom_size[g]
        pos, R = m.geom_pos[g], quat_to_matrix(m.geom_quat[g])
        material = None if collision else self.material(g)
        parts: list[tuple[np.ndarray, str, dict]] = []
        if kind == T.mjGEOM_BOX:
            parts.append((pos, "box", {"size": _vec(2 * size[:3])}))
        elif kind == T.mjGEOM_SPHERE:
            parts.append((pos, "sphere", {"radius": _num(size[0])}))
        elif kind == T.mjGEOM_CYLINDER:
            parts.append((pos, "cylinder", {"radius": _num(size[0]), "length": _num(2 * size[1])}))
        elif kind == T.mjGEOM_CAPSULE:
            r, h = size[0], size[1]
            link.append(ET.Comment(f" capsule r={_num(r)} half-length={_num(h)}: "
                                   "a cylinder and a sphere at each end "))
            parts.append((pos, "cylinder", {"radius": _num(r), "length": _num(2 * h)}))
            for sign in (1.0, -1.0):
                parts.append((pos + sign * h * R[:, 2], "sphere", {"radius": _num(r)}))
        elif kind == T.mjGEOM_MESH:
            raise NotImplementedError(f"geom {g} of {link_name!r} is a mesh: the URDF generator only "
                                      "exports primitives (robot.xml has no meshes)")
        else:
            raise ValueError(f"geom {g} of {link_name!r}: MuJoCo geom type {kind} has no URDF equivalent")
        for p, shape, attrs in parts:
            el = ET.SubElement(link, tag)
            _origin(el, p, R)
            ET.SubElement(ET.SubElement(el, "geometry"), shape, attrs)
            if material:
                ET.SubElement(el, "material", name=material)

    def link(self, robot: ET.Element, b: int) -> None:
        m, name = self.m, self.body_name(b)
        link = ET.SubElement(robot, "link", name=name)
        if m.body_mass[b] > 0:
            inertial = ET.SubElement(link, "inertial")
            _origin(inertial, m.body_ipos[b], quat_to_matrix(m.body_iquat[b]))
            ET.SubElement(inertial, "mass", value=_num(m.body_mass[b]))
            ixx, iyy, izz = m.body_inertia[b]
            ET.SubElement(inertial, "inertia", ixx=_num(ixx), ixy="0", ixz="0", iyy=_num(iyy),
                          iyz="0", izz=_num(izz))
        for g in range(m.ngeom):
            if m.geom_bodyid[g] == b:
                self.geom_elements(link, g, name)

    def joint(self, robot: ET.Element, b: int) -> None:
        """The URDF joint from b's parent link to b."""
        m, mj = self.m, self.mj
        parent, child = self.body_name(int(m.body_parentid[b])), self.body_name(b)
        joints = self.body_joints(b)
        if len(joints) > 1:
            raise ValueError(f"body {child!r} has {len(joints)} joints; a URDF link has one")
        if not joints:
            el = ET.SubElement(robot, "joint", name=fixed_joint_name(child), type="fixed")
        else:
            j = joints[0]
            jname = self.name(mj.mjtObj.mjOBJ_JOINT, j)
            kinds = {mj.mjtJoint.mjJNT_HINGE: "revolute", mj.mjtJoint.mjJNT_SLIDE: "prismatic"}
            kind = kinds.get(int(m.jnt_type[j]))
            if kind is None or not jname:
                raise ValueError(f"joint {jname or j} of {child!r}: only named hinge and slide joints "
                                 "map to URDF")
            if np.any(m.jnt_pos[j] != 0):
                raise ValueError(f"joint {jname!r} is not at its body's origin: the URDF link frame is "
                                 "the joint frame; move the body frame onto the joint in robot.xml")
            mimic = self.mimic(j)
            leader = self.name(mj.mjtObj.mjOBJ_JOINT, mimic[0]) if mimic else jname
            if leader not in spec.JOINT_BY_NAME:
                raise ValueError(f"joint {jname!r} is neither a robot_spec joint nor mimics one")
            if not m.jnt_limited[j]:
                if kind == "prismatic":
                    raise ValueError(f"prismatic joint {jname!r} has no range")
                kind = "continuous"
            el = ET.SubElement(robot, "joint", name=jname, type=kind)
        _origin(el, m.body_pos[b], quat_to_matrix(m.body_quat[b]))
        ET.SubElement(el, "parent", link=parent)
        ET.SubElement(el, "child", link=child)
        if not joints:
            return
        ET.SubElement(el, "axis", xyz=_vec(m.jnt_axis[j]))
        scale = abs(mimic[1]) if mimic else 1.0
        effort = self.actuator_effort(mimic[0] if mimic else j)
        velocity = spec.JOINT_BY_NAME[leader].max_velocity * scale
        if effort is None:
            raise ValueError(f"joint {jname!r}: no force-limited actuator gives its effort limit")
        limit = {"effort": _num(effort * scale), "velocity": _num(velocity)}
        if m.jnt_limited[j]:
            limit = {"lower": _num(m.jnt_range[j, 0]), "upper": _num(m.jnt_range[j, 1]), **limit}
        ET.SubElement(el, "limit", limit)
        dof = int(m.jnt_dofadr[j])
        ET.SubElement(el, "dynamics", damping=_num(m.dof_damping[dof]),
                      friction=_num(m.dof_frictionloss[dof]))
        if mimic:
            ET.SubElement(el, "mimic", joint=leader, multiplier=_num(mimic[1]), offset=_num(mimic[2]))

    def fixed_frame(self, robot: ET.Element, parent: str, child: str, pos, R) -> None:
        el = ET.SubElement(robot, "joint", name=fixed_joint_name(child), type="fixed")
        _origin(el, pos, R)
        ET.SubElement(el, "parent", link=parent)
        ET.SubElement(el, "child", link=child)
        ET.SubElement(robot, "link", name=child)

    def frames(self, robot: ET.Element, b: int) -> None:
        """Fixed links of b's cameras (camera + optical frame) and sites."""
        m, mj = self.m, self.mj
        body = self.body_name(b)
        for c in range(m.ncam):
            if m.cam_bodyid[c] != b:
                continue
            name = self.name(mj.mjtObj.mjOBJ_CAMERA, c)
            if not name:
                raise ValueError(f"camera {c} on {body!r} has no name")
            self.fixed_frame(robot, body, name, m.cam_pos[c], quat_to_matrix(m.cam_quat[c]))
            self.fixed_frame(robot, name, optical_frame_name(name), np.zeros(3), rpy_to_matrix(OPTICAL_RPY))
        for s in range(m.nsite):
            if m.site_bodyid[s] != b:
                continue
            name = self.name(mj.mjtObj.mjOBJ_SITE, s)
            if name:
                self.fixed_frame(robot, body, name, m.site_pos[s], quat_to_matrix(m.site_quat[s]))

    def urdf(self) -> str:
        base_joints = [self.name(self.mj.mjtObj.mjOBJ_JOINT, j) for j in self.body_joints(self.root)]
        if base_joints != list(spec.BASE_JOINTS):
            raise ValueError(f"{self.root_name!r} carries joints {base_joints}, expected the virtual "
                             f"base joints {list(spec.BASE_JOINTS)}")
        model_name = bytes(self.m.names[: self.m.names.index(b"\0")]).decode()  # <mujoco model=...>
        robot = ET.Element("robot", name=model_name or "robot")
        body_el = ET.Element("robot")  # links and joints, after the materials
        for b in self.bodies():
            if b != self.root:
                self.joint(body_el, b)
            self.link(body_el, b)
            self.frames(body_el, b)
        for name, rgba in self.materials.items():
            # float32 in MuJoCo: 6 significant digits give back what robot.xml says
            ET.SubElement(ET.SubElement(robot, "material", name=name), "color",
                          rgba=" ".join(format(v, ".6g") for v in rgba))
        robot.extend(list(body_el))
        ET.indent(robot, space="  ")
        header = (
            '<?xml version="1.0"?>\n'
            "<!-- Generated from the MuJoCo model (brs_sim/models/robot.xml) by brs_sim.urdf: do not edit.\n"
            f"     Regenerate: {REGENERATE}\n"
            "     base_link is the root (base_x / base_y / base_yaw are not here: odom -> base_link comes\n"
            "     from odometry). <name>_camera_link: MuJoCo camera frame (looks along -z, +y up);\n"
            "     <name>_camera_optical_frame: ROS optical frame (z forward, x right, y down). -->\n"
        )
        return header + ET.tostring(robot, encoding="unicode") + "\n"


def robot_urdf(model=None) -> str:
    """URDF text of the robot in `model` (default: the compiled robot.xml)."""
    if model is None:
        from .model import load_model

        model = load_model("robot")
    return _Generator(model).urdf()


# --------------------------------------------------------------------------- URDF kinematics


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str  # revolute | continuous | prismatic | fixed
    parent: str
    child: str
    origin: np.ndarray  # 4x4, child frame at q = 0 in the parent frame
    axis: np.ndarray  # unit vector in the child (joint) frame
    lower: float | None = None
    upper: float | None = None
    mimic: tuple[str, float, float] | None = None  # (joint, multiplier, offset)


def _floats(text: str | None, n: int, default: float = 0.0) -> np.ndarray:
    if text is None:
        return np.full(n, default)
    values = np.array([float(v) for v in text.split()])
    if values.shape != (n,):
        raise ValueError(f"expected {n} numbers, got {text!r}")
    return values


def _child_link(el: ET.Element, tag: str) -> str:
    child = el.find(tag)
    if child is None or not child.get("link"):
        raise ValueError(f"joint {el.get('name')!r} has no <{tag} link=...>")
    return child.get("link")


class UrdfKinematics:
    """The kinematic tree of a URDF: links, joints, root, in parent-first order.

    `urdf`: URDF text (a str containing '<') or a file path. `UrdfKinematics.parse(text)` takes
    text only. Raises ValueError for what is not a single tree of supported joints.
    """

    def __init__(self, urdf: str | os.PathLike):
        if isinstance(urdf, os.PathLike) or "<" not in urdf:
            urdf = Path(urdf).read_text()
        self._load(urdf)

    @classmethod
    def parse(cls, text: str) -> UrdfKinematics:
        kin = cls.__new__(cls)
        kin._load(text)
        return kin

    def _load(self, text: str) -> None:
        try:
            robot = ET.fromstring(text)
        except ET.ParseError as e:
            raise ValueError(f"URDF is not well-formed XML: {e}") from None
        if robot.tag != "robot":
            raise ValueError(f"URDF root element is <{robot.tag}>, expected <robot>")
        self.name = robot.get("name", "")
        links = [el.get("name") for el in robot.findall("link")]
        if len(set(links)) != len(links):
            raise ValueError("URDF has duplicate link names")
        joints: dict[str, UrdfJoint] = {}
        for el in robot.findall("joint"):
            name, kind = el.get("name"), el.get("type")
            if kind not in ("revolute", "continuous", "prismatic", "fixed"):
                raise ValueError(f"joint {name!r}: type {kind!r} is not supported")
            origin = el.find("origin")
            xyz = _floats(origin.get("xyz") if origin is not None else None, 3)
            rpy = _floats(origin.get("rpy") if origin is not None else None, 3)
            axis_el, limit, mimic_el = el.find("axis"), el.find("limit"), el.find("mimic")
            axis = np.array([1.0, 0.0, 0.0]) if axis_el is None else _floats(axis_el.get("xyz", "1 0 0"), 3)
            if kind != "fixed" and np.linalg.norm(axis) == 0:
                raise ValueError(f"joint {name!r} has a zero axis")
            mimic = None
            if mimic_el is not None:
                mimic = (mimic_el.get("joint"), float(mimic_el.get("multiplier", 1.0)),
                         float(mimic_el.get("offset", 0.0)))
            lower = upper = None
            if limit is not None and kind in ("revolute", "prismatic"):
                lower, upper = float(limit.get("lower", 0.0)), float(limit.get("upper", 0.0))
            if name in joints:
                raise ValueError(f"URDF has two joints named {name!r}")
            joints[name] = UrdfJoint(
                name=name, type=kind, parent=_child_link(el, "parent"), child=_child_link(el, "child"),
                origin=transform(rpy_to_matrix(rpy), xyz),
                axis=axis / (np.linalg.norm(axis) or 1.0), lower=lower, upper=upper, mimic=mimic)
        known = set(links)
        by_child: dict[str, UrdfJoint] = {}
        for j in joints.values():
            if j.parent not in known or j.child not in known:
                raise ValueError(f"joint {j.name!r} connects unknown links {j.parent!r} -> {j.child!r}")
            if j.child in by_child:
                raise ValueError(f"link {j.child!r} has two parent joints")
            by_child[j.child] = j
            if j.mimic and j.mimic[0] not in joints:
                raise ValueError(f"joint {j.name!r} mimics unknown joint {j.mimic[0]!r}")
        for j in joints.values():  # mimic chains must end at a joint of its own
            seen = {j.name}
            while j.mimic:
                j = joints[j.mimic[0]]
                if j.name in seen:
                    raise ValueError(f"mimic joints form a cycle through {j.name!r}")
                seen.add(j.name)
        roots = [name for name in links if name not in by_child]
        if len(roots) != 1:
            raise ValueError(f"URDF must have one root link, has {roots}")
        self.root = roots[0]
        children: dict[str, list[UrdfJoint]] = {}
        for j in joints.values():
            children.setdefault(j.parent, []).append(j)
        order: list[UrdfJoint] = []
        stack = [self.root]
        while stack:  # parent-first walk; a cycle would leave links unreached
            link = stack.pop()
            for j in children.get(link, []):
                order.append(j)
                stack.append(j.child)
        if len(order) != len(joints):
            raise ValueError("URDF joints do not form a tree")
        self.joints: dict[str, UrdfJoint] = {j.name: j for j in order}
        self.links: tuple[str, ...] = (self.root,) + tuple(j.child for j in order)
        self.movable: tuple[str, ...] = tuple(j.name for j in order if j.type != "fixed" and not j.mimic)

    def position(self, joint: str, joint_positions: Mapping[str, float]) -> float:
        """Position of `joint`: from joint_positions (0 if absent), or from its mimic leader."""
        j = self.joints[joint]
        if j.mimic:
            leader, multiplier, offset = j.mimic
            return multiplier * self.position(leader, joint_positions) + offset
        return float(joint_positions.get(joint, 0.0))

    def joint_transforms(self, joint_positions: Mapping[str, float]) -> list[tuple[UrdfJoint, np.ndarray]]:
        """(joint, 4x4 child frame in the parent link's frame) for every joint, parent-first: what
        robot_state_publisher broadcasts, fixed joints on /tf_static and the others on /tf."""
        out = []
        for j in self.joints.values():
            T = j.origin
            if j.type in ("revolute", "continuous"):
                T = T @ transform(R=axis_angle_matrix(j.axis, self.position(j.name, joint_positions)))
            elif j.type == "prismatic":
                T = T @ transform(p=j.axis * self.position(j.name, joint_positions))
            out.append((j, T))
        return out

    def tf_edges(self, joint_positions: Mapping[str, float], base_pose=None, moving: bool = True,
                 fixed: bool = True) -> list[tuple[str, str, np.ndarray]]:
        """(parent, child, 4x4) as tf carries them: odom -> root from a planar `base_pose` (x, y, yaw)
        when given, then the movable joints (`moving`) and the fixed ones (`fixed`, /tf_static)."""
        edges = []
        if base_pose is not None:
            x, y, yaw = (float(v) for v in base_pose)
            edges.append((spec.FRAMES["odom"], self.root, transform(axis_angle_matrix((0.0, 0.0, 1.0), yaw),
                                                                    (x, y, 0.0))))
        for j, T in self.joint_transforms(joint_positions):
            if (fixed if j.type == "fixed" else moving):
                edges.append((j.parent, j.child, T))
        return edges

    def transforms(self, joint_positions: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Pose (4x4) of every link in the root link's frame."""
        poses = {self.root: np.eye(4)}
        for j, T in self.joint_transforms(joint_positions):
            poses[j.child] = poses[j.parent] @ T
        return poses


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> UrdfKinematics:
    return UrdfKinematics.parse(text)


def link_transforms(urdf_or_model, joint_positions: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Pose (4x4) of every frame of the URDF in its root frame (base_link), as robot_state_publisher
    would publish them (composed down the tree).

    `urdf_or_model`: a UrdfKinematics, URDF text, a URDF file path, or a MuJoCo model (its URDF is
    generated). `joint_positions`: name -> position (rad, m), e.g. from /joint_states. Names
    that are not URDF joints (wheels, base joints) are ignored, missing joints count as 0, and
    mimic joints follow their leader (their own entries are ignored).
    """
    if isinstance(urdf_or_model, UrdfKinematics):
        kin = urdf_or_model
    elif hasattr(urdf_or_model, "nbody"):  # a mujoco.MjModel
        kin = _parsed(robot_urdf(urdf_or_model))
    elif isinstance(urdf_or_model, str) and "<" in urdf_or_model:
        kin = _parsed(urdf_or_model)
    else:
        kin = UrdfKinematics(Path(urdf_or_model))
    return kin.transforms(joint_positions)


# --------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brs_sim.urdf",
                                     description="Print (or write) the robot's URDF generated from robot.xml.")
    parser.add_argument("-o", "--output", type=Path, help="write it to this file instead of stdout")
    args = parser.parse_args(argv)
    text = robot_urdf()
    if args.output:
        args.output.write_text(text)
        print(f"wrote {args.output} ({len(text)} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
