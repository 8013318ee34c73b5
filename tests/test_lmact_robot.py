"""LMAct on the robot: `robot_reach`, the right gripper reaching a point through the whole-body
controller in the lock-stepped sim graph (RosSimEnv), through the same harness as the board games.
One graph for the module, on its own ROS domain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import next_domain
from rl_agents.lmact.envs import make_env
from rl_agents.lmact.models import ExpertModel, NearestNeighbourModel
from rl_agents.lmact.runner import run


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from rl_agents.ros_env import RosSimEnv

    e = make_env("robot_reach", env=RosSimEnv("reach", seed=0, domain_id=next_domain(),
                                                log_dir=tmp_path_factory.mktemp("lmact_robot")))
    yield e
    e.close()


def test_expert_reaches_on_a_near_shortest_path(env):
    """The expert's full steps straight at the target: success within the straight-line bound
    (distance beyond the 5 cm radius / 3 cm per step) plus two steps of arm lag."""
    for seed in (0, 1, 2):
        obs = env.reset(seed)
        d0 = float(np.linalg.norm(np.subtract(obs.target, obs.gripper)))
        text = env.render(obs, "text")
        assert f"distance {d0:.3f} m" in text and env.render(obs, "vector").shape == (21,)
        steps, done = 0, False
        while not done:
            obs, _, done = env.step(env.expert())
            steps += 1
        bound = math.ceil((d0 - 0.05) / 0.03) + 2
        assert env.success and steps <= bound, (seed, d0, steps, bound, env.distance)


def test_the_harness_runs_the_robot_with_demos_in_context(env, tmp_path):
    rows = run(env, NearestNeighbourModel(), [1], seeds=[0, 1], obs_format="vector", random_rollouts=1,
               path=tmp_path / "run.jsonl")
    episodes = [r for r in rows if r["type"] == "episode"]
    refs = {r["policy"]: r for r in rows if r["type"] == "reference" and r["seed"] == 0}
    assert len(episodes) == 2 and all(e["illegal"] == 0 for e in episodes)  # replayed demo actions parse
    assert refs["expert"]["success"] and refs["expert"]["score"] > refs["random"]["score"], refs
    expert = [r for r in run(env, ExpertModel(), [0], seeds=[3], obs_format="text", random_rollouts=1)
              if r["type"] == "episode"]
    assert expert[0]["success"] and expert[0]["illegal"] == 0
