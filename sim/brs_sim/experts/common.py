"""What every scripted expert shares: the observation it sees, the whole-body target it returns,
inverse kinematics on the robot model (mink), base navigation, and an in-process rollout.

An expert sees what the graph offers an operator plus privileged object poses from the sim
(`/sim/objects`): `Observation`. It returns a 21-D whole-body target in spec.ACTION_JOINTS order
(base entries: velocities in the base frame; all others: position targets), i.e. exactly the
content of a teleop command. The same `act()` runs in `rollout` (SimCore + the controller's own
limiters, for fast tuning and success-rate sweeps) and in `expert_node` (through the full graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from brs_common import robot_spec as spec
from brs_common.planar import wrap_angle

from .cartesian_path import PhaseClock, PoseMove

CONTROL_DT = 1.0 / spec.CONTROL_RATE_HZ
EXPERT_RATE_HZ = 50.0  # how often an expert is asked for a target (the teleop send rate)
BASE = spec.group_slice("base")
POSITION = spec.POSITION
STATE_INDEX = {name: i for i, name in enumerate(spec.STATE_JOINTS)}
ACTION_INDEX = {name: i for i, name in enumerate(spec.ACTION_JOINTS)}


@dataclass
class Observation:
    time: float  # seconds (sim time), monotonic within an episode
    joints: np.ndarray  # positions of spec.STATE_JOINTS
    base_pose: np.ndarray  # x, y, yaw of base_link in odom (= world in sim)
    objects: dict[str, np.ndarray] = field(default_factory=dict)  # name -> x y z qw qx qy qz (world)

    def joint(self, name: str) -> float:
        return float(self.joints[STATE_INDEX[name]])

    def object_xyz(self, name: str) -> np.ndarray:
        return np.asarray(self.objects[name][:3], dtype=float)

    def object_yaw(self, name: str) -> float:
        w, x, y, z = self.objects[name][3:7]
        return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def to_base(self, xyz) -> np.ndarray:
        """World point -> base_link frame."""
        x, y, yaw = self.base_pose
        c, s = np.cos(yaw), np.sin(yaw)
        d = np.asarray(xyz, float) - np.array([x, y, 0.0])
        return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]])

    def positions(self) -> np.ndarray:
        """21-D target that holds every joint where it is, base at rest."""
        out = np.zeros(spec.ACTION_DIM)
        for name, i in ACTION_INDEX.items():
            if name in STATE_INDEX:
                out[i] = self.joints[STATE_INDEX[name]]
        return out


class Expert:
    """Base class: `reset(obs)` at the start of an episode, then `act(obs)` at EXPERT_RATE_HZ.

    `done` becomes True when the expert has finished (successfully or having given up);
    `phase` names what it is doing (for logs and videos).
    """

    task = ""

    def __init__(self):
        self.done = False
        self.phase = "start"

    def reset(self, obs: Observation) -> None:
        self.done = False
        self.phase = "start"

    def act(self, obs: Observation) -> np.ndarray:
        raise NotImplementedError


class PhasedExpert(Expert):
    """An expert as a sequence of timed phases sharing one IK solver.

    `self.q` holds the current 21-D targets (from the measured pose at reset), `enter()` starts a
    phase (its clock; `self.move`, the phase's motion, cleared), `timeouts` are per phase (s).
    Each phase is a method `_<phase>(obs)` that updates `self.q` and returns the base velocity.

    Varied waits (`vary_waits`): before each phase in `wait_before` the expert holds still (targets
    kept, base at rest) for a random time, so that in the demos a phase starts when the robot's
    state says so rather than at a fixed time after the episode's start.
    """

    timeouts: dict[str, float] = {}
    wait_before: tuple[str, ...] = ()  # phases that vary_waits may delay

    def __init__(self):
        super().__init__()
        self.ik = WholeBodyIK()
        self.clock = PhaseClock(self.timeouts)
        self.max_wait = 0.0
        self.wait_rng = np.random.default_rng(0)
        self.waiting_until = None

    def vary_waits(self, max_wait: float, rng: np.random.Generator) -> None:
        """Hold still for uniform(0, `max_wait`) s before each `wait_before` phase (0: never)."""
        if not max_wait >= 0.0:
            raise ValueError(f"max_wait must be >= 0 s; got {max_wait}")
        self.max_wait, self.wait_rng = float(max_wait), rng

    def reset(self, obs: Observation) -> None:
        super().reset(obs)
        self.q = obs.positions()
        self.tries = 0
        self.move = None
        self.waiting_until = None

    def enter(self, phase: str, obs: Observation) -> None:
        self.phase = phase
        self.clock.enter(phase, obs.time)
        self.move = None
        if self.max_wait > 0 and phase in self.wait_before:
            self.waiting_until = obs.time + self.wait_rng.uniform(0.0, self.max_wait)

    def finish(self, obs: Observation) -> np.ndarray:
        """Stop here: finished, or given up (the task predicate tells which). Returns a zero base velocity."""
        self.done = True
        self.enter("done", obs)
        return np.zeros(3)

    def act(self, obs: Observation) -> np.ndarray:
        """Run the current phase (base at rest once done or waiting), then `after_phase`; `self.q`
        with that base velocity. A phase's clock starts when its wait is over."""
        if self.waiting_until is not None:
            if obs.time < self.waiting_until:
                out = self.q.copy()
                out[BASE] = 0.0
                return out
            self.waiting_until = None
            self.clock.enter(self.phase, obs.time)
        base = np.zeros(3) if self.done else getattr(self, f"_{self.phase}")(obs)
        if not self.done:
            self.after_phase(obs)
        out = self.q.copy()
        out[BASE] = base
        return out

    def after_phase(self, obs: Observation) -> None:
        """Hook run after each phase step unless that made the expert done (default: nothing)."""


class OneHandExpert(PhasedExpert):
    """A phased expert that manipulates with one hand, `side`: its gripper index (`self.gripper`, open at
    reset), its measured pose, Cartesian moves of it (`PoseMove`, IK every tick) and grasp retries."""

    side: str  # "left" | "right"
    open_width: float  # gripper target when open
    closed_width: float  # gripper target when grasping
    max_grasp_tries: int

    def __init__(self):
        super().__init__()
        self.gripper = ACTION_INDEX[f"{self.side}_gripper_joint"]

    def reset(self, obs: Observation) -> None:
        super().reset(obs)
        self.q[self.gripper] = self.open_width

    def _hand(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Measured hand pose (world xyz, rotation)."""
        self.ik.sync(obs)
        pose = self.ik.ee_pose(self.side)
        return pose.translation().copy(), pose.rotation().as_matrix().copy()

    def _start_move(self, obs: Observation, xyz, rot, duration: float) -> None:
        start_xyz, start_rot = self._hand(obs)
        self.move = PoseMove(start_xyz, start_rot, xyz, rot, obs.time, duration)

    def _shift_hand(self, obs: Observation, dxyz, duration: float) -> None:
        """Start a straight move of the hand by `dxyz` (world), keeping its rotation."""
        xyz, rot = self._hand(obs)
        self._start_move(obs, xyz + dxyz, rot, duration)

    def _follow(self, obs: Observation, use_torso: bool = True) -> float:
        """IK for the current point of `self.move`, from the current targets (gripper kept)."""
        xyz, rot = self.move.at(obs.time)
        q, err = self.ik.solve(obs, {self.side: (xyz, rot)}, start=self.q, use_torso=use_torso)
        q[self.gripper] = self.q[self.gripper]
        self.q = q
        return err

    def _close_and_check(self, obs: Observation, close_lead: float, settle: float, held_above: float) -> None:
        """The end of a grasp move: close the gripper `close_lead` s before the move ends; `settle` s
        after it ends, enter `lift` if the fingers stopped on the object (the gripper joint above
        `held_above`), else retry."""
        if self.move.finished(obs.time + close_lead):
            self.q[self.gripper] = self.closed_width
        if self.move.finished(obs.time - settle):
            if obs.joint(f"{self.side}_gripper_joint") > held_above:
                self.enter("lift", obs)
            else:
                self._retry(obs)

    def _retry(self, obs: Observation) -> None:
        """Missed or dropped the object: open and go again from `pre_grasp` (or give up)."""
        self.tries += 1
        self.q[self.gripper] = self.open_width
        if self.tries >= self.max_grasp_tries:
            self.finish(obs)
        else:
            self.enter("pre_grasp", obs)


def base_velocity_to(obs: Observation, goal_xy, goal_yaw: float | None = None, gain: float = 1.5,
                     vmax: float = 0.3, wmax: float = 0.4) -> np.ndarray:
    """Base-frame (vx, vy, wz) that drives base_link to `goal_xy` (world), turning to `goal_yaw`."""
    x, y, yaw = obs.base_pose
    d = np.asarray(goal_xy, float) - np.array([x, y])
    c, s = np.cos(yaw), np.sin(yaw)
    v = gain * np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
    speed = np.linalg.norm(v)
    if speed > vmax:
        v *= vmax / speed
    wz = 0.0 if goal_yaw is None else float(np.clip(2.0 * wrap_angle(goal_yaw - yaw), -wmax, wmax))
    return np.array([v[0], v[1], wz])


class WholeBodyIK:
    """Differential IK (mink) on the robot-only model for the end-effector sites.

    The base is held where odometry says it is; torso joints move only when `use_torso`.
    `solve` returns the 21-D position targets (base entries 0) reaching the requested poses.
    """

    def __init__(self, posture_cost: float = 1e-2, orientation_cost: float = 0.3):
        import mink

        from brs_sim.model import JointMap, load_model

        self._mink = mink
        self.model = load_model("robot")
        self.joints = JointMap(self.model)
        self.config = mink.Configuration(self.model)
        self.posture = mink.PostureTask(self.model, cost=posture_cost)
        self.orientation_cost = orientation_cost
        self.tasks = {
            side: mink.FrameTask(spec.FRAMES[f"{side}_ee"], "site", position_cost=1.0,
                                 orientation_cost=orientation_cost, lm_damping=1.0)
            for side in ("left", "right")
        }
        self._configuration_limit = mink.ConfigurationLimit(self.model)
        self._scratch = mujoco.MjData(self.model)
        self._locks = {}

    def _lock(self, groups: tuple[str, ...]):
        if groups not in self._locks:
            names = [n for g in groups for n in spec.GROUPS[g].joints]
            self._locks[groups] = self._mink.VelocityLimit(self.model, {n: 1e-9 for n in names})
        return self._locks[groups]

    def sync(self, obs: Observation, q21: np.ndarray | None = None) -> None:
        """Set the IK configuration from the observation (or from 21-D targets `q21`, base from obs)."""
        data = self._scratch  # only its qpos is used: a buffer the JointMap setters can write
        data.qpos[:] = self.config.q
        if q21 is None:
            self.joints.set_state_qpos(data, obs.joints)
        else:
            self.joints.set_qpos(data, np.where(POSITION, q21, 0.0))
        data.qpos[self.joints.base_qpos] = obs.base_pose
        self.config.update(data.qpos.copy())

    def ee_pose(self, side: str):
        """Current SE3 of an end effector in the IK configuration (world frame)."""
        return self.config.get_transform_frame_to_world(spec.FRAMES[f"{side}_ee"], "site")

    def solve(self, obs: Observation, targets: dict, start: np.ndarray | None = None,
              use_torso: bool = False, iterations: int = 30, tolerance: float = 1e-3,
              orientation_cost: float | None = None) -> tuple[np.ndarray, float]:
        """IK for `targets` = {side: (xyz, rotation 3x3 or None)} in the world frame.

        Starts from `start` (21-D targets; default: measured joints). Returns (21-D position
        targets with the grippers and unused arms as in `start`, worst position error in m).
        """
        mink = self._mink
        self.sync(obs, start)
        self.posture.set_target_from_configuration(self.config)
        tasks = [self.posture]
        for side, (xyz, rot) in targets.items():
            task = self.tasks[side]
            cost = self.orientation_cost if orientation_cost is None else orientation_cost
            task.set_orientation_cost(0.0 if rot is None else cost)
            rotation = mink.SO3.from_matrix(np.asarray(rot, float)) if rot is not None else \
                self.ee_pose(side).rotation()
            task.set_target(mink.SE3.from_rotation_and_translation(rotation, np.asarray(xyz, float)))
            tasks.append(task)
        locked = ("base",) if use_torso else ("base", "torso")
        limits = [self._configuration_limit, self._lock(locked)]
        err = np.inf
        for _ in range(iterations):
            v = mink.solve_ik(self.config, tasks, CONTROL_DT * 5, "daqp", 1e-3, limits=limits)
            self.config.integrate_inplace(v, CONTROL_DT * 5)
            err = max(np.linalg.norm(self.tasks[s].compute_error(self.config)[:3]) for s in targets)
            if err < tolerance:
                break
        out = obs.positions() if start is None else np.asarray(start, float).copy()
        q = self.config.q
        for name, i in ACTION_INDEX.items():
            if POSITION[i] and not name.endswith("_gripper_joint"):
                out[i] = q[self.joints.qpos_adr[i]]
        out[BASE] = 0.0
        return np.clip(out, spec.LOWER, spec.UPPER) * POSITION + out * ~POSITION, float(err)


# ---- in-process rollout -------------------------------------------------------------------------

@dataclass
class RolloutResult:
    task: str
    seed: int
    success: bool
    duration: float  # sim seconds until success (or the time limit)
    phase: str  # the expert's phase at the end


def observe(sim) -> Observation:
    pos, _, _ = sim.joint_state()
    return Observation(sim.time, pos.copy(), sim.base_pose(), sim.object_poses())


def rollout(task_name: str, expert: Expert, seed: int, time_limit: float | None = None,
            video: str | Path | None = None, camera: str = "overview", settle: float = 1.0,
            ) -> RolloutResult:
    """Run `expert` on `task_name` in-process (see run_episode), asked at EXPERT_RATE_HZ.
    Success = the task predicate holds for `settle` s (the expert done or not)."""
    def observe_at(sim, t: float) -> Observation:
        obs = observe(sim)
        obs.time = t
        return obs

    success, duration = run_episode(task_name, seed, lambda sim, t: expert.act(observe_at(sim, t)),
                                    1.0 / EXPERT_RATE_HZ, time_limit, video, camera, settle,
                                    start=lambda sim: expert.reset(observe_at(sim, 0.0)),
                                    done=lambda: expert.done)
    return RolloutResult(task_name, seed, success, duration, expert.phase)


def run_episode(task_name: str, seed: int, act, act_period: float, time_limit: float | None = None,
                video: str | Path | None = None, camera: str = "overview", settle: float = 1.0,
                start=lambda sim: None, done=lambda: False) -> tuple[bool, float]:
    """One in-process episode: SimCore physics, the controller's limiters (JointLimiter,
    BaseLimiter) between the 21-D target and the actuators, `start(sim)` once after the task's
    reset, then `act(sim, t) -> target` asked every `act_period` s (t: seconds since the start).
    Success = the task predicate held for `settle` s;
    the episode ends then, at the time limit, or `settle` + 2 s after `done()` turned true.
    Optionally writes an mp4 from a scene camera. Returns (success, duration in sim seconds)."""
    from brs_control.safety import BaseLimiter, JointLimiter

    from brs_sim.sim_core import SimCore
    from brs_sim.tasks import get_task

    task = get_task(task_name)
    limit = task.time_limit if time_limit is None else time_limit
    sim = SimCore("scene", seed=seed)
    task.reset(sim, seed)
    t0 = sim.time
    q0 = observe(sim).positions()
    joints = JointLimiter(q0[POSITION], spec.LOWER[POSITION], spec.UPPER[POSITION],
                          spec.MAX_VELOCITY[POSITION], spec.MAX_ACCELERATION[POSITION], sim.control_period)
    base = BaseLimiter(spec.MAX_VELOCITY[BASE], spec.MAX_ACCELERATION[BASE], sim.control_period)
    names = [n for n, p in zip(spec.ACTION_JOINTS, POSITION) if p]
    every = max(1, round(act_period / sim.control_period))
    start(sim)
    writer = renderer = None
    if video is not None:
        import imageio.v2 as imageio

        renderer = mujoco.Renderer(sim.model, 480, 640)
        writer = imageio.get_writer(str(video), fps=25, macro_block_size=8)
    target = q0
    held_since = done_since = None
    tick = 0
    success = False
    try:
        while sim.time - t0 < limit:
            if tick % every == 0:
                target = np.asarray(act(sim, sim.time - t0), float)
            sim.set_position_targets(names, joints.step(target[POSITION]))
            sim.set_base_velocity(*base.step(target[BASE]))
            sim.step()
            if writer is not None and tick % 4 == 0:
                renderer.update_scene(sim.data, camera)
                writer.append_data(renderer.render())
            tick += 1
            if tick % 10 == 0:
                ok = task.success(sim.model, sim.data)
                held_since = (held_since if held_since is not None else sim.time) if ok else None
                if held_since is not None and sim.time - held_since >= settle:
                    success = True
                    break
                done_since = (done_since or sim.time) if done() else None
                if done_since is not None and sim.time - done_since > settle + 2.0:
                    break  # the expert gave up or finished without success
    finally:
        if writer is not None:
            writer.close()
            renderer.close()
    return success, sim.time - t0
