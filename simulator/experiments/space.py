"""Parameter spaces: what an experiment varies, in one format for every command.

A parameter space names scenario fields by their dotted path and says which values each
may take: a real or integer range, optionally on a log scale or with a truncated normal
distribution, or a list of categories. The same file serves a calibration (the prior box
it searches), a robustness analysis (the uncertainties it samples) and a sweep or an
optimisation (the levers it varies)::

    parameters:
      channels.agent_call.impulse: {low: 0.1, high: 1.0}
      population.segments.on_time.lambda_inf: {low: 0.1, high: 0.5, log: true}
      population.segments.self_curer.share: {low: 0.05, high: 0.25}
      agents.count: {low: 2, high: 40, integer: true}
      repayment.fatigue_factor: {distribution: truncated_normal, mean: 0.7, sd: 0.1,
                                 low: 0.4, high: 1.0}
      compliance.pack: {values: [cn-2026, us-reg-f]}

Every parameter maps a point ``u`` of the unit interval to a value (its inverse
distribution function), so one unit-cube design (a scrambled Sobol sequence, SALib's
Saltelli design) serves every distribution. A segment's share may be a parameter: the
other segments' shares are then rescaled in proportion so that all still sum to 1.
The shape follows EMA workbench's Real/Integer/CategoricalParameter; ``optuna``
distributions and SALib's ``problem`` are what it converts to.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from simulator.errors import ScenarioError
from simulator.scenario import (
    SEGMENTS,
    apply_override,
    format_validation_error,
    read_yaml,
    scenario_from_dict,
)

# scipy.stats is imported inside the functions that use it: importing it takes about a
# second, which every command (a --help, a file refused at once) would otherwise pay.

#: A category of a categorical parameter: a plain scalar.
Category = StrictBool | StrictInt | StrictFloat | StrictStr

Distribution = Literal["uniform", "log_uniform", "truncated_normal"]

_SHARE = "population.segments.{}.share"
_SHARE_PATHS = {_SHARE.format(s): s for s in SEGMENTS}


class ParameterSpec(BaseModel):
    """One parameter as written in a parameter-space file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    low: float | None = Field(None, description="smallest value (real and integer)")
    high: float | None = Field(None, description="largest value (real and integer)")
    integer: StrictBool = Field(False, description="whole numbers only")
    log: StrictBool = Field(False, description="log scale (shorthand for log_uniform)")
    distribution: Distribution = Field(
        "uniform", description="uniform, log_uniform or truncated_normal over [low, high]")
    mean: float | None = Field(None, description="truncated_normal: mean before truncation")
    sd: Annotated[float, Field(gt=0)] | None = Field(
        None, description="truncated_normal: standard deviation before truncation")
    values: list[Category] | None = Field(None, min_length=1,
                                          description="categorical: the values it may take")
    label: str | None = Field(None, description="readable name in tables and figures")

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        if self.values is not None:
            if any(x is not None for x in (self.low, self.high, self.mean, self.sd)) or (
                    self.integer or self.log or self.distribution != "uniform"):
                raise ValueError("a categorical parameter gives only values (and a label)")
            if len({repr(v) for v in self.values}) != len(self.values):
                raise ValueError("values lists a value twice")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (or values for a categorical parameter)")
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        if self.integer and math.ceil(self.low) > math.floor(self.high):
            raise ValueError(f"[{self.low}, {self.high}] holds no integer")
        kind = self.kind
        if kind == "log_uniform" and self.low <= 0:
            raise ValueError("a log scale needs low > 0")
        if self.log and self.distribution == "truncated_normal":
            raise ValueError("log applies to a uniform distribution; give one of them")
        if kind == "truncated_normal":
            if self.mean is None or self.sd is None:
                raise ValueError("truncated_normal needs mean and sd")
            if self.integer:
                raise ValueError("truncated_normal applies to a real parameter")
        elif self.mean is not None or self.sd is not None:
            raise ValueError("mean and sd apply to distribution: truncated_normal only")
        return self

    @property
    def kind(self) -> str:
        """categorical, or the distribution of a range (log: true is log_uniform)."""
        if self.values is not None:
            return "categorical"
        return "log_uniform" if self.log else self.distribution


