"""Columnar event recording: batches of events appended to per-column buffers.

A recorder either keeps the whole log in memory (``frame()`` returns it) or, given a
file to spill to, writes the log to it during the run (``settle``): every event before
a time the engine names is final by then, so those events are sorted and written, and
only the later ones stay in memory. The spilled log (``SpilledEvents``) is read back a
chunk at a time, or only the kinds of event asked for.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
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
_COLUMNS = ("t", "account_id", "event", "channel", "amount", "code", "agent_minutes")
_DTYPES = (np.float64, np.int64, np.int8, np.int8, np.float64, np.int16, np.float32)

#: Rows of a spilled log written (and read back) at a time: a Parquet row group of the
#: written events file, so that the file is written in the same groups either way.
SPILL_ROWS = 1 << 16

PAY_PRE_DUE, PAY_DELINQUENT, PAY_AGENCY = 0, 1, 2


def _column(value: ArrayLike, n: int, dtype: type) -> NDArray[np.generic]:
    arr: NDArray[np.generic] = np.asarray(value, dtype=dtype)
    return np.full(n, arr, dtype=dtype) if arr.ndim == 0 else arr


def _as_frame(data: dict[str, Any]) -> pd.DataFrame:
    """The events frame of plain columns (``_COLUMNS``): kind and channel as categories."""
    data["event"] = pd.Categorical.from_codes(data["event"], EVENT_NAMES)
    data["channel"] = pd.Categorical.from_codes(data["channel"], CHANNELS)
    return pd.DataFrame(data, copy=False)


def no_events() -> pd.DataFrame:
    """An events frame without rows (its columns and types)."""
    return _as_frame({name: np.empty(0, dtype=dtype)
                      for name, dtype in zip(_COLUMNS, _DTYPES, strict=True)})


_SCHEMA = pa.schema([(name, pa.from_numpy_dtype(dtype))
                     for name, dtype in zip(_COLUMNS, _DTYPES, strict=True)])


class SpilledEvents:
    """An event log written to a file (Arrow IPC) during a run, time-sorted, in chunks
    of ``SPILL_ROWS`` rows: ``frames()`` gives it back a chunk at a time, ``frame()``
    whole or only some kinds of event. The file belongs to whoever asked for the spill
    (``remove()`` deletes it)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = 0
        self._writer: pa.ipc.RecordBatchFileWriter | None = pa.ipc.new_file(
            pa.OSFile(str(path), "wb"), _SCHEMA)
        self._pending: list[dict[str, NDArray[np.generic]]] = []
        self._pending_rows = 0
        #: Events written of each kind (``Event``).
        self.kind_counts = np.zeros(len(EVENT_NAMES), dtype=np.int64)

    def append(self, columns: dict[str, NDArray[np.generic]]) -> None:
        """Append time-sorted events (they follow every event appended before)."""
        self._pending.append(columns)
        self._pending_rows += columns["t"].size
        self.kind_counts += np.bincount(columns["event"], minlength=len(EVENT_NAMES))
        if self._pending_rows >= SPILL_ROWS:
            self._write(final=False)

    def _write(self, final: bool) -> None:
        joined = {name: np.concatenate([p[name] for p in self._pending])
                  for name in _COLUMNS}
        total = joined["t"].size
        whole = total if final else total - total % SPILL_ROWS
        assert self._writer is not None
        for start in range(0, whole, SPILL_ROWS):
            stop = min(start + SPILL_ROWS, whole)
            self._writer.write_batch(pa.record_batch(
                [pa.array(joined[name][start:stop]) for name in _COLUMNS], schema=_SCHEMA))
        self.rows += whole
        rest = {name: joined[name][whole:] for name in _COLUMNS}
        self._pending = [rest] if total > whole else []
        self._pending_rows = total - whole

    def close(self) -> None:
        """Write what is pending and close the file."""
        if self._writer is None:
            return
        if self._pending_rows:
            self._write(final=True)
        self._writer.close()
        self._writer = None

    def frames(self, kinds: Collection[str] | None = None) -> Iterator[pd.DataFrame]:
        """The log a chunk at a time, in time order (only events of ``kinds``, if given)."""
        codes = None if kinds is None else [EVENT_NAMES.index(k) for k in kinds]
        with pa.OSFile(str(self.path), "rb") as source:
            reader = pa.ipc.open_file(source)
            if reader.num_record_batches == 0:
                yield no_events()
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                data = {name: batch.column(k).to_numpy() for k, name in enumerate(_COLUMNS)}
                if codes is not None:
                    keep = np.isin(data["event"], codes)
                    data = {name: column[keep] for name, column in data.items()}
                del batch
                yield _as_frame(data)

    def frame(self, kinds: Collection[str] | None = None) -> pd.DataFrame:
        """The log (only events of ``kinds``, if given) as one frame, as ``Recorder.frame``
        gives it, filled in place a chunk at a time (its size is known from the counts of
        each kind written)."""
        wanted = range(len(EVENT_NAMES)) if kinds is None else [
            EVENT_NAMES.index(k) for k in kinds]
        rows = int(self.kind_counts[list(wanted)].sum())
        data: dict[str, Any] = {name: np.empty(rows, dtype=dtype)
                                for name, dtype in zip(_COLUMNS, _DTYPES, strict=True)}
        at = 0
        with pa.OSFile(str(self.path), "rb") as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                keep = None if kinds is None else np.flatnonzero(
                    np.isin(batch.column(2).to_numpy(), wanted))
                size = batch.num_rows if keep is None else keep.size
                for k, name in enumerate(_COLUMNS):
                    column = batch.column(k).to_numpy()
                    data[name][at:at + size] = column if keep is None else column[keep]
                at += size
        assert at == rows
        return _as_frame(data)

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class Recorder:
    """Appends events to columnar buffers; ``frame()`` returns them as one DataFrame.

    With ``spill`` (a file), ``settle`` moves the events that are final to that file
    during the run and ``spilled()`` hands the file over at the end (``SpilledEvents``).
    """

    def __init__(self, enabled: bool = True, spill: Path | None = None):
        self.enabled = enabled
        self._cols: dict[str, list[NDArray[np.generic]]] = {k: [] for k in _COLUMNS}
        self.count = 0
        self._spill = SpilledEvents(spill) if spill is not None and enabled else None
        self._settled = -math.inf  # every event before this time is in the spill

    @property
    def spilling(self) -> bool:
        return self._spill is not None

    def settle(self, before: float) -> None:
        """Spill every event before time ``before``: the caller guarantees that no event
        before it is recorded from now on. The spilled events are sorted by time, events
        at the same time kept in the order they were recorded, and the later ones kept
        in that order too, so the spill file is the log ``frame()`` would sort. A no-op
        without a spill."""
        if self._spill is None or not self._cols["t"]:
            return
        joined = {name: np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
                  for name, chunks in self._cols.items()}
        t: NDArray[np.float64] = np.asarray(joined["t"], dtype=np.float64)
        if t.size and t.min() < self._settled:  # the caller's guarantee broken
            raise RuntimeError(f"an event at t={t.min()} was recorded after the log was "
                               f"settled up to t={self._settled}")
        final = t < before
        rows = np.flatnonzero(final)
        rows = rows[np.argsort(t[rows], kind="stable")]
        self._spill.append({name: column[rows] for name, column in joined.items()})
        later = ~final
        for name, column in joined.items():
            self._cols[name] = [column[later]]
        self._settled = max(self._settled, before)

    def spilled(self) -> SpilledEvents:
        """The spill file with every event (all settled), closed; the recorder is empty."""
        assert self._spill is not None
        self.settle(math.inf)
        spill, self._spill = self._spill, None
        spill.close()
        for chunks in self._cols.values():
            chunks.clear()
        self.count = 0
        return spill

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
        return _as_frame(data)
