"""A DeepMind Control Suite task with an MR.Q policy of ours as the expert (`dmc_cartpole_balance`).

The simulator is the MR.Q training env (`rl_agents.envs.make_env("dmc/<domain>-<task>")`: action
repeat 2, rewards of the two frames summed, the flat proprioceptive observation), so the expert
sees exactly what it was trained on. The episode is cut at `max_steps` agent steps (default 100 =
200 frames; DMC's own episode is 500 agent steps) because the harness makes one model call per
step; the score is the return over that horizon (the suite's rewards are in [0, 1] per frame, so
at most 2 * max_steps), and the runner's random and expert references play the same horizon.
Success: a return of at least SUCCESS_FRACTION of that maximum.

Observations: "vector" (the flat observation the expert acts on), "text" (the same numbers by
field, 3 decimals) and "rgb" (an image_size x image_size frame of the task's camera, rendered
from the snapshot's MuJoCo state on a copy of the physics, only when asked for: ~0.1 s per frame
on the shared CPU with EGL). Action: `VectorActions(n)` in the task's bounds (all suite tasks:
[-1, 1]); out-of-bounds values are clipped.

The expert: `checkpoints/mrq_<domain>_<task>.pt` (an `rl_agents.mrq.export_policy` file) unless
`checkpoint=` names another MR.Q checkpoint; loaded on its first use (torch is imported then), and
it acts deterministically (no exploration noise). Another task is one registry line in
`envs/__init__.py` plus its checkpoint; NOTES below only makes its prompt more specific.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..actions import VectorActions
from ..env import Env

SUCCESS_FRACTION = 0.8
FRAME_REWARD_MAX = 1.0  # every suite task's reward per frame is in [0, 1]

# domain-task -> (what the observation fields mean, what the action does, the goal): prompt text only
NOTES = {
    "cartpole-balance": ("position = (cart x in m, cosine and sine of the pole's angle from upright); "
                         "velocity = (cart velocity in m/s, pole angular velocity in rad/s)",
                         "the horizontal force on the cart (positive pushes it toward +x)",
                         "keep the pole upright and the cart near x = 0, with little force and motion"),
}


class DMCObs(NamedTuple):
    vector: tuple[float, ...]  # the flat observation (float32 values), what the expert acts on
    physics: tuple[float, ...]  # the MuJoCo state (qpos, qvel, act), to render the frame


def default_checkpoint(task: str) -> Path:
    """checkpoints/mrq_<domain>_<task>.pt of this package (source tree or ROS install)."""
    from brs_common.paths import share_dir

    return share_dir("rl_agents") / "checkpoints" / f"mrq_{task.replace('-', '_')}.pt"


class DMCControl(Env):
    formats = ("text", "vector", "rgb")

    def __init__(self, task: str, checkpoint: str | None = None, max_steps: int = 100, image_size: int = 64):
        """task: `<domain>-<task>` of the suite (set by the registry); the rest are env options."""
        from ...envs import make_env

        if not isinstance(max_steps, int) or not 1 <= max_steps <= 500:
            raise ValueError(f"{task}: max_steps must be an integer in [1, 500] (DMC's episode), got {max_steps!r}")
        if not isinstance(image_size, int) or not 16 <= image_size <= 256:
            raise ValueError(f"{task}: image_size must be an integer in [16, 256], got {image_size!r}")
        self.task, self.max_steps, self.image_size = task, max_steps, image_size
        self.name = "dmc_" + task.replace("-", "_")
        self.title = f"the DeepMind Control Suite task {task} (MuJoCo)"
        self.checkpoint = Path(checkpoint) if checkpoint is not None else default_checkpoint(task)
        if not self.checkpoint.is_file():
            raise ValueError(f"{self.name}: no MR.Q expert checkpoint at {self.checkpoint} "
                             "(rl_agents.mrq.export_policy writes one; checkpoint= names another)")
        self.sim = make_env(f"dmc/{task}", seed=0)  # ValueError for a task the suite does not have
        low, high = self.sim.action_low, self.sim.action_high
        if not (np.all(low == low[0]) and np.all(high == high[0])):
            raise ValueError(f"{self.name}: actions with per-dimension bounds are not supported")
        self._space = VectorActions(self.sim.action_dim, float(low[0]), float(high[0]))
        self.fields = [(k, int(np.prod(v.shape))) for k, v in self.sim.env.observation_spec().items()]
        self._agent = None  # the MR.Q expert, loaded on first use
        self._render_physics = None  # a physics copy for frames, made on the first one
        self.obs: DMCObs | None = None
        self.ret, self.t = 0.0, 0

    @property
    def action_space(self):
        return self._space

    def instructions(self) -> str:
        fields = ", ".join(f"{k} ({n} number{'s' if n > 1 else ''})" for k, n in self.fields)
        meaning, action, goal = NOTES.get(self.task, (None, "the actuators' controls", None))
        space = self._space
        return (f"Each turn you choose the controls for the next {self.sim.action_repeat} simulation frames. "
                f"The observation has the fields {fields}" + (f": {meaning}" if meaning else "") + ". "
                + (f"Goal: {goal}. " if goal else "")
                + f"An action is {space.n} number{'s' if space.n > 1 else ''} in [{space.low:g}, {space.high:g}], "
                f"{action}, e.g. `{space.format(np.zeros(space.n))}`. The episode lasts {self.max_steps} turns.")

    def _snapshot(self, vector: np.ndarray) -> DMCObs:
        state = self.sim.env.physics.get_state()
        return DMCObs(tuple(float(x) for x in np.asarray(vector, np.float32)), tuple(float(x) for x in state))

    def reset(self, seed: int) -> DMCObs:
        # = rl_agents.envs DMCEnv.reset(seed) (a new suite env with random=seed; tested) without
        # reloading the model (0.2 s): the task's RandomState draws the initial state, after
        # reset_context has cleared the MuJoCo data
        self.sim.env.task._random = np.random.RandomState(int(seed))
        self.ret, self.t = 0.0, 0
        self.obs = self._snapshot(self.sim.reset())
        return self.obs

    def legal_actions(self) -> list[str]:
        return []

    def step(self, action) -> tuple[DMCObs, float, bool]:
        action = np.clip(np.asarray(action, np.float64).reshape(self._space.n), self._space.low, self._space.high)
        vector, reward, terminated, truncated, _ = self.sim.step(action)
        self.ret += reward
        self.t += 1
        self.obs = self._snapshot(vector)
        return self.obs, float(reward), bool(terminated or truncated or self.t >= self.max_steps)

    def state(self) -> DMCObs:
        return self.obs

    def _expert_agent(self):
        if self._agent is None:
            from ...mrq import MRQAgent

            agent = MRQAgent.load(self.checkpoint, buffer=False)
            if agent.obs_shape != (self.sim.obs_shape[0],) or agent.action_dim != self._space.n or agent.pixel_obs:
                raise ValueError(f"{self.checkpoint} is an MR.Q policy for observations {agent.obs_shape} and "
                                 f"{agent.action_dim} actions, not {self.sim.name}'s {self.sim.obs_shape} and "
                                 f"{self._space.n}")
            self._agent = agent
        return self._agent

    def expert(self, state: DMCObs | None = None) -> np.ndarray:
        obs = self.obs if state is None else state
        action = self._expert_agent().act(np.asarray(obs.vector, np.float32), explore=False)
        return np.asarray(action, np.float32)

    @property
    def success(self) -> bool:
        return self.ret >= SUCCESS_FRACTION * FRAME_REWARD_MAX * self.sim.action_repeat * self.max_steps

    def render_text(self, obs: DMCObs) -> str:
        parts, i = [], 0
        for key, n in self.fields:
            parts.append(f"{key} " + ", ".join(f"{v:+.3f}" for v in obs.vector[i:i + n]))
            i += n
        return "; ".join(parts)

    def render_vector(self, obs: DMCObs) -> np.ndarray:
        return np.asarray(obs.vector, np.float32)

    def render_rgb(self, obs: DMCObs) -> np.ndarray:
        if self._render_physics is None:  # a copy, so that rendering never touches the episode's physics
            self._render_physics = self.sim.env.physics.copy(share_model=True)
        physics = self._render_physics
        physics.set_state(np.asarray(obs.physics))
        physics.forward()
        return physics.render(self.image_size, self.image_size, camera_id=self.sim.camera_id)

    def close(self) -> None:
        self._render_physics = None
