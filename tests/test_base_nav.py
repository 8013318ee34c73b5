"""Base planner pieces without ROS: apartment geometry from the scene, reward-free base data on
the real MuJoCo model, the vector-encoder PLDM (non-collapsed, predicts the direction of motion),
checkpoint errors and one in-process planning step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from checkpoint_errors import assert_rejects_garbage_and_missing
from rl_agents.base_nav.apartment import Apartment
from rl_agents.base_nav.data import DataConfig, generate, load, save

CHECKPOINT = Path(__file__).resolve().parents[1] / "ros2_ws/src/rl_agents/checkpoints/pldm_base.pt"


@pytest.fixture(scope="module")
def apt():
    return Apartment.from_model()


@pytest.fixture(scope="module")
def small_data():
    torch.set_num_threads(1)
    return generate(DataConfig(episodes=16, length=40, seed=3, near_door=0.5), progress=False)


def test_apartment_geometry_comes_from_the_scene(apt):
    assert apt.door_y == pytest.approx(2.0) and apt.door_x == pytest.approx((-0.5, 0.5))
    assert apt.free([[0.0, 0.0], [0.0, 2.0], [-0.5, 4.5]]).all()  # origin, doorway centre, room B
    assert not apt.free([[1.15, 0.0], [1.0, 2.0], [0.6, -1.7]]).any()  # table, wall, shelf
    assert list(apt.room([[0, 1.9], [0, 2.1]])) == [0, 1]
    rng = np.random.default_rng(0)
    poses = apt.sample_free(rng, 50, room=1)
    assert (apt.room(poses[:, :2]) == 1).all() and apt.free(poses[:, :2]).all()


def test_random_base_data_moves_as_commanded_and_never_tunnels(apt, small_data, tmp_path):
    poses, actions, meta = small_data["poses"], small_data["actions"], small_data["meta"]
    assert poses.shape == (16, 41, 3) and actions.shape == (16, 40, 3)
    assert np.isfinite(poses).all() and (np.linalg.norm(actions, axis=-1) <= 1 + 1e-6).all()
    # the base goes where the (world-frame) command says, except when something blocks it
    disp = np.diff(poses[:, :, :2], axis=1).reshape(-1, 2)
    cmd = actions[:, :, :2].reshape(-1, 2)
    moving = np.linalg.norm(cmd, axis=-1) > 0.3
    cos = np.sum(disp[moving] * cmd[moving], -1) / (np.linalg.norm(disp[moving], axis=-1) * np.linalg.norm(cmd[moving], axis=-1) + 1e-9)
    assert np.median(cos) > 0.8
    # the dividing wall is only ever crossed through the doorway
    for path in poses:
        r = apt.room(path[:, :2])
        for k in np.flatnonzero(np.diff(r)):
            xm = (path[k, 0] + path[k + 1, 0]) / 2
            assert apt.door_x[0] < xm < apt.door_x[1]
    assert 0.0 <= meta["door_crossing_fraction"] <= 1.0 and meta["transitions"] == 640
    save(small_data, tmp_path / "d")
    back = load(tmp_path / "d")
    np.testing.assert_array_equal(back["actions"], actions)
    assert back["meta"]["seed"] == 3


def test_vector_pldm_trained_briefly_is_not_collapsed_and_predicts_direction(small_data):
    from rl_agents.base_nav.train import PoseFeatures, train
    from rl_agents.pldm import TrainConfig

    model, feats, log = train(small_data, cfg=TrainConfig(steps=250, batch_size=64, seq_len=8), progress=False)
    assert model.cfg.encoder == "mlp" and model.cfg.state_dim == 2 and model.cfg.action_dim == 2
    assert log[-1]["pred"] < log[0]["pred"]
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(feats(small_data["poses"].reshape(-1, 3))))
        assert z.std(0).mean() > 0.3  # VICReg keeps the embedding spread (collapse -> ~0)
        # from a pose, the predictor moved by +x should land nearer the +x pose than the -x one
        hits = 0
        poses = [np.array([x, y, 0.0]) for x, y in ((-0.8, -0.8), (0.0, 0.0), (-0.6, 4.5), (1.5, 4.8))]
        for p in poses:
            for d in ([1, 0], [0, 1], [-1, 0], [0, -1]):
                a = torch.tensor([[d[0], d[1]]], dtype=torch.float32)  # world-frame (vx, vy)
                zp = model.encoder(torch.from_numpy(feats(p))[None])
                for _ in range(5):  # 1 s at full speed: 0.5 m
                    zp = model.predictor(zp, a)
                off = np.array([d[0], d[1], 0.0]) * 0.5
                near = model.encoder(torch.from_numpy(feats(p + off))[None])
                far = model.encoder(torch.from_numpy(feats(p - off))[None])
                hits += float((zp - near).norm()) < float((zp - far).norm())
        assert hits >= 14  # of 16


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    from rl_agents.base_nav.train import CheckpointError, load as load_ckpt

    assert_rejects_garbage_and_missing(tmp_path, CheckpointError, load_ckpt,
                                       garbage="not a readable torch checkpoint", missing="no such file")
    other = tmp_path / "other.pt"
    torch.save({"model": {}, "config": {}}, other)
    with pytest.raises(CheckpointError, match="not a base-planner PLDM checkpoint"):
        load_ckpt(other)


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="no committed base-planner checkpoint")
def test_committed_checkpoint_plans_toward_a_goal_in_the_same_room():
    from rl_agents.base_nav.agent import BasePlanner

    torch.set_num_threads(1)
    planner = BasePlanner.from_checkpoint(CHECKPOINT)
    planner.set_goal((-0.8, -1.0, 0.0))  # room A, south-west of the origin
    v = planner.act(np.zeros(3))
    assert v[0] < 0 and v[1] < 0  # heads there
    assert np.hypot(v[0], v[1]) <= planner.motion["v_max"] + 1e-6


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="no committed base-planner checkpoint")
def test_the_planner_seed_sets_the_mppi_noise():
    from rl_agents.base_nav.agent import BasePlanner

    torch.set_num_threads(1)

    def first_plan(seed):
        planner = BasePlanner.from_checkpoint(CHECKPOINT, seed=seed, samples=32, iterations=1)
        planner.set_goal((-0.8, -1.0, 0.0))
        return planner.plan(np.zeros(3))

    a, b = first_plan(0), first_plan(0)
    np.testing.assert_array_equal(a, b)  # reproducible
    assert not np.array_equal(a, first_plan(1)), "seed 1 planned exactly what seed 0 did"


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="no committed base-planner checkpoint")
def test_in_process_evaluation_reports_each_goal(capsys):
    from rl_agents.base_nav.evaluate import evaluate_in_process

    torch.set_num_threads(1)
    summary = evaluate_in_process(str(CHECKPOINT), goals=1, seed=0, time_limit=2.0, samples=32, iterations=1)
    assert summary["goals"] == 1 and summary["mode"] == "in_process"
    (outcome,) = summary["outcomes"]
    assert 0.0 < outcome["sim_seconds"] <= 2.1 and outcome["final_distance"] > 0.0
    assert 0.0 <= outcome["final_yaw_error"] <= np.pi
    assert '"goal":' in capsys.readouterr().out  # one JSON line per goal as it ends
