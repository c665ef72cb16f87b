"""Targets: the portfolio aggregates a calibration fits, by one extractor for both sides.

``contributions`` computes every target from a ``Portfolio`` (the tables of
``simulator.portfolio``): a lender's data read from files, or a simulated book converted
into the same tables by ``portfolio_from_run``, so that observed and simulated targets
can never differ in definition. Inside a calibration trial the adapter and the
extractor run in the worker on the run's in-memory results (``simulated_targets``, a
cell extractor), so only the targets travel.

Days are whole days from ``as_of`` (the first day the data do not cover; day -1 is the
last day covered). Statements are paid oldest first: statement ``i`` of an account is
**settled** on the first day at which the account's payments since its first statement
cover every amount due up to and including statement ``i`` (half a cent short counts).
A statement's days past due on day ``d`` are ``d - due_day``. Every target is a share:
a sum over accounts of a numerator over a sum of a denominator, so that its standard
error is a bootstrap over accounts (resampling whole accounts, with all their
statements, payments and contacts). Definitions (docs/portfolio-data.md, "Targets"):

* ``delinquency_rate``: statements whose due date passed unpaid / statements due
  (due day <= -1);
* ``paid_by_due_minus_<k>``: statements settled at least ``k`` days before their due
  date / statements due: the payment timing in the pre-due window;
* ``cure_<k>``: delinquent statements settled before reaching ``k`` days past due /
  delinquent statements due at least ``k`` days before ``as_of``: the cure curve (by
  default at 2, 3, 5, 7, 10, 15, 30, 60 and 90 days: the early days separate how fast a
  segment's impulse decays from how large the segment is);
* ``any_payment_<k>``: delinquent statements whose account paid something (in part or in
  full) after the due date and before the statement reached ``k`` days past due /
  delinquent statements due at least ``k`` days before ``as_of`` (by default at 10, 30
  and 60 days): the partial payments a cure does not see, which tell a segment that pays
  often but little from one that does not pay;
* ``roll_m<k>_m<k+1>``: accounts in bucket M<k> at one month-end and in M<k+1> at the
  next / accounts in M<k> at a month-end, over consecutive month-ends (month-ends every
  30 days back from ``as_of``; an account's bucket is that of its oldest unpaid
  statement: M1 1-30, M2 31-60, M3 61-90, M4 91 and more days past due);
* ``rpc_rate``: agent calls that reached the right party (a promise included) / agent
  calls (contacts data);
* ``promise_rate``: right-party agent calls ending in a promise / right-party agent
  calls (contacts data);
* ``promise_kept_rate``: promises whose amount was paid from the day of the call to the
  promised date / promises whose date is known and before ``as_of`` (contacts data);
* with score bands, ``delinquency_rate`` and ``cure_30`` by band of the account's score,
  named ``<target>.score_<band>``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simulator.engine import Results
from simulator.errors import UserError
from simulator.experiments.outputs import atomic_write
from simulator.portfolio import CENT_TOLERANCE, OUTCOMES, Portfolio, read_portfolio
from simulator.recorder import PAY_AGENCY
from simulator.scenario import CHANNELS, Scenario, read_yaml
from simulator.scenario.schema import Billing

CURE_DAYS: tuple[int, ...] = (2, 3, 5, 7, 10, 15, 30, 60, 90)
#: Days past due of ``any_payment_<k>``: partial payments, which a cure does not count.
PAYMENT_DAYS: tuple[int, ...] = (10, 30, 60)
TIMING_DAYS: tuple[int, ...] = (7, 3, 1)
#: Days between two month-ends of the roll rates: the 30-day buckets.
MONTH_DAYS = 30
#: Bucket edges in days past due: M1 from 1, M2 from 31, M3 from 61, M4 from 91.
BUCKET_EDGES: tuple[int, ...] = (1, 31, 61, 91)
#: The targets also computed by score band, by default (with score bands).
BAND_TARGETS: tuple[str, ...] = ("delinquency_rate", "cure_30")
#: Targets that only the contacts data define.
CONTACT_TARGETS: tuple[str, ...] = ("rpc_rate", "promise_rate", "promise_kept_rate")
#: Bootstrap resamples behind each standard error, by default.
RESAMPLES = 200
#: The file kind written at the top of a targets file.
TARGETS_KIND = "contactsim-targets"


@dataclass(frozen=True)
class Definition:
    """What the extractor computes: the cure-curve days, the pre-due timing days, the
    score bands (cut points; empty: no bands) and the targets computed by band too."""

    cure_days: tuple[int, ...] = CURE_DAYS
    timing_days: tuple[int, ...] = TIMING_DAYS
    score_bands: tuple[float, ...] = ()
    band_targets: tuple[str, ...] = BAND_TARGETS
    payment_days: tuple[int, ...] = PAYMENT_DAYS

    def params(self) -> dict[str, Any]:
        """As JSON data (part of a calibration cell's key)."""
        return {"cure_days": list(self.cure_days), "timing_days": list(self.timing_days),
                "payment_days": list(self.payment_days),
                "score_bands": [float(x) for x in self.score_bands],
                "band_targets": list(self.band_targets)}

    @classmethod
    def from_params(cls, data: Mapping[str, Any]) -> Definition:
        return cls(cure_days=tuple(int(x) for x in data.get("cure_days", CURE_DAYS)),
                   timing_days=tuple(int(x) for x in data.get("timing_days", TIMING_DAYS)),
                   score_bands=tuple(float(x) for x in data.get("score_bands", ())),
                   band_targets=tuple(str(x) for x in data.get("band_targets",
                                                               BAND_TARGETS)),
                   payment_days=tuple(int(x) for x in data.get("payment_days",
                                                               PAYMENT_DAYS)))

    def target_names(self, contacts: bool) -> list[str]:
        """The names ``extract`` gives its targets, in its order (the contact targets only
        with a contacts table)."""
        names = ["delinquency_rate", *(f"paid_by_due_minus_{k}" for k in self.timing_days),
                 *(f"cure_{k}" for k in self.cure_days),
                 *(f"any_payment_{k}" for k in self.payment_days),
                 *(f"roll_m{k}_m{k + 1}" for k in (1, 2, 3))]
        if contacts:
            names += list(CONTACT_TARGETS)
        base = set(names)
        names += [f"{target}.score_{label}" for label in self.band_names()
                  for target in self.band_targets if target in base]
        return names

    def band_names(self) -> list[str]:
        """``lt_600``, ``600_700``, ``ge_700`` for cuts 600 and 700."""
        cuts = [_num(c) for c in self.score_bands]
        if not cuts:
            return []
        return ([f"lt_{cuts[0]}"] + [f"{a}_{b}" for a, b in itertools.pairwise(cuts)]
                + [f"ge_{cuts[-1]}"])


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass
class Contributions:
    """Each account's numerator and denominator of every target (accounts x targets)."""

    names: list[str]
    num: np.ndarray
    den: np.ndarray

    def values(self) -> np.ndarray:
        """Each target: the sum of numerators over the sum of denominators (NaN if 0)."""
        num, den = self.num.sum(axis=0), self.den.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def counts(self) -> np.ndarray:
        """Each target's denominator: how many statements, accounts, calls or promises."""
        return self.den.sum(axis=0)


# --------------------------------------------------------------------------- extractor


def _grouped_cumsum(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cumulative sums within runs of equal ``groups`` (sorted), exact within each group."""
    if values.size == 0:
        return values.astype(float)
    return pd.Series(values).groupby(groups, sort=False).cumsum().to_numpy(dtype=float)


def settled_days(st_acc: np.ndarray, st_due: np.ndarray, st_amount: np.ndarray,
                 pay_acc: np.ndarray, pay_day: np.ndarray, pay_amount: np.ndarray
                 ) -> np.ndarray:
    """The day each statement was settled (inf: not within the data), oldest first.

    Statement ``i`` is settled on the day of the first payment of its account at which
    the payments so far cover every amount due up to and including it. Found for all
    statements at once: thresholds and running totals of every account in one sorted
    order, each statement followed by the first payment at or above its threshold.
    """
    ns, npay = st_acc.size, pay_acc.size
    out = np.full(ns, np.inf)
    if ns == 0 or npay == 0:
        return out
    so = np.lexsort((st_due, st_acc))
    threshold = _grouped_cumsum(st_acc[so], st_amount[so]) - CENT_TOLERANCE
    po = np.lexsort((pay_day, pay_acc))
    paid = _grouped_cumsum(pay_acc[po], pay_amount[po])
    acc = np.concatenate([st_acc[so], pay_acc[po]])
    value = np.concatenate([threshold, paid])
    kind = np.concatenate([np.zeros(ns, dtype=np.int8), np.ones(npay, dtype=np.int8)])
    order = np.lexsort((kind, value, acc))  # at a tie the statement comes first
    total = order.size
    is_pay = kind[order] == 1
    nxt = np.where(is_pay, np.arange(total), total)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    pos_of_statement = np.empty(ns, dtype=np.int64)
    st_pos = np.flatnonzero(~is_pay)
    pos_of_statement[order[st_pos]] = st_pos
    j = nxt[pos_of_statement]
    found = j < total
    jj = np.where(found, j, 0)
    pay_index = order[jj] - ns
    same = found & (acc[order[jj]] == st_acc[so])
    days = np.where(same, pay_day[po][np.clip(pay_index, 0, npay - 1)], np.inf)
    out[so] = days
    return out


def first_payment_after(st_acc: np.ndarray, st_due: np.ndarray, pay_acc: np.ndarray,
                        pay_day: np.ndarray) -> np.ndarray:
    """Per statement, the day of its account's first payment after its due day (inf:
    none within the data): one sorted search of (account, day) keys."""
    out = np.full(st_acc.size, np.inf)
    if st_acc.size == 0 or pay_acc.size == 0:
        return out
    low = float(min(pay_day.min(), st_due.min())) - 1.0
    span = float(max(pay_day.max(), st_due.max())) - low + 2.0
    keys = np.sort(pay_acc * span + (pay_day - low))
    i = np.searchsorted(keys, st_acc * span + (st_due - low), side="right")
    hit = keys[np.minimum(i, keys.size - 1)]
    ok = (i < keys.size) & (np.floor(hit / span) == st_acc)
    out[ok] = hit[ok] - st_acc[ok] * span + low
    return out


def _buckets(dpd: np.ndarray) -> np.ndarray:
    b = np.zeros(dpd.shape, dtype=np.int8)
    for edge in BUCKET_EDGES:
        b += dpd >= edge
    return b


def buckets_at(n: int, st_acc: np.ndarray, st_due: np.ndarray, settled: np.ndarray,
               days: Sequence[float]) -> np.ndarray:
    """Each account's bucket (0 M0 ... 4 M4) at the start of each of ``days``: that of its
    oldest statement past due and not settled on an earlier day (days x accounts)."""
    out = np.zeros((len(days), n), dtype=np.int8)
    for i, s in enumerate(days):
        unpaid = (st_due < s) & (settled >= s)
        oldest = np.full(n, np.inf)
        np.minimum.at(oldest, st_acc[unpaid], st_due[unpaid])
        out[i] = _buckets(np.where(np.isfinite(oldest), s - oldest, 0.0))
    return out


def portfolio_buckets(p: Portfolio, days: Sequence[float]) -> np.ndarray:
    """``buckets_at`` for the accounts of ``p`` (in the order of ``p.accounts``)."""
    index = pd.Index(p.accounts["account_id"])
    st = p.statements[p.statements["amount_due"].to_numpy(dtype=float) > CENT_TOLERANCE]
    st_acc = index.get_indexer(st["account_id"]).astype(np.int64)
    st_due = st["due_day"].to_numpy(dtype=float)
    settled = settled_days(st_acc, st_due, st["amount_due"].to_numpy(dtype=float),
                           index.get_indexer(p.payments["account_id"]).astype(np.int64),
                           p.payments["day"].to_numpy(dtype=float),
                           p.payments["amount"].to_numpy(dtype=float))
    return buckets_at(len(index), st_acc, st_due, settled, days)


def _paid_between(acc_sorted_keys: np.ndarray, cum: np.ndarray, acc: np.ndarray,
                  days_from: np.ndarray, days_to: np.ndarray, span: int, low: int
                  ) -> np.ndarray:
    """Per query, the payments of account ``acc`` on days ``days_from..days_to``."""

    def upto(day: np.ndarray) -> np.ndarray:
        key = acc * span + (day - low)
        i = np.searchsorted(acc_sorted_keys, key, side="right") - 1
        ok = (i >= 0) & ((acc_sorted_keys[np.maximum(i, 0)] // span) == acc)
        return np.where(ok, cum[np.maximum(i, 0)], 0.0)

    return upto(days_to) - upto(days_from - 1)


def contributions(p: Portfolio, d: Definition) -> Contributions:
    """Every target's numerator and denominator, per account of ``p``."""
    index = pd.Index(p.accounts["account_id"])
    n = len(index)
    st = p.statements[p.statements["amount_due"].to_numpy(dtype=float) > CENT_TOLERANCE]
    st_acc = index.get_indexer(st["account_id"]).astype(np.int64)
    st_due = st["due_day"].to_numpy(dtype=float)
    pay_acc = index.get_indexer(p.payments["account_id"]).astype(np.int64)
    pay_day = p.payments["day"].to_numpy(dtype=float)
    pay_amount = p.payments["amount"].to_numpy(dtype=float)
    settled = settled_days(st_acc, st_due, st["amount_due"].to_numpy(dtype=float),
                           pay_acc, pay_day, pay_amount)
    settle_dpd = settled - st_due
    due = st_due <= -1
    delinquent = due & (settle_dpd > 0)

    names: list[str] = []
    nums: list[np.ndarray] = []
    dens: list[np.ndarray] = []

    def per_account(rows: np.ndarray, acc: np.ndarray) -> np.ndarray:
        return np.bincount(acc[rows], minlength=n).astype(float)

    def add(name: str, num_rows: np.ndarray, den_rows: np.ndarray, acc: np.ndarray) -> None:
        names.append(name)
        nums.append(per_account(num_rows & den_rows, acc))
        dens.append(per_account(den_rows, acc))

    add("delinquency_rate", delinquent, due, st_acc)
    for k in d.timing_days:
        add(f"paid_by_due_minus_{k}", settle_dpd <= -k, due, st_acc)
    for k in d.cure_days:
        add(f"cure_{k}", settle_dpd < k, delinquent & (st_due + k <= 0), st_acc)
    if d.payment_days:
        paid_dpd = first_payment_after(st_acc, st_due, pay_acc, pay_day) - st_due
        for k in d.payment_days:
            add(f"any_payment_{k}", paid_dpd < k, delinquent & (st_due + k <= 0), st_acc)

    # Month-ends every 30 days back from as_of, from the first due date on.
    first = float(st_due.min()) if st_due.size else 0.0
    ends = sorted(-MONTH_DAYS * j for j in range(0, 10_000) if -MONTH_DAYS * j >= first)
    buckets = list(buckets_at(n, st_acc, st_due, settled, ends))
    for k in (1, 2, 3):
        num = np.zeros(n)
        den = np.zeros(n)
        for before, after in itertools.pairwise(buckets):
            was = before == k
            den += was
            num += was & (after == k + 1)
        names.append(f"roll_m{k}_m{k + 1}")
        nums.append(num)
        dens.append(den)

    if p.contacts is not None:
        c = p.contacts
        c_acc = index.get_indexer(c["account_id"]).astype(np.int64)
        outcome = c["outcome"].astype(str).to_numpy()
        call = (c["channel"].astype(str) == "agent_call").to_numpy()
        reached = np.isin(outcome, ["right_party", "promise"])
        promise = outcome == "promise"
        add("rpc_rate", reached, call, c_acc)
        add("promise_rate", promise, call & reached, c_acc)
        c_day = np.floor(c["day"].to_numpy(dtype=float))
        p_day = c["promise_day"].to_numpy(dtype=float)
        resolved = promise & np.isfinite(p_day) & (p_day <= -1)
        kept = np.zeros(len(c), dtype=bool)
        if resolved.any() and pay_acc.size:
            low = int(min(pay_day.min(), c_day.min())) - 2
            span = int(max(pay_day.max(), np.nanmax(p_day[resolved]))) - low + 3
            keys = pay_acc * span + (pay_day.astype(np.int64) - low)
            order = np.argsort(keys, kind="stable")
            cum = _grouped_cumsum(pay_acc[order], pay_amount[order])
            rows = np.flatnonzero(resolved)
            got = _paid_between(keys[order], cum, c_acc[rows], c_day[rows].astype(np.int64),
                                p_day[rows].astype(np.int64), span, low)
            amount = c["promise_amount"].to_numpy(dtype=float)[rows]
            kept[rows] = got >= amount - CENT_TOLERANCE
        add("promise_kept_rate", kept, resolved, c_acc)

    if d.score_bands:
        score = p.accounts["score"].to_numpy(dtype=float)
        band = np.searchsorted(np.asarray(d.score_bands, dtype=float), score, side="right")
        base = {name: i for i, name in enumerate(names)}
        for b, label in enumerate(d.band_names()):
            inside = (band == b).astype(float)
            for target in d.band_targets:
                if target in base:
                    names.append(f"{target}.score_{label}")
                    nums.append(nums[base[target]] * inside)
                    dens.append(dens[base[target]] * inside)
    return Contributions(names, np.column_stack(nums), np.column_stack(dens))


def bootstrap(c: Contributions, resamples: int, seed: int) -> np.ndarray | None:
    """``resamples`` bootstrap values of every target (resamples x targets), resampling
    whole accounts with replacement (multinomial weights, drawn in chunks); None with
    fewer than two accounts or resamples."""
    n = c.num.shape[0]
    if n < 2 or resamples < 2:
        return None
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, 4_000_000 // n))
    stats = []
    done = 0
    while done < resamples:
        k = min(chunk, resamples - done)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=k).astype(float)
        num, den = w @ c.num, w @ c.den
        with np.errstate(invalid="ignore", divide="ignore"):
            stats.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))
        done += k
    return np.vstack(stats)


