"""brs.bench reports: a partial re-measure (--update) replaces only its own rows."""

from __future__ import annotations

import json

from brs.bench import Result, write_reports


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
