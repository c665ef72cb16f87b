"""Calibration: fit behavioural parameters to a lender's targets by the simulated method
of moments.

The scenario holds one strategy, the lender's current policy. A trial sets a point of
the parameter space (``simulator.experiments.space``) and runs the scenario on the same
R seeds as every other trial (common random numbers make the objective a smooth
function of the parameters); each (trial, seed) is a cached cell whose extractor
(``targets.simulated_targets``) computes the simulated targets in the worker. The
distance is, with ``weighting: diagonal`` (the default),

    D(theta) = sum over fitted targets of ((simulated - observed) / se)^2,
    se^2 = se_observed^2 + se_simulated^2,

where ``se_simulated`` is the observed standard error scaled to the simulated book
(``se_observed * sqrt(accounts observed / (accounts simulated x R))``): the same statistic
on a book of another size, fixed so that the weights do not move with the parameters.
With ``weighting: full`` it is ``r' S^-1 r``, r the residuals and S their covariance:
the standard errors above with the targets' bootstrap correlation (from the targets
file, shrunk towards independence; ``fitted_correlation``), the efficient weighting of
targets that overlap (the cure curve's days are cumulative; a band's target is part of
the whole's).

The search is optuna's CMA-ES (``CmaEsSampler``): the objective is smooth and
continuous, CMA-ES adapts a full covariance to parameters that trade off against each
other (a segment's share against its intensity), and it asks a whole generation at once,
which runs in parallel. The study lives in ``DIR/study.db`` (SQLite): a killed
calibration resumes, finishing the trials it had asked and reusing every finished cell.
Each trial's sample depends only on the seed, the stored optimiser and the trial's
number (a fresh sampler is made for every ask), so a resumed calibration reaches the
same estimates as an uninterrupted one.

The estimate is the search's best trial polished by Gauss-Newton (``_polish``): the
simulated targets are linearised at the best trial (their Jacobian by central
differences, ``jacobian_step`` of each parameter's prior range either side, on the fit's
seeds, where common random numbers make the differences smooth, and averaged over
``jacobian_replications`` sets of seeds: on a small book one set's differences still
carry its noise, which makes the slopes too steep and the intervals too narrow), and up to
``refit_budget + 1`` chord steps towards the observed targets are taken while each lowers
the distance. CMA-ES only samples the distance: along a ridge (a segment's decay rate
against its share) its best trial of a few hundred stands where the sampling left it,
while the step goes to the linearised minimum, the point the refits below centre on.

Intervals come from a parametric bootstrap of the targets solved by Gauss-Newton with
the same Jacobian, each refit started at the estimate; refit ``b`` draws targets from
N(observed, S) (S: the observed and simulated errors combined, as in the distance, so
both the data's noise and the simulation's are in it, and correlated as the targets'
bootstrap says whatever the weighting, so that overlapping targets do not narrow the
intervals), clipped to [0, 1], and solves the weighted least-squares problem of the
linearised targets inside the prior box (``scipy.optimize.lsq_linear``);
``refit_budget`` chord iterations then re-measure each refit's simulated targets at its
solution and step again with the same Jacobian, for what the linearisation misses. Each
refit is one row of ``draws.csv``, and the 2.5 and 97.5 percentiles of each parameter
over the refits its interval. A short CMA-ES from the estimate, scored on the resampled
targets, would instead pick the best of a few points near the estimate: its spread is
the search's, not the estimate's, and the intervals it gave missed the truth of
known-parameter tests. The estimate is re-run on fresh seeds (not those of the fit) for
``fit.csv``, which also holds the held-out targets.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simulator.errors import UserError
from simulator.experiments.backends import Backend
from simulator.experiments.cache import locked_folder, run_cached
from simulator.experiments.cells import NOT_IN_CELL, CellTask, simulator_version
from simulator.experiments.outputs import OutputFolder
from simulator.experiments.space import ParameterSpace, Point, _lookup
from simulator.experiments.targets import (
    RESAMPLES,
    TargetSet,
    simulated_targets,
)
from simulator.portfolio import read_accounts
from simulator.rng import replication_seed
from simulator.scenario import Scenario, StrategySpec, scenario_from_dict

#: Parameters that only the contacts data can identify (dotted-path patterns): contact
#: impulses and effects, delivery, answer and promise propensities.
CONTACT_ONLY: tuple[str, ...] = (
    "channels.*.impulse", "channels.unanswered_call_impulse", "channels.*.delivery_prob",
    "channels.*.attention_prob", "population.segments.*.impulse_multiplier.*",
    "population.segments.*.answer_multiplier", "population.answer_sigma",
    "population.responsiveness_sigma", "agents.rpc_by_hour.*",
    "population.segments.*.promise_prob", "population.segments.*.promise_keep_prob",
    "promises.*")
#: What an undefined simulated target (no statement, call or promise to count) adds to
#: the distance: far worse than any defined fit.
UNDEFINED_PENALTY = 1e6
#: A parameter whose interval spans at least this share of its prior range (on the
#: range's own scale) is flagged not identified.
IDENTIFIED_SHARE = 0.5
#: Level of the bootstrap intervals.
CONFIDENCE = 0.95
#: Central differences of the Jacobian: this share of each parameter's prior range (on its
#: unit scale) either side of the estimate, large enough for the change to stand above
#: the simulation's remaining noise under common random numbers, small enough to be local.
#: Under common random numbers a difference's noise grows more slowly than the step, so a
#: wider step gives a truer slope: over 20 lenders of 2,000 accounts the intervals held the
#: truth 74 % of the time with 5 %, 85 % with 15 % (benchmarks/calibration_coverage.py).
JACOBIAN_STEP = 0.15
#: Sets of seeds the Jacobian's differences are averaged over: the fit's, then fresh ones.
#: A difference on one small book carries that book's noise, which a noisy Jacobian turns
#: into too steep a slope and too narrow intervals; each set is 2 runs per parameter.
#: One by default: four sets covered 88 % on the benchmark above, not measurably more.
JACOBIAN_REPLICATIONS = 1
#: Where the Jacobian's fresh seeds start among the scenario's replication seeds: apart
#: from the fit's and the check's (the first few).
JACOBIAN_SEED_OFFSET = 10_000
#: How the distance weighs the targets: ``diagonal``, each by its standard error alone
#: (robust to a few targets the model cannot match), or ``full``, by the inverse of their
#: error covariance (the efficient weighting: the cure curve's cumulative days and a
#: band's share of the whole are not counted twice).
WEIGHTINGS = ("diagonal", "full")
#: Share by which the targets' bootstrap correlation is shrunk towards independence
#: before it is inverted: 200 resamples of 20-40 targets estimate it with noise of
#: about 0.07 per entry, which an inverse of near-collinear targets would amplify.
CORRELATION_SHRINKAGE = 0.05
ESTIMATE_COLUMNS = ("param", "estimate", "low", "high", "prior_low", "prior_high",
                    "identified", "note")
FIT_COLUMNS = ("target", "observed", "se", "simulated", "z", "observed_se", "simulated_se",
               "held_out")
STUDY = "calibration"
#: The files of a finished calibration, put in place together.
OUTPUTS = ("calibration.resolved.yaml", "targets.yaml", "calibrated.yaml", "estimates.csv",
           "fit.csv", "draws.csv")
#: The optuna study of the fit, kept for resuming.
STUDY_FILE = "study.db"


def contact_only(path: str) -> bool:
    """Whether only contacts data identify the parameter ``path``."""
    return any(fnmatch(path, pattern) for pattern in CONTACT_ONLY)


def popsize(dimensions: int) -> int:
    """CMA-ES's default population: 4 + floor(3 ln d) (one generation, asked at once)."""
    return 4 + math.floor(3 * math.log(max(dimensions, 1)))