def bootstrap_se(boot: np.ndarray | None, targets: int) -> np.ndarray:
    """Standard error of each target: the spread of its bootstrap values."""
    se = np.full(targets, np.nan)
    if boot is None:
        return se
    for j in range(boot.shape[1]):
        finite = boot[np.isfinite(boot[:, j]), j]
        if finite.size >= 2:
            se[j] = float(np.std(finite, ddof=1))
    return se


def bootstrap_correlation(boot: np.ndarray | None, targets: int) -> np.ndarray:
    """Correlation of the targets' bootstrap values (pairwise over the resamples where
    both are defined; 0 where a target does not vary, 1 on the diagonal). The targets of
    one portfolio share their statements (the cure curve's days are cumulative; a band's
    target is part of the whole's), so their errors are correlated and a calibration's
    bootstrap must draw them together."""
    r = np.eye(targets)
    if boot is None:
        return r
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        corr = pd.DataFrame(boot).corr(min_periods=2).to_numpy(dtype=float)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


@dataclass
class TargetSet:
    """Targets with their standard errors and counts, and where they came from."""

    values: dict[str, float]
    se: dict[str, float]
    counts: dict[str, float]
    accounts: int
    has_contacts: bool
    definition: Definition
    source: str = ""
    as_of: str | None = None
    resamples: int = RESAMPLES
    seed: int = 0
    #: The targets' bootstrap correlation (targets x targets, in the order of ``values``);
    #: None: unknown, taken as independent.
    correlation: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": TARGETS_KIND,
            "source": self.source,
            "as_of": self.as_of,
            "accounts": int(self.accounts),
            "contacts": bool(self.has_contacts),
            "definition": self.definition.params(),
            "bootstrap": {"resamples": int(self.resamples), "seed": int(self.seed)},
            "targets": {name: {"value": _clean(self.values[name]), "se": _clean(self.se[name]),
                               "count": int(self.counts[name])} for name in self.values},
            **({} if self.correlation is None else {"correlation": [
                [round(float(x), 4) for x in row] for row in self.correlation]}),
        }


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def extract(p: Portfolio, d: Definition, resamples: int = RESAMPLES, seed: int = 0,
            correlation: bool = True) -> TargetSet:
    """Every target of ``p`` with its bootstrap standard error and count, and (unless
    ``correlation`` is false) the bootstrap correlation of the targets."""
    c = contributions(p, d)
    values, counts = c.values(), c.counts()
    boot = bootstrap(c, resamples, seed)
    se = bootstrap_se(boot, len(c.names))
    return TargetSet(
        values=dict(zip(c.names, values.tolist(), strict=True)),
        se=dict(zip(c.names, se.tolist(), strict=True)),
        counts=dict(zip(c.names, counts.tolist(), strict=True)),
        accounts=len(p.accounts), has_contacts=p.has_contacts, definition=d,
        source=p.source, as_of=None if p.as_of is None else f"{p.as_of:%Y-%m-%d}",
        resamples=resamples, seed=seed,
        correlation=bootstrap_correlation(boot, len(c.names)) if correlation else None)


