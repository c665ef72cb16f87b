"""Recovery of known parameters by ``contactsim calibrate`` (issue 16's acceptance test).

A "lender" is simulated with known, non-default values of six parameters of different
kinds (a segment's share, a segment's long-run intensity, a segment's decay rate, the
SMS impulse, a promise-keeping probability, an answer propensity) under the fixed
cadence, on a seed the calibration never uses; its targets are extracted by the same
code as a lender's data; the calibration then starts from the scenario's values and
searches a prior box around them. ``--scenario`` chooses the book: the single cohort
(``scenarios/examples/single_cohort.yaml``, the default) or the living book
(``scenarios/default.yaml``: monthly statements, day-0 arrears, inflow). Printed per
parameter: the truth, the estimate, its error, its bootstrap interval and whether it
passes (within 10 % of the truth, or the truth inside an interval narrower than half the
prior range), then the held-out targets' z on fresh seeds and the time of the point
estimate and of the bootstrap.

    python benchmarks/calibration_recovery.py                 # 20,000 accounts, 300 trials
    python benchmarks/calibration_recovery.py --scenario scenarios/default.yaml --accounts 10000 \
        --budget 150                                          # the living book
    python benchmarks/calibration_recovery.py --accounts 2000 --budget 60 --refits 4
    python benchmarks/calibration_recovery.py --accounts 10000 --lender-accounts 40000

``--lender-accounts`` sizes the lender's book apart from the trials' (by default the
same; a multiple of it: the lender is that many books of the trials' size on their own
seeds): a lender's data usually covers more accounts than a simulated book worth running
300 times, and the standard errors say how much each side's noise weighs.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.engine import run  # noqa: E402
from simulator.experiments.backends import LocalPool  # noqa: E402
from simulator.experiments.calibrate import (  # noqa: E402
    JACOBIAN_REPLICATIONS,
    JACOBIAN_STEP,
    WEIGHTINGS,
    CalibrationPlan,
    Evaluator,
    distance,
    plan_calibration,
    run_calibration,
)
from simulator.experiments.space import ParameterSpace  # noqa: E402
from simulator.experiments.targets import (  # noqa: E402
    Definition,
    billing_cycle,
    extract,
    portfolio_from_run,
)
from simulator.portfolio import Portfolio  # noqa: E402
from simulator.scenario import Scenario, load_scenario, scenario_from_dict  # noqa: E402

#: parameter -> (truth, prior low, prior high, log scale); the defaults lie inside the box.
TRUTH: dict[str, tuple[float, float, float, bool]] = {
    "population.segments.self_curer.share": (0.16, 0.06, 0.24, False),
    "population.segments.cash_flow.lambda_inf": (0.012, 0.004, 0.02, True),
    "population.segments.self_curer.kappa": (0.45, 0.15, 0.7, False),
    "channels.sms.impulse": (0.12, 0.03, 0.25, True),
    "population.segments.cash_flow.promise_keep_prob": (0.75, 0.3, 0.9, False),
    "population.segments.cash_flow.answer_multiplier": (1.4, 0.5, 2.0, False),
}
HELD_OUT = ("roll_m2_m3", "promise_rate")
#: The targets also computed by score band: the bands separate the segments the score is
#: built to detect (cash_flow) from those it is not (self_curer), and the early and late
#: days of the cure curve separate a segment's decay rate from its long-run intensity, and
#: the partial payments (any_payment) the cash-flow segment's long-run intensity.
BAND_TARGETS = ("delinquency_rate", "cure_3", "cure_7", "cure_30", "cure_90",
                "any_payment_30", "promise_kept_rate", "rpc_rate")
OBSERVED_SEED = 424242  # the lender's world: a seed no calibration trial uses
#: Added to the account ids of the lender's k-th book: above any book's ids.
ACCOUNT_ID_STRIDE = 100_000_000


#: The truth as a point of the space.
TRUTH_POINT: dict[str, float] = {path: v[0] for path, v in TRUTH.items()}


def cpu_seconds_since(start: os.times_result) -> float:
    """CPU time (user and system) of this process and its finished workers since
    ``start`` (an ``os.times()``)."""
    now = os.times()
    return (now.children_user + now.children_system + now.user + now.system
            - start.children_user - start.children_system - start.user - start.system)


def distance_at_truth(plan: CalibrationPlan, cells: Path, workers: int) -> float:
    """The distance of ``TRUTH_POINT`` on the fit's seeds (its cells kept in ``cells``):
    against the estimate's, whether the targets cannot tell the two apart (the estimate
    lower) or the search stopped short (higher)."""
    at_truth = Evaluator(plan, cells, LocalPool(workers)).run(  # type: ignore[arg-type]
        [TRUTH_POINT], plan.seeds)[0]
    return distance(plan, at_truth["values"])


def recovery_space() -> ParameterSpace:
    """The prior box of ``TRUTH``'s parameters."""
    return ParameterSpace.from_mapping({"parameters": {
        path: {"low": lo, "high": hi, **({"log": True} if log else {})}
        for path, (_, lo, hi, log) in TRUTH.items()}}, source="recovery space")


