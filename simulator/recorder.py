"""Columnar event recording: batches of events appended to per-column buffers."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from simulator.memory import release_free_memory
from simulator.scenario import CHANNELS


class Event(IntEnum):
    """Kinds of event in the ``events`` frame."""

    PAYMENT = 0  # code: 0 before the due date, 1 delinquent (in-house), 2 agency
    DELINQUENT = 1  # amount: amount past due
    CHARGE_OFF = 2  # amount: balance written off
    CONTACT = 3  # executed attempt; amount: cost; code: outcome (book.OUTCOMES)
    BLOCKED = 4  # request refused by the rule pack; code: rule index
    CHURN = 5
    COMPLAINT = 6
    OPT_OUT = 7
    DARK = 8
    PROMISE = 9  # amount: promised
    PROMISE_KEPT = 10
    PROMISE_BROKEN = 11
    CALL_DROPPED = 12  # queued agent call not made before the next decision epoch
    SKIPPED_PAID = 13  # request for an account that paid in full before its release time


EVENT_NAMES = tuple(e.name.lower() for e in Event)
_DTYPES = (np.float64, np.int64, np.int8, np.int8, np.float64, np.int16, np.float32)

PAY_PRE_DUE, PAY_DELINQUENT, PAY_AGENCY = 0, 1, 2


def _column(value: ArrayLike, n: int, dtype: type) -> NDArray[np.generic]:
    arr: NDArray[np.generic] = np.asarray(value, dtype=dtype)
    return np.full(n, arr, dtype=dtype) if arr.ndim == 0 else arr


class Recorder:
    """Appends events to columnar buffers; ``frame()`` returns them as one DataFrame."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._cols: dict[str, list[NDArray[np.generic]]] = {
            k: []
            for k in ("t", "account_id", "event", "channel", "amount", "code", "agent_minutes")
        }
        self.count = 0

    def add(
        self,
        event: Event,
        t: ArrayLike,
        ids: NDArray[np.int64],
        *,
        channel: int = -1,
        amount: ArrayLike = np.nan,
        code: ArrayLike = -1,
        agent_minutes: ArrayLike = 0.0,
    ) -> None:
        """Record one event per id; scalar fields are broadcast."""
        n = ids.size
        if not self.enabled or n == 0:
            return
        c = self._cols
        c["t"].append(_column(t, n, np.float64))
        c["account_id"].append(ids.astype(np.int64, copy=False))
        c["event"].append(np.full(n, int(event), dtype=np.int8))
        c["channel"].append(np.full(n, channel, dtype=np.int8))
        c["amount"].append(_column(amount, n, np.float64))
        c["code"].append(_column(code, n, np.int16))
        c["agent_minutes"].append(_column(agent_minutes, n, np.float32))
        self.count += n

    def mark(self) -> int:
        """A position in the buffers; ``frame(start=mark)`` returns what came after it."""
        return len(self._cols["t"])

    def frame(self, start: int = 0, release: bool = False) -> pd.DataFrame:
        """Events (all, or those after ``start``), sorted by time, same-time order kept.

        ``release=True`` hands the buffers over to the frame, a column at a time, so that
        the events are never held three times over (buffers, joined, sorted); the
        recorder is empty afterwards.
        """
        order: NDArray[np.intp] | None = None
        data: dict[str, Any] = {}
        for (name, chunks), dtype in zip(self._cols.items(), _DTYPES, strict=True):
            part = chunks[start:]
            column = np.concatenate(part) if part else np.empty(0, dtype=dtype)
            if release:
                chunks.clear()
                release_free_memory()  # the buffers are many small arrays: give them back
            if order is None:  # the first column is the time
                order = np.argsort(column, kind="stable")
            data[name] = column[order]
            del column
        if release:
            self.count = 0
        data["event"] = pd.Categorical.from_codes(data["event"], EVENT_NAMES)
        data["channel"] = pd.Categorical.from_codes(data["channel"], CHANNELS)
        return pd.DataFrame(data, copy=False)
