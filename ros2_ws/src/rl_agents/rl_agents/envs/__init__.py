"""Environment registry for the RL agents: `make_env("gym/Pendulum-v1")`, `make_env("dmc/cheetah-run")`.

Every adapter has the same small interface (`Env`): reset(seed) -> obs, step(action) ->
(obs, reward, terminated, truncated, info), and the specs obs_shape, action_dim, discrete,
pixel_obs, action_low/high, max_episode_steps. Observations are float32 vectors, or uint8
(C, 84, 84) stacks for pixels.

Names:
- `gym/<EnvId>`: any Gymnasium env with a Box/Discrete action space (Pendulum-v1, CartPole-v1,
  MuJoCo v5 like HalfCheetah-v5 via the pinned mujoco); episode limit is the env's own.
- `dmc/<domain>-<task>`: DeepMind Control Suite, MR.Q preprocessing: action repeat 2 (rewards
  summed), 500 agent steps per episode (1000 frames), flattened proprioceptive observations.
- `dmc-pixels/<domain>-<task>`: as dmc/ but observations are the last 3 RGB frames 84x84 (9, 84, 84).
- `ros/<task>`: a robot task in the lock-stepped ROS sim graph (rl_agents/ros_env.py, ros_tasks.py),
  e.g. `ros/reach`; each env starts its own sim + controller processes on a private ROS domain.
"""

from __future__ import annotations

from .base import Env
from .dmc import DMCEnv
from .gym_env import GymEnv


def make_env(name: str, seed: int = 0) -> Env:
    kind, _, env_id = name.partition("/")
    if kind == "gym":
        return GymEnv(env_id, seed=seed)
    if kind in ("dmc", "dmc-pixels"):
        domain, _, task = env_id.partition("-")
        return DMCEnv(domain, task.replace("-", "_"), seed=seed, pixels=kind == "dmc-pixels")
    if kind == "ros":
        from .ros import RosEnv  # imported lazily: needs rclpy and the sim

        return RosEnv(env_id, seed=seed)
    raise ValueError(f"unknown environment {name!r}: use gym/<EnvId>, dmc/<domain>-<task>, "
                     "dmc-pixels/<domain>-<task> or ros/<task>")


__all__ = ["Env", "GymEnv", "DMCEnv", "make_env"]
