"""RosSimEnv (rl_agents/ros_env.py): the reach task over the lock-stepped sim graph.

One graph (sim node + whole-body controller processes) for the module, on its own ROS domain.
The task's reward / success / observation are checked on known states without ROS.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from brs_common import robot_spec as spec
from conftest import next_domain
from rl_agents.ros_tasks import ARM_SLICE, ARM_STATE, POSITION, ReachTask, base_to_odom, odom_to_base

HOME_STATE = spec.HOME[POSITION]  # STATE_JOINTS order


@pytest.fixture(scope="module")
def task():
    return ReachTask()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from rl_agents.ros_env import RosSimEnv

    e = RosSimEnv("reach", seed=0, domain_id=next_domain(), log_dir=tmp_path_factory.mktemp("ros_env"))
    yield e
    e.close()
    assert e.graph is None


# ---------------------------------------------------------------------------- task, no ROS

def test_reward_and_success_on_known_states(task):
    ee = task.gripper(HOME_STATE)
    np.testing.assert_allclose(ee, task.home_ee)
    pose = np.zeros(3)
    near = ee + np.array([0.03, 0.0, 0.0])
    d = task.distance(HOME_STATE, pose, near)
    assert d == pytest.approx(0.03, abs=1e-12)
    assert task.success(d)
    # reward: progress in full-speed steps, plus the hold bonus inside the radius (1 at the
    # target, 0 at the radius); moving away is punished
    assert task.reward(d, previous=0.06) == pytest.approx(0.03 / task.step_size + 1.0 - 0.03 / 0.05)
    assert task.reward(0.0, previous=0.0) == 1.0
    assert task.reward(0.04, previous=0.04) == pytest.approx(0.2)
    assert task.reward(0.10, previous=0.07) == pytest.approx(-0.03 / task.step_size)
    assert task.reward(0.10, previous=0.10) == 0.0
    far = ee + np.array([0.0, 0.0, 0.05])  # exactly on the radius: not inside
    assert not task.success(task.distance(HOME_STATE, pose, far))
    # the target is given in odom: a base moved and turned sees it in its own frame
    pose = np.array([1.0, -0.5, math.pi / 2])
    target = base_to_odom(near, pose)
    np.testing.assert_allclose(odom_to_base(target, pose), near, atol=1e-12)
    assert task.distance(HOME_STATE, pose, target) == pytest.approx(0.03, abs=1e-9)
    # a bent elbow moves the gripper: the predicate follows the joints, not the command
    bent = HOME_STATE.copy()
    bent[ARM_STATE[3]] += 0.5
    assert task.distance(bent, np.zeros(3), near) > 0.1


def test_observation_action_and_command_layout(task):
    pose = np.array([0.2, 0.1, 0.3])
    target = base_to_odom(task.home_ee + np.array([0.1, 0.0, 0.05]), pose)
    arm_cmd = task.initial_command(HOME_STATE)
    np.testing.assert_array_equal(arm_cmd, HOME_STATE[ARM_STATE])
    obs = task.observation(HOME_STATE, pose, target, arm_cmd)
    assert obs.shape == (task.obs_dim,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:6], HOME_STATE[ARM_STATE])
    np.testing.assert_allclose(obs[6:12], 0.0)
    np.testing.assert_allclose(obs[12:15], task.home_ee, atol=1e-6)
    np.testing.assert_allclose(obs[15:18], task.home_ee + [0.1, 0.0, 0.05], atol=1e-6)
    np.testing.assert_allclose(obs[18:21], [0.1, 0.0, 0.05], atol=1e-6)
    # actions are Cartesian gripper increments (x step_size m), made joint increments by IK at the
    # commanded pose: the gripper of the new command moves by the action, joint steps are bounded
    for a in ([1, 0, 0], [0, -1, 0], [0, 0, 1], [0.5, 0.5, -0.5]):
        nxt = task.apply_action(arm_cmd, a)
        moved = HOME_STATE.copy()
        moved[ARM_STATE] = nxt
        np.testing.assert_allclose(task.gripper(moved) - task.home_ee, task.step_size * np.array(a), atol=4e-3)
    big = task.apply_action(arm_cmd, [5.0, -5.0, 5.0])  # clipped to [-1, 1] and max_joint_step
    assert np.max(np.abs(big - arm_cmd)) <= task.max_joint_step + 1e-12
    at_limit = spec.UPPER[ARM_SLICE].copy()
    assert np.all(task.apply_action(at_limit, [1, 1, 1]) <= spec.UPPER[ARM_SLICE])
    nxt = task.apply_action(arm_cmd, [1, 0, 0])
    # the command: all ACTION_JOINTS, base at rest, everything but the right arm at home
    msg = task.command_msg(nxt)
    assert list(msg.joint_names) == list(spec.ACTION_JOINTS) and len(msg.points) == 1
    point = np.array(msg.points[0].positions)
    np.testing.assert_array_equal(point[ARM_SLICE], nxt)
    others = np.ones(spec.ACTION_DIM, bool)
    others[ARM_SLICE] = False
    np.testing.assert_array_equal(point[others], np.where(POSITION, spec.HOME, 0.0)[others])
    horizon = msg.points[0].time_from_start.sec + msg.points[0].time_from_start.nanosec * 1e-9
    assert horizon == pytest.approx(task.agent_period - 0.5 / spec.CONTROL_RATE_HZ)
    # targets: seeded, in the box, never closer than min_distance
    a = [task.sample_target(np.random.default_rng(3)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    offsets = np.array([task.sample_target(np.random.default_rng(s)) for s in range(200)]) - task.home_ee
    assert np.all(offsets >= np.array(task.target_low) - 1e-12) and np.all(offsets <= np.array(task.target_high) + 1e-12)
    assert np.all(np.linalg.norm(offsets, axis=1) >= task.min_distance)


# ---------------------------------------------------------------------------- the env in the graph

def _rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out, infos = [obs], [info]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append(obs)
        infos.append(info)
    return np.array(out), infos


def test_same_seed_and_actions_give_identical_observations(env):
    actions = np.random.default_rng(7).uniform(-1, 1, (8, 3))
    a, ia = _rollout(env, 11, actions)
    b, ib = _rollout(env, 11, actions)
    np.testing.assert_array_equal(a, b)  # bit for bit, although sim time moved on in between
    assert ib[-1]["sim_time"] > ia[-1]["sim_time"]
    assert not np.array_equal(a[1:, :6], a[:-1, :6])  # the arm did move
    c, _ = _rollout(env, 12, actions)
    assert not np.allclose(c[0, 15:18], a[0, 15:18])  # another seed: another target


def test_step_advances_exactly_n_control_periods_with_one_controller_tick_each(env):
    env.reset(seed=3)
    n = env.task.control_periods
    times = []
    for _ in range(3):
        ticks, steps = env._counts["cmd"], env.sim_steps
        _, _, _, _, info = env.step(np.zeros(3))
        assert env.sim_steps - steps == n
        assert env._counts["cmd"] - ticks == n  # the controller commanded once per period
        times.append(info["sim_time"])
    np.testing.assert_allclose(np.diff(times), n / spec.CONTROL_RATE_HZ, atol=1e-9)


def test_action_reaches_the_joints(env):
    env.reset(seed=4)
    q0 = env.q.copy()
    action = np.array([0.0, 0.0, 1.0])  # gripper straight up, full speed
    for _ in range(3):
        env.step(action)
    cmd = env.arm_cmd.copy()
    commanded_state = env.q.copy()
    commanded_state[ARM_STATE] = cmd
    lift = env.task.gripper(commanded_state) - env.task.gripper(q0)
    np.testing.assert_allclose(lift, [0, 0, 3 * env.task.step_size], atol=0.01)
    # the controller commands what the env sent (~/commanded, right arm; streamed samples may
    # overshoot by v^2 / 2 a_max, docs/controller.md) ...
    commanded = np.array(env._cmd_msg.position)[ARM_SLICE]
    np.testing.assert_allclose(commanded, cmd, atol=0.02)
    for _ in range(3):  # zero actions hold the command: the controller settles on it exactly
        env.step(np.zeros(3))
    np.testing.assert_allclose(np.array(env._cmd_msg.position)[ARM_SLICE], cmd, atol=1e-6)
    # ... and the joints follow: the gripper rose by the commanded 9 cm, the other joints held
    np.testing.assert_allclose(env.q[ARM_STATE], cmd, atol=0.02)
    rose = env.task.gripper(env.q) - env.task.gripper(q0)
    assert rose[2] == pytest.approx(3 * env.task.step_size, abs=0.01)
    others = np.setdiff1d(np.arange(len(spec.STATE_JOINTS)), ARM_STATE)
    assert np.max(np.abs(env.q[others] - q0[others])) < 0.02


def test_time_limit_truncates_and_success_does_not_terminate(env):
    task = env.task
    limit = task.max_steps
    try:
        task.max_steps = 3
        env.reset(seed=5)
        flags = [env.step(np.zeros(3))[2:4] for _ in range(3)]
        assert flags == [(False, False), (False, False), (False, True)]
        # at the target (moved onto the gripper): success is reported and the hold bonus paid, but
        # the episode goes on to the time limit (the policy must learn to stay)
        env.reset(seed=5)
        env.target = base_to_odom(task.gripper(env.q) + [0.01, 0, 0], env.pose)
        steps = [env.step(np.zeros(3)) for _ in range(3)]
        assert [s[2:4] for s in steps] == [(False, False), (False, False), (False, True)]
        for _, r, _, _, info in steps:
            assert info["success"] and r == pytest.approx(1.0 - info["distance"] / task.success_radius, abs=0.2)
    finally:
        task.max_steps = limit
