"""Benchmark: the full model at several book sizes, against bare SimPy.

Usage: python benchmarks/run_speed.py [--sizes 10000 100000 1000000] [--strategy NAME]
       [--agents-per-20k K] [--repeat N] [--profile] [--scenario FILE]

The scenario is the single-cohort book (scenarios/examples/single_cohort.yaml: one
statement per account, the bundled default until the living book) unless ``--scenario``
names another; ``benchmarks/user_command.py`` times the living book's own command line.

Prints, per size: wall time, microseconds per borrower and per event, events recorded,
peak RSS, bytes per borrower, and, measured in the same process run, a bare SimPy loop
of one timeout per pending event at the same number of pending events, with the ratio.
Each size runs in a fresh child process so peak RSS is that size's own.

Timings on a shared machine wander by tens of percent from minute to minute. The bare
loop is therefore timed three times and its best kept (which can only raise the
ratio), and ``--repeat N`` runs the model N times and keeps its best time too, the
usual convention for timing code (Python's ``timeit`` does the same). ``--profile``
prints where the time of one run goes (cProfile, top functions by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing as mp
import pstats
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_ROUNDS = 3


def _bare_round(pending: int, events: int) -> float:
    """Seconds per event of ``pending`` timeouts, each re-armed until ``events`` fired."""
    import simpy

    env = simpy.Environment()
    fired = 0

    def tick(_: object) -> None:
        nonlocal fired
        fired += 1
        if fired < events:
            env.timeout(1.0).callbacks.append(tick)

    for k in range(min(pending, max(events, 1))):
        env.timeout(k / pending).callbacks.append(tick)
    t0 = time.perf_counter()
    env.run()
    return (time.perf_counter() - t0) / max(fired, 1)


def _bare_simpy_us(pending: int, events: int) -> float:
    """Microseconds per event of the bare loop, the best of ``BARE_ROUNDS``."""
    return min(_bare_round(pending, events) for _ in range(BARE_ROUNDS)) * 1e6


def _measure(size: int, strategy: str, agents_per_20k: int | None, repeat: int,
             profile: bool, scenario: str,
             queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from simulator.engine import run
    from simulator.scenario import load_scenario

    overrides = [f"population.size={size}"]
    if agents_per_20k is not None:  # staff the floor in proportion to the book
        overrides.append(f"agents.count={max(1, round(agents_per_20k * size / 20_000))}")
    sc = load_scenario(ROOT / scenario, overrides)
    walls, events, peak_kib = [], 0, 0
    for k in range(repeat):
        start = time.perf_counter()
        res = run(sc, strategy, 1)
        walls.append(time.perf_counter() - start)
        events = len(res.events)
        del res
        if k == 0:  # a later run starts on the heap the first one left: not its own peak
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, sc, strategy, 1)
        print(f"--- profile of one run at {size:,} borrowers (cProfile slows it) ---")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    queue.put({"size": size, "wall": min(walls), "walls": walls, "events": events,
               "peak_kib": peak_kib, "bare_us_per_event": _bare_simpy_us(size, events)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--strategy", default="fixed_cadence")
    parser.add_argument("--agents-per-20k", type=int, default=None,
                        help="scale agents.count with the book (default: the scenario's 4)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the model this many times per size and keep the best")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of one run per size")
    parser.add_argument("--scenario", default="scenarios/examples/single_cohort.yaml",
                        help="the scenario file, relative to the repository")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(f"{'borrowers':>10} {'wall s':>8} {'us/borrower':>12} {'events':>10} "
          f"{'us/event':>9} {'bare us/ev':>10} {'ratio':>6} {'peak MB':>8} {'B/borrower':>10}")
    ctx = mp.get_context("spawn")
    for size in args.sizes:
        q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        p = ctx.Process(target=_measure, args=(size, args.strategy, args.agents_per_20k,
                                               args.repeat, args.profile, args.scenario, q))
        p.start()
        r = q.get()
        p.join()
        us_event = r["wall"] / max(r["events"], 1) * 1e6
        print(f"{size:>10,} {r['wall']:>8.2f} {r['wall'] / size * 1e6:>12.1f} "
              f"{r['events']:>10,} {us_event:>9.2f} {r['bare_us_per_event']:>10.2f} "
              f"{us_event / r['bare_us_per_event']:>6.1f} {r['peak_kib'] / 1024:>8.0f} "
              f"{r['peak_kib'] * 1024 / size:>10.0f}")
        print(json.dumps(r))


if __name__ == "__main__":
    main()