class SpaceFile(BaseModel):
    """A parameter-space file as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    description: str = ""
    parameters: dict[str, ParameterSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Parameter:
    """A validated parameter: its dotted path into the scenario and its spec."""

    path: str
    spec: ParameterSpec

    @property
    def name(self) -> str:
        """A readable name: the label, or the dotted path."""
        return self.spec.label or self.path

    @property
    def categorical(self) -> bool:
        return self.spec.values is not None

    def from_unit(self, u: float) -> Any:
        """The value at quantile ``u`` in [0, 1) of the parameter's distribution."""
        s = self.spec
        u = min(max(float(u), 0.0), math.nextafter(1.0, 0.0))
        if s.values is not None:
            return s.values[min(int(u * len(s.values)), len(s.values) - 1)]
        assert s.low is not None and s.high is not None
        if s.integer:
            lo, hi = math.ceil(s.low), math.floor(s.high)
            if s.kind == "log_uniform":  # each integer k gets the log-width of [k, k + 1)
                k = math.floor(math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo))))
                return int(min(max(k, lo), hi))
            return int(min(hi, lo + math.floor(u * (hi - lo + 1))))
        if s.kind == "log_uniform":
            return float(math.exp(math.log(s.low) + u * (math.log(s.high) - math.log(s.low))))
        if s.kind == "truncated_normal":
            assert s.mean is not None and s.sd is not None
            from scipy import stats
            a, b = (s.low - s.mean) / s.sd, (s.high - s.mean) / s.sd
            value = float(stats.truncnorm.ppf(u, a, b, loc=s.mean, scale=s.sd))
            return min(max(value, s.low), s.high)
        return float(s.low + u * (s.high - s.low))

    def to_unit(self, value: Any) -> float:
        """The quantile of ``value`` (the inverse of ``from_unit``, for reports and fits)."""
        s = self.spec
        if s.values is not None:
            return (s.values.index(value) + 0.5) / len(s.values)
        assert s.low is not None and s.high is not None
        if s.high == s.low:
            return 0.5
        if s.kind == "log_uniform":
            return (math.log(value) - math.log(s.low)) / (math.log(s.high) - math.log(s.low))
        if s.kind == "truncated_normal":
            assert s.mean is not None and s.sd is not None
            from scipy import stats
            a, b = (s.low - s.mean) / s.sd, (s.high - s.mean) / s.sd
            return float(stats.truncnorm.cdf(value, a, b, loc=s.mean, scale=s.sd))
        return (float(value) - s.low) / (s.high - s.low)

    def width(self) -> float:
        """The width of the range (the number of categories for a categorical one)."""
        s = self.spec
        if s.values is not None:
            return float(len(s.values))
        assert s.low is not None and s.high is not None
        return s.high - s.low

    def to_optuna(self) -> Any:
        """The matching ``optuna.distributions`` object (truncated normal: its range)."""
        from optuna import distributions as od

        s = self.spec
        if s.values is not None:
            return od.CategoricalDistribution(list(s.values))
        assert s.low is not None and s.high is not None
        log = s.kind == "log_uniform"
        if s.integer:
            return od.IntDistribution(math.ceil(s.low), math.floor(s.high), log=log)
        return od.FloatDistribution(s.low, s.high, log=log)


Point = dict[str, Any]


