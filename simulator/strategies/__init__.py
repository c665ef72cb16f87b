"""Strategy plug-ins: the interface, the built-in library and loading by reference."""

from simulator.strategies.base import Strategy, StrategyParams, make_requests, no_requests
from simulator.strategies.cadence import Step
from simulator.strategies.loader import BUILTINS, build_strategy, resolve_strategy

__all__ = [
    "BUILTINS",
    "Step",
    "Strategy",
    "StrategyParams",
    "build_strategy",
    "make_requests",
    "no_requests",
    "resolve_strategy",
]
