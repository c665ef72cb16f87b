"""Regression scenarios: run small scenarios and hold their KPIs to stored baselines.

A regression case is a scenario file ``<name>.yaml`` and its baseline
``<name>.baseline.yaml`` beside it. The baseline names, per strategy arm, the KPIs
checked, each with its expected value and band, and how the band was made:

* ``replications``: every arm runs ``replications`` times from the scenario's seed
  (common random numbers); the observed value is the mean over the replications and
  the band is ``expected ± k`` standard errors of that mean (or ``± tolerance`` when a
  KPI states one), cut to the range the KPI can take (``simulator.kpis.kpi_range``: a
  rate's band stays in [0, 1], a count's at or above 0; cutting never changes a
  verdict, as no observed mean lies outside the range).
* ``deterministic``: the observed value must equal the expected one to a relative
  tolerance ``rel_tol`` (1e-9 by default: it survives float formatting, nothing else).

Runs go through ``runner.run_cells``, whose results come back in cell order, so a
verdict depends on the files and the seed alone, never on the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.compliance import RulePack
from simulator.engine import Results
from simulator.errors import UserError
from simulator.experiments.cells import simulator_version
from simulator.experiments.runner import cells_of, run_cells
from simulator.kpis import KPI_DEFINITIONS, LIVING_ONLY_KPIS, kpi_range
from simulator.scenario import CHANNELS, Scenario, format_validation_error, load_scenario, read_yaml

BASELINE_SUFFIX = ".baseline.yaml"
DEFAULT_K = 4.0
DEFAULT_REL_TOL = 1e-9
#: Replications of a new ``replications`` baseline when the scenario asks for fewer than 2.
DEFAULT_REPLICATIONS = 8
#: KPIs a new baseline checks; edit the file to choose others and rerun ``--update``.
DEFAULT_KPIS: tuple[str, ...] = (
    "recovery_rate", "cure_rate_30", "churn_rate", "complaints", "contact_cost",
    "blocked_requests", "calls_dropped", "violations",
)
#: Absolute slack of every comparison, so that a value of exactly 0 compares equal to 0.
ABS_TOL = 1e-12

Mode = Literal["replications", "deterministic"]


class BaselineError(UserError):
    """A baseline file that is missing, cannot be read, or does not fit its scenario."""


# --------------------------------------------------------------------------- the file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KpiBaseline(_Strict):
    """One KPI of one arm: what it should be and how far it may move."""

    expected: float = Field(description="mean over the replications (or the exact value)")
    se: Annotated[float, Field(ge=0)] | None = Field(
        None, description="standard error of that mean (replications mode)")
    band: tuple[float, float] | None = Field(
        None, description="[low, high]: the observed mean must lie inside (replications mode)")
    tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="explicit half-width of the band instead of k standard errors; "
                          "kept by --update")

    @model_validator(mode="after")
    def _ordered(self) -> KpiBaseline:
        if self.band is not None:
            low, high = self.band
            if low > high:  # NaN bounds (a KPI undefined in the baseline) pass
                raise ValueError(f"band low ({low}) must not be above high ({high})")
        return self


class BaselineFile(_Strict):
    """What a ``<name>.baseline.yaml`` holds."""

    mode: Mode = "replications"
    replications: Annotated[int, Field(ge=1, le=1000)] = DEFAULT_REPLICATIONS
    k: Annotated[float, Field(gt=0, allow_inf_nan=False)] = DEFAULT_K
    rel_tol: Annotated[float, Field(ge=0, allow_inf_nan=False)] = DEFAULT_REL_TOL
    note: str = ""
    scenario_hash: str | None = None
    simulator_version: str | None = None
    # A KPI given as ``name: null`` (or ``{}``) has no value yet: --update fills it in.
    arms: dict[str, dict[str, KpiBaseline | None]] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> BaselineFile:
        if self.mode == "replications" and self.replications < 2:
            raise ValueError("replications mode needs at least 2 replications to measure a "
                             "standard error")
        for arm, kpis in self.arms.items():
            if not kpis:
                raise ValueError(f"arm '{arm}' lists no KPIs")
        return self


@dataclass(frozen=True)
class Case:
    """A regression scenario and its baseline (``None``: not written yet)."""

    name: str
    scenario_path: Path
    baseline_path: Path
    scenario: Scenario
    baseline: BaselineFile | None

    @property
    def arms(self) -> list[str]:
        return [s.name for s in self.scenario.strategies]

    def run_scenario(self) -> Scenario:
        """The scenario as run: its own seed, the baseline's number of replications."""
        reps = self.baseline.replications if self.baseline else default_replications(
            self.scenario)
        return self.scenario.model_copy(update={"replications": reps})