def lender_portfolio(truth: Scenario, books: int, seed: int = OBSERVED_SEED) -> Portfolio:
    """The lender's data: ``books`` runs of the trials' book on the seeds from ``seed``
    on, as one portfolio (account ids kept apart). A bigger lender is
    made of books of the trials' size, each served by the scenario's agents, so that its
    accounts meet the same agent capacity per account as a trial's; one book of twice
    the size with the same agents would queue its calls longer."""
    parts = []
    for i in range(books):
        lender = run(truth, truth.strategies[0], seed + i)
        part = portfolio_from_run(lender.accounts, lender.events, truth.horizon_days,
                                  cycle_days=billing_cycle(truth.population.billing))
        offset = i * ACCOUNT_ID_STRIDE
        parts.append([None if t is None else t.assign(account_id=t["account_id"] + offset)
                      for t in (part.accounts, part.statements, part.payments,
                                part.contacts)])
    tables = [None if cols[0] is None else pd.concat(cols, ignore_index=True)
              for cols in zip(*parts, strict=True)]
    return replace(part, accounts=tables[0], statements=tables[1], payments=tables[2],
                   contacts=tables[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path,
                    default=ROOT / "scenarios" / "examples" / "single_cohort.yaml")
    ap.add_argument("--accounts", type=int, default=20_000,
                    help="accounts of every trial's book")
    ap.add_argument("--lender-accounts", type=int, default=None,
                    help="accounts of the lender's book (default: --accounts)")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--refits", type=int, default=100)
    ap.add_argument("--refit-budget", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--score-bands", default="620,680",
                    help="score cut points of the banded targets ('' for none)")
    ap.add_argument("--band-targets", default=",".join(BAND_TARGETS),
                    help="the targets computed by score band too")
    ap.add_argument("--weighting", choices=WEIGHTINGS, default="diagonal")
    ap.add_argument("--jacobian-step", type=float, default=JACOBIAN_STEP)
    ap.add_argument("--jacobian-replications", type=int, default=JACOBIAN_REPLICATIONS)
    ap.add_argument("--out", type=Path, default=None, help="keep the calibration folder")
    args = ap.parse_args()

    base = load_scenario(args.scenario, [f"population.size={args.accounts}"])
    data = base.to_dict()
    data["strategies"] = [{"use": "fixed_cadence"}]
    space = recovery_space()
    truth = scenario_from_dict(space.apply(data, TRUTH_POINT))
    lender_size = args.lender_accounts or args.accounts
    if lender_size % args.accounts:
        sys.exit("--lender-accounts must be a multiple of --accounts")
    started = time.perf_counter()
    definition = Definition(
        score_bands=tuple(float(x) for x in args.score_bands.split(",") if x.strip()),
        band_targets=tuple(x.strip() for x in args.band_targets.split(",") if x.strip()))
    observed = extract(lender_portfolio(truth, lender_size // args.accounts), definition)
    print(f"lender: {args.scenario.name}, {lender_size:,} accounts under fixed_cadence, "
          f"seed {OBSERVED_SEED}{' on' if lender_size > args.accounts else ''}; "
          f"{len(observed.names)} targets ({time.perf_counter() - started:.1f} s); score "
          f"bands {args.score_bands or 'none'}; {args.weighting} weighting")

    plan = plan_calibration(scenario_from_dict(data), str(args.scenario), space,
                            observed, "the simulated lender", budget=args.budget,
                            refits=args.refits, refit_budget=args.refit_budget,
                            held_out=HELD_OUT, base_dir=str(ROOT / "scenarios"),
                            weighting=args.weighting, jacobian_step=args.jacobian_step,
                            jacobian_replications=args.jacobian_replications)
    out = args.out or Path(tempfile.mkdtemp(prefix="calibration-recovery-"))
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    cpu0 = os.times()
    result = run_calibration(plan, out, LocalPool(args.workers))
    cpu = cpu_seconds_since(cpu0)

    print(f"\n{'parameter':50s} {'truth':>8s} {'estimate':>9s} {'error':>7s} "
          f"{'interval':>19s} {'width/prior':>11s}  pass")
    passed = 0
    for r in result.estimates.itertuples():
        t = TRUTH[str(r.param)][0]
        est, lo, hi = float(r.estimate), float(r.low), float(r.high)  # type: ignore[arg-type]
        p = space.by_path(str(r.param))
        width = (p.to_unit(hi) - p.to_unit(lo)) if math.isfinite(lo) else math.nan
        error = abs(est - t) / t
        ok = error <= 0.10 or (lo <= t <= hi and width < 0.5)
        passed += ok
        print(f"{r.param!s:50s} {t:8.4g} {est:9.4g} {100 * error:6.1f}% "
              f"{lo:9.4g}-{hi:<9.4g} {width:11.2f}  {'yes' if ok else 'NO'}")
    print(f"{passed} of {len(TRUTH)} parameters recovered (within 10 %, or the truth inside "
          "an interval narrower than half the prior range)")
    fit = result.fit
    print("\nheld-out targets on fresh seeds (|z| <= 3 expected):")
    for r in fit[fit["held_out"]].itertuples():
        print(f"  {r.target}: observed {float(r.observed):.4f}, simulated "  # type: ignore[arg-type]
              f"{float(r.simulated):.4f}, se {float(r.se):.4f}, z {float(r.z):+.2f}")  # type: ignore[arg-type]
    fitted = fit[~fit["held_out"]]
    print(f"fitted targets: largest |z| {fitted['z'].abs().max():.2f}, "
          f"mean z^2 {float((fitted['z'] ** 2).mean()):.2f}")
    print(f"distance over {len(plan.fitted)} fitted targets: search's best trial "
          f"{result.search_distance:.2f}, polished estimate {result.distance:.2f}, truth "
          f"{distance_at_truth(plan, out / 'cells', args.workers):.2f}")
    print(f"\npoint estimate: {result.trials} trials at {args.accounts:,} accounts, "
          f"{result.seconds_point:.0f} s ({result.seconds_point / 60:.1f} min) on "
          f"{args.workers} workers")
    print(f"bootstrap: {args.refits} refits, {args.refit_budget} chord iteration(s), "
          f"{result.seconds_bootstrap:.0f} s ({result.seconds_bootstrap / 60:.1f} min)")
    print(f"CPU time of the whole calibration (this process and its workers): {cpu:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"folder: {out}")


if __name__ == "__main__":
    main()
