"""Benchmark: the engine against a plain numpy day-step model of the same book.

Usage: python benchmarks/daystep_baseline.py [--sizes 10000 100000 1000000] [--repeat N]
       [--scenario FILE]
       python benchmarks/daystep_baseline.py --scenario scenarios/default.yaml
       [--sizes 100000 1000000] [--repeat N]      (the living book)

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

On a living book (a scenario with ``population.billing.enabled``, such as
``scenarios/default.yaml``) it runs ``daystep_living``, the same day step with the
statements of docs/model.md sections 2.5, 2.6 and 2.7: the book drawn as the engine draws
it (the day-0 book, its accounts in arrears with what they owe and the excess their
history left, and the accounts opening over the horizon, each from its first statement),
and, at the start of each day, the newest statement falling due (unpaid: the late fee,
the amount past due, ``due_impulse``), days past due counted from the oldest unpaid due
date (the bureau report, charge-off of the whole balance), the statements issued that
day (every ``cycle_days`` while instalments remain and not charged off: the instalment
added to what is owed; an account owing nothing starts afresh at ``lambda_0``, one in
arrears jumps by ``statement_impulse``) and the paydays; then at most one payment, a
fraction of all that is owed, going to the amount past due first (the oldest statements)
and then to the open statement. No contacts. It prints the share of statements falling
due after the warm-up that were paid by their due date and the share of accounts charged
off, the day step's beside the engine's ``no_contact``, the CPU time of each model beside
its wall time (this process's user + system time: on a shared machine it is close to a
quiet core's, the wall time is not), and the events each engine arm logged.

At most one payment a day, and boundaries and jumps moved to the start of their day:
a day step approximates the engine's exact event times (section 4.1), so its figures are
not the engine's, only close to them. On the single cohort the script prints the
day-step model's share of accounts paid in full (paid on time or cured) and charged off
beside the engine's ``no_contact`` ones so that a reader sees they are the same book.
Its draws come from a ``Generator`` of its own (``Streams.generator("daystep")``), not
the engine's per-borrower streams.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from simulator.book import (
    CHARGED_OFF,
    CURED,
    CURRENT,
    DELINQUENT,
    PAID_ON_TIME,
    PRE_DUE,
    Book,
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
LIVING_WARMUP_SIZE = 500  # a living book's engine run costs ~1 s even this small
T = TypeVar("T")


@dataclass(frozen=True)
class DayRepayment:
    """Each account's repayment parameters, gathered once from the segment table, and
    the day's payment draw: what both day-step models (single cohort, living book)
    share."""

    lam0: np.ndarray
    lam_inf: np.ndarray
    decay: np.ndarray  # the excess after one day
    day_weight: np.ndarray  # the excess's integral over a day, per unit at its start
    full_prob: np.ndarray
    partial_low: np.ndarray
    partial_span: np.ndarray
    delta10: np.ndarray
    delta11: np.ndarray
    due_jump: np.ndarray
    bureau_jump: np.ndarray
    statement_jump: np.ndarray
    payday_jump: np.ndarray
    bucket_mult: np.ndarray
    agency_mult: float

    @classmethod
    def of(cls, scenario: Scenario, book: Book) -> DayRepayment:
        seg, code, rp = book.segments, book.latent.segment, scenario.repayment
        kappa = seg.kappa[code]
        decay = np.exp(-kappa)
        with np.errstate(divide="ignore", invalid="ignore"):
            day_weight = np.where(kappa > 0, (1.0 - decay) / kappa, 1.0)
        return cls(
            lam0=seg.lambda_0[code], lam_inf=seg.lambda_inf[code], decay=decay,
            day_weight=day_weight, full_prob=seg.full_payment_prob[code],
            partial_low=seg.partial_low[code],
            partial_span=seg.partial_high[code] - seg.partial_low[code],
            delta10=seg.delta10[code], delta11=seg.delta11[code],
            due_jump=seg.due_impulse[code], bureau_jump=seg.bureau_impulse[code],
            statement_jump=seg.statement_impulse[code], payday_jump=seg.payday_impulse[code],
            bucket_mult=np.array([rp.bucket_multiplier[b] for b in BUCKET_NAMES]),
            agency_mult=rp.bucket_multiplier["agency"] if scenario.agency.enabled else 0.0)

    def payments(self, rng: np.random.Generator, rate: np.ndarray, owed: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Who pays on a day of integrated intensity ``rate``, the fraction of ``owed``
        each pays (in full with the segment's probability, else a partial fraction) and
        the amount (a remainder under a cent paid too): (payers, fraction, paid)."""
        payers = np.flatnonzero(rng.random(rate.size) < -np.expm1(-rate))
        u = rng.random((payers.size, 2))
        frac = np.where(u[:, 0] < self.full_prob[payers], 1.0,
                        self.partial_low[payers] + self.partial_span[payers] * u[:, 1])
        paid = frac * owed[payers]
        paid = np.where(owed[payers] - paid < CENT, owed[payers], paid)
        return payers, frac, paid

    def end_of_day(self, excess: np.ndarray, payers: np.ndarray, frac: np.ndarray) -> None:
        """The day's decay of the excess, then the payments' jumps (in place): what a jump
        would add to the rest of the payment day moves to the days after, so its
        integral stays delta / kappa."""
        excess *= self.decay
        excess[payers] += self.delta10[payers] + self.delta11[payers] * frac


