"""Benchmark: closed-loop success of the committed WB-VIMA checkpoints in the sim graph.

`wbvima_success_<task>`: the success rate of `brs_policy/checkpoints/<task>.pt` through the full
graph at real time (`brs eval`), next to the scripted expert on the same seeds in the same run
(`brs collect --no-record`). Seeds 5000.. (never used for training or tuning; the docs' tables use
1000..); `BRS_BENCH_EVAL_EPISODES` episodes per task (default 5, ~1 min each). Tasks without a
committed checkpoint are left out. The note holds the seeds and the Wilson 95 % interval.
"""

from __future__ import annotations

TITLE = "WB-VIMA closed-loop success of the committed checkpoints vs the expert (sim graph)"  # make bench's heading of this module

import os
import tempfile
from pathlib import Path

from brs_bench.result import Result

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
FIRST_SEED = 5000


def run(repeats: int = 3) -> list[Result]:
    from brs_bringup.collect import collect
    from brs_common.stats import wilson_interval
    from brs_sim.tasks import TASKS

    from brs_policy.evaluate import evaluate

    episodes = int(os.environ.get("BRS_BENCH_EVAL_EPISODES", "5"))
    results = []
    for task in TASKS:
        checkpoint = CHECKPOINTS / f"{task}.pt"
        if not checkpoint.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            summary = evaluate(task, episodes, checkpoint, first_seed=FIRST_SEED, output_dir=Path(tmp) / "eval",
                               progress=False, arguments={"policy.device": "cpu"})
            expert = collect(task, episodes, FIRST_SEED, Path(tmp) / "expert", record=False, progress=False)
        wins, n = summary["successes"], summary["episodes_run"]
        expert_rate = sum(o.success for o in expert) / len(expert) if expert else float("nan")
        lo, hi = wilson_interval(wins, n)
        results.append(Result(
            f"wbvima_success_{task}", wins / n if n else float("nan"), "success rate", expert_rate,
            "scripted expert, same seeds", "",
            note=f"{wins}/{n} on seeds {FIRST_SEED}-{FIRST_SEED + n - 1}, Wilson 95 % {lo:.2f}-{hi:.2f}; "
                 f"checkpoints/{task}.pt, full sim graph at real time"))
    return results