def default_replications(scenario: Scenario) -> int:
    return scenario.replications if scenario.replications >= 2 else DEFAULT_REPLICATIONS


def baseline_path_of(scenario_path: Path) -> Path:
    """``a/b.yaml`` -> ``a/b.baseline.yaml``."""
    return scenario_path.with_name(scenario_path.name.rsplit(".", 1)[0] + BASELINE_SUFFIX)


def scenario_hash(scenario: Scenario) -> str:
    """A short digest of the resolved scenario, without its number of replications."""
    data = scenario.to_dict()
    data.pop("replications", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def known_kpis(scenario: Scenario) -> set[str]:
    """Every KPI name a run of ``scenario`` reports (``LIVING_ONLY_KPIS`` only for a
    living book)."""
    names = set(KPI_DEFINITIONS)
    if not scenario.population.billing.enabled:
        names -= set(LIVING_ONLY_KPIS)
    names.update(f"cost_{c}" for c in CHANNELS)
    names.update(f"contacts_{c}" for c in CHANNELS)
    names.update(f"blocked_{r}" for r in RulePack.named(scenario.compliance.pack).rule_names)
    return names


# --------------------------------------------------------------------------- finding and loading


def _is_baseline(path: Path) -> bool:
    return path.name.endswith(BASELINE_SUFFIX)


def discover(paths: Sequence[Path]) -> list[Path]:
    """Scenario files named by ``paths``: files as given, folders by their ``*.yaml``.

    A baseline file stands for its scenario. Order: as given, folders sorted by name;
    repeats are dropped.
    """
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            inside = sorted(q for q in p.iterdir()
                            if q.suffix in (".yaml", ".yml") and q.is_file()
                            and not _is_baseline(q))
            if not inside:
                raise UserError("no scenario files (*.yaml) in this folder", source=str(p))
            found.extend(inside)
        elif p.exists():
            if _is_baseline(p):
                p = p.with_name(p.name[: -len(BASELINE_SUFFIX)] + ".yaml")
            found.append(p)
        else:
            raise UserError("no such file or folder", source=str(p))
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def read_baseline(path: Path) -> BaselineFile:
    """Read and validate a baseline file, raising ``BaselineError`` naming file and field."""
    try:
        data = read_yaml(path)
    except UserError as exc:
        raise BaselineError(exc.detail, source=str(path)) from None
    try:
        return BaselineFile.model_validate(data)
    except ValidationError as exc:
        where, msg = format_validation_error(exc)
        raise BaselineError(msg, source=str(path), field=where) from None


def load_case(path: Path, *, update: bool = False) -> Case:
    """Load a scenario and its baseline and check that they fit each other.

    Without ``update`` the baseline must exist, cover exactly the scenario's arms and
    give every KPI a value. With ``update`` a missing baseline, or a KPI without a value,
    is what the update will write.
    """
    scenario = load_scenario(path)
    bpath = baseline_path_of(path)
    baseline: BaselineFile | None = None
    if bpath.exists():
        baseline = read_baseline(bpath)
    elif not update:
        raise BaselineError(f"no baseline beside the scenario (create it with "
                            f"`contactsim check --update {path}`)", source=str(bpath))
    case = Case(name=scenario.name, scenario_path=path, baseline_path=bpath,
                scenario=scenario, baseline=baseline)
    if baseline is not None:
        _check_fit(case, baseline, update)
    return case


def _check_fit(case: Case, baseline: BaselineFile, update: bool) -> None:
    src = str(case.baseline_path)
    arms = case.arms
    known = known_kpis(case.scenario)
    # Names first (a typo is the likelier mistake), then values.
    for arm, kpis in baseline.arms.items():
        if arm not in arms:
            raise BaselineError(f"not a strategy arm of {case.scenario_path.name} (its arms: "
                                f"{', '.join(arms)}); rename it or rerun --update",
                                source=src, field=f"arms.{arm}")
        for kpi in kpis:
            if kpi not in known:
                raise BaselineError("unknown KPI (see KPI_DEFINITIONS in simulator/kpis.py, "
                                    "plus cost_<channel>, contacts_<channel>, blocked_<rule>)",
                                    source=src, field=f"arms.{arm}.{kpi}")
    if update:
        return
    missing = [a for a in arms if a not in baseline.arms]
    if missing:
        raise BaselineError(f"strategy arm '{missing[0]}' of {case.scenario_path.name} has "
                            "no baseline (add it with `contactsim check --update`)",
                            source=src, field="arms")
    for arm, kpis in baseline.arms.items():
        for kpi, entry in kpis.items():
            if entry is None:
                raise BaselineError("no expected value yet (fill it in with "
                                    "`contactsim check --update`)",
                                    source=src, field=f"arms.{arm}.{kpi}")
            if baseline.mode == "replications" and entry.band is None and entry.tolerance is None:
                raise BaselineError("replications mode needs a band: [low, high] (or a "
                                    "tolerance)", source=src, field=f"arms.{arm}.{kpi}")


def load_cases(paths: Sequence[Path], *, update: bool = False) -> list[Case]:
    """Every case named by ``paths``, all loaded before anything runs."""
    cases = [load_case(p, update=update) for p in discover(paths)]
    names: dict[str, Path] = {}
    for c in cases:
        if c.name in names:
            raise UserError(f"scenario name '{c.name}' is also used by {names[c.name]}; "
                            "regression scenarios need distinct names", source=str(c.scenario_path))
        names[c.name] = c.scenario_path
    return cases


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Observed:
    """A KPI of one arm over the replications run."""

    mean: float
    se: float  # NaN with fewer than two finite values
    values: tuple[float, ...]


def summarise_values(values: Sequence[float]) -> Observed:
    """Mean and standard error of the mean over the finite values, in the order given."""
    x = np.asarray(values, dtype=float)
    finite = x[np.isfinite(x)]
    mean = float(finite.mean()) if finite.size else math.nan
    se = float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else math.nan
    return Observed(mean=mean, se=se, values=tuple(float(v) for v in x))


def checked_kpis(case: Case) -> dict[str, list[str]]:
    """Arm -> KPIs to observe: the baseline's, or the defaults for arms it lacks."""
    have = case.baseline.arms if case.baseline else {}
    return {arm: list(have[arm]) if arm in have else list(DEFAULT_KPIS) for arm in case.arms}


def observe(case: Case, workers: int = 1,
            on_done: Callable[[Results], None] | None = None) -> dict[str, dict[str, Observed]]:
    """Run the case's cells and summarise the checked KPIs, arm by arm."""
    sc = case.run_scenario()
    cells = cells_of(sc)
    results = run_cells(sc, cells, workers, base_dir=case.scenario_path.parent.resolve(),
                        on_done=on_done)
    wanted = checked_kpis(case)
    out: dict[str, dict[str, Observed]] = {}
    for arm, kpis in wanted.items():
        runs = [r for r in results if r.strategy == arm]  # replication order, as run
        out[arm] = {}
        for kpi in kpis:
            if any(kpi not in r.kpis for r in runs):
                raise BaselineError("this KPI is not reported by the simulator",
                                    source=str(case.baseline_path), field=f"arms.{arm}.{kpi}")
            out[arm][kpi] = summarise_values([r.kpis[kpi] for r in runs])
    return out


def cell_count(case: Case) -> int:
    return len(cells_of(case.run_scenario()))


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """One row of the check table."""

    scenario: str
    arm: str
    kpi: str
    mode: Mode
    expected: float
    low: float
    high: float
    observed: float
    se: float | None
    tolerance: float | None
    status: Literal["ok", "below", "above", "changed"]

    @property
    def passed(self) -> bool:
        return self.status == "ok"

    @property
    def label(self) -> str:
        return f"{self.scenario}: {self.arm} {self.kpi}"

    def as_dict(self) -> dict[str, Any]:
        def clean(v: float | None) -> float | None:
            return v if v is not None and math.isfinite(v) else None
        return {"scenario": self.scenario, "arm": self.arm, "kpi": self.kpi, "mode": self.mode,
                "expected": clean(self.expected), "low": clean(self.low),
                "high": clean(self.high), "observed": clean(self.observed),
                "se": clean(self.se), "status": self.status}


def within_range(kpi: str, low: float, high: float) -> tuple[float, float]:
    """A band ``[low, high]`` cut to the range of ``kpi`` (NaN ends stay NaN)."""
    bounds = kpi_range(kpi)
    if bounds is None:
        return low, high
    return bounds.clip(low), bounds.clip(high)


def _close(a: float, b: float, rel_tol: float) -> bool:
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=ABS_TOL)