@dataclass(frozen=True)
class CalibrationPlan:
    """A calibration resolved: what is fitted, to what, on which seeds."""

    name: str
    scenario_source: str
    scenario: dict[str, Any]
    spec: StrategySpec
    space: ParameterSpace
    targets: TargetSet
    targets_source: str
    fitted: tuple[str, ...]
    held_out: tuple[str, ...]
    weights: dict[str, float]
    seeds: tuple[int, ...]
    check_seeds: tuple[int, ...]
    budget: int
    refits: int
    refit_budget: int
    base_dir: str | None
    #: The fitted targets' error correlation (observed and simulated combined), shrunk.
    correlation: np.ndarray = field(default_factory=lambda: np.eye(0))
    weighting: str = "diagonal"
    resamples: int = RESAMPLES
    #: The Jacobian's central differences: the step (share of each prior range, unit
    #: scale) and the sets of seeds they are averaged over (``jacobian_seeds``).
    jacobian_step: float = JACOBIAN_STEP
    jacobian_replications: int = JACOBIAN_REPLICATIONS

    @property
    def jacobian_seeds(self) -> tuple[int, ...]:
        """The Jacobian's seeds: the fit's, then ``jacobian_replications - 1`` fresh sets
        of as many (from ``JACOBIAN_SEED_OFFSET`` among the scenario's replication
        seeds)."""
        extra = (self.jacobian_replications - 1) * len(self.seeds)
        return self.seeds + tuple(replication_seed(int(self.scenario["seed"]),
                                                   JACOBIAN_SEED_OFFSET + r)
                                  for r in range(extra))

    @property
    def se(self) -> np.ndarray:
        """The fitted targets' combined standard errors, in the order of ``fitted``."""
        return np.array([self.weights[t] for t in self.fitted], dtype=float)

    @cached_property
    def error_factor(self) -> np.ndarray:
        """L with L L' the fitted targets' combined error covariance (lower triangular):
        the bootstrap draws targets as observed + L z."""
        se = self.se
        return np.linalg.cholesky(self.correlation * np.outer(se, se))

    @cached_property
    def whitener(self) -> np.ndarray:
        """The matrix that turns residuals (simulated - observed) into the distance's
        independent unit terms: diag(1/se) (``diagonal``) or L^-1 (``full``). Computed
        once per plan: the distance of every trial and every refit uses it."""
        if self.weighting == "full":
            return np.linalg.inv(self.error_factor)
        return np.diag(1.0 / self.se)

    @property
    def extract_params(self) -> dict[str, Any]:
        return {"definition": self.targets.definition.params(), "resamples": self.resamples,
                "seed": int(self.scenario["seed"])}

    def problem(self) -> dict[str, Any]:
        """What a calibration folder was made for: a rerun into it must match."""
        return {"scenario": self.scenario, "strategy": self.spec.model_dump(mode="json"),
                "parameters": {p.path: p.spec.model_dump(mode="json", exclude_none=True)
                               for p in self.space.parameters},
                "targets": {n: [self.targets.values[n], self.targets.se[n]]
                            for n in self.targets.names},
                "fitted": list(self.fitted), "seeds": list(self.seeds),
                "weighting": self.weighting,
                "correlation": np.round(self.correlation, 6).tolist(),
                "simulator_version": simulator_version()}

    def fingerprint(self) -> str:
        text = json.dumps(self.problem(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def resolved(self) -> dict[str, Any]:
        """What ``calibration.resolved.yaml`` holds."""
        return {
            "name": self.name, "kind": "calibrate", "scenario_file": self.scenario_source,
            "targets_file": self.targets_source, "simulator_version": simulator_version(),
            "fingerprint": self.fingerprint(),
            "strategy": self.spec.model_dump(mode="json"),
            "parameters": {p.path: {"label": p.name, **p.spec.model_dump(
                mode="json", exclude_none=True, exclude_defaults=True)}
                for p in self.space.parameters},
            "fitted": list(self.fitted), "held_out": list(self.held_out),
            "contacts": self.targets.has_contacts,
            "seeds": list(self.seeds), "check_seeds": list(self.check_seeds),
            "budget": self.budget, "refits": self.refits, "refit_budget": self.refit_budget,
            "weighting": self.weighting, "jacobian_step": self.jacobian_step,
            "jacobian_seeds": list(self.jacobian_seeds),
            "method": "simulated method of moments; optuna CMA-ES; parametric bootstrap "
                      "(Gauss-Newton refits, targets drawn with their correlation)",
            "scenario": self.scenario,
        }


def plan_calibration(scenario: Scenario, scenario_source: str, space: ParameterSpace,
                     targets: TargetSet, targets_source: str, *, budget: int, refits: int,
                     refit_budget: int, replications: int = 1, check_replications: int = 2,
                     held_out: Sequence[str] = (), base_dir: str | None = None,
                     weighting: str = "diagonal", jacobian_step: float = JACOBIAN_STEP,
                     jacobian_replications: int = JACOBIAN_REPLICATIONS) -> CalibrationPlan:
    """Validate everything a calibration needs, before anything runs or is written."""
    if len(scenario.strategies) != 1:
        raise UserError(f"a calibration runs the lender's current policy: the scenario must "
                        f"have exactly one strategy, it has {len(scenario.strategies)} "
                        "(keep one, or choose it with --strategy)", source=scenario_source,
                        field="strategies")
    if budget < 1:
        raise UserError("at least one trial is needed", source="--budget")
    if replications < 1:
        raise UserError("at least one replication is needed", source="--replications")
    if check_replications < 1:
        raise UserError("at least one fresh replication checks the fit",
                        source="--check-replications")
    if refits < 0 or (refits == 1):
        raise UserError("0 (no intervals) or at least 2 refits", source="--refits")
    if weighting not in WEIGHTINGS:
        raise UserError(f"expected one of {', '.join(WEIGHTINGS)}, got '{weighting}'",
                        source="--weighting")
    if not 0.0 < jacobian_step <= 0.5:
        raise UserError(f"expected a share of the prior range in (0, 0.5], got "
                        f"{jacobian_step:g}", source="--jacobian-step")
    if jacobian_replications < 1:
        raise UserError("at least one set of seeds (the fit's) is needed",
                        source="--jacobian-replications")
    base = scenario.to_dict()
    space.check(base, scenario_source)
    if scenario.population.from_file is not None:
        # Read once here so that a missing or bad accounts file is one line before any
        # trial runs (and nothing is written), not a failed first trial.
        read_accounts(scenario.population.from_file)
    unknown = [t for t in held_out if t not in targets.values]
    if unknown:
        raise UserError(f"'{unknown[0]}' is not a target of {targets_source} (it has "
                        f"{', '.join(targets.names)})", source="--hold-out")
    fitted = tuple(t for t in targets.names if t not in held_out
                   and math.isfinite(targets.values[t]) and targets.counts[t] > 0)
    if len(fitted) < len(space):
        raise UserError(f"{len(fitted)} target(s) to fit {len(space)} parameter(s): fit at "
                        "most as many parameters as targets", source=space.source)
    n_sim = int(base["population"]["size"])
    scale = math.sqrt(max(targets.accounts, 1) / (n_sim * replications))
    weights = {}
    for t in fitted:
        se = targets.se[t]
        floor = 0.5 / max(targets.counts[t], 1.0)  # half a unit of the count
        se = se if math.isfinite(se) and se > floor else floor
        weights[t] = se * math.sqrt(1.0 + scale**2)
    spec = scenario.strategies[0]
    fit_seeds = tuple(replication_seed(scenario.seed, r) for r in range(replications))
    check = tuple(replication_seed(scenario.seed, replications + r)
                  for r in range(check_replications))
    return CalibrationPlan(
        name=scenario.name, scenario_source=scenario_source, scenario=base, spec=spec,
        space=space, targets=targets, targets_source=targets_source, fitted=fitted,
        held_out=tuple(held_out), weights=weights, seeds=fit_seeds, check_seeds=check,
        budget=budget, refits=refits, refit_budget=refit_budget, base_dir=base_dir,
        correlation=fitted_correlation(targets, fitted), weighting=weighting,
        jacobian_step=jacobian_step, jacobian_replications=jacobian_replications)


def fitted_correlation(targets: TargetSet, fitted: Sequence[str]) -> np.ndarray:
    """The fitted targets' error correlation: the targets file's bootstrap correlation
    (identity when the file has none), made a proper correlation matrix (negative
    eigenvalues clipped by ``statsmodels``: pairwise estimates need not be positive
    semi-definite) and shrunk by ``CORRELATION_SHRINKAGE`` towards independence, so that
    its inverse (the ``full`` weighting) does not amplify the noise of a few hundred
    resamples. The simulated targets' errors are taken to have the same correlation (the
    same statistic on a book drawn the same way)."""
    if targets.correlation is None or not fitted:
        return np.eye(len(fitted))
    from statsmodels.stats.correlation_tools import corr_clipped

    at = [targets.names.index(t) for t in fitted]
    r = targets.correlation[np.ix_(at, at)]
    r = 0.5 * (r + r.T)
    if np.linalg.eigvalsh(r)[0] < 0.0:
        r = corr_clipped(r, threshold=1e-8)
    return (1.0 - CORRELATION_SHRINKAGE) * r + CORRELATION_SHRINKAGE * np.eye(len(fitted))


def distance(plan: CalibrationPlan, simulated: Mapping[str, Any]) -> float:
    """The squared length of the whitened residuals (``plan.whitener``) over the fitted
    targets; an undefined simulated target adds ``UNDEFINED_PENALTY`` (its residual
    counted as 0)."""
    residual = _target_vector(plan, simulated) - _target_vector(plan, plan.targets.values)
    undefined = ~np.isfinite(residual)
    z = plan.whitener @ np.where(undefined, 0.0, residual)
    return float(z @ z) + UNDEFINED_PENALTY * int(undefined.sum())


# --------------------------------------------------------------------------- running


class _KeepOpen:
    """A backend that stays open across the many batches of a calibration (``run_cached``
    closes the backend it is given when a batch is done)."""

    def __init__(self, backend: Backend):
        self.inner = backend
        self.slots = backend.slots
        restart = getattr(backend, "restart", None)
        if restart is not None:
            self.restart = restart

    def submit(self, fn: Callable[[CellTask], dict[str, Any]], task: CellTask) -> Any:
        return self.inner.submit(fn, task)

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        return self.inner.wait_any(futures)

    def close(self, cancel: bool) -> None:
        if cancel:
            self.inner.close(cancel=True)


class TrialFailed(UserError):
    """A trial's cell failed: the calibration stops (a rerun retries it)."""


@dataclass
class Evaluator:
    """Runs points of the space as cells and returns their mean simulated targets."""

    plan: CalibrationPlan
    cells_dir: Path
    backend: _KeepOpen
    computed: int = 0
    reused: int = 0
    _memo: dict[str, dict[str, Any]] = field(default_factory=dict)

    def task(self, point: Point, seed: int, replication: int) -> CellTask:
        data = self.plan.space.apply(self.plan.scenario, point)
        sc = scenario_from_dict(data, source=f"{self.plan.space.source} (trial)")
        cell = {k: v for k, v in sc.to_dict().items() if k not in NOT_IN_CELL}
        return CellTask.make(cell, self.plan.spec.model_dump(mode="json"), seed, replication,
                             variant=dict(point), base_dir=self.plan.base_dir,
                             extract=simulated_targets, extract_params=self.plan.extract_params)

    def run(self, points: Sequence[Point], seeds: Sequence[int]) -> list[dict[str, Any]]:
        """For each point: ``values`` (mean over the seeds) and ``se`` (of that mean)."""
        tasks = [[self.task(p, s, r) for r, s in enumerate(seeds)] for p in points]
        flat = [t for row in tasks for t in row]
        todo = [t for t in flat if t.key not in self._memo]
        if todo:
            done = run_cached(todo, self.cells_dir, self.backend)
            self.computed += done.computed
            self.reused += done.reused
            if done.failed:
                first = done.failures[0]
                raise TrialFailed(f"a trial's run failed ({first['error']}); rerun the same "
                                  "command to retry (finished trials are reused)",
                                  source=str(self.cells_dir / f"{first['key']}.json"))
            self._memo.update(done.records)
        out = []
        for row in tasks:
            recs = [self._memo[t.key]["values"] for t in row]
            names = list(recs[0]["values"])
            values, se = {}, {}
            for n in names:
                v = np.array([np.nan if r["values"].get(n) is None else r["values"][n]
                              for r in recs], dtype=float)
                s = np.array([np.nan if r["se"].get(n) is None else r["se"][n]
                              for r in recs], dtype=float)
                values[n] = float(np.mean(v)) if np.isfinite(v).all() else math.nan
                se[n] = (float(math.sqrt(np.nansum(s**2)) / len(recs))
                         if np.isfinite(s).any() else math.nan)
            out.append({"values": values, "se": se})
        return out


def _sampler(plan: CalibrationPlan, seed: int, number: int = 0) -> Any:
    """CMA-ES started at the base scenario's values (``_start``), with a random sampler
    for what CMA-ES cannot sample (a categorical parameter) seeded by the trial's number,
    so that every ask is reproducible."""
    import optuna

    with warnings.catch_warnings():
        # optuna 4.9 deprecated x0 (to be removed in 6.0) without a replacement for
        # starting at a given point; the warning is not the user's concern.
        warnings.simplefilter("ignore", FutureWarning)
        return optuna.samplers.CmaEsSampler(
            x0=_start(plan), seed=seed, popsize=popsize(len(plan.space)),
            independent_sampler=optuna.samplers.RandomSampler(seed=seed + number),
            warn_independent_sampling=False)


def _start(plan: CalibrationPlan) -> Point:
    """Where the search starts: the base scenario's values, inside the prior box."""
    x0: Point = {}
    for p in plan.space.parameters:
        if p.categorical:
            continue
        value = _lookup(plan.scenario, p.path)
        lo, hi = p.from_unit(0.0), p.from_unit(1.0)
        x0[p.path] = min(max(float(value), lo), hi)
        if p.spec.integer:
            x0[p.path] = round(x0[p.path])
    return x0


def _search(plan: CalibrationPlan, storage: Any, evaluator: Evaluator, seed: int,
            on_trial: Callable[[int], None] | None = None
            ) -> list[tuple[Point, float, dict[str, Any]]]:
    """Run (or resume) the fit's CMA-ES study to ``plan.budget`` complete trials, every
    trial on the fit's seeds; returns every complete trial as (point, distance,
    simulated)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="minimize",
                                load_if_exists=True, sampler=_sampler(plan, seed))
    if "fingerprint" not in study.user_attrs:
        study.set_user_attr("fingerprint", plan.fingerprint())  # what _check_study compares
    budget = plan.budget
    distributions = plan.space.to_optuna()
    size = popsize(len(plan.space))
    while True:
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if len(complete) >= budget and not running:
            break
        if running:  # asked by a calibration that was stopped: finish them first
            batch = [(t.number, dict(t.params)) for t in sorted(running, key=lambda t: t.number)]
        elif not trials:
            # The first trial is the start point alone: CMA-ES samples the space of the
            # trials completed before it, and there is none yet.
            study.enqueue_trial(_start(plan))
            trial = study.ask(distributions)
            batch = [(trial.number, dict(trial.params))]
        else:
            batch = []
            for _ in range(min(size, budget - len(complete))):
                # A fresh sampler for every ask: the sample depends only on the seed, the
                # stored optimiser and the trial number, so a resumed run asks the same.
                study.sampler = _sampler(plan, seed, len(trials) + len(batch))
                trial = study.ask(distributions)
                batch.append((trial.number, dict(trial.params)))
        results = evaluator.run([p for _, p in batch], plan.seeds)
        for (number, _), found in zip(batch, results, strict=True):
            study.tell(number, distance(plan, found["values"]))
        if on_trial is not None:
            on_trial(len(complete) + len(batch))
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    done.sort(key=lambda t: t.number)
    points = [dict(t.params) for t in done]
    sims = evaluator.run(points, plan.seeds)
    return [(p, float(t.value), s)  # type: ignore[arg-type]
            for p, t, s in zip(points, done, sims, strict=True)]


def _target_vector(plan: CalibrationPlan, values: Mapping[str, Any]) -> np.ndarray:
    """The fitted targets of ``values`` in the plan's order (nan: undefined)."""
    out = [values.get(t) for t in plan.fitted]
    return np.array([math.nan if v is None else float(v) for v in out], dtype=float)


#: The simulated targets linearised at a point: (the parameters linearised, the fitted
#: targets x parameters Jacobian per unit scale).
Linearised = tuple[list[Any], np.ndarray]


def jacobian(plan: CalibrationPlan, evaluator: Evaluator, estimate: Point) -> Linearised:
    """The simulated targets' Jacobian at ``estimate``, per unit of each parameter's unit
    scale, by central differences (``plan.jacobian_step`` either side) averaged over
    ``plan.jacobian_seeds`` (the fit's seeds first): (the parameters linearised, the
    fitted targets x parameters matrix). A categorical
    parameter stays at its estimate; a target undefined at either side gets slope 0."""
    params = [p for p in plan.space.parameters if not p.categorical]
    u0 = _units(estimate, params)
    points: list[Point] = []
    h = plan.jacobian_step
    for j, p in enumerate(params):
        for u in (max(u0[j] - h, 0.0), min(u0[j] + h, 1.0)):
            points.append({**estimate, p.path: p.from_unit(u)})
    sims = evaluator.run(points, plan.jacobian_seeds)
    g = np.zeros((len(plan.fitted), len(params)))
    for j, p in enumerate(params):
        below, above = points[2 * j][p.path], points[2 * j + 1][p.path]
        step = p.to_unit(above) - p.to_unit(below)  # as realised (an integer rounds)
        if step <= 0:
            continue
        diff = (_target_vector(plan, sims[2 * j + 1]["values"])
                - _target_vector(plan, sims[2 * j]["values"])) / step
        g[:, j] = np.where(np.isfinite(diff), diff, 0.0)
    return params, g


def _gauss_newton_step(plan: CalibrationPlan, g: np.ndarray, units: np.ndarray,
                       simulated: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """One Gauss-Newton step of the linearised targets (Jacobian ``g`` per unit scale)
    from ``units``, where the simulated targets are ``simulated``, towards ``observed``:
    the weighted least-squares step inside the prior box (``scipy.optimize.lsq_linear``).
    An undefined target leaves the problem (its row and residual dropped)."""
    from scipy.optimize import lsq_linear

    residual = simulated - observed
    ok = np.isfinite(residual)
    if not ok.any() or g.shape[1] == 0:
        return units
    whitener = plan.whitener[np.ix_(ok, ok)]
    step = lsq_linear(whitener @ g[ok], -(whitener @ residual[ok]),
                      bounds=(-units, 1.0 - units)).x
    return np.clip(units + step, 0.0, 1.0)


def _units(point: Point, params: Sequence[Any]) -> np.ndarray:
    """The linearised parameters' values at ``point``, on their unit scale."""
    return np.array([p.to_unit(point[p.path]) for p in params], dtype=float)


def _at_units(estimate: Point, params: Sequence[Any], units: np.ndarray) -> Point:
    """``estimate`` with the linearised parameters set to ``units`` (unit scale)."""
    return {**estimate, **{p.path: p.from_unit(float(x)) for p, x in zip(params, units,
                                                                           strict=True)}}


def _polish(plan: CalibrationPlan, evaluator: Evaluator, linear: Linearised,
            best: tuple[Point, float, dict[str, Any]]
            ) -> tuple[Point, float, dict[str, Any]]:
    """The search's best trial polished by Gauss-Newton on the observed targets: up to
    ``plan.refit_budget + 1`` chord steps (the Jacobian of the best trial), each run on
    the fit's seeds, the first that does not lower the distance ending it. Returns the
    point of lowest distance, the best trial itself if no step lowers it.

    CMA-ES samples the distance, so where the targets move little with a parameter (a
    ridge, as a segment's decay rate against its size) its best trial stands wherever
    the noise of a few hundred samples left it; the step goes to the minimum of the
    linearised distance, which is what the bootstrap refits centre on."""
    params, g = linear
    point, value, at_point = best
    units = _units(point, params)
    observed = _target_vector(plan, plan.targets.values)
    for _ in range(plan.refit_budget + 1):
        stepped = _gauss_newton_step(plan, g, units, _target_vector(plan, at_point["values"]),
                                     observed)
        if np.allclose(stepped, units, rtol=0.0, atol=1e-9):
            break
        candidate = _at_units(point, params, stepped)
        found = evaluator.run([candidate], plan.seeds)[0]
        score = distance(plan, found["values"])
        if not score < value:
            break
        point, value, at_point, units = candidate, score, found, stepped
    return point, value, at_point


def _refits(plan: CalibrationPlan, evaluator: Evaluator, linear: Linearised,
            estimate: Point, at_estimate: Mapping[str, Any],
            on_refit: Callable[[int], None] | None) -> list[Point]:
    """The bootstrap refits (module docstring): ``plan.refits`` points, in order, each
    started at ``estimate`` with the Jacobian ``linear``."""
    if plan.refits == 0:
        return []
    params, g = linear
    start = _units(estimate, params)
    observed = [_target_vector(plan, resampled_targets(plan, b)) for b in range(plan.refits)]
    simulated = [_target_vector(plan, at_estimate["values"])] * plan.refits
    units = [start.copy() for _ in range(plan.refits)]
    for iteration in range(plan.refit_budget + 1):
        if iteration > 0:  # a chord iteration: the targets where the last step led
            simulated = [_target_vector(plan, s["values"]) for s in evaluator.run(
                [_at_units(estimate, params, u) for u in units], plan.seeds)]
        units = [_gauss_newton_step(plan, g, u, sim, obs)
                 for u, sim, obs in zip(units, simulated, observed, strict=True)]
        if on_refit is not None:
            on_refit(plan.refits)
    return [_at_units(estimate, params, u) for u in units]


def resampled_targets(plan: CalibrationPlan, b: int) -> dict[str, float]:
    """The ``b``-th parametric bootstrap draw of the fitted targets: N(observed, S), S
    the combined observed and simulated error covariance (standard errors as in the
    distance, correlation ``plan.correlation``), clipped to [0, 1] (every target is a
    share)."""
    rng = np.random.default_rng([int(plan.scenario["seed"]), 7919, b])
    draw = (_target_vector(plan, plan.targets.values)
            + plan.error_factor @ rng.standard_normal(len(plan.fitted)))
    out = dict(plan.targets.values)
    for name, x in zip(plan.fitted, draw, strict=True):
        out[name] = float(min(max(x, 0.0), 1.0))
    return out


@dataclass
class CalibrationResult:
    """What a calibration found, and what it cost."""

    estimate: Point
    #: The distance at the estimate, and at the search's best trial before the polish.
    distance: float
    search_distance: float
    trials: int
    draws: list[Point]
    estimates: pd.DataFrame
    fit: pd.DataFrame
    calibrated: dict[str, Any]
    computed: int
    reused: int
    seconds_point: float
    seconds_bootstrap: float
    unidentified: list[str]
    contact_flagged: list[str]


def _interval(values: np.ndarray) -> tuple[float, float]:
    alpha = (1.0 - CONFIDENCE) / 2.0
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1.0 - alpha))


def estimates_frame(plan: CalibrationPlan, estimate: Point, draws: Sequence[Point]
                    ) -> pd.DataFrame:
    """``param, estimate, low, high, prior_low, prior_high, identified, note``."""
    rows = []
    for p in plan.space.parameters:
        lo_prior, hi_prior = p.from_unit(0.0), p.from_unit(1.0)
        note = []
        identified = True
        if draws and not p.categorical:
            values = np.array([float(d[p.path]) for d in draws])
            low, high = _interval(values)
            width = p.to_unit(high) - p.to_unit(low)
            if width >= IDENTIFIED_SHARE:
                identified = False
                note.append(f"the interval spans {100 * width:.0f} % of the prior range")
        else:
            low = high = math.nan
        if contact_only(p.path) and not plan.targets.has_contacts:
            identified = False
            note.append("only contacts data identify it, and the targets have none")
        rows.append({"param": p.path, "estimate": estimate[p.path], "low": low, "high": high,
                     "prior_low": lo_prior, "prior_high": hi_prior,
                     "identified": identified, "note": "; ".join(note)})
    return pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))


