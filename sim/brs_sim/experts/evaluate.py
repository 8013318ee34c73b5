"""Success rate of a scripted expert over seeds, in-process (no ROS): for tuning and for docs.

    python -m brs_sim.experts.evaluate --task bimanual_box --seeds 20 [--video-dir outputs/experts]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from brs_sim.experts import EXPERTS, make_expert
from brs_sim.experts.common import rollout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brs_sim.experts.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=sorted(EXPERTS))
    parser.add_argument("--seeds", type=int, default=20, help="number of seeds (default %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--video-dir", type=Path, help="write one overview mp4 per seed here")
    parser.add_argument("--failures-only", action="store_true", help="with --video-dir: keep failed seeds' videos only")
    parser.add_argument("--max-wait", type=float, default=0.0,
                        help="varied waits before the expert's key phases, uniform(0, MAX_WAIT) s (default 0: off)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.first_seed)
    if args.video_dir:
        args.video_dir.mkdir(parents=True, exist_ok=True)
    results = []
    t0 = time.monotonic()
    for seed in tqdm(range(args.first_seed, args.first_seed + args.seeds), desc=args.task, unit="ep"):
        video = args.video_dir / f"{args.task}_seed{seed:03d}.mp4" if args.video_dir else None
        expert = make_expert(args.task)
        if args.max_wait > 0:
            expert.vary_waits(args.max_wait, rng)
        r = rollout(args.task, expert, seed, video=video)
        if video is not None and args.failures_only and r.success:
            video.unlink(missing_ok=True)
        results.append(r)
        tqdm.write(f"seed {seed}: {'success' if r.success else 'FAIL'} after {r.duration:.1f} s (phase {r.phase})")
    wins = sum(r.success for r in results)
    print(f"{args.task}: {wins}/{len(results)} = {wins / len(results):.0%} success "
          f"({time.monotonic() - t0:.0f} s wall)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