# --------------------------------------------------------------------------- the adapter

#: Contact outcome codes of the event log (simulator.book.OUTCOMES) as the lender records
#: them: a message read or a call that rang is "delivered" (reading is not observable).
_OUTCOMES_BY_CODE = np.array(["delivered", "undelivered", "delivered", "delivered",
                              "delivered", "right_party", "promise"], dtype=object)


def as_of_day(horizon: float) -> int:
    """The first day a simulation does not cover: the horizon (rounded up)."""
    return math.ceil(horizon)


def _run_statements(accounts: pd.DataFrame, end: int, cycle_days: float | None
                    ) -> pd.DataFrame:
    """The simulated book's statements, in days from ``as_of``.

    Everything that depends on how statements appear in a simulation's outputs is here.
    In the single-statement model every account has one statement, its instalment
    ``amount_due`` due on ``due_day`` (accounts.parquet). In a living book (the accounts
    table has ``statements_billed``) statement ``k`` of an account, for ``k`` below its
    ``statements_billed``, bills the same instalment and falls due ``k`` cycles after its
    ``first_due_day`` (statement 0: the oldest unpaid one of an account in arrears on day 0;
    docs/model.md section 2.5), unless the account was charged off before it fell due
    (charge-off writes the whole balance off: that statement never falls due). Late fees
    are not statements: with a late fee the model's oldest statement takes its fee
    before the next one is paid, which these statements do not see (the schema's default
    fee is 0).
    """
    acc = accounts["account_id"].to_numpy()
    due = accounts["due_day"].to_numpy(dtype=float) - end
    amount = accounts["amount_due"].to_numpy(dtype=float)
    if "statements_billed" not in accounts.columns:
        return pd.DataFrame({"account_id": acc, "due_day": due, "amount_due": amount})
    if cycle_days is None:
        raise ValueError("a living book's statements need its cycle (cycle_days)")
    billed = accounts["statements_billed"].to_numpy(dtype=np.int64)
    due = accounts["first_due_day"].to_numpy(dtype=float) - end
    rows = np.repeat(np.arange(acc.size), billed)
    k = np.arange(rows.size) - np.repeat(np.cumsum(billed) - billed, billed)
    st_due = due[rows] + k * cycle_days
    # A statement falls due at the end of its due day (+ 1).
    charged = accounts["t_charged_off"].to_numpy(dtype=float)[rows] - end
    keep = st_due + 1.0 <= charged
    return pd.DataFrame({"account_id": acc[rows][keep], "due_day": st_due[keep],
                         "amount_due": amount[rows][keep]})


