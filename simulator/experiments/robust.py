"""Robustness: does the ranking of strategies survive what we do not know?

A comparison answers "which strategy wins under these parameters"; a robustness
analysis runs the strategies over many plausible parameter sets (draws) and answers
"which strategy should we adopt, given that we do not know the parameters exactly".

The draws come from a parameter space (``--uncertain FILE``: a scrambled Sobol sequence,
or SALib's Saltelli design with ``--sobol``) or from a calibration's ``draws.csv`` (a
``draw`` column and one column per dotted path, equally weighted). Every draw and every
strategy runs on the same R seeds ``replication_seed(scenario.seed, r)`` (common random
numbers across strategies and across draws), each (draw, strategy, replication) a
cached, resumable cell exactly like a sweep's.

The answers are pure functions of a matrix of scores (draws x strategies, the
objective oriented so that higher is better), so they can be tested without running
the model:

* ``ranking``: per strategy, the probability of being best (ties share it equally), the
  expected regret (the objective lost against the best strategy of each draw) with a
  95 % bootstrap-over-draws interval, the 95th-percentile and worst-case regret;
* ``pairwise``: P(A beats B) for every ordered pair (a tie counts one half);
* ``sensitivity``: which parameters drive the difference between the two leading
  strategies (SALib's Sobol indices on a Saltelli design, else SALib's delta
  moment-independent measure on the draws);
* ``where``: PRIM boxes (the ``prim`` package) of the region where the runner-up wins.

Output folder::

    DIR/robust.resolved.yaml  scenario, strategies, objective, design and its parameters
    DIR/cells/<key>.json      one file per (draw, strategy, replication), as a sweep's
    DIR/results.csv           every draw's parameters and each strategy's mean KPIs
    DIR/ranking.csv DIR/pairwise.csv DIR/sensitivity.csv DIR/where.csv
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from simulator.errors import ScenarioError, UserError
from simulator.experiments.backends import Backend
from simulator.experiments.cache import locked_folder, run_cached
from simulator.experiments.cells import NOT_IN_CELL, CellTask, simulator_version
from simulator.experiments.measures import Measure
from simulator.experiments.outputs import OutputFolder
from simulator.experiments.space import Parameter, ParameterSpace, ParameterSpec, Point
from simulator.rng import replication_seed
from simulator.scenario import Scenario, StrategySpec, scenario_from_dict

DesignKind = Literal["sobol", "saltelli", "draws.csv"]

#: Bootstrap resamples of the draws behind every interval.
BOOTSTRAP_RESAMPLES = 2000
#: Level of every interval.
CONFIDENCE = 0.95
#: Bootstrap resamples of SALib's delta measure (its interval is normal, from their
#: standard deviation, so a few dozen suffice; each costs a kernel density estimate per
#: parameter and class).
DELTA_RESAMPLES = 30
#: Most PRIM boxes written to where.csv.
MAX_BOXES = 3
#: Columns of the output tables, in order.
RANKING_COLUMNS = ("strategy", "rank", "p_best", "p_best_low", "p_best_high",
                   "expected_regret", "expected_regret_low", "expected_regret_high",
                   "p95_regret", "worst_regret", "draws")
PAIRWISE_COLUMNS = ("strategy", "other", "p_beats", "p_beats_low", "p_beats_high",
                    "mean_difference", "mean_difference_low", "mean_difference_high", "draws")
SENSITIVITY_COLUMNS = ("parameter", "label", "method", "influence", "S1", "S1_low", "S1_high",
                       "ST", "ST_low", "ST_high", "delta", "delta_low", "delta_high",
                       "difference_of")
WHERE_COLUMNS = ("box", "parameter", "label", "low", "high", "restricted", "coverage",
                 "density", "mass", "draws_in_box", "winner", "loser")


# --------------------------------------------------------------------------- designs


@dataclass(frozen=True)
class RobustDesign:
    """The parameter sets (draws) a robustness analysis runs, and where they came from."""

    kind: DesignKind
    parameters: tuple[Parameter, ...]
    draws: tuple[Point, ...]
    source: str
    seed: int | None = None
    space: ParameterSpace | None = None

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    @property
    def labels(self) -> dict[str, str]:
        return {p.path: p.name for p in self.parameters}

    def unit_matrix(self) -> np.ndarray:
        """Each draw's coordinates in the unit cube (for SALib), draws x parameters."""
        return np.array([[p.to_unit(d[p.path]) for p in self.parameters] for d in self.draws],
                        dtype=float).reshape(len(self.draws), len(self.parameters))

    def values(self) -> pd.DataFrame:
        """Each draw's parameter values, one column per dotted path."""
        return pd.DataFrame([dict(d) for d in self.draws], columns=self.paths)


