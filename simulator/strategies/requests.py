"""Validation of what a strategy returns: wrong requests fail loudly, naming the rows."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.errors import StrategyError
from simulator.scenario import CHANNELS


@dataclass
class Requests:
    """Validated contact requests of one epoch, as arrays."""

    account_id: np.ndarray  # int64
    channel: np.ndarray  # int8 index into CHANNELS
    hour: np.ndarray  # float64 in [0, 24)
    priority: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.account_id.size)


def validate_requests(strategy: str | None, day: int, result: object, open_ids: pd.Index,
                      arm: str | None = None) -> Requests:
    """Check a strategy's output against the request contract and convert it to arrays.

    ``arm`` names an arm of a composite strategy, whose own requests are checked against
    its own accounts (``open_ids``); ``strategy`` None leaves the error's source to the
    caller (the engine names the strategy whose call raised it).
    """

    def _fail(day: int, problem: str, rows: pd.DataFrame | None = None) -> StrategyError:
        msg = f"on day {day}: " + (f"arm '{arm}': " if arm is not None else "") + problem
        if rows is not None and len(rows):
            shown = rows.head(3).to_dict(orient="records")
            msg += f"; first offending rows: {shown}"
        return StrategyError(msg, source=f"strategy '{strategy}'" if strategy else None)

    if not isinstance(result, pd.DataFrame):
        raise _fail(day, f"decide() must return a pandas DataFrame, got "
                                   f"{type(result).__name__}")
    missing = [c for c in ("account_id", "channel", "hour") if c not in result.columns]
    if missing:
        raise _fail(day, f"requests lack column(s) {', '.join(missing)}; expected "
                                   "account_id, channel, hour and optionally priority")
    extra = [str(c) for c in result.columns if c not in ("account_id", "channel", "hour",
                                                          "priority")]
    if extra:
        raise _fail(day, f"unexpected request column(s) {', '.join(extra)}")
    df = result.reset_index(drop=True)
    if df.empty:
        e = np.empty(0)
        return Requests(e.astype(np.int64), e.astype(np.int8), e, e)

    ids, not_whole = _account_ids(df["account_id"])
    if not_whole.any():
        raise _fail(day, "account_id must be whole numbers", df[not_whole])
    known = np.asarray(open_ids, dtype=np.int64)  # the view's index: ids >= 0
    # A mask over the ids, many times faster than searching the sorted index.
    is_open = np.zeros(int(known.max()) + 1 if known.size else 0, dtype=bool)
    is_open[known] = True
    inside = (ids >= 0) & (ids < is_open.size)
    unknown = ~(inside & is_open[np.where(inside, ids, 0)]) if is_open.size else ~inside
    if unknown.any():
        whose = "today's open accounts" if arm is None else "this arm's open accounts"
        raise _fail(day, f"account_id not among {whose}", df[unknown])

    # Codes of CHANNELS; anything else (another name, a number, a missing value) is -1.
    # (Index.get_indexer, not Categorical(..., categories=): pandas 3 deprecates values
    # outside the categories, which are exactly what this check is for.)
    channels = pd.Index(CHANNELS)
    try:
        ch = channels.get_indexer(df["channel"])
    except TypeError:  # unhashable values (lists, dicts): compare their text
        ch = channels.get_indexer(df["channel"].astype(str))
    if (ch < 0).any():
        raise _fail(day, f"unknown channel; expected one of {', '.join(CHANNELS)}",
                    df[ch < 0])
    hour = _numbers(df["hour"])
    bad = ~np.isfinite(hour) | (hour < 0) | (hour >= 24)
    if bad.any():
        raise _fail(day, "hour must be a number with 0 <= hour < 24", df[bad])
    if "priority" in df.columns:
        prio = _numbers(df["priority"])
        bad = ~np.isfinite(prio)
        if bad.any():
            raise _fail(day, "priority must be a finite number", df[bad])
    else:
        prio = np.zeros(len(df))
    # Duplicates are judged on the release time the engine will use (day + hour / 24):
    # two hours a rounding error apart are released at the same instant.
    release = day + hour / 24.0
    dup = _duplicated(ids, ch, release)
    if dup.any():
        raise _fail(day, "duplicate requests (same account_id, channel and hour)",
                    df[dup])
    return Requests(ids, ch.astype(np.int8), hour, prio)


def _numbers(column: pd.Series) -> np.ndarray:
    """The column as float64; what is not a number becomes NaN.

    Only numbers are numbers: text (``"10"``), bytes and booleans are wrong types, not
    converted, so that a strategy returning them stops the run instead of being read
    as it perhaps did not mean.
    """
    if column.dtype.kind in "fiu":
        if isinstance(column.dtype, np.dtype):
            return column.to_numpy(dtype=np.float64)
        return column.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable Int64, Float64
    if pd.api.types.infer_dtype(column, skipna=True) in _NUMERIC_KINDS:
        return pd.to_numeric(column).to_numpy(dtype=np.float64, na_value=np.nan)
    return np.array([float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
                     else np.nan for v in column], dtype=np.float64)


#: What ``pandas.api.types.infer_dtype`` says of a column of numbers only (missing values
#: aside, which become NaN and are refused as such).
_NUMERIC_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "empty"})


def _account_ids(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column as int64 account ids, and the mask of rows that are not whole numbers
    (NaN, text and booleans included; the ids are empty when there is any).

    An id beyond int64 cannot be an account: it becomes -1 (unknown) without the cast
    that would warn.
    """
    if column.dtype.kind == "i" and not column.hasnans:
        return column.to_numpy(dtype=np.int64), np.zeros(len(column), dtype=bool)
    value = _numbers(column)
    not_whole = value != np.floor(value)
    if not_whole.any():
        return np.empty(0, dtype=np.int64), not_whole
    return np.where(np.abs(value) < 2.0**62, value, -1).astype(np.int64), not_whole


def _duplicated(ids: np.ndarray, channel: np.ndarray, release: np.ndarray) -> np.ndarray:
    """Rows whose (account, channel, release time) occurs more than once, all of them."""
    order = np.lexsort((release, channel, ids))
    a, c, t = ids[order], channel[order], release[order]
    same = (a[1:] == a[:-1]) & (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    dup_sorted = np.zeros(ids.size, dtype=bool)
    dup_sorted[1:] |= same
    dup_sorted[:-1] |= same
    dup = np.empty_like(dup_sorted)
    dup[order] = dup_sorted
    return dup
