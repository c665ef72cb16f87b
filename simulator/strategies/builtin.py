"""Built-in strategies of the core simulator."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field

from simulator.strategies.base import Strategy, StrategyParams, no_requests
from simulator.strategies.cadence import Step, cadence_columns, run_cadence


class NoContact(Strategy[StrategyParams]):
    """The control arm: never contacts anyone."""

    name = "no_contact"
    description = "Control arm: no contact at all."

    def view_columns(self) -> Collection[str]:
        return ()

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        return no_requests()


def _default_cadence() -> tuple[Step, ...]:
    return (
        Step(channel="sms", hour=10, days=(1, 3, 7, 14, 21, 28, 45, 60)),
        Step(channel="robocall", hour=11, days=(5, 12, 19)),
        Step(channel="agent_call", hour=9, from_dpd=10, to_dpd=120, every=3),
    )


class FixedCadenceParams(StrategyParams):
    steps: tuple[Step, ...] = Field(
        default_factory=_default_cadence,
        description="the cadence: channel by days past due (see Step)",
    )
    pause_on_promise: bool = Field(True, description="no contact while a promise is open")


class FixedCadence(Strategy[FixedCadenceParams]):
    """The same cadence for everyone: channel by days past due.

    Business rule: SMS on days 1, 3, 7, 14, 21, 28, 45 and 60 past due, robo-calls on
    days 5, 12 and 19, agent calls every third day from day 10 to day 120 (largest
    amount first). ``steps`` replaces the whole cadence (each step: ``channel``,
    ``hour``, ``days`` and/or ``from_dpd``, ``to_dpd``, ``every``); with
    ``pause_on_promise`` (on) nothing is sent while a promise to pay is open.
    """

    name = "fixed_cadence"
    description = "One cadence for all: SMS from day 1, robo-calls, agent calls from day 10."
    Params = FixedCadenceParams

    def view_columns(self) -> Collection[str]:
        return cadence_columns(self.params.steps, self.params.pause_on_promise)

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        return run_cadence(accounts, p.steps, p.pause_on_promise)


def _low() -> tuple[Step, ...]:
    return (
        Step(channel="push", hour=10, days=(1, 3)),
        Step(channel="sms", hour=10, days=(1, 5, 12, 25)),
        Step(channel="agent_call", hour=9, from_dpd=30, to_dpd=120, every=7),
    )


def _medium() -> tuple[Step, ...]:
    return (
        Step(channel="sms", hour=10, days=(1, 3, 7, 14, 21)),
        Step(channel="robocall", hour=11, days=(4, 10)),
        Step(channel="agent_call", hour=9, from_dpd=7, to_dpd=120, every=4),
    )


def _high() -> tuple[Step, ...]:
    return (
        Step(channel="sms", hour=10, days=(-2, 1, 2, 4, 7, 10, 14, 21)),
        Step(channel="robocall", hour=11, days=(3, 6, 9)),
        Step(channel="agent_call", hour=9, from_dpd=2, to_dpd=150, every=2),
    )


class RiskTieredParams(StrategyParams):
    high_risk_score: float = Field(600, description="score below this is high risk")
    medium_risk_score: float = Field(680, description="score below this is medium risk")
    high_risk_prior_delinquencies: Annotated[int, Field(ge=0)] = Field(
        2, description="this many prior delinquencies make an account high risk")
    large_amount: Annotated[float, Field(ge=0)] = Field(
        1500, description="amount due at or above this moves an account up one tier")
    low: tuple[Step, ...] = Field(default_factory=_low, description="cadence of the low tier")
    medium: tuple[Step, ...] = Field(default_factory=_medium,
                                     description="cadence of the medium tier")
    high: tuple[Step, ...] = Field(default_factory=_high, description="cadence of the high tier")
    pause_on_promise: bool = Field(True, description="no contact while a promise is open")


class RiskTiered(Strategy[RiskTieredParams]):
    """Tiers from the three factors lenders use, each tier with its own cadence.

    Business rule: predicted default risk from the score (high below
    ``high_risk_score`` 600, medium below ``medium_risk_score`` 680), prior
    delinquencies (``high_risk_prior_delinquencies``, 2 or more: high), and amount
    (``large_amount``, 1500 or more, moves the account up a tier). The ``low`` tier gets
    push and SMS and late agent calls; ``medium`` adds robo-calls and calls every 4 days
    from day 7; ``high`` gets a pre-due SMS two days before the due date and calls every
    other day from day 2. Each tier's cadence is a list of steps as in
    ``fixed_cadence``; with ``pause_on_promise`` (on) nothing is sent while a promise to
    pay is open.
    """

    name = "risk_tiered"
    description = "Score, prior delinquencies and amount set a tier; each tier its cadence."
    Params = RiskTieredParams

    def tiers(self, accounts: pd.DataFrame) -> np.ndarray:
        """0 low, 1 medium, 2 high."""
        p = self.params
        score = accounts["score"].to_numpy()
        tier = np.where(score < p.medium_risk_score, 1, 0)
        tier = np.where(score < p.high_risk_score, 2, tier)
        tier = np.where(accounts["prior_delinquencies"].to_numpy()
                        >= p.high_risk_prior_delinquencies, 2, tier)
        tier = np.where(accounts["amount_due"].to_numpy() >= p.large_amount,
                        np.minimum(tier + 1, 2), tier)
        return tier

    def view_columns(self) -> Collection[str]:
        p = self.params
        return ({"score", "prior_delinquencies", "amount_due"}
                | cadence_columns(p.low + p.medium + p.high, p.pause_on_promise))

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        tier = self.tiers(accounts)
        frames = [run_cadence(accounts, steps, p.pause_on_promise, tier == k)
                  for k, steps in enumerate((p.low, p.medium, p.high))]
        return pd.concat(frames, ignore_index=True)