def judge(scenario: str, arm: str, kpi: str, entry: KpiBaseline, baseline: BaselineFile,
          observed: float) -> Verdict:
    """Whether ``observed`` lies in the band of ``entry``."""
    rel = DEFAULT_REL_TOL if baseline.mode == "replications" else baseline.rel_tol
    if entry.tolerance is not None:
        low, high = within_range(kpi, entry.expected - entry.tolerance,
                                 entry.expected + entry.tolerance)
    elif baseline.mode == "replications" and entry.band is not None:
        low, high = within_range(kpi, *entry.band)
    else:
        low = high = entry.expected
    if math.isnan(entry.expected) or math.isnan(observed):
        # A KPI undefined in the baseline (say, no calls made) must stay undefined.
        same = math.isnan(entry.expected) and math.isnan(observed)
        status: Literal["ok", "below", "above", "changed"] = "ok" if same else "changed"
    elif observed < low and not _close(observed, low, rel):
        status = "below"
    elif observed > high and not _close(observed, high, rel):
        status = "above"
    else:
        status = "ok"
    return Verdict(scenario=scenario, arm=arm, kpi=kpi, mode=baseline.mode,
                   expected=entry.expected, low=low, high=high, observed=observed,
                   se=entry.se, tolerance=entry.tolerance, status=status)


