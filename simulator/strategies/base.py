"""The strategy interface: a plug-in that decides who is contacted, when and how.

A strategy sees only observable state (``simulator.view.VIEW_COLUMNS``) and returns
contact *requests*; the engine decides which of them may happen (rule pack, agent
capacity) and what they cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import Any, ClassVar, Generic, TypeVar, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from simulator.scenario import StrategySpec

REQUEST_COLUMNS = ("account_id", "channel", "hour", "priority")


class StrategyParams(BaseModel):
    """Base of a strategy's declared parameters (validated from the scenario file)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


P = TypeVar("P", bound=StrategyParams)


class Strategy(ABC, Generic[P]):
    """Base class of every strategy.

    Subclasses set ``name`` and ``description``, may declare ``Params`` (a
    ``StrategyParams`` subclass), and implement ``decide``. Writing
    ``class Mine(Strategy[MyParams])`` types ``self.params`` as ``MyParams``; a plain
    ``class Mine(Strategy)`` works too.

    A strategy may keep state between epochs (it is built once per run) and draws any
    randomness from ``self.rng``, its own stream. A constructor that accepts a keyword
    ``base_dir`` receives the scenario's folder, to resolve relative paths in its
    parameters; one that accepts ``build`` receives a ``BuildStrategy`` that builds other
    strategies from their specs (a strategy made of strategies, such as
    ``champion_challenger``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams

    def __init__(self, params: P | None = None,
                 rng: np.random.Generator | None = None):
        self.params: P = params if params is not None else cast(P, self.Params())
        self.rng = rng if rng is not None else np.random.default_rng(0)

    @abstractmethod
    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        """Contact requests for this decision epoch.

        ``accounts`` holds the observable columns of open accounts (index: account_id).
        Return a DataFrame with columns ``account_id``, ``channel`` (push, email, sms,
        robocall, agent_call), ``hour`` (0 <= hour < 24, when the request is released
        that day) and optionally ``priority`` (agent calls: lower is served first).
        """

    def view_columns(self) -> Collection[str] | None:
        """The view columns ``decide`` reads (names from ``simulator.view.ALL_COLUMNS``),
        or None, the default, for every column.

        Asked once per run. Naming the columns makes each decision epoch cheaper on a
        large book, as only those are gathered; a column read but not named is missing.
        """
        return None

    def learn(self, outcomes: pd.DataFrame) -> None:
        """Receive the observable events since the previous decision epoch (optional).

        Called just before ``decide`` at each epoch, only if the subclass overrides it.
        ``outcomes`` has one row per event: ``t`` (day, float), ``account_id``, ``event``
        (payment, contact, promise, promise_kept, promise_broken, complaint, opt_out,
        churn, blocked), ``channel`` (NaN for payments), ``amount`` (paid, promised, or
        the contact's cost), ``code`` (contacts: index into ``simulator.book.OUTCOMES``;
        payments: 0 before the due date, 1 delinquent, 2 via the agency) and
        ``agent_minutes``.
        """


def make_requests(account_id: Any, channel: str | Any, hour: float | Any,
                  priority: float | Any = 0.0) -> pd.DataFrame:
    """Build a request frame, broadcasting scalar channel, hour and priority."""
    ids = np.asarray(account_id, dtype=np.int64)
    n = ids.size
    return pd.DataFrame({
        "account_id": ids,
        "channel": np.broadcast_to(np.asarray(channel, dtype=object), (n,)),
        "hour": np.broadcast_to(np.asarray(hour, dtype=np.float64), (n,)),
        "priority": np.broadcast_to(np.asarray(priority, dtype=np.float64), (n,)),
    })


def no_requests() -> pd.DataFrame:
    """An empty request frame."""
    return make_requests(np.empty(0, dtype=np.int64), "sms", 0.0)


#: Builds a strategy from its spec and random stream, references resolved as for the
#: strategy that receives it (the loader's ``build_strategy`` with its folder bound).
BuildStrategy = Callable[[StrategySpec, np.random.Generator], "Strategy[Any]"]
