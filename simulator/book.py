"""The book: every account as a struct of numpy arrays.

Latent columns (what only the simulator knows) are kept apart from observable ones
(what a lender knows); dynamic state is a third group. Strategies only ever receive a
copy of observable columns, built in ``simulator.view``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from simulator.scenario import CHANNELS, SEGMENTS, Scenario

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

# Account status codes (``State.status``). Every account is in exactly one at any time.
PRE_DUE, PAID_ON_TIME, DELINQUENT, CURED, CHARGED_OFF = 0, 1, 2, 3, 4
STATUS_NAMES = ("pre_due", "paid_on_time", "delinquent", "cured", "charged_off")
# A living book (monthly statements) adds: owing nothing until the next statement. Paid on
# time and cured then mean closed: every statement of the plan paid, the last so.
CURRENT = 5
LIVING_STATUS_NAMES = (*STATUS_NAMES, "current")

CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}
PUSH, EMAIL, SMS, ROBOCALL, AGENT_CALL = range(len(CHANNELS))
ELECTRONIC = (PUSH, EMAIL, SMS)  # carry an opt-out that must be honoured
CALLS = (ROBOCALL, AGENT_CALL)  # count as calls for the caps

# Last contact outcome codes, observable to strategies.
OUTCOMES = ("none", "undelivered", "delivered", "read", "no_answer", "right_party", "promise")
OUTCOME_INDEX = {name: i for i, name in enumerate(OUTCOMES)}


@dataclass
class Latent:
    """Hidden truth about each borrower; never shown to a strategy."""

    segment: NDArray[np.int8]
    ability: F64
    willingness: F64
    tolerance: F64
    complaint_propensity: F64
    responsiveness: F64  # (n, channels)
    answer_propensity: F64
    clv: F64
    payday_offset: F64


@dataclass
class Observable:
    """What the lender knows at the start about each account."""

    score: F64
    balance: F64
    amount_due: F64
    credit_line: F64
    tenure_months: F64
    prior_delinquencies: NDArray[np.int16]
    product: NDArray[np.int8]
    on_file: BOOL  # (n, channels)
    due_day: F64
    do_not_contact: BOOL
    consent_quiet_hours: BOOL
    clv_estimate: F64
    # Channels the borrower had opted out of before day 0 (n, channels), as a lender's
    # accounts file gives them (``population.from_file``); None: none.
    opted_out: BOOL | None = None


@dataclass
class SegmentTable:
    """Per-segment parameters as small arrays, indexed by ``Latent.segment``."""

    lambda_0: F64
    lambda_inf: F64
    kappa: F64
    delta10: F64
    delta11: F64
    due_impulse: F64
    payday_impulse: F64
    bureau_impulse: F64
    full_payment_prob: F64
    partial_low: F64
    partial_high: F64
    impulse_multiplier: F64  # (segments, channels)
    promise_prob: F64
    promise_keep_prob: F64
    statement_impulse: F64

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> SegmentTable:
        segs = [scenario.population.segments[name] for name in SEGMENTS]

        def col(attr: str) -> F64:
            return np.array([getattr(s, attr) for s in segs], dtype=np.float64)

        return cls(
            lambda_0=col("lambda_0"),
            lambda_inf=col("lambda_inf"),
            kappa=col("kappa"),
            delta10=col("delta10"),
            delta11=col("delta11"),
            due_impulse=col("due_impulse"),
            payday_impulse=col("payday_impulse"),
            bureau_impulse=col("bureau_impulse"),
            full_payment_prob=col("full_payment_prob"),
            partial_low=np.array([s.partial_fraction.low for s in segs]),
            partial_high=np.array([s.partial_fraction.high for s in segs]),
            impulse_multiplier=np.array([s.impulse_multiplier.as_tuple() for s in segs]),
            promise_prob=col("promise_prob"),
            promise_keep_prob=col("promise_keep_prob"),
            statement_impulse=col("statement_impulse"),
        )


@dataclass
class Plan:
    """Each account's instalment plan in a living book (docs/model.md sections 2.5, 2.6 and 2.7).

    Statement ``k`` (from 0) bills ``amount_due`` and falls due at the end of day
    ``first_due + k * cycle``, issued ``lead`` days before that passes. Statement 0 of an
    account in arrears on day 0 is its oldest unpaid one.
    """

    cycle: float
    lead: float
    first_due: F64
    statements: NDArray[np.int16]  # statements in the plan
    past_due0: NDArray[np.int16]  # statements already past due on day 0 (arrears)
    opened: F64  # the day the account opens (-inf: the book of day 0)
    excess0: F64  # excess intensity on day 0 of an account in arrears (0 otherwise)

    def due(self, idx: I64, k: NDArray[np.integer] | I64) -> F64:
        """Due day of statement ``k`` of each account ``idx``."""
        return self.first_due[idx] + k * self.cycle

    def issued(self, idx: I64, k: NDArray[np.integer] | I64) -> F64:
        """When statement ``k`` of each account ``idx`` is issued."""
        return self.first_due[idx] + k * self.cycle + 1.0 - self.lead


#: Windows (days after an episode's due date) of the per-episode recovery and cure rates.
EPISODE_WINDOWS = (30.0, 60.0, 90.0)


@dataclass
class Bills:
    """What changes of each account's statements in a living book.

    Payments go to the oldest statement first and every instalment is the same amount, so
    only the oldest unpaid statement can be partly paid: the unpaid statements are
    ``oldest .. billed - 1``, the oldest with ``oldest_left`` left, the others whole (those
    past due with the late fee). ``missed`` of them (the oldest ones) are past due.
    """

    n: int
    billed: NDArray[np.int16] = field(init=False)  # statements issued so far
    oldest: NDArray[np.int16] = field(init=False)  # oldest unpaid (billed if none)
    oldest_left: F64 = field(init=False)
    missed: NDArray[np.int16] = field(init=False)  # statements past due and unpaid
    # Due day days past due count from: the oldest unpaid one, else the next one.
    ref_due: F64 = field(init=False)
    t_statement: F64 = field(init=False)  # next statement (inf: none)
    fees: F64 = field(init=False)  # late fees charged
    delinquencies: NDArray[np.int16] = field(init=False)  # episodes begun in the run
    t_episode: F64 = field(init=False)  # when the current episode began (its due date passed)
    # Counted in the KPIs: episodes that began after the warm-up, statements due after it.
    counted: BOOL = field(init=False)  # the current episode counts
    deep: BOOL = field(init=False)  # the current episode reached 30 days past due
    deep60: BOOL = field(init=False)  # ... with room for 60 by the horizon, and reached it
    watch60: BOOL = field(init=False)  # the current episode counts towards roll_30_60
    reach30_w: NDArray[np.int16] = field(init=False)  # counted episodes reaching 30
    reach60_w: NDArray[np.int16] = field(init=False)  # of which reaching 60
    t_cured_deep: F64 = field(init=False)  # last cure of an episode that reached 30
    due_w: NDArray[np.int16] = field(init=False)  # statements that fell due
    missed_w: NDArray[np.int16] = field(init=False)  # of which unpaid
    episodes_w: NDArray[np.int16] = field(init=False)
    cures_w: NDArray[np.int16] = field(init=False)
    episodes30_w: NDArray[np.int16] = field(init=False)  # whose 30 days end by the horizon
    cures30_w: NDArray[np.int16] = field(init=False)  # of which cured within 30 days
    amount_w: F64 = field(init=False)  # fallen past due in counted episodes
    collected_w: F64 = field(init=False)  # paid towards it (in house, then the agency)
    amount_n: F64 = field(init=False)  # (n, windows): fallen past due within each window
    collected_n: F64 = field(init=False)  # (n, windows): paid towards it within the window
    # The no-contact twin only: when each statement was paid in full (inf: never).
    paid_at: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        n, w = self.n, len(EPISODE_WINDOWS)
        for name in ("billed", "oldest", "missed", "delinquencies", "due_w", "missed_w",
                     "episodes_w", "cures_w", "episodes30_w", "cures30_w"):
            setattr(self, name, np.zeros(n, dtype=np.int16))
        for name in ("oldest_left", "ref_due", "fees", "amount_w", "collected_w"):
            setattr(self, name, np.zeros(n))
        self.t_statement = np.full(n, np.inf)
        self.t_episode = np.full(n, np.inf)
        self.counted = np.zeros(n, dtype=bool)
        self.deep = np.zeros(n, dtype=bool)
        self.deep60 = np.zeros(n, dtype=bool)
        self.watch60 = np.zeros(n, dtype=bool)
        self.reach30_w = np.zeros(n, dtype=np.int16)
        self.reach60_w = np.zeros(n, dtype=np.int16)
        self.t_cured_deep = np.full(n, np.inf)
        self.amount_n = np.zeros((n, w))
        self.collected_n = np.zeros((n, w))


@dataclass
class State:
    """Everything about an account that changes during a run."""

    n: int
    n_channels: int = len(CHANNELS)
    # The money of an account, at any time (``simulator.kpis`` states the ledger):
    #   balance at the start + late fees = paid_in_house + balance + written_off,
    #   agency_collected <= written_off (the agency collects towards it, never more).
    status: NDArray[np.int8] = field(init=False)
    # Amount due before the due date, past due after it, and after charge-off what is
    # left of the written-off balance (the whole debt is then due, to the agency).
    owed: F64 = field(init=False)
    balance: F64 = field(init=False)  # in-house balance: 0 once written off
    amount_delinquent: F64 = field(init=False)
    paid_in_house: F64 = field(init=False)
    paid_delinquent: F64 = field(init=False)  # paid towards the amount past due, in-house
    agency_collected: F64 = field(init=False)
    written_off: F64 = field(init=False)
    paid_before_start: F64 = field(init=False)  # every payment before day 0 (any stage)
    # Hawkes state: excess intensity above lambda_inf at time t_state.
    t_state: F64 = field(init=False)
    excess: F64 = field(init=False)
    t_pay: F64 = field(init=False)  # next candidate repayment time
    t_boundary: F64 = field(init=False)  # due date, next bucket, or charge-off
    t_payday: F64 = field(init=False)
    t_promise: F64 = field(init=False)
    promise_amount: F64 = field(init=False)
    promise_paid: F64 = field(init=False)  # paid since the open promise was made
    promise_kept: BOOL = field(init=False)  # decided when the promise is made (latent)
    promise_full: BOOL = field(init=False)  # a promise to pay all that is owed (not part)
    promises_made: NDArray[np.int16] = field(init=False)
    promises_broken: NDArray[np.int16] = field(init=False)
    # Event times (inf when it did not happen).
    t_delinquent: F64 = field(init=False)
    t_paid: F64 = field(init=False)  # paid in full: on time or cured
    t_charged_off: F64 = field(init=False)
    t_churn: F64 = field(init=False)
    # Contact response.
    pressure: F64 = field(init=False)
    t_pressure: F64 = field(init=False)
    fatigue: F64 = field(init=False)
    t_fatigue: F64 = field(init=False)
    churned: BOOL = field(init=False)
    complaints: NDArray[np.int16] = field(init=False)
    opted_out: BOOL = field(init=False)  # (n, channels)
    dark: BOOL = field(init=False)  # (n, channels)
    contacts: NDArray[np.int32] = field(init=False)  # (n, channels) executed attempts
    last_contact: F64 = field(init=False)  # (n, channels)
    last_outcome: NDArray[np.int8] = field(init=False)
    right_party_contacts: NDArray[np.int32] = field(init=False)
    # Per-borrower draw counters (see simulator.rng).
    repay_counter: NDArray[np.uint32] = field(init=False)
    contact_counter: NDArray[np.uint32] = field(init=False)
    # Statements of a living book (None: one statement per account).
    bills: Bills | None = None

    def __post_init__(self) -> None:
        n, c = self.n, self.n_channels
        inf = np.full(n, np.inf)
        self.status = np.full(n, PRE_DUE, dtype=np.int8)
        for name in ("owed", "balance", "amount_delinquent", "paid_in_house", "paid_delinquent",
                     "agency_collected", "written_off", "paid_before_start", "t_state",
                     "excess", "promise_amount",
                     "promise_paid",
                     "pressure", "t_pressure", "fatigue", "t_fatigue"):
            setattr(self, name, np.zeros(n))
        for name in ("t_pay", "t_boundary", "t_payday", "t_promise", "t_delinquent", "t_paid",
                     "t_charged_off", "t_churn"):
            setattr(self, name, inf.copy())
        self.promise_kept = np.zeros(n, dtype=bool)
        self.promise_full = np.zeros(n, dtype=bool)
        self.promises_made = np.zeros(n, dtype=np.int16)
        self.promises_broken = np.zeros(n, dtype=np.int16)
        self.churned = np.zeros(n, dtype=bool)
        self.complaints = np.zeros(n, dtype=np.int16)
        self.opted_out = np.zeros((n, c), dtype=bool)
        self.dark = np.zeros((n, c), dtype=bool)
        self.contacts = np.zeros((n, c), dtype=np.int32)
        self.last_contact = np.full((n, c), -np.inf)
        self.last_outcome = np.zeros(n, dtype=np.int8)
        self.right_party_contacts = np.zeros(n, dtype=np.int32)
        self.repay_counter = np.zeros(n, dtype=np.uint32)
        self.contact_counter = np.zeros(n, dtype=np.uint32)


#: What only the event loop reads (the borrowers' traits, clocks, contact state and
#: draw counters): none of the run's outputs, KPIs or audit read it afterwards.
LOOP_ONLY: dict[str, tuple[str, ...]] = {
    "latent": ("ability", "willingness", "tolerance", "complaint_propensity",
               "responsiveness", "answer_propensity", "payday_offset"),
    "observable": ("credit_line", "tenure_months", "on_file", "clv_estimate"),
    "state": ("t_state", "excess", "t_pay", "t_boundary", "t_payday", "t_promise",
              "promise_amount", "promise_paid", "promise_kept", "promise_full",
              "pressure", "t_pressure", "fatigue", "t_fatigue", "opted_out", "dark",
              "last_contact", "last_outcome", "right_party_contacts", "repay_counter",
              "contact_counter"),
    "bills": ("ref_due", "t_statement", "t_episode", "counted", "deep", "deep60",
              "watch60"),
}


@dataclass
class Book:
    """The whole portfolio of one run."""

    latent: Latent
    observable: Observable
    state: State
    segments: SegmentTable
    #: When each account enters the strategy's view: its statement date (one statement
    #: per account), or the day it opens (a living book: -inf for the book of day 0).
    opens_at: F64
    #: Each account's instalment plan in a living book (None: one statement each).
    plan: Plan | None = None

    @property
    def n(self) -> int:
        return self.state.n

    def release_loop_state(self) -> None:
        """Drop the arrays only the event loop reads (``LOOP_ONLY``) once a run's loop
        has ended: each becomes empty (of its type), so that a late reader fails instead
        of reading a stale value. About a third of a large book's memory."""
        parts = {"latent": self.latent, "observable": self.observable, "state": self.state,
                 "bills": self.state.bills}
        for part, names in LOOP_ONLY.items():
            holder = parts[part]
            if holder is None:
                continue
            for name in names:
                old = getattr(holder, name)
                setattr(holder, name, np.empty((0, *old.shape[1:]), dtype=old.dtype))

    def open_mask(self, t: float, include_churned: bool = True) -> BOOL:
        """Accounts open to in-house contact at time ``t``: in the book by then (its
        statement issued, or the account opened), owing, not charged off, and (unless
        ``include_churned``: the scenario stops contact after churn) not churned. A
        churned customer still owes the debt.

        An account whose statement is still ahead has no repayment state before it (its
        state starts at the statement), so it is kept out: a contact would otherwise
        move its intensity backwards in time.
        """
        s = self.state
        if s.bills is None:
            mask = ((s.status == PRE_DUE) | (s.status == DELINQUENT)) & (s.owed > 0)
        else:  # a living book: owing nothing until the next statement is open too
            mask = (s.status == PRE_DUE) | (s.status == DELINQUENT) | (s.status == CURRENT)
        mask &= self.opens_at <= t
        return mask if include_churned else mask & ~s.churned

    def dpd(self, t: float) -> F64:
        """Days past due at time ``t`` (zero or negative before the due date passes)."""
        return np.floor(t - self.observable.due_day)


def bucket_of_dpd(dpd: F64) -> NDArray[np.int8]:
    """Index into ``BUCKETS``: M0 (not past due), M1 1-30, M2 31-60, M3 61-90, M4 91+."""
    # A sum of comparisons: masked assignments are twenty times slower.
    b = (dpd >= 1).astype(np.int8)
    for edge in (31, 61, 91):
        b += dpd >= edge
    return b



def hour_one(t: float) -> float:
    """``hour_of`` for one time, computed the same way (rint of micro-hours), bit for bit."""
    return round((t - math.floor(t)) * 24.0 * 1e6) / 1e6


def hour_of(t: F64 | float) -> F64:
    """Hour of the day of time ``t`` (days), rounded so that ``d + h / 24`` gives back ``h``."""
    # numpy rounds to 6 decimals as rint(x * 1e6) / 1e6; ``hour_one`` mirrors it.
    return np.round((np.asarray(t) - np.floor(t)) * 24.0, 6)