def portfolio_from_run(accounts: pd.DataFrame, events: pd.DataFrame, horizon: float,
                       source: str = "simulation", cycle_days: float | None = None
                       ) -> Portfolio:
    """One run's book as a portfolio: its accounts, its statements, its in-house payments
    (the agency's collections after charge-off are not the lender's payments) and its
    contacts, every time in days from the horizon (``as_of``). ``cycle_days``: the
    billing cycle of a living book (its statements are rebuilt from the accounts table;
    see ``_run_statements``)."""
    end = as_of_day(horizon)
    kind = events["event"].astype(str).to_numpy()
    t = events["t"].to_numpy(dtype=float)
    acc = events["account_id"].to_numpy()
    code = events["code"].to_numpy()
    amount = events["amount"].to_numpy(dtype=float)
    pay = (kind == "payment") & (code != PAY_AGENCY) & (t < end)
    payments = pd.DataFrame({"account_id": acc[pay], "day": np.floor(t[pay]) - end,
                             "amount": amount[pay]})
    contact = (kind == "contact") & (t < end)
    outcome = _OUTCOMES_BY_CODE[np.clip(code[contact], 0, len(_OUTCOMES_BY_CODE) - 1)]
    channel = events["channel"].astype(str).to_numpy()[contact]
    promise_amount = np.full(int(contact.sum()), np.nan)
    promise_day = np.full(int(contact.sum()), np.nan)
    promised = outcome == "promise"
    if promised.any():
        # The k-th promise of an account is resolved by its k-th kept or broken event
        # (an account holds one open promise at a time; charge-off ends one unresolved).
        made = kind == "promise"
        resolved = np.isin(kind, ["promise_kept", "promise_broken"])
        made_rank = pd.Series(acc[made]).groupby(acc[made]).cumcount().to_numpy()
        res_rank = pd.Series(acc[resolved]).groupby(acc[resolved]).cumcount().to_numpy()
        res_day = pd.Series(np.floor(t[resolved]) - end,
                            index=pd.MultiIndex.from_arrays([acc[resolved], res_rank]))
        made_amount = pd.Series(amount[made],
                                index=pd.MultiIndex.from_arrays([acc[made], made_rank]))
        c_acc = acc[contact][promised]
        c_rank = pd.Series(c_acc).groupby(c_acc).cumcount().to_numpy()
        keys = pd.MultiIndex.from_arrays([c_acc, c_rank])
        promise_amount[promised] = made_amount.reindex(keys).to_numpy(dtype=float)
        found = res_day.reindex(keys).to_numpy(dtype=float)
        promise_day[promised] = np.where(found < 0, found, np.nan)
    contacts = pd.DataFrame({
        "account_id": acc[contact], "day": t[contact] - end,
        "channel": pd.Categorical(channel, categories=list(CHANNELS)),
        "outcome": pd.Categorical(outcome, categories=list(OUTCOMES)),
        "promise_amount": promise_amount, "promise_day": promise_day})
    accounts_table = pd.DataFrame({
        "account_id": accounts["account_id"].to_numpy(),
        "score": accounts["score"].to_numpy(dtype=float),
        "balance": accounts["balance_start"].to_numpy(dtype=float),
        "amount_due": accounts["amount_due"].to_numpy(dtype=float)})
    return Portfolio(accounts=accounts_table, statements=_run_statements(accounts, end, cycle_days),
                     payments=payments, contacts=contacts, as_of=None, source=source)


