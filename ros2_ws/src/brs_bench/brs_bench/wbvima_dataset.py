"""Benchmark: the WB-VIMA training data path past RAM.

`wbvima_dataset_rss_ratio`: resident anonymous memory (the process's own, not the page cache
the memory maps read through; /proc/self/status RssAnon after the batches) of a training loader over 200 synthetic episodes divided by the same over 20 episodes;
flat (~1) means the clouds are streamed from the memory-mapped cache, not held. Baseline, same
run: the same two sizes with every cloud loaded into memory (what the cache did before). Each
measurement is a fresh subprocess: build `WindowDataset`, draw 100 batches of 64 windows.
Also reported in the note: windows/s drawn at 200 episodes, mapped vs loaded.
Synthetic episodes: 100 frames, 8x6 images, 1024-point clouds (~2.5 MB of clouds each).
"""

from __future__ import annotations

TITLE = "WB-VIMA training data: memory at 20 vs 200 episodes, memory-mapped vs loaded clouds"  # make bench's heading of this module

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from brs_bench.result import Result

FRAMES, POINTS = 100, 1024

_CHILD = r"""
import json, sys, time
import numpy as np
from pathlib import Path
from brs_policy import dataset
from brs_bench.wbvima_dataset import points_fn
paths = sorted(Path(sys.argv[1]).glob("*.h5"))[: int(sys.argv[2])]
if sys.argv[3] == "loaded":  # every cloud in memory: the cache as it was before memory maps
    mapped = dataset.episode_points
    dataset.episode_points = lambda *a, **k: np.array(mapped(*a, **k))
ds = dataset.WindowDataset(paths, points_fn=points_fn, n_points=512)
rng = np.random.default_rng(0)
t0 = time.perf_counter()
for _ in range(100):
    ds.batch(rng.integers(len(ds), size=64))
rate = 100 * 64 / (time.perf_counter() - t0)
anon = max(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon"))
print(json.dumps({"anon_kb": anon, "rate": rate}))
"""


def points_fn(images, q):
    color, _ = images["head"]
    rng = np.random.default_rng(int(color[0, 0, 0]) * 1000 + int(1000 * q[0]) % 1000)
    return rng.random((POINTS, 6), dtype=np.float32)


points_fn.cache_key = "bench-synthetic-v1"


def write_synthetic(folder: Path, n: int) -> None:
    from brs_common import robot_spec as spec
    from brs_teleop.episode import CameraIntrinsics, EpisodeMetadata, EpisodeWriter, Frame

    n_state = len(spec.STATE_JOINTS)
    rng = np.random.default_rng(0)
    for e in range(n):
        meta = EpisodeMetadata(cameras={"head": CameraIntrinsics(K=(8, 0, 4, 0, 8, 3, 0, 0, 1), width=8, height=6)},
                               task="synthetic", seed=e)
        w = EpisodeWriter(folder, meta)
        for t in range(FRAMES):
            q = rng.normal(size=n_state).astype(np.float32) * 0.1
            w.add_frame(Frame(time=0.1 * t, joint_position=q, joint_velocity=np.zeros(n_state),
                              joint_effort=np.zeros(n_state), base_pose=np.zeros(3), base_velocity=np.zeros(3),
                              action=np.concatenate([np.zeros(3), q]).astype(np.float32),
                              images={"head": (np.full((6, 8, 3), e % 256, np.uint8), np.ones((6, 8), np.float32))}))
        w.close()


def _measure(folder: Path, n: int, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(n), mode], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(repeats: int = 3) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_synthetic(folder, 200)
        _measure(folder, 200, "mapped")  # computes the cache once
        m = {(n, mode): _measure(folder, n, mode) for mode in ("mapped", "loaded") for n in (20, 200)}
    ratio = lambda mode: m[(200, mode)]["anon_kb"] / m[(20, mode)]["anon_kb"]  # noqa: E731
    mb = lambda n, mode: m[(n, mode)]["anon_kb"] / 1024  # noqa: E731
    note = (f"RssAnon 20 -> 200 episodes: mapped {mb(20, 'mapped'):.0f} -> {mb(200, 'mapped'):.0f} MB, loaded "
            f"{mb(20, 'loaded'):.0f} -> {mb(200, 'loaded'):.0f} MB; windows/s at 200 episodes: mapped "
            f"{m[(200, 'mapped')]['rate']:.0f}, loaded {m[(200, 'loaded')]['rate']:.0f}; synthetic episodes of "
            f"{FRAMES} frames, {POINTS}-point clouds, 512 points per window")
    return [Result("wbvima_dataset_rss_ratio", ratio("mapped"), "x (200 / 20 episodes)", ratio("loaded"),
                   "every cloud loaded into memory", "<= 1.2", higher_is_better=False, note=note)]


if __name__ == "__main__":
    for r in run(1):
        print(r)
