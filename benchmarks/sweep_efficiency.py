"""Benchmark: cells per second of a sweep on the local pool, and its parallel efficiency.

Usage: python benchmarks/sweep_efficiency.py [--workers 1 2] [--cells 24]
       [--population 20000] [--horizon 180] [--strategy fixed_cadence] [--rounds 3]

Runs the same sweep (``--cells`` replications of one strategy on the single-cohort
scenario, scenarios/examples/single_cohort.yaml, by default at its own size, so every
cell costs about the same) into a fresh folder once per worker count, through the code
path of ``contactsim sweep`` (``run_sweep`` on a ``LocalPool``, pool start-up included).
Prints cells per second at each worker count and the parallel efficiency ``rate(N) / (N
x rate(1))``, then checks that every cell file is byte-identical across worker counts.
Also printed: the workers' CPU seconds per cell (equal at every worker count when the
pool adds no overhead) and the share of the requested cores the pool obtained (below 100
% the machine is shared, and the speed-up understates the pool). Rounds (`--rounds`)
alternate the worker counts and the median efficiency is kept. Not a unit test: the
figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _sweep_file(folder: Path, args: argparse.Namespace) -> Path:
    base = (ROOT / "scenarios" / "examples" / "single_cohort.yaml").resolve()
    path = folder / "bench.yaml"
    path.write_text(
        f"name: sweep_efficiency\n"
        f"base: {base}\n"
        f"set: {{population.size: {args.population}, horizon_days: {args.horizon}}}\n"
        f"strategies: [{{use: {args.strategy}}}]\n"
        f"replications: {args.cells}\n",
        encoding="utf-8")
    return path


def _time_sweep(plan: Any, out: Path, workers: int, n: int) -> float:
    """Run the sweep into ``out`` on ``workers`` processes; print and return cells/s."""
    from simulator.experiments.backends import LocalPool
    from simulator.experiments.sweep import run_sweep

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    report = run_sweep(plan, out, LocalPool(workers))  # joins its workers
    elapsed = time.perf_counter() - start
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (now.ru_utime + now.ru_stime) - (used.ru_utime + used.ru_stime)
    assert report.computed == n and report.failed == 0, report
    # CPU obtained: how much of its cores the pool got; below 100 % the machine is
    # shared and the speed-up understates what the pool can do.
    print(f"  {workers} worker(s): {elapsed:7.1f} s  {n / elapsed:6.3f} cells/s  "
          f"worker CPU {cpu / n:5.2f} s/cell, CPU obtained "
          f"{cpu / (elapsed * workers):4.0%} of {workers} core(s)  "
          f"(load average {os.getloadavg()[0]:.2f})")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cells", type=int, default=24, help="cells (replications)")
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--horizon", type=float, default=180)
    parser.add_argument("--strategy", default="fixed_cadence")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of every worker count, alternated; the median is kept")
    args = parser.parse_args()

    from simulator.experiments.sweep import load_sweep

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        folder = Path(tmp)
        plan = load_sweep(_sweep_file(folder, args))
        n = len(plan.unique_cells())
        print(f"{n} cells: {args.strategy}, {args.population:,} accounts, "
              f"{args.horizon:g} days; {os.cpu_count()} CPUs; "
              f"load average before {os.getloadavg()[0]:.2f}")
        # Rounds alternate the worker counts, so that a slow spell of a shared machine
        # does not fall on one count only.
        rates: dict[int, list[float]] = {w: [] for w in args.workers}
        for k in range(args.rounds):
            print(f" round {k + 1}")
            for workers in args.workers:
                rates[workers].append(
                    _time_sweep(plan, folder / f"out-{workers}-{k}", workers, n))
        if 1 in rates:
            for workers, rate in rates.items():
                if workers > 1:
                    each = [r / (workers * r1) for r, r1 in zip(rate, rates[1], strict=True)]
                    print(f"  parallel efficiency at {workers} workers, by round: "
                          f"{', '.join(f'{e:.0%}' for e in each)}; median "
                          f"{statistics.median(each):.0%}")
        first = folder / f"out-{args.workers[0]}-0"
        for out in sorted(folder.glob("out-*")):
            for cell in sorted((first / "cells").glob("*.json")):
                if cell.read_bytes() != (out / "cells" / cell.name).read_bytes():
                    raise SystemExit(f"cell {cell.name} differs in {out.name}")
        print("  cell files identical at every worker count")


if __name__ == "__main__":
    main()
