"""The LMAct environments by name: `make_env("tictactoe")`, `make_env("chess", opponent="greedy")`.

Modules are imported when an env is made (chess needs python-chess, robot_reach ROS, the DMC tasks
dm_control, their experts torch). Vector-action envs (`robot_reach`, `dmc_cartpole_balance`) have
`action_space = VectorActions(n)` and a `render_vector` observation. An entry's optional third
item holds constructor arguments fixed by the name (a DMC task: its suite name); an env option
may not repeat them.
"""

from __future__ import annotations

import importlib

from ..env import Env

ENVS = {  # name -> (module, class[, fixed constructor arguments])
    "tictactoe": ("tictactoe", "TicTacToe"),
    "gridworld": ("gridworld", "GridWorld"),
    "crossword": ("crossword", "Crossword"),
    "chess": ("chess_game", "ChessGame"),
    "robot_reach": ("robot_reach", "RobotReach"),  # starts the sim graph (RosSimEnv) on the first reset
    "dmc_cartpole_balance": ("dmc_control", "DMCControl", {"task": "cartpole-balance"}),  # MR.Q expert
}


def make_env(name: str, **kwargs) -> Env:
    if name not in ENVS:
        raise ValueError(f"unknown LMAct environment {name!r}; choose from {', '.join(ENVS)}")
    module, cls, *fixed = ENVS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**(fixed[0] if fixed else {}), **kwargs)


__all__ = ["ENVS", "make_env"]
