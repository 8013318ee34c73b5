"""The MuJoCo robot and scene models: spec conformance, servo tracking, base motion, grasping.

Physics only (no ROS, no rendering): every test steps MuJoCo directly.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
from brs_common import robot_spec as spec

from brs_sim.model import MODELS_DIR, JointMap, load_model, mirror_joint

POSITION_JOINTS = [j.name for j in spec.JOINTS if not j.velocity_controlled]
ARM_TORSO_JOINTS = [n for n in POSITION_JOINTS if "gripper" not in n]


@pytest.fixture(scope="module")
def scene() -> mujoco.MjModel:
    return load_model("scene")


@pytest.fixture(scope="module")
def robot() -> mujoco.MjModel:
    return load_model("robot")


def home_data(model: mujoco.MjModel) -> mujoco.MjData:
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    return data


def step(model, data, seconds: float) -> None:
    for _ in range(round(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)


# --------------------------------------------------------------------------- spec conformance


@pytest.mark.parametrize("which", ["robot", "scene"])
def test_joints_and_actuators_match_spec(which):
    model = load_model(which)
    assert model.opt.timestep == pytest.approx(0.002)
    assert model.nu == spec.ACTION_DIM
    # one actuator per spec joint, named like it, in the 21-D action order
    assert [model.actuator(i).name for i in range(model.nu)] == list(spec.ACTION_JOINTS)
    for j in spec.JOINTS:
        jnt = model.joint(j.name)
        act = model.actuator(j.name)
        assert act.trnid[0] == jnt.id, j.name
        assert act.trntype[0] == mujoco.mjtTrn.mjTRN_JOINT
        assert act.ctrllimited[0] == 1
        if j.velocity_controlled:
            kind = mujoco.mjtJoint.mjJNT_HINGE if j.name == "base_yaw" else mujoco.mjtJoint.mjJNT_SLIDE
            assert jnt.type[0] == kind
            assert jnt.limited[0] == 0, "virtual base joints are unbounded positions"
            np.testing.assert_array_equal(act.ctrlrange, [-j.max_velocity, j.max_velocity])
            # velocity servo: no position term, force = kv * (ctrl - qvel)
            assert act.biasprm[1] == 0 and act.biasprm[2] < 0
        else:
            kind = mujoco.mjtJoint.mjJNT_SLIDE if "gripper" in j.name else mujoco.mjtJoint.mjJNT_HINGE
            assert jnt.type[0] == kind, j.name
            assert jnt.limited[0] == 1, j.name
            np.testing.assert_array_equal(jnt.range, [j.lower, j.upper], err_msg=j.name)
            np.testing.assert_array_equal(act.ctrlrange, [j.lower, j.upper], err_msg=j.name)
            # position servo: force = kp * (ctrl - qpos) - ...
            assert act.gainprm[0] > 0 and act.biasprm[1] == -act.gainprm[0], j.name
    # base joints: x, y, yaw in that order on base_link, axes in the world frame
    base = model.body("base_link")
    names = [model.joint(base.jntadr[0] + k).name for k in range(base.jntnum[0])]
    assert names == list(spec.BASE_JOINTS)
    np.testing.assert_array_equal(model.joint("base_x").axis, [1, 0, 0])
    np.testing.assert_array_equal(model.joint("base_y").axis, [0, 1, 0])
    np.testing.assert_array_equal(model.joint("base_yaw").axis, [0, 0, 1])
    assert model.body("base_link").parentid[0] == 0


def test_robot_xml_compiles_alone(robot):
    # the kinematic model: the robot and nothing else (no free bodies, no world geometry)
    assert robot.nq == robot.nv == len(spec.JOINTS) + 2  # + the two mirror fingers
    assert all(robot.jnt_type != mujoco.mjtJoint.mjJNT_FREE)
    assert all(robot.geom_bodyid != 0)
    jm = JointMap(robot)
    assert set(jm.frames) == {"base", "torso", "left_ee", "right_ee"}


@pytest.mark.parametrize("which", ["robot", "scene"])
def test_cameras_match_spec(which):
    model = load_model(which)
    for cam in spec.CAMERAS.values():
        c = model.camera(cam.frame)
        assert c.fovy[0] == pytest.approx(cam.fovy_deg), cam.frame
    # head camera rides on the torso top, wrist cameras on the wrist roll links
    assert model.body(model.camera("head_camera_link").bodyid[0]).name == spec.FRAMES["torso"]
    for side in ("left", "right"):
        body = model.body(model.camera(f"{side}_wrist_camera_link").bodyid[0]).name
        assert body == f"{side}_arm_link6"


def test_home_keyframe_is_spec_home(scene):
    jm = JointMap(scene)
    key = scene.key("home")
    qpos, ctrl = key.qpos, key.ctrl
    home = spec.HOME.copy()
    np.testing.assert_allclose(qpos[jm.qpos_adr], home)
    np.testing.assert_allclose(ctrl[jm.actuator], home)
    for g in ("left_gripper_joint", "right_gripper_joint"):
        assert spec.JOINT_BY_NAME[g].home == pytest.approx(0.04)  # open
        i = jm.names.index(g)
        assert qpos[jm.mirror_qpos_adr[i]] == pytest.approx(qpos[jm.qpos_adr[i]])


def test_home_geometry(robot):
    data = home_data(robot)
    shoulder = data.body("left_arm_link1").xpos
    assert 1.2 <= shoulder[2] <= 1.4
    head = data.cam("head_camera_link")
    assert head.xpos[2] > shoulder[2] + 0.1
    # MuJoCo cameras look along -z: head looks forward (+x) and down 20..60 degrees
    look = -head.xmat.reshape(3, 3)[:, 2]
    assert look[0] > 0.4 and abs(look[1]) < 1e-6
    assert 20 < math.degrees(math.asin(-look[2])) < 60
    for side in ("left", "right"):
        ee = data.site(f"{side}_ee_link")
        approach = ee.xmat.reshape(3, 3)[:, 2]
        cam = data.cam(f"{side}_wrist_camera_link")
        cam_look = -cam.xmat.reshape(3, 3)[:, 2]
        assert np.dot(approach, cam_look) > math.cos(math.radians(25))
        # ee site sits between the finger pads
        pads = [
            data.geom_xpos[g]
            for g in range(robot.ngeom)
            if robot.geom_contype[g] in (4, 8) and robot.geom_condim[g] == 4
            and robot.body(robot.geom_bodyid[g]).name.startswith(side)
        ]
        assert len(pads) == 2
        np.testing.assert_allclose((pads[0] + pads[1]) / 2, ee.xpos, atol=1e-3)
    # reach: ~0.6-0.7 m from the shoulder with the arm straight
    d2 = mujoco.MjData(robot)
    mujoco.mj_forward(robot, d2)
    reach = np.linalg.norm(d2.site("left_ee_link").xpos - d2.body("left_arm_link1").xpos)
    assert 0.55 <= reach <= 0.75


def test_head_camera_sees_the_table(scene):
    data = home_data(scene)
    cam = data.cam("head_camera_link")
    geomid = np.array([-1], dtype=np.int32)
    look = -cam.xmat.reshape(3, 3)[:, 2]
    dist = mujoco.mj_ray(scene, data, cam.xpos, look, None, 1, -1, geomid)
    assert 0.5 < dist < 3.0
    assert scene.body(scene.geom_bodyid[geomid[0]]).name == "table"


def test_joint_map(scene):
    jm = JointMap(scene)
    assert jm.names == spec.ACTION_JOINTS
    data = home_data(scene)
    q = spec.HOME.copy()
    q[jm.names.index("left_gripper_joint")] = 0.013
    jm.set_qpos(data, q)
    i = jm.names.index("left_gripper_joint")
    assert data.qpos[scene.joint(mirror_joint("left_gripper_joint")).qposadr[0]] == 0.013
    np.testing.assert_array_equal(data.qpos[jm.qpos_adr], q)
    sub = JointMap(scene, spec.STATE_JOINTS)
    assert len(sub.qpos_adr) == len(spec.STATE_JOINTS)
    assert jm.actuator[jm.subset(["right_gripper_joint"])][0] == scene.actuator("right_gripper_joint").id
    assert i == spec.ACTION_JOINTS.index("left_gripper_joint")
    np.testing.assert_array_equal(jm.actuator_ids(spec.BASE_JOINTS), jm.base_actuators)
    np.testing.assert_array_equal(jm.base_qpos, [scene.joint(n).qposadr[0] for n in spec.BASE_JOINTS])
    with pytest.raises(ValueError, match="unknown joint"):
        jm.subset(["no_such_joint"])


def test_forward_kinematics_from_joint_states(robot, scene):
    """The robot-only model gives the same ee pose as the scene for the same joint state."""
    rng = np.random.default_rng(0)
    q = rng.uniform(spec.LOWER, spec.UPPER)
    q[:3] = (0.4, -0.2, 0.7)  # base pose
    poses = []
    for model in (robot, scene):
        jm = JointMap(model)
        data = mujoco.MjData(model)
        data.qpos[jm.base_qpos] = q[:3]
        jm.set_state_qpos(data, q[jm.subset(spec.STATE_JOINTS)])
        mujoco.mj_kinematics(model, data)
        g = spec.JOINT_BY_NAME["right_gripper_joint"]
        assert data.qpos[model.joint("right_gripper_finger2_joint").qposadr[0]] == q[jm.names.index(g.name)]
        poses.append(np.r_[data.site("left_ee_link").xpos, data.site("right_ee_link").xmat,
                           data.cam("head_camera_link").xpos])
    np.testing.assert_allclose(poses[0], poses[1], atol=1e-12)


@pytest.mark.parametrize(
    ("old", "what"),
    [
        ('name="left_wrist_camera_link"', "camera"),
        ('<position name="right_arm_joint3"', "actuator"),
        ("left_gripper_finger2_joint", "joint"),
        ('name="right_ee_link"', "site"),
    ],
)
def test_joint_map_names_missing_parts(old, what):
    xml = (MODELS_DIR / "robot.xml").read_text()
    assert old in xml
    new = old.replace('name="', 'name="renamed_') if 'name="' in old else f"renamed_{old}"
    model = mujoco.MjModel.from_xml_string(xml.replace(old, new))
    with pytest.raises(ValueError, match=what):
        JointMap(model)


def test_static_scenery_never_collides_with_itself(scene):
    data = home_data(scene)
    step(scene, data, 0.2)
    free_bodies = {scene.jnt_bodyid[j] for j in range(scene.njnt) if scene.jnt_type[j] == 0}
    robot_root = scene.body("base_link").id
    for c in data.contact[: data.ncon]:
        bodies = {scene.geom_bodyid[c.geom1], scene.geom_bodyid[c.geom2]}
        roots = {scene.body_rootid[b] for b in bodies}
        assert bodies & free_bodies or robot_root in roots, c
    assert data.ncon < 60  # resting objects only: keeps mj_step cheap
    # sensor rendering cost: no shadow passes, no multisampling, depth valid from 0.04 m
    assert not scene.light_castshadow.any()
    assert scene.vis.quality.offsamples == 0
    assert scene.vis.map.znear * scene.stat.extent <= min(c.near for c in spec.CAMERAS.values())
    assert scene.vis.map.zfar * scene.stat.extent >= max(c.far for c in spec.CAMERAS.values())


def test_objects_rest_where_placed(scene):
    data = home_data(scene)
    names = ["table", "shelf", "box", "trash_bin", "can_1", "can_2", "block_1", "block_2"]
    start = {n: data.body(n).xpos.copy() for n in names}
    step(scene, data, 2.0)
    for n in names:
        np.testing.assert_allclose(data.body(n).xpos, start[n], atol=0.01, err_msg=n)
    # table top 0.75 m, top shelf board 1.5 m
    top = scene.geom("table_top")
    assert data.geom("table_top").xpos[2] + top.size[2] == pytest.approx(0.75)
    assert data.geom("shelf_top").xpos[2] + scene.geom("shelf_top").size[2] == pytest.approx(1.5)
    assert data.body("table").xpos[0] == pytest.approx(1.15)


# --------------------------------------------------------------------------- servo behaviour


def test_standing_at_home_is_stable(scene):
    data = home_data(scene)
    jm = JointMap(scene)
    q0 = data.qpos[jm.qpos_adr].copy()
    ee0 = [data.site(f"{s}_ee_link").xpos.copy() for s in ("left", "right")]
    step(scene, data, 5.0)
    assert np.abs(data.qpos[jm.qpos_adr] - q0).max() < 0.01
    for s, p0 in zip(("left", "right"), ee0):
        assert np.linalg.norm(data.site(f"{s}_ee_link").xpos - p0) < 0.01


@pytest.mark.parametrize("name", ARM_TORSO_JOINTS)
def test_position_step_tracked_within_1s(scene, name):
    data = home_data(scene)
    jm = JointMap(scene)
    i = jm.names.index(name)
    j = spec.JOINT_BY_NAME[name]
    target = j.home + 0.3 if j.home + 0.3 <= j.upper else j.home - 0.3
    data.ctrl[jm.actuator[i]] = target
    errors = []
    for _ in range(500):
        mujoco.mj_step(scene, data)
        errors.append(abs(data.qpos[jm.qpos_adr[i]] - target))
    assert errors[-1] < 0.02, f"{name}: error {errors[-1]:.4f} rad after 1 s"
    assert errors[100] < 0.25  # it actually moved early on
    # the other joints hold their pose while this one moves
    others = np.delete(np.arange(len(jm.names)), i)
    assert np.abs(data.qpos[jm.qpos_adr[others]] - spec.HOME[others]).max() < 0.02


def test_torso_holds_arms_stretched_forward(scene):
    """Worst gravity case for the torso: trunk leaned forward, both arms straight out."""
    data = home_data(scene)
    jm = JointMap(scene)
    target = spec.HOME.copy()
    for n, v in [("torso_joint1", 0.6), ("torso_joint2", -0.3), ("torso_joint3", 0.5),
                 ("left_arm_joint1", -1.5), ("right_arm_joint1", -1.5),
                 ("left_arm_joint4", 0.0), ("right_arm_joint4", 0.0)]:
        target[jm.names.index(n)] = v
    pos = jm.subset(POSITION_JOINTS)
    data.ctrl[jm.actuator[pos]] = target[pos]
    step(scene, data, 1.5)
    assert np.abs(data.qpos[jm.qpos_adr[pos]] - target[pos]).max() < 0.02


def test_gripper_opens_and_closes(scene):
    data = home_data(scene)
    jm = JointMap(scene)
    i = jm.names.index("right_gripper_joint")
    data.ctrl[jm.actuator[i]] = 0.0
    step(scene, data, 1.0)
    assert data.qpos[jm.qpos_adr[i]] < 0.002
    assert abs(data.qpos[jm.mirror_qpos_adr[i]] - data.qpos[jm.qpos_adr[i]]) < 0.001
    data.ctrl[jm.actuator[i]] = 0.04
    step(scene, data, 1.0)
    assert data.qpos[jm.qpos_adr[i]] > 0.038
    assert abs(data.qpos[jm.mirror_qpos_adr[i]] - data.qpos[jm.qpos_adr[i]]) < 0.001


@pytest.mark.parametrize(
    ("yaw0", "cmd", "expect"),
    [
        (0.0, {"base_x": 0.3}, {"base_x": 0.6}),
        (0.0, {"base_y": -0.3}, {"base_y": -0.6}),
        (0.0, {"base_yaw": 0.6}, {"base_yaw": 1.2}),
        # world-frame contract: turned 90 degrees, base_x still moves along world x
        (math.pi / 2, {"base_x": 0.3, "base_y": 0.2}, {"base_x": 0.6, "base_y": 0.4}),
    ],
)
def test_base_velocity_tracked(scene, yaw0, cmd, expect):
    data = home_data(scene)
    jm = JointMap(scene)
    data.qpos[jm.qpos_adr[jm.names.index("base_yaw")]] = yaw0
    mujoco.mj_forward(scene, data)
    start = data.qpos[jm.qpos_adr[:3]].copy()
    for n, v in cmd.items():
        data.ctrl[jm.actuator[jm.names.index(n)]] = v
    step(scene, data, 0.1)  # response time ~0.1 s
    for n, v in cmd.items():
        assert abs(data.qvel[jm.qvel_adr[jm.names.index(n)]]) > 0.6 * abs(v), n
    step(scene, data, 0.3)
    for n, v in cmd.items():
        assert data.qvel[jm.qvel_adr[jm.names.index(n)]] == pytest.approx(v, rel=0.03), n
    step(scene, data, 1.6)
    moved = data.qpos[jm.qpos_adr[:3]] - start
    for k, n in enumerate(spec.BASE_JOINTS):
        tol = 0.05 if n != "base_yaw" else 0.1
        assert moved[k] == pytest.approx(expect.get(n, 0.0), abs=tol), n
    # the robot on top stays put relative to the base (no wobble from the acceleration)
    pos = jm.subset(POSITION_JOINTS)
    assert np.abs(data.qpos[jm.qpos_adr[pos]] - spec.HOME[pos]).max() < 0.02


# --------------------------------------------------------------------------- grasping


def _ik(model, data, jm, side, target, iters=300):
    """Damped least-squares IK on torso pitch + one arm: ee at `target`, gripper pointing down,
    fingers opening along world y. Kinematics only (writes data.qpos)."""
    names = ["torso_joint1", "torso_joint2", "torso_joint3"] + [f"{side}_arm_joint{k}" for k in range(1, 7)]
    idx = jm.subset(names)
    qa, va = jm.qpos_adr[idx], jm.qvel_adr[idx]
    lo, hi = spec.LOWER[idx], spec.UPPER[idx]
    site = model.site(f"{side}_ee_link").id
    goal = np.array([[-1.0, 0, 0], [0, 1, 0], [0, 0, -1]]).T  # columns: x, y, z (approach down)
    jp, jr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    for _ in range(iters):
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        rot = data.site_xmat[site].reshape(3, 3)
        err = np.r_[target - data.site_xpos[site],
                    0.5 * sum(np.cross(rot[:, k], goal[:, k]) for k in range(3))]
        if np.linalg.norm(err) < 1e-6:
            break
        mujoco.mj_jacSite(model, data, jp, jr, site)
        jac = np.r_[jp[:, va], jr[:, va]]
        dq = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
        data.qpos[qa] = np.clip(data.qpos[qa] + dq, lo, hi)
    assert np.linalg.norm(err) < 1e-4, "IK did not converge"
    return idx, data.qpos[qa].copy()


def _move(model, data, act, q0, q1, seconds):
    n = round(seconds / model.opt.timestep)
    for k in range(1, n + 1):
        s = k / n
        data.ctrl[act] = q0 + (q1 - q0) * (3 * s * s - 2 * s**3)
        mujoco.mj_step(model, data)


@pytest.mark.parametrize(
    ("side", "obj", "close"),
    [("right", "block_1", True), ("left", "can_1", True), ("right", "block_1", False)],
)
def test_friction_grasp_lifts_object(scene, side, obj, close):
    """Top-down grasp of an object on the table: open hand above it, descend, squeeze, lift.

    The object is held by pad contact and friction only (the model has no welds); with the
    gripper left open the same motion must leave the object on the table.
    """
    assert scene.neq == 2 and all(scene.eq_type == mujoco.mjtEq.mjEQ_JOINT)
    data = home_data(scene)
    jm = JointMap(scene)
    # initial state: base 0.45 m forward of the start pose, hand 12 cm above the object
    jm_base = jm.qpos_adr[jm.names.index("base_x")]
    data.qpos[jm_base] = 0.45
    mujoco.mj_forward(scene, data)
    obj_pos = data.body(obj).xpos.copy()
    scratch = mujoco.MjData(scene)
    scratch.qpos[:] = data.qpos
    idx, q_grasp = _ik(scene, scratch, jm, side, obj_pos)
    _, q_above = _ik(scene, scratch, jm, side, obj_pos + [0, 0, 0.12])
    data.qpos[jm.qpos_adr[idx]] = q_above
    act = jm.actuator[idx]
    data.ctrl[act] = q_above
    mujoco.mj_forward(scene, data)
    grip = jm.actuator[jm.names.index(f"{side}_gripper_joint")]
    site = f"{side}_ee_link"

    step(scene, data, 0.3)
    _move(scene, data, act, q_above, q_grasp, 1.0)
    step(scene, data, 0.3)
    assert np.linalg.norm(data.site(site).xpos - data.body(obj).xpos) < 0.03
    if close:
        data.ctrl[grip] = 0.0
    step(scene, data, 0.6)
    _move(scene, data, act, q_grasp, q_above, 1.0)
    heights, offsets = [], []
    for _ in range(1000):  # hold 2 s
        mujoco.mj_step(scene, data)
        heights.append(data.body(obj).xpos[2] - obj_pos[2])
        offsets.append(np.linalg.norm(data.site(site).xpos - data.body(obj).xpos))
    if close:
        assert min(heights) > 0.05, f"object lifted only {min(heights):.3f} m"
        assert max(offsets) < 0.03, "object slipped out of the fingers"
        finger = data.qpos[jm.qpos_adr[jm.names.index(f"{side}_gripper_joint")]]
        assert 0.015 < finger < 0.04  # stopped by the object, not closed on air
    else:
        assert max(heights) < 0.01
