"""The LMAct environments by name: `make_env("tictactoe")`, `make_env("chess", opponent="greedy")`.

Modules are imported when an env is made (chess needs python-chess). Phase 2 adds a DMC task with
an MR.Q policy as expert and the robot sim task here: an `Env` whose `action_space` is
`VectorActions(n)` and whose `render_vector` gives the observation.
"""

from __future__ import annotations

import importlib

from ..env import Env

ENVS = {  # name -> (module, class)
    "tictactoe": ("tictactoe", "TicTacToe"),
    "gridworld": ("gridworld", "GridWorld"),
    "crossword": ("crossword", "Crossword"),
    "chess": ("chess_game", "ChessGame"),
}


def make_env(name: str, **kwargs) -> Env:
    if name not in ENVS:
        raise ValueError(f"unknown LMAct environment {name!r}; choose from {', '.join(ENVS)}")
    module, cls = ENVS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**kwargs)


__all__ = ["ENVS", "make_env"]
