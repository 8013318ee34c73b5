"""WB-VIMA training windows from recorded episodes (brs_teleop.episode files).

For every frame t of every episode one sample:
    points   (To, P, 6)    fused clouds of frames t-To+1 .. t (xyz m in base_link, rgb 0..1)
    proprio  (To, 21)      base velocity (3) + STATE_JOINTS positions (18) = ACTION_JOINTS order
    actions  (To, T, 21)   for each observation step s: the executed commands s .. s+T-1 from
                           /action (the last one repeated past the end of the episode)
Frames before the start repeat the first frame (as Diffusion Policy pads).

Point clouds come from `points_fn(images, joint_positions) -> (P, 6)`; by default the perception
function of the stack (`brs_policy.perception.fuse_point_cloud`, the same one the perception node
runs on the robot). They are computed once per episode and cached next to the dataset in
`<dataset>/.wbvima_cache/<episode>.<key>.npy`, the key hashing the perception settings and the
episode file's size and mtime, so training never recomputes them and a changed setting or a
re-recorded episode gets a fresh cache. The cache is memory-mapped, not loaded: a dataset's clouds
(~25 MB per 250-frame episode at 4096 points) may exceed RAM, and a sample reads only its own
frames' first n points (the clouds are in farthest-point order, so the first n are themselves an
n-point FPS: what the policy node feeds the model).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from brs_common import robot_spec as spec

PointsFn = Callable[[dict, np.ndarray], np.ndarray]
CACHE_DIR = ".wbvima_cache"


def default_points_fn(crop=None, n_points: int = 4096) -> PointsFn:
    """The stack's perception function with fixed settings (crop box, point count, seed 0)."""
    try:
        from brs_policy.perception import crop_box, fuse_point_cloud
    except ImportError as exc:  # pragma: no cover - perception ships in this package
        raise RuntimeError("brs_policy.perception.fuse_point_cloud is not available; pass points_fn= "
                           f"to build point clouds ({exc})") from None
    box = crop_box(crop)
    crop_pairs = box.tolist()  # nested pairs: what fuse_point_cloud's crop argument takes

    def points_fn(images: dict, joint_positions: np.ndarray) -> np.ndarray:
        return fuse_point_cloud(images, joint_positions, crop=crop_pairs, n_points=n_points, seed=0)

    points_fn.cache_key = f"perception:box={box.round(4).tolist()}:n={n_points}:fast:seed0"
    return points_fn


def proprio_of(base_velocity: np.ndarray, joint_position: np.ndarray) -> np.ndarray:
    """(…, 3) + (…, 18) -> (…, 21) proprioception in ACTION_JOINTS order."""
    return np.concatenate([np.asarray(base_velocity, np.float32), np.asarray(joint_position, np.float32)],
                          axis=-1)


