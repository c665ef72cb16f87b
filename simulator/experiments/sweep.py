"""Sweeps: many (scenario variant x strategy x replication) cells, resumable, on a pool or Dask.

A sweep file names a base scenario, the factors that vary it, the strategies and the
replications::

    base: ../default.yaml           # relative to the sweep file
    set: {population.size: 4000}    # optional: fixed overrides of every variant
    factors:
      grid:                         # every combination ...
        agents.count: [2, 4, 8]
        strategies.fixed_cadence.params.steps.2.every: [1, 3, 7]
      # ... or a Latin hypercube sample over ranges (scipy.stats.qmc):
      # latin_hypercube: {samples: 20, seed: 1, ranges: {agents.count: [1, 8]},
      #                   integer: [agents.count]}
    strategies:                     # default: the base scenario's
      - {use: fixed_cadence, params: {...}}
      - {use: risk_tiered}
    replications: 3                 # default: the base scenario's

A factor key is a dotted path into the scenario (``agents.count``) or, when it starts
with ``strategies.<name>.``, into that strategy's spec (its ``params``); a strategy
factor leaves the other strategies alone (their column in ``kpis.csv`` is empty).

Every replication of every variant and strategy runs on the seed
``replication_seed(scenario.seed, replication)``: common random numbers across
strategies *and* variants. A cell's key is the SHA-256 of the canonical JSON of what
determines its result: the resolved scenario (without the fields that do not reach
one run: ``seed``, ``replications``, ``strategies``), the strategy spec, the seed and
the simulator version. Cells are content-addressed, so a rerun computes only the
cells whose file is missing, unreadable, failed or from another simulator version.

Output folder::

    DIR/sweep.resolved.yaml   the resolved sweep: base scenario, variants, strategies
    DIR/cells/<key>.json      one file per cell, written atomically as it completes:
                              {key, status: ok|failed, error, variant, strategy,
                               replication, seed, simulator_version, kpis, checksum}
    DIR/kpis.csv              one row per ok cell: the factors (dotted names), strategy,
                              replication, seed, then the KPIs (as in ``contactsim run``)

The folder is locked while a sweep runs (a second sweep on it is refused);
``kpis.csv`` and ``sweep.resolved.yaml`` are put in place together at the end, and a
cell file is reused only if it passes ``check_cell`` (checksum and KPI schema).
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from simulator.engine import Results
from simulator.errors import ResourceError, ScenarioError, StrategyError, UserError
from simulator.experiments.backends import Backend
from simulator.experiments.cache import locked_folder, run_cached
from simulator.experiments.cells import (
    NOT_IN_CELL,
    CellTask,
    canonical_json,
    cell_key,
    simulator_version,
)
from simulator.experiments.outputs import OutputFolder
from simulator.experiments.runner import kpi_frame
from simulator.experiments.supervised import check_strategies
from simulator.rng import replication_seed
from simulator.scenario import (
    StrategySpec,
    apply_override,
    format_validation_error,
    parse_override,
    read_yaml,
    scenario_from_dict,
)

# scipy.stats.qmc is imported inside the functions that use it: importing it takes about a
# second, which every command (a --help, a file refused at once) would otherwise pay.

#: A factor value: a plain scalar, so that it fits a column of ``kpis.csv``.
FactorValue = StrictBool | StrictInt | StrictFloat | StrictStr

STRATEGY_PREFIX = "strategies."


# --------------------------------------------------------------------------- sweep file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LatinHypercube(_Strict):
    """A Latin hypercube sample of ``samples`` points over the ``ranges`` (scipy.stats.qmc)."""

    samples: Annotated[int, Field(ge=1, le=100_000)]
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    ranges: dict[str, tuple[float, float]] = Field(min_length=1)
    integer: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> LatinHypercube:
        for key, (low, high) in self.ranges.items():
            if high < low:
                raise ValueError(f"range of '{key}': high ({high}) is below low ({low})")
        unknown = [k for k in self.integer if k not in self.ranges]
        if unknown:
            raise ValueError(f"integer names {', '.join(unknown)}, which have no range")
        for key in self.integer:
            low, high = self.ranges[key]
            if math.ceil(low) > math.floor(high):
                raise ValueError(f"range of '{key}' holds no integer")
        return self


class Factors(_Strict):
    """What varies between scenario variants: a full grid or a Latin hypercube."""

    grid: dict[str, list[FactorValue]] | None = Field(None, min_length=1)
    latin_hypercube: LatinHypercube | None = None

    @field_validator("grid")
    @classmethod
    def _levels(cls, v: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        for key, levels in (v or {}).items():
            if not levels:
                raise ValueError(f"'{key}' has no values")
            seen = [json.dumps(x) for x in levels]
            if len(set(seen)) != len(seen):
                raise ValueError(f"'{key}' lists a value twice")
        return v

    @model_validator(mode="after")
    def _one_design(self) -> Factors:
        if (self.grid is None) == (self.latin_hypercube is None):
            raise ValueError("give exactly one of grid or latin_hypercube")
        return self

    def names(self) -> list[str]:
        if self.grid is not None:
            return list(self.grid)
        assert self.latin_hypercube is not None
        return list(self.latin_hypercube.ranges)


class SweepFile(_Strict):
    """A sweep file as written, validated."""

    name: str | None = Field(None, description="name of the sweep (default: the file's stem)")
    description: str = ""
    base: str = Field(min_length=1, description="base scenario, relative to the sweep file")
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set",
                                      description="dotted key -> value set in every variant")
    factors: Factors | None = None
    strategies: tuple[StrategySpec, ...] | None = Field(None, min_length=1)
    replications: Annotated[int, Field(ge=1, le=10_000)] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("strategies")
    @classmethod
    def _unique(cls, v: tuple[StrategySpec, ...] | None) -> tuple[StrategySpec, ...] | None:
        names = [s.name for s in v or ()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"strategy names must be unique; repeated: {', '.join(dupes)} "
                             "(give each a label)")
        return v


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class SweepCell:
    """One cell: a scenario variant, a strategy and a replication."""

    key: str
    variant: dict[str, Any]
    strategy: str
    replication: int
    seed: int
    scenario: dict[str, Any] = field(repr=False)
    spec: dict[str, Any] = field(repr=False)
    base_dir: str | None = field(default=None, repr=False)

    def task(self) -> CellTask:
        return CellTask.make(self.scenario, self.spec, self.seed, self.replication,
                             variant=self.variant, base_dir=self.base_dir)


@dataclass(frozen=True)
class SweepPlan:
    """A sweep resolved into its cells (variant-major, then strategy, then replication)."""

    name: str
    source: Path
    base: Path
    description: str
    factors: list[str]
    design: str
    variants: list[dict[str, Any]]
    strategies: list[StrategySpec]
    replications: int
    scenario: dict[str, Any]
    cells: list[SweepCell]
    sweep: dict[str, Any]
    command_line_set: dict[str, Any] = field(default_factory=dict)

    def unique_cells(self) -> list[SweepCell]:
        """The cells to compute: the first cell of each key (identical cells run once)."""
        seen: dict[str, SweepCell] = {}
        for c in self.cells:
            seen.setdefault(c.key, c)
        return list(seen.values())

    def resolved(self) -> dict[str, Any]:
        """What ``sweep.resolved.yaml`` holds."""
        return {
            "name": self.name,
            "description": self.description,
            "sweep_file": str(self.source.resolve()),
            "base": str(self.base),
            "simulator_version": simulator_version(),
            "design": self.design,
            "factors": self.factors,
            "factor_spec": self.sweep.get("factors"),
            "set": {**self.sweep.get("set", {}), **self.command_line_set},
            "command_line_set": self.command_line_set,
            "replications": self.replications,
            "strategies": [s.model_dump(mode="json") for s in self.strategies],
            "variants": self.variants,
            "cells": len(self.cells),
            "unique_cells": len(self.unique_cells()),
            "scenario": self.scenario,
        }


def _grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def latin_hypercube_points(design: LatinHypercube) -> list[dict[str, Any]]:
    """``design.samples`` points, one per stratum of every range.

    A float factor is ``low + u (high - low)``; an integer factor takes each integer of
    ``[low, high]`` with equal probability (``floor`` of ``u`` spread over them).
    """
    from scipy.stats import qmc
    keys = list(design.ranges)
    rng = np.random.default_rng(design.seed)
    if "rng" in inspect.signature(qmc.LatinHypercube).parameters:
        sampler = qmc.LatinHypercube(d=len(keys), rng=rng)
    else:  # scipy < 1.15
        sampler = qmc.LatinHypercube(d=len(keys), seed=rng)
    u = sampler.random(design.samples)
    points = []
    for row in u:
        point: dict[str, Any] = {}
        for key, ui in zip(keys, row, strict=True):
            low, high = design.ranges[key]
            if key in design.integer:
                lo, hi = math.ceil(low), math.floor(high)
                point[key] = int(min(hi, lo + math.floor(float(ui) * (hi - lo + 1))))
            else:
                point[key] = float(low + float(ui) * (high - low))
        points.append(point)
    return points


def _split_strategy_key(key: str, names: Sequence[str]) -> tuple[str, list[str]] | None:
    """``strategies.<name>.<path>`` -> (name, path), the longest matching name first."""
    if not key.startswith(STRATEGY_PREFIX):
        return None
    rest = key[len(STRATEGY_PREFIX):]
    for name in sorted(names, key=len, reverse=True):
        if rest.startswith(name + ".") and len(rest) > len(name) + 1:
            return name, rest[len(name) + 1:].split(".")
    return None


def _cell_scenario(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in NOT_IN_CELL}


#: The most cells a sweep may plan unless told otherwise (``contactsim sweep --max-cells``):
#: planning takes a few milliseconds and a few kilobytes per cell, so 50,000 cells plan in
#: about a minute and take a few hundred MB, and compute for hours.
MAX_CELLS = 50_000


def planned_cells(sweep: SweepFile, strategies: int, replications: int) -> int:
    """Cells of a plan before it is built: variants x strategies x replications, where a
    grid has the product of its level counts as variants and a Latin hypercube its
    samples (an upper bound: a strategy factor's repeated cells are run once)."""
    variants = 1
    if sweep.factors is not None and sweep.factors.grid is not None:
        variants = math.prod(len(levels) for levels in sweep.factors.grid.values())
    elif sweep.factors is not None and sweep.factors.latin_hypercube is not None:
        variants = sweep.factors.latin_hypercube.samples
    return variants * strategies * replications


def load_sweep(path: str | Path, overrides: Sequence[str] = (),
               max_cells: int = MAX_CELLS) -> SweepPlan:
    """Read and validate a sweep file and resolve it into cells.

    ``overrides`` (``KEY=VALUE``, from ``contactsim sweep --set``) are set in every
    variant after the file's own ``set:``, as if added to it. Every variant's scenario
    and every strategy is validated here, so that a mistake in the sweep file is one
    error naming the file and field before anything runs. A plan of more than
    ``max_cells`` cells is refused before it is built.
    """
    source = Path(path)
    raw = read_yaml(source)
    try:
        sweep = SweepFile.model_validate(raw)
    except ValidationError as exc:
        fld, msg = format_validation_error(exc)
        raise ScenarioError(msg, source=str(source), field=fld) from None
    here = source.resolve().parent
    base = Path(sweep.base)
    if not base.is_absolute():
        base = (here / base).resolve()
    base_data = read_yaml(base)
    base_scenario = scenario_from_dict(base_data, source=str(base))

    data = copy.deepcopy(base_data)
    for key, value in sweep.overrides.items():
        if key.startswith(STRATEGY_PREFIX) or key in ("replications", "strategies"):
            raise ScenarioError("set applies to the scenario; give strategies in 'strategies'",
                                source=str(source), field=f"set.{key}")
        _override(data, key, value, source, f"set.{key}")
    command_line: dict[str, Any] = {}
    for text in overrides:
        key_path, value = parse_override(text)
        key = ".".join(key_path)
        if key.startswith(STRATEGY_PREFIX) or key in ("replications", "strategies"):
            raise ScenarioError("--set applies to the scenario; strategies and replications "
                                "are the sweep file's", source=f"--set {text}")
        try:
            apply_override(data, key_path, value)
        except ScenarioError as exc:
            raise ScenarioError(exc.detail, source=f"--set {text}", field=exc.field) from None
        command_line[key] = value
    try:
        resolved_base = scenario_from_dict(data, source=f"{source} (base with set)")
    except ScenarioError as exc:
        culprit = next((f"{k}={v}" for k, v in command_line.items()
                        if exc.field and (exc.field == k or exc.field.startswith(k + ".")
                                          or k.startswith(exc.field + "."))), None)
        if culprit is None:
            raise
        raise ScenarioError(exc.detail, source=f"--set {culprit}", field=exc.field) from None

    if sweep.strategies is not None:
        strategies = list(sweep.strategies)
        strategy_dir = here
    else:
        strategies = list(base_scenario.strategies)
        strategy_dir = base.resolve().parent
    names = [s.name for s in strategies]
    replications = sweep.replications or base_scenario.replications
    planned = planned_cells(sweep, len(strategies), replications)
    if planned > max_cells:
        raise ResourceError(
            f"the plan has {planned:,} cells (variants x strategies x replications), more "
            f"than the cap of {max_cells:,}; raise it with --max-cells if that is meant",
            source=str(source), field="factors" if sweep.factors is not None else None)

    factors: list[str] = []
    design = "none"
    points: list[dict[str, Any]] = [{}]
    if sweep.factors is not None:
        factors = sweep.factors.names()
        if sweep.factors.grid is not None:
            design, points = "grid", _grid(sweep.factors.grid)
            where = "factors.grid"
        else:
            assert sweep.factors.latin_hypercube is not None
            design = "latin_hypercube"
            points = latin_hypercube_points(sweep.factors.latin_hypercube)
            where = "factors.latin_hypercube.ranges"
        for key in factors:
            if key in ("replications", "strategies") or (
                    key.startswith(STRATEGY_PREFIX) and _split_strategy_key(key, names) is None):
                raise ScenarioError(
                    f"a factor is a scenario field or strategies.<name>.<field> with <name> "
                    f"one of {', '.join(names)}", source=str(source), field=f"{where}.{key}")

    cells: list[SweepCell] = []
    variants: list[dict[str, Any]] = []
    checked: dict[str, StrategySpec] = {}  # every distinct strategy spec, to build once
    for point in points:
        scenario_data = copy.deepcopy(data)
        strategy_values: dict[str, list[tuple[str, list[str], Any]]] = {n: [] for n in names}
        for key, value in point.items():
            split = _split_strategy_key(key, names)
            if split is None:
                _override(scenario_data, key, value, source, f"factors.{key}")
            else:
                strategy_values[split[0]].append((key, split[1], value))
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        sc = scenario_from_dict(scenario_data, source=f"{source} (variant {label})")
        cell_scenario = _cell_scenario(sc.to_dict())
        variants.append(point)
        for spec in strategies:
            spec_data = spec.model_dump(mode="json")
            for key, spec_path, value in strategy_values[spec.name]:
                _override(spec_data, ".".join(spec_path), value, source, f"factors.{key}")
            try:
                eff = StrategySpec.model_validate(spec_data)
            except ValidationError as exc:
                fld, msg = format_validation_error(exc)
                raise ScenarioError(msg, source=str(source),
                                    field=f"strategies.{spec.name}.{fld}") from None
            spec_json = eff.model_dump(mode="json")
            text = canonical_json(spec_json)
            if text not in checked:  # unknown strategies and bad params fail below, once
                checked[text] = eff
            variant: dict[str, Any] = {}
            for key, value in point.items():
                split = _split_strategy_key(key, names)
                variant[key] = value if split is None or split[0] == spec.name else None
            for r in range(replications):
                seed = replication_seed(sc.seed, r)
                cells.append(SweepCell(
                    key=cell_key(cell_scenario, spec_json, seed), variant=variant,
                    strategy=eff.name, replication=r, seed=seed, scenario=cell_scenario,
                    spec=spec_json, base_dir=str(strategy_dir)))
    try:  # plug-in code is built in a supervised child, never in this process
        check_strategies(list(checked.values()), strategy_dir,
                         resolved_base.decision.timeout_seconds)
    except UserError as exc:
        raise StrategyError(str(exc), source=str(source)) from None
    # A strategy factor does not vary the other strategies: their repeated cells are one.
    unique: dict[tuple[str, str, int], SweepCell] = {}
    for c in cells:
        unique.setdefault((canonical_json(c.variant), c.strategy, c.replication), c)
    return SweepPlan(
        name=sweep.name or source.stem, source=source, base=base,
        description=sweep.description, factors=factors, design=design, variants=variants,
        strategies=strategies, replications=replications,
        scenario=resolved_base.to_dict(), cells=list(unique.values()),
        sweep=sweep.model_dump(mode="json", by_alias=True, exclude_none=True),
        command_line_set=command_line)


def _override(data: dict[str, Any], key: str, value: Any, source: Path, where: str) -> None:
    try:
        apply_override(data, key.split("."), value)
    except ScenarioError as exc:
        raise ScenarioError(exc.detail, source=str(source), field=where) from None


# --------------------------------------------------------------------------- a sweep


@dataclass
class SweepReport:
    """What a sweep run did."""

    out_dir: Path
    cells: int
    unique: int
    computed: int = 0
    reused: int = 0
    failed: int = 0
    replaced: int = 0
    invalid: int = 0
    stopped: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)
    kpis: pd.DataFrame | None = None


