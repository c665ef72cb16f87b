"""Benchmark: coverage and width of the interval of a bounded KPI's mean, at few replications.

Usage: python benchmarks/interval_coverage.py [--repetitions 100000] [--seed 1]

A KPI of one replication is a share of a book (a churn rate, a cure rate) or a count; the
interval of its mean over the replications must stay inside what the KPI can take. Two
ways to get there are compared on replication values drawn as a simulation would give
them (binomial shares of a book of N accounts, Poisson counts):

* truncated: the Student t-interval cut to the KPI's range, what contactsim uses
  (``simulator.experiments.compare.kpi_interval``);
* transformed: the t-interval on the logit scale (shares) or log scale (counts) around
  the mean, by the delta method, transformed back (as Stata's ``proportion`` does).

For each case and number of replications the script prints the share of repetitions
whose interval holds the true mean (coverage, 0.95 is nominal) and the median width.
Truncation never removes a value the KPI can take, so its coverage is the t-interval's;
the question is the width. Not a unit test (``tests/test_intervals.py`` checks the
interval's definition and the outputs at 2 replications).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from simulator.kpis import NON_NEGATIVE, SHARE, KpiRange

Array = NDArray[np.float64]


def truncated(x: Array, bounds: KpiRange) -> tuple[Array, Array]:
    """The t-interval of each row's mean, cut to ``bounds`` (vectorised kpi_interval)."""
    n = x.shape[1]
    mean = x.mean(axis=1)
    half = stats.t.ppf(0.975, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
    return np.maximum(mean - half, bounds.low), np.minimum(mean + half, bounds.high)


def transformed(x: Array, bounds: KpiRange) -> tuple[Array, Array]:
    """The t-interval on the logit (shares) or log (counts) scale, transformed back."""
    n = x.shape[1]
    mean = x.mean(axis=1)
    sd = x.std(axis=1, ddof=1)
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        if bounds == SHARE:
            centre = np.log(mean / (1 - mean))
            q = half / (mean * (1 - mean))
            low, high = 1 / (1 + np.exp(-(centre - q))), 1 / (1 + np.exp(-(centre + q)))
        else:
            q = half / mean
            low, high = mean * np.exp(-q), mean * np.exp(q)
    # All replications equal (0 included): a zero-width interval at that value.
    return np.where(sd == 0, mean, low), np.where(sd == 0, mean, high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    reps = args.repetitions

    cases: list[tuple[str, float, KpiRange, Callable[[int], Array]]] = [
        ("churn rate 0.2 %, 3,000 accounts", 0.002, SHARE,
         lambda n: rng.binomial(3000, 0.002, (reps, n)) / 3000),
        ("cure rate 95 %, 800 delinquent", 0.95, SHARE,
         lambda n: rng.binomial(800, 0.95, (reps, n)) / 800),
        ("share 30 %, 3,000 accounts", 0.30, SHARE,
         lambda n: rng.binomial(3000, 0.30, (reps, n)) / 3000),
        ("complaints, Poisson mean 1.5", 1.5, NON_NEGATIVE,
         lambda n: rng.poisson(1.5, (reps, n)).astype(float)),
    ]
    print(f"{'case':34s} {'n':>3s}  {'truncated t':>22s}  {'logit/log scale':>22s}")
    print(f"{'':34s} {'':>3s}  {'coverage':>10s} {'width':>11s}  {'coverage':>10s} {'width':>11s}")
    for name, truth, bounds, draw in cases:
        for n in (2, 3, 5, 10):
            x = draw(n)
            row = f"{name:34s} {n:3d}"
            for method in (truncated, transformed):
                low, high = method(x, bounds)
                cover = float(np.mean((low <= truth) & (truth <= high)))
                width = float(np.median(high - low))
                row += f"  {cover:10.3f} {width:11.4g}"
            print(row)


if __name__ == "__main__":
    main()
