"""The URDF generated from robot.xml (brs_sim.urdf): joints, links and inertials against the MJCF and
the spec; forward kinematics of three URDF readers (MuJoCo's URDF importer, a scipy-based reference
written here, brs_sim.urdf.link_transforms) against the MJCF model at random configurations; the
committed models/robot.urdf is what the generator writes.

No ROS. ~2 s.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter

import mujoco
import numpy as np
import pytest
from brs_common import robot_spec as spec
from scipy.spatial.transform import Rotation

from brs_sim import urdf as urdf_mod
from brs_sim.model import JointMap, load_model, mirror_joint
from brs_sim.urdf import REGENERATE, URDF_PATH, UrdfKinematics, link_transforms, robot_urdf

# MuJoCo's URDF extension: keep the massless fixed frames (cameras, ee sites) as bodies, and the
# visual geoms.
MUJOCO_EXTENSION = '<mujoco><compiler discardvisual="false" fusestatic="false"/></mujoco>'
N_CONFIGS = 50
POS_TOL = 1e-3  # m
ROT_TOL = math.radians(0.1)
FLIP = np.diag([1.0, -1.0, -1.0])  # MuJoCo camera frame -> ROS optical frame (pi about x)
GRIPPERS = [n for n in spec.STATE_JOINTS if n.endswith("_gripper_joint")]
JOINT_TYPES = {int(mujoco.mjtJoint.mjJNT_HINGE): "revolute", int(mujoco.mjtJoint.mjJNT_SLIDE): "prismatic"}


@pytest.fixture(scope="module")
def mjcf() -> mujoco.MjModel:
    return load_model("robot")


@pytest.fixture(scope="module")
def text(mjcf) -> str:
    return robot_urdf(mjcf)


@pytest.fixture(scope="module")
def xml(text) -> ET.Element:
    return ET.fromstring(text)


@pytest.fixture(scope="module")
def from_urdf(text) -> mujoco.MjModel:
    """The URDF compiled by MuJoCo's own URDF importer."""
    return mujoco.MjModel.from_xml_string(text.replace("</robot>", MUJOCO_EXTENSION + "</robot>"))


def floats(s: str) -> np.ndarray:
    return np.array([float(v) for v in s.split()])


def urdf_joints(xml: ET.Element, movable: bool = True) -> dict[str, ET.Element]:
    return {j.get("name"): j for j in xml.iter("joint") if (j.get("type") != "fixed") == movable}


def robot_bodies(m: mujoco.MjModel) -> list[str]:
    return [m.body(b).name for b in range(1, m.nbody)]  # the robot model: everything but the world


def pose(p, R) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.asarray(R).reshape(3, 3)
    T[:3, 3] = p
    return T


def mjcf_frames(m: mujoco.MjModel, d: mujoco.MjData) -> dict[str, np.ndarray]:
    """Every URDF frame as the MJCF model places it (world = base_link with the base joints at 0)."""
    frames = {m.body(b).name: pose(d.xpos[b], d.xmat[b]) for b in range(1, m.nbody)}
    for c in range(m.ncam):
        frames[m.camera(c).name] = pose(d.cam_xpos[c], d.cam_xmat[c])
        flipped = d.cam_xmat[c].reshape(3, 3) @ FLIP
        frames[urdf_mod.optical_frame_name(m.camera(c).name)] = pose(d.cam_xpos[c], flipped)
    for s in range(m.nsite):
        frames[m.site(s).name] = pose(d.site_xpos[s], d.site_xmat[s])
    return frames


def reference_fk(xml: ET.Element, q: dict[str, float]) -> dict[str, np.ndarray]:
    """An independent URDF reader for the comparison: scipy rotations, recursion up the tree."""
    above = {j.find("child").get("link"): j for j in xml.iter("joint")}
    movable = urdf_joints(xml)
    poses: dict[str, np.ndarray] = {}

    def value(name: str) -> float:
        mimic = movable[name].find("mimic")
        if mimic is None:
            return q.get(name, 0.0)
        return float(mimic.get("multiplier")) * value(mimic.get("joint")) + float(mimic.get("offset"))

    def link_pose(link: str) -> np.ndarray:
        if link not in poses:
            j = above.get(link)
            if j is None:
                poses[link] = np.eye(4)
            else:
                origin = j.find("origin")
                rot = Rotation.from_euler("xyz", floats(origin.get("rpy")))  # extrinsic = URDF rpy
                T = link_pose(j.find("parent").get("link")) @ pose(floats(origin.get("xyz")), rot.as_matrix())
                if j.get("type") != "fixed":
                    axis = floats(j.find("axis").get("xyz"))
                    if j.get("type") == "prismatic":
                        T = T @ pose(axis * value(j.get("name")), np.eye(3))
                    else:
                        T = T @ pose(np.zeros(3), Rotation.from_rotvec(axis * value(j.get("name"))).as_matrix())
                poses[link] = T
        return poses[link]

    for link in xml.iter("link"):
        link_pose(link.get("name"))
    return poses


