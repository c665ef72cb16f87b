"""The strategy's view of the book: observable columns of open accounts only.

Built as a fresh DataFrame at each decision epoch from copies of observable arrays, so
a strategy can neither see latent columns nor change the book; only the columns the
strategy names (``Strategy.view_columns``), when it names them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import cached_property

import numpy as np
import pandas as pd

from simulator.book import CURRENT, DELINQUENT, OUTCOMES, PRE_DUE, Book, bucket_of_dpd
from simulator.scenario import BUCKETS, CHANNELS, PRODUCTS

#: Column name -> meaning, as documented in the README.
VIEW_COLUMNS: dict[str, str] = {
    "status": "'pre_due' (statement issued, not yet due) or 'delinquent'; a living book "
              "adds 'current' (owes nothing until its next statement)",
    "dpd": "days past due today, from the oldest unpaid due date (0 on the due date, "
           "negative before the next due date when nothing is past due)",
    "bucket": "delinquency bucket: M0 (not past due), M1 1-30, M2 31-60, M3 61-90, M4 91+",
    "due_day": "the due date dpd counts from: the oldest unpaid one, else the next",
    "amount_due": "amount owed now: past due plus the open statement (0 when current)",
    "amount_delinquent": "amount that fell past due (when the account became delinquent; a "
                         "living book: over the run, every statement missed)",
    "amount_past_due": "amount owed on statements whose due date has passed, late fees "
                       "included",
    "missed_payments": "statements past due and unpaid",
    "next_due_day": "day of the next due date not yet passed (NaN if none)",
    "next_amount_due": "what falls due then: the unpaid part of the open statement, or the "
                       "next instalment when it is not yet issued (0 if none)",
    "balance": "outstanding balance, including instalments not yet due",
    "credit_line": "credit line",
    "paid_so_far": "paid in house so far (one statement: since it was issued; a living "
                   "book: over every statement)",
    "score": "credit score (higher is safer)",
    "prior_delinquencies": "delinquencies on file: earlier ones, and (a living book) each "
                           "episode begun in the run",
    "tenure_months": "months since the account was opened",
    "product": "product scenario: shopping, education, travel or medical",
    "clv_estimate": "the lender's estimate of the customer's lifetime value",
    "contacts_total": "contact attempts executed so far, all channels",
    "contacts_<channel>": "contact attempts executed so far on the channel",
    "last_<channel>": "time (day) of the last executed attempt on the channel; NaN if none",
    "last_outcome": "outcome of the last executed contact: " + ", ".join(OUTCOMES),
    "right_party_contacts": "agent calls that reached the borrower",
    "open_promise": "a promise to pay is open",
    "promise_day": "day the open promise falls due (NaN if none)",
    "promise_amount": "amount of the open promise (0 if none)",
    "promises_made": "promises to pay made so far",
    "promises_broken": "promises to pay broken so far",
    "reachable_<channel>": "the channel is on file and the borrower has not opted out of it",
    "do_not_contact": "the account is on the do-not-contact register",
}


_STATUS = pd.CategoricalDtype(["pre_due", "delinquent"])
_LIVING_STATUS = pd.CategoricalDtype(["current", "pre_due", "delinquent"])
#: ``_LIVING_STATUS`` code of each account status open to contact.
_LIVING_CODE = np.zeros(CURRENT + 1, dtype=np.int8)
_LIVING_CODE[[CURRENT, PRE_DUE, DELINQUENT]] = [0, 1, 2]
_BUCKET = pd.CategoricalDtype(BUCKETS)
_PRODUCT = pd.CategoricalDtype(PRODUCTS)
_OUTCOME = pd.CategoricalDtype(OUTCOMES)


def _categorical(codes: np.ndarray, dtype: pd.CategoricalDtype) -> pd.Categorical:
    # The codes come from the book and are in range by construction: skip the check.
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


class _OpenAccounts:
    """Columns of the open accounts at time ``day``, each gathered at most once.

    Every column handed out is a fresh array (or a view of one), so a strategy can
    neither see latent columns nor change the book.
    """

    def __init__(self, book: Book, day: float, include_churned: bool = True):
        self.s, self.o, self.day = book.state, book.observable, day
        self.plan, self.bills = book.plan, book.state.bills
        self.idx = np.flatnonzero(book.open_mask(day, include_churned))

    def take(self, column: np.ndarray) -> np.ndarray:
        # np.take gathers rows of a 2-D column several times faster than ``column[idx]``.
        return np.take(column, self.idx, axis=0)

    @cached_property
    def due(self) -> np.ndarray:
        """The due date days past due count from."""
        return self.take(self.o.due_day if self.bills is None else self.bills.ref_due)

    @cached_property
    def dpd(self) -> np.ndarray:
        return np.floor(self.day - self.due).astype(np.int64)

    @cached_property
    def status(self) -> np.ndarray:
        return self.take(self.s.status)

    def status_column(self) -> pd.Categorical:
        if self.bills is None:
            return _categorical((self.status == DELINQUENT).astype(np.int8), _STATUS)
        return _categorical(np.take(_LIVING_CODE, self.status), _LIVING_STATUS)

    @cached_property
    def open_statement(self) -> tuple[np.ndarray, np.ndarray]:
        """Whether each account owes a statement not yet due, and its unpaid part."""
        owed = self.take(self.s.owed)
        if self.bills is None:
            pre = self.status == PRE_DUE
            return pre, np.where(pre, owed, 0.0)
        b = self.bills
        billed = self.take(b.billed).astype(np.int64)
        oldest = self.take(b.oldest).astype(np.int64)
        has = self.take(b.missed) < billed - oldest
        only = billed - 1 == oldest
        amount = np.where(only, self.take(b.oldest_left), self.take(self.o.amount_due))
        return has, np.where(has, amount, 0.0)

    def amount_past_due(self) -> np.ndarray:
        owed = self.take(self.s.owed)
        return np.maximum(owed - self.open_statement[1], 0.0) * (self.status == DELINQUENT)

    def missed_payments(self) -> np.ndarray:
        if self.bills is None:
            return (self.status == DELINQUENT).astype(np.int64)
        return self.take(self.bills.missed).astype(np.int64)

    def next_due(self) -> tuple[np.ndarray, np.ndarray]:
        """Day of the next due date not yet passed, and what falls due then."""
        has, amount = self.open_statement
        if self.bills is None or self.plan is None:
            return np.where(has, self.take(self.o.due_day), np.nan), amount
        billed = self.take(self.bills.billed).astype(np.int64)
        # No open statement: the next one to be issued, if the plan has one.
        k = np.where(has, billed - 1, billed)
        more = has | (billed < self.take(self.plan.statements))
        day = self.plan.due(self.idx, k)
        return (np.where(more, day, np.nan),
                np.where(has, amount, np.where(more, self.take(self.o.amount_due), 0.0)))

    def prior_delinquencies(self) -> np.ndarray:
        prior = self.take(self.o.prior_delinquencies)
        if self.bills is None:
            return prior
        return prior + self.take(self.bills.delinquencies)

    @cached_property
    def contacts(self) -> np.ndarray:
        return self.take(self.s.contacts)

    @cached_property
    def last(self) -> np.ndarray:
        last = self.take(self.s.last_contact)
        last[~np.isfinite(last)] = np.nan  # never contacted: NaN (a fresh array)
        return last

    @cached_property
    def promise_open(self) -> np.ndarray:
        return np.isfinite(self.take(self.s.t_promise))

    @cached_property
    def reachable(self) -> np.ndarray:
        return self.take(self.o.on_file) & ~self.take(self.s.opted_out)

    def contacts_total(self) -> np.ndarray:
        # Column by column: ``sum(axis=1)`` over five narrow columns is ten times slower.
        c = self.contacts
        return sum((c[:, k] for k in range(1, len(CHANNELS))), start=c[:, 0].astype(np.int64))


_Column = Callable[[_OpenAccounts], object]


def _on_channel(family: str, c: int) -> _Column:
    """Column ``c`` of one of the per-channel arrays (contacts, last, reachable)."""
    return lambda a: getattr(a, family)[:, c]


#: How each view column is made, in the view's column order.
_COLUMNS: dict[str, _Column] = {
    "status": _OpenAccounts.status_column,
    "dpd": lambda a: a.dpd,
    "bucket": lambda a: _categorical(bucket_of_dpd(a.dpd.astype(float)), _BUCKET),
    "due_day": lambda a: a.due.astype(np.int64),
    "amount_due": lambda a: a.take(a.s.owed),
    "amount_delinquent": lambda a: a.take(a.s.amount_delinquent),
    "amount_past_due": _OpenAccounts.amount_past_due,
    "missed_payments": _OpenAccounts.missed_payments,
    "next_due_day": lambda a: a.next_due()[0],
    "next_amount_due": lambda a: a.next_due()[1],
    "balance": lambda a: a.take(a.s.balance),
    "credit_line": lambda a: a.take(a.o.credit_line),
    "paid_so_far": lambda a: a.take(a.s.paid_in_house),
    "score": lambda a: a.take(a.o.score),
    "prior_delinquencies": _OpenAccounts.prior_delinquencies,
    "tenure_months": lambda a: a.take(a.o.tenure_months),
    "product": lambda a: _categorical(a.take(a.o.product), _PRODUCT),
    "clv_estimate": lambda a: a.take(a.o.clv_estimate),
    "contacts_total": _OpenAccounts.contacts_total,
    **{f"contacts_{name}": _on_channel("contacts", c) for c, name in enumerate(CHANNELS)},
    **{f"last_{name}": _on_channel("last", c) for c, name in enumerate(CHANNELS)},
    "last_outcome": lambda a: _categorical(a.take(a.s.last_outcome), _OUTCOME),
    "right_party_contacts": lambda a: a.take(a.s.right_party_contacts),
    "open_promise": lambda a: a.promise_open,
    "promise_day": lambda a: np.where(a.promise_open, a.take(a.s.t_promise), np.nan),
    "promise_amount": lambda a: np.where(a.promise_open, a.take(a.s.promise_amount), 0.0),
    "promises_made": lambda a: a.take(a.s.promises_made),
    "promises_broken": lambda a: a.take(a.s.promises_broken),
    **{f"reachable_{name}": _on_channel("reachable", c) for c, name in enumerate(CHANNELS)},
    "do_not_contact": lambda a: a.take(a.o.do_not_contact),
}

#: Every column of the view, in order (``VIEW_COLUMNS`` with each channel spelt out).
ALL_COLUMNS: tuple[str, ...] = tuple(_COLUMNS)


def build_view(book: Book, day: float, columns: Collection[str] | None = None,
               include_churned: bool = True) -> pd.DataFrame:
    """Observable state of every open account at time ``day`` (index: account_id).

    ``columns`` limits the view to those columns (names from ``ALL_COLUMNS``, kept in
    the view's order); None gives them all. Churned customers who still owe are in it
    unless ``include_churned`` is false (the scenario stops contact after churn).
    """
    accounts = _OpenAccounts(book, day, include_churned)
    names = ALL_COLUMNS if columns is None else [c for c in ALL_COLUMNS if c in columns]
    data = {name: _COLUMNS[name](accounts) for name in names}
    # Every column is a fresh array gathered above, so the frame need not copy it again.
    return pd.DataFrame(data, index=pd.Index(accounts.idx, name="account_id"), copy=False)
