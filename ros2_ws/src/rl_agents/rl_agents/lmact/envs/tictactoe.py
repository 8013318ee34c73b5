"""Tic-tac-toe against a random (seeded) opponent; the expert is minimax.

The agent plays X; the seed decides who moves first and the opponent's moves. Observations are
the board (a tuple of 9 cells 'X', 'O', '.', row by row) when it is the agent's turn. Actions
name a cell: column a-c then row 1-3 ("b2" is the centre). Return: +1 win, 0 draw, -1 loss.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np

from ..actions import DiscreteActions
from ..env import Env

CELLS = tuple(f"{c}{r}" for r in "123" for c in "abc")  # index = row * 3 + column
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
EMPTY = tuple("." * 9)


def winner(board: tuple[str, ...]) -> str | None:
    """'X' or 'O' when that player has three in a line, 'draw' on a full board, else None."""
    for a, b, c in LINES:
        if board[a] != "." and board[a] == board[b] == board[c]:
            return board[a]
    return "draw" if "." not in board else None


@lru_cache(maxsize=None)
def _value(board: tuple[str, ...], to_move: str) -> int:
    """Minimax value for X: 0 for a draw, +-(1 + empty cells left) for a win / loss (sooner counts more)."""
    w = winner(board)
    if w is not None:
        return 0 if w == "draw" else (1 if w == "X" else -1) * (1 + board.count("."))
    values = [_value(board[:i] + (to_move,) + board[i + 1:], "O" if to_move == "X" else "X")
              for i in range(9) if board[i] == "."]
    return max(values) if to_move == "X" else min(values)


def minimax_move(board: tuple[str, ...]) -> int:
    """X's best cell (the first of the best in index order; a win sooner beats a win later)."""
    moves = [i for i in range(9) if board[i] == "."]
    return max(moves, key=lambda i: (_value(board[:i] + ("X",) + board[i + 1:], "O"), -i))


def _glyphs(size: int) -> dict[str, np.ndarray]:
    """Boolean masks of an X and an O in a size x size cell."""
    y, x = np.mgrid[:size, :size] + 0.5
    c, m = size / 2, size * 0.2
    cross = ((np.abs(x - y) < 1.5) | (np.abs(x + y - size) < 1.5)) & (x > m) & (x < size - m)
    r = np.hypot(x - c, y - c)
    return {"X": cross, "O": (r > c - m - 1.5) & (r < c - m + 0.5), ".": np.zeros_like(cross)}


class TicTacToe(Env):
    name = "tictactoe"
    title = "tic-tac-toe"
    formats = ("text", "rgb", "vector")
    max_steps = 5
    cell_px = 16
    _space = DiscreteActions()
    _masks = _glyphs(cell_px)
    _colours = {"X": (200, 30, 30), "O": (30, 60, 200)}

    def __init__(self) -> None:
        self.board: tuple[str, ...] = EMPTY
        self.rng = random.Random(0)

    @property
    def action_space(self):
        return self._space

    def instructions(self) -> str:
        return ("You play tic-tac-toe as X against an opponent playing O; three in a row, column or "
                "diagonal wins. The board is shown with columns a-c and rows 1-3; '.' is an empty cell. "
                "An action is the empty cell you mark, column letter then row number, e.g. b2 (centre).")

    def reset(self, seed: int):
        self.rng = random.Random(seed)
        self.board = EMPTY
        if self.rng.random() < 0.5:
            self._opponent()
        return self.board

    def _opponent(self) -> None:
        i = self.rng.choice([i for i in range(9) if self.board[i] == "."])
        self.board = self.board[:i] + ("O",) + self.board[i + 1:]

    def legal_actions(self) -> list[str]:
        return [CELLS[i] for i in range(9) if self.board[i] == "."] if winner(self.board) is None else []

    def step(self, action: str):
        i = CELLS.index(action)
        if self.board[i] != "." or winner(self.board) is not None:
            raise ValueError(f"illegal move {action!r}")
        self.board = self.board[:i] + ("X",) + self.board[i + 1:]
        if winner(self.board) is None:
            self._opponent()
        w = winner(self.board)
        return self.board, {None: 0.0, "draw": 0.0, "X": 1.0, "O": -1.0}[w], w is not None

    @property
    def success(self) -> bool:
        return winner(self.board) == "X"

    def state(self):
        return self.board

    def expert(self, state=None) -> str:
        return CELLS[minimax_move(self.board if state is None else tuple(state))]

    def render_text(self, board) -> str:
        return "  a b c\n" + "\n".join(f"{r + 1} " + " ".join(board[3 * r:3 * r + 3]) for r in range(3))

    def render_rgb(self, board) -> np.ndarray:
        s = self.cell_px
        img = np.full((3 * s, 3 * s, 3), 255, np.uint8)
        for i, cell in enumerate(board):
            r, c = divmod(i, 3)
            view = img[r * s:(r + 1) * s, c * s:(c + 1) * s]
            if cell in self._colours:
                view[self._masks[cell]] = self._colours[cell]
        img[s::s, :] = img[:, s::s] = 0  # grid lines
        return img

    def render_vector(self, board) -> np.ndarray:
        return np.asarray([{"X": 1.0, "O": -1.0, ".": 0.0}[c] for c in board], np.float32)