def errors(A: np.ndarray, B: np.ndarray) -> tuple[float, float]:
    """(position error m, rotation error rad) between two poses."""
    # |dR - I|_F = 2 sqrt(2) sin(angle / 2): exact near 0, where acos of the trace is not
    dR = A[:3, :3].T @ B[:3, :3]
    angle = 2 * math.asin(min(1.0, float(np.linalg.norm(dR - np.eye(3))) / (2 * math.sqrt(2))))
    return float(np.linalg.norm(A[:3, 3] - B[:3, 3])), angle


# --------------------------------------------------------------------------- structure


def test_joints_match_mjcf_and_spec(mjcf, xml, from_urdf):
    joints = urdf_joints(xml)
    # every MJCF joint except the virtual base joints, and nothing else
    assert sorted(joints) == sorted(mjcf.joint(j).name for j in range(mjcf.njnt)
                                    if mjcf.joint(j).name not in spec.BASE_JOINTS)
    assert set(joints) == set(spec.STATE_JOINTS) | {mirror_joint(g) for g in GRIPPERS}
    all_joints = {j.get("name") for j in xml.iter("joint")}
    assert not all_joints & set(spec.BASE_JOINTS)
    for name, el in joints.items():
        jnt, imported = mjcf.joint(name), from_urdf.joint(name)
        mimic = el.find("mimic")
        leader = mimic.get("joint") if mimic is not None else name
        sj = spec.JOINT_BY_NAME[leader]
        kind = "prismatic" if sj.group.endswith("_gripper") else "revolute"
        assert el.get("type") == kind == JOINT_TYPES[int(jnt.type[0])], name
        assert imported.type[0] == jnt.type[0], name
        # the link frame is the MJCF body frame, the joint sits at its origin
        assert el.find("child").get("link") == mjcf.body(jnt.bodyid[0]).name, name
        assert el.find("parent").get("link") == mjcf.body(mjcf.body(jnt.bodyid[0]).parentid[0]).name
        np.testing.assert_array_equal(jnt.pos, 0)
        axis = floats(el.find("axis").get("xyz"))
        np.testing.assert_allclose(axis, jnt.axis, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(imported.axis, jnt.axis, atol=1e-12, err_msg=name)
        limit = el.find("limit")
        lo, hi = float(limit.get("lower")), float(limit.get("upper"))
        np.testing.assert_allclose([lo, hi], jnt.range, atol=1e-12, err_msg=name)
        np.testing.assert_allclose([lo, hi], [sj.lower, sj.upper], atol=1e-12, err_msg=name)
        assert imported.limited[0] == 1
        np.testing.assert_allclose(imported.range, jnt.range, atol=1e-12, err_msg=name)
        assert float(limit.get("velocity")) == pytest.approx(sj.max_velocity), name
        act = mjcf.actuator(leader)  # actuators are named like their spec joint
        assert float(limit.get("effort")) == pytest.approx(np.abs(act.forcerange).max()), name
        assert float(el.find("dynamics").get("damping")) == pytest.approx(mjcf.dof_damping[jnt.dofadr[0]])


def test_finger2_mimics_the_gripper_joint_like_the_mjcf_equality(mjcf, xml, from_urdf):
    joints = urdf_joints(xml)
    mimics = {n: el.find("mimic") for n, el in joints.items() if el.find("mimic") is not None}
    assert set(mimics) == {mirror_joint(g) for g in GRIPPERS}
    for g in GRIPPERS:
        finger2 = mirror_joint(g)
        eq = [e for e in range(mjcf.neq) if mjcf.eq_obj1id[e] == mjcf.joint(finger2).id]
        assert len(eq) == 1 and mjcf.eq_type[eq[0]] == mujoco.mjtEq.mjEQ_JOINT
        assert mjcf.eq_obj2id[eq[0]] == mjcf.joint(g).id
        c0, c1 = mjcf.eq_data[eq[0], :2]
        m = mimics[finger2]
        assert m.get("joint") == g
        assert float(m.get("multiplier")) == pytest.approx(c1) and float(m.get("offset")) == pytest.approx(c0)
    # MuJoCo's importer turns each <mimic> back into the same joint equality
    pairs = {(from_urdf.joint(from_urdf.eq_obj1id[e]).name, from_urdf.joint(from_urdf.eq_obj2id[e]).name)
             for e in range(from_urdf.neq) if from_urdf.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT}
    assert pairs == {(mirror_joint(g), g) for g in GRIPPERS}


def test_links_are_bodies_cameras_optical_frames_and_sites(mjcf, text, xml):
    links = [el.get("name") for el in xml.iter("link")]
    assert len(links) == len(set(links))
    cameras = [mjcf.camera(c).name for c in range(mjcf.ncam)]
    expected = (set(robot_bodies(mjcf)) | set(cameras) | {mjcf.site(s).name for s in range(mjcf.nsite)}
                | {urdf_mod.optical_frame_name(c) for c in cameras})
    assert set(links) == expected
    for cam in spec.CAMERAS.values():
        assert cam.frame in links and cam.optical_frame in links
    for key, frame in spec.FRAMES.items():
        assert (frame in links) == (key != "odom"), key
    kin = UrdfKinematics(text)
    assert kin.root == spec.FRAMES["base"]
    assert set(kin.movable) == set(spec.STATE_JOINTS)  # the /joint_states joints; fingers 2 mimic
    # the optical frames hang off their camera links turned by pi about x, nothing else
    for cam in spec.CAMERAS.values():
        j = kin.joints[f"{cam.optical_frame}_joint"]
        assert (j.type, j.parent, j.child) == ("fixed", cam.frame, cam.optical_frame)
        np.testing.assert_allclose(j.origin, pose(np.zeros(3), FLIP), atol=1e-12)


def test_inertials_match_mjcf(mjcf, xml, from_urdf):
    inertials = {el.get("name"): el.find("inertial") for el in xml.iter("link")}
    for name in robot_bodies(mjcf):
        body = mjcf.body(name)
        el = inertials[name]
        assert float(el.find("mass").get("value")) == pytest.approx(body.mass[0]), name
        np.testing.assert_allclose(floats(el.find("origin").get("xyz")), body.ipos, atol=1e-12)
        imported = from_urdf.body(name)
        assert imported.mass[0] == pytest.approx(body.mass[0]), name
        np.testing.assert_allclose(imported.ipos, body.ipos, atol=1e-9, err_msg=name)
        # principal moments (MuJoCo may order the principal axes differently)
        np.testing.assert_allclose(np.sort(imported.inertia), np.sort(body.inertia), rtol=1e-9, err_msg=name)
        # the full inertia tensor in the body frame
        I_m = Rotation.from_quat(body.iquat, scalar_first=True).as_matrix()
        I_u = Rotation.from_quat(imported.iquat, scalar_first=True).as_matrix()
        np.testing.assert_allclose(I_u @ np.diag(imported.inertia) @ I_u.T, I_m @ np.diag(body.inertia) @ I_m.T,
                                   atol=1e-12, err_msg=name)
    for frame in set(inertials) - set(robot_bodies(mjcf)):
        assert inertials[frame] is None, f"fixed frame {frame} has no mass"
    total = sum(mjcf.body_mass[1:])
    assert sum(from_urdf.body_mass) == pytest.approx(total)


def test_geometry_matches_mjcf(mjcf, xml, from_urdf):
    """Visual = MJCF geoms that collide with nothing, collision = the others; a capsule gives a
    cylinder and two spheres of its radius."""
    parts = {int(mujoco.mjtGeom.mjGEOM_CAPSULE): 3}
    for link in xml.iter("link"):
        name = link.get("name")
        if name not in robot_bodies(mjcf):
            assert not list(link), f"fixed frame {name} has no geometry"
            continue
        want = Counter()
        for g in range(mjcf.ngeom):
            if mjcf.body(mjcf.geom_bodyid[g]).name == name:
                tag = "collision" if (mjcf.geom_contype[g] or mjcf.geom_conaffinity[g]) else "visual"
                want[tag] += parts.get(int(mjcf.geom_type[g]), 1)
        got = Counter(el.tag for el in link if el.tag in ("visual", "collision"))
        assert got == want, name
        for el in link.iter("visual"):
            assert el.find("material") is not None
    capsules = int(np.sum(mjcf.geom_type == mujoco.mjtGeom.mjGEOM_CAPSULE))
    assert capsules > 0
    assert from_urdf.ngeom == mjcf.ngeom + 2 * capsules
    # a capsule's extent survives: cylinder ends at the sphere centres
    cyl = [el for el in xml.iter("collision") if el.find("geometry/cylinder") is not None]
    assert cyl, "the capsules' cylinders are collision geometry"


# --------------------------------------------------------------------------- kinematics


def test_fk_of_three_urdf_readers_matches_the_mjcf(mjcf, text, xml, from_urdf):
    rng = np.random.default_rng(7)
    jm = JointMap(mjcf)
    d_mjcf, d_urdf = mujoco.MjData(mjcf), mujoco.MjData(from_urdf)
    movable = urdf_joints(xml)
    kin = UrdfKinematics(text)
    lower = np.array([spec.JOINT_BY_NAME[n].lower for n in spec.STATE_JOINTS])
    upper = np.array([spec.JOINT_BY_NAME[n].upper for n in spec.STATE_JOINTS])
    worst = {"mujoco_urdf": [0.0, 0.0], "reference": [0.0, 0.0], "link_transforms": [0.0, 0.0]}
    n_frames = 0
    for i in range(N_CONFIGS):
        q = rng.uniform(lower, upper) if i else np.zeros(len(lower))
        named = dict(zip(spec.STATE_JOINTS, q.tolist()))
        jm.set_state_qpos(d_mjcf, q)  # base joints stay 0: world = base_link
        mujoco.mj_kinematics(mjcf, d_mjcf)
        mujoco.mj_camlight(mjcf, d_mjcf)  # camera poses (mj_kinematics leaves them alone)
        want = mjcf_frames(mjcf, d_mjcf)
        for name, el in movable.items():
            mimic = el.find("mimic")
            value = named[name] if mimic is None else (
                float(mimic.get("multiplier")) * named[mimic.get("joint")] + float(mimic.get("offset")))
            d_urdf.qpos[from_urdf.joint(name).qposadr[0]] = value
        mujoco.mj_kinematics(from_urdf, d_urdf)
        got = {
            "mujoco_urdf": {from_urdf.body(b).name: pose(d_urdf.xpos[b], d_urdf.xmat[b])
                            for b in range(1, from_urdf.nbody)},
            "reference": reference_fk(xml, named),
            "link_transforms": link_transforms(kin, named),
        }
        for reader, frames in got.items():
            assert set(frames) == set(want), reader
            for frame, T in frames.items():
                dp, da = errors(T, want[frame])
                assert dp < POS_TOL and da < ROT_TOL, (reader, frame, i, dp, math.degrees(da))
                worst[reader][0] = max(worst[reader][0], dp)
                worst[reader][1] = max(worst[reader][1], da)
        frames = got["link_transforms"]
        for cam in spec.CAMERAS.values():  # optical = camera frame turned by pi about x
            np.testing.assert_allclose(frames[cam.optical_frame][:3, :3], frames[cam.frame][:3, :3] @ FLIP,
                                       atol=1e-9)
        n_frames += len(want)
    assert n_frames == N_CONFIGS * len(list(xml.iter("link")))
    print("\nworst FK error vs the MJCF over", N_CONFIGS, "configurations:",
          ", ".join(f"{r} {1e3 * p:.2e} mm {math.degrees(a):.2e} deg" for r, (p, a) in worst.items()))


def test_link_transforms_inputs_and_joint_semantics(mjcf, text):
    q = {n: 0.3 for n in spec.STATE_JOINTS}
    ref = link_transforms(text, q)
    for source in (UrdfKinematics(text), URDF_PATH, str(URDF_PATH), mjcf):
        got = link_transforms(source, q)
        assert set(got) == set(ref)
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], atol=1e-12, err_msg=k)
    np.testing.assert_array_equal(ref[spec.FRAMES["base"]], np.eye(4))
    # names outside the URDF (base, wheels) are ignored; a mimic joint's own entry too
    extra = {**q, "base_x": 1.0, spec.WHEELS[0].joint: 2.0, mirror_joint(GRIPPERS[0]): 0.0}
    for k, T in link_transforms(text, extra).items():
        np.testing.assert_allclose(T, ref[k], atol=1e-12, err_msg=k)
    # missing joints count as 0
    zero = link_transforms(text, {})
    home = link_transforms(text, {n: 0.0 for n in spec.STATE_JOINTS})
    for k in zero:
        np.testing.assert_allclose(zero[k], home[k], atol=1e-12)
    # opening the gripper moves both fingers apart, by the same amount
    g = GRIPPERS[0]
    side = g.split("_")[0]
    opened = link_transforms(text, {g: 0.04})
    gap = lambda f: np.linalg.norm(f[f"{side}_gripper_finger1"][:3, 3] - f[f"{side}_gripper_finger2"][:3, 3])  # noqa: E731
    assert gap(opened) - gap(zero) == pytest.approx(0.08)