def daystep(scenario: Scenario, seed: int) -> np.ndarray:
    """Run the day-step model on the scenario's single-cohort book; each account's final
    status (``simulator.book`` codes)."""
    streams = Streams(seed)
    book = generate_book(scenario, streams)
    rng = streams.generator("daystep")
    obs, rp, n = book.observable, scenario.repayment, book.n
    r = DayRepayment.of(scenario, book)
    lam_inf, day_weight = r.lam_inf, r.day_weight
    due_jump, bureau_jump, payday_jump = r.due_jump, r.bureau_jump, r.payday_jump
    bucket_mult, agency_mult = r.bucket_mult, r.agency_mult

    due = obs.due_day
    start = due + 1.0 - scenario.population.statement_lead_days  # the statement date
    excess = r.lam0 - lam_inf
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
        payers, frac, paid = r.payments(rng, rate, owed)
        owed[payers] -= paid
        balance[payers] -= np.where(status[payers] == CHARGED_OFF, 0.0, paid)
        done = payers[owed[payers] <= 0]
        owed[done] = 0.0
        st = status[done]
        status[done] = np.where(st == PRE_DUE, PAID_ON_TIME, np.where(st == DELINQUENT, CURED, st))
        r.end_of_day(excess, payers, frac)
    return status


@dataclass
class LivingOutcome:
    """What the day-step model of a living book ends with: each account's final status
    (``simulator.book`` codes, ``CURRENT`` included) and the statements falling due from
    the end of the warm-up to the horizon, and of them those unpaid by their due date."""

    status: np.ndarray
    statements_due: int
    statements_missed: int


