"""The LMAct environments by name: `make_env("tictactoe")`, `make_env("chess", opponent="greedy")`.

Modules are imported when an env is made (chess needs python-chess, robot_reach ROS). Vector-action
envs (`robot_reach`; a DMC task with an MR.Q expert is planned) have `action_space =
VectorActions(n)` and a `render_vector` observation.
"""

from __future__ import annotations

import importlib

from ..env import Env

ENVS = {  # name -> (module, class)
    "tictactoe": ("tictactoe", "TicTacToe"),
    "gridworld": ("gridworld", "GridWorld"),
    "crossword": ("crossword", "Crossword"),
    "chess": ("chess_game", "ChessGame"),
    "robot_reach": ("robot_reach", "RobotReach"),  # starts the sim graph (RosSimEnv) on the first reset
}


def make_env(name: str, **kwargs) -> Env:
    if name not in ENVS:
        raise ValueError(f"unknown LMAct environment {name!r}; choose from {', '.join(ENVS)}")
    module, cls = ENVS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**kwargs)


__all__ = ["ENVS", "make_env"]
