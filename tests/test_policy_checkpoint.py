"""Sim-in-the-loop regression: the committed bimanual_box WB-VIMA checkpoint completes the task.

The checkpoint runs through the stack's perception function, the model and the controller's
limiters in the MuJoCo sim (`brs_policy.sim_rollout`: in-process, deterministic: the sim, the
renderer and the sampler are seeded), so a change that breaks the policy path (perception, the
observation layout, normalisers, the model code, checkpoint loading, chunk execution) turns the
suite red. Seeds 1011 and 1002 are ones the checkpoint solved in its evaluation (docs/wbvima.md);
the second is tried only when the first fails (another CPU's float rounding can change a
sample), and one success proves the path works."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

import brs_policy  # noqa: E402

CHECKPOINT = Path(brs_policy.__file__).resolve().parents[1] / "checkpoints" / "bimanual_box.pt"
SEEDS = (1011, 1002)
TIME_LIMIT = 35.0  # sim s; the checkpoint's successes take ~24 s


def test_committed_checkpoint_completes_bimanual_box_in_the_sim():
    import torch

    from brs_policy.sim_rollout import policy_rollout
    from brs_policy.wbvima import load_policy

    assert CHECKPOINT.is_file(), f"{CHECKPOINT} is missing: the committed bimanual_box checkpoint"
    torch.set_num_threads(1)
    policy = load_policy(CHECKPOINT, device="cpu")
    outcomes = []
    for seed in SEEDS:
        r = policy_rollout(policy, "bimanual_box", seed, time_limit=TIME_LIMIT, sampler_seed=0)
        outcomes.append(r)
        if r.success:
            break
    assert any(r.success for r in outcomes), f"no success: {outcomes}"
    assert outcomes[-1].duration < 30.0, outcomes  # the box on the table in ~24 s, as in the evaluation
