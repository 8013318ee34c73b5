"""`make bench`: run every registered benchmark, write BENCHMARKS.md and benchmarks/results.json.

Each benchmark module exposes `run(repeats: int) -> list[Result]` (brs_bench.result) and
measures its own baseline in the same run, so ratios stay meaningful on noisy shared machines
(absolute numbers are not).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

from .result import Result

# Benchmark modules are registered under the entry point group "brs.benchmarks" (name = module
# path, value = its `run`): brs_bench registers its own, and any installed package may add more.
# A module's TITLE is its heading here.
BENCHMARKS_GROUP = "brs.benchmarks"


def benchmark_modules() -> list[str]:
    """The registered benchmark modules, in name order (not imported yet)."""
    from importlib.metadata import entry_points

    return sorted(entry.name for entry in entry_points(group=BENCHMARKS_GROUP))


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _met(row: dict) -> bool | None:
    if not row["target"] or row.get("recorded"):
        return None
    op, bound = row["target"].split()
    return row["value"] >= float(bound) if op == ">=" else row["value"] <= float(bound)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """`old` with every metric that `new` re-measured replaced in place; new metrics at the end."""
    fresh = {row["name"]: row for row in new}
    merged = [fresh.pop(row["name"], row) for row in old]
    return merged + list(fresh.values())


def write_reports(results: list[Result], out_dir: Path, seconds: float, update: bool = False) -> None:
    """Write results.json and BENCHMARKS.md; `update`: replace only these metrics in the existing ones."""
    machine, commit, when = machine_description(), _commit(), time.strftime("%Y-%m-%d %H:%M")
    rows = []
    for r in results:
        r.machine = machine
        rows.append({**asdict(r), "ratio": r.ratio, "commit": commit, "measured": when})
    json_path = out_dir / "benchmarks" / "results.json"
    if update and json_path.exists():
        rows = merge_rows(json.loads(json_path.read_text()), rows)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(rows, indent=2) + "\n")
    write_markdown(rows, out_dir, machine, f"this run {seconds:.0f} s")


def write_markdown(rows: list[dict], out_dir: Path, machine: str, run: str) -> None:
    """BENCHMARKS.md from results.json's rows (`python -m brs_bench --render` rewrites it alone)."""
    runs = sorted({(row.get("measured", "?"), row.get("commit", "?")) for row in rows})
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m brs_bench --only MODULE --update` re-measures some rows). "
        f"Machine: {machine}. Rows measured "
        + "; ".join(f"{w} at commit `{c}`" for w, c in runs) + f" (column `when`); {run}.",
        "Values are medians over repeats. A ratio judges its target only against a baseline measured in "
        "the same run; a baseline marked *recorded* (another day, machine or load) is shown for "
        "information and judges nothing.",
        "",
        "| metric | value | baseline | ratio | target | met | when | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[_met(row)]
        source = f"*recorded* {row['recorded']}" if row.get("recorded") else "same run"
        lines.append(
            f"| {row['name']} | {row['value']:.3g} {row['unit']} | {row['baseline']:.3g} {row['unit']} "
            f"({row['baseline_name']}; {source}) | {row['ratio']:.2f}x | {row['target'] or '-'} | {met} | "
            f"{row.get('measured', '?')} | {row['note']} |"
        )
    (out_dir / "BENCHMARKS.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brs_bench", description=__doc__.splitlines()[0])
    modules = benchmark_modules()
    parser.add_argument("--only", nargs="*", choices=modules, help="modules to run")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement (median)")
    parser.add_argument("--out", type=Path, default=Path.cwd(), help="folder for BENCHMARKS.md")
    parser.add_argument("--update", action="store_true",
                        help="keep the other metrics of OUT's results.json; replace only the re-measured ones")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: rewrite OUT/BENCHMARKS.md from OUT/benchmarks/results.json")
    args = parser.parse_args(argv)
    if args.render:
        rows = json.loads((args.out / "benchmarks" / "results.json").read_text())
        write_markdown(rows, args.out, machine_description(), "rendered from results.json")
        print(f"wrote {args.out / 'BENCHMARKS.md'}")
        return 0
    t0 = time.monotonic()
    results: list[Result] = []
    for module in args.only or modules:
        bench = importlib.import_module(module)
        print(f"== {module}: {getattr(bench, 'TITLE', module)}", flush=True)
        for r in bench.run(args.repeats):
            print(f"   {r.name}: {r.value:.3g} {r.unit} (baseline {r.baseline:.3g}, {r.ratio:.2f}x, "
                  f"target {r.target or '-'})", flush=True)
            results.append(r)
    write_reports(results, args.out, time.monotonic() - t0, update=args.update)
    print(f"wrote {args.out / 'BENCHMARKS.md'} and {args.out / 'benchmarks' / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