def billing_cycle(billing: Billing) -> float | None:
    """The billing cycle (days) of a living book, None without monthly statements."""
    return float(billing.cycle_days) if billing.enabled else None


def simulated_targets(results: Results, scenario: Scenario,
                      params: Mapping[str, Any]) -> dict[str, Any]:
    """A calibration cell's extractor: the run's targets, standard errors and counts.

    ``params``: ``definition`` (``Definition.params()``), ``resamples`` and
    ``seed`` of the bootstrap.
    """
    p = portfolio_from_run(results.accounts, results.events, scenario.horizon_days,
                           cycle_days=billing_cycle(scenario.population.billing))
    found = extract(p, Definition.from_params(params.get("definition", {})),
                    int(params.get("resamples", RESAMPLES)), int(params.get("seed", 0)),
                    correlation=False)
    return {"values": found.values, "se": found.se, "counts": found.counts}


# --------------------------------------------------------------------------- folders


def read_run_folder(folder: Path, strategy: str | None, replication: int | None
                    ) -> Portfolio:
    """The portfolio of one arm and replication of a ``contactsim run`` output folder."""
    needed = ("accounts.parquet", "scenario.resolved.yaml")
    for name in needed:
        if not (folder / name).is_file():
            raise UserError(f"no {name} (expected a portfolio folder or the output folder "
                            "of contactsim run)", source=str(folder))
    if not (folder / "events.parquet").is_file():
        raise UserError("no events.parquet: the run was written with --no-events, and its "
                        "payments and contacts are in the event log", source=str(folder))
    scenario = read_yaml(folder / "scenario.resolved.yaml")
    horizon = scenario.get("horizon_days")
    if not isinstance(horizon, int | float):
        raise UserError("no horizon_days", source=str(folder / "scenario.resolved.yaml"))
    try:
        accounts = pd.read_parquet(folder / "accounts.parquet")
        events = pd.read_parquet(folder / "events.parquet")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read a table ({' '.join(str(exc).split())})",
                        source=str(folder)) from None
    arms = list(dict.fromkeys(accounts["strategy"].astype(str)))
    if strategy is None:
        if len(arms) > 1:
            raise UserError(f"the run has several arms ({', '.join(arms)}): name one with "
                            "--strategy", source=str(folder))
        strategy = arms[0]
    elif strategy not in arms:
        raise UserError(f"no arm '{strategy}' in the run (it has {', '.join(arms)})",
                        source="--strategy")
    reps = sorted(set(accounts["replication"].astype(int)))
    if replication is None:
        replication = reps[0]
    elif replication not in reps:
        raise UserError(f"no replication {replication} in the run (it has "
                        f"{', '.join(map(str, reps))})", source="--replication")
    a = accounts[(accounts["strategy"].astype(str) == strategy)
                 & (accounts["replication"] == replication)]
    e = events[(events["strategy"].astype(str) == strategy)
               & (events["replication"] == replication)]
    billing = Billing.model_validate((scenario.get("population") or {}).get("billing") or {})
    return portfolio_from_run(a.reset_index(drop=True), e.reset_index(drop=True),
                              float(horizon), source=f"{folder} ({strategy}, replication "
                                                     f"{replication})",
                              cycle_days=billing_cycle(billing))


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is the output folder of ``contactsim run`` (not a portfolio)."""
    return (folder / "scenario.resolved.yaml").is_file() and (folder / "kpis.csv").is_file()


def read_any(folder: Path, strategy: str | None = None, replication: int | None = None
             ) -> Portfolio:
    """A portfolio folder, or a simulation's output folder through the adapter."""
    if is_run_folder(folder):
        return read_run_folder(folder, strategy, replication)
    if strategy is not None or replication is not None:
        raise UserError("--strategy and --replication choose an arm of a simulation's "
                        "output folder, not of a portfolio", source="--strategy")
    return read_portfolio(folder)