def daystep_living(scenario: Scenario, seed: int) -> LivingOutcome:
    """Run the day-step model on the scenario's living book (docs/model.md sections 2.5,
    2.6, 2.7 and 3): monthly statements, the day-0 arrears and the accounts opening over the
    horizon, as ``simulator.engine`` draws them."""
    streams = Streams(seed)
    book = generate_book(scenario, streams)
    rng = streams.generator("daystep")
    plan, state = book.plan, book.state
    assert plan is not None and state.bills is not None
    obs, rp, n = book.observable, scenario.repayment, book.n
    r = DayRepayment.of(scenario, book)
    lam0, lam_inf, day_weight = r.lam0, r.lam_inf, r.day_weight
    due_jump, bureau_jump = r.due_jump, r.bureau_jump
    statement_jump, payday_jump = r.statement_jump, r.payday_jump
    bucket_mult, agency_mult = r.bucket_mult, r.agency_mult
    fee, cycle, lead = rp.late_fee, plan.cycle, plan.lead
    instalment = obs.amount_due
    per_statement = instalment + fee  # a statement past due, with its late fee
    statements = plan.statements.astype(np.int64)
    warmup, horizon = scenario.metrics.warmup_days, scenario.horizon_days

    # Each account's state, from the engine's own initial state (day-0 arrears included).
    # What is owed in house is split into the amount past due and the open statement's
    # unpaid part, so that payments can go to the oldest first.
    billed = state.bills.billed.astype(np.int64)  # statements issued
    passed = state.bills.missed.astype(np.int64)  # statements whose due date has passed
    missed = passed.copy()  # of them, those not paid in full (the oldest are paid first)
    past_due = missed * per_statement
    open_owed = np.where(billed > passed, instalment, 0.0)
    status = state.status.copy()
    balance = state.balance.copy()
    agency_owed = np.zeros(n)  # written off, for the agency to collect
    excess = plan.excess0.copy()
    in_arrears = plan.past_due0 > 0
    # An account's life starts at its first statement; one in arrears on day 0, on day 0.
    starts = np.where(in_arrears, 0.0, plan.issued(np.arange(n), np.zeros(n, dtype=np.int64)))
    open_due = plan.first_due + (billed - 1) * cycle  # due day of the newest statement
    next_statement = np.where(billed < statements, open_due + cycle + 1 - lead, np.inf)
    period = rp.payday_period_days
    first = int(np.floor(starts.min()))
    offset = book.latent.payday_offset
    payday = np.where(payday_jump > 0, offset + np.ceil((first - offset) / period) * period,
                      np.inf)
    due_count = missed_count = 0

    last = int(np.floor(horizon))
    for day in range(first, last + 1):
        if day == 0:  # the accounts in arrears start with the excess their history left
            excess[in_arrears] = plan.excess0[in_arrears]
        live = starts < day + 1

        # The newest statement's due date passes (at the start of the day after it), paid
        # or not; not after charge-off.
        falls = live & (passed < billed) & (open_due < day) & (status != CHARGED_OFF)
        if warmup <= day <= horizon:
            due_count += int(falls.sum())
            missed_count += int((falls & (open_owed > 0)).sum())
        late = falls & (open_owed > 0)
        passed[falls] += 1
        past_due[late] += open_owed[late] + fee
        balance[late] += fee
        open_owed[late] = 0.0
        missed[late] += 1
        status[late] = DELINQUENT  # a new episode if nothing was past due before
        excess[late] += due_jump[late]

        # Days past due from the oldest unpaid due date; the bureau report; charge-off.
        oldest = np.where(missed > 0, passed - missed, billed - 1)
        dpd = day - (plan.first_due + oldest * cycle)
        delinquent = live & (status == DELINQUENT)
        if rp.bureau_report_dpd is not None:
            report = delinquent & (dpd == rp.bureau_report_dpd)
            excess[report] += bureau_jump[report]
        charge = delinquent & (dpd >= rp.charge_off_dpd)
        status[charge] = CHARGED_OFF
        agency_owed[charge] = balance[charge]  # the whole balance, unbilled instalments too
        balance[charge] = past_due[charge] = open_owed[charge] = 0.0
        next_statement[charge] = np.inf

        # Statements issued during the day: the next instalment falls due a cycle on.
        issue = next_statement < day + 1
        fresh = issue & (past_due + open_owed <= 0)
        excess[fresh] = lam0[fresh] - lam_inf[fresh]  # a new episode starts at lambda_0
        status[fresh] = PRE_DUE
        owing = issue & ~fresh
        excess[owing] += statement_jump[owing]  # in arrears: the intensity carries on
        open_owed[issue] = instalment[issue]
        billed[issue] += 1
        open_due[issue] += cycle
        next_statement[issue] = np.where(billed[issue] < statements[issue],
                                         open_due[issue] + cycle + 1 - lead, np.inf)

        paid_day = payday < day + 1
        excess[paid_day] += payday_jump[paid_day]
        payday[paid_day] += period
        if day + 1 > horizon:  # the last day, cut by the horizon: its boundaries only
            break

        # The day's integrated intensity, and who pays.
        owed = np.where(status == CHARGED_OFF, agency_owed, past_due + open_owed)
        mult = np.where(status == CHARGED_OFF, agency_mult, bucket_mult[bucket_of_dpd(dpd)])
        rate = np.where(live & (owed > 0), mult * (lam_inf + excess * day_weight), 0.0)
        payers, frac, paid = r.payments(rng, rate, owed)

        agency = payers[status[payers] == CHARGED_OFF]
        agency_owed[agency] -= paid[status[payers] == CHARGED_OFF]
        house = status[payers] != CHARGED_OFF
        i, p = payers[house], paid[house]
        balance[i] -= p
        towards = np.minimum(p, past_due[i])  # the oldest statements first
        past_due[i] -= towards
        open_owed[i] = np.maximum(open_owed[i] - (p - towards), 0.0)
        past_due[i] = np.where(past_due[i] < CENT, 0.0, past_due[i])
        # The statements still past due: the newest ones, the oldest of them partly paid.
        missed[i] = np.ceil(past_due[i] / per_statement[i] - 1e-9).astype(np.int64)
        cured = i[(status[i] == DELINQUENT) & (missed[i] == 0)]
        status[cured] = PRE_DUE  # the open statement (if any) is still owed
        done = i[past_due[i] + open_owed[i] <= 0]
        closed = done[billed[done] >= statements[done]]
        status[done] = CURRENT  # owes nothing until its next statement
        status[closed] = np.where(np.isin(closed, cured), CURED, PAID_ON_TIME)

        r.end_of_day(excess, payers, frac)
    return LivingOutcome(status, due_count, missed_count)


def _best(repeat: int, fn: Callable[[], T]) -> tuple[float, list[float], T]:
    """The best wall time of ``repeat`` calls of ``fn``, every time, and the last result."""
    walls = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return min(walls), walls, out


@dataclass
class Timing:
    """Wall and CPU times (this process's user + system) of repeated calls. On a machine
    shared with other jobs the CPU time is close to what a quiet core takes, while the
    wall time grows with the load."""

    walls: list[float]
    cpus: list[float]

    def figures(self, arm: str) -> dict[str, object]:
        return {f"{arm}_wall": min(self.walls), f"{arm}_walls": self.walls,
                f"{arm}_cpu": min(self.cpus), f"{arm}_cpus": self.cpus}


