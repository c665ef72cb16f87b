"""Benchmark: cells per second of a sweep on the local pool, and its parallel efficiency.

Usage: python benchmarks/sweep_efficiency.py [--workers 1 2] [--cells 24]
       [--population 20000] [--horizon 180] [--strategy fixed_cadence]

Runs the same sweep (``--cells`` replications of one strategy on the default scenario,
by default at its own size, so every cell costs about the same) into a fresh folder
once per worker count, through the code path of ``contactsim sweep`` (``run_sweep`` on
a ``LocalPool``, pool start-up included). Prints cells per second at each worker count
and the parallel efficiency ``rate(N) / (N x rate(1))``, then checks that every cell
file is byte-identical across worker counts. Also printed: the workers' CPU seconds per
cell (equal at every worker count when the pool adds no overhead) and the share of the
requested cores the pool obtained (below 100 % the machine is shared, and the speed-up
understates the pool). Not a unit test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sweep_file(folder: Path, args: argparse.Namespace) -> Path:
    base = (ROOT / "scenarios" / "default.yaml").resolve()
    path = folder / "bench.yaml"
    path.write_text(
        f"name: sweep_efficiency\n"
        f"base: {base}\n"
        f"set: {{population.size: {args.population}, horizon_days: {args.horizon}}}\n"
        f"strategies: [{{use: {args.strategy}}}]\n"
        f"replications: {args.cells}\n",
        encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cells", type=int, default=24, help="cells (replications)")
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--horizon", type=float, default=180)
    parser.add_argument("--strategy", default="fixed_cadence")
    args = parser.parse_args()

    from simulator.sweep import LocalPool, load_sweep, run_sweep

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        folder = Path(tmp)
        plan = load_sweep(_sweep_file(folder, args))
        n = len(plan.unique_cells())
        print(f"{n} cells: {args.strategy}, {args.population:,} accounts, "
              f"{args.horizon:g} days; {os.cpu_count()} CPUs; "
              f"load average before {os.getloadavg()[0]:.2f}")
        rates: dict[int, float] = {}
        outputs: dict[int, Path] = {}
        for workers in args.workers:
            out = folder / f"out-{workers}"
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            report = run_sweep(plan, out, LocalPool(workers))  # joins its workers
            elapsed = time.perf_counter() - start
            now = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (now.ru_utime + now.ru_stime) - (used.ru_utime + used.ru_stime)
            assert report.computed == n and report.failed == 0, report
            rates[workers] = n / elapsed
            outputs[workers] = out
            # CPU obtained: how much of its cores the pool got; below 100 % the machine
            # is shared and the speed-up understates what the pool can do.
            print(f"  {workers} worker(s): {elapsed:7.1f} s  {rates[workers]:6.3f} cells/s  "
                  f"worker CPU {cpu / n:5.2f} s/cell, CPU obtained "
                  f"{cpu / (elapsed * workers):4.0%} of {workers} core(s)  "
                  f"(load average {os.getloadavg()[0]:.2f})")
        if 1 in rates:
            for workers, rate in rates.items():
                if workers > 1:
                    print(f"  speed-up at {workers} workers: {rate / rates[1]:.2f}x, parallel "
                          f"efficiency {rate / (workers * rates[1]):.0%}")
        first = outputs[args.workers[0]]
        for workers, out in outputs.items():
            for cell in sorted((first / "cells").glob("*.json")):
                if cell.read_bytes() != (out / "cells" / cell.name).read_bytes():
                    raise SystemExit(f"cell {cell.name} differs at {workers} workers")
        print("  cell files identical at every worker count")


if __name__ == "__main__":
    main()
