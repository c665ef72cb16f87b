"""Validation of what a strategy returns: wrong requests fail loudly, naming the rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.errors import StrategyError
from simulator.scenario import CHANNELS

_CHANNEL_CODE = {name: i for i, name in enumerate(CHANNELS)}


@dataclass
class Requests:
    """Validated contact requests of one epoch, as arrays."""

    account_id: np.ndarray  # int64
    channel: np.ndarray  # int8 index into CHANNELS
    hour: np.ndarray  # float64 in [0, 24)
    priority: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.account_id.size)


def _fail(strategy: str, day: int, problem: str, rows: pd.DataFrame | None = None) -> StrategyError:
    msg = f"on day {day}: {problem}"
    if rows is not None and len(rows):
        shown = rows.head(3).to_dict(orient="records")
        msg += f"; first offending rows: {shown}"
    return StrategyError(msg, source=f"strategy '{strategy}'")


def validate_requests(strategy: str, day: int, result: object, open_ids: pd.Index) -> Requests:
    """Check a strategy's output against the request contract and convert it to arrays."""
    if not isinstance(result, pd.DataFrame):
        raise _fail(strategy, day, f"decide() must return a pandas DataFrame, got "
                                   f"{type(result).__name__}")
    missing = [c for c in ("account_id", "channel", "hour") if c not in result.columns]
    if missing:
        raise _fail(strategy, day, f"requests lack column(s) {', '.join(missing)}; expected "
                                   "account_id, channel, hour and optionally priority")
    extra = [str(c) for c in result.columns if c not in ("account_id", "channel", "hour",
                                                          "priority")]
    if extra:
        raise _fail(strategy, day, f"unexpected request column(s) {', '.join(extra)}")
    df = result.reset_index(drop=True)
    if df.empty:
        e = np.empty(0)
        return Requests(e.astype(np.int64), e.astype(np.int8), e, e)

    ids = pd.to_numeric(df["account_id"], errors="coerce")
    bad = ids.isna() | (ids != np.floor(ids))
    if bad.any():
        raise _fail(strategy, day, "account_id must be whole numbers", df[bad])
    # An id beyond int64 cannot be an account (and casting it would warn).
    in_range = (ids.abs() < 2.0**62).to_numpy()
    ids_arr = np.where(in_range, ids.to_numpy(), -1).astype(np.int64)
    unknown = ~in_range | ~np.isin(ids_arr, open_ids.to_numpy())
    if unknown.any():
        raise _fail(strategy, day, "account_id not among today's open accounts", df[unknown])

    ch = df["channel"].astype(str).map(_CHANNEL_CODE)
    if ch.isna().any():
        raise _fail(strategy, day, f"unknown channel; expected one of {', '.join(CHANNELS)}",
                    df[ch.isna()])
    hour = pd.to_numeric(df["hour"], errors="coerce")
    bad = hour.isna() | ~np.isfinite(hour) | (hour < 0) | (hour >= 24)
    if bad.any():
        raise _fail(strategy, day, "hour must be a number with 0 <= hour < 24", df[bad])
    if "priority" in df.columns:
        prio = pd.to_numeric(df["priority"], errors="coerce")
        bad = prio.isna() | ~np.isfinite(prio)
        if bad.any():
            raise _fail(strategy, day, "priority must be a finite number", df[bad])
        prio_arr = prio.to_numpy(dtype=np.float64)
    else:
        prio_arr = np.zeros(len(df))
    # Duplicates are judged on the release time the engine will use (day + hour / 24):
    # two hours a rounding error apart are released at the same instant.
    release = day + hour.to_numpy(dtype=np.float64) / 24.0
    key = pd.DataFrame({"a": ids_arr, "c": ch.to_numpy(), "t": release})
    dup = key.duplicated(keep=False).to_numpy()
    if dup.any():
        raise _fail(strategy, day, "duplicate requests (same account_id, channel and hour)",
                    df[dup])
    return Requests(ids_arr, ch.to_numpy(dtype=np.int8), hour.to_numpy(dtype=np.float64),
                    prio_arr)
