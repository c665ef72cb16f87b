"""Benchmark: what it costs to run plug-in code in a supervised child process.

Usage: python benchmarks/supervised_overhead.py [--sizes 10000 100000] [--repeat 3]
       [--horizon 180]

A plug-in strategy that decides exactly as the built-in ``fixed_cadence`` (a subclass of
it, in a file) runs on the default scenario at each size, in this process
(``engine.run``) and in a supervised child (``supervised.run_supervised``: a fork from the
zygote, the job sent over, every strategy call announced to the supervisor, the result
frames sent back), alternating, the best of ``--repeat`` each; the two results are
checked to be identical. Also printed: the start of a zygote (forked from this process,
as on the command line and in a pool worker; and started as a fresh interpreter, as on a
Dask worker), and the zygote's resident memory (RSS, and PSS: its share of the pages it
shares with this process). Not a unit test: the figures depend on the machine and its
load.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from simulator.engine import Results, run  # noqa: E402
from simulator.experiments import supervised  # noqa: E402
from simulator.scenario import StrategySpec, load_scenario  # noqa: E402

PLUGIN = """\
from simulator.strategies.builtin import FixedCadence


class Cadence(FixedCadence):
    name = "cadence"
"""


def _kib(pid: int, field: str, name: str = "status") -> int:
    """A ``kB`` figure of /proc/PID/status (or smaps_rollup), 0 if unavailable."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _same(a: Results, b: Results) -> bool:
    kpis = a.kpis.keys() == b.kpis.keys() and all(
        x == y or (math.isnan(x) and math.isnan(y))
        for x, y in zip(a.kpis.values(), b.kpis.values(), strict=True))
    try:
        for frame in ("events", "daily", "accounts"):
            pd.testing.assert_frame_equal(getattr(a, frame), getattr(b, frame))
    except AssertionError:
        return False
    return kpis


def _zygote_start(fork: bool) -> tuple[float, int]:
    """Seconds from asking for a zygote to its first child, and the zygote's pid."""
    real = supervised._fork_is_safe
    # Decide how the zygote is started (a Dask worker cannot fork it: it runs threads).
    supervised._fork_is_safe = lambda: fork  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        zygote = supervised._Zygote()
        pid, conn = zygote.fork()
        elapsed = time.perf_counter() - start
        zygote.finish(pid)
        conn.close()
        zpid = zygote.pid
        rss, pss = _kib(zpid, "VmRSS"), _kib(zpid, "Pss", "smaps_rollup")
        zygote.close()
    finally:
        supervised._fork_is_safe = real  # type: ignore[assignment]
    how = "forked from this process" if fork else "a fresh interpreter (subprocess)"
    print(f"zygote {how}: first child after {elapsed:.3f} s; zygote RSS {rss / 1024:.0f} MiB, "
          f"PSS {pss / 1024:.0f} MiB")
    return elapsed, zpid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--horizon", type=float, default=180)
    args = parser.parse_args()

    _zygote_start(fork=True)
    _zygote_start(fork=False)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "cadence.py").write_text(PLUGIN, encoding="utf-8")
        spec = StrategySpec(use="cadence.py:Cadence")
        supervised.run_supervised(  # start this process's zygote outside the timings
            load_scenario(ROOT / "scenarios" / "examples" / "single_cohort.yaml",
                          ["population.size=200", "horizon_days=5"]), spec, 1,
            base_dir=folder, frames=False)
        print(f"{'borrowers':>10} {'in process':>11} {'supervised':>11} {'overhead':>9} "
              f"{'KPIs only':>10} {'identical':>9}")
        for size in args.sizes:
            sc = load_scenario(ROOT / "scenarios" / "examples" / "single_cohort.yaml",
                               [f"population.size={size}", f"horizon_days={args.horizon}"])
            here: list[float] = []
            there: list[float] = []
            kpis_only: list[float] = []
            same = True
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                a = run(sc, spec, 1, base_dir=folder)
                t1 = time.perf_counter()
                b = supervised.run_supervised(sc, spec, 1, base_dir=folder)
                t2 = time.perf_counter()
                supervised.run_supervised(sc, spec, 1, base_dir=folder, frames=False)
                t3 = time.perf_counter()
                here.append(t1 - t0)
                there.append(t2 - t1)
                kpis_only.append(t3 - t2)
                same = same and _same(a, b)
            print(f"{size:>10,} {min(here):>10.2f}s {min(there):>10.2f}s "
                  f"{min(there) - min(here):>+8.2f}s {min(kpis_only):>9.2f}s "
                  f"{'yes' if same else 'NO':>9}")
            if not same:
                raise SystemExit("a supervised run gave other results than in process")


if __name__ == "__main__":
    main()