def fit_frame(plan: CalibrationPlan, check: Mapping[str, Any]) -> pd.DataFrame:
    """``target, observed, se, simulated, z`` (and the two standard errors, held out)."""
    rows = []
    for name in plan.targets.names:
        obs = plan.targets.values[name]
        obs_se = plan.targets.se[name]
        sim = check["values"].get(name, math.nan)
        sim_se = check["se"].get(name, math.nan)
        sim = math.nan if sim is None else sim
        parts = [x for x in (obs_se, sim_se) if x is not None and math.isfinite(x)]
        se = math.sqrt(sum(x * x for x in parts)) if parts else math.nan
        z = (sim - obs) / se if se and math.isfinite(se) and se > 0 else math.nan
        rows.append({"target": name, "observed": obs, "se": se, "simulated": sim, "z": z,
                     "observed_se": obs_se, "simulated_se": sim_se,
                     "held_out": name not in plan.fitted})
    return pd.DataFrame(rows, columns=list(FIT_COLUMNS))


def calibrated_scenario(plan: CalibrationPlan, estimate: Point) -> dict[str, Any]:
    """The base scenario with the estimates written in, its one strategy kept."""
    data = plan.space.apply(plan.scenario, estimate)
    data["strategies"] = [plan.spec.model_dump(mode="json")]
    sc = scenario_from_dict(data, source="calibrated scenario")
    out = sc.to_dict()
    out["description"] = (f"{sc.description} Calibrated to {plan.targets_source} "
                          f"({len(plan.fitted)} targets).").strip()
    return out