# --------------------------------------------------------------------------- files


def write_targets(path: Path, targets: TargetSet) -> None:
    """Write a targets file atomically."""
    text = yaml.safe_dump(targets.to_dict(), sort_keys=False, allow_unicode=True)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def load_targets(path: str | Path) -> TargetSet:
    """Read a targets file written by ``contactsim targets`` (one-line errors)."""
    source = str(path)
    data = read_yaml(path)
    if data.get("kind") != TARGETS_KIND:
        raise UserError(f"not a targets file (expected kind: {TARGETS_KIND}, written by "
                        "contactsim targets)", source=source, field="kind")
    raw = data.get("targets")
    if not isinstance(raw, dict) or not raw:
        raise UserError("no targets", source=source, field="targets")
    definition = data.get("definition") or {}
    if not isinstance(definition, dict):
        raise UserError("expected a mapping", source=source, field="definition")
    try:
        d = Definition.from_params(definition)
    except (TypeError, ValueError):
        raise UserError("expected cure_days, timing_days and score_bands as lists of "
                        "numbers", source=source, field="definition") from None
    contacts = bool(data.get("contacts"))
    known = d.target_names(contacts)
    values: dict[str, float] = {}
    se: dict[str, float] = {}
    counts: dict[str, float] = {}
    for name, entry in raw.items():
        where = f"targets.{name}"
        if str(name) not in known:
            raise UserError(f"not a target of this definition (expected one of "
                            f"{', '.join(known)})", source=source, field=where)
        if not isinstance(entry, dict) or not {"value", "se", "count"} <= set(entry):
            raise UserError("expected value, se and count", source=source, field=where)
        for key in ("value", "se", "count"):
            x = entry[key]
            if x is not None and (isinstance(x, bool) or not isinstance(x, int | float)):
                raise UserError(f"expected a number, got {x!r}", source=source,
                                field=f"{where}.{key}")
        value = math.nan if entry["value"] is None else float(entry["value"])
        if math.isfinite(value) and not 0.0 <= value <= 1.0:
            raise UserError(f"expected a share in [0, 1], got {value}", source=source,
                            field=f"{where}.value")
        for key in ("se", "count"):
            x = entry[key]
            if x is not None and not (float(x) >= 0.0 or math.isnan(float(x))):
                raise UserError(f"expected a number >= 0, got {x!r}", source=source,
                                field=f"{where}.{key}")
        values[str(name)] = value
        se[str(name)] = math.nan if entry["se"] is None else float(entry["se"])
        counts[str(name)] = float(entry["count"] or 0)
    boot = data.get("bootstrap") or {}
    if not isinstance(boot, dict):
        raise UserError("expected a mapping", source=source, field="bootstrap")
    correlation = _correlation(data.get("correlation"), len(values), source)
    return TargetSet(values=values, se=se, counts=counts, correlation=correlation,
                     accounts=_whole(data.get("accounts", 0), source, "accounts"),
                     has_contacts=contacts, definition=d,
                     source=str(data.get("source") or ""), as_of=data.get("as_of"),
                     resamples=_whole(boot.get("resamples", RESAMPLES), source,
                                      "bootstrap.resamples"),
                     seed=_whole(boot.get("seed", 0), source, "bootstrap.seed"))


