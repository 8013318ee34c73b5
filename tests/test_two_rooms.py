"""Two Rooms environment dynamics, walls, rendering and the offline dataset knobs."""

import json

import numpy as np
import pytest

from rl_agents.two_rooms import Layout, TwoRoomsEnv, crosses_door, render_batch, room_of, step_positions
from rl_agents.two_rooms_data import generate, load, main

L = Layout()  # vertical wall at x = 0.5, door y in (0.4, 0.6)


def test_free_motion_and_action_clipping():
    p = step_positions(np.array([[0.2, 0.2]]), np.array([[0.03, 0.04]]), L, 0.1)
    np.testing.assert_allclose(p, [[0.23, 0.24]])
    p = step_positions(np.array([[0.2, 0.2]]), np.array([[3.0, 4.0]]), L, 0.1)  # norm 5 -> 0.1
    np.testing.assert_allclose(p, [[0.26, 0.28]])
    p = step_positions(np.array([[0.2, 0.2]]), np.array([[np.nan, 1.0]]), L, 0.1)
    assert np.all(np.isfinite(p))


def test_move_into_wall_stops_at_it():
    p = step_positions(np.array([[0.47, 0.2]]), np.array([[0.1, 0.0]]), L, 0.1)[0]
    assert p[0] < 0.5 and p[0] == pytest.approx(0.5, abs=1e-3)
    assert p[1] == pytest.approx(0.2)
    # diagonal: stops at the intersection point along the segment
    p = step_positions(np.array([[0.46, 0.2]]), np.array([[0.08, 0.08]]), L, 0.2)[0]
    assert p[0] < 0.5 and p[1] == pytest.approx(0.24, abs=1e-3)
    # from the other side too
    p = step_positions(np.array([[0.53, 0.8]]), np.array([[-0.1, 0.0]]), L, 0.1)[0]
    assert p[0] > 0.5 and p[0] == pytest.approx(0.5, abs=1e-3)


def test_through_the_door_passes():
    p = step_positions(np.array([[0.47, 0.5]]), np.array([[0.1, 0.0]]), L, 0.1)[0]
    np.testing.assert_allclose(p, [0.57, 0.5])
    # horizontal wall layout with an off-centre door
    h = Layout("horizontal", 0.4, 0.2, 0.1)
    p = step_positions(np.array([[0.2, 0.35]]), np.array([[0.0, 0.1]]), h, 0.1)[0]
    np.testing.assert_allclose(p, [0.2, 0.45])
    p = step_positions(np.array([[0.7, 0.35]]), np.array([[0.0, 0.1]]), h, 0.1)[0]
    assert p[1] < 0.4


def test_never_crosses_a_wall_even_with_max_step():
    rng = np.random.default_rng(0)
    for layout in (L, Layout("horizontal", 0.3, 0.7, 0.15)):
        pos = rng.uniform(0, 1, (4000, 2))
        for _ in range(30):
            act = rng.normal(size=pos.shape)
            act *= 0.2 / np.linalg.norm(act, axis=-1, keepdims=True)  # always the max step
            new = step_positions(pos, act, layout, 0.2)
            moved_room = room_of(pos, layout) != room_of(new, layout)
            # any room change must happen through the door: the crossing point lies in the door
            a = layout.axis
            t = (layout.wall_pos - pos[moved_room, a]) / (new[moved_room, a] - pos[moved_room, a])
            along = pos[moved_room, 1 - a] + t * (new[moved_room, 1 - a] - pos[moved_room, 1 - a])
            assert np.all((along > layout.door_lo - 1e-9) & (along < layout.door_hi + 1e-9))
            assert np.all((new >= 0) & (new <= 1))
            assert np.all(np.linalg.norm(new - pos, axis=-1) <= 0.2 + 1e-9)
            pos = new


def test_render_and_env_api():
    img = render_batch(np.array([[0.25, 0.75]]), L, 64)[0]
    assert img.shape == (2, 64, 64) and img.dtype == np.uint8
    r, c = np.unravel_index(img[0].argmax(), img[0].shape)
    assert (r, c) in {(47, 15), (47, 16), (48, 15), (48, 16)}  # row = y, col = x
    assert img[1, 10, 32] == 255 or img[1, 10, 31] == 255  # wall column
    assert img[1, 32, 31] == 0 and img[1, 32, 32] == 0  # door
    env = TwoRoomsEnv(img_size=32, max_step=0.1, max_episode_steps=5, success_radius=0.05)
    obs, info = env.reset(seed=0, options={"start": [0.2, 0.5], "goal": [0.37, 0.5]})
    assert obs.shape == (2, 32, 32) and info["goal_obs"].shape == (2, 32, 32)
    obs, rew, term, trunc, info = env.step(np.array([0.1, 0.0]))
    assert not term and info["pos"] == pytest.approx([0.3, 0.5])
    obs, rew, term, trunc, info = env.step(np.array([0.06, 0.0]))
    assert term and rew == 1.0 and info["success"]
    env.reset(seed=1)
    steps = 0
    trunc = False
    while not trunc:
        *_, trunc, _ = env.step(np.zeros(2))
        steps += 1
    assert steps == 5
    for mode in ("same_room", "other_room"):
        env = TwoRoomsEnv(goal_mode=mode)
        for s in range(10):
            _, info = env.reset(seed=s)
            same = room_of(info["pos"], env.layout) == room_of(info["goal"], env.layout)
            assert same == (mode == "same_room")


def test_gymnasium_env_checker():
    from gymnasium.utils.env_checker import check_env

    check_env(TwoRoomsEnv(img_size=32), skip_render_check=True)


def test_coverage_knob_sets_door_crossing_fraction():
    for quality in ("random", "noisy"):
        for cov in (0.1, 0.7):
            d = generate(200, 30, quality, cov, seed=1, progress=False)
            measured = d["meta"]["stats"]["door_crossing_fraction"]
            assert measured == pytest.approx(cov, abs=0.01)
            assert crosses_door(d["positions"], L).mean() == pytest.approx(measured)


def test_quality_knob_changes_progress_toward_goal():
    prog = {q: generate(200, 30, q, 0.3, seed=2, progress=False)["meta"]["stats"]["mean_progress_to_goal"]
            for q in ("random", "noisy", "expert")}
    assert abs(prog["random"]) < 0.15
    assert prog["expert"] > 0.8
    assert prog["random"] + 0.3 < prog["noisy"] < prog["expert"]


def test_dataset_files_and_cli(tmp_path):
    out = tmp_path / "ds"
    main(["--episodes", "20", "--length", "10", "--quality", "random", "--coverage", "0.5",
          "--seed", "3", "--images", "--img-size", "32", "--out", str(out)])
    meta = json.loads((tmp_path / "ds.json").read_text())
    assert meta["episodes"] == 20 and meta["quality"] == "random" and meta["seed"] == 3
    d = load(out)
    assert d["positions"].shape == (20, 11, 2) and d["actions"].shape == (20, 10, 2)
    assert d["observations"].shape == (20, 11, 2, 32, 32)
    assert np.all(np.linalg.norm(d["actions"], axis=-1) <= meta["max_step"] + 1e-6)
    again = generate(20, 10, "random", 0.5, seed=3, progress=False)
    np.testing.assert_array_equal(again["positions"], d["positions"])