def _storage(out_dir: Path) -> Any:
    """The optuna storage of the folder's studies: ``out_dir/study.db`` (SQLite)."""
    import optuna

    return optuna.storages.RDBStorage(f"sqlite:///{(out_dir / STUDY_FILE).resolve()}")


def _check_study(plan: CalibrationPlan, out_dir: Path) -> None:
    """A folder whose study is another calibration problem's is refused: resuming it would
    mix them. The problem's fingerprint is kept in the study itself (a user attribute set
    before its first trial), so the check holds after a kill, before any output was put
    in place."""
    import optuna

    if not (out_dir / STUDY_FILE).exists():
        return
    try:
        storage = _storage(out_dir)
        names = {s.study_name for s in storage.get_all_studies()}
        study = (optuna.load_study(study_name=STUDY, storage=storage)
                 if STUDY in names else None)
    except Exception as exc:  # not an optuna database, or a damaged one
        raise UserError(f"holds a {STUDY_FILE} that optuna cannot read ({type(exc).__name__}):"
                        " choose another --out or remove the file",
                        source=str(out_dir / STUDY_FILE)) from None
    if study is None:
        if names:
            raise UserError(f"holds a {STUDY_FILE} that is not a calibration's: choose "
                            "another --out or remove the file",
                            source=str(out_dir / STUDY_FILE))
        return
    found = study.user_attrs.get("fingerprint")
    if found is None and not study.get_trials(deepcopy=False):
        return  # killed between creating the study and marking it
    if found != plan.fingerprint():
        raise UserError("holds a calibration of another scenario, parameter space, targets "
                        "or seeds (resuming it would mix them): choose another --out or "
                        "remove the folder", source=str(out_dir))


