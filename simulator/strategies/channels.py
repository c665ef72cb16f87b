"""Per-channel settings shared by the built-in strategies: release hours and expected costs."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from simulator.scenario import CHANNELS
from simulator.strategies.base import StrategyParams

ChannelName = Literal["push", "email", "sms", "robocall", "agent_call"]

Hour = Annotated[float, Field(ge=0, lt=24)]
Money = Annotated[float, Field(ge=0)]


class ChannelHours(StrategyParams):
    """Hour of the day at which each channel's requests are released."""

    push: Hour = Field(10.0, description="hour of app pushes")
    email: Hour = Field(10.0, description="hour of e-mails")
    sms: Hour = Field(10.0, description="hour of SMS")
    robocall: Hour = Field(11.0, description="hour of robo-calls")
    agent_call: Hour = Field(9.0, description="hour agent calls are queued (dialled as agents "
                                              "free up)")

    def of(self, channel: str) -> float:
        return float(getattr(self, channel))


class ChannelCosts(StrategyParams):
    """Expected cost of one attempt per channel, before any cost is observed.

    Strategies that learn replace these by the mean cost of their executed contacts (the
    ``amount`` of contact events). The agent-call default assumes the default floor:
    30 s ring, about one dial in ten reaching the borrower for ~7 minutes, 40 an hour.
    """

    push: Money = Field(0.0, description="cost of an app push")
    email: Money = Field(0.005, description="cost of an e-mail")
    sms: Money = Field(0.04, description="cost of an SMS")
    robocall: Money = Field(0.2, description="cost of a robo-call")
    agent_call: Money = Field(0.8, description="agent time of a dial, at the staffed-hour cost")

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, c) for c in CHANNELS], dtype=np.float64)


class ChannelFractions(StrategyParams):
    """A fraction per channel (e.g. a prior estimate of uplift)."""

    push: float = Field(0.0, ge=-1, le=1)
    email: float = Field(0.0, ge=-1, le=1)
    sms: float = Field(0.0, ge=-1, le=1)
    robocall: float = Field(0.0, ge=-1, le=1)
    agent_call: float = Field(0.0, ge=-1, le=1)

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, c) for c in CHANNELS], dtype=np.float64)
