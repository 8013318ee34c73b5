"""`python -m brs_policy.results`: success table with Wilson intervals and the comparison figure,
from the summary.json / metrics.json files that brs eval, brs collect and brs train write."""

from __future__ import annotations

import json

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
