"""MR.Q unit tests: two-hot, LAP replay, multi-step returns, target schedule, checkpoints, envs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rl_agents.mrq import MRQAgent, MRQConfig, ReplayBuffer, TwoHot, multi_step_return, symexp, symlog
from rl_agents.mrq.agent import random_shift


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**kw) -> MRQConfig:
    base = dict(batch_size=16, buffer_size=2000, random_steps=50, target_update_freq=5, zs_dim=16, zsa_dim=16,
                za_dim=8, enc_hdim=16, value_hdim=16, policy_hdim=16)
    base.update(kw)
    return MRQConfig(**base)


def fill(agent: MRQAgent, n: int, seed: int = 0, episode_len: int = 20, terminate_every: int = 0) -> None:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=agent.obs_shape).astype(np.float32)
    for t in range(n):
        a = agent.act(obs)
        nxt = rng.normal(size=agent.obs_shape).astype(np.float32)
        term = bool(terminate_every) and (t + 1) % terminate_every == 0
        trunc = not term and (t + 1) % episode_len == 0
        agent.observe(obs, a, float(rng.normal()), nxt, term, trunc)
        agent.update()
        obs = nxt


# ----------------------------------------------------------------------------- two-hot
def test_symlog_symexp_inverse():
    x = torch.tensor([-1e4, -3.0, -0.5, 0.0, 0.25, 7.0, 2e4])
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(symlog(torch.tensor([math.e - 1.0])), torch.tensor([1.0]))


def test_two_hot_round_trip_and_bins():
    th = TwoHot(-10.0, 10.0, 65)
    assert th.bins.shape == (65,)
    torch.testing.assert_close(th.bins[[0, 32, 64]], torch.tensor([-math.expm1(10.0), 0.0, math.expm1(10.0)]))
    x = torch.tensor([-300.0, -1.0, -0.01, 0.0, 0.3, 1.0, 5.5, 100.0, float(th.bins[40])]).reshape(-1, 1)
    enc = th.encode(x)
    assert torch.all(enc >= 0) and torch.allclose(enc.sum(1), torch.ones(len(x)))
    assert torch.all((enc > 0).sum(1) <= 2)  # at most two neighbouring bins
    torch.testing.assert_close(th.decode(enc), x, rtol=1e-5, atol=1e-4)
    # out of range clamps to the end bins
    assert float(th.decode(th.encode(torch.tensor([[1e9]])))) == pytest.approx(float(th.bins[-1]))
    # cross-entropy is minimal for logits matching the encoding
    logits = torch.log(enc + 1e-9)
    assert torch.all(th.cross_entropy(logits, x) <= th.cross_entropy(torch.zeros_like(logits), x))
    torch.testing.assert_close(th.decode_logits(logits), x, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- LAP replay
def make_buffer(n_transitions: int, horizon: int = 1, **kw) -> ReplayBuffer:
    buf = ReplayBuffer((2,), 1, horizon=horizon, capacity=1000, batch_size=4096, **kw)
    for t in range(n_transitions):
        buf.add(np.full(2, t, np.float32), np.zeros(1, np.float32), float(t), np.full(2, t + 1, np.float32),
                terminated=t == n_transitions - 1, truncated=False)
    return buf


def test_lap_sampling_proportional_to_priority_alpha_with_min_clamp():
    torch.manual_seed(0)
    buf = make_buffer(4, alpha=0.4, min_priority=1.0)
    # one terminated episode of 4 transitions, horizon 1: slots 0..3 valid, slot 4 is padding
    assert buf.num_valid() == 4 and buf.priority[4] == 0
    buf.sample_indices()
    buf._last_idx = torch.arange(4)
    buf.update_priority(torch.tensor([0.1, 1.0, 4.0, 9.0]))  # 0.1 clamps to the minimum 1
    expected = torch.tensor([1.0, 1.0, 4.0 ** 0.4, 9.0 ** 0.4])
    torch.testing.assert_close(buf.priority[:4], expected)
    assert buf.max_priority == pytest.approx(9.0 ** 0.4)
    counts = torch.zeros(buf.size)
    for _ in range(50):
        counts += torch.bincount(buf.sample_indices(), minlength=buf.size).float()
    freq = counts / counts.sum()
    assert freq[4:].sum() == 0  # padding is never sampled
    torch.testing.assert_close(freq[:4], expected / expected.sum(), atol=0.01, rtol=0)
    # priority updates change the distribution; new transitions get the maximum priority
    buf._last_idx = torch.tensor([3])
    buf.update_priority(torch.tensor([0.0]))
    assert float(buf.priority[3]) == 1.0
    buf.add(np.zeros(2, np.float32), np.zeros(1, np.float32), 0.0, np.zeros(2, np.float32), True, False)
    assert float(buf.priority[buf.pos - 2]) == pytest.approx(9.0 ** 0.4)


def test_buffer_windows_respect_episode_ends():
    torch.manual_seed(0)
    h = 3
    buf = ReplayBuffer((1,), 1, horizon=h, capacity=100, batch_size=512)
    # episode A: 5 transitions, truncated; episode B: 4 transitions, terminated
    for t in range(5):
        buf.add([t], [0.0], 1.0, [t + 1], False, t == 4)
    for t in range(4):
        buf.add([10 + t], [0.0], 2.0, [11 + t], t == 3, False)
    valid = (buf.priority > 0).nonzero().flatten().tolist()
    # A occupies slots 0..4 (+3 padding 5..7): windows of 3 steps fit from starts 0, 1, 2 (2 ends at the cut)
    # B occupies slots 8..11 (+ padding 12..14): every start is valid (termination masks the rest)
    assert valid == [0, 1, 2, 8, 9, 10, 11]
    obs, act, rew, nd = buf.sample(h)
    assert obs.shape == (512, h + 1, 1) and rew.shape == (512, h)
    for o, r, d in zip(obs[:, :, 0], rew, nd):
        if o[0] < 10:  # episode A never crosses its cut
            torch.testing.assert_close(o, o[0] + torch.arange(h + 1.0))
            assert torch.all(d == 1)
        else:  # episode B: after the termination rewards are 0 and not_done 0
            steps_left = int(14 - o[0])  # the last transition is obs 13
            assert torch.all(d[:steps_left - 1] == 1) and torch.all(d[steps_left - 1:] == 0)
            assert torch.all(r[:steps_left] == 2.0) and torch.all(r[steps_left:] == 0.0)
    assert buf.reward_scale() == pytest.approx((5 * 1 + 4 * 2) / 9)


# ----------------------------------------------------------------------------- returns
def test_multi_step_return_with_terminations():
    reward = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    not_done = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    ret, disc = multi_step_return(reward, not_done, 0.5)
    # no termination: 1 + .5*2 + .25*3 = 2.75, bootstrap .125; terminated at step 2: 1 + .5*2 = 2;
    # terminated at step 1: 1
    torch.testing.assert_close(ret.flatten(), torch.tensor([2.75, 2.0, 1.0]))
    torch.testing.assert_close(disc.flatten(), torch.tensor([0.125, 0.0, 0.0]))


# ----------------------------------------------------------------------------- schedule
def test_target_update_schedule():
    cfg = tiny_config(target_update_freq=5, random_steps=50)
    agent = MRQAgent((3,), 2, config=cfg, seed=0)
    fill(agent, 50)
    assert agent.num_updates == 0 and agent.encoder_updates == 0  # random phase: no updates
    for n in range(1, 13):
        before = [p.detach().clone() for p in agent.encoder.parameters()]
        fill(agent, 1, seed=100 + n)
        assert agent.num_updates == n
        copied = (n - 1) % 5 == 0
        # encoder trained in blocks of 5 batches at updates 1, 6, 11, and only then
        assert agent.encoder_updates == 5 * ((n - 1) // 5 + 1)
        for tgt, p, b in zip(agent.encoder_target.parameters(), agent.encoder.parameters(), before):
            if copied:  # the target is the online encoder from before this block
                torch.testing.assert_close(tgt, b)
            assert torch.equal(tgt, b) == copied or not copied
        same_value = all(torch.equal(t, p) for t, p in zip(agent.value_target.parameters(), agent.value.parameters()))
        assert not same_value  # value trained right after the copy
    assert agent.reward_scale == pytest.approx(agent.buffer.reward_scale(), rel=0.2)


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_resume(tmp_path):
    cfg = tiny_config()
    agent = MRQAgent((3,), 2, config=cfg, seed=1, action_low=[-2, -1], action_high=[2, 1])
    fill(agent, 70, seed=1)
    path = tmp_path / "ckpt.pt"
    agent.save(path, include_buffer=True)
    raw = torch.load(path, weights_only=True)  # no pickle needed
    assert raw["counters"]["env_steps"] == 70
    restored = MRQAgent.load(path)
    assert restored.env_steps == 70 and restored.num_updates == agent.num_updates == 20
    for a, b in zip(agent.policy.parameters(), restored.policy.parameters()):
        assert torch.equal(a, b)
    assert restored.buffer.num_valid() <= agent.buffer.num_valid()
    np.testing.assert_allclose(restored.action_low, [-2, -1])
    # resume: both continue from the same state and counters
    fill(restored, 10, seed=5)
    assert restored.env_steps == 80 and restored.num_updates == 30
    obs = np.zeros(3, np.float32)
    act = restored.act(obs, explore=False)
    assert np.all(act >= [-2, -1]) and np.all(act <= [2, 1])
    # without the buffer: weights only, a fresh buffer -> back in the random phase until it refills
    agent.save(tmp_path / "weights.pt")
    light = MRQAgent.load(tmp_path / "weights.pt")
    assert light.buffer.size == 0 and light.env_steps == 70


# ----------------------------------------------------------------------------- discrete, pixels
def test_discrete_agent_updates():
    agent = MRQAgent((4,), 3, discrete=True, config=tiny_config(), seed=0)
    assert agent.exploration_noise == pytest.approx(0.1) and agent.noise_clip == pytest.approx(0.15)
    fill(agent, 60, terminate_every=13)
    assert agent.num_updates == 10 and agent.buffer.env_terminates
    assert isinstance(agent.act(np.zeros(4, np.float32)), int)
    assert torch.all(agent.buffer.action[agent.buffer.real].sum(1) == 1)  # one-hot actions stored


def test_random_shift_and_pixel_agent():
    x = torch.arange(2 * 1 * 84 * 84, dtype=torch.float32).view(2, 1, 84, 84)
    y = random_shift(x, 4)
    assert y.shape == x.shape
    torch.manual_seed(3)
    img = torch.zeros(1, 1, 84, 84)
    img[0, 0, 40, 40] = 255.0
    moved = random_shift(img, 4)
    r, c = (moved[0, 0] == 255).nonzero()[0].tolist()
    assert abs(r - 40) <= 4 and abs(c - 40) <= 4
    cfg = tiny_config(random_steps=20, target_update_freq=2, batch_size=4)
    agent = MRQAgent((9, 84, 84), 2, pixel_obs=True, config=cfg, seed=0)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, (9, 84, 84), dtype=np.uint8)
    for t in range(24):
        nxt = rng.integers(0, 255, (9, 84, 84), dtype=np.uint8)
        agent.observe(obs, agent.act(obs), 1.0, nxt, False, (t + 1) % 10 == 0)
        agent.update()
        obs = nxt
    assert agent.num_updates == 4 and agent.buffer.obs.dtype == torch.uint8


# ----------------------------------------------------------------------------- envs
def test_env_registry():
    from rl_agents.envs import make_env

    env = make_env("gym/Pendulum-v1", seed=0)
    assert env.obs_shape == (3,) and env.action_dim == 1 and not env.discrete
    assert env.reset().shape == (3,)
    env = make_env("gym/CartPole-v1")
    assert env.discrete and env.action_dim == 2
    env = make_env("dmc/cartpole-balance", seed=0)
    assert env.obs_shape == (5,) and env.max_episode_steps == 500 and env.action_repeat == 2
    env.reset()
    steps = 0
    while True:
        _, r, term, trunc, _ = env.step(np.zeros(1))
        steps += 1
        assert 0.0 <= r <= 2.0  # two frames of reward in [0, 1]
        if term or trunc:
            break
    assert steps == 500 and trunc and not term
    with pytest.raises(ValueError):
        make_env("atari/Pong")


# ----------------------------------------------------------------------------- CLI
def test_cli_train_and_resume(tmp_path):
    import json

    from rl_agents.mrq.cli import main

    out = tmp_path / "run"
    common = ["train", "--env", "gym/Pendulum-v1", "--reduced", "--eval-every", "150", "--eval-episodes", "1",
              "--ckpt-every", "150", "--threads", "1", "--out", str(out),
              "--set", "random_steps=100", "target_update_freq=20", "batch_size=16"]
    assert main([*common, "--steps", "150"]) == 0
    assert main([*common, "--steps", "300", "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 300 and [r["step"] for r in summary["eval"]] == [150, 300]
    assert (out / "curve.png").exists() and (out / "eval.csv").exists()
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["counters"]["env_steps"] == 300 and ckpt["counters"]["num_updates"] == 200
