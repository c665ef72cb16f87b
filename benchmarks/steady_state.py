"""Benchmark: is the default scenario's living book in a steady state after its warm-up?

Usage: python benchmarks/steady_state.py [--size 200000] [--strategy fixed_cadence]
       [--seeds 1] [--tolerance 0.10] [--scenario scenarios/default.yaml]

Runs the scenario at ``--size`` accounts (new accounts open in proportion) and compares,
day by day after the warm-up, the last 45 days of the horizon with the 45 days before:
the mean number of accounts in each bucket M1-M4 (``daily.parquet``) and the mean daily
agent utilisation (``agents_daily.parquet``). Prints both means, their relative
difference and whether it lies within ``--tolerance`` (issue 15: within 10 % at 20,000
accounts or more).

With several ``--seeds`` (replications) it also separates drift from noise, per series:
the mean difference over the replications and its 95 % interval (a drift when the
interval excludes 0), and the noise band of one replication, where a further
replication's difference falls with 95 % chance (the mean +- t x the standard deviation
of the difference between replications x sqrt(1 + 1/seeds); the replications outside it
are counted). A 45-day mean of a bucket holding N accounts moves by about 1/sqrt(N) between
windows (accounts stay in a bucket up to 30 days, so a window holds few independent
draws), so the last column estimates the accounts at which one replication's band fits
inside the tolerance. Exit code 1 when a difference is outside the tolerance: with one
seed its difference, with several the mean difference over them (the expected
difference, which is what a drift moves; one replication's spread around it is noise).
Not a unit test: ``tests/test_default_scenario.py`` holds a reduced one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

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
    rows, levels = [], []
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
        levels.append(table["earlier"].rename(rep))
    if args.seeds > 1:
        worst = drift_or_noise(pd.concat(rows, axis=1), pd.concat(levels, axis=1),
                               args.tolerance)
        print(f"\nlargest mean difference {worst:.1%} (tolerance {args.tolerance:.0%})")
    else:
        print(f"\nlargest difference {worst:.1%} (tolerance {args.tolerance:.0%})")
    return 0 if worst <= args.tolerance else 1


def drift_or_noise(differences: pd.DataFrame, levels: pd.DataFrame, tolerance: float
                   ) -> float:
    """Per series (rows; one column per replication): the mean difference and its 95 %
    interval, one replication's noise band, the replications outside it, and the size at
    which the band fits the tolerance. Returns the largest absolute mean difference."""
    n = differences.shape[1]
    q = float(stats.t.ppf(0.975, n - 1))
    print(f"\nover {n} replications: mean difference, its 95 % interval (drift when it "
          f"excludes 0), one replication's noise band (mean +- {q:.2f} sd "
          f"x sqrt(1 + 1/{n})), replications "
          f"outside it, and the accounts per series at which the band is within "
          f"+-{tolerance:.0%}")
    print(f"{'series':<12} {'accounts':>9} {'mean':>8} {'95% interval':>18} {'drift':>6} "
          f"{'noise band':>18} {'outside':>8} {'needs':>7}")
    worst = 0.0
    for name, values in differences.iterrows():
        v = values.to_numpy(dtype=float)
        mean, sd = float(v.mean()), float(v.std(ddof=1))
        half = q * sd / np.sqrt(n)
        band = q * sd * np.sqrt(1 + 1 / n)  # where a further replication falls, 95 %
        drift = abs(mean) > half
        outside = int((np.abs(v - mean) > band).sum())
        level = float(levels.loc[name].mean())
        # One replication's 95 % band is about +-1.96 sd, and sd scales as 1/sqrt(accounts
        # in the series): utilisation is a share, not a count, so no size is given for it.
        needs = (f"{level * (1.96 * sd / tolerance) ** 2:>7.0f}" if name in BUCKETS else
                 f"{'':>7}")
        print(f"{name:<12} {level:>9.4g} {mean:>+8.1%} [{mean - half:>+7.1%}, "
              f"{mean + half:>+7.1%}] {'yes' if drift else 'no':>6} [{mean - band:>+7.1%}, "
              f"{mean + band:>+7.1%}] {outside:>8} {needs}")
        worst = max(worst, abs(mean))
    return worst


if __name__ == "__main__":
    sys.exit(main())