def evaluate(case: Case, observed: dict[str, dict[str, Observed]]) -> list[Verdict]:
    """Verdicts of every checked KPI, in the baseline's order."""
    assert case.baseline is not None
    rows = []
    for arm, kpis in case.baseline.arms.items():
        for kpi, entry in kpis.items():
            assert entry is not None
            rows.append(judge(case.name, arm, kpi, entry, case.baseline,
                              observed[arm][kpi].mean))
    return rows


# --------------------------------------------------------------------------- updating


@dataclass(frozen=True)
class Change:
    """One KPI rewritten by ``--update``: its old entry (if any) and its new one."""

    arm: str
    kpi: str
    old: KpiBaseline | None
    new: KpiBaseline


@dataclass
class Update:
    """A rewritten baseline and what changed in it."""

    baseline: BaselineFile
    changes: list[Change] = field(default_factory=list)
    dropped_arms: list[str] = field(default_factory=list)


def new_entry(obs: Observed, mode: Mode, k: float, tolerance: float | None,
              kpi: str = "") -> KpiBaseline:
    """The baseline entry of ``kpi`` from what was observed; its band inside the KPI's range."""
    if mode == "deterministic":
        return KpiBaseline(expected=obs.mean, tolerance=tolerance)
    se = obs.se if math.isfinite(obs.se) else 0.0
    if math.isnan(obs.mean):
        band = (math.nan, math.nan)
    elif tolerance is not None:
        band = within_range(kpi, obs.mean - tolerance, obs.mean + tolerance)
    else:
        band = within_range(kpi, obs.mean - k * se, obs.mean + k * se)
    return KpiBaseline(expected=obs.mean, se=se, band=band, tolerance=tolerance)


