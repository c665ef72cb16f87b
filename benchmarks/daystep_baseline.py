"""Benchmark: the engine against a plain numpy day-step model of the same book.

Usage: python benchmarks/daystep_baseline.py [--sizes 10000 100000 1000000] [--repeat N]
       [--scenario FILE]

The yardstick for the engine's speed is a deliberately plain, vectorised numpy model of
the same book stepped one day at a time, with no contacts (a no-contact arm). Its book
is the engine's own: drawn by ``simulator.population.generate_book`` from
``simulator.rng.Streams`` on the same seed, as ``simulator/engine.py`` draws it, so the
sizes, segments, amounts and due days are those the engine runs. Each day, for every
account whose statement is out and which still owes (the arrays stay full-length: no
compaction of the accounts that are done), it applies docs/model.md section 3 in
daily steps:

* the boundaries falling at the start of the day: the due date passing unpaid (the
  account becomes delinquent, the late fee is added, the excess jumps by
  ``due_impulse``), the bureau report (``bureau_impulse``) and charge-off at
  ``repayment.charge_off_dpd`` (the whole balance is written off; with an agency the
  process goes on under its multiplier), and the paydays falling in the day
  (``payday_impulse``);
* the intensity ``m (lambda_inf + x)`` of the segment's long-run level and the excess
  ``x`` decaying at ``kappa``, ``m`` the bucket's (or the agency's) multiplier,
  integrated over the day; a payment that day with probability ``1 - exp(-integral)``,
  in full with the segment's ``full_payment_prob`` or else of a fraction drawn uniformly
  in its ``partial_fraction``, and the payment's jump ``delta10 + delta11 * r`` (from
  the next day on: at most one payment a day).

At most one payment a day, and boundaries and jumps moved to the start of their day:
a day step approximates the engine's exact event times (section 4.1), so its figures are
not the engine's, only close to them. The script prints the day-step model's share of
accounts paid in full (paid on time or cured) and charged off beside the engine's
``no_contact`` ones so that a reader sees they are the same book. Its draws come from a
``Generator`` of its own (``Streams.generator("daystep")``), not the engine's
per-borrower streams.

It prints, per size, the best of ``--repeat`` wall times of each, all measured in this
one process after a warm-up at a small size: the day-step model (drawing its book
included, as ``run()`` includes the engine's), the engine's ``simulator.engine.run`` for
``no_contact`` and for ``fixed_cadence`` (every channel, agents, the rule pack, event
recording, the no-contact twin, the result frames and KPIs, as
``benchmarks/run_speed.py`` times it), and the ratio engine / day-step of each. Then
one JSON line per size. Peak memory is not measured here (see run_speed.py and
memory_fit.py).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from simulator.book import (
    CHARGED_OFF,
    CURED,
    DELINQUENT,
    PAID_ON_TIME,
    PRE_DUE,
    bucket_of_dpd,
)
from simulator.engine import run
from simulator.population import generate_book
from simulator.repayment import CENT
from simulator.rng import Streams
from simulator.scenario import BUCKET_NAMES, Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
SEED = 1
WARMUP_SIZE = 2_000
T = TypeVar("T")


def daystep(scenario: Scenario, seed: int) -> np.ndarray:
    """Run the day-step model on the scenario's single-cohort book; each account's final
    status (``simulator.book`` codes)."""
    streams = Streams(seed)
    book = generate_book(scenario, streams)
    rng = streams.generator("daystep")
    seg, code, obs = book.segments, book.latent.segment, book.observable
    rp, n = scenario.repayment, book.n

    # Per-account parameters, gathered once from the segment table.
    lam_inf = seg.lambda_inf[code]
    kappa = seg.kappa[code]
    decay = np.exp(-kappa)  # the excess after one day
    # The excess's integral over one day, per unit excess at the start of the day.
    with np.errstate(divide="ignore", invalid="ignore"):
        day_weight = np.where(kappa > 0, (1.0 - decay) / kappa, 1.0)
    full_prob = seg.full_payment_prob[code]
    lo, span = seg.partial_low[code], seg.partial_high[code] - seg.partial_low[code]
    delta10, delta11 = seg.delta10[code], seg.delta11[code]
    due_jump, bureau_jump = seg.due_impulse[code], seg.bureau_impulse[code]
    payday_jump = seg.payday_impulse[code]
    bucket_mult = np.array([rp.bucket_multiplier[b] for b in BUCKET_NAMES])
    agency_mult = rp.bucket_multiplier["agency"] if scenario.agency.enabled else 0.0

    due = obs.due_day
    start = due + 1.0 - scenario.population.statement_lead_days  # the statement date
    excess = seg.lambda_0[code] - lam_inf
    owed = obs.amount_due.copy()
    balance = obs.balance.copy()
    status = np.full(n, PRE_DUE, dtype=np.int8)
    period = rp.payday_period_days
    offset = book.latent.payday_offset  # the first payday on or after the statement
    payday = offset + np.ceil((start - offset) / period) * period
    payday[payday_jump <= 0] = np.inf

    first = int(np.floor(start.min()))
    for day in range(first, int(np.ceil(scenario.horizon_days))):
        dpd = day - due  # days past due at the start of the day
        # Boundaries at the start of the day (the due date passes at the end of due_day).
        late = (status == PRE_DUE) & (dpd == 1)
        status[late] = DELINQUENT
        owed[late] += rp.late_fee
        balance[late] += rp.late_fee
        excess[late] += due_jump[late]
        if rp.bureau_report_dpd is not None:
            report = (status == DELINQUENT) & (dpd == rp.bureau_report_dpd)
            excess[report] += bureau_jump[report]
        charge = (status == DELINQUENT) & (dpd >= rp.charge_off_dpd)
        status[charge] = CHARGED_OFF
        owed[charge] = balance[charge]
        balance[charge] = 0.0
        paid_day = payday < day + 1
        excess[paid_day] += payday_jump[paid_day]
        payday[paid_day] += period

        # The day's integrated intensity, and who pays.
        mult = bucket_mult[bucket_of_dpd(dpd)]
        mult = np.where(status == CHARGED_OFF, agency_mult, mult)
        owing = (start <= day) & (owed > 0) & (status != PAID_ON_TIME) & (status != CURED)
        rate = np.where(owing, mult * (lam_inf + excess * day_weight), 0.0)
        payers = np.flatnonzero(rng.random(n) < -np.expm1(-rate))
        u = rng.random((payers.size, 2))
        frac = np.where(u[:, 0] < full_prob[payers], 1.0, lo[payers] + span[payers] * u[:, 1])
        paid = frac * owed[payers]
        paid = np.where(owed[payers] - paid < CENT, owed[payers], paid)
        owed[payers] -= paid
        balance[payers] -= np.where(status[payers] == CHARGED_OFF, 0.0, paid)
        done = payers[owed[payers] <= 0]
        owed[done] = 0.0
        st = status[done]
        status[done] = np.where(st == PRE_DUE, PAID_ON_TIME, np.where(st == DELINQUENT, CURED, st))
        excess *= decay
        # The payment's jump after the day's decay: what it would add to the rest of the
        # payment day moves to the days after, so its integral stays delta / kappa.
        excess[payers] += delta10[payers] + delta11[payers] * frac
    return status


def _best(repeat: int, fn: Callable[[], T]) -> tuple[float, list[float], T]:
    """The best wall time of ``repeat`` calls of ``fn``, every time, and the last result."""
    walls = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return min(walls), walls, out


def _shares(status: np.ndarray) -> tuple[float, float]:
    """Shares of accounts paid in full (on time or cured) and charged off."""
    return (float(np.isin(status, (PAID_ON_TIME, CURED)).mean()),
            float((status == CHARGED_OFF).mean()))


def measure(scenario_path: Path, size: int, repeat: int) -> dict[str, object]:
    sc = load_scenario(scenario_path, [f"population.size={size}"])
    day_wall, day_walls, status = _best(repeat, lambda: daystep(sc, SEED))
    nc_wall, nc_walls, nc = _best(repeat, lambda: run(sc, "no_contact", SEED))
    fc_wall, fc_walls, _ = _best(repeat, lambda: run(sc, "fixed_cadence", SEED))
    day_paid, day_charged = _shares(status)
    final = nc.accounts["final_state"].cat.codes.to_numpy()
    nc_paid, nc_charged = _shares(final)
    return {"size": size, "daystep_wall": day_wall, "daystep_walls": day_walls,
            "no_contact_wall": nc_wall, "no_contact_walls": nc_walls,
            "fixed_cadence_wall": fc_wall, "fixed_cadence_walls": fc_walls,
            "ratio_no_contact": nc_wall / day_wall, "ratio_fixed_cadence": fc_wall / day_wall,
            "daystep_paid_in_full": day_paid, "engine_paid_in_full": nc_paid,
            "daystep_charged_off": day_charged, "engine_charged_off": nc_charged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each model this many times per size and keep the best")
    parser.add_argument("--scenario", default="scenarios/examples/single_cohort.yaml",
                        help="a single-cohort scenario file, relative to the repository")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    path = ROOT / args.scenario
    if load_scenario(path).population.billing.enabled:
        parser.error("the day-step model covers the single-cohort book only "
                     "(population.billing.enabled false)")
    measure(path, WARMUP_SIZE, 1)  # warm-up: imports, first calls, allocator
    print(f"{'borrowers':>10} {'day-step s':>10} {'no_contact s':>12} {'fixed_cad s':>11} "
          f"{'nc/day':>7} {'fc/day':>7} {'paid full day/eng':>18} {'charged off day/eng':>20}")
    rows = []
    for size in args.sizes:
        r = measure(path, size, args.repeat)
        rows.append(r)
        print(f"{size:>10,} {r['daystep_wall']:>10.2f} {r['no_contact_wall']:>12.2f} "
              f"{r['fixed_cadence_wall']:>11.2f} {r['ratio_no_contact']:>7.1f} "
              f"{r['ratio_fixed_cadence']:>7.1f} "
              f"{r['daystep_paid_in_full']:>8.1%} / {r['engine_paid_in_full']:<7.1%} "
              f"{r['daystep_charged_off']:>9.1%} / {r['engine_charged_off']:<8.1%}", flush=True)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
