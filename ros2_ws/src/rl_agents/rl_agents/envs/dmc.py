"""DeepMind Control Suite adapter with MR.Q's preprocessing (action repeat 2, 500 agent steps)."""

from __future__ import annotations

import os
from collections import deque

import numpy as np

from .base import Env


class DMCEnv(Env):
    def __init__(self, domain: str, task: str, seed: int = 0, *, pixels: bool = False, action_repeat: int = 2,
                 episode_frames: int = 1000, frame_stack: int = 3, image_size: int = 84):
        os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering
        from dm_control import suite  # imported lazily: heavy

        self.name = f"{'dmc-pixels' if pixels else 'dmc'}/{domain}-{task}"
        self.env = suite.load(domain, task, task_kwargs={"random": seed})
        spec = self.env.action_spec()
        self.discrete, self.action_dim = False, int(np.prod(spec.shape))
        self.action_low = np.broadcast_to(spec.minimum, spec.shape).astype(np.float64).reshape(-1)
        self.action_high = np.broadcast_to(spec.maximum, spec.shape).astype(np.float64).reshape(-1)
        self.action_repeat = action_repeat
        self.max_episode_steps = episode_frames // action_repeat
        self.pixel_obs = pixels
        self.image_size = image_size
        self.camera_id = 2 if domain == "quadruped" else 0
        self.frames: deque = deque(maxlen=frame_stack)
        if pixels:
            self.obs_shape = (3 * frame_stack, image_size, image_size)
        else:
            self.obs_shape = (sum(int(np.prod(v.shape)) for v in self.env.observation_spec().values()),)
        self._t = 0

    def _vector(self, ts) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1) for v in ts.observation.values()])

    def _pixels(self, reset: bool) -> np.ndarray:
        frame = self.env.physics.render(self.image_size, self.image_size, camera_id=self.camera_id)
        frame = np.ascontiguousarray(frame.transpose(2, 0, 1))  # (3, H, W) uint8
        if reset:
            self.frames.clear()
            for _ in range(self.frames.maxlen):
                self.frames.append(frame)
        else:
            self.frames.append(frame)
        return np.concatenate(list(self.frames), axis=0)

    def _obs(self, ts, reset: bool = False) -> np.ndarray:
        return self._pixels(reset) if self.pixel_obs else self._vector(ts)

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            from dm_control import suite
            domain, task = self.name.split("/", 1)[1].split("-", 1)
            self.env = suite.load(domain, task, task_kwargs={"random": seed})
        self._t = 0
        return self._obs(self.env.reset(), reset=True)

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), self.action_low, self.action_high)
        reward, terminated, ts = 0.0, False, None
        for _ in range(self.action_repeat):
            ts = self.env.step(action)
            reward += float(ts.reward or 0.0)
            if ts.last():
                terminated = ts.discount == 0.0  # suite tasks end on the time limit (discount 1)
                break
        self._t += 1
        truncated = not terminated and (ts.last() or self._t >= self.max_episode_steps)
        return self._obs(ts), reward, bool(terminated), bool(truncated), {}