def sweep_kpis(plan: SweepPlan, records: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per ok cell of the plan: factors, strategy, replication, seed, KPIs."""
    empty = pd.DataFrame()
    ok = [c for c in plan.cells if c.key in records]
    results = [Results(strategy=c.strategy, replication=c.replication, seed=c.seed,
                       kpis={k: math.nan if v is None else float(v)
                             for k, v in records[c.key]["kpis"].items()},
                       events=empty, daily=empty, accounts=empty) for c in ok]
    frame = kpi_frame(results) if results else pd.DataFrame(
        columns=["strategy", "replication", "seed"])
    factors = pd.DataFrame([c.variant for c in ok], columns=plan.factors, index=frame.index)
    for col in plan.factors:
        # Integer factors stay integers where a strategy factor leaves cells empty.
        raw = [c.variant.get(col) for c in ok]
        given = [v for v in raw if v is not None]
        if given and all(isinstance(v, int) and not isinstance(v, bool) for v in given):
            factors[col] = pd.array(raw, dtype="Int64")
    return pd.concat([factors, frame], axis=1)


def run_sweep(plan: SweepPlan, out_dir: Path, backend: Backend, *, fail_fast: bool = False,
              on_progress: Callable[[int, int], None] | None = None) -> SweepReport:
    """Compute the plan's missing cells on ``backend``, writing each as it arrives.

    ``on_progress(done, total)`` is called after the scan and after every cell. The
    output folder is locked for the whole sweep (``OutputFolder``).
    """
    with locked_folder(out_dir, backend) as folder:
        return _run_sweep(plan, folder, backend, fail_fast, on_progress)


def _run_sweep(plan: SweepPlan, folder: OutputFolder, backend: Backend, fail_fast: bool,
               on_progress: Callable[[int, int], None] | None) -> SweepReport:
    out_dir = folder.path
    done = run_cached([c.task() for c in plan.unique_cells()], out_dir / "cells", backend,
                      fail_fast=fail_fast, on_progress=on_progress)
    report = SweepReport(out_dir=out_dir, cells=len(plan.cells), unique=done.cells,
                         computed=done.computed, reused=done.reused, failed=done.failed,
                         replaced=done.replaced, invalid=done.invalid, stopped=done.stopped,
                         failures=done.failures)
    kpis = sweep_kpis(plan, done.records)
    text = yaml.safe_dump(plan.resolved(), sort_keys=False, allow_unicode=True)
    folder.stage("sweep.resolved.yaml", lambda p: p.write_text(text, encoding="utf-8"))
    folder.stage("kpis.csv", lambda p: kpis.to_csv(p, index=False))
    folder.commit("contactsim sweep")
    report.kpis = kpis
    return report