@pytest.mark.parametrize("broken, message", [
    ("<mujoco/>", "expected <robot>"),
    ("<robot", "well-formed"),
    ('<robot><link name="a"/><link name="b"/></robot>', "one root link"),
    ('<robot><link name="a"/><link name="b"/><joint name="j" type="fixed"><parent link="a"/>'
     '<child link="c"/></joint></robot>', "unknown links"),
    ('<robot><link name="a"/><link name="b"/><joint name="j" type="floating"><parent link="a"/>'
     '<child link="b"/></joint></robot>', "not supported"),
    ('<robot><link name="a"/><link name="b"/><joint name="j" type="revolute"><parent link="a"/>'
     '<child link="b"/><axis xyz="0 0 1"/><mimic joint="k"/></joint></robot>', "mimics unknown joint"),
    ('<robot><link name="a"/><link name="b"/><link name="c"/>'
     '<joint name="j" type="revolute"><parent link="a"/><child link="b"/><mimic joint="k"/></joint>'
     '<joint name="k" type="revolute"><parent link="b"/><child link="c"/><mimic joint="j"/></joint></robot>',
     "cycle"),
    ('<robot><link name="a"/><link name="b"/><joint name="j" type="fixed"><child link="b"/></joint></robot>',
     "no <parent"),
    ("", "well-formed"),
])
def test_urdf_kinematics_rejects_broken_urdf(broken, message):
    with pytest.raises(ValueError, match=message):
        UrdfKinematics.parse(broken)


