"""Perception benchmark (`make bench`, module brs_bench.perception).

perception_ms_p50             3 RGB-D cameras 320x240 rendered from the sim at a typical pose ->
                              fused, cropped, 4096 points (perception.fuse_point_cloud, fast FPS);
                              baseline: the same pipeline with exact FPS (fps.exact_fps).
perception_speedup_vs_open3d  our downsampling (fps.fast_fps) vs open3d's
                              PointCloud.farthest_point_down_sample on the same fused, cropped
                              input; value = open3d time / our time, baseline = open3d's time.
perception_fps_coverage_ratio covering radius of fast FPS / exact FPS on that input (lower is
                              better; target <= 1.2).
perception_speedup_vs_fpsample our downsampling vs the fastest of fpsample's samplers (bucket FPS
                              with a KD-tree or KD-line, "QuickFPS": exact FPS quality), same input;
                              value = fpsample time / our time; its coverage is in the note.
open3d and fpsample are benchmark-only dependencies (requirements-bench.txt; open3d needs Debian's
libusb-1.0-0).
"""

from __future__ import annotations

TITLE = "perception: 3 RGB-D cameras -> fused 4096-point cloud; FPS vs exact and open3d"  # make bench's heading of this module

import importlib.metadata
import time

import numpy as np

from brs_policy.fps import covering_radius, exact_fps, fast_fps
from brs_policy.perception import N_POINTS, PointCloudFuser, render_sim_images

TASK = "bimanual_box"
PIXEL_STRIDE = 2


def _median_ms(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def _open3d():
    try:
        import open3d  # noqa: F401
        return open3d
    except Exception as exc:  # ImportError, or OSError for a missing libusb-1.0
        print(f"   open3d unavailable ({exc!r}): install it with "
              "`.venv/bin/pip install -r requirements-bench.txt` (Debian/Ubuntu also needs "
              "`apt-get install -y libusb-1.0-0`); skipping perception_speedup_vs_open3d", flush=True)
        return None


def _fpsample():
    try:
        import fpsample
        return fpsample
    except ImportError as exc:
        print(f"   fpsample unavailable ({exc!r}): `.venv/bin/pip install -r requirements-bench.txt`; "
              "skipping perception_speedup_vs_fpsample", flush=True)
        return None


def run(repeats: int = 3) -> list:
    from brs_bench.result import Result

    n_fuse = max(20, 10 * repeats)
    images, q, _ = render_sim_images(task=TASK)
    fuser = PointCloudFuser()
    fast = lambda: fuser.fuse(images, q, TASK, N_POINTS, seed=0, pixel_stride=PIXEL_STRIDE)  # noqa: E731
    exact = lambda: fuser.fuse(images, q, TASK, N_POINTS, seed=0, sampler="exact",  # noqa: E731
                               pixel_stride=PIXEL_STRIDE)
    fast_ms = _median_ms(fast, n_fuse)
    exact_ms = _median_ms(exact, max(1, repeats), warmup=0)
    xyz, _ = fuser.back_project(images, q, TASK, PIXEL_STRIDE)
    results = [Result(
        "perception_ms_p50", fast_ms, "ms", exact_ms, "same pipeline, exact FPS", "<= 10",
        higher_is_better=False,
        note=f"3 cameras 320x240 (every {PIXEL_STRIDE}nd pixel: {len(xyz)} points in the crop) -> 4096 points",
    )]

    idx_exact, r_exact = exact_fps(xyz, N_POINTS, return_radius=True)
    r_fast = covering_radius(xyz, xyz[fast_fps(xyz, N_POINTS)])
    results.append(Result(
        "perception_fps_coverage_ratio", r_fast / r_exact, "x", 1.0, "exact FPS", "<= 1.2",
        higher_is_better=False,
        note=f"covering radius fast {r_fast * 100:.2f} cm vs exact {r_exact * 100:.2f} cm",
    ))

    ours_ms = _median_ms(lambda: fast_fps(xyz, N_POINTS), n_fuse)
    fps_lib = _fpsample()
    if fps_lib is not None:
        samplers = {"bucket_fps_kdline_sampling(h=7)": lambda: fps_lib.bucket_fps_kdline_sampling(xyz, N_POINTS, h=7,
                                                                                             start_idx=0),
                    "bucket_fps_kdtree_sampling": lambda: fps_lib.bucket_fps_kdtree_sampling(xyz, N_POINTS, start_idx=0)}
        times = {name: _median_ms(fn, max(3, repeats), warmup=1) for name, fn in samplers.items()}
        best = min(times, key=times.get)
        r_lib = covering_radius(xyz, xyz[np.asarray(samplers[best](), dtype=np.int64)])
        results.append(Result(
            "perception_speedup_vs_fpsample", times[best] / ours_ms, "x", 1.0,
            f"fpsample {importlib.metadata.version('fpsample')} {best}: {times[best]:.1f} ms", ">= 1.5",
            note=f"{len(xyz)} -> {N_POINTS} points; ours (fps.fast_fps) {ours_ms:.1f} ms, covering radius "
                 f"{r_fast / r_exact:.2f}x exact; fpsample's {r_lib / r_exact:.2f}x exact; "
                 + ", ".join(f"{k} {v:.1f} ms" for k, v in times.items()),
        ))

    o3d = _open3d()
    if o3d is not None:
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
        o3d_ms = _median_ms(lambda: pcd.farthest_point_down_sample(N_POINTS), max(1, repeats), warmup=1)
        results.append(Result(
            "perception_speedup_vs_open3d", o3d_ms / ours_ms, "x", 1.0,
            f"open3d {o3d.__version__} farthest_point_down_sample: {o3d_ms:.0f} ms", ">= 1",
            note=f"{len(xyz)} -> {N_POINTS} points; ours (fps.fast_fps) {ours_ms:.1f} ms",
        ))
    return results
