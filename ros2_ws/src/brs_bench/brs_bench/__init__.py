"""The stack's benchmarks (`make bench`): one module per subsystem, each with `run(repeats)` ->
list of `brs_bench.result.Result`, measuring its own baseline in the same run; `report` runs the
registered modules and writes BENCHMARKS.md and benchmarks/results.json."""