def _tiny_model(body: str, asset: str = "") -> mujoco.MjModel:
    axes = ("1 0 0", "0 1 0", "0 0 1")  # base_x, base_y (slides), base_yaw (hinge)
    base = "".join(f'<joint name="{n}" type="{"hinge" if k == 2 else "slide"}" axis="{axes[k]}"/>'
                   for k, n in enumerate(spec.BASE_JOINTS))
    return mujoco.MjModel.from_xml_string(
        f'<mujoco><asset>{asset}</asset><worldbody><body name="{spec.FRAMES["base"]}">{base}'
        f'<geom size="0.1"/>{body}</body></worldbody></mujoco>')


@pytest.mark.parametrize("body, asset, error, message", [
    ('<body name="b"><joint name="torso_joint1" type="ball"/><geom size="0.1"/></body>', "",
     ValueError, "hinge and slide"),
    ('<body name="b"><joint name="torso_joint1" pos="0 0 0.1" axis="0 1 0"/><geom size="0.1"/></body>', "",
     ValueError, "not at its body's origin"),
    ('<body name="b"><joint name="not_a_spec_joint" axis="0 1 0"/><geom size="0.1"/></body>', "",
     ValueError, "robot_spec"),
    ('<body name="b"><geom type="ellipsoid" size="0.1 0.2 0.3"/></body>', "", ValueError, "no URDF equivalent"),
    ('<body name="b"><geom type="mesh" mesh="m"/></body>', '<mesh name="m" vertex="0 0 0 1 0 0 0 1 0 0 0 1"/>',
     NotImplementedError, "mesh"),
])
def test_generator_refuses_what_urdf_cannot_say(body, asset, error, message):
    with pytest.raises(error, match=message):
        robot_urdf(_tiny_model(body, asset))


# --------------------------------------------------------------------------- committed copy, CLI


def test_committed_urdf_is_up_to_date(text):
    assert URDF_PATH.is_file(), f"{URDF_PATH} is missing; generate it with: {REGENERATE}"
    assert URDF_PATH.read_text() == text, (
        f"{URDF_PATH.name} is out of date with robot.xml / brs_sim.urdf; regenerate it with: {REGENERATE}")


def test_cli_prints_and_writes_the_urdf(text, tmp_path, capsys):
    assert urdf_mod.main([]) == 0
    assert capsys.readouterr().out == text
    out = tmp_path / "robot.urdf"
    assert urdf_mod.main(["-o", str(out)]) == 0
    assert out.read_text() == text
