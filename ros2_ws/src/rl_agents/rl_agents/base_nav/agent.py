"""The base planner: PLDM latent MPPI from the current odometry pose toward a goal pose.

`BasePlanner.act(pose)` encodes the pose, plans an action sequence in latent space toward the
encoded goal and returns the first action as a world-frame (odom-frame) velocity. It knows
nothing of walls or doors: those live only in the learned dynamics. The ROS planner_node and the
in-process `rollout` (for fast sweeps) both use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from brs_common.planar import wrap_angle
from rl_agents.pldm.planner import MPPI, MPPIConfig


def base_mppi_config(**kw) -> MPPIConfig:
    """MPPI defaults for the base (see docs/base_planner.md, "Planner")."""
    cfg = dict(horizon=60, samples=256, iterations=3, temperature=0.05, noise_std=0.7, min_std=0.1,
               terminal_weight=1.0, all_steps=True, noise_smoothing=0.8)
    cfg.update(kw)
    return MPPIConfig(**cfg)




@dataclass
class Tolerance:
    position: float = 0.15  # m
    yaw: float = 0.3  # rad

    def reached(self, pose, goal) -> bool:
        return bool(np.hypot(pose[0] - goal[0], pose[1] - goal[1]) <= self.position
                    and abs(wrap_angle(pose[2] - goal[2])) <= self.yaw)


@dataclass
class BasePlanner:
    model: torch.nn.Module
    features: object  # PoseFeatures
    motion: dict  # dt, v_max, w_max of the training data
    mppi: MPPIConfig = field(default_factory=base_mppi_config)
    seed: int = 0
    heading_gain: float = 1.5  # 1/s, heading controller (position-only latents)

    def __post_init__(self):
        self.device = next(self.model.parameters()).device
        self.planner = MPPI(self.model.predictor, self.model.cfg.action_dim, self.mppi, self.device, self.seed)
        self.goal = None
        self._zg = None
        self.plan_ms: list[float] = []

    @classmethod
    def from_checkpoint(cls, path, device="cpu", seed: int = 0, **mppi_overrides) -> "BasePlanner":
        from rl_agents.base_nav.train import load

        model, feats, ck = load(path, device)
        return cls(model, feats, dict(ck["motion"]), base_mppi_config(**mppi_overrides), seed=seed)

    @torch.no_grad()
    def encode(self, pose) -> torch.Tensor:
        return self.model.encoder(torch.from_numpy(self.features(pose)).to(self.device))

    def set_goal(self, goal) -> None:
        self.goal = np.asarray(goal, float).copy()
        self._zg = self.encode(self.goal)
        self.planner.reset()

    @torch.no_grad()
    def plan(self, pose) -> np.ndarray:
        """The action sequence (H, 3) from `pose`: unit-ball world-frame (vx, vy) / v_max and
        wz / w_max. With a position-only latent the MPPI plans (vx, vy) and the heading column is
        the heading controller's (constant over the plan)."""
        if self._zg is None:
            raise RuntimeError("no goal: call set_goal first")
        t0 = time.perf_counter()
        seq = self.planner.plan(self.encode(pose), self._zg).cpu().numpy().astype(np.float64)
        if seq.shape[1] == 2:
            wz = self.heading_gain * float(wrap_angle(self.goal[2] - pose[2])) / self.motion["w_max"]
            seq = np.column_stack([seq, np.full(len(seq), np.clip(wz, -1.0, 1.0))])
        self.plan_ms.append((time.perf_counter() - t0) * 1e3)
        return seq

    def velocity(self, action) -> np.ndarray:
        """Unit-ball action -> world-frame (vx, vy, wz)."""
        a = np.asarray(action, float)
        return np.array([a[0] * self.motion["v_max"], a[1] * self.motion["v_max"], a[2] * self.motion["w_max"]])

    def act(self, pose) -> np.ndarray:
        """World-frame velocity (vx, vy, wz) to execute now."""
        return self.velocity(self.plan(pose)[0])


def rollout(planner: BasePlanner, start, goal, time_limit: float = 60.0, tol: Tolerance | None = None,
            seed: int = 0, sim=None) -> dict:
    """In-process episode on SimCore + the controller's base limiter (no ROS): replan every dt."""
    from rl_agents.base_nav.data import BaseMotionConfig, BaseSim

    tol = tol or Tolerance()
    m = planner.motion
    env = sim or BaseSim(BaseMotionConfig(m["dt"], m["v_max"], m["w_max"]))
    pose = env.reset(np.asarray(start, float), seed)
    planner.set_goal(goal)
    path = [pose]
    steps = int(round(time_limit / m["dt"]))
    success = False
    for k in range(steps):
        if tol.reached(pose, goal):
            success = True
            break
        a = planner.plan(pose)[0]
        pose = env.step(a)
        path.append(pose)
    path = np.asarray(path)
    return {"success": success, "time": len(path) * m["dt"] - m["dt"], "final_distance":
            float(np.hypot(*(path[-1, :2] - np.asarray(goal)[:2]))), "path": path}
