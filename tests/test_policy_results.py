"""`python -m brs_policy.results`: success table with Wilson intervals and the comparison figure,
from the summary.json / metrics.json files that brs eval, brs collect and brs train write."""

from __future__ import annotations

import json

import numpy as np

from brs_policy import results


def write_summary(path, outcomes, seconds):
    episodes = [{"episode": i, "seed": 1000 + i, "success": ok, "sim_seconds": s}
                for i, (ok, s) in enumerate(zip(outcomes, seconds))]
    path.write_text(json.dumps({"task": "bimanual_box", "episodes": episodes}))
    return path


def test_table_counts_successes_with_wilson_interval_and_seeds(tmp_path, capsys):
    policy = write_summary(tmp_path / "policy.json", [True, False, True, False, False, False, True, False, False, False],
                           [20.0, 60, 30.0, 60, 60, 60, 40.0, 60, 60, 60])
    expert = write_summary(tmp_path / "expert.json", [True] * 10, [25.0] * 10)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"history": [[s, 1.0 / s] for s in range(1, 101)],
                                   "val_history": [[50, 0.05], [100, 0.02]]}))
    png = tmp_path / "r.png"
    assert results.main(["--eval", f"WB-VIMA={policy}", "--eval", f"expert={expert}",
                         "--train", f"WB-VIMA={metrics}", "--plot", str(png)]) == 0
    rows = capsys.readouterr().out.splitlines()
    # 3/10: Wilson 95 % 10.8-60.3 % (textbook); mean sim time of the three successes: 30 s
    assert rows[2] == "| WB-VIMA | 3/10 | 30 % | 11-60 % | 1000-1009 | 30.0 |"
    assert rows[3] == "| expert | 10/10 | 100 % | 72-100 % | 1000-1009 | 25.0 |"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_no_success_and_bad_files_are_clear(tmp_path, capsys):
    none = write_summary(tmp_path / "none.json", [False, False], [60, 60])
    assert results.main(["--eval", f"ablation={none}"]) == 0
    assert "| ablation | 0/2 | 0 % | 0-66 % | 1000-1001 | - |" in capsys.readouterr().out
    more = write_summary(tmp_path / "more.json", [True], [12.0])
    assert results.main(["--eval", f"ablation={none}", "--eval", f"ablation={more}"]) == 0  # one row
    assert capsys.readouterr().out.splitlines()[2:] == ["| ablation | 1/3 | 33 % | 6-79 % | 1000, 1001, 1000 | 12.0 |"]
    (tmp_path / "bad.json").write_text("{not json")
    assert results.main(["--eval", f"x={tmp_path / 'bad.json'}"]) == 2
    assert "bad.json: not a readable JSON file" in capsys.readouterr().err
    assert results.main(["--eval", f"x={none}", "--train", f"x={none}"]) == 2  # a summary is not a metrics file
    assert "no 'history'" in capsys.readouterr().err


def test_open_loop_error_against_recorded_actions(tmp_path, capsys):
    from test_wbvima import points_fn, tiny_train_config, write_episodes

    from brs_common import robot_spec as spec
    from brs_policy.dataset import WindowDataset
    from brs_policy.train import train

    (tmp_path / "eps").mkdir()
    paths = write_episodes(tmp_path / "eps", n_episodes=2, n_frames=30)
    policy = train(tiny_train_config(tmp_path / "eps", tmp_path / "run", steps=20), points_fn=points_fn)["policy"]
    err = results.open_loop_error(policy, paths[1:], stride=3, points_fn=points_fn)
    assert err["windows"] == 10  # frames 0, 3, ..., 27
    # holding still, by hand: base velocity 0 and every position joint at its last measured value,
    # against the 8 recorded actions from each window's last observation
    ds = WindowDataset(paths[1:], 2, 8, points_fn=points_fn, n_points=32)
    b = ds.batch(range(0, 30, 3))
    truth = b["actions"][:, -1]
    hold = np.repeat(b["proprio"][:, -1:], 8, axis=1)
    hold[..., :3] = 0
    np.testing.assert_allclose(err["hold still"]["base"], np.abs(truth[..., :3]).mean(), rtol=1e-6)
    np.testing.assert_allclose(err["hold still"]["torso"], np.abs(hold - truth)[..., spec.group_slice("torso")].mean(),
                               rtol=1e-6)
    assert all(np.isfinite(v) and v >= 0 for v in err["policy"].values())
    # seeded sampling: the same numbers again
    assert results.open_loop_error(policy, paths[1:], stride=3, points_fn=points_fn)["policy"] == err["policy"]
    table = results.open_loop_table({"tiny": err}).splitlines()
    assert table[0] == "| actions vs recorded (MAE) | base | torso | arms | grippers |" and len(table) == 4
    assert results.main(["--eval", f"x={write_summary(tmp_path / 's.json', [True], [1.0])}",
                         "--open-loop", f"tiny={policy}"]) == 2
    assert "--open-loop needs --episodes" in capsys.readouterr().err
