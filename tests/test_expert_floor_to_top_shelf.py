"""The floor_to_top_shelf scripted expert on real MuJoCo physics, and its motion helpers."""

import numpy as np
import pytest

from brs_sim.experts import make_expert
from brs_sim.experts.cartesian_path import JointMove, PhaseClock, PoseMove, min_jerk, rot_z
from brs_sim.experts.common import rollout
from brs_sim.experts.floor_to_top_shelf import FloorToTopShelfExpert

PHASES = ["approach", "pre_grasp", "grasp", "lift", "raise", "turn", "dock", "place", "release"]


class RecordingExpert(FloorToTopShelfExpert):
    """The expert as-is, noting what it saw in each phase."""

    def reset(self, obs):
        super().reset(obs)
        self.phases = []
        self.outputs = []  # (time, phase it ran in, 21-D target) of every act
        self.torso_fold_at_close = None
        self.hand_z_at_close = None
        self.block_max_z = 0.0

    def act(self, obs):
        phase = self.phase
        out = super().act(obs)
        self.outputs.append((obs.time, phase, out.copy()))
        if not self.phases or self.phases[-1] != self.phase:
            self.phases.append(self.phase)
        if self.phase == "grasp" and out[self.gripper] == 0.0 and self.torso_fold_at_close is None:
            self.torso_fold_at_close = obs.joint("torso_joint1") + obs.joint("torso_joint2")
            self.hand_z_at_close = self._hand(obs)[0][2]
        self.block_max_z = max(self.block_max_z, obs.object_xyz("block_2")[2])
        return out


def test_expert_puts_the_block_from_the_floor_onto_the_top_shelf():
    expert = RecordingExpert()
    result = rollout("floor_to_top_shelf", expert, seed=3)
    assert result.success, result
    assert result.duration < 40.0  # time limit 60 s
    # all phases in order, no retries; success only counts once the block is let go
    assert expert.phases[:len(PHASES)] == PHASES
    assert result.phase in ("release", "retreat", "done")
    # the torso folded down (knee + hip pitch) to grasp at the floor, and stood up to reach the shelf
    assert expert.torso_fold_at_close > 1.0
    assert expert.hand_z_at_close < 0.05
    assert expert.block_max_z > 1.5


def held_at_start(outputs, phase) -> float:
    """Seconds from a phase's first act while the target stayed exactly that act's, base at rest."""
    acts = [(t, out) for t, p, out in outputs if p == phase]
    t0, first = acts[0]
    if np.any(first[:3] != 0.0):
        return 0.0
    t_end = next(t for t, out in acts if not np.array_equal(out, first))
    return t_end - t0


def test_varied_waits_hold_still_before_the_key_phases_and_the_task_still_succeeds():
    expert = RecordingExpert()
    expert.vary_waits(2.0, np.random.default_rng(5))
    drawn = np.random.default_rng(5).uniform(0.0, 2.0, size=len(expert.wait_before))
    result = rollout("floor_to_top_shelf", expert, seed=3)
    assert result.success, result
    assert expert.phases[:len(PHASES)] == PHASES  # no retry: exactly one draw per phase
    held = [held_at_start(expert.outputs, phase) for phase in expert.wait_before]
    # the hold ends at the first act (every 0.02 s) after the drawn wait; a moving phase changes
    # its target at once
    np.testing.assert_allclose(held, drawn, atol=0.045, err_msg=f"held {held}, drawn {drawn}")
    plain = RecordingExpert()
    rollout("floor_to_top_shelf", plain, seed=3)
    assert max(held_at_start(plain.outputs, phase) for phase in plain.wait_before) <= 0.04
    with pytest.raises(ValueError, match="max_wait must be >= 0"):
        expert.vary_waits(-1.0, np.random.default_rng())


def test_registry_builds_this_expert():
    assert isinstance(make_expert("floor_to_top_shelf"), FloorToTopShelfExpert)


def test_pose_move_is_smooth_from_start_to_goal():
    start_rot, goal_rot = np.eye(3), rot_z(np.pi / 2)
    move = PoseMove([0, 0, 0], start_rot, [1, 2, 3], goal_rot, t0=10.0, duration=2.0)
    xyz, rot = move.at(9.0)
    np.testing.assert_allclose(xyz, 0.0, atol=1e-12)
    np.testing.assert_allclose(rot, start_rot, atol=1e-12)
    xyz, rot = move.at(11.0)  # halfway: on the line and on the geodesic
    np.testing.assert_allclose(xyz, [0.5, 1.0, 1.5], atol=1e-12)
    np.testing.assert_allclose(rot, rot_z(np.pi / 4), atol=1e-12)
    xyz, rot = move.at(13.0)
    np.testing.assert_allclose(xyz, [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(rot, goal_rot, atol=1e-12)
    assert move.finished(12.0) and not move.finished(11.9)
    # a half turn still interpolates (axis from the symmetric part)
    flip = PoseMove([0, 0, 0], np.eye(3), [0, 0, 0], np.diag([-1.0, 1.0, -1.0]), 0.0, 1.0)
    _, rot = flip.at(0.5)
    np.testing.assert_allclose(rot @ rot, np.diag([-1.0, 1.0, -1.0]), atol=1e-9)


def test_joint_move_respects_the_speed_limits():
    vmax = np.array([1.0, 3.0])
    move = JointMove.within_limits([0.0, 0.0], [1.5, 1.5], t0=0.0, max_velocity=vmax)
    t = np.linspace(0.0, move.duration, 2001)
    q = np.array([move.at(ti) for ti in t])
    speed = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
    assert np.all(speed.max(axis=0) < vmax)
    np.testing.assert_allclose(q[-1], [1.5, 1.5])
    assert min_jerk(-1.0) == 0.0 and min_jerk(2.0) == 1.0


def test_phase_clock_times_out_per_phase():
    clock = PhaseClock({"grasp": 2.0})
    clock.enter("grasp", 5.0)
    assert clock.elapsed(6.0) == pytest.approx(1.0) and not clock.timed_out(6.0)
    assert clock.timed_out(7.5)
    clock.enter("release", 8.0)  # no limit
    assert not clock.timed_out(1e6)