class ParameterSpace:
    """An ordered set of parameters over a base scenario's fields."""

    def __init__(self, parameters: Sequence[Parameter], source: str = "<space>"):
        self.parameters = tuple(parameters)
        self.source = source
        paths = [p.path for p in self.parameters]
        if len(set(paths)) != len(paths):
            raise ScenarioError("a parameter is named twice", source=source)
        shares = [p for p in self.parameters if p.path in _SHARE_PATHS]
        if shares:
            if any(p.categorical or p.spec.high is None for p in shares):
                raise ScenarioError("a segment share is a range, not categories",
                                    source=source, field=f"parameters.{shares[0].path}")
            if sum(p.spec.high or 0.0 for p in shares) >= 1.0:
                raise ScenarioError(
                    "the highs of the segment shares must sum to less than 1, so the other "
                    "segments keep a share", source=source,
                    field=f"parameters.{shares[0].path}.high")
            if len(shares) == len(SEGMENTS):
                raise ScenarioError("at most all segments but one may have a share parameter "
                                    "(the others are rescaled to sum to 1)", source=source,
                                    field="parameters")

    # ------------------------------------------------------------------ building

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<space>") -> ParameterSpace:
        """A space from plain data (a parsed file: ``{parameters: {path: spec}}``)."""
        try:
            parsed = SpaceFile.model_validate(data)
        except ValidationError as exc:
            field, msg = format_validation_error(exc)
            raise ScenarioError(msg, source=source, field=field) from None
        return cls([Parameter(path, spec) for path, spec in parsed.parameters.items()], source)

    @classmethod
    def load(cls, path: str | Path) -> ParameterSpace:
        """Read a parameter-space file safely and validate it."""
        return cls.from_mapping(read_yaml(path), source=str(path))

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    def by_path(self, path: str) -> Parameter:
        for p in self.parameters:
            if p.path == path:
                return p
        raise KeyError(path)

    # ------------------------------------------------------------------ checks

    def check(self, base: Mapping[str, Any], base_source: str) -> None:
        """Refuse, in one line naming the space file and the parameter, a path that is not
        a field of the scenario or a value the field cannot take.

        ``base`` is the resolved base scenario (``Scenario.to_dict()``). Each end of
        every range (each category) is set alone and the scenario validated, so the
        field's own schema decides what it can take.
        """
        for p in self.parameters:
            where = f"parameters.{p.path}"
            current = _lookup(base, p.path)
            if current is _MISSING:
                raise ScenarioError(f"'{p.path}' is not a field of the scenario "
                                    f"{base_source} (see docs/scenario-reference.md)",
                                    source=self.source, field=where)
            if not p.categorical and (isinstance(current, bool)
                                      or not isinstance(current, int | float)):
                raise ScenarioError(f"'{p.path}' is not a number in {base_source} "
                                    "(give values: [...] for a categorical field)",
                                    source=self.source, field=where)
            ends: list[tuple[str, Any]] = (
                [("values", v) for v in p.spec.values] if p.spec.values is not None
                else [("low", p.from_unit(0.0)), ("high", p.from_unit(1.0))])
            for end, value in ends:
                data = copy.deepcopy(dict(base))
                try:
                    self._set(data, p.path, value)
                    scenario_from_dict(data, source=self.source)
                except ScenarioError as exc:
                    raise ScenarioError(f"{value!r} is not a value {p.path} can take "
                                        f"({exc.detail})", source=self.source,
                                        field=f"{where}.{end}") from None

    # ------------------------------------------------------------------ points

    def point(self, u: Sequence[float]) -> Point:
        """The point at ``u`` in the unit cube (one coordinate per parameter)."""
        if len(u) != len(self.parameters):
            raise ValueError(f"expected {len(self.parameters)} coordinates, got {len(u)}")
        return {p.path: p.from_unit(x) for p, x in zip(self.parameters, u, strict=True)}

    def sobol_points(self, n: int, seed: int) -> list[Point]:
        """``n`` points of a scrambled Sobol sequence (scipy.stats.qmc), in order."""
        from scipy.stats import qmc
        rng = np.random.default_rng(seed)
        if "rng" in inspect.signature(qmc.Sobol).parameters:
            sampler = qmc.Sobol(d=len(self.parameters), scramble=True, rng=rng)
        else:  # scipy < 1.15
            sampler = qmc.Sobol(d=len(self.parameters), scramble=True, seed=rng)
        # Balance properties hold for powers of two; any n is a valid prefix of the design.
        return [self.point(row) for row in sampler.random(n)]

    def salib_problem(self) -> dict[str, Any]:
        """SALib's ``problem`` over the unit cube (values come from ``point``)."""
        return {"num_vars": len(self.parameters), "names": self.paths,
                "bounds": [[0.0, 1.0]] * len(self.parameters)}

    def saltelli_points(self, n_total: int, seed: int) -> list[Point]:
        """SALib's Saltelli design (first, total and second order) of ``n_total`` points.

        ``n_total`` must be a multiple of ``2D + 2`` (D parameters): N base samples give
        N (2D + 2) points. Raises ``ValueError`` saying so otherwise.
        """
        from SALib.sample import sobol as salib_sobol

        step = 2 * len(self.parameters) + 2
        if n_total < step or n_total % step:
            raise ValueError(f"with {len(self.parameters)} parameters a Sobol design needs a "
                             f"multiple of 2D+2 = {step} draws (e.g. {step * 8}), "
                             f"got {n_total}")
        u = salib_sobol.sample(self.salib_problem(), n_total // step,
                               calc_second_order=True, scramble=True, seed=seed)
        return [self.point(row) for row in u]

    def to_optuna(self) -> dict[str, Any]:
        """``{path: optuna distribution}``, for ``study.ask(...)``."""
        return {p.path: p.to_optuna() for p in self.parameters}

    # ------------------------------------------------------------------ applying

    def apply(self, base: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the resolved scenario data ``base`` with ``point`` set.

        Segment shares set by the point are kept; the other segments' shares are scaled
        in proportion so that every share still sums to 1.
        """
        data = copy.deepcopy(dict(base))
        for path, value in point.items():
            self._set(data, path, value)
        set_shares = {_SHARE_PATHS[p] for p in point if p in _SHARE_PATHS}
        if set_shares:
            _rescale_shares(data, set_shares)
        return data

    @staticmethod
    def _set(data: dict[str, Any], path: str, value: Any) -> None:
        apply_override(data, path.split("."), value)
        if path in _SHARE_PATHS:
            _rescale_shares(data, {_SHARE_PATHS[path]})


_MISSING = object()


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdecimal() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _rescale_shares(data: dict[str, Any], fixed: set[str]) -> None:
    """Scale the shares of the segments not in ``fixed`` so that all sum to 1."""
    segments = data.get("population", {}).get("segments", {})
    if not all(isinstance(segments.get(s), dict) and "share" in segments[s] for s in SEGMENTS):
        return  # not a resolved scenario: validation will say what is missing
    taken = sum(float(segments[s]["share"]) for s in fixed)
    free = [s for s in SEGMENTS if s not in fixed]
    rest = sum(float(segments[s]["share"]) for s in free)
    room = 1.0 - taken
    for s in free:
        old = float(segments[s]["share"])
        segments[s]["share"] = old * room / rest if rest > 0 else room / len(free)