def _best_timed(repeat: int, fn: Callable[[], T]) -> tuple[Timing, T]:
    """As ``_best``, with the CPU time beside the wall time."""
    timing = Timing([], [])
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        timing.walls.append(time.perf_counter() - t0)
        timing.cpus.append(time.process_time() - c0)
    return timing, out


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


def _engine_living(scenario: Scenario, strategy: str) -> dict[str, float]:
    """One engine run of a living book, reduced at once to the figures compared with the
    day step (so that the run's frames, ~3 GiB at a million accounts, are freed before the
    next run): statements paid by their due date, accounts charged off, events logged."""
    r = run(scenario, strategy, SEED)
    acc = r.accounts
    due = float(acc["statements_due"].sum())
    return {"paid_by_due": 1.0 - float(acc["statements_missed"].sum()) / due if due else 0.0,
            "charged_off": float((acc["final_state"] == "charged_off").mean()),
            "accounts": float(len(acc)), "events": float(len(r.events))}


def measure_living(scenario_path: Path, size: int, repeat: int) -> dict[str, object]:
    """As ``measure``, on a living book: the sanity figures are the share of statements
    falling due after the warm-up that were paid by their due date, and the share of
    accounts charged off by the horizon."""
    sc = load_scenario(scenario_path, [f"population.size={size}"])
    day, out = _best_timed(repeat, lambda: daystep_living(sc, SEED))
    nc_t, nc = _best_timed(repeat, lambda: _engine_living(sc, "no_contact"))
    fc_t, fc = _best_timed(repeat, lambda: _engine_living(sc, "fixed_cadence"))
    due = out.statements_due
    row: dict[str, object] = {"size": size, "accounts": int(out.status.size)}
    for arm, t in (("daystep", day), ("no_contact", nc_t), ("fixed_cadence", fc_t)):
        row |= t.figures(arm)
    return row | {
            "ratio_no_contact": min(nc_t.walls) / min(day.walls),
            "ratio_fixed_cadence": min(fc_t.walls) / min(day.walls),
            "ratio_no_contact_cpu": min(nc_t.cpus) / min(day.cpus),
            "ratio_fixed_cadence_cpu": min(fc_t.cpus) / min(day.cpus),
            "no_contact_events": int(nc["events"]), "fixed_cadence_events": int(fc["events"]),
            "daystep_paid_by_due": 1.0 - out.statements_missed / due if due else 0.0,
            "engine_paid_by_due": nc["paid_by_due"],
            "daystep_charged_off": float((out.status == CHARGED_OFF).mean()),
            "engine_charged_off": nc["charged_off"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each model this many times per size and keep the best")
    parser.add_argument("--scenario", default="scenarios/examples/single_cohort.yaml",
                        help="a scenario file, relative to the repository: a single cohort "
                        "or a living book (population.billing.enabled)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    path = ROOT / args.scenario
    if load_scenario(path).population.billing.enabled:
        living(path, args.sizes, args.repeat)
        return
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



def living(path: Path, sizes: list[int], repeat: int) -> None:
    """The table of a living book: as the single cohort's, with the ratios of CPU times
    too (each model's wall and CPU times are in the JSON lines) and its own sanity
    figures."""
    measure_living(path, LIVING_WARMUP_SIZE, 1)  # warm-up: imports, first calls, allocator
    print(f"{'borrowers':>10} {'accounts':>10} {'day-step s':>10} {'no_contact s':>12} "
          f"{'fixed_cad s':>11} {'nc/day':>7} {'fc/day':>7} {'nc/day cpu':>10} "
          f"{'fc/day cpu':>10} {'fc events':>11} "
          f"{'paid by due day/eng':>20} {'charged off day/eng':>20}")
    rows = []
    for size in sizes:
        r = measure_living(path, size, repeat)
        rows.append(r)
        print(f"{size:>10,} {r['accounts']:>10,} {r['daystep_wall']:>10.2f} "
              f"{r['no_contact_wall']:>12.2f} {r['fixed_cadence_wall']:>11.2f} "
              f"{r['ratio_no_contact']:>7.1f} {r['ratio_fixed_cadence']:>7.1f} "
              f"{r['ratio_no_contact_cpu']:>10.1f} {r['ratio_fixed_cadence_cpu']:>10.1f} "
              f"{r['fixed_cadence_events']:>11,} "
              f"{r['daystep_paid_by_due']:>9.1%} / {r['engine_paid_by_due']:<8.1%} "
              f"{r['daystep_charged_off']:>9.1%} / {r['engine_charged_off']:<8.1%}", flush=True)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
