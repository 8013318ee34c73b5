"""brs_bench reports: a partial re-measure (--update) replaces only its own rows."""

from __future__ import annotations

import json

from brs_bench.report import write_reports
from brs_bench.result import Result


def _result(name, value, target=">= 2"):
    return Result(name=name, value=value, unit="x", baseline=1.0, baseline_name="base", target=target)


def test_update_replaces_only_remeasured_rows_and_keeps_order(tmp_path):
    write_reports([_result("a", 1.0), _result("b", 3.0), _result("c", 5.0, "")], tmp_path, 1.0)
    write_reports([_result("b", 1.5), _result("d", 4.0)], tmp_path, 1.0, update=True)
    rows = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert [(r["name"], r["value"]) for r in rows] == [("a", 1.0), ("b", 1.5), ("c", 5.0), ("d", 4.0)]
    assert all(r["commit"] and r["measured"] for r in rows)
    table = (tmp_path / "BENCHMARKS.md").read_text().splitlines()
    row_b = next(line for line in table if line.startswith("| b |"))
    assert "| 1.50x | >= 2 | **no** |" in row_b  # re-measured value, target judged again
    assert "| 5.00x | - | - |" in next(line for line in table if line.startswith("| c |"))  # no target


def test_full_run_replaces_everything(tmp_path):
    write_reports([_result("a", 1.0), _result("b", 3.0)], tmp_path, 1.0)
    write_reports([_result("b", 2.5)], tmp_path, 1.0)
    rows = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert [r["name"] for r in rows] == ["b"] and rows[0]["value"] == 2.5


def test_a_recorded_baseline_judges_nothing(tmp_path):
    recorded = Result(name="r", value=1.0, unit="x", baseline=2.0, baseline_name="reference", target=">= 3",
                      recorded="2026-11-01, 2-core CPU, load ~1")
    write_reports([recorded, _result("s", 1.0)], tmp_path, 1.0)
    table = (tmp_path / "BENCHMARKS.md").read_text().splitlines()
    row_r = next(line for line in table if line.startswith("| r |"))
    assert "*recorded* 2026-11-01, 2-core CPU, load ~1" in row_r and "| 0.50x | >= 3 | - |" in row_r
    row_s = next(line for line in table if line.startswith("| s |"))
    assert "(base; same run)" in row_s and "| **no** |" in row_s


def test_render_rewrites_the_table_from_results_json_alone(tmp_path):
    from brs_bench.report import main

    write_reports([_result("a", 3.0)], tmp_path, 1.0)
    path = tmp_path / "benchmarks" / "results.json"
    rows = json.loads(path.read_text())
    rows[0]["recorded"] = "2026-01-01, another machine"
    path.write_text(json.dumps(rows))
    assert main(["--render", "--out", str(tmp_path)]) == 0
    row = next(line for line in (tmp_path / "BENCHMARKS.md").read_text().splitlines() if line.startswith("| a |"))
    assert "*recorded* 2026-01-01, another machine" in row and "| 3.00x | >= 2 | - |" in row
    assert json.loads(path.read_text()) == rows  # measured nothing, stamped nothing