def _csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frame.to_csv(path, index=False)

    return write


def _text_writer(text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


def run_calibration(plan: CalibrationPlan, out_dir: Path, backend: Backend, *,
                    on_trial: Callable[[str, int, int], None] | None = None
                    ) -> CalibrationResult:
    """Fit, bootstrap, check on fresh seeds and write the outputs into ``out_dir``.

    The folder is locked while the calibration runs (a second command on it is refused).
    The study (``study.db``) and the cells are written as the fit goes, so that a killed
    calibration resumes; the outputs (``OUTPUTS``) are staged and put in place together
    once everything has run, so the folder holds either the previous complete
    calibration or this one, never a half-written mix.
    """
    with locked_folder(out_dir, backend) as folder:
        _check_study(plan, out_dir)
        return _run_calibration(plan, folder, backend, on_trial)


def _run_calibration(plan: CalibrationPlan, folder: OutputFolder, backend: Backend,
                     on_trial: Callable[[str, int, int], None] | None) -> CalibrationResult:
    out_dir = folder.path
    try:
        (out_dir / "cells").mkdir(exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the cells folder ({exc.strerror})",
                        source=str(out_dir / "cells")) from None
    storage = _storage(out_dir)
    keep = _KeepOpen(backend)
    evaluator = Evaluator(plan, out_dir / "cells", keep)
    seed = int(plan.scenario["seed"]) % (2**31 - 1)
    started = time.perf_counter()
    trials = _search(plan, storage, evaluator, seed,
                     None if on_trial is None else (lambda k: on_trial("fit", k, plan.budget)))
    best = min(trials, key=lambda t: t[1])
    linear = jacobian(plan, evaluator, best[0])
    estimate, value, at_estimate = _polish(plan, evaluator, linear, best)
    estimate = dict(estimate)
    seconds_point = time.perf_counter() - started
    started = time.perf_counter()
    draws = _refits(plan, evaluator, linear, estimate, at_estimate,
                    None if on_trial is None else (lambda k: on_trial("bootstrap", k,
                                                                      plan.refits)))
    seconds_bootstrap = time.perf_counter() - started
    check = evaluator.run([estimate], plan.check_seeds)[0]
    backend.close(cancel=False)
    estimates = estimates_frame(plan, estimate, draws)
    fit = fit_frame(plan, check)
    calibrated = calibrated_scenario(plan, estimate)
    draws_frame = pd.DataFrame([{"draw": i, **d} for i, d in enumerate(draws)],
                               columns=["draw", *plan.space.paths])
    folder.stage("calibration.resolved.yaml", _text_writer(
        yaml.safe_dump(plan.resolved(), sort_keys=False, allow_unicode=True)))
    folder.stage("targets.yaml", _text_writer(
        yaml.safe_dump(plan.targets.to_dict(), sort_keys=False, allow_unicode=True)))
    folder.stage("calibrated.yaml", _text_writer(
        yaml.safe_dump(calibrated, sort_keys=False, allow_unicode=True)))
    folder.stage("estimates.csv", _csv_writer(estimates))
    folder.stage("fit.csv", _csv_writer(fit))
    folder.stage("draws.csv", _csv_writer(draws_frame))
    folder.commit("contactsim calibrate")
    return CalibrationResult(
        estimate=estimate, distance=value, search_distance=float(best[1]),
        trials=len(trials), draws=draws,
        estimates=estimates, fit=fit, calibrated=calibrated, computed=evaluator.computed,
        reused=evaluator.reused, seconds_point=seconds_point,
        seconds_bootstrap=seconds_bootstrap,
        unidentified=[str(r.param) for r in estimates.itertuples() if not r.identified],
        contact_flagged=[p.path for p in plan.space.parameters
                         if contact_only(p.path) and not plan.targets.has_contacts])
