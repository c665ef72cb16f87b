"""``early_warning``: reminders before the due date, to high-risk accounts only."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from simulator.strategies.base import Strategy, StrategyParams
from simulator.strategies.cadence import Step, cadence_columns, run_cadence


def _default_reminders() -> tuple[Step, ...]:
    return (
        Step(channel="push", hour=10, days=(-5,)),
        Step(channel="sms", hour=10, days=(-3, -1)),
    )


class EarlyWarningParams(StrategyParams):
    high_risk_score: float = Field(
        600, description="a score below this is high predicted risk")
    high_risk_prior_delinquencies: Annotated[int, Field(ge=0)] = Field(
        2, description="this many prior delinquencies on file is high predicted risk too")
    reminders: tuple[Step, ...] = Field(
        default_factory=_default_reminders,
        description="the reminder cadence; every day must be before the due date "
                    "(days past due -1 or earlier)")

    @field_validator("reminders")
    @classmethod
    def _before_due(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        for step in steps:
            late = [d for d in step.days if d >= 0]
            if late:
                raise ValueError(f"reminder days must be negative (before the due date), "
                                 f"got {late}")
            if step.from_dpd is not None and step.to_dpd >= 0:
                raise ValueError("a reminder range must end before the due date "
                                 "(to_dpd -1 or earlier)")
        return steps


class EarlyWarning(Strategy[EarlyWarningParams]):
    """Pre-due reminders to accounts whose predicted risk is high; nothing to the rest.

    Business rule: an account is high risk when its score is below ``high_risk_score``
    (600) or it has ``high_risk_prior_delinquencies`` (2) or more earlier delinquencies
    on file. High-risk accounts get the ``reminders`` cadence before their due date
    (by default an app push 5 days before and an SMS 3 days and 1 day before); no
    account is contacted on or after its due date, and low-risk accounts never.
    Accounts on the do-not-contact register or unreachable on a step's channel are
    skipped.
    """

    name = "early_warning"
    description = "Reminders before the due date to high predicted risk only; no collections."
    Params = EarlyWarningParams

    def high_risk(self, accounts: pd.DataFrame) -> np.ndarray:
        """Whether each account's predicted risk is high."""
        p = self.params
        return ((accounts["score"].to_numpy() < p.high_risk_score)
                | (accounts["prior_delinquencies"].to_numpy()
                   >= p.high_risk_prior_delinquencies))

    def view_columns(self) -> Collection[str]:
        return ({"score", "prior_delinquencies"}
                | cadence_columns(self.params.reminders, pause_on_promise=False))

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        # Every step selects negative days past due only (validated), so the cadence
        # cannot reach an account on or after its due date.
        return run_cadence(accounts, self.params.reminders, pause_on_promise=False,
                           mask=self.high_risk(accounts))
