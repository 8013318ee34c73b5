"""Grid-world navigation: random walls, start and goal; the expert follows a BFS shortest path.

An n x n room (default 6) inside a wall border; each inner cell is a wall with probability
`wall_prob`; start and goal are free cells with a path between them of `min_dist` to `max_steps`
moves (maps are redrawn until so). Actions: up, down, left, right; a move into a wall leaves the
agent in place. Reward: -1/max_steps per action and +1 on reaching the goal (which ends the
episode), so the expert's return is 1 - shortest_path / max_steps.
"""

from __future__ import annotations

import random
from collections import deque
from typing import NamedTuple

import numpy as np

from ..actions import DiscreteActions
from ..env import Env

MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}  # also the expert's tie order
COLOURS = {"#": (60, 60, 60), ".": (255, 255, 255), "A": (30, 90, 220), "G": (40, 170, 60)}


class GridObs(NamedTuple):
    walls: tuple[str, ...]  # rows of '#' (wall) and '.' (free), border included
    agent: tuple[int, int]  # (row, column)
    goal: tuple[int, int]


def bfs_distances(walls: tuple[str, ...], source: tuple[int, int]) -> dict[tuple[int, int], int]:
    """Moves from `source` to every reachable free cell."""
    dist = {source: 0}
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES.values():
            n = (r + dr, c + dc)
            if walls[n[0]][n[1]] == "." and n not in dist:
                dist[n] = dist[(r, c)] + 1
                queue.append(n)
    return dist


class GridWorld(Env):
    name = "gridworld"
    title = "grid-world navigation"
    formats = ("text", "rgb", "vector")
    _space = DiscreteActions()

    def __init__(self, size: int = 6, wall_prob: float = 0.25, min_dist: int = 3, max_steps: int = 20,
                 cell_px: int = 8):
        if size < 3 or not 0 <= wall_prob < 0.7 or not 1 <= min_dist <= max_steps:
            raise ValueError(f"bad grid world: size {size}, wall_prob {wall_prob}, min_dist {min_dist}, "
                             f"max_steps {max_steps}")
        self.size, self.wall_prob, self.min_dist, self.max_steps, self.cell_px = size, wall_prob, min_dist, max_steps, cell_px
        self.obs = GridObs(("#" * (size + 2),) * (size + 2), (1, 1), (1, 1))

    @property
    def action_space(self):
        return self._space

    def instructions(self) -> str:
        return ("Move the agent A to the goal G on a grid map in as few moves as possible. '#' is a wall, "
                "'.' free floor; row 0 is the top. Moving into a wall leaves the agent where it is. "
                "An action is one of: up, down, left, right.")

    def reset(self, seed: int) -> GridObs:
        rng = random.Random(seed)
        n = self.size
        while True:
            rows = ["#" * (n + 2)]
            for _ in range(n):
                rows.append("#" + "".join("#" if rng.random() < self.wall_prob else "." for _ in range(n)) + "#")
            walls = tuple(rows + ["#" * (n + 2)])
            free = [(r, c) for r in range(1, n + 1) for c in range(1, n + 1) if walls[r][c] == "."]
            if len(free) < 2:
                continue
            start = rng.choice(free)
            far = [cell for cell, d in bfs_distances(walls, start).items() if self.min_dist <= d <= self.max_steps]
            if far:
                self.obs = GridObs(walls, start, rng.choice(sorted(far)))
                return self.obs

    def legal_actions(self) -> list[str]:
        return list(MOVES)

    def step(self, action: str):
        dr, dc = MOVES[action]
        (r, c), walls = self.obs.agent, self.obs.walls
        if walls[r + dr][c + dc] == ".":
            r, c = r + dr, c + dc
        self.obs = self.obs._replace(agent=(r, c))
        reached = self.obs.agent == self.obs.goal
        return self.obs, -1.0 / self.max_steps + float(reached), reached

    @property
    def success(self) -> bool:
        return self.obs.agent == self.obs.goal

    def state(self) -> GridObs:
        return self.obs

    def expert(self, state: GridObs | None = None) -> str:
        """The first move of a shortest path (BFS distances from the goal; ties in MOVES order)."""
        s = self.obs if state is None else state
        dist = bfs_distances(s.walls, s.goal)
        r, c = s.agent
        here = dist.get((r, c))
        if here is None:
            raise ValueError("the goal is unreachable")
        return next((m for m, (dr, dc) in MOVES.items() if dist.get((r + dr, c + dc), -1) == here - 1), "up")

    def _cells(self, obs: GridObs) -> list[list[str]]:
        grid = [list(row) for row in obs.walls]
        grid[obs.goal[0]][obs.goal[1]] = "G"
        grid[obs.agent[0]][obs.agent[1]] = "A"
        return grid

    def render_text(self, obs: GridObs) -> str:
        return "\n".join("".join(row) for row in self._cells(obs))

    def render_rgb(self, obs: GridObs) -> np.ndarray:
        grid = self._cells(obs)
        img = np.array([[COLOURS[ch] for ch in row] for row in grid], np.uint8)
        return np.repeat(np.repeat(img, self.cell_px, 0), self.cell_px, 1)

    def render_vector(self, obs: GridObs) -> np.ndarray:
        """Wall map, agent one-hot and goal one-hot, each (n+2)^2, concatenated."""
        walls = np.array([[ch == "#" for ch in row] for row in obs.walls], np.float32)
        agent, goal = np.zeros_like(walls), np.zeros_like(walls)
        agent[obs.agent] = goal[obs.goal] = 1.0
        return np.concatenate([walls.ravel(), agent.ravel(), goal.ravel()])
