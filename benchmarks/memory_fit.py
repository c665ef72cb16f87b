"""Benchmark: the peak memory of one run against the book size and the horizon, and the
fit behind ``simulator.memory_estimate`` (the estimate checked before a run starts).

Usage: python benchmarks/memory_fit.py [--sizes 50000 200000 500000 1000000]
       [--horizons 90 180 360] [--strategies fixed_cadence ...] [--scenario FILE]

Each (size, horizon, strategy) runs once in a fresh process: its resident memory after
the imports and the scenario are loaded (the idle process), then its peak resident
memory over ``run()`` (``ru_maxrss``). The run's own need is the difference. Prints one
line per measurement, then a least-squares fit of

    need = fixed + n x (per_borrower + per_borrower_day x horizon_days)

the largest ratio of a measurement to the fit, and what the stored estimate
(``simulator.memory_estimate``) predicts for each measurement. The stored constants are
this fit, raised to cover the largest measured ratio over every built-in strategy (see
the module's docstring). Not a unit test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _rss_kib() -> int:
    """Resident memory now (Linux /proc; ru_maxrss on other systems)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _measure(scenario: str, size: int, horizon: int, strategy: str,
             queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from simulator.engine import run
    from simulator.memory import release_free_memory
    from simulator.scenario import load_scenario

    sc = load_scenario(scenario, [f"population.size={size}", f"horizon_days={horizon}"])
    release_free_memory()
    idle = _rss_kib()
    res = run(sc, strategy, sc.seed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"size": size, "horizon": horizon, "strategy": strategy, "idle_kib": idle,
               "peak_kib": peak, "need_bytes": (peak - idle) * 1024,
               "events": len(res.events)})


def measure(scenario: str, size: int, horizon: int, strategy: str) -> dict[str, object]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    p = ctx.Process(target=_measure, args=(scenario, size, horizon, strategy, q))
    p.start()
    r: dict[str, object] = q.get()
    p.join()
    return r


def fit(rows: list[dict[str, object]]) -> tuple[float, float, float]:
    """Least squares of need = c + n (a + b horizon): (c, a, b) in bytes, bytes per
    borrower and bytes per borrower-day."""
    n = np.array([float(r["size"]) for r in rows])  # type: ignore[arg-type]
    h = np.array([float(r["horizon"]) for r in rows])  # type: ignore[arg-type]
    y = np.array([float(r["need_bytes"]) for r in rows])  # type: ignore[arg-type]
    design = np.column_stack([np.ones_like(n), n, n * h])
    (c, a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(c), float(a), float(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 500_000,
                                                                  1_000_000])
    parser.add_argument("--horizons", type=int, nargs="+", default=[90, 180, 360])
    parser.add_argument("--strategies", nargs="+", default=["fixed_cadence"])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "examples"
                                                  / "single_cohort.yaml"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from simulator.memory_estimate import run_memory_bytes
    from simulator.scenario import load_scenario

    rows = []
    print(f"{'borrowers':>10} {'horizon':>7} {'strategy':>14} {'events':>10} {'idle MiB':>8} "
          f"{'peak MiB':>8} {'need MiB':>8} {'B/borrower':>10} {'stored est MiB':>14}")
    for strategy in args.strategies:
        for horizon in args.horizons:
            for size in args.sizes:
                r = measure(args.scenario, size, horizon, strategy)
                sc = load_scenario(args.scenario, [f"population.size={size}",
                                                   f"horizon_days={horizon}"])
                r["stored_estimate_bytes"] = run_memory_bytes(sc)
                rows.append(r)
                print(f"{size:>10,} {horizon:>7} {strategy:>14} {r['events']:>10,} "
                      f"{int(r['idle_kib']) / 1024:>8.0f} {int(r['peak_kib']) / 1024:>8.0f} "
                      f"{int(r['need_bytes']) / 2**20:>8.0f} "
                      f"{int(r['need_bytes']) / size:>10.0f} "
                      f"{int(r['stored_estimate_bytes']) / 2**20:>14.0f}", flush=True)
                print(json.dumps(r), flush=True)
    if len({(r["size"], r["horizon"]) for r in rows}) >= 2:
        c, a, b = fit(rows)
        worst = max(float(r["need_bytes"])
                    / (c + float(r["size"]) * (a + b * float(r["horizon"]))) for r in rows)
        print(f"fit: need = {c / 2**20:.1f} MiB + n x ({a:.0f} + {b:.3f} x horizon_days) "
              f"bytes; the largest measurement is {worst:.2f} x the fit")
    under = [r for r in rows if float(r["need_bytes"]) > float(r["stored_estimate_bytes"])]
    print(f"stored estimate: below the measured need in {len(under)} of {len(rows)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
