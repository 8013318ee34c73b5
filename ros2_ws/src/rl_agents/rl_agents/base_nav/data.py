"""Reward-free base-motion data in the sim apartment: random, temporally correlated velocity
commands from random start poses in both rooms, run in-process on the real MuJoCo scene.

The base is driven exactly as the whole-body controller drives it: a world-frame (odom-frame)
velocity command per decision step (held for `dt` s), turned into a base-frame twist with the
current yaw at every control tick, through the controller's `BaseLimiter` (velocity and
acceleration limits), into `SimCore` (the sim node's physics). Walls, furniture and objects are
the physics' business: a command into a wall just leaves the robot pressing against it.

    python -m rl_agents.base_nav.data --episodes 300 --length 100 --seed 0 --out data/base_nav/random

writes `<out>.npz` (poses (E, L+1, 3) = x, y, yaw; actions (E, L, 3) in the unit ball =
world vx / v_max, vy / v_max, wz / w_max) and `<out>.json` (knobs, seed, size, door-crossing
fraction, coverage statistics).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mujoco
import numpy as np
from tqdm import tqdm

from brs_common import robot_spec as spec
from brs_common.planar import to_base_frame
from rl_agents.files import load_npz_json as load  # noqa: F401 - rl_agents.base_nav.data.load
from rl_agents.files import save_npz_json

BASE = spec.group_slice("base")


@dataclass
class BaseMotionConfig:
    dt: float = 0.2  # s per decision step (one action held)
    v_max: float = 0.5  # m/s for a unit action (spec limit 0.6)
    w_max: float = 1.0  # rad/s for a unit action (spec limit 1.2)


@dataclass
class DataConfig:
    episodes: int = 300
    length: int = 100  # decision steps per episode
    seed: int = 0
    rho: float = 0.9  # AR(1) correlation of the random command between steps (~2 s at dt 0.2)
    near_door: float = 0.3  # fraction of episodes that start within 1.2 m of the doorway
    yaw_scale: float = 0.5  # std of the angular command relative to the linear one


def action_to_world_velocity(a: np.ndarray, motion: BaseMotionConfig) -> np.ndarray:
    a = np.asarray(a, float)
    return np.array([a[0] * motion.v_max, a[1] * motion.v_max, a[2] * motion.w_max])


class BaseSim:
    """SimCore + the controller's base limiter, driven by unit-ball world-frame actions."""

    def __init__(self, motion: BaseMotionConfig | None = None, seed: int = 0):
        from brs_control.safety import BaseLimiter
        from brs_sim.sim_core import SimCore

        self.motion = motion or BaseMotionConfig()
        self.sim = SimCore("scene", seed=seed)
        self.limiter = BaseLimiter(spec.MAX_VELOCITY[BASE], spec.MAX_ACCELERATION[BASE], self.sim.control_period)
        self.ticks = max(1, round(self.motion.dt / self.sim.control_period))

    def reset(self, pose, seed: int = 0) -> np.ndarray:
        sim = self.sim
        sim.reset(seed)
        sim.data.qpos[sim.joints.base_qpos] = pose
        sim.data.qvel[sim.joints.base_qvel] = 0.0
        mujoco.mj_forward(sim.model, sim.data)
        self.limiter.stop()
        return sim.base_pose()

    def step(self, action) -> np.ndarray:
        """Hold world-frame action for dt; returns the pose (x, y, yaw) after it."""
        v = action_to_world_velocity(action, self.motion)
        for _ in range(self.ticks):
            yaw = self.sim.data.qpos[self.sim.joints.base_qpos[2]]
            self.sim.set_base_velocity(*self.limiter.step(to_base_frame(v, yaw)))
            self.sim.step()
        return self.sim.base_pose()


def clip_unit(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return a * np.minimum(1.0, 1.0 / np.maximum(n, 1e-12))


def random_actions(rng: np.random.Generator, length: int, cfg: DataConfig) -> np.ndarray:
    """AR(1) random commands, per-episode speed scale, clipped to the unit ball."""
    scale = rng.uniform(0.4, 1.0)
    std = np.array([1.0, 1.0, cfg.yaw_scale]) * scale
    a = np.zeros((length, 3))
    u = rng.normal(0, 1, 3) * std
    k = np.sqrt(1 - cfg.rho ** 2)
    for t in range(length):
        u = cfg.rho * u + k * rng.normal(0, 1, 3) * std
        a[t] = u
    return clip_unit(a)


def generate(cfg: DataConfig, motion: BaseMotionConfig | None = None, progress: bool = True) -> dict:
    from rl_agents.base_nav.apartment import Apartment

    motion = motion or BaseMotionConfig()
    rng = np.random.default_rng(cfg.seed)
    env = BaseSim(motion, seed=cfg.seed)
    apt = Apartment.from_model(env.sim.model, env.sim.data)
    poses = np.zeros((cfg.episodes, cfg.length + 1, 3))
    actions = np.zeros((cfg.episodes, cfg.length, 3), np.float32)
    t0 = time.monotonic()
    for e in tqdm(range(cfg.episodes), desc="base data", disable=not progress):
        door = rng.random() < cfg.near_door
        start = apt.sample_free(rng, 1, near_door=1.2 if door else None)[0]
        poses[e, 0] = env.reset(start, seed=int(rng.integers(1 << 31)))
        actions[e] = random_actions(rng, cfg.length, cfg)
        for t in range(cfg.length):
            poses[e, t + 1] = env.step(actions[e, t])
    crossing = np.array([apt.crossings(p[:, :2]) > 0 for p in poses])
    disp = np.linalg.norm(np.diff(poses[:, :, :2], axis=1), axis=-1)
    commanded = np.linalg.norm(actions[:, :, :2], axis=-1) * motion.v_max * motion.dt
    meta = {
        "kind": "base_nav_random", "config": asdict(cfg), "motion": asdict(motion),
        "episodes": cfg.episodes, "length": cfg.length, "transitions": int(cfg.episodes * cfg.length),
        "seed": cfg.seed, "door_crossing_fraction": float(crossing.mean()),
        "room_b_fraction": float(apt.room(poses[:, :, :2]).mean()),
        "mean_step_displacement": float(disp.mean()),
        "blocked_fraction": float(np.mean(disp < 0.3 * commanded)),  # steps pushing against something
        "position_min": poses[:, :, :2].reshape(-1, 2).min(0).tolist(),
        "position_max": poses[:, :, :2].reshape(-1, 2).max(0).tolist(),
        "door_y": apt.door_y, "door_x": list(apt.door_x), "bounds": apt.bounds.tolist(),
        "seconds": time.monotonic() - t0,
    }
    return {"poses": poses, "actions": actions, "meta": meta}


def save(data: dict, out: str | Path) -> Path:
    return save_npz_json(out, {"poses": data["poses"], "actions": data["actions"]}, data["meta"])


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Reward-free random base motion in the sim apartment.")
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--length", type=int, default=100, help="decision steps per episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--near-door", type=float, default=0.3, help="fraction of starts near the doorway")
    p.add_argument("--rho", type=float, default=0.9, help="AR(1) correlation of the commands")
    p.add_argument("--dt", type=float, default=0.2, help="s per action")
    p.add_argument("--out", required=True, help="output path without suffix (.npz + .json)")
    a = p.parse_args(argv)
    data = generate(DataConfig(a.episodes, a.length, a.seed, a.rho, a.near_door), BaseMotionConfig(dt=a.dt))
    save(data, a.out)
    print(json.dumps(data["meta"], indent=2))


if __name__ == "__main__":
    main()