def _correlation(raw: Any, targets: int, source: str) -> np.ndarray | None:
    """A targets file's ``correlation``: None if absent, else a symmetric matrix with
    one row per target (in the file's order) of numbers in [-1, 1] and ones on the
    diagonal (one-line errors)."""
    if raw is None:
        return None
    expected = (f"expected {targets} rows of {targets} numbers in [-1, 1], one per target "
                "in the order of targets (written by contactsim targets)")
    if not isinstance(raw, list) or len(raw) != targets:
        raise UserError(expected, source=source, field="correlation")
    r = np.eye(targets)
    for i, row in enumerate(raw):
        if not isinstance(row, list) or len(row) != targets:
            raise UserError(expected, source=source, field=f"correlation[{i}]")
        for j, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, int | float) or not -1 <= x <= 1:
                raise UserError(f"expected a number in [-1, 1], got {x!r}", source=source,
                                field=f"correlation[{i}][{j}]")
            r[i, j] = float(x)
    if not np.allclose(np.diag(r), 1.0) or not np.allclose(r, r.T, atol=1e-3):
        raise UserError("expected a symmetric matrix with ones on the diagonal",
                        source=source, field="correlation")
    return r


def _whole(x: Any, source: str, field: str) -> int:
    """``x`` as a whole number >= 0, or a one-line error naming the file and the field."""
    if x is None:
        return 0
    if isinstance(x, bool) or not isinstance(x, int | float) or x < 0 or x != int(x):
        raise UserError(f"expected a whole number >= 0, got {x!r}", source=source,
                        field=field)
    return int(x)