def design_from_space(space: ParameterSpace, draws: int, sobol: bool, seed: int) -> RobustDesign:
    """``draws`` points of ``space``: SALib's Saltelli design when ``sobol`` (then a multiple
    of 2D + 2, refused in one line otherwise), else a scrambled Sobol sequence."""
    if draws < 2:
        raise UserError(f"at least 2 draws are needed, got {draws}", source="--draws")
    if sobol:
        try:
            points = space.saltelli_points(draws, seed)
        except ValueError as exc:
            raise UserError(str(exc), source="--draws") from None
        return RobustDesign("saltelli", space.parameters, tuple(points), space.source, seed,
                            space)
    return RobustDesign("sobol", space.parameters, tuple(space.sobol_points(draws, seed)),
                        space.source, seed, space)


def read_draws_csv(folder: Path, limit: int | None = None) -> RobustDesign:
    """The equally weighted draws of a calibration: ``folder/draws.csv`` with a ``draw``
    column and one numeric column per dotted path. ``limit`` keeps the first draws."""
    path = folder / "draws.csv"
    source = str(path)
    if not path.is_file():
        raise UserError("no draws.csv (expected a calibration's output folder)",
                        source=str(folder))
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read a table ({one_line_text(exc)})", source=source) from None
    if "draw" not in frame.columns:
        raise UserError("no 'draw' column (expected draw, then one column per dotted path)",
                        source=source)
    paths = [str(c) for c in frame.columns if c != "draw"]
    if not paths:
        raise UserError("no parameter column besides 'draw'", source=source)
    if frame.empty:
        raise UserError("no draws (the table has no rows)", source=source)
    if frame["draw"].duplicated().any():
        raise UserError("a draw is listed twice in the 'draw' column", source=source)
    parameters = []
    for col in paths:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = frame.index[values.isna() | ~np.isfinite(values.to_numpy(dtype=float))]
        if len(bad):
            raise UserError(f"column '{col}', row {int(bad[0]) + 2}: expected a finite number, "
                            f"got '{frame[col].iloc[bad[0]]}'", source=source)
        integer = bool(pd.api.types.is_integer_dtype(frame[col]))
        parameters.append(Parameter(col, ParameterSpec(
            low=float(values.min()), high=float(values.max()), integer=integer)))
    if limit is not None:
        if limit > len(frame):
            raise UserError(f"--draws {limit} asks for more draws than {source} holds "
                            f"({len(frame)})", source="--draws")
        frame = frame.iloc[:limit]
    draws = []
    for _, row in frame.iterrows():
        draws.append({p.path: (int(row[p.path]) if p.spec.integer else float(row[p.path]))
                      for p in parameters})
    return RobustDesign("draws.csv", tuple(parameters), tuple(draws), source)


