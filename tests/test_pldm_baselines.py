"""GCBC / GCIQL baselines: known-number losses and relabelling, GCBC learning, checkpoints."""

import numpy as np
import pytest
import torch

from checkpoint_errors import assert_rejects_garbage_and_missing
from rl_agents.pldm.baselines import (GCIQL, GCAgent, GCConfig, GCTrainConfig, GoalSampler, expectile_loss,
                                      gciql_losses, goal_rewards, load_agent, read_checkpoint, train_gcbc,
                                      train_method)
from rl_agents.pldm.train import evaluate
from rl_agents.two_rooms import Layout, TwoRoomsEnv, render_batch
from rl_agents.two_rooms_data import generate


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_expectile_loss_known_numbers():
    diff = torch.tensor([2.0, -1.0, 0.0, 0.5])
    # 0.9 * 4 + 0.1 * 1 + 0 + 0.9 * 0.25, averaged
    assert expectile_loss(diff, 0.9).item() == pytest.approx((3.6 + 0.1 + 0.225) / 4)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (4 + 1 + 0.25) / 4)
    # the minimiser of the expectile loss over a constant is above the mean for expectile > 0.5
    x = torch.tensor([0.0, 1.0, 2.0, 10.0])
    c = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([c], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        expectile_loss(x - c, 0.9).backward()
        opt.step()
    # 0.9 * (10 - c) = 0.1 * (3c - 3)  ->  c = 7.75 (the mean is 3.25)
    assert c.item() == pytest.approx(7.75, abs=1e-3)


def test_goal_rewards_sparse_zero_at_goal_minus_one_elsewhere():
    nxt = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.1, 0.1]])
    goal = np.array([[0.55, 0.5], [0.5, 0.6], [0.5, 0.61], [0.9, 0.9]])
    r, m = goal_rewards(nxt, goal, radius=0.1)
    np.testing.assert_array_equal(r, [0.0, 0.0, -1.0, -1.0])
    np.testing.assert_array_equal(m, [0.0, 0.0, 1.0, 1.0])


def _line_dataset(episodes=4, length=10):
    # episode e moves along x at height y = 0.1 + 0.2 e, x = 0.05 + 0.05 t: positions encode (e, t)
    t = np.arange(length + 1)
    pos = np.stack([np.stack([0.05 + 0.05 * t, np.full(length + 1, 0.1 + 0.2 * e)], -1) for e in range(episodes)])
    act = np.diff(pos, axis=1)
    meta = {"max_step": 0.05, "img_size": 16, "layout": {"wall_orientation": "vertical", "wall_pos": 0.9,
                                                          "door_center": 0.5, "door_width": 0.2}}
    return {"positions": pos.astype(np.float32), "actions": act.astype(np.float32), "goals": pos[:, 1:],
            "meta": meta}


def _decode(p):
    e = np.rint((p[:, 1] - 0.1) / 0.2).astype(int)
    t = np.rint((p[:, 0] - 0.05) / 0.05).astype(int)
    return e, t


def test_relabelling_future_current_and_random_goals():
    data = _line_dataset()
    smp = GoalSampler(data, 16, seed=0)
    np.testing.assert_allclose(smp.act, np.tile([1.0, 0.0], (4, 10, 1)), atol=1e-5)  # unit-disc actions
    ei, t, length = smp.transitions(4000)
    assert length == 10 and t.min() == 0 and t.max() == 9
    # uniform future goals: same episode, strictly later, up to the last state
    ge, gt = _decode(smp.traj_goals(ei, t, length))
    assert np.all(ge == ei) and np.all(gt > t) and np.all(gt <= 10)
    # geometric future goals (discount 0.5: offset 1 half of the time), clipped to the episode end
    ge, gt = _decode(smp.traj_goals(ei, t, length, geometric=0.5))
    assert np.all(ge == ei) and np.all(gt <= 10)
    first = t <= 5
    assert np.mean(gt[first] - t[first] == 1) == pytest.approx(0.5, abs=0.05)
    # value goals: p_curgoal = 1 -> the next state, reward 0 and mask 0 everywhere
    cfg = GCTrainConfig(p_curgoal=1.0, p_trajgoal=0.0, p_randomgoal=0.0, goal_radius=0.01)
    vg = smp.value_goals(ei, t, length, cfg)
    np.testing.assert_allclose(vg, smp.pos[ei, t + 1])
    r, m = goal_rewards(smp.pos[ei, t + 1], vg, cfg.goal_radius)
    assert np.all(r == 0) and np.all(m == 0)
    # the OGBench mixture 0.2 / 0.5 / 0.3: random goals come from other episodes too
    cfg = GCTrainConfig(goal_radius=0.01)
    ge, gt = _decode(smp.value_goals(ei, t, length, cfg))
    # next state: p_cur + p_traj * P(geometric offset 1 or t = 9, the last step) + p_rand * P(same e and t + 1)
    assert np.mean((ge == ei) & (gt == t + 1)) == pytest.approx(0.2 + 0.5 * (0.9 * 0.01 + 0.1) + 0.3 / 44, abs=0.03)
    assert np.mean(ge != ei) == pytest.approx(0.3 * 3 / 4, abs=0.04)
    r, _ = goal_rewards(smp.pos[ei, t + 1], smp.value_goals(ei, t, length, cfg), cfg.goal_radius)
    assert 0.15 < np.mean(r == 0) < 0.3


