"""Two Rooms: a point agent in a 2-D top-down image world of two rooms joined by one door.

The world is the unit square [0, 1]^2. One thin wall (vertical at x = wall_pos, or horizontal at
y = wall_pos) splits it into two rooms; a door of width `door_width` centred at `door_center`
(along the wall) joins them. Actions are 2-D displacements clipped to `max_step` (Euclidean
norm). A move whose segment crosses the wall outside the door stops at the wall (segment-vs-wall
intersection, so no tunnelling even with the maximal step); the outer border clips positions.

Observations are uint8 images (2, S, S): channel 0 the agent as a Gaussian blob, channel 1 the
walls (border + dividing wall with its door). `info["pos"]` is the true position, `info["goal"]`
the goal position and `info["goal_obs"]` / `env.goal_obs()` the goal rendered the same way.

The core functions (`step_positions`, `render_batch`, `crosses_door`) are vectorised over a batch
of positions, which the dataset generator uses directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

_EPS = 1e-4


@dataclass(frozen=True)
class Layout:
    wall_orientation: str = "vertical"  # "vertical" (wall x = wall_pos) or "horizontal" (y = wall_pos)
    wall_pos: float = 0.5
    door_center: float = 0.5  # coordinate along the wall
    door_width: float = 0.2

    def __post_init__(self):
        if self.wall_orientation not in ("vertical", "horizontal"):
            raise ValueError(f"wall_orientation must be vertical|horizontal, got {self.wall_orientation!r}")
        if not 0.1 <= self.wall_pos <= 0.9:
            raise ValueError("wall_pos must be in [0.1, 0.9]")
        if not 0.0 < self.door_width < 1.0:
            raise ValueError("door_width must be in (0, 1)")

    @property
    def axis(self) -> int:
        """Coordinate index the wall is perpendicular to (0: x for a vertical wall)."""
        return 0 if self.wall_orientation == "vertical" else 1

    @property
    def door_lo(self) -> float:
        return self.door_center - self.door_width / 2

    @property
    def door_hi(self) -> float:
        return self.door_center + self.door_width / 2

    def door_point(self) -> np.ndarray:
        p = np.empty(2)
        p[self.axis] = self.wall_pos
        p[1 - self.axis] = self.door_center
        return p

    def to_dict(self) -> dict:
        return asdict(self)


def room_of(pos: np.ndarray, layout: Layout) -> np.ndarray:
    """0 for the room below/left of the wall, 1 for the other; shape pos.shape[:-1]."""
    return (np.asarray(pos)[..., layout.axis] >= layout.wall_pos).astype(np.int64)


def clip_actions(act: np.ndarray, max_step: float) -> np.ndarray:
    act = np.nan_to_num(np.asarray(act, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    n = np.linalg.norm(act, axis=-1, keepdims=True)
    return act * np.minimum(1.0, max_step / np.maximum(n, 1e-12))


def step_positions(pos: np.ndarray, act: np.ndarray, layout: Layout, max_step: float) -> np.ndarray:
    """Move positions (B, 2) by actions (B, 2) (clipped to max_step); walls stop the motion."""
    pos = np.asarray(pos, dtype=np.float64)
    act = clip_actions(act, max_step)
    new = pos + act
    a, w = layout.axis, layout.wall_pos
    p0, p1 = pos[..., a], new[..., a]
    crossing = (p0 - w) * (p1 - w) <= 0.0
    crossing &= p0 != p1  # moving along/parallel does not cross
    if np.any(crossing):
        denom = np.where(crossing, p1 - p0, 1.0)
        t = np.clip((w - p0) / denom, 0.0, 1.0)
        along = pos[..., 1 - a] + t * act[..., 1 - a]
        in_door = (along > layout.door_lo) & (along < layout.door_hi)
        blocked = crossing & ~in_door
        if np.any(blocked):
            side = np.sign(p0 - w)
            side = np.where(side == 0, -np.sign(p1 - w), side)
            stop = pos + t[..., None] * act
            stop[..., a] = w + side * _EPS
            new = np.where(blocked[..., None], stop, new)
    return np.clip(new, _EPS, 1.0 - _EPS)


def crosses_door(pos_traj: np.ndarray, layout: Layout) -> np.ndarray:
    """Whether each trajectory (B, T, 2) ever changes room."""
    rooms = room_of(pos_traj, layout)
    return np.any(rooms != rooms[..., :1], axis=-1)


def wall_image(layout: Layout, size: int, thickness_px: float = 1.0) -> np.ndarray:
    c = (np.arange(size) + 0.5) / size
    xx, yy = np.meshgrid(c, c, indexing="xy")  # row = y, col = x
    px = 1.0 / size
    img = np.zeros((size, size), dtype=np.uint8)
    border = (xx < px) | (xx > 1 - px) | (yy < px) | (yy > 1 - px)
    along, perp = (yy, xx) if layout.axis == 0 else (xx, yy)
    wall = (np.abs(perp - layout.wall_pos) <= thickness_px * px * 0.75) & ~(
        (along > layout.door_lo) & (along < layout.door_hi))
    img[border | wall] = 255
    return img


def render_batch(pos: np.ndarray, layout: Layout, size: int = 64, sigma_px: float = 1.5,
                 walls: np.ndarray | None = None) -> np.ndarray:
    """Positions (..., 2) -> uint8 images (..., 2, size, size)."""
    pos = np.asarray(pos, dtype=np.float32)
    lead = pos.shape[:-1]
    p = pos.reshape(-1, 2) * size  # pixel units
    c = np.arange(size, dtype=np.float32) + 0.5
    gx = np.exp(-((c[None, :] - p[:, :1]) ** 2) / (2 * sigma_px**2))  # (B, S) over columns
    gy = np.exp(-((c[None, :] - p[:, 1:]) ** 2) / (2 * sigma_px**2))  # (B, S) over rows
    blob = (gy[:, :, None] * gx[:, None, :] * 255.0 + 0.5).astype(np.uint8)
    if walls is None:
        walls = wall_image(layout, size)
    out = np.empty((p.shape[0], 2, size, size), dtype=np.uint8)
    out[:, 0] = blob
    out[:, 1] = walls
    return out.reshape(*lead, 2, size, size)


def sample_in_room(rng: np.random.Generator, layout: Layout, room: np.ndarray | int, n: int,
                   margin: float = 0.05) -> np.ndarray:
    """n uniform positions inside the given room(s) (0 or 1), `margin` away from walls."""
    room = np.broadcast_to(np.asarray(room), (n,))
    a, w = layout.axis, layout.wall_pos
    lo = np.where(room == 0, margin, w + margin)
    hi = np.where(room == 0, w - margin, 1 - margin)
    out = np.empty((n, 2))
    out[:, a] = rng.uniform(lo, hi)
    out[:, 1 - a] = rng.uniform(margin, 1 - margin, size=n)
    return out


class TwoRoomsEnv(gym.Env):
    """Goal-conditioned Two Rooms. Reward is 1 on success (only for evaluation; data is reward-free).

    reset(options={"start": xy, "goal": xy}) fixes start and goal; otherwise they are sampled:
    `goal_mode` "any" (uniform), "same_room" or "other_room" relative to the start.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, layout: Layout | None = None, img_size: int = 64, max_step: float = 0.05,
                 max_episode_steps: int = 100, success_radius: float = 0.05, goal_mode: str = "any",
                 min_goal_dist: float = 0.2, render_mode: str | None = None):
        self.layout = layout or Layout()
        self.img_size = int(img_size)
        self.max_step = float(max_step)
        self.max_episode_steps = int(max_episode_steps)
        self.success_radius = float(success_radius)
        self.goal_mode = goal_mode
        self.min_goal_dist = float(min_goal_dist)
        self.render_mode = render_mode
        self._walls = wall_image(self.layout, self.img_size)
        self.observation_space = spaces.Box(0, 255, (2, self.img_size, self.img_size), np.uint8)
        self.action_space = spaces.Box(-self.max_step, self.max_step, (2,), np.float32)
        self.pos = np.full(2, 0.25)
        self.goal = np.full(2, 0.75)
        self.t = 0

    def _render_pos(self, p: np.ndarray) -> np.ndarray:
        return render_batch(p[None], self.layout, self.img_size, walls=self._walls)[0]

    def goal_obs(self) -> np.ndarray:
        return self._render_pos(self.goal)

    def _info(self) -> dict:
        return {"pos": self.pos.copy(), "goal": self.goal.copy(), "goal_obs": self.goal_obs(),
                "dist": float(np.linalg.norm(self.pos - self.goal)),
                "success": bool(np.linalg.norm(self.pos - self.goal) <= self.success_radius)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        rng = self.np_random
        if "start" in options:
            self.pos = np.asarray(options["start"], dtype=np.float64).copy()
        else:
            self.pos = rng.uniform(0.05, 0.95, 2)
            while abs(self.pos[self.layout.axis] - self.layout.wall_pos) < 0.02:
                self.pos = rng.uniform(0.05, 0.95, 2)
        if "goal" in options:
            self.goal = np.asarray(options["goal"], dtype=np.float64).copy()
        else:
            r = int(room_of(self.pos, self.layout))
            for _ in range(1000):
                if self.goal_mode == "same_room":
                    g = sample_in_room(rng, self.layout, r, 1)[0]
                elif self.goal_mode == "other_room":
                    g = sample_in_room(rng, self.layout, 1 - r, 1)[0]
                else:
                    g = rng.uniform(0.05, 0.95, 2)
                if np.linalg.norm(g - self.pos) >= self.min_goal_dist:
                    break
            self.goal = g
        self.t = 0
        return self._render_pos(self.pos), self._info()

    def step(self, action):
        self.pos = step_positions(self.pos[None], np.asarray(action)[None], self.layout, self.max_step)[0]
        self.t += 1
        info = self._info()
        terminated = info["success"]
        truncated = self.t >= self.max_episode_steps
        return self._render_pos(self.pos), float(terminated), terminated, truncated, info

    def render(self):
        img = self._render_pos(self.pos)
        g = self.goal_obs()[0]
        rgb = np.stack([img[1], img[0], g], axis=-1)
        return rgb