def rebaseline(case: Case, observed: dict[str, dict[str, Observed]]) -> Update:
    """The baseline rewritten from ``observed``; settings, KPI lists and tolerances kept."""
    old = case.baseline
    mode: Mode = old.mode if old else "replications"
    k = old.k if old else DEFAULT_K
    arms: dict[str, dict[str, KpiBaseline | None]] = {}
    changes = []
    for arm, kpis in observed.items():
        arms[arm] = {}
        for kpi, obs in kpis.items():
            prev = old.arms.get(arm, {}).get(kpi) if old else None
            entry = new_entry(obs, mode, k, prev.tolerance if prev else None, kpi)
            arms[arm][kpi] = entry
            changes.append(Change(arm, kpi, prev, entry))
    settings: dict[str, Any] = old.model_dump(exclude={"arms"}) if old else {
        "replications": default_replications(case.scenario)}
    settings.update(scenario_hash=scenario_hash(case.scenario),
                    simulator_version=simulator_version())
    baseline = BaselineFile.model_validate({**settings, "arms": arms})
    dropped = [a for a in (old.arms if old else {}) if a not in observed]
    return Update(baseline=baseline, changes=changes, dropped_arms=dropped)


_HEADER_COMMON = """\
# Regression baseline for {scenario}, checked by `contactsim check`.
# Written by `contactsim check --update` (only ever with --update). Edit the settings
# and the KPI lists by hand - a KPI written `name: null` gets its value at the next
# --update, a `tolerance` replaces the computed band and is kept - but not the numbers.
# Comments other than this header are not kept.
"""

_HEADER_REPLICATIONS = """\
#
# mode replications: each arm runs `replications` times from the scenario's seed, on
# common random numbers; a KPI passes when its mean over the replications lies inside
# band = expected ± k * se, se being the standard error of that mean, cut to the range
# the KPI can take (a rate's band stays in [0, 1], a count's at or above 0).
# Why k = 4 by default: with unchanged code and files the mean is reproduced exactly,
# so the band matters only when something changes. A change that merely reshuffles the
# random draws (a refactor drawing in another order) gives a fresh, independent mean,
# off by sqrt(2) se in standard deviation: +-4 se is +-2.8 sigma of that difference, a
# false alarm for about 1 KPI in 200 (more with few replications: se itself is then
# uncertain), while a real change of the model by 5 se or more is caught.
"""

_HEADER_DETERMINISTIC = """\
#
# mode deterministic: each arm runs `replications` times from the scenario's seed and
# each KPI (mean over those runs) must equal `expected` to a relative tolerance
# rel_tol (1e-9 survives float formatting and nothing else). Any change to the model
# or to how it draws random numbers moves these values: review it, then --update.
"""


def baseline_text(baseline: BaselineFile, scenario_file: str) -> str:
    """The YAML text of a baseline, with its explanatory header."""
    header = _HEADER_COMMON.format(scenario=scenario_file) + (
        _HEADER_REPLICATIONS if baseline.mode == "replications" else _HEADER_DETERMINISTIC)
    data: dict[str, Any] = {"mode": baseline.mode, "replications": baseline.replications}
    if baseline.mode == "replications":
        data["k"] = baseline.k
    else:
        data["rel_tol"] = baseline.rel_tol
    if baseline.note:
        data["note"] = baseline.note
    data["scenario_hash"] = baseline.scenario_hash
    data["simulator_version"] = baseline.simulator_version
    arms: dict[str, dict[str, Any]] = {}
    for arm, kpis in baseline.arms.items():
        arms[arm] = {}
        for kpi, entry in kpis.items():
            assert entry is not None
            e: dict[str, Any] = {"expected": entry.expected}
            if baseline.mode == "replications":
                e["se"] = entry.se
                e["band"] = list(entry.band) if entry.band else None
            if entry.tolerance is not None:
                e["tolerance"] = entry.tolerance
            arms[arm][kpi] = e
    data["arms"] = arms
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    return header + body


def write_baseline(case: Case, baseline: BaselineFile) -> None:
    """Write the baseline beside its scenario, atomically."""
    path = case.baseline_path
    text = baseline_text(baseline, case.scenario_path.name)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BaselineError(f"cannot write ({exc.strerror})", source=str(path)) from None


def failures(verdicts: Iterable[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if not v.passed]
