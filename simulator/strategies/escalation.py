"""``escalation``: a soft-to-hard ladder that climbs on silence and steps down on progress."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from simulator.scenario import CHANNELS
from simulator.strategies.base import Strategy, StrategyParams, make_requests, no_requests
from simulator.strategies.channels import ChannelHours
from simulator.strategies.state import PerAccount

RungName = Literal["push", "email", "sms", "robocall", "agent_call", "agency"]
AGENCY = "agency"
NOT_STARTED = -1


class EscalationParams(StrategyParams):
    ladder: tuple[RungName, ...] = Field(
        ("push", "sms", "robocall", "agent_call", "agency"),
        description="the rungs, softest first; 'agency' (last only) stops in-house contact "
                    "and leaves the account for placement with the outside agency at "
                    "charge-off")
    start_dpd: Annotated[int, Field(ge=1)] = Field(
        1, description="days past due at which an account enters the first rung")
    contacts_per_rung: Annotated[int, Field(ge=1)] = Field(
        2, description="executed contacts on a rung before silence makes it climb")
    gap_days: Annotated[int, Field(ge=1)] = Field(
        2, description="days between two contacts on the same rung")
    patience_days: Annotated[int, Field(ge=0)] = Field(
        3, description="days of silence after the rung's last contact before climbing")
    pause_on_promise: bool = Field(True, description="no contact while a promise is open")
    hours: ChannelHours = Field(default_factory=ChannelHours,
                                description="hour of the day each channel is released")

    @field_validator("ladder")
    @classmethod
    def _valid_ladder(cls, ladder: tuple[str, ...]) -> tuple[str, ...]:
        if not ladder or ladder == (AGENCY,):
            raise ValueError("the ladder needs at least one contact channel")
        if len(set(ladder)) != len(ladder):
            raise ValueError("a rung appears twice")
        if AGENCY in ladder[:-1]:
            raise ValueError("'agency' can only be the last rung")
        return ladder


class Escalation(Strategy[EscalationParams]):
    """A soft-to-hard ladder: push, SMS, robo-call, agent call, outside agency.

    Business rule: an account enters the first rung at ``start_dpd`` (1) days past due.
    On each rung it gets up to ``contacts_per_rung`` (2) executed contacts on the rung's
    channel, ``gap_days`` (2) apart. It climbs one rung when the rung is spent and
    ``patience_days`` (3) pass after its last contact with no payment and no promise, at
    once when a promise is broken, and when it cannot be reached on the rung's channel.
    It steps down one rung after any payment or a new promise. A rung changes by at
    most one step per decision epoch, so no rung is ever skipped. Once nothing is past
    due (a cure, with monthly statements), the ladder resets: the next delinquency starts
    again at the first rung. The top rung
    ``agency`` ends in-house contact; the engine places the account with the agency at
    charge-off. While a promise is open nothing is sent (``pause_on_promise``).
    ``ladder`` sets the rungs (softest first), ``hours`` the hour of each channel.
    Agent calls are queued largest amount first.
    """

    name = "escalation"
    description = "Push, SMS, robo-call, agent call, agency: climb on silence, step down on pay."
    Params = EscalationParams

    def __init__(self, params: EscalationParams | None = None,
                 rng: np.random.Generator | None = None):
        super().__init__(params, rng)
        ladder = self.params.ladder
        # Channel index of each rung; -1 for the agency rung (no contact).
        self._rung_channel = np.array(
            [CHANNELS.index(r) if r != AGENCY else -1 for r in ladder], dtype=np.int64)
        self._rung_hour = np.array(
            [self.params.hours.of(r) if r != AGENCY else 0.0 for r in ladder])
        self.state = PerAccount(
            rung=(np.int8, NOT_STARTED),
            entered=(np.float64, np.nan),  # day the account entered its current rung
            base=(np.int32, 0),  # contacts on the rung's channel when it entered the rung
            paid=(np.float64, 0.0),  # paid_so_far seen at the last epoch
            promised=(np.int32, 0),
            broken=(np.int32, 0),
            seen=(bool, False),
        )

    @property
    def ladder(self) -> tuple[str, ...]:
        return self.params.ladder

    def rung_of(self, account_ids: np.ndarray) -> np.ndarray:
        """Current rung index of each account (-1: not started)."""
        ids = np.asarray(account_ids, dtype=np.int64)
        self.state.ensure(ids)
        return self.state["rung"][ids].astype(np.int64)

    def view_columns(self) -> Collection[str]:
        return {"dpd", "paid_so_far", "promises_made", "promises_broken", "do_not_contact",
                "open_promise", "amount_due",
                *(f"{family}_{c}" for family in ("contacts", "last", "reachable")
                  for c in CHANNELS)}

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        p, st = self.params, self.state
        if accounts.empty:
            return no_requests()
        ids = accounts.index.to_numpy(dtype=np.int64)
        st.ensure(ids)
        dpd = accounts["dpd"].to_numpy()
        paid_now = accounts["paid_so_far"].to_numpy(dtype=np.float64)
        promised_now = accounts["promises_made"].to_numpy().astype(np.int32)
        broken_now = accounts["promises_broken"].to_numpy().astype(np.int32)
        # Per-channel counters and last-contact times as (n, channels) matrices.
        contacts = np.column_stack([accounts[f"contacts_{c}"].to_numpy() for c in CHANNELS])
        last = np.column_stack([accounts[f"last_{c}"].to_numpy() for c in CHANNELS])
        reachable = np.column_stack([accounts[f"reachable_{c}"].to_numpy() for c in CHANNELS])
        rows = np.arange(ids.size)

        # What happened since the last epoch, from the observable counters.
        seen = st["seen"][ids]
        progress = seen & ((paid_now > st["paid"][ids] + 1e-9)
                           | (promised_now > st["promised"][ids]))
        broke = seen & (broken_now > st["broken"][ids]) & ~progress
        st["paid"][ids], st["promised"][ids], st["broken"][ids] = (
            paid_now, promised_now, broken_now)
        st["seen"][ids] = True

        rung = st["rung"][ids].astype(np.int64)
        # Cured: nothing past due any more (a living book's accounts stay in the view
        # between statements). The ladder starts afresh at the next delinquency.
        cured = (rung >= 0) & (dpd < 1)
        if cured.any():
            st["rung"][ids[cured]] = NOT_STARTED
            rung = np.where(cured, NOT_STARTED, rung)
        top = len(p.ladder) - 1
        started = rung >= 0
        start = ~started & (dpd >= p.start_dpd)

        # State of the current rung (meaningful where started).
        ch = np.where(started, self._rung_channel[np.maximum(rung, 0)], -1)
        has_ch = ch >= 0
        chc = np.maximum(ch, 0)
        at_rung = np.where(has_ch, contacts[rows, chc] - st["base"][ids], 0)
        last_at = np.where(has_ch & (last[rows, chc] >= st["entered"][ids]),
                           last[rows, chc], np.nan)
        since = day - last_at  # NaN when no contact on this rung yet
        spent = at_rung >= p.contacts_per_rung
        silent = spent & (since >= p.patience_days)
        unreachable = has_ch & ~reachable[rows, chc]

        down = started & progress & (rung > 0)
        up = started & ~progress & (broke | silent | unreachable) & (rung < top)
        new_rung = np.where(start, 0, rung + up - down)
        changed = start | up | down
        if changed.any():
            i = ids[changed]
            r = new_rung[changed]
            st["rung"][i] = r
            st["entered"][i] = day
            nch = self._rung_channel[r]
            st["base"][i] = np.where(nch >= 0, contacts[rows[changed], np.maximum(nch, 0)], 0)

        # Contacts on the (possibly new) rung.
        rung = new_rung
        active = rung >= 0
        ch = np.where(active, self._rung_channel[np.maximum(rung, 0)], -1)
        chc = np.maximum(ch, 0)
        at_rung = np.where(changed, 0, at_rung)
        since = np.where(changed, np.nan, since)
        want = (active & (ch >= 0) & reachable[rows, chc] & (at_rung < p.contacts_per_rung)
                & ~(since < p.gap_days)  # NaN (no contact yet on this rung) passes
                & ~accounts["do_not_contact"].to_numpy())
        if p.pause_on_promise:
            want &= ~accounts["open_promise"].to_numpy()
        if not want.any():
            return no_requests()
        sel = np.flatnonzero(want)
        channel = np.asarray(CHANNELS, dtype=object)[ch[sel]]
        amount = accounts["amount_due"].to_numpy()[sel]
        priority = np.where(ch[sel] == CHANNELS.index("agent_call"), -amount, 0.0)
        return make_requests(ids[sel], channel, self._rung_hour[rung[sel]], priority)