def _constant_heads(module, value):
    last = module[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, value)


def test_gciql_losses_known_numbers():
    """Constant heads V = -5 and Q = -3 make every GCIQL loss a closed-form number."""
    torch.manual_seed(0)
    cfg = GCTrainConfig(discount=0.99, expectile=0.9, alpha=3.0, max_weight=100.0)
    model = GCIQL(GCConfig(img_size=16, channels=4, hidden=16))
    for critic in (model.critic, model.target):
        _constant_heads(critic.v, -5.0)
        _constant_heads(critic.q1, -3.0)
        _constant_heads(critic.q2, -3.0)
    pos = np.array([[0.2, 0.2], [0.3, 0.3]])
    obs = torch.from_numpy(render_batch(pos, Layout(), 16))
    act = torch.tensor([[1.0, 0.0], [0.0, 0.5]])
    reward, mask = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.0])
    with torch.no_grad():
        pi = model.actor(obs, obs)
    _, parts = gciql_losses(model, obs, act, obs, obs, reward, mask, obs, cfg)
    assert parts["value"] == pytest.approx(0.9 * 2.0**2, rel=1e-5)  # target Q - V = 2 > 0: weight 0.9
    targets = np.array([-1.0 + 0.99 * -5.0, 0.0])  # r + discount * mask * V(s', g)
    assert parts["critic"] == pytest.approx(2 * np.mean((-3.0 - targets) ** 2), rel=1e-5)
    assert parts["adv_mean"] == pytest.approx(2.0, rel=1e-5)
    # AWR weight exp(3 * 2) = 403 is clipped to 100
    assert parts["actor"] == pytest.approx(100 * (pi - act).pow(2).sum(-1).mean().item(), rel=1e-4)


def test_gcbc_beats_random_on_same_room_goals():
    data = generate(300, 20, "expert", None, seed=0, img_size=16, max_step=0.08, progress=False)
    pi, log = train_gcbc(data, GCConfig(img_size=16, channels=16, hidden=64),
                         GCTrainConfig(steps=400, batch_size=64, lr=1e-3, seed=0), progress=False)
    assert np.mean([x["actor"] for x in log[-50:]]) < 0.75 * np.mean([x["actor"] for x in log[:10]])
    env = TwoRoomsEnv(img_size=16, max_step=0.08, max_episode_steps=30, success_radius=0.1,
                      goal_mode="same_room", min_goal_dist=0.3)
    gcbc = evaluate(env, GCAgent(pi, 0.08), 10, seed=100)
    rand = evaluate(env, "random", 10, seed=100)
    print("gcbc", gcbc, "random", rand)
    assert gcbc["success_rate"] >= rand["success_rate"] + 0.5
    assert gcbc["mean_final_dist"] < 0.5 * rand["mean_final_dist"]


@pytest.mark.parametrize("method", ["gcbc", "gciql", "pldm"])
def test_checkpoint_roundtrip_and_bad_files(tmp_path, method):
    data = generate(20, 10, "noisy", None, seed=0, img_size=16, max_step=0.08, progress=False)
    path = tmp_path / f"{method}.pt"
    model, _ = train_method(method, data, 3, seed=1, out=path, progress=False,
                            model_size={"channels": 4, "hidden": 16, **({"latent_dim": 4} if method == "pldm" else {})})
    ck = torch.load(path, weights_only=True)
    assert ck.get("method", "pldm") == method and ck["meta"]["max_step"] == pytest.approx(0.08)
    assert ck["meta"]["layout"]["wall_orientation"] == "vertical"
    agent, _ = load_agent(path)
    obs = render_batch(np.array([0.2, 0.3]), Layout(), 16)
    goal = render_batch(np.array([0.3, 0.7]), Layout(), 16)
    a = agent.act(obs, goal)
    assert a.shape == (2,) and np.linalg.norm(a) <= 0.08 + 1e-6
    if method != "pldm":
        ref = GCAgent(model if method == "gcbc" else model.actor, 0.08).act(obs, goal)
        np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-7)
    assert_rejects_garbage_and_missing(tmp_path, ValueError, load_agent, garbage="garbage.pt", missing="missing.pt",
                                       load_missing=read_checkpoint)

