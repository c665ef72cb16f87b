"""Contact cadences: which channel, at which days past due, at what hour.

Shared by the rule-based strategies: a cadence is a list of steps, each selecting the
open accounts whose days past due match it today.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from simulator.strategies.base import StrategyParams, make_requests, no_requests

ChannelName = Literal["push", "email", "sms", "robocall", "agent_call"]


class Step(StrategyParams):
    """One line of a cadence.

    The step fires on the listed ``days`` past due (negative: days before the due date,
    0: the due date), and/or on every ``every``-th day from ``from_dpd`` to ``to_dpd``.
    """

    channel: ChannelName
    hour: Annotated[float, Field(ge=0, lt=24)] = 10.0
    days: tuple[int, ...] = ()
    from_dpd: int | None = None
    to_dpd: int = 10_000
    every: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _has_days(self) -> Step:
        if not self.days and self.from_dpd is None:
            raise ValueError("a step needs days or from_dpd")
        return self

    def selects(self, dpd: np.ndarray) -> np.ndarray:
        if len(self.days) <= 8:  # a few comparisons beat isin's sort several times over
            hit = np.zeros(dpd.shape, dtype=bool)
            for day in self.days:
                hit |= dpd == day
        else:
            hit = np.isin(dpd, np.asarray(self.days, dtype=np.int64))
        if self.from_dpd is not None:
            span = (dpd >= self.from_dpd) & (dpd <= self.to_dpd)
            hit |= span & ((dpd - self.from_dpd) % self.every == 0)
        return hit


def cadence_columns(steps: Iterable[Step], pause_on_promise: bool) -> set[str]:
    """The view columns ``run_cadence`` reads for ``steps``."""
    columns = {"dpd", "do_not_contact", "amount_due"}
    columns |= {f"reachable_{step.channel}" for step in steps}
    if pause_on_promise:
        columns.add("open_promise")
    return columns


def _selected(steps: tuple[Step, ...], dpd: np.ndarray) -> list[np.ndarray]:
    """``step.selects(dpd)`` of each step. Days past due take a few hundred values over
    millions of accounts, so each step is evaluated once per value and looked up."""
    lo, hi = (int(dpd.min()), int(dpd.max())) if dpd.size else (0, -1)
    if dpd.dtype.kind not in "iu" or hi - lo > dpd.size:
        return [step.selects(dpd) for step in steps]
    values = np.arange(lo, hi + 1, dtype=dpd.dtype)
    offset = dpd - lo
    return [np.take(step.selects(values), offset) for step in steps]


def run_cadence(accounts: pd.DataFrame, steps: tuple[Step, ...], pause_on_promise: bool,
                mask: np.ndarray | None = None) -> pd.DataFrame:
    """Requests of ``steps`` for the accounts selected by ``mask`` (all if None).

    Accounts on the do-not-contact register, unreachable on a step's channel, or (with
    ``pause_on_promise``) holding an open promise are skipped: a sensible lender does
    not ask for what cannot or need not happen. Agent calls go largest amount first.
    """
    if accounts.empty or not steps:
        return no_requests()
    dpd = accounts["dpd"].to_numpy()
    eligible = ~accounts["do_not_contact"].to_numpy()
    if pause_on_promise:
        eligible &= ~accounts["open_promise"].to_numpy()
    if mask is not None:
        eligible &= mask
    ids = accounts.index.to_numpy()
    amount = accounts["amount_due"].to_numpy()
    picked = [(step, np.flatnonzero(eligible & hit
                                    & accounts[f"reachable_{step.channel}"].to_numpy()))
              for step, hit in zip(steps, _selected(steps, dpd), strict=True)]
    picked = [(step, rows) for step, rows in picked if rows.size]
    if not picked:
        return no_requests()
    # One frame for all steps (cheaper than one frame per step joined with pd.concat).
    sizes = [rows.size for _, rows in picked]
    out = make_requests(
        np.concatenate([ids[rows] for _, rows in picked]),
        np.repeat(np.array([step.channel for step, _ in picked], dtype=object), sizes),
        np.repeat(np.array([step.hour for step, _ in picked], dtype=np.float64), sizes),
        np.concatenate([-amount[rows] if step.channel == "agent_call" else np.zeros(rows.size)
                        for step, rows in picked]))
    if len({(step.channel, step.hour) for step, _ in picked}) == len(picked):
        return out  # each step its own channel and hour: no request can repeat
    # Two steps may ask for the same contact; keep one.
    return out.drop_duplicates(["account_id", "channel", "hour"], ignore_index=True)
