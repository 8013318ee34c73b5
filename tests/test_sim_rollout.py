"""The in-process closed loop of a WB-VIMA policy (brs_policy.sim_rollout): what the policy sees
and how its chunks are executed, with a scripted stand-in for the network."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch")

from brs_common import robot_spec as spec  # noqa: E402
from brs_policy.sim_rollout import policy_rollout  # noqa: E402


class ForwardPolicy:
    """Drives the base forward at 0.2 m/s and holds every joint where it is; records its inputs."""

    def __init__(self):
        self.config = SimpleNamespace(n_points=256, obs_window=2, n_action_steps=8)
        self.calls = []

    def clear_cache(self):
        self.calls.clear()

    def predict(self, obs, generator=None):
        self.calls.append({k: np.array(v) for k, v in obs.items()})
        chunk = np.zeros((8, spec.ACTION_DIM))
        chunk[:, spec.POSITION] = obs["proprio"][-1][spec.POSITION]
        chunk[:, 0] = 0.2
        return chunk


def test_chunks_are_executed_whole_and_the_policy_sees_the_training_observation(tmp_path):
    policy = ForwardPolicy()
    r = policy_rollout(policy, "bimanual_box", seed=3, time_limit=2.0, trace=tmp_path / "trace.npz")
    assert not r.success and r.duration == pytest.approx(2.0, abs=0.02)
    assert r.chunks == len(policy.calls) == 3  # 20 frames at 10 Hz, a prediction every 8
    first = policy.calls[0]
    assert first["points"].shape == (2, 256, 6) and first["proprio"].shape == (2, 21)
    np.testing.assert_array_equal(first["points"][0], first["points"][1])  # the first frame repeats
    assert np.isfinite(first["points"]).all() and first["points"][..., 2].min() > 0.0  # the floor is cropped
    later = policy.calls[-1]
    assert later["proprio"][-1][0] > 0.1  # measured forward speed in the proprio (base entries)
    assert not np.array_equal(later["points"][0], later["points"][1])  # two different frames
    trace = np.load(tmp_path / "trace.npz")  # one row per action: what ran and where the objects were
    assert trace["time"].shape == (20,) and trace["target"].shape == (20, spec.ACTION_DIM)
    np.testing.assert_allclose(trace["target"][:, 0], 0.2)
    assert trace["base_pose"][-1, 0] - trace["base_pose"][0, 0] > 0.15  # the base drove forward
    box = list(trace["object_names"]).index("box")
    assert trace["objects"].shape[1:] == (len(trace["object_names"]), 7)
    moved = np.abs(trace["objects"][:, box, :3] - trace["objects"][0, box, :3]).max()
    assert moved < 5e-3, f"the untouched box moved {moved:.4f} m"


class IndexPolicy(ForwardPolicy):
    """Like ForwardPolicy, but action j of a chunk drives at 0.01 * (j + 1) m/s: the executed
    targets say which actions of each chunk ran."""

    def predict(self, obs, generator=None):
        chunk = super().predict(obs, generator)
        chunk[:, 0] = 0.01 * np.arange(1, 9)
        return chunk


def test_latency_skips_the_actions_already_past(tmp_path):
    policy = IndexPolicy()
    policy_rollout(policy, "bimanual_box", seed=3, time_limit=2.0, trace=tmp_path / "t.npz", latency=0.2)
    # 2 periods of latency: actions 2..7 of every chunk run (6 of 8), then the next prediction
    assert len(policy.calls) == 4  # at frames 0, 6, 12, 18
    executed = np.round(np.load(tmp_path / "t.npz")["target"][:, 0] * 100).astype(int)
    np.testing.assert_array_equal(executed, np.tile(np.arange(3, 9), 4)[:20])
    first = policy.calls[0]["points"]
    np.testing.assert_array_equal(first[0], first[1])  # at frame 0 only frame 0 exists: it repeats
    with pytest.raises(ValueError, match="latency"):
        policy_rollout(IndexPolicy(), "bimanual_box", seed=3, time_limit=0.5, latency=0.8)
