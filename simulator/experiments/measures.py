"""Measures: a KPI and the direction in which it is better, shared by every experiment.

``net_value:max`` and ``churn_rate:min`` name an objective; ``churn_rate<=0.01`` a
constraint. Robustness ranks strategies by a measure, power tests one, an optimisation
maximises one under constraints. The KPI must be one a run reports
(``simulator.kpis.kpi_range`` knows it), so a typo is refused before anything runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from simulator.errors import UserError
from simulator.kpis import kpi_range

Direction = Literal["max", "min"]

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*(\S+)\s*$")


def _known(kpi: str, source: str) -> None:
    if kpi_range(kpi) is None:
        raise UserError(f"'{kpi}' is not a KPI (see the KPI columns of kpis.csv or "
                        "KPI_DEFINITIONS in simulator/kpis.py)", source=source)


@dataclass(frozen=True)
class Measure:
    """A KPI and whether more (``max``) or less (``min``) of it is better."""

    kpi: str
    direction: Direction

    @classmethod
    def parse(cls, text: str, source: str = "--objective") -> Measure:
        """``kpi:max`` or ``kpi:min``; one-line error naming ``source`` otherwise."""
        kpi, sep, direction = text.strip().partition(":")
        if not sep or direction not in ("max", "min") or not kpi:
            raise UserError(f"expected KPI:max or KPI:min (e.g. net_value:max), got '{text}'",
                            source=source)
        _known(kpi, source)
        return cls(kpi, "max" if direction == "max" else "min")

    def score(self, value: float) -> float:
        """``value`` oriented so that higher is better (``-value`` for ``min``)."""
        return value if self.direction == "max" else -value

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return self.score(a) > self.score(b)

    def __str__(self) -> str:
        return f"{self.kpi}:{self.direction}"


@dataclass(frozen=True)
class Constraint:
    """A bound a KPI must respect: ``kpi <= bound`` or ``kpi >= bound``."""

    kpi: str
    op: Literal["<=", ">="]
    bound: float

    @classmethod
    def parse(cls, text: str, source: str = "--constraint") -> Constraint:
        match = _CONSTRAINT.match(text)
        if match is None:
            raise UserError(f"expected KPI<=VALUE or KPI>=VALUE (e.g. churn_rate<=0.01), got "
                            f"'{text}'", source=source)
        kpi, op, raw = match.groups()
        _known(kpi, source)
        try:
            bound = float(raw)
        except ValueError:
            raise UserError(f"'{raw}' is not a number", source=source) from None
        if not math.isfinite(bound):
            raise UserError(f"the bound must be a finite number, got '{raw}'", source=source)
        return cls(kpi, "<=" if op == "<=" else ">=", bound)

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the constraint (NaN never does)."""
        if math.isnan(value):
            return False
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.kpi}{self.op}{self.bound:g}"
