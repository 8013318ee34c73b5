"""`Result`: one benchmark row. Every benchmark module returns a list of them from `run(repeats)`;
brs_bench.report (`make bench`) runs the modules and writes BENCHMARKS.md and
benchmarks/results.json."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float  # the same quantity for the baseline, measured in the same run
    baseline_name: str
    target: str  # e.g. ">= 2"
    higher_is_better: bool = True
    note: str = ""
    machine: str = ""
    # where a baseline could not be measured in this run: when/where/under what load it was; the
    # row then shows the ratio for information and judges no target against it
    recorded: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")
