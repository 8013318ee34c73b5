"""Offline reward-free Two Rooms datasets.

Knobs:
- size: `episodes` x `length` (steps per episode; positions have length + 1 entries);
- quality: "random" (temporally correlated random actions), "expert" (goal-directed at full
  speed, through the door when the goal is in the other room) or "noisy" (expert + Gaussian action
  noise of std `noise` x max_step);
- coverage: fraction of episodes that cross the door (None: whatever the policy produces).
  Episodes are drawn in pools and kept per type (crossing / not crossing) until both quotas are
  met; for random data the crossing quota is helped by starting near the door.

Stored as `<out>.npz` (positions (E, L+1, 2) float32, actions (E, L, 2) float32, goals (E, L, 2)
float32 (the goal pursued at each step; random data: a fixed unused goal); images only with `images=True`, since they are rendered exactly from positions by
`two_rooms.render_batch`) plus `<out>.json` with knobs, seed, layout and measured statistics.

CLI: python -m rl_agents.two_rooms_data --episodes 1000 --length 100 --quality noisy --out data/tr
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rl_agents.files import load_npz_json as load  # noqa: F401 - rl_agents.two_rooms_data.load
from rl_agents.files import save_npz_json
from rl_agents.two_rooms import Layout, crosses_door, render_batch, room_of, sample_in_room, step_positions

QUALITIES = ("random", "expert", "noisy")


def expert_actions(pos: np.ndarray, goal: np.ndarray, layout: Layout, max_step: float) -> np.ndarray:
    """Goal-directed actions (B, 2): straight to the goal, via the door when rooms differ."""
    door = layout.door_point()
    a = layout.axis
    other = room_of(pos, layout) != room_of(goal, layout)
    # aim at a point just beyond the door on the goal's side once aligned with it
    target = np.where(other[:, None], door[None], goal)
    along = np.abs(pos[:, 1 - a] - layout.door_center) < layout.door_width * 0.3
    near = np.abs(pos[:, a] - layout.wall_pos) < 2 * max_step
    through = other & along & near
    if np.any(through):
        beyond = np.tile(door, (len(pos), 1))
        beyond[:, a] = layout.wall_pos + np.sign(goal[:, a] - layout.wall_pos) * 3 * max_step
        target = np.where(through[:, None], beyond, target)
    d = target - pos
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    return d * np.minimum(1.0, max_step / np.maximum(n, 1e-12)) * np.where(n > 1e-9, 1.0, 0.0)


def _rollout(rng, n, length, quality, layout, max_step, noise, want_cross):
    """Simulate n episodes; want_cross (n,) biases goals/starts toward door crossing."""
    start_room = rng.integers(0, 2, n)
    goal_room = np.where(want_cross, 1 - start_room, start_room)
    start = sample_in_room(rng, layout, start_room, n)
    goal = sample_in_room(rng, layout, goal_room, n)
    if quality == "random":
        # random walks rarely cross: start crossing candidates close to the door
        near = sample_in_room(rng, layout, start_room, n, margin=0.01)
        a = layout.axis
        near[:, a] = np.where(start_room == 0, layout.wall_pos - rng.uniform(0.01, 0.1, n),
                              layout.wall_pos + rng.uniform(0.01, 0.1, n))
        near[:, 1 - a] = layout.door_center + rng.uniform(-0.5, 0.5, n) * layout.door_width
        start = np.where(want_cross[:, None], near, start)
    pos = np.empty((n, length + 1, 2))
    act = np.empty((n, length, 2))
    pos[:, 0] = start
    prev = rng.normal(size=(n, 2)) * max_step
    goals = np.empty((n, length, 2))
    for t in range(length):
        if quality != "random":
            # goal reached: pick a new one in the same room, so the agent keeps moving
            done = np.linalg.norm(pos[:, t] - goal, axis=-1) < max_step
            if np.any(done):
                goal = goal.copy()
                goal[done] = sample_in_room(rng, layout, room_of(goal[done], layout), int(done.sum()))
        goals[:, t] = goal
        if quality == "random":
            # correlated random walk: mix previous action with fresh noise, random speed
            prev = 0.7 * prev + 0.3 * rng.normal(size=(n, 2)) * max_step * 1.5
            a_t = prev
        else:
            a_t = expert_actions(pos[:, t], goal, layout, max_step)
            if quality == "noisy":
                a_t = a_t + rng.normal(size=(n, 2)) * noise * max_step
        n_ = np.linalg.norm(a_t, axis=-1, keepdims=True)
        a_t = a_t * np.minimum(1.0, max_step / np.maximum(n_, 1e-12))
        act[:, t] = a_t
        pos[:, t + 1] = step_positions(pos[:, t], a_t, layout, max_step)
    return pos, act, goals


def measure(pos: np.ndarray, act: np.ndarray, goal: np.ndarray, layout: Layout, max_step: float) -> dict:
    d0 = np.linalg.norm(pos[:, :-1] - goal, axis=-1)
    d1 = np.linalg.norm(pos[:, 1:] - goal, axis=-1)
    return {
        "door_crossing_fraction": float(crosses_door(pos, layout).mean()),
        # mean per-step progress toward the episode's goal, in units of max_step (1 = perfect)
        "mean_progress_to_goal": float(((d0 - d1) / max_step).mean()),
        "mean_action_norm": float(np.linalg.norm(act, axis=-1).mean() / max_step),
        "mean_step_displacement": float(np.linalg.norm(pos[:, 1:] - pos[:, :-1], axis=-1).mean() / max_step),
        "position_std": [float(s) for s in pos.reshape(-1, 2).std(axis=0)],
    }


def generate(episodes: int = 1000, length: int = 100, quality: str = "noisy", coverage: float | None = None,
             seed: int = 0, layout: Layout | None = None, max_step: float = 0.05, noise: float = 0.5,
             out: str | Path | None = None, images: bool = False, img_size: int = 64,
             progress: bool = True, pool: int = 256) -> dict:
    """Generate a dataset; returns a dict of arrays + "meta"; writes .npz + .json when `out` is set."""
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}")
    if coverage is not None and not 0.0 <= coverage <= 1.0:
        raise ValueError("coverage must be in [0, 1]")
    layout = layout or Layout()
    rng = np.random.default_rng(seed)
    if coverage is None:
        quota = None
    else:
        n_cross = int(round(coverage * episodes))
        quota = {True: n_cross, False: episodes - n_cross}
    kept: dict[bool, list] = {True: [], False: []}
    have = {True: 0, False: 0}
    total = 0
    bar = tqdm(total=episodes, desc=f"two_rooms {quality}", disable=not progress)
    for _ in range(10_000):
        if total >= episodes:
            break
        if quota is None:
            want = rng.random(pool) < 0.5
        else:
            need_c, need_n = quota[True] - have[True], quota[False] - have[False]
            want = rng.random(pool) < need_c / max(need_c + need_n, 1)
        p, a, g = _rollout(rng, pool, length, quality, layout, max_step, noise, want)
        cr = crosses_door(p, layout)
        for c in (True, False):
            idx = np.nonzero(cr == c)[0]
            room = (episodes - total) if quota is None else quota[c] - have[c]
            idx = idx[:max(room, 0)]
            if len(idx):
                kept[c].append((p[idx], a[idx], g[idx]))
                have[c] += len(idx)
                total += len(idx)
                bar.update(len(idx))
    bar.close()
    if total < episodes:
        raise RuntimeError(f"could not reach coverage {coverage} for quality {quality}")
    parts = kept[True] + kept[False]
    pos = np.concatenate([x[0] for x in parts])
    act = np.concatenate([x[1] for x in parts])
    goal = np.concatenate([x[2] for x in parts])
    perm = rng.permutation(len(pos))
    pos, act, goal = pos[perm].astype(np.float32), act[perm].astype(np.float32), goal[perm].astype(np.float32)
    meta = {"episodes": episodes, "length": length, "quality": quality, "coverage": coverage, "seed": seed,
            "noise": noise, "max_step": max_step, "img_size": img_size, "layout": layout.to_dict(),
            "images": images, "stats": measure(pos, act, goal, layout, max_step)}
    data = {"positions": pos, "actions": act, "goals": goal}
    if images:
        data["observations"] = render_batch(pos, layout, img_size)
    if out is not None:
        save_npz_json(out, data, meta)
    data["meta"] = meta
    return data


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--quality", choices=QUALITIES, default="noisy")
    p.add_argument("--coverage", type=float, default=None, help="fraction of episodes crossing the door")
    p.add_argument("--noise", type=float, default=0.5, help="action noise std (x max_step) for 'noisy'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-step", type=float, default=0.05)
    p.add_argument("--wall", choices=("vertical", "horizontal"), default="vertical")
    p.add_argument("--wall-pos", type=float, default=0.5)
    p.add_argument("--door-center", type=float, default=0.5)
    p.add_argument("--door-width", type=float, default=0.2)
    p.add_argument("--images", action="store_true", help="also store rendered observations")
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--out", required=True, help="output path without suffix (.npz and .json written)")
    a = p.parse_args(argv)
    layout = Layout(a.wall, a.wall_pos, a.door_center, a.door_width)
    d = generate(a.episodes, a.length, a.quality, a.coverage, a.seed, layout, a.max_step, a.noise, a.out,
                 a.images, a.img_size)
    print(json.dumps(d["meta"]["stats"], indent=2))


if __name__ == "__main__":
    main()
