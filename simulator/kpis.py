"""KPIs of one run, as defined in the README (docs/model.md section 11).

Money is counted inside the horizon: every money KPI counts only payments at times in
[0, horizon]; what was paid before day 0 (statements issued before the run starts) is
``paid_before_start``, apart. The ledger of each account, at any time:

    balance at the start + late fees = paid in house + balance left + written off

(``paid_in_house`` counts payments before day 0 too), and after charge-off the agency
collects towards the written-off balance, never more: ``agency_collected <=
written_off``, what is still owed to it is ``written_off - agency_collected``, and the
lender's loss net of the agency is ``written_off - agency_collected`` (before its
commission). Agency collections and write-offs overlap: the same money is first written
off, then part of it recovered, so ``cash_collected`` (in-house plus agency payments)
and ``written_off`` must not be added up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator.agents import PoolStats
from simulator.book import CHARGED_OFF, CURED, F64, I64, OUTCOME_INDEX, Book
from simulator.recorder import PAY_AGENCY, PAY_DELINQUENT
from simulator.scenario import CHANNELS, Scenario

#: KPI name -> definition. The order is the order of kpis.csv columns.
KPI_DEFINITIONS: dict[str, str] = {
    "accounts": "accounts in the book (a living book: at some time after the warm-up)",
    "statements_due": "a living book: statements whose due date passed after the warm-up "
                      "(paid by then or not; none of an account charged off before)",
    "delinquency_rate": "share of accounts whose due date passed unpaid (a living book: "
                        "of statements_due, the share unpaid at their due date)",
    "episodes": "a living book: delinquency episodes begun after the warm-up (a statement "
                "falling due unpaid on an account with nothing past due)",
    "amount_delinquent": "amount past due when accounts became delinquent (a living book: "
                         "amount falling past due in the episodes begun after the warm-up)",
    "collected": "paid towards amounts past due after the due date (in-house and agency; "
                 "each account's agency collections count up to what was still past due at "
                 "charge-off)",
    "recovery_rate": "collected / amount_delinquent",
    "recovery_rate_30": "same, counting payments within 30 days of the due date, among "
                        "accounts due on day 0 or later and at least 30 days before the "
                        "horizon (a living book: per episode, what fell past due and was "
                        "collected within 30 days of the episode's due date)",
    "recovery_rate_60": "same within 60 days",
    "recovery_rate_90": "same within 90 days",
    "cure_rate": "share of delinquent accounts that paid their amount past due in full (a "
                 "living book: of the episodes, the share ended by a cure by the horizon)",
    "cure_rate_30": "share of delinquent accounts cured within 30 days of the due date "
                    "(among those due at least 30 days before the horizon; a living book: "
                    "per episode)",
    "roll_m1_m2": "share of accounts reaching 1 day past due that reach 31 (observable ones; "
                  "a living book: month on month, the share of accounts 1-30 days past due "
                  "at a month-end that are 31-60 at the next)",
    "roll_m2_m3": "share reaching 31 days past due that reach 61 (a living book: 31-60 at a "
                  "month-end, 61-90 at the next)",
    "roll_m3_m4": "share reaching 61 days past due that reach 91 (a living book: 61-90 at a "
                  "month-end, 91 or more at the next)",
    "roll_m1_m2_balance": "a living book: roll_m1_m2 by balance, the in-house balance at "
                          "the first month-end of the accounts that roll / of those 1-30 "
                          "days past due then",
    "roll_m2_m3_balance": "a living book: roll_m2_m3 by balance",
    "roll_m3_m4_balance": "a living book: roll_m3_m4 by balance",
    "roll_30_60": "share of accounts reaching 30 days past due that reach 60 (a living book: "
                  "of the episodes begun after the warm-up that reach 30 days past due with "
                  "30 days left before the horizon)",
    "charge_off_rate": "share of accounts written off (a living book: after the warm-up)",
    "loss_rate": "balance written off / book balance at the start (gross of what the "
                 "agency recovers; a living book: after the warm-up / balance_start)",
    "written_off": "balance written off at charge-off (a living book: after the warm-up)",
    "agency_collected": "collected by the outside agency after charge-off, towards the "
                        "written-off balance (gross of its commission)",
    "agency_recovery_rate": "agency_collected / written_off (a living book: what the agency "
                            "collected from the accounts written off after the warm-up)",
    "cash_collected": "all payments in the horizon [0, horizon]: on time, late and agency "
                      "(gross; a living book: from the end of the warm-up)",
    "collected_per_month": "a living book: cash_collected per month (metrics.month_days) "
                           "after the warm-up",
    "paid_before_start": "payments before day 0 (statements issued before the run starts); "
                         "not in cash_collected nor in any other money KPI",
    "balance_left": "balance still owed in house at the horizon, instalments not yet due "
                    "included, at face value (0 for a written-off account)",
    "balance_start": "a living book: balance owed in house at the end of the warm-up, "
                     "instalments not yet billed included, plus the balance of the accounts "
                     "opening after it",
    "contact_cost": "cost of executed contacts, agent time at the staffed-hour rate",
    "cost_per_collected": "contact_cost / collected",
    "agent_utilisation": "agent time on calls / staffed agent time",
    "service_level": "a living book: agent calls taken from the queue (dialled, or found "
                     "paid or blocked at the dial) before the next decision epoch / agent "
                     "calls queued",
    "staffing_cost": "staffed agent hours x cost per hour (whether busy or not)",
    "agency_commission": "commission kept by the outside agency",
    "churned": "customers who closed their account or stopped using the product",
    "churn_rate": "churned / accounts",
    "clv_lost": "customer lifetime value of churned customers",
    "complaints": "complaints to the regulator",
    "complaints_per_1000": "complaints per 1000 accounts",
    "contacts": "executed contact attempts, all channels",
    "contacts_per_account": "contacts / accounts",
    "wasted_contacts": "contacts to accounts whose no-contact twin paid in full within "
                       "metrics.wasted_window_days after the contact",
    "wasted_contact_cost": "cost of wasted contacts",
    "net_value": "cash_collected + balance_left - contact_cost - agency_commission - "
                 "clv_lost: what the book is worth at the horizon, receivables at face value, "
                 "so that a write-off counts as the loss it is (a living book: less "
                 "balance_start, what the window adds to the book it started with)",
    "requests": "contact requests made by the strategy",
    "blocked_requests": "requests refused by the rule pack (by rule: blocked_<rule>)",
    "violations": "executed contacts that break the rule pack, found by an independent "
                  "audit of the event log (must be 0)",
    "calls_dropped": "queued agent calls not made before the next decision epoch",
    "right_party_contacts": "agent calls that reached the borrower",
    "rpc_rate": "right_party_contacts / agent call attempts",
    "promises_made": "promises to pay made on calls",
    "promises_kept": "promises kept (paid on the promised date)",
    "promise_kept_rate": "promises_kept / promises resolved (kept or broken)",
}


@dataclass(frozen=True)
class KpiRange:
    """The values a KPI can take: ``[low, high]``, an end infinite when unbounded.

    Rates and shares lie in [0, 1]; counts, costs and amounts are >= 0; net value and
    every paired difference are unbounded. Intervals, regression bands and the
    validation of cached cells keep to it.
    """

    low: float
    high: float

    @property
    def bounded(self) -> bool:
        """Whether either end is finite (the interval must then respect it)."""
        return math.isfinite(self.low) or math.isfinite(self.high)

    def contains(self, value: float) -> bool:
        """``value`` lies in the range (NaN, an undefined ratio, is not in it)."""
        return self.low <= value <= self.high

    def clip(self, value: float) -> float:
        """``value`` moved to the nearest end of the range (NaN stays NaN)."""
        return value if math.isnan(value) else min(max(value, self.low), self.high)


SHARE = KpiRange(0.0, 1.0)
NON_NEGATIVE = KpiRange(0.0, math.inf)
UNBOUNDED = KpiRange(-math.inf, math.inf)

#: The range of every KPI of ``KPI_DEFINITIONS`` (per-channel and per-rule KPIs:
#: ``kpi_range``). One table, used by intervals, regression bands and cell validation.
KPI_RANGES: dict[str, KpiRange] = {
    **{name: NON_NEGATIVE for name in KPI_DEFINITIONS},
    **{name: SHARE for name in (
        "delinquency_rate", "recovery_rate", "recovery_rate_30", "recovery_rate_60",
        "recovery_rate_90", "cure_rate", "cure_rate_30", "roll_m1_m2", "roll_m2_m3",
        "roll_m3_m4", "roll_30_60", "charge_off_rate", "loss_rate", "agency_recovery_rate",
        "agent_utilisation", "roll_m1_m2_balance", "roll_m2_m3_balance", "roll_m3_m4_balance",
        "service_level",
        "churn_rate", "rpc_rate", "promise_kept_rate")},
    "net_value": UNBOUNDED,
}

#: Ratio KPIs and the KPI whose value 0 makes the ratio undefined (NaN: no
#: denominator, as ``rpc_rate`` without agent calls); None where the denominator is not
#: itself a KPI (accounts eligible by the horizon, staffed hours, the book's balance).
#: Every other KPI is always a finite number. A new ratio KPI gets an entry here.
RATIO_DENOMINATORS: dict[str, str | None] = {
    "delinquency_rate": "accounts",
    "recovery_rate": "amount_delinquent",
    "recovery_rate_30": None,
    "recovery_rate_60": None,
    "recovery_rate_90": None,
    "cure_rate": "delinquency_rate",
    "cure_rate_30": None,
    "roll_m1_m2": None,
    "roll_m2_m3": None,
    "roll_m3_m4": None,
    "roll_30_60": None,
    "charge_off_rate": "accounts",
    "loss_rate": None,
    "cost_per_collected": "collected",
    "agent_utilisation": None,
    "churn_rate": "accounts",
    "complaints_per_1000": "accounts",
    "contacts_per_account": "accounts",
    "rpc_rate": "contacts_agent_call",
    # Its denominator is the promises resolved (kept or broken), which no KPI reports: a
    # promise made but not yet due at the horizon leaves the rate undefined with
    # promises_made above 0.
    "promise_kept_rate": None,
    "agency_recovery_rate": "written_off",
}

#: KPIs a living book alone reports (``population.billing.enabled``); a single cohort's
#: KPIs are every other one of ``KPI_DEFINITIONS``.
LIVING_ONLY_KPIS: tuple[str, ...] = (
    "statements_due", "episodes", "roll_m1_m2_balance", "roll_m2_m3_balance",
    "roll_m3_m4_balance", "collected_per_month", "balance_start", "service_level")

#: The ratios of a living book whose denominator differs from a single cohort's (per
#: statement, per episode, over the balance at the end of the warm-up), and its new ones.
LIVING_RATIO_DENOMINATORS: dict[str, str | None] = {
    **RATIO_DENOMINATORS,
    "delinquency_rate": "statements_due",
    "cure_rate": "episodes",
    "loss_rate": "balance_start",
    "roll_m1_m2_balance": None,
    "roll_m2_m3_balance": None,
    "roll_m3_m4_balance": None,
    "collected_per_month": None,
    "service_level": None,
}

#: Families of KPIs named after a channel or a rule, and their range.
_KPI_FAMILIES: tuple[tuple[str, KpiRange], ...] = (
    ("cost_", NON_NEGATIVE), ("contacts_", NON_NEGATIVE), ("blocked_", NON_NEGATIVE))


def kpi_range(name: str) -> KpiRange | None:
    """The range of the KPI ``name``, or None for a name that is not a KPI."""
    found = KPI_RANGES.get(name)
    if found is not None:
        return found
    for prefix, family in _KPI_FAMILIES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return family
    return None


def kpi_problem(kpis: Mapping[str, float | None]) -> str | None:
    """What makes ``kpis`` (one run's, as stored: None or NaN for an undefined ratio)
    impossible, or None: every KPI of ``KPI_DEFINITIONS`` and every channel's cost and
    contacts present, no unknown name, each value inside its range (``kpi_range``), and
    undefined only for a ratio whose denominator is 0 (``RATIO_DENOMINATORS``). A living
    book's KPIs (told by ``statements_due``) include ``LIVING_ONLY_KPIS`` and read their
    denominators from ``LIVING_RATIO_DENOMINATORS``."""
    living = "statements_due" in kpis
    ratios = LIVING_RATIO_DENOMINATORS if living else RATIO_DENOMINATORS
    required = [*(k for k in KPI_DEFINITIONS if living or k not in LIVING_ONLY_KPIS),
                *(f"{p}{c}" for c in CHANNELS for p in ("cost_", "contacts_"))]
    missing = [k for k in required if k not in kpis]
    if missing:
        return f"missing KPI(s) {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
    for name, value in kpis.items():
        found = kpi_range(name)
        if found is None:
            return f"unknown KPI {name!r}"
        if isinstance(value, bool) or not (value is None or isinstance(value, int | float)):
            return f"{name} is not a number ({value!r})"
        if value is None or math.isnan(value):
            if name not in ratios:
                return f"{name} is undefined, but it is not a ratio"
            denominator = ratios[name]
            if denominator is not None and kpis.get(denominator) != 0:
                return (f"{name} is undefined, but its denominator {denominator} is "
                        f"{kpis.get(denominator)!r}, not 0")
        elif not found.contains(float(value)):
            return f"{name} = {value!r} lies outside [{found.low:g}, {found.high:g}]"
    return None


#: KPIs shown in printed tables and reports: (key, label, format pct|money|ratio|int|num).
TABLE_KPIS: list[tuple[str, str, str]] = [
    ("delinquency_rate", "delinquency rate", "pct"),
    ("recovery_rate", "recovery rate", "pct"),
    ("recovery_rate_30", "  within 30 days", "pct"),
    ("cure_rate", "cure rate", "pct"),
    ("roll_m1_m2", "roll M1 -> M2", "pct"),
    ("charge_off_rate", "charge-off rate", "pct"),
    ("cash_collected", "cash collected", "money"),
    ("contact_cost", "contact cost", "money"),
    ("cost_per_collected", "cost per unit collected", "ratio"),
    ("agency_commission", "agency commission", "money"),
    ("churn_rate", "churn rate", "pct"),
    ("clv_lost", "CLV lost", "money"),
    ("complaints_per_1000", "complaints per 1000", "num"),
    ("contacts_per_account", "contacts per account", "num"),
    ("wasted_contacts", "wasted contacts", "int"),
    ("net_value", "net value", "money"),
    ("blocked_requests", "blocked requests", "int"),
    ("violations", "executed violations", "int"),
    ("agent_utilisation", "agent utilisation", "pct"),
    ("rpc_rate", "right-party contact per dial", "pct"),
    ("promise_kept_rate", "promises kept", "pct"),
]


#: The month-on-month roll rates of a living book: name -> (days past due at one
#: month-end, days past due at the next), each an inclusive band.
ROLL_BANDS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "m1_m2": ((1, 30), (31, 60)),
    "m2_m3": ((31, 60), (61, 90)),
    "m3_m4": ((61, 90), (91, math.inf)),
}


@dataclass
class MonthEnds:
    """What the month-ends of a living book add up to (the first is the end of the
    warm-up): for each roll of ``ROLL_BANDS``, over every pair of consecutive
    month-ends, the accounts in the first band at one month-end, those of them in the
    second band at the next, and the balances of both at the first; and the in-house
    balance at the first month-end with that of the accounts opening after it."""

    balance_at_start: float = math.nan
    opened_after: float = 0.0
    #: Each account's part of the two: its in-house balance at the first month-end, or
    #: its balance when it opens after it.
    balance_start: np.ndarray | None = None
    pairs: int = 0
    rolls: dict[str, list[float]] = field(
        default_factory=lambda: {name: [0.0, 0.0, 0.0, 0.0] for name in ROLL_BANDS})

    def add(self, dpd0: np.ndarray, balance0: np.ndarray, dpd1: np.ndarray,
            balance1: np.ndarray) -> None:
        """Pair one month-end (``dpd0``, ``balance0``; -1: not an open account) with the
        next (``balance1`` is not used: a roll by balance weighs the accounts by their
        balance at the first month-end, the money that rolls)."""
        self.pairs += 1
        for name, ((lo, hi), (lo2, hi2)) in ROLL_BANDS.items():
            start = (dpd0 >= lo) & (dpd0 <= hi)
            rolled = start & (dpd1 >= lo2) & (dpd1 <= hi2)
            counts = self.rolls[name]
            counts[0] += float(start.sum())
            counts[1] += float(rolled.sum())
            counts[2] += float(balance0[start].sum())
            counts[3] += float(balance0[rolled].sum())

    def rate(self, name: str, by_balance: bool = False) -> float:
        counts = self.rolls[name]
        return _ratio(counts[3], counts[2]) if by_balance else _ratio(counts[1], counts[0])


#: The kinds of event the KPIs (of a single-statement run and of a living book) and the
#: compliance audit read: ``RunFacts.events`` may hold these only.
KPI_EVENTS = ("payment", "contact", "blocked", "complaint", "opt_out", "promise",
              "promise_kept", "promise_broken")


@dataclass
class RunFacts:
    """Everything the KPIs are computed from."""

    scenario: Scenario
    book: Book
    #: The run's events in time order: all, or those of the kinds ``KPI_EVENTS`` only
    #: (a living book's without payments when ``payments_in_window`` is given).
    events: pd.DataFrame
    pool: PoolStats
    requests: int
    blocked_by_rule: dict[str, int]
    violations: int
    twin_paid_time: np.ndarray | None  # t_paid of each account in the no-contact twin
    balance0: np.ndarray
    # A living book: requests from the end of the warm-up, and its month-ends.
    requests_after_warmup: int = 0
    month_ends: MonthEnds | None = None
    #: A living book whose ``events`` hold no payments (a spilled log): the amount of
    #: each payment in the KPI window, in time order, and whether the agency collected it.
    payments_in_window: tuple[np.ndarray, np.ndarray] | None = None


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


@dataclass(frozen=True)
class Payments:
    """The payment events of a run as plain arrays (the event log can hold millions of
    rows): ``pos`` is each payment's row in the account arrays it is read against."""

    pos: I64
    t: F64
    amount: F64
    code: np.ndarray

    @classmethod
    def of(cls, ev: pd.DataFrame, pos_of_id: np.ndarray | None = None) -> Payments:
        """The payments of ``ev``; ``pos_of_id`` maps account ids to rows (default: the
        account id is the row, as in the engine's book)."""
        rows = (ev["event"] == "payment").to_numpy()
        ids = ev["account_id"].to_numpy()[rows].astype(np.int64)
        return cls(ids if pos_of_id is None else pos_of_id[ids], ev["t"].to_numpy()[rows],
                   ev["amount"].to_numpy()[rows], ev["code"].to_numpy()[rows])

    def towards_past_due(self) -> np.ndarray:
        """Mask of the payments made after the due date (in-house and agency)."""
        return np.isin(self.code, [PAY_DELINQUENT, PAY_AGENCY])


@dataclass(frozen=True)
class Ledger:
    """Each account's money inside the horizon [0, horizon], from its final state and
    its payment events (arrays aligned with the accounts)."""

    cash: F64  # every payment at t >= 0, in-house and agency
    collected: F64  # towards the amount past due, capped at it
    agency: F64  # agency collections at t >= 0
    paid_before_start: F64  # every payment at t < 0

    @classmethod
    def of(cls, paid_in_house: F64, paid_delinquent: F64, agency_collected: F64,
           amount_delinquent: F64, paid_before_start: F64, pay: Payments) -> Ledger:
        """Payments towards the amount past due are counted in time order (oldest debt
        first): the in-house ones, then the agency's, until the amount past due is paid;
        the agency's collections beyond it pay the rest of the written-off balance. What
        fell before day 0 is taken out of each KPI, capped the same way."""
        n = amount_delinquent.size
        early = pay.t < 0
        before_due: np.ndarray = np.zeros(n)
        agency_early: np.ndarray = np.zeros(n)
        if early.any():
            late = early & pay.towards_past_due()
            before_due = np.bincount(pay.pos[late], pay.amount[late], minlength=n)
            gone = early & (pay.code == PAY_AGENCY)
            agency_early = np.bincount(pay.pos[gone], pay.amount[gone], minlength=n)
        towards = np.minimum(paid_delinquent + agency_collected, amount_delinquent)
        collected = towards - np.minimum(before_due, amount_delinquent)
        return cls(cash=paid_in_house + agency_collected - paid_before_start,
                   collected=collected, agency=agency_collected - agency_early,
                   paid_before_start=paid_before_start)


def collected_within(pay: Payments, amount_delinquent: F64, t_delinquent: F64,
                     eligible: np.ndarray, days: float) -> F64:
    """Per account, paid towards the amount past due within ``days`` of the due date
    (``t_delinquent - 1``), capped at the amount past due; 0 where not ``eligible``."""
    rows = pay.towards_past_due() & eligible[pay.pos]
    rows &= pay.t <= t_delinquent[pay.pos] - 1 + days
    paid = np.bincount(pay.pos[rows], pay.amount[rows], minlength=amount_delinquent.size)
    return np.minimum(paid, amount_delinquent)


def recovery_eligible(t_delinquent: F64, horizon: float, days: float) -> np.ndarray:
    """Accounts whose window of ``days`` after the due date lies in [0, horizon]."""
    due = t_delinquent - 1  # the due date passes at the end of the due day
    return np.isfinite(t_delinquent) & (due >= 0) & (due + days <= horizon)


def _recovery_within(facts: RunFacts, pay: Payments, days: float) -> float:
    s = facts.book.state
    eligible = recovery_eligible(s.t_delinquent, facts.scenario.horizon_days, days)
    paid = collected_within(pay, s.amount_delinquent, s.t_delinquent, eligible, days)
    # Each account's paid is at most its amount; the two float sums can still differ by
    # an ulp the wrong way (1.0000000000000002), which the KPI's range refuses.
    return min(_ratio(float(paid.sum()), float(s.amount_delinquent[eligible].sum())), 1.0)


def _roll(facts: RunFacts, from_dpd: int, to_dpd: int) -> float:
    """Share of accounts that reached ``from_dpd`` and went on to ``to_dpd``."""
    s, o = facts.book.state, facts.book.observable
    horizon = facts.scenario.horizon_days
    due = o.due_day
    # Time at which the account stopped being delinquent, if it did.
    end = np.minimum(s.t_paid, s.t_charged_off)
    end = np.where(np.isfinite(s.t_delinquent), end, -np.inf)
    last_dpd = np.floor(np.minimum(end, horizon) - due)
    last_dpd = np.where(s.status == CHARGED_OFF, np.inf, last_dpd)
    observable = due + to_dpd <= horizon
    reached_from = observable & np.isfinite(s.t_delinquent) & (last_dpd >= from_dpd)
    reached_to = reached_from & (last_dpd >= to_dpd)
    return _ratio(float(reached_to.sum()), float(reached_from.sum()))


def compute_kpis(facts: RunFacts) -> dict[str, float]:
    """All KPIs of one run (see ``KPI_DEFINITIONS``)."""
    sc, book, ev = facts.scenario, facts.book, facts.events
    s = book.state
    n = book.n
    horizon = sc.horizon_days
    delinquent = np.isfinite(s.t_delinquent)
    amount_delinquent = float(s.amount_delinquent.sum())
    payments = Payments.of(ev)
    ledger = Ledger.of(s.paid_in_house, s.paid_delinquent, s.agency_collected,
                       s.amount_delinquent, s.paid_before_start, payments)
    collected = float(ledger.collected.sum())
    cash = float(ledger.cash.sum())
    agency = float(ledger.agency.sum())
    written_off = float(s.written_off.sum())
    # The contact rows as plain arrays, not a copy of the frame (millions of rows).
    is_contact = (ev["event"] == "contact").to_numpy()
    n_contacts = int(is_contact.sum())
    contact_amount = pd.Series(ev["amount"].to_numpy()[is_contact])
    contact_channel = ev["channel"].cat.codes.to_numpy()[is_contact]
    channel_names = list(ev["channel"].cat.categories)
    contact_cost = float(contact_amount.sum())
    agency_commission = agency * sc.agency.commission
    churned = s.churned
    clv_lost = float(book.latent.clv[churned].sum())
    cured30_eligible = delinquent & (s.t_delinquent - 1 + 30 <= horizon)
    cured30 = cured30_eligible & (s.t_paid <= s.t_delinquent - 1 + 30)

    k: dict[str, float] = {
        "accounts": float(n),
        "delinquency_rate": _ratio(float(delinquent.sum()), n),
        "amount_delinquent": amount_delinquent,
        "collected": collected,
        "recovery_rate": _ratio(collected, amount_delinquent),
        "recovery_rate_30": _recovery_within(facts, payments, 30),
        "recovery_rate_60": _recovery_within(facts, payments, 60),
        "recovery_rate_90": _recovery_within(facts, payments, 90),
        "cure_rate": _ratio(float((s.status == CURED).sum()), float(delinquent.sum())),
        "cure_rate_30": _ratio(float(cured30.sum()), float(cured30_eligible.sum())),
        "roll_m1_m2": _roll(facts, 1, 31),
        "roll_m2_m3": _roll(facts, 31, 61),
        "roll_m3_m4": _roll(facts, 61, 91),
        "roll_30_60": _roll(facts, 30, 60),
        "charge_off_rate": _ratio(float((s.status == CHARGED_OFF).sum()), n),
        "loss_rate": _ratio(written_off, float(facts.balance0.sum())),
        "written_off": written_off,
        "agency_collected": agency,
        "agency_recovery_rate": _ratio(agency, written_off),
        "cash_collected": cash,
        "paid_before_start": float(ledger.paid_before_start.sum()),
        "balance_left": float(s.balance.sum()),
        "contact_cost": contact_cost,
        "cost_per_collected": _ratio(contact_cost, collected),
    }
    staffed_hours = facts.pool.staffed_time * 24.0
    k["agent_utilisation"] = _ratio(facts.pool.busy_time * 24.0, staffed_hours)
    k["staffing_cost"] = staffed_hours * sc.agents.cost_per_hour
    k["agency_commission"] = agency_commission
    k["churned"] = float(churned.sum())
    k["churn_rate"] = _ratio(float(churned.sum()), n)
    k["clv_lost"] = clv_lost
    k["complaints"] = float(s.complaints.sum())
    k["complaints_per_1000"] = 1000.0 * _ratio(float(s.complaints.sum()), n)
    k["contacts"] = float(n_contacts)
    k["contacts_per_account"] = _ratio(float(n_contacts), n)

    if facts.twin_paid_time is not None and n_contacts:
        ids = ev["account_id"].to_numpy()[is_contact]
        twin_paid = facts.twin_paid_time[ids]
        wasted = twin_paid <= ev["t"].to_numpy()[is_contact] + sc.metrics.wasted_window_days
        k["wasted_contacts"] = float(wasted.sum())
        k["wasted_contact_cost"] = float(contact_amount.to_numpy()[wasted].sum())
    else:
        k["wasted_contacts"] = 0.0
        k["wasted_contact_cost"] = 0.0
    k["net_value"] = cash + k["balance_left"] - contact_cost - agency_commission - clv_lost
    k["requests"] = float(facts.requests)
    k["blocked_requests"] = float(sum(facts.blocked_by_rule.values()))
    k["violations"] = float(facts.violations)
    k["calls_dropped"] = float(facts.pool.dropped)
    def on(channel: str) -> np.ndarray:
        """Mask of the contact rows on ``channel``."""
        if channel not in channel_names:
            return np.zeros(n_contacts, dtype=bool)
        return contact_channel == channel_names.index(channel)

    calls = on("agent_call")
    rpc = np.isin(ev["code"].to_numpy()[is_contact][calls],
                  [OUTCOME_INDEX["right_party"], OUTCOME_INDEX["promise"]])
    k["right_party_contacts"] = float(rpc.sum())
    k["rpc_rate"] = _ratio(float(rpc.sum()), float(calls.sum()))
    kept = int((ev["event"] == "promise_kept").sum())
    broken = int((ev["event"] == "promise_broken").sum())
    k["promises_made"] = float((ev["event"] == "promise").sum())
    k["promises_kept"] = float(kept)
    k["promise_kept_rate"] = _ratio(kept, kept + broken)
    for ch in CHANNELS:
        rows = on(ch)
        k[f"cost_{ch}"] = float(contact_amount[rows].sum())
        k[f"contacts_{ch}"] = float(rows.sum())
    for rule, count in facts.blocked_by_rule.items():
        k[f"blocked_{rule}"] = float(count)
    return k