def _cache_key(path: Path, points_fn: PointsFn) -> str:
    st = path.stat()
    ident = getattr(points_fn, "cache_key", None) or getattr(points_fn, "__qualname__", repr(points_fn))
    blob = json.dumps({"fn": str(ident), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                       "spec": spec.spec_hash()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def episode_points(path: str | Path, points_fn: PointsFn, cache: bool = True,
                   progress: bool = False) -> np.ndarray:
    """(N, P, 6) float32 point clouds of every frame of an episode (cached next to the dataset)."""
    from brs_teleop.episode import read_episode

    path = Path(path)
    cache_file = path.parent / CACHE_DIR / f"{path.name}.{_cache_key(path, points_fn)}.npy"
    if cache and cache_file.is_file():
        try:
            return np.load(cache_file, mmap_mode="r")
        except (OSError, ValueError):
            pass  # a broken cache file: recompute
    with read_episode(path) as ep:
        frames = range(ep.n_frames)
        if progress:
            from tqdm import tqdm

            frames = tqdm(frames, desc=f"points {path.name}", leave=False)
        clouds = []
        for i in frames:
            images = {name: (cam.color[i], cam.depth[i]) for name, cam in ep.cameras.items()}
            cloud = np.asarray(points_fn(images, ep.joint_position[i]), dtype=np.float32)
            if cloud.ndim != 2 or cloud.shape[1] != 6 or (clouds and cloud.shape != clouds[0].shape):
                raise ValueError(f"points_fn returned shape {cloud.shape} for frame {i} of {path}; "
                                 "expected (P, 6), the same P every frame")
            clouds.append(cloud)
    points = np.stack(clouds) if clouds else np.zeros((0, 0, 6), np.float32)
    if cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + f".{os.getpid()}.tmp.npy")
        np.save(tmp, points)
        os.replace(tmp, cache_file)
        return np.load(cache_file, mmap_mode="r")
    return points


TargetsFn = Callable[[Path], tuple[np.ndarray, np.ndarray]]  # episode -> (targets (N, D), mask (N,))


class EpisodeData:
    """One episode: proprio (N, 21), actions (N, 21) in memory, points (N, P, 6) memory-mapped;
    with `targets_fn` also training-only object poses (N, D) and where they are known (N,)."""

    def __init__(self, path: str | Path, points_fn: PointsFn | None, cache: bool = True, progress: bool = False,
                 targets_fn: TargetsFn | None = None):
        from brs_teleop.episode import read_episode, validate_episode

        self.path = Path(path)
        validate_episode(self.path, spec.spec_hash())
        with read_episode(self.path) as ep:
            self.proprio = proprio_of(ep.base_velocity, ep.joint_position)
            self.actions = np.asarray(ep.action, np.float32)
            self.task = str(ep.metadata.get("task", ""))
        self.points = episode_points(self.path, points_fn, cache, progress) if points_fn else None
        self.n = len(self.actions)
        self.object_pose = self.object_mask = None
        if targets_fn is not None:
            self.object_pose, self.object_mask = targets_fn(self.path)
            if len(self.object_pose) != self.n or len(self.object_mask) != self.n:
                raise ValueError(f"{self.path}: targets_fn gave {len(self.object_pose)} targets for {self.n} frames")


class WindowDataset:
    """All (episode, frame) windows of a set of episodes; `batch(indices)` -> numpy dict."""

    def __init__(self, paths: Sequence[str | Path], obs_window: int = 2, horizon: int = 8,
                 points_fn: PointsFn | None = None, n_points: int | None = None, cache: bool = True,
                 progress: bool = False, crop=None, targets_fn: TargetsFn | None = None):
        if not paths:
            raise ValueError("no episodes given")
        if points_fn is None:
            points_fn = default_points_fn(crop, 4096 if n_points is None else max(n_points, 4096))
        self.obs_window, self.horizon, self.n_points = obs_window, horizon, n_points
        self.episodes = [EpisodeData(p, points_fn, cache, progress, targets_fn) for p in paths]
        self.index = np.array([(e, t) for e, ep in enumerate(self.episodes) for t in range(ep.n)],
                              dtype=np.int64).reshape(-1, 2)
        p = {ep.points.shape[1] for ep in self.episodes}
        if len(p) != 1:
            raise ValueError(f"episodes have different point counts {sorted(p)}")
        self.cloud_points = p.pop()
        if n_points is not None and n_points > self.cloud_points:
            raise ValueError(f"model wants {n_points} points, the clouds have {self.cloud_points}")

    def __len__(self) -> int:
        return len(self.index)

    def all_actions(self) -> np.ndarray:
        return np.concatenate([ep.actions for ep in self.episodes])

    def all_proprio(self) -> np.ndarray:
        return np.concatenate([ep.proprio for ep in self.episodes])

    def action_chunks(self) -> tuple[np.ndarray, np.ndarray]:
        """Every frame's action chunk (N, T, 21) and its proprio (N, 21): what the action
        normaliser is fitted on (after the model's to_relative)."""
        chunks, proprio = [], []
        for ep in self.episodes:
            t = np.clip(np.arange(ep.n)[:, None] + np.arange(self.horizon)[None], 0, ep.n - 1)
            chunks.append(ep.actions[t])
            proprio.append(ep.proprio)
        return np.concatenate(chunks), np.concatenate(proprio)

    def sample(self, i: int) -> dict[str, np.ndarray]:
        e, t = self.index[i]
        ep = self.episodes[e]
        obs_t = np.clip(np.arange(t - self.obs_window + 1, t + 1), 0, ep.n - 1)  # (To,)
        act_t = np.clip(obs_t[:, None] + np.arange(self.horizon)[None], 0, ep.n - 1)  # (To, T)
        n = self.cloud_points if self.n_points is None else self.n_points
        points = ep.points[obs_t, :n]  # reads only these frames' first n points of the map
        out = {"points": points, "proprio": ep.proprio[obs_t], "actions": ep.actions[act_t]}
        if ep.object_pose is not None:
            out["object_pose"], out["object_mask"] = ep.object_pose[obs_t], ep.object_mask[obs_t]
        return out

    def batch(self, indices) -> dict[str, np.ndarray]:
        items = [self.sample(int(i)) for i in indices]
        return {k: np.stack([it[k] for it in items]) for k in items[0]}
