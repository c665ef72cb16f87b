"""What the learning strategies share: cells of observable state and outcome windows.

A learning strategy treats an account (or not), then watches what the account does over
the next ``window_days``: how much it paid, whether it churned. It sees that only
through ``learn(outcomes)`` (events) and the view, never through latent truth.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field, field_validator

from simulator.rng import BorrowerStream
from simulator.scenario import CHANNELS
from simulator.strategies.base import StrategyParams
from simulator.strategies.state import PerAccount

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


def _increasing(v: tuple[float, ...]) -> tuple[float, ...]:
    if any(b <= a for a, b in itertools.pairwise(v)):
        raise ValueError("edges must be strictly increasing")
    return v


class Segmentation(StrategyParams):
    """Cells of observable state: stage of delinquency x score band.

    With the defaults: four stages (days past due below 1, i.e. not yet past due; 1-7;
    8-30; 31 and more) times two score bands (below 620, 620 and above) make 8 cells.
    """

    stage_edges: tuple[int, ...] = Field(
        (1, 8, 31), description="days past due at which a new stage starts")
    score_edges: tuple[float, ...] = Field(
        (620.0,), description="scores at which a new score band starts")

    _check_stage = field_validator("stage_edges")(_increasing)
    _check_score = field_validator("score_edges")(_increasing)

    @property
    def n_cells(self) -> int:
        return (len(self.stage_edges) + 1) * (len(self.score_edges) + 1)

    def cells(self, accounts: pd.DataFrame) -> NDArray[np.int16]:
        """The cell of every account in the view, ``stage * bands + band``."""
        return self.cells_of(accounts["dpd"].to_numpy(), accounts["score"].to_numpy())

    def cells_of(self, dpd: np.ndarray, score: np.ndarray) -> NDArray[np.int16]:
        """The cell of each (days past due, score) pair."""
        stage = np.searchsorted(np.asarray(self.stage_edges), dpd, side="right")
        band = np.searchsorted(np.asarray(self.score_edges), score, side="right")
        return (stage * (len(self.score_edges) + 1) + band).astype(np.int16)

    def labels(self) -> list[str]:
        """Readable names of the cells, in cell order."""
        se = [-np.inf, *self.stage_edges, np.inf]
        be = [-np.inf, *self.score_edges, np.inf]
        out = []
        for s in range(len(se) - 1):
            stage = _span("dpd", se[s], se[s + 1] - 1)
            for b in range(len(be) - 1):
                out.append(f"{stage}, {_span('score', be[b], be[b + 1], upper_open=True)}")
        return out


def _span(name: str, lo: float, hi: float, upper_open: bool = False) -> str:
    if not np.isfinite(lo) and not np.isfinite(hi):
        return f"any {name}"
    if not np.isfinite(lo):
        return f"{name} < {hi:g}" if upper_open else f"{name} <= {hi:g}"
    if not np.isfinite(hi):
        return f"{name} >= {lo:g}"
    return f"{lo:g} <= {name} < {hi:g}" if upper_open else f"{name} {lo:g}-{hi:g}"


@dataclass
class Closed:
    """Observations whose window ended, aligned arrays."""

    account_id: I64
    cell: NDArray[np.int16]
    treatment: NDArray[np.int8]
    paid_fraction: F64  # paid within the window / amount due at the start, capped at 1
    churned: NDArray[np.bool_]
    reach: NDArray[np.uint8]  # bit c set: reachable on CHANNELS[c] when the window opened

    def __len__(self) -> int:
        return int(self.account_id.size)


class OutcomeWindows:
    """At most one open observation per account: a treatment and what followed it.

    ``open`` starts a window at a decision epoch; ``record`` adds the payments and churn
    events that ``learn`` receives; ``close`` returns the windows that have ended.
    """

    def __init__(self, window_days: float):
        self.window = float(window_days)
        self.s = PerAccount(
            is_open=(bool, False), t0=(np.float64, np.nan), cell=(np.int16, -1),
            treatment=(np.int8, -1), amount=(np.float64, 0.0), paid=(np.float64, 0.0),
            churned=(bool, False), reach=(np.uint8, 0),
        )

    def is_open(self, ids: I64) -> NDArray[np.bool_]:
        self.s.ensure(ids)
        return self.s["is_open"][ids]

    def open(self, ids: I64, day: float, cell: NDArray[np.int16], treatment: NDArray[np.int8],
             amount: F64, reach: NDArray[np.uint8] | None = None) -> None:
        s = self.s
        s.ensure(ids)
        s["is_open"][ids] = True
        s["t0"][ids] = day
        s["cell"][ids] = cell
        s["treatment"][ids] = treatment
        s["amount"][ids] = amount
        s["paid"][ids] = 0.0
        s["churned"][ids] = False
        s["reach"][ids] = 0 if reach is None else reach

    def record(self, outcomes: pd.DataFrame) -> None:
        """Credit payments and churn to the open windows they fall in."""
        if outcomes.empty:
            return
        s = self.s
        event = outcomes["event"].astype(str).to_numpy()
        ids = outcomes["account_id"].to_numpy(dtype=np.int64)
        t = outcomes["t"].to_numpy(dtype=np.float64)
        s.ensure(ids)
        inside = s["is_open"][ids] & (t >= s["t0"][ids]) & (t < s["t0"][ids] + self.window)
        pay = inside & (event == "payment")
        np.add.at(s["paid"], ids[pay], outcomes["amount"].to_numpy(dtype=np.float64)[pay])
        s["churned"][ids[inside & (event == "churn")]] = True

    def close(self, day: float) -> Closed:
        """Close and return every window that ended by ``day``."""
        s = self.s
        done = np.flatnonzero(s["is_open"] & (s["t0"] + self.window <= day + 1e-9))
        s["is_open"][done] = False
        amount = s["amount"][done]
        frac = np.where(amount > 0, s["paid"][done] / np.where(amount > 0, amount, 1.0), 0.0)
        return Closed(done.astype(np.int64), s["cell"][done], s["treatment"][done],
                      np.clip(frac, 0.0, 1.0), s["churned"][done], s["reach"][done])


class CostEstimate:
    """Mean cost of an executed attempt per channel, starting from a prior guess.

    The prior counts as ``weight`` attempts, so the estimate moves to what contacts
    really cost (the ``amount`` of contact events) as soon as a few are observed.
    """

    def __init__(self, prior: F64, weight: float = 5.0):
        self.total = prior * weight
        self.count = np.full(len(CHANNELS), weight, dtype=np.float64)

    def record(self, outcomes: pd.DataFrame) -> None:
        if outcomes.empty:
            return
        contact = (outcomes["event"] == "contact").to_numpy()
        if not contact.any():
            return
        codes = channel_codes(outcomes["channel"])[contact]
        amount = outcomes["amount"].to_numpy(dtype=np.float64)[contact]
        ok = (codes >= 0) & np.isfinite(amount)
        np.add.at(self.total, codes[ok], amount[ok])
        np.add.at(self.count, codes[ok], 1.0)

    @property
    def mean(self) -> F64:
        return self.total / self.count


def stable_uniforms(key: int, ids: I64) -> F64:
    """A uniform in (0, 1) per account id, fixed by ``key``: the same id always gets the
    same draw, whatever order or batch it arrives in (random but stable assignment)."""
    counters = np.zeros(ids.size, dtype=np.uint32)
    return BorrowerStream(key).uniforms(ids.astype(np.int64), counters, 1)[:, 0]


def channel_codes(channel: pd.Series) -> NDArray[np.int8]:
    """Index into ``CHANNELS`` of each value (-1 for none or unknown)."""
    return pd.Categorical(channel, categories=CHANNELS).codes.astype(np.int8)


def add_counts(table: np.ndarray, rows: np.ndarray, cols: np.ndarray,
               weights: np.ndarray | None = None) -> None:
    """``table[rows, cols] += weights`` with repeats summed (``np.add.at``, but by
    ``bincount``, which is many times faster on large batches)."""
    flat = rows.astype(np.int64) * table.shape[1] + cols.astype(np.int64)
    table += np.bincount(flat, weights=weights, minlength=table.size).reshape(table.shape)


def reach_bits(accounts: pd.DataFrame, rows: np.ndarray) -> NDArray[np.uint8]:
    """Bit ``c`` set where the account is reachable on ``CHANNELS[c]``."""
    bits = np.zeros(rows.size, dtype=np.uint8)
    for c, name in enumerate(CHANNELS):
        bits |= accounts[f"reachable_{name}"].to_numpy()[rows].astype(np.uint8) << c
    return bits
