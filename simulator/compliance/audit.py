"""An independent audit of executed contacts against a rule pack.

Written from the event log alone, with no code shared with the rules the engine
enforces, so a bug in the gate shows up as a violation here instead of hiding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.book import OUTCOME_INDEX, Book, hour_of

_ANSWERED = (OUTCOME_INDEX["right_party"], OUTCOME_INDEX["promise"])
_DELIVERED_MESSAGE = (OUTCOME_INDEX["delivered"], OUTCOME_INDEX["read"])
_CALLS = ("robocall", "agent_call")


def _window_counts(account: np.ndarray, day: np.ndarray, days: int) -> np.ndarray:
    """For rows sorted by (account, time): how many rows of the same account fall in
    the ``days``-day window ending on this row's day, up to and including this row."""
    if account.size == 0:
        return np.zeros(0, dtype=np.int64)
    key = account.astype(np.int64) * 1_000_000 + day.astype(np.int64)
    lo = np.searchsorted(key, key - (days - 1), side="left")
    return np.arange(key.size) - lo + 1


def _over_cap(account: np.ndarray, t: np.ndarray, days: int, limit: int) -> int:
    """Contacts that make their account exceed ``limit`` in some ``days``-day window."""
    order = np.lexsort((t, account))  # by account, then time; stable
    counts = _window_counts(account[order], np.floor(t[order]), days)
    return int((counts > limit).sum())


def _opt_outs(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The first opt-out of each (account, channel) pair: keys ``account * 64 +
    channel``, sorted, and their times."""
    rows = (events["event"] == "opt_out").to_numpy()
    if not rows.any():
        return np.empty(0, dtype=np.int64), np.empty(0)
    opt_channel = events["channel"].cat.codes.to_numpy()[rows].astype(np.int64)
    opt_key = events["account_id"].to_numpy()[rows] * 64 + opt_channel
    opt_t = events["t"].to_numpy()[rows]
    order = np.lexsort((opt_t, opt_key))
    opt_key, opt_t = opt_key[order], opt_t[order]
    first = np.r_[True, opt_key[1:] != opt_key[:-1]]
    return opt_key[first], opt_t[first]


def _first_opt_out(opt_outs: tuple[np.ndarray, np.ndarray], account: np.ndarray,
                   channel: np.ndarray) -> np.ndarray:
    """Time of the first opt-out of each (account, channel) pair given; inf if none."""
    opt_key, opt_t = opt_outs
    out = np.full(account.size, np.inf)
    if opt_key.size == 0:
        return out
    key = account * 64 + channel.astype(np.int64)
    pos = np.searchsorted(opt_key, key).clip(max=opt_key.size - 1)
    hit = opt_key[pos] == key
    out[hit] = opt_t[pos[hit]]
    return out


#: Accounts audited at a time: every rule is judged per account (its own contacts, its
#: own windows), and the temporaries of millions of contacts at once would add about
#: half a gigabyte to a large run's peak.
_ACCOUNTS_AT_A_TIME = 1 << 18


def audit_contacts(events: pd.DataFrame, book: Book, pack: str,
                   stop_after_churn: bool = False) -> int:
    """Number of executed contacts in ``events`` that break ``pack`` (0 when compliant).

    A contact after churn breaks it only when the scenario stops contact after churn
    (``stop_after_churn``); by default collection continues.
    """
    is_contact = (events["event"] == "contact").to_numpy()
    if not is_contact.any():
        return 0
    opt_outs = _opt_outs(events)
    account = events["account_id"].to_numpy()
    bad = 0
    for start in range(0, book.n, _ACCOUNTS_AT_A_TIME):
        rows = np.flatnonzero(is_contact & (account >= start)
                              & (account < start + _ACCOUNTS_AT_A_TIME))
        if rows.size:
            bad += _audit_rows(events, rows, book, pack, stop_after_churn, opt_outs)
    return bad


def _audit_rows(events: pd.DataFrame, rows: np.ndarray, book: Book, pack: str,
                stop_after_churn: bool, opt_outs: tuple[np.ndarray, np.ndarray]) -> int:
    """``audit_contacts`` of the contact rows ``rows`` (every contact of their accounts)."""
    # Plain arrays of the contact rows only: the log can hold millions of events.
    t = events["t"].to_numpy()[rows]
    ids = events["account_id"].to_numpy()[rows]
    channel = events["channel"].cat.codes.to_numpy()[rows]
    names = np.asarray(events["channel"].cat.categories, dtype=object)
    is_call = np.isin(names, _CALLS)[channel]
    is_agent_call = (names == "agent_call")[channel]
    code = events["code"].to_numpy()[rows]
    answered = np.isin(code, _ANSWERED)
    hour = hour_of(t)
    s, o = book.state, book.observable

    bad = o.do_not_contact[ids].astype(np.int8)  # breaches per contact: a handful at most
    if stop_after_churn:
        bad += t > s.t_churn[ids]
    bad += t >= s.t_charged_off[ids]
    bad += _first_opt_out(opt_outs, ids, channel) < t

    if pack == "cn-2026":
        quiet = (hour >= 22) | (hour < 8)
        bad += quiet & ~o.consent_quiet_hours[ids]
        conn, unans = is_call & answered, is_call & ~answered
        return (int(bad.sum()) + _over_cap(ids[conn], t[conn], 1, 3)
                + _over_cap(ids[unans], t[unans], 1, 6))
    if pack == "us-reg-f":
        bad += (hour >= 21) | (hour < 8)
        extra = _over_cap(ids[is_call], t[is_call], 7, 7)
        convo = is_agent_call & answered
        if convo.any() and is_call.any():
            calls = pd.DataFrame({"t": t[is_call], "account_id": ids[is_call]})
            talks = pd.DataFrame({"t": t[convo], "account_id": ids[convo],
                                  "t_conv": t[convo]})
            prior = pd.merge_asof(calls, talks, on="t", by="account_id",
                                  allow_exact_matches=False, direction="backward")
            extra += int(((prior["t"] - prior["t_conv"]) < 7.0).sum())
        return int(bad.sum()) + extra
    if pack == "au-accc":
        delivered = np.where(is_call, answered, np.isin(code, _DELIVERED_MESSAGE))
        return (int(bad.sum()) + _over_cap(ids[delivered], t[delivered], 7, 3)
                + _over_cap(ids[delivered], t[delivered], 30, 10))
    return int(bad.sum())