def one_line_text(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class RobustCell:
    """One cell: a draw, a strategy and a replication."""

    draw: int
    strategy: str
    replication: int
    task: CellTask = field(repr=False)


@dataclass(frozen=True)
class RobustPlan:
    """A robustness analysis resolved into its cells (draw-major, strategy, replication)."""

    name: str
    scenario_source: str
    scenario: dict[str, Any]
    strategies: tuple[StrategySpec, ...]
    objective: Measure
    replications: int
    design: RobustDesign
    cells: tuple[RobustCell, ...]

    @property
    def strategy_names(self) -> list[str]:
        return [s.name for s in self.strategies]

    def resolved(self) -> dict[str, Any]:
        """What ``robust.resolved.yaml`` holds."""
        d = self.design
        return {
            "name": self.name,
            "kind": "robust",
            "scenario_file": self.scenario_source,
            "simulator_version": simulator_version(),
            "objective": str(self.objective),
            "strategies": [s.model_dump(mode="json") for s in self.strategies],
            "replications": self.replications,
            "seeds": [replication_seed(int(self.scenario["seed"]), r)
                      for r in range(self.replications)],
            "design": {"kind": d.kind, "draws": len(d.draws), "seed": d.seed,
                       "source": d.source},
            "parameters": {p.path: {"label": p.name,
                                    **p.spec.model_dump(mode="json", exclude_none=True,
                                                        exclude_defaults=True)}
                           for p in d.parameters},
            "cells": len(self.cells),
            "scenario": self.scenario,
        }


def plan_robust(scenario: Scenario, scenario_source: str, strategies: Sequence[StrategySpec],
                design: RobustDesign, objective: Measure, replications: int,
                base_dir: str | None = None) -> RobustPlan:
    """Every (draw, strategy, replication) cell, each draw's scenario validated first so that
    a parameter set the scenario cannot take is one line naming where it came from."""
    if len(strategies) < 2:
        raise UserError("name at least two strategies to rank", source="--strategies")
    if replications < 1:
        raise UserError("at least one replication is needed", source="--replications")
    base = scenario.to_dict()
    if design.space is not None:
        design.space.check(base, scenario_source)
    else:
        _check_draw_columns(design, base, scenario_source)
    specs = [s.model_dump(mode="json") for s in strategies]
    seeds = [replication_seed(scenario.seed, r) for r in range(replications)]
    cells: list[RobustCell] = []
    for i, point in enumerate(design.draws):
        data = _apply(design, base, point)
        where = f"{design.source} (draw {i})"
        try:
            sc = scenario_from_dict(data, source=where)
        except ScenarioError as exc:
            raise ScenarioError(exc.detail, source=where, field=exc.field) from None
        cell_scenario = {k: v for k, v in sc.to_dict().items() if k not in NOT_IN_CELL}
        variant = {"draw": i, **point}
        for spec, spec_json in zip(strategies, specs, strict=True):
            for r, seed in enumerate(seeds):
                cells.append(RobustCell(i, spec.name, r, CellTask.make(
                    cell_scenario, spec_json, seed, r, variant=variant, base_dir=base_dir)))
    return RobustPlan(name=scenario.name, scenario_source=scenario_source, scenario=base,
                      strategies=tuple(strategies), objective=objective,
                      replications=replications, design=design, cells=tuple(cells))


def _apply(design: RobustDesign, base: dict[str, Any], point: Point) -> dict[str, Any]:
    if design.space is not None:
        return design.space.apply(base, point)
    return ParameterSpace(design.parameters, design.source).apply(base, point)


def _check_draw_columns(design: RobustDesign, base: dict[str, Any], scenario_source: str
                        ) -> None:
    """A draws.csv column must be a numeric field of the scenario whose smallest and
    largest drawn values it can take (the space's own check, reworded for a table)."""
    for p in design.parameters:
        try:
            ParameterSpace([p], design.source).check(base, scenario_source)
        except ScenarioError as exc:
            raise ScenarioError(exc.detail, source=design.source,
                                field=f"column {p.path}") from None


# --------------------------------------------------------------------------- analysis


def best_shares(scores: np.ndarray) -> np.ndarray:
    """Each draw's share of 'best' per strategy (draws x strategies): 1 for the strategy
    with the highest score, ties sharing it equally, so that every row sums to 1."""
    s = np.asarray(scores, dtype=float)
    best = s == s.max(axis=1, keepdims=True)
    return best / best.sum(axis=1, keepdims=True)


def regrets(scores: np.ndarray) -> np.ndarray:
    """What each strategy loses against the best of its draw (>= 0; 0 for the best)."""
    s = np.asarray(scores, dtype=float)
    return s.max(axis=1, keepdims=True) - s


def bootstrap_means(values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                    confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over draws (rows) of each column's mean.

    Written out rather than ``scipy.stats.bootstrap`` so that every column is resampled
    with the same draws (the strategies' statistics are paired) in one pass; a resample
    is a multinomial weighting of the draws, drawn in chunks to bound memory. A mean of
    values in [a, b] stays in [a, b] in every resample, so the interval keeps to what
    the quantity can take (a probability in [0, 1], a regret >= 0).
    """
    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    rng = np.random.default_rng(seed)
    means = []
    chunk = max(1, min(resamples, 2_000_000 // max(n, 1)))
    done = 0
    while done < resamples:
        k = min(chunk, resamples - done)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=k)
        means.append(weights @ v / n)
        done += k
    boot = np.vstack(means)
    alpha = (1.0 - confidence) / 2.0
    low = np.quantile(boot, alpha, axis=0)
    high = np.quantile(boot, 1.0 - alpha, axis=0)
    lo, hi = v.min(axis=0), v.max(axis=0)
    return np.clip(low, lo, hi), np.clip(high, lo, hi)


def ranking(scores: np.ndarray, names: Sequence[str], seed: int,
            resamples: int = BOOTSTRAP_RESAMPLES) -> pd.DataFrame:
    """Per strategy: P(best) and expected regret, each with its bootstrap interval, and the
    95th-percentile and worst-case regret; ranked by P(best), then expected regret.

    ``scores`` is draws x strategies, oriented so that higher is better; regrets are in
    the objective's own units.
    """
    s = np.asarray(scores, dtype=float)
    shares, loss = best_shares(s), regrets(s)
    both = np.hstack([shares, loss])
    low, high = bootstrap_means(both, seed, resamples)
    k = len(names)
    frame = pd.DataFrame({
        "strategy": list(names),
        "p_best": shares.mean(axis=0),
        "p_best_low": low[:k], "p_best_high": high[:k],
        "expected_regret": loss.mean(axis=0),
        "expected_regret_low": low[k:], "expected_regret_high": high[k:],
        "p95_regret": np.quantile(loss, 0.95, axis=0),
        "worst_regret": loss.max(axis=0),
        "draws": s.shape[0],
    })
    order = sorted(range(k), key=lambda i: (-frame["p_best"].iloc[i],
                                            frame["expected_regret"].iloc[i], i))
    frame["rank"] = 0
    frame.loc[order, "rank"] = np.arange(1, k + 1)
    return frame.loc[order, list(RANKING_COLUMNS)].reset_index(drop=True)


def pairwise(scores: np.ndarray, values: np.ndarray, names: Sequence[str], seed: int,
             resamples: int = BOOTSTRAP_RESAMPLES) -> pd.DataFrame:
    """P(A beats B) for every ordered pair (a tie counts one half) and the mean difference
    of the objective's KPI (A - B, in its own units), each with a bootstrap interval."""
    s = np.asarray(scores, dtype=float)
    v = np.asarray(values, dtype=float)
    pairs = [(a, b) for a in range(len(names)) for b in range(len(names)) if a != b]
    if not pairs:
        return pd.DataFrame(columns=list(PAIRWISE_COLUMNS))
    beats = np.column_stack([(s[:, a] > s[:, b]) + 0.5 * (s[:, a] == s[:, b])
                             for a, b in pairs])
    diffs = np.column_stack([v[:, a] - v[:, b] for a, b in pairs])
    low, high = bootstrap_means(np.hstack([beats, diffs]), seed, resamples)
    m = len(pairs)
    return pd.DataFrame({
        "strategy": [names[a] for a, _ in pairs], "other": [names[b] for _, b in pairs],
        "p_beats": beats.mean(axis=0), "p_beats_low": low[:m], "p_beats_high": high[:m],
        "mean_difference": diffs.mean(axis=0), "mean_difference_low": low[m:],
        "mean_difference_high": high[m:], "draws": s.shape[0]}, columns=list(PAIRWISE_COLUMNS))


def sensitivity(design: RobustDesign, difference: np.ndarray, lead: str, runner: str,
                seed: int) -> pd.DataFrame:
    """Which parameters drive ``difference`` (the leader's score minus the runner-up's, per
    draw): SALib's Sobol first-order and total indices on a Saltelli design, else SALib's
    delta moment-independent measure (with its first-order estimate) on the draws.

    Indices and their intervals are clipped to [0, 1], the range of both measures.
    """
    y = np.asarray(difference, dtype=float)
    names = design.paths
    labels = design.labels
    rows: dict[str, dict[str, Any]] = {p: {"parameter": p, "label": labels[p]} for p in names}
    problem = {"num_vars": len(names), "names": names,
               "bounds": [[0.0, 1.0]] * len(names)}
    if design.kind == "saltelli":
        method = "sobol"
        if np.ptp(y) > 0:
            from SALib.analyze import sobol as salib_sobol

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = salib_sobol.analyze(problem, y, calc_second_order=True, seed=seed)
            for i, p in enumerate(names):
                for key in ("S1", "ST"):
                    est, half = float(res[key][i]), float(res[f"{key}_conf"][i])
                    rows[p].update(_clipped_index(key, est, half))
    else:
        method = "delta"
        if np.ptp(y) > 0:
            from SALib.analyze import delta as salib_delta

            x = design.unit_matrix()
            # SALib warns of its binning through ``warnings`` (resetting the filters and the
            # global formatter): record them rather than show them, and restore the
            # formatter. Its bootstrap of each estimator costs a kernel density estimate
            # per resample, hence DELTA_RESAMPLES rather than its default of 100.
            # Its kernel density estimates solve tiny triangular systems: on a busy
            # machine OpenBLAS's threads contend for them and one analysis took 25x
            # longer than on one thread (threadpoolctl limits them for this call).
            formatter = warnings.formatwarning
            try:
                with warnings.catch_warnings(record=True), np.errstate(all="ignore"), \
                        contextlib.redirect_stdout(io.StringIO()), threadpool_limits(1):
                    res = salib_delta.analyze(problem, x, y, seed=seed,
                                              num_resamples=DELTA_RESAMPLES)
            finally:
                warnings.formatwarning = formatter
            # SALib >= 1.6 names the classic (Plischke) estimator delta_raw; 1.5 delta.
            found = "delta" if "delta" in res else "delta_raw"
            for i, p in enumerate(names):
                for key, name in ((found, "delta"), ("S1", "S1")):
                    est, half = float(res[key][i]), float(res[f"{key}_conf"][i])
                    rows[p].update(_clipped_index(name, est, half))
    frame = pd.DataFrame(list(rows.values()))
    for col in SENSITIVITY_COLUMNS:
        if col not in frame.columns:
            frame[col] = math.nan
    frame["method"] = method
    frame["influence"] = frame["ST"] if method == "sobol" else frame["delta"]
    frame["difference_of"] = f"{lead} - {runner}"
    frame = frame.sort_values("influence", ascending=False, kind="stable", na_position="last")
    return frame[list(SENSITIVITY_COLUMNS)].reset_index(drop=True)


def _clipped_index(key: str, estimate: float, half: float) -> dict[str, float]:
    if not math.isfinite(estimate):
        return {key: math.nan, f"{key}_low": math.nan, f"{key}_high": math.nan}
    half = abs(half) if math.isfinite(half) else math.nan
    return {key: min(max(estimate, 0.0), 1.0),
            f"{key}_low": min(max(estimate - half, 0.0), 1.0),
            f"{key}_high": min(max(estimate + half, 0.0), 1.0)}


def where_boxes(values: pd.DataFrame, runner_wins: np.ndarray, labels: Mapping[str, str],
                winner: str, loser: str, max_boxes: int = MAX_BOXES) -> pd.DataFrame:
    """PRIM boxes (the ``prim`` package) of the region of parameter space where the
    runner-up (``winner`` here) beats the leader (``loser``).

    PRIM peels a box down to ever denser, smaller boxes; of each box's peeling trajectory
    the one kept maximises coverage x density (the box that holds most of the runner-up's
    wins while holding few of its losses). One row per box and restricted parameter:
    its bounds (data values at the box's edges), which side is restricted, and the
    box's coverage (share of the runner-up's wins inside), density (share of draws inside
    that the runner-up wins) and mass (share of all draws inside).
    """
    y = np.asarray(runner_wins, dtype=bool)
    empty = pd.DataFrame(columns=list(WHERE_COLUMNS))
    if y.size == 0 or not y.any() or y.all():
        return empty
    x = values.reset_index(drop=True).copy()
    for col in x.columns:
        if not pd.api.types.is_numeric_dtype(x[col]) or pd.api.types.is_bool_dtype(x[col]):
            x[col] = x[col].astype(str).astype(object)
        else:
            x[col] = x[col].astype(float)
    from prim import Prim  # imports pyplot: only when needed

    rows = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        finder = Prim(x, y, threshold=0.5, threshold_type=">")
        init = finder._box_init  # the unrestricted box: the data's own range
        for number in range(1, max_boxes + 1):
            box = finder.find_box()
            if box is None:
                break
            trajectory = box.peeling_trajectory
            score = (trajectory["coverage"].astype(float)
                     * trajectory["density"].astype(float)).to_numpy()
            best = int(np.argmax(score))
            box.select(best)
            stats = trajectory.iloc[best]
            lims = box._box_lims[best]
            inside = round(float(stats["mass"]) * len(y))
            for col in x.columns:
                lo, hi = lims[col][0], lims[col][1]
                low: float | str
                high: float | str
                if x[col].dtype == object:
                    kept = set(lo) if isinstance(lo, set) else {lo}
                    if kept == (set(init[col][0]) if isinstance(init[col][0], set)
                                else {init[col][0]}):
                        continue
                    restricted, low, high = "values", ",".join(sorted(map(str, kept))), ""
                else:
                    low_cut = float(lo) > float(init[col][0])
                    high_cut = float(hi) < float(init[col][1])
                    if not (low_cut or high_cut):
                        continue
                    restricted = "both" if low_cut and high_cut else (
                        "low" if low_cut else "high")
                    low, high = float(lo), float(hi)
                cut = 1.0 if restricted == "values" else 1.0 - (
                    (float(hi) - float(lo)) / max(float(init[col][1]) - float(init[col][0]),
                                                  1e-300))
                rows.append({"box": number, "parameter": col, "label": labels.get(col, col),
                             "cut": cut,
                             "low": low, "high": high, "restricted": restricted,
                             "coverage": float(stats["coverage"]),
                             "density": float(stats["density"]),
                             "mass": float(stats["mass"]), "draws_in_box": inside,
                             "winner": winner, "loser": loser})
            if float(stats["coverage"]) >= 1.0 or number >= max_boxes:
                break
    if not rows:
        return empty
    # Within a box, the parameter it restricts most (the largest share of its range cut
    # away) first: the headline names the first ones.
    frame = pd.DataFrame(rows).sort_values(["box", "cut"], ascending=[True, False],
                                           kind="stable")
    return frame[list(WHERE_COLUMNS)].reset_index(drop=True)


def describe_box(where: pd.DataFrame, box: int = 1, most: int = 2) -> str:
    """Plain words for one PRIM box: 'the agent-call impulse is below 0.2 and ...', naming
    the ``most`` parameters it restricts most (where.csv lists them all)."""
    parts = []
    rows = where[where["box"] == box]
    for r in rows.head(most).itertuples():
        label = str(r.label)
        if r.restricted == "values":
            parts.append(f"{label} is {r.low}")
        elif r.restricted == "high":
            parts.append(f"{label} is below {_num(r.high)}")
        elif r.restricted == "low":
            parts.append(f"{label} is above {_num(r.low)}")
        else:
            parts.append(f"{label} is between {_num(r.low)} and {_num(r.high)}")
    more = len(rows) - most
    return " and ".join(parts) + (f" (and {more} more bound(s) in where.csv)" if more > 0
                                  else "")


def _num(x: Any) -> str:
    return f"{float(x):.3g}"


def headline(rank: pd.DataFrame, where: pd.DataFrame) -> str:
    """The plain-language answer: 'A is best in 71 % (64-78 %) of plausible worlds; it loses
    most where <parameter> is below 0.2'."""
    top = rank.iloc[0]
    text = (f"{top['strategy']} is best in {100 * top['p_best']:.0f} % "
            f"({100 * top['p_best_low']:.0f}-{100 * top['p_best_high']:.0f} %) of plausible "
            "worlds")
    if len(rank) > 1:
        runner = rank.iloc[1]["strategy"]
        if len(where):
            text += f"; it loses to {runner} most where {describe_box(where)}"
        elif float(top["p_best"]) >= 1.0:
            text += f"; {runner} never beats it"
    return text


# --------------------------------------------------------------------------- results


def results_frame(plan: RobustPlan, records: Mapping[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per draw and strategy: the draw's parameters and the strategy's mean KPIs
    over its replications (every cell must be finished)."""
    kpi_rows: dict[tuple[int, str], list[dict[str, float]]] = {}
    for c in plan.cells:
        rec = records[c.task.key]
        kpi_rows.setdefault((c.draw, c.strategy), []).append(
            {k: math.nan if v is None else float(v) for k, v in rec["kpis"].items()})
    values = plan.design.values()
    rows = []
    for i in range(len(plan.design.draws)):
        for name in plan.strategy_names:
            reps = pd.DataFrame(kpi_rows[(i, name)])
            rows.append({"draw": i, **values.iloc[i].to_dict(), "strategy": name,
                         "replications": len(reps), **reps.mean(axis=0).to_dict()})
    frame = pd.DataFrame(rows)
    for p in plan.design.parameters:  # integer parameters stay integers
        if p.spec.integer:
            frame[p.path] = frame[p.path].astype("int64")
    return frame


def objective_matrix(results: pd.DataFrame, names: Sequence[str], measure: Measure
                     ) -> np.ndarray:
    """The objective's KPI per draw (rows, in draw order) and strategy (columns)."""
    if measure.kpi not in results.columns:
        raise UserError(f"the runs report no KPI '{measure.kpi}'", source="--objective")
    wide = results.pivot(index="draw", columns="strategy", values=measure.kpi)
    matrix = wide.loc[:, list(names)].to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise UserError(f"{measure.kpi} is undefined in {bad.size} draw(s) (first: draw "
                        f"{int(wide.index[bad[0]])}); choose an objective every run defines",
                        source="--objective")
    return matrix


@dataclass
class RobustAnswer:
    """The analysis of a finished robustness run."""

    results: pd.DataFrame
    ranking: pd.DataFrame
    pairwise: pd.DataFrame
    sensitivity: pd.DataFrame
    where: pd.DataFrame
    headline: str


def analyse(design: RobustDesign, results: pd.DataFrame, names: Sequence[str],
            measure: Measure, seed: int) -> RobustAnswer:
    """Every answer of the analysis, from the per-draw results (a pure function)."""
    values = objective_matrix(results, names, measure)
    scores = np.column_stack([[measure.score(x) for x in col] for col in values.T])
    rank = ranking(scores, names, seed)
    pairs = pairwise(scores, values, names, seed + 1)
    lead, runner = str(rank["strategy"].iloc[0]), str(rank["strategy"].iloc[1])
    li, ri = list(names).index(lead), list(names).index(runner)
    difference = scores[:, li] - scores[:, ri]
    sens = sensitivity(design, difference, lead, runner, seed + 2)
    where = where_boxes(design.values(), scores[:, ri] > scores[:, li], design.labels,
                        winner=runner, loser=lead)
    return RobustAnswer(results, rank, pairs, sens, where, headline(rank, where))


# --------------------------------------------------------------------------- a run


@dataclass
class RobustReport:
    """What a robustness run did, and its answer when every cell finished."""

    out_dir: Path
    cells: int
    computed: int = 0
    reused: int = 0
    failed: int = 0
    replaced: int = 0
    stopped: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)
    answer: RobustAnswer | None = None


#: The tables of a finished analysis, in the order they are written.
TABLES = ("results.csv", "ranking.csv", "pairwise.csv", "sensitivity.csv", "where.csv")


def _csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frame.to_csv(path, index=False)

    return write


def run_robust(plan: RobustPlan, out_dir: Path, backend: Backend, *, fail_fast: bool = False,
               on_progress: Callable[[int, int], None] | None = None) -> RobustReport:
    """Compute the plan's missing cells on ``backend`` and, when every cell is finished,
    write the answers. A failed cell leaves the tables unwritten (a rerun retries it).

    The folder is locked while the analysis runs (a second command on it is refused);
    its files are put in place together, and an earlier run's tables that this one
    does not write are removed, so they never describe another run.
    """
    with locked_folder(out_dir, backend) as folder:
        return _run_robust(plan, folder, backend, fail_fast, on_progress)


def _run_robust(plan: RobustPlan, folder: OutputFolder, backend: Backend, fail_fast: bool,
                on_progress: Callable[[int, int], None] | None) -> RobustReport:
    out_dir = folder.path
    done = run_cached([c.task for c in plan.cells], out_dir / "cells", backend,
                      fail_fast=fail_fast, on_progress=on_progress)
    report = RobustReport(out_dir=out_dir, cells=done.cells, computed=done.computed,
                          reused=done.reused, failed=done.failed, replaced=done.replaced,
                          stopped=done.stopped, failures=done.failures)
    text = yaml.safe_dump(plan.resolved(), sort_keys=False, allow_unicode=True)
    folder.stage("robust.resolved.yaml", lambda p: p.write_text(text, encoding="utf-8"))
    if done.failed or done.stopped or any(c.task.key not in done.records for c in plan.cells):
        folder.commit("contactsim robust")
        return report
    results = results_frame(plan, done.records)
    answer = analyse(plan.design, results, plan.strategy_names, plan.objective,
                     int(plan.scenario["seed"]))
    for name, frame in zip(TABLES, (answer.results, answer.ranking, answer.pairwise,
                                    answer.sensitivity, answer.where), strict=True):
        folder.stage(name, _csv_writer(frame))
    folder.commit("contactsim robust")
    report.answer = answer
    return report

