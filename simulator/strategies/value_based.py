"""``value_based``: contact only where it pays, learned from a randomised exploration arm."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from simulator.scenario import CHANNELS
from simulator.strategies.base import Strategy, StrategyParams, make_requests, no_requests
from simulator.strategies.channels import (
    ChannelCosts,
    ChannelFractions,
    ChannelHours,
    ChannelName,
)
from simulator.strategies.learning import (
    CostEstimate,
    OutcomeWindows,
    Segmentation,
    add_counts,
    reach_bits,
    stable_uniforms,
)
from simulator.strategies.state import PerAccount

AGENT = CHANNELS.index("agent_call")
NONE = -1  # treatment code of "no contact" (the control of the exploration arm)


class ValueBasedParams(StrategyParams):
    channels: tuple[ChannelName, ...] = Field(
        ("push", "sms", "robocall", "agent_call"),
        description="channels the strategy may use")
    daily_call_capacity: Annotated[int, Field(ge=0)] = Field(
        1000, description="most agent calls requested per decision epoch: the dials the "
                          "floor can make in a day (times decision.every_days)")
    from_dpd: int = Field(-3, description="consider accounts from this many days past due "
                                          "(negative: before the due date)")
    window_days: Annotated[int, Field(ge=1)] = Field(
        7, description="days over which the effect of one contact is measured; an account "
                       "is contacted at most once per window")
    explore_share: Annotated[float, Field(ge=0, le=1)] = Field(
        0.1, description="share of accounts, drawn at random once, in the exploration arm: "
                         "each window they get a random channel or no contact")
    segmentation: Segmentation = Field(
        default_factory=Segmentation,
        description="cells of observable state in which uplift is estimated")
    prior_uplift: ChannelFractions = Field(
        default_factory=ChannelFractions,
        description="starting estimate of uplift per channel, as a fraction of the amount "
                    "due paid within the window (e.g. measured in an earlier period)")
    prior_weight: Annotated[float, Field(gt=0)] = Field(
        30.0, description="observations the prior uplift is worth")
    costs: ChannelCosts = Field(
        default_factory=ChannelCosts,
        description="expected cost per attempt until executed contacts show their cost")
    min_value: float = Field(0.0, description="contact only when the expected value of the "
                                              "contact exceeds this")
    pause_on_promise: bool = Field(True, description="no contact while a promise is open")
    hours: ChannelHours = Field(default_factory=ChannelHours,
                                description="hour of the day each channel is released")

    @field_validator("channels")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("give one or more distinct channels")
        return v


class ValueBased(Strategy[ValueBasedParams]):
    """Contact an account only when the expected incremental collection exceeds the
    contact's cost plus the expected CLV lost to churn; fill agent time by that value.

    Business rule: the value of contacting account *i* on channel *c* is
    ``uplift[cell, c] * amount_due - cost[c] - churn_uplift[c] * clv_estimate``. The
    account gets its best channel when that value exceeds ``min_value`` (0), at most
    once per ``window_days`` (7), from ``from_dpd`` (-3) days past due on. Agent calls go
    to the highest values first, never more than ``daily_call_capacity`` (1000) per
    epoch, and carry ``-value`` as priority; an account that misses the cut falls back
    to its best other channel if that is still worth it.

    Estimates are learned, never read from latent truth. A random ``explore_share``
    (10 %) of accounts forms an exploration arm: each window they get a channel drawn
    at random from ``channels`` or no contact (the control). ``learn`` credits their
    payments and churn within ``window_days``; uplift per cell (``segmentation``) is
    the difference of mean fraction of the amount due paid, treated against control,
    shrunk towards ``prior_uplift`` (0) worth ``prior_weight`` (30) observations; churn
    uplift is estimated per channel the same way; costs start at ``costs`` and become
    the mean cost of executed contacts. With no evidence yet the uplift is the prior,
    so a cautious start contacts only the exploration arm. With ``pause_on_promise``
    (on) nobody with an open promise is contacted; ``hours`` sets each channel's hour.
    """

    name = "value_based"
    description = "Contact when expected uplift beats cost + churn risk; calls by value."
    Params = ValueBasedParams

    def __init__(self, params: ValueBasedParams | None = None,
                 rng: np.random.Generator | None = None):
        super().__init__(params, rng)
        p = self.params
        self._key = int(self.rng.integers(0, 2**63 - 1))
        self._channels = np.array([CHANNELS.index(c) for c in p.channels], dtype=np.int8)
        n_cells = p.segmentation.n_cells
        # Sufficient statistics per (cell, treatment); treatment column 0 is the control,
        # column 1 + k the k-th channel of CHANNELS.
        self.n = np.zeros((n_cells, 1 + len(CHANNELS)))
        self.paid = np.zeros((n_cells, 1 + len(CHANNELS)))
        self.churn = np.zeros((n_cells, 1 + len(CHANNELS)))
        # The control group of each channel: control accounts that were reachable on it,
        # because a channel is only ever tried on accounts it can reach.
        self.ctrl_n = np.zeros((n_cells, len(CHANNELS)))
        self.ctrl_paid = np.zeros((n_cells, len(CHANNELS)))
        self.ctrl_churn = np.zeros((n_cells, len(CHANNELS)))
        self.windows = OutcomeWindows(p.window_days)
        self.cost = CostEstimate(p.costs.as_array())
        self.state = PerAccount(last=(np.float64, -np.inf))  # last exploit contact day

    # ------------------------------------------------------------------ learning

    def learn(self, outcomes: pd.DataFrame) -> None:
        self.windows.record(outcomes)
        self.cost.record(outcomes)

    def _close_windows(self, day: int) -> None:
        closed = self.windows.close(day)
        if len(closed):
            col = closed.treatment.astype(np.int64) + 1  # NONE (-1) -> column 0
            add_counts(self.n, closed.cell, col)
            add_counts(self.paid, closed.cell, col, closed.paid_fraction)
            add_counts(self.churn, closed.cell, col, closed.churned.astype(float))
            ctrl = col == 0
            for c in range(len(CHANNELS)):
                mine = ctrl & ((closed.reach >> c) & 1).astype(bool)
                cells = closed.cell[mine]
                self.ctrl_n[:, c] += np.bincount(cells, minlength=self.n.shape[0])
                self.ctrl_paid[:, c] += np.bincount(cells, closed.paid_fraction[mine],
                                                    minlength=self.n.shape[0])
                self.ctrl_churn[:, c] += np.bincount(cells, closed.churned[mine],
                                                     minlength=self.n.shape[0])

    def uplift(self) -> np.ndarray:
        """Estimated uplift per (cell, channel of CHANNELS): extra fraction of the amount
        due paid within the window when contacted, against no contact."""
        p = self.params
        n_t, n_c = self.n[:, 1:], self.ctrl_n
        raw = self.paid[:, 1:] / np.maximum(n_t, 1.0) - self.ctrl_paid / np.maximum(n_c, 1.0)
        n_eff = _effective_n(n_t, n_c)
        prior = p.prior_uplift.as_array()[None, :]
        return (n_eff * raw + p.prior_weight * prior) / (n_eff + p.prior_weight)

    def churn_uplift(self) -> np.ndarray:
        """Estimated extra churn probability per contact, per channel (pooled over cells)."""
        n_t, n_c = self.n[:, 1:].sum(axis=0), self.ctrl_n.sum(axis=0)
        raw = (self.churn[:, 1:].sum(axis=0) / np.maximum(n_t, 1.0)
               - self.ctrl_churn.sum(axis=0) / np.maximum(n_c, 1.0))
        n_eff = _effective_n(n_t, n_c)
        return np.maximum(n_eff * raw / (n_eff + self.params.prior_weight), 0.0)

    def estimates(self) -> pd.DataFrame:
        """Learned estimates per cell and channel, for reports (one row each)."""
        up = self.uplift()
        labels = self.params.segmentation.labels()
        rows = []
        for cell, label in enumerate(labels):
            for k, ch in enumerate(CHANNELS):
                rows.append({"cell": label, "channel": ch, "observations": self.n[cell, k + 1],
                             "control_observations": self.ctrl_n[cell, k],
                             "uplift": up[cell, k], "churn_uplift": self.churn_uplift()[k],
                             "cost": self.cost.mean[k]})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ deciding

    def in_exploration(self, account_ids: np.ndarray) -> np.ndarray:
        """Whether each account belongs to the exploration arm (stable per account)."""
        ids = np.asarray(account_ids, dtype=np.int64)
        return stable_uniforms(self._key, ids) < self.params.explore_share

    def values(self, accounts: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
        """Expected value of one contact, ``(accounts, CHANNELS)``, for the accounts of
        the view (or its ``rows``); -inf where the channel is not allowed or reachable."""
        def col(name: str) -> np.ndarray:
            values = accounts[name].to_numpy()
            return values if rows is None else values[rows]

        p = self.params
        cells = p.segmentation.cells_of(col("dpd"), col("score"))
        amount = col("amount_due").astype(np.float64)
        clv = col("clv_estimate").astype(np.float64)
        up, churn, cost = self.uplift(), self.churn_uplift(), self.cost.mean
        value = np.full((cells.size, len(CHANNELS)), -np.inf)
        for c in self._channels:
            ok = col(f"reachable_{CHANNELS[c]}")
            value[:, c] = np.where(ok, up[cells, c] * amount - cost[c] - churn[c] * clv,
                                   -np.inf)
        return value

    def view_columns(self) -> Collection[str]:
        return {"dpd", "do_not_contact", "open_promise", "score", "amount_due", "clv_estimate",
                *(f"reachable_{c}" for c in CHANNELS)}

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        self._close_windows(day)
        if accounts.empty:
            return no_requests()
        ids = accounts.index.to_numpy(dtype=np.int64)
        self.state.ensure(ids)
        eligible = ((accounts["dpd"].to_numpy() >= p.from_dpd)
                    & ~accounts["do_not_contact"].to_numpy())
        if p.pause_on_promise:
            eligible &= ~accounts["open_promise"].to_numpy()
        explore = self.in_exploration(ids)

        # Exploration arm: a random treatment (a channel or none) each window.
        ex = np.flatnonzero(eligible & explore & ~self.windows.is_open(ids))
        ex_channel = np.empty(0, dtype=np.int64)
        if ex.size:
            k = self.rng.integers(0, self._channels.size + 1, ex.size)
            ex_channel = np.where(k == 0, NONE, self._channels[np.maximum(k - 1, 0)])
            ok = ex_channel == NONE
            for c in self._channels:
                pick = ex_channel == c
                ok[pick] = accounts[f"reachable_{CHANNELS[c]}"].to_numpy()[ex[pick]]
            ex, ex_channel = ex[ok], ex_channel[ok]
            calls = np.flatnonzero(ex_channel == AGENT)
            if calls.size > p.daily_call_capacity:  # a random subset, to stay unbiased
                drop = self.rng.choice(calls, calls.size - p.daily_call_capacity, replace=False)
                keep = np.ones(ex.size, dtype=bool)
                keep[drop] = False
                ex, ex_channel = ex[keep], ex_channel[keep]
            cells = p.segmentation.cells_of(accounts["dpd"].to_numpy()[ex],
                                            accounts["score"].to_numpy()[ex])
            self.windows.open(ids[ex], day, cells, ex_channel.astype(np.int8),
                              accounts["amount_due"].to_numpy(dtype=np.float64)[ex],
                              reach_bits(accounts, ex))
        capacity = p.daily_call_capacity - int((ex_channel == AGENT).sum())

        # Exploitation: the best channel where it is worth it, calls by value.
        cand = np.flatnonzero(eligible & ~explore
                              & (day - self.state["last"][ids] >= p.window_days))
        frames = []
        if ex.size:
            sent = ex_channel != NONE
            frames.append(self._requests(ids[ex[sent]], ex_channel[sent],
                                         np.full(int(sent.sum()), -np.inf)))
        if cand.size:
            value = self.values(accounts, cand)
            best = np.argmax(value, axis=1)
            best_value = value[np.arange(cand.size), best]
            want = best_value > p.min_value
            call = np.flatnonzero(want & (best == AGENT))
            if call.size > capacity:
                order = call[np.argsort(-best_value[call], kind="stable")]
                over = order[max(capacity, 0):]
                # Those past the cut fall back to their best other channel.
                value[over, AGENT] = -np.inf
                best[over] = np.argmax(value[over], axis=1)
                best_value[over] = value[over, best[over]]
                want[over] = best_value[over] > p.min_value
            chosen = np.flatnonzero(want)
            self.state["last"][ids[cand[chosen]]] = day
            frames.append(self._requests(ids[cand[chosen]], best[chosen], best_value[chosen]))
        frames = [f for f in frames if len(f)]
        if not frames:
            return no_requests()
        return pd.concat(frames, ignore_index=True)

    def _requests(self, ids: np.ndarray, channel: np.ndarray, value: np.ndarray
                  ) -> pd.DataFrame:
        """Requests with each channel's hour; agent calls get ``-value`` as priority (the
        exploration arm's calls, with value -inf here, go first: they are few and must
        happen for the estimates to stay unbiased)."""
        names = np.asarray(CHANNELS, dtype=object)[channel]
        hours = np.array([self.params.hours.of(c) for c in CHANNELS])[channel]
        prio = np.where(channel == AGENT, np.where(np.isfinite(value), -value, -1e12), 0.0)
        return make_requests(ids, names, hours, prio)


def _effective_n(n_treated: np.ndarray, n_control: np.ndarray) -> np.ndarray:
    """Effective sample size of a difference of two means, n1 n0 / (n1 + n0) (half their
    harmonic mean; 0 when either group is empty): the weight of the raw estimate against
    the prior."""
    return np.where((n_treated > 0) & (n_control > 0),
                    n_treated * n_control / np.maximum(n_treated + n_control, 1.0), 0.0)
