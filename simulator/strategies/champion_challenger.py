"""``champion_challenger``: accounts split at random between strategies in one portfolio."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from simulator.errors import StrategyError
from simulator.scenario import StrategySpec
from simulator.strategies.base import BuildStrategy, Strategy, StrategyParams, no_requests
from simulator.strategies.learning import stable_uniforms
from simulator.strategies.requests import validate_requests


class Arm(StrategyParams):
    """One arm of the test: a strategy (any reference) with its parameters and share."""

    use: str = Field(min_length=1, description="built-in name, module:Class or file.py:Class")
    params: dict[str, Any] = Field(default_factory=dict, description="the strategy's params")
    label: str | None = Field(None, description="name of the arm (default: use)")
    share: Annotated[float, Field(gt=0, le=1)] = Field(description="share of accounts")

    @property
    def name(self) -> str:
        return self.label or self.use


def _default_arms() -> tuple[Arm, ...]:
    return (Arm(use="fixed_cadence", label="champion", share=0.8),
            Arm(use="risk_tiered", label="challenger", share=0.2))


class ChampionChallengerParams(StrategyParams):
    arms: tuple[Arm, ...] = Field(
        default_factory=_default_arms,
        description="two or more arms, each {use, params, label, share}; shares sum to 1")
    fair_call_queue: bool = Field(
        True, description="interleave the arms' agent calls in proportion to their shares "
                          "(each arm keeps its own order); false: use the arms' own "
                          "priorities as they are")

    @field_validator("arms")
    @classmethod
    def _valid_arms(cls, arms: tuple[Arm, ...]) -> tuple[Arm, ...]:
        if len(arms) < 2:
            raise ValueError("give two or more arms")
        total = sum(a.share for a in arms)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"arm shares must sum to 1, they sum to {total:.6g}")
        names = [a.name for a in arms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"arm names must be unique; repeated: {', '.join(dupes)} "
                             "(give each a label)")
        return arms


class ChampionChallenger(Strategy[ChampionChallengerParams]):
    """Champion/challenger test inside one portfolio, as lenders run it in production.

    Business rule: each account is assigned at random, once and for good, to one of
    ``arms`` with probability equal to the arm's ``share`` (default: the champion
    ``fixed_cadence`` on 80 %, the challenger ``risk_tiered`` on 20 %). Each arm's
    strategy sees only its own accounts, decides for them and learns only from their
    outcomes; the arms share the agents and the rule pack. With ``fair_call_queue``
    (on) the arms' agent calls are interleaved in proportion to their shares, each arm
    keeping its own order, so neither arm can starve the other of agent time by its
    priority scale. ``arm_of(account_ids)`` names each account's arm, for KPIs per arm
    (``simulator.strategies.arms``). The assignment is a fixed hash of the account id
    keyed by this strategy's random stream: the same seed gives the same split.
    """

    name = "champion_challenger"
    description = "Random split of accounts between strategies in one book; KPIs per arm."
    Params = ChampionChallengerParams

    def __init__(self, params: ChampionChallengerParams | None = None,
                 rng: np.random.Generator | None = None, build: BuildStrategy | None = None):
        super().__init__(params, rng)
        # The loader hands over the builder of the arms (it also registers this class, so
        # importing the loader here would make the two modules import each other).
        if build is None:
            raise StrategyError("champion_challenger builds its arms with the strategy "
                                "loader: build it with simulator.strategies.build_strategy",
                                source="strategy 'champion_challenger'")
        arms = self.params.arms
        self._key = int(self.rng.integers(0, 2**63 - 1))
        self._cum = np.cumsum([a.share for a in arms])
        self._cum[-1] = 1.0
        self._shares = np.array([a.share for a in arms])
        self.labels: tuple[str, ...] = tuple(a.name for a in arms)
        self.children: list[Strategy[Any]] = []
        for k, (arm, child_rng) in enumerate(zip(arms, self.rng.spawn(len(arms)),
                                                 strict=True)):
            spec = StrategySpec(use=arm.use, params=arm.params, label=arm.name)
            try:
                self.children.append(build(spec, child_rng))
            except StrategyError as exc:
                raise StrategyError(f"{exc}", field=f"params.arms.{k}") from None
        self._learners = [type(c).learn is not Strategy.learn for c in self.children]

    def arm_index(self, account_ids: np.ndarray) -> np.ndarray:
        """Index into ``arms`` of each account."""
        ids = np.asarray(account_ids, dtype=np.int64)
        u = stable_uniforms(self._key, ids)
        return np.minimum(np.searchsorted(self._cum, u, side="right"), len(self._cum) - 1)

    def arm_of(self, account_ids: np.ndarray) -> np.ndarray:
        """The arm label of each account (an object array of strings)."""
        return np.asarray(self.labels, dtype=object)[self.arm_index(account_ids)]

    def _arm_call(self, k: int, method: str, call: Callable[..., Any], *args: Any) -> Any:
        """Call a method of arm ``k``; a failure is a StrategyError naming the arm (the
        engine adds this strategy's name and the day)."""
        try:
            return call(*args)
        except StrategyError as exc:
            raise StrategyError(f"arm '{self.labels[k]}': {exc}") from None
        except (Exception, SystemExit) as exc:
            raise StrategyError(f"arm '{self.labels[k]}': {method}() raised "
                                f"{type(exc).__name__}: {exc}") from exc

    def view_columns(self) -> Collection[str] | None:
        wanted = [self._arm_call(k, "view_columns", child.view_columns)
                  for k, child in enumerate(self.children)]
        if any(columns is None for columns in wanted):
            return None  # an arm reads every column
        return set().union(*(columns for columns in wanted if columns is not None))

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        arm = self.arm_index(accounts.index.to_numpy())
        frames = []
        for k, child in enumerate(self.children):
            mine = accounts.iloc[np.flatnonzero(arm == k)]
            req = self._arm_call(k, "decide", child.decide, day, mine)
            # Each arm's requests are checked against its own accounts, so that a fault
            # (or a request for another arm's account) is named by the arm.
            validate_requests(None, day, req, mine.index, arm=self.labels[k])
            if req.empty:
                continue
            req = req.reset_index(drop=True)
            if "priority" not in req.columns:
                req = req.assign(priority=0.0)
            if self.params.fair_call_queue:
                req = self._interleave(req, float(self._shares[k]))
            frames.append(req)
        if not frames:
            return no_requests()
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _interleave(req: pd.DataFrame, share: float) -> pd.DataFrame:
        """Replace agent-call priorities by (rank within the arm + 1/2) / share."""
        calls = (req["channel"].astype(str) == "agent_call").to_numpy()
        if not calls.any():
            return req
        prio = pd.to_numeric(req["priority"], errors="coerce").to_numpy(dtype=np.float64)
        rank = np.empty(int(calls.sum()))
        rank[np.argsort(prio[calls], kind="stable")] = np.arange(rank.size)
        prio = prio.copy()
        prio[calls] = (rank + 0.5) / share
        return req.assign(priority=prio)

    def learn(self, outcomes: pd.DataFrame) -> None:
        if not any(self._learners) or outcomes.empty:
            return
        arm = self.arm_index(outcomes["account_id"].to_numpy())
        for k, child in enumerate(self.children):
            if self._learners[k]:
                self._arm_call(k, "learn", child.learn, outcomes[arm == k].reset_index(drop=True))
