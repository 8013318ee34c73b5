"""bench_mrq runs the reference implementation's own loop when pointed at a checkout of it.

The checkout here is a stand-in with the reference's interface (MRQ/env_preprocessing.py: Env with
reset/step/action_space/obs_shape...; MRQ/MRQ.py: Agent(obs_shape, action_dim, max_action,
pixel_obs, discrete, device, history, hp) with select_action/replay_buffer.add/train): the real one
is not on PyPI and cannot be fetched here."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from brs_bench.mrq import ReferenceTrainer  # noqa: E402

ENV_PY = '''
import numpy as np
class _Space:
    def __init__(self): self.shape, self.rng = (6,), np.random.default_rng(0)
    def sample(self): return self.rng.uniform(-1, 1, 6).astype(np.float32)
    def seed(self, s): self.rng = np.random.default_rng(s)
class Env:
    def __init__(self, env_name, seed=0, eval=False):
        assert env_name == "Dmc-cheetah-run", env_name
        self.obs_shape, self.action_dim, self.max_action = (17,), 6, 1.0
        self.pixel_obs, self.discrete, self.history = False, False, 1
        self.action_space, self.t, self.resets = _Space(), 0, 0
    def reset(self):
        self.t, self.resets = 0, self.resets + 1
        return np.zeros(17, np.float32)
    def step(self, action):
        self.t += 1
        return np.full(17, self.t, np.float32), 1.0, False, self.t == 4
'''
MRQ_PY = '''
import numpy as np
class _Buffer:
    def __init__(self): self.rows = []
    @property
    def size(self): return len(self.rows)
    def add(self, *row): self.rows.append(row)
class Agent:
    def __init__(self, obs_shape, action_dim, max_action, pixel_obs, discrete, device, history=1, hp=dict()):
        self.replay_buffer, self.hp, self.trained = _Buffer(), hp, 0
    def select_action(self, state, use_exploration=True):
        if self.replay_buffer.size < self.hp["buffer_size_before_training"]:
            return None
        return np.full(6, 0.5, np.float32)
    def train(self):
        if self.replay_buffer.size > self.hp["buffer_size_before_training"]:
            self.trained += 1
'''


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    (tmp_path / "MRQ").mkdir()
    (tmp_path / "MRQ" / "env_preprocessing.py").write_text(ENV_PY)
    (tmp_path / "MRQ" / "MRQ.py").write_text(MRQ_PY)
    for name in ("MRQ", "env_preprocessing"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in ("MRQ", "env_preprocessing"):
        sys.modules.pop(name, None)


def test_reference_loop_acts_randomly_first_then_trains_every_step(checkout):
    ref = ReferenceTrainer(checkout, random_steps=3)
    assert ref.run(3) >= 0 and ref.agent.trained == 0  # random phase
    assert ref.run(6) >= 0
    rows = ref.agent.replay_buffer.rows
    assert len(rows) == 9 and ref.agent.trained == 6  # every step once the buffer holds > 3
    assert np.all(rows[-1][1] == 0.5) and not np.all(rows[0][1] == 0.5)  # policy vs random actions
    assert ref.env.resets == 1 + 2  # truncated every 4 steps: reset, as its main loop does


def test_a_folder_that_is_not_a_checkout_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="MRQ_REFERENCE_DIR=.*no MRQ/MRQ.py"):
        ReferenceTrainer(tmp_path, random_steps=3)
