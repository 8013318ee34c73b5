"""WB-VIMA in the sim without ROS: a fast closed-loop check of a checkpoint (several times faster
than real time), for gating a training run before the full-graph `brs eval`.

    python -m brs_policy.sim_rollout CHECKPOINT --task bimanual_box --first-seed 1000 --episodes 10

Every 1 / CAMERA_RATE_HZ s (the record rate the policy was trained at) the sim's cameras are
rendered, fused by the stack's perception function with the training settings (the task's crop,
FPS order, the first n points) and paired with the proprioception; the policy predicts a chunk
from the last To observations and its actions are executed one per period, all n_action_steps of
them before the next prediction (as policy_node does). Between the policy and the actuators sit
the controller's limiters (`brs_sim.experts.common.run_episode`, the scripted experts' loop).
What this leaves out next to the graph: perception/inference latency (`--latency` emulates it as
the policy node handles it), DDS, and the controller's trajectory interpolation between the actions. `brs eval` stays the judge.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from brs_common import robot_spec as spec

from .dataset import default_points_fn, proprio_of


@dataclass
class PolicyRollout:
    seed: int
    success: bool
    duration: float  # sim seconds
    chunks: int


def policy_rollout(policy, task: str, seed: int, time_limit: float | None = None, video=None,
                   sampler_seed: int = 0, trace: str | None = None, latency: float = 0.0) -> PolicyRollout:
    """One in-process episode of `policy` (a loaded WBVIMAPolicy) on `task` from `seed`.
    `latency` (s, rounded to whole action periods d): what perception + inference cost in the
    graph, emulated as policy_node handles it: a chunk is predicted from the observations of d
    periods ago, its first d actions (already past when it arrives) are skipped and the other
    n_action_steps - d are executed before the next prediction.
    `trace`: an .npz path for what happened at each action (for finding where it failed): time,
    base pose, joint positions, the executed target and the sim's object poses (ground truth the
    policy never sees)."""
    import torch
    from brs_sim.camera_renderer import RgbdRenderer
    from brs_sim.experts.common import run_episode

    cfg = policy.config
    points_fn = default_points_fn(task, max(cfg.n_points, 4096))  # what training cached
    delay = int(round(latency * spec.CAMERA_RATE_HZ))
    if not 0 <= delay < cfg.n_action_steps:
        raise ValueError(f"latency {latency} s: need 0 <= latency < n_action_steps / {spec.CAMERA_RATE_HZ:g} Hz")
    window: deque = deque(maxlen=cfg.obs_window + delay)
    chunk, k = None, 0
    counts = {"chunks": 0}
    rows: dict[str, list] = {"time": [], "base_pose": [], "joint_position": [], "target": [], "objects": []}
    object_names: list[str] = []
    renderer = None
    generator = torch.Generator().manual_seed(sampler_seed)
    policy.clear_cache()

    def start(sim) -> None:
        nonlocal renderer
        renderer = RgbdRenderer(sim.model)

    def act(sim, t: float) -> np.ndarray:
        nonlocal chunk, k
        q, _, _ = sim.joint_state()
        images = {name: renderer.render(sim.data, name) for name in spec.CAMERAS}
        cloud = np.asarray(points_fn(images, q), np.float32)[:cfg.n_points]
        window.append((cloud, proprio_of(sim.base_twist(), q)))
        if chunk is None or k >= cfg.n_action_steps - delay:
            obs = list(window)
            obs = obs[:max(1, len(obs) - delay)][-cfg.obs_window:]  # what arrived `delay` periods ago
            obs = [obs[0]] * (cfg.obs_window - len(obs)) + obs  # the first frame repeats (dataset)
            chunk = policy.predict({"points": np.stack([o[0] for o in obs]),
                                    "proprio": np.stack([o[1] for o in obs])}, generator=generator)
            chunk = np.clip(chunk, spec.ACTION_LOWER, spec.ACTION_UPPER)
            k = 0
            counts["chunks"] += 1
        k += 1
        action = chunk[delay + k - 1]
        if trace is not None:
            objects = sim.object_poses()
            for key, value in (("time", t), ("base_pose", sim.base_pose()), ("joint_position", q),
                               ("target", action), ("objects", np.stack(list(objects.values())))):
                rows[key].append(np.asarray(value, float))
            object_names[:] = objects
        return action

    try:
        success, duration = run_episode(task, seed, act, 1.0 / spec.CAMERA_RATE_HZ, time_limit, video, start=start)
    finally:
        if renderer is not None:
            renderer.close()
        if trace is not None and rows["time"]:
            np.savez_compressed(trace, object_names=np.array(object_names), **{k: np.stack(v) for k, v in rows.items()})
    return PolicyRollout(seed, success, duration, counts["chunks"])


def main(argv=None) -> int:
    from brs_common.stats import wilson_interval
    from tqdm import tqdm

    from .wbvima import load_policy

    p = argparse.ArgumentParser(prog="python -m brs_policy.sim_rollout", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--task", default="bimanual_box")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=1000, help="(default %(default)s: never used for training)")
    p.add_argument("--time-limit", type=float, default=None, help="sim seconds (default: the task's)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    p.add_argument("--video-dir", default=None, help="write one overview mp4 per episode here")
    p.add_argument("--latency", type=float, default=0.0,
                   help="s of perception + inference latency to emulate as the policy node handles it "
                        "(whole action periods, e.g. 0.1; default 0)")
    p.add_argument("--trace-dir", default=None,
                   help="write one .npz per episode here: time, base pose, joints, targets, object poses")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error("--episodes must be at least 1")
    import torch

    torch.set_num_threads(args.threads)
    try:
        policy = load_policy(args.checkpoint, device="cpu")
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint: one line, exit 2
        print(f"sim_rollout: error: {args.checkpoint}: {exc}")
        return 2
    from pathlib import Path

    for folder in (args.video_dir, args.trace_dir):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
    results, t0 = [], time.monotonic()
    for seed in tqdm(range(args.first_seed, args.first_seed + args.episodes), desc=args.task, unit="ep"):
        video = f"{args.video_dir}/{args.task}_seed{seed}.mp4" if args.video_dir else None
        trace = f"{args.trace_dir}/{args.task}_seed{seed}.npz" if args.trace_dir else None
        r = policy_rollout(policy, args.task, seed, args.time_limit, video, trace=trace, latency=args.latency)
        results.append(r)
        tqdm.write(f"seed {seed}: {'success' if r.success else 'FAIL'} after {r.duration:.1f} s sim, {r.chunks} chunks")
    wins = sum(r.success for r in results)
    lo, hi = wilson_interval(wins, len(results))
    print(f"{args.task}: {wins}/{len(results)} success (Wilson 95 % {lo:.0%}-{hi:.0%}), seeds "
          f"{args.first_seed}-{args.first_seed + args.episodes - 1}, {time.monotonic() - t0:.0f} s wall, in-process")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
