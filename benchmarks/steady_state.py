"""Benchmark: is the default scenario's living book in a steady state after its warm-up?

Usage: python benchmarks/steady_state.py [--size 200000] [--strategy fixed_cadence]
       [--seeds 1] [--tolerance 0.10] [--scenario scenarios/default.yaml]

Runs the scenario at ``--size`` accounts (new accounts open in proportion) and compares,
day by day after the warm-up, the last 45 days of the horizon with the 45 days before:
the mean number of accounts in each bucket M1-M4 (``daily.parquet``) and the mean daily
agent utilisation (``agents_daily.parquet``). Prints both means, their relative
difference and whether it lies within ``--tolerance`` (issue 15: within 10 % at 20,000
accounts or more). With several ``--seeds`` each seed is a row and the spread of the
differences shows how much of them is noise. Exit code 1 when a difference is outside
the tolerance. Not a unit test: ``tests/test_default_scenario.py`` holds a reduced one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.engine import Results, run  # noqa: E402
from simulator.rng import replication_seed  # noqa: E402
from simulator.scenario import Scenario, load_scenario  # noqa: E402

BUCKETS = ("M1", "M2", "M3", "M4")
WINDOW = 45


def daily_series(r: Results) -> pd.DataFrame:
    """Accounts per bucket and agent utilisation, one row per day."""
    counts = r.daily.pivot(index="day", columns="state", values="accounts")[list(BUCKETS)]
    utilisation = r.agents_daily.set_index("day")["utilisation"].rename("utilisation")
    return counts.join(utilisation)


def compare(r: Results, scenario: Scenario) -> pd.DataFrame:
    """Means over the last ``WINDOW`` days and the ``WINDOW`` before, and their relative
    difference (later / earlier - 1), per series."""
    horizon = int(scenario.horizon_days)
    if horizon - 2 * WINDOW < scenario.metrics.warmup_days:
        raise SystemExit(f"the two {WINDOW}-day windows must lie after the warm-up "
                         f"({scenario.metrics.warmup_days:g} days of {horizon})")
    series = daily_series(r)
    earlier = series.loc[horizon - 2 * WINDOW: horizon - WINDOW - 1].mean()
    later = series.loc[horizon - WINDOW: horizon - 1].mean()
    return pd.DataFrame({"earlier": earlier, "later": later,
                         "difference": later / earlier - 1.0})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--strategy", default="fixed_cadence")
    parser.add_argument("--seeds", type=int, default=1, help="replications, each its row")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--scenario", default="scenarios/default.yaml")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE overrides")
    args = parser.parse_args()
    sc = load_scenario(ROOT / args.scenario, [f"population.size={args.size}", *args.set])
    print(f"{args.scenario} at {args.size:,} accounts, {args.strategy}: the last {WINDOW} "
          f"days of {sc.horizon_days:g} against the {WINDOW} before (warm-up "
          f"{sc.metrics.warmup_days:g} days)")
    worst = 0.0
    rows = []
    for rep in range(args.seeds):
        start = time.perf_counter()
        r = run(sc, args.strategy, replication_seed(sc.seed, rep), rep)
        table = compare(r, sc)
        took = time.perf_counter() - start
        open_accounts = r.daily[r.daily["state"].isin(["M0", *BUCKETS])].groupby("day")[
            "accounts"].sum()
        print(f"\nreplication {rep} ({took:.0f} s; open accounts day 0 "
              f"{open_accounts.iloc[0]:,}, last day {open_accounts.iloc[-1]:,})")
        print(f"{'series':<12} {'earlier':>10} {'later':>10} {'difference':>11}  within")
        for name, row in table.iterrows():
            ok = abs(row["difference"]) <= args.tolerance
            print(f"{name:<12} {row['earlier']:>10.4g} {row['later']:>10.4g} "
                  f"{row['difference']:>+10.1%}  {'yes' if ok else 'NO'}")
            worst = max(worst, abs(float(row["difference"])))
        rows.append(table["difference"].rename(rep))
    if args.seeds > 1:
        spread = pd.concat(rows, axis=1)
        print("\ndifferences over the replications: mean and standard deviation")
        for name, values in spread.iterrows():
            print(f"{name:<12} {np.mean(values):>+8.1%} {np.std(values, ddof=1):>8.1%}")
    print(f"\nlargest difference {worst:.1%} (tolerance {args.tolerance:.0%})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
