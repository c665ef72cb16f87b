"""Coverage of the calibration's bootstrap intervals over many lenders.

``calibration_recovery.py`` fits one lender; whether its intervals are honest needs
many. Here each of ``--lenders`` lenders is the recovery benchmark's lender (the same
six known parameters, targets and prior box) on its own seeds, and the calibration's
trials run on their own seeds too (the scenario's seed moves with the lender), so both
the data's noise and the simulation's vary from one lender to the next. Each is fitted
as ``contactsim calibrate`` does; printed per parameter: how many intervals hold the
truth, with a 95 % Clopper-Pearson interval of that coverage (statsmodels), against
the nominal 95 %, and the median error and interval width. Also per parameter, the
estimate's error in units of its refits' standard deviation (both on the unit scale of
the prior box): over honest intervals its mean is near 0 (a mean far from 0 is a bias)
and its standard deviation near 1 (above 1, intervals too narrow); and the median
distance at the search's best trial, the estimate and the truth. ``--csv`` keeps a row
per lender and parameter. Small books and budgets keep it to minutes; coverage is a
property of the whole procedure at that size and budget.

    python benchmarks/calibration_coverage.py                      # 20 lenders, 2,000 accounts
    python benchmarks/calibration_coverage.py --lenders 40 --accounts 4000 --budget 120
    python benchmarks/calibration_coverage.py --jacobian-step 0.15 --jacobian-replications 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from calibration_recovery import (  # noqa: E402
    BAND_TARGETS,
    HELD_OUT,
    OBSERVED_SEED,
    TRUTH,
    TRUTH_POINT,
    cpu_seconds_since,
    distance_at_truth,
    lender_portfolio,
    recovery_space,
)
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

from simulator.experiments import calibrate  # noqa: E402
from simulator.experiments.backends import LocalPool  # noqa: E402
from simulator.experiments.calibrate import plan_calibration, run_calibration  # noqa: E402
from simulator.experiments.targets import Definition, extract  # noqa: E402
from simulator.scenario import load_scenario, scenario_from_dict  # noqa: E402

#: Between two lenders' seeds: apart from any seed a lender's books or trials use.
SEED_STRIDE = 1_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path,
                    default=ROOT / "scenarios" / "examples" / "single_cohort.yaml")
    ap.add_argument("--lenders", type=int, default=20)
    ap.add_argument("--accounts", type=int, default=2_000,
                    help="accounts of the lender's book and of every trial's")
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--refits", type=int, default=40)
    ap.add_argument("--refit-budget", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--jacobian-step", type=float, default=calibrate.JACOBIAN_STEP,
                    help="the central differences' step, a share of each prior range")
    ap.add_argument("--jacobian-replications", type=int,
                    default=calibrate.JACOBIAN_REPLICATIONS,
                    help="sets of seeds the Jacobian is averaged over")
    ap.add_argument("--csv", type=Path, default=None,
                    help="write a row per lender and parameter to this file")
    args = ap.parse_args()

    base = load_scenario(args.scenario, [f"population.size={args.accounts}"])
    space = recovery_space()
    definition = Definition(score_bands=(620.0, 680.0), band_targets=BAND_TARGETS)
    rows: list[dict[str, object]] = []  # a lender's parameter each
    started = time.perf_counter()
    cpu0 = os.times()
    for lender in range(args.lenders):
        data = base.to_dict()
        data["strategies"] = [{"use": "fixed_cadence"}]
        data["seed"] = int(data["seed"]) + SEED_STRIDE * (lender + 1)  # the trials' seeds
        truth = scenario_from_dict(space.apply(data, TRUTH_POINT))
        observed = extract(lender_portfolio(truth, 1, OBSERVED_SEED + SEED_STRIDE * lender),
                           definition)
        plan = plan_calibration(scenario_from_dict(data), str(args.scenario), space,
                                observed, f"lender {lender}", budget=args.budget,
                                refits=args.refits, refit_budget=args.refit_budget,
                                held_out=HELD_OUT, base_dir=str(ROOT / "scenarios"),
                                jacobian_step=args.jacobian_step,
                                jacobian_replications=args.jacobian_replications)
        out = Path(tempfile.mkdtemp(prefix="calibration-coverage-"))
        shutil.rmtree(out)
        try:
            result = run_calibration(plan, out, LocalPool(args.workers))
            truth_distance = distance_at_truth(plan, out / "cells", args.workers)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        row = []
        for r in result.estimates.itertuples():
            path = str(r.param)
            t = TRUTH[path][0]
            est, lo, hi = float(r.estimate), float(r.low), float(r.high)  # type: ignore[arg-type]
            p = space.by_path(path)
            # The error in units of the refits' sd, both on the prior box's unit scale.
            sd = float(np.std([p.to_unit(d[path]) for d in result.draws], ddof=1))
            score = (p.to_unit(est) - p.to_unit(t)) / sd if sd > 0 else float("nan")
            row.append("in" if lo <= t <= hi else "OUT")
            rows.append({"lender": lender, "param": path, "truth": t, "estimate": est,
                         "low": lo, "high": hi, "inside": lo <= t <= hi,
                         "error": abs(est - t) / t, "width_unit": p.to_unit(hi) - p.to_unit(lo),
                         "refit_sd_unit": sd, "error_in_sd": score,
                         "distance_search": result.search_distance,
                         "distance_estimate": result.distance,
                         "distance_truth": truth_distance})
        print(f"lender {lender:3d}: {' '.join(f'{x:>3s}' for x in row)}  "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

    print(f"\n{args.lenders} lenders of {args.accounts:,} accounts, {args.budget} trials, "
          f"{args.refits} refits each, Jacobian step {args.jacobian_step:g} on "
          f"{args.jacobian_replications} set(s) of seeds; nominal "
          "coverage 95 %")
    print(f"{'parameter':50s} {'covered':>8s} {'coverage':>9s} {'95 % interval':>15s} "
          f"{'median error':>13s} {'median width/prior':>19s} {'error/sd: mean':>15s} "
          f"{'sd':>5s}")
    frame = pd.DataFrame(rows)
    for path in TRUTH:
        of = frame[frame["param"] == path]
        k, n = int(of["inside"].sum()), len(of)
        lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
        z = of["error_in_sd"].to_numpy(dtype=float)
        print(f"{path:50s} {k:>4d}/{n:<3d} {100 * k / n:8.0f}% {100 * lo:6.0f}-{100 * hi:.0f} % "
              f"{100 * of['error'].median():12.1f}% {of['width_unit'].median():19.2f} "
              f"{np.nanmean(z):+15.2f} {np.nanstd(z, ddof=1):5.2f}")
    k, n = int(frame["inside"].sum()), len(frame)
    lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
    print(f"{'all parameters':50s} {k:>4d}/{n:<3d} {100 * k / n:8.0f}% {100 * lo:6.0f}-"
          f"{100 * hi:.0f} % (intervals of one lender are not independent)")
    per_lender = frame.groupby("lender").first()
    print(f"median distance over the fitted targets: search's best trial "
          f"{per_lender['distance_search'].median():.1f}, estimate "
          f"{per_lender['distance_estimate'].median():.1f}, truth "
          f"{per_lender['distance_truth'].median():.1f} (on the fit's seeds)")
    if args.csv is not None:
        frame.to_csv(args.csv, index=False)
        print(f"rows: {args.csv}")
    cpu = cpu_seconds_since(cpu0)
    print(f"{time.perf_counter() - started:.0f} s on {args.workers} workers, {cpu:.0f} "
          f"CPU-s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
