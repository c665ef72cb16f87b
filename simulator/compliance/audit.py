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


def _over_cap(rows: pd.DataFrame, days: int, limit: int) -> int:
    rows = rows.sort_values(["account_id", "t"], kind="stable")
    counts = _window_counts(rows["account_id"].to_numpy(), rows["day"].to_numpy(), days)
    return int((counts > limit).sum())


def audit_contacts(events: pd.DataFrame, book: Book, pack: str) -> int:
    """Number of executed contacts in ``events`` that break ``pack`` (0 when compliant)."""
    c = events[events["event"] == "contact"].copy()
    if c.empty:
        return 0
    c["day"] = np.floor(c["t"].to_numpy()).astype(np.int64)
    c["hour"] = hour_of(c["t"].to_numpy())
    ids = c["account_id"].to_numpy()
    t = c["t"].to_numpy()
    s, o = book.state, book.observable
    channel = c["channel"].astype(str).to_numpy()
    is_call = np.isin(channel, _CALLS)
    answered = c["code"].isin(_ANSWERED).to_numpy()

    bad = o.do_not_contact[ids].astype(np.int64)
    bad += t > s.t_churn[ids]
    bad += t >= s.t_charged_off[ids]
    opt = events[events["event"] == "opt_out"]
    if len(opt):
        first = opt.groupby(["account_id", "channel"], observed=True)["t"].min()
        key = pd.MultiIndex.from_arrays([c["account_id"], c["channel"]])
        t_opt = first.reindex(key).to_numpy()
        bad += np.nan_to_num(t_opt, nan=np.inf) < t

    hour = c["hour"].to_numpy()
    if pack == "cn-2026":
        quiet = (hour >= 22) | (hour < 8)
        bad += quiet & ~o.consent_quiet_hours[ids]
        calls = c[is_call]
        conn = calls[calls["code"].isin(_ANSWERED)]
        unans = calls[~calls["code"].isin(_ANSWERED)]
        return int(bad.sum()) + _over_cap(conn, 1, 3) + _over_cap(unans, 1, 6)
    if pack == "us-reg-f":
        bad += (hour >= 21) | (hour < 8)
        calls = c[is_call]
        extra = _over_cap(calls, 7, 7)
        convo = c[(channel == "agent_call") & answered].sort_values("t")
        if len(convo) and len(calls):
            prior = pd.merge_asof(
                calls.sort_values("t")[["t", "account_id"]],
                convo[["t", "account_id"]].rename(columns={"t": "t_conv"}).assign(
                    t=convo["t"].to_numpy()),
                on="t", by="account_id", allow_exact_matches=False, direction="backward")
            extra += int(((prior["t"] - prior["t_conv"]) < 7.0).sum())
        return int(bad.sum()) + extra
    if pack == "au-accc":
        delivered = np.where(is_call, answered, c["code"].isin(_DELIVERED_MESSAGE).to_numpy())
        comms = c[delivered]
        return int(bad.sum()) + _over_cap(comms, 7, 3) + _over_cap(comms, 30, 10)
    return int(bad.sum())
