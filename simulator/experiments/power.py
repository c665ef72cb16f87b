"""The power of a champion/challenger trial, simulated rather than read from a formula.

A collections team that adopts a strategy first tries it on part of the book: accounts
are split at random between the champion (the strategy in place) and the challenger,
inside one book that shares the agents and the rule pack, and an outcome is compared
between the two cells at a look day. How many accounts must the trial have? Closed-form
power formulas assume independent accounts and a known effect; a collections trial has
late outcomes, heavy-tailed amounts and a challenger that can take the champion's agent
capacity. Here each repetition of the trial is one run of the model:

* a fresh seed draws a book of the trial's size, split at random between the cells at
  ``split`` (the champion's share) by the ``champion_challenger`` strategy, and runs to
  the look day (``horizon_days = look``: every outcome is the one known at the look);
* the extractor ``trial_statistics`` (run inside the worker, so only numbers travel)
  computes each account's outcome over every account assigned to a cell (intention to
  treat) and the test a team would use: two-proportion z for a binary outcome, Welch's
  t otherwise, two-sided; and the same test after CUPED adjustment by each pre-period
  covariate;
* power at a size is the share of repetitions whose p-value is below alpha, with a
  Wilson interval.

Beside the power, two effects are estimated on the scenario's whole book (its
``population.size`` and agents), over ``effect_repetitions`` seeds: the within-trial
effect (a trial of the whole book at the same split) and the full-adoption effect (each
strategy alone on the whole book, same seeds: common random numbers). The runs alone
also give the interference: each cell's outcome in the trial against the same accounts'
outcome when their strategy runs alone, which a formula cannot see.

A trial of ``size`` accounts runs with the scenario's agents scaled to the size
(``round(count * size / population.size)``, at least 1 when the scenario has agents),
so every size sees the capacity per account of the book it stands for. Every repetition
is a cached, content-addressed cell (``simulator.experiments.cells``): a rerun computes
only what is missing, and more repetitions reuse the first ones.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.engine import Results, run
from simulator.errors import UserError
from simulator.experiments.backends import Backend
from simulator.experiments.cache import CellRun, run_cached
from simulator.experiments.cells import NOT_IN_CELL, CellTask
from simulator.experiments.compare import t_interval
from simulator.experiments.outputs import OutputFolder, resolved_scenario_text
from simulator.population import generate_book
from simulator.rng import Streams
from simulator.scenario import Scenario, StrategySpec, scenario_from_dict
from simulator.strategies.arms import arms_for_run

# scipy.stats and statsmodels are imported inside the functions that use them: importing
# them takes over a second, which every command (a --help, a file refused at once) would
# otherwise pay.

#: The two cells of a trial, as the ``arm`` labels of the accounts frame.
CHAMPION, CHALLENGER = "champion", "challenger"
CELLS: tuple[str, str] = (CHAMPION, CHALLENGER)

#: Outcomes derived from the accounts frame (any other numeric column of it is one too).
DERIVED_OUTCOMES: dict[str, str] = {
    "paid_30": "paid in full within 30 days of the due date: t_paid <= due_day + 30 (the "
               "due date passes at the end of day due_day; t_paid is when the statement's "
               "amount, late fee included, was paid in full, on time or cured); 0 or 1",
    "collected_share": "collected by the look (paid_in_house + agency_collected) / "
                       "amount_due",
    "churned": "the customer closed the account or stopped using the product by the look; "
               "0 or 1",
    "charged_off": "the account was written off by the look (final_state charged_off); "
                   "0 or 1",
}

#: Binary outcomes (tested by a two-proportion z-test; the rest by Welch's t).
BINARY_OUTCOMES: frozenset[str] = frozenset({"paid_30", "churned", "charged_off"})

#: Pre-period covariates for CUPED: what the lender knows of each account at the
#: statement, before the trial assigns it (the book's observable columns).
COVARIATES: dict[str, str] = {
    "score": "credit score",
    "prior_delinquencies": "earlier delinquencies on file",
    "amount_due": "the instalment due",
    "balance": "outstanding balance at the statement",
    "credit_line": "credit line",
    "tenure_months": "months since the account was opened",
    "clv_estimate": "the lender's estimate of the customer's lifetime value",
    "due_day": "day of the due date",
}

#: Columns of the accounts frame that are not outcomes: the id, labels, and event times
#: (infinite when the event did not happen, so no mean or variance exists).
_NOT_OUTCOMES: frozenset[str] = frozenset({"account_id", "twin_t_paid"})

#: Columns of ``power.csv``, in order: the issue's nine, then what explains them.
POWER_COLUMNS: tuple[str, ...] = (
    "size", "split", "metric", "effect", "power", "low", "high", "type1",
    "variance_reduction", "covariate", "rho", "effect_variance_ratio", "power_unadjusted",
    "unadjusted_low", "unadjusted_high", "power_welch", "formula_power", "effect_at_size",
    "effect_full_adoption", "champion_accounts", "challenger_accounts", "agents",
    "repetitions", "rejections", "untestable", "alpha", "look")

#: Target power for the smallest size.
TARGET_POWER = 0.8


# --------------------------------------------------------------------------- outcomes


def outcome_columns(accounts: pd.DataFrame) -> list[str]:
    """The account-level numeric columns of an accounts frame usable as outcomes."""
    out = []
    for name in accounts.columns:
        if name in _NOT_OUTCOMES or name.startswith("t_"):
            continue
        kind = accounts[name].dtype.kind
        if kind in "biuf":
            out.append(str(name))
    return out


def known_outcomes(scenario: Scenario) -> list[str]:
    """Every outcome a trial on ``scenario`` can test: the derived ones, then the numeric
    columns of its accounts frame (read from a one-day run of a tiny book)."""
    data = scenario.to_dict()
    data["population"]["size"] = 20
    data["horizon_days"] = 1
    data["strategies"] = [{"use": "no_contact"}]
    tiny = run(scenario_from_dict(data, source="outcomes"), "no_contact", 0)
    derived = list(DERIVED_OUTCOMES)
    return derived + [c for c in outcome_columns(tiny.accounts) if c not in derived]


def account_outcome(accounts: pd.DataFrame, metric: str) -> tuple[np.ndarray, bool]:
    """Each account's ``metric`` as floats, and whether it is binary (0 or 1)."""
    if metric == "paid_30":
        due = accounts["due_day"].to_numpy(dtype=np.float64)
        y = accounts["t_paid"].to_numpy(dtype=np.float64) <= due + 30.0
        return y.astype(np.float64), True
    if metric == "collected_share":
        collected = (accounts["paid_in_house"].to_numpy(dtype=np.float64)
                     + accounts["agency_collected"].to_numpy(dtype=np.float64))
        return collected / accounts["amount_due"].to_numpy(dtype=np.float64), False
    if metric == "charged_off":
        state = accounts["final_state"].astype(str).to_numpy()
        return (state == "charged_off").astype(np.float64), True
    column = accounts[metric]
    binary = column.dtype.kind == "b"
    return column.to_numpy(dtype=np.float64), binary


def pre_period_covariates(scenario: Scenario, seed: int,
                          accounts: pd.DataFrame) -> dict[str, np.ndarray]:
    """The covariates of every account of a run (``COVARIATES``), aligned with its
    accounts frame.

    The book is a pure function of the scenario and the seed (the population stream),
    so it is drawn again here rather than carried by the run's outputs; the score and
    amount due are checked against the accounts frame, so a book that differs from the
    run's cannot go unnoticed.
    """
    observable = generate_book(scenario, Streams(seed)).observable
    ids = accounts["account_id"].to_numpy(dtype=np.int64)
    for name in ("score", "amount_due"):
        if not np.array_equal(np.asarray(getattr(observable, name))[ids],
                              accounts[name].to_numpy()):
            raise RuntimeError(f"the book drawn again from seed {seed} differs from the "
                               f"run's ({name})")
    return {name: np.asarray(getattr(observable, name), dtype=np.float64)[ids]
            for name in COVARIATES}


# --------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class TestResult:
    """A two-sided test of challenger against champion: statistic and p-value (NaN
    when a cell has too few accounts to test)."""

    statistic: float
    p_value: float
    test: str


def two_proportion_test(champion: np.ndarray, challenger: np.ndarray) -> TestResult:
    """Two-proportion z-test (pooled variance), challenger minus champion.

    Both cells all 0 or all 1: the proportions are equal and nothing can tell them apart
    (z 0, p 1), where statsmodels would divide by zero.
    """
    from statsmodels.stats.proportion import proportions_ztest
    n1, n2 = champion.size, challenger.size
    if n1 < 1 or n2 < 1:
        return TestResult(math.nan, math.nan, "z")
    c1, c2 = float(champion.sum()), float(challenger.sum())
    pooled = (c1 + c2) / (n1 + n2)
    if pooled <= 0.0 or pooled >= 1.0:
        return TestResult(0.0, 1.0, "z")
    z, p = proportions_ztest([c2, c1], [n2, n1], alternative="two-sided")
    return TestResult(float(z), float(p), "z")


def welch_test(champion: np.ndarray, challenger: np.ndarray) -> TestResult:
    """Welch's t-test (unequal variances), challenger minus champion.

    Both cells constant: p is 1 if they are equal and 0 if not (an infinite t), where
    the t statistic itself is undefined.
    """
    from statsmodels.stats.weightstats import ttest_ind
    n1, n2 = champion.size, challenger.size
    if n1 < 2 or n2 < 2:
        return TestResult(math.nan, math.nan, "welch")
    if float(champion.var()) == 0.0 and float(challenger.var()) == 0.0:
        diff = float(challenger.mean() - champion.mean())
        if diff == 0.0:
            return TestResult(0.0, 1.0, "welch")
        return TestResult(math.copysign(math.inf, diff), 0.0, "welch")
    t, p, _ = ttest_ind(challenger, champion, usevar="unequal", alternative="two-sided")
    return TestResult(float(t), float(p), "welch")


def cell_test(y: np.ndarray, in_challenger: np.ndarray, binary: bool) -> TestResult:
    """The test a team would use on ``y`` between the cells."""
    test = two_proportion_test if binary else welch_test
    return test(y[~in_challenger], y[in_challenger])


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """CUPED: ``y - theta (x - mean x)`` with ``theta = cov(x, y) / var(x)`` over every
    account of both cells; returns the adjusted outcome, theta and the correlation.

    Assignment is independent of a pre-period covariate, so the adjustment leaves the
    expected difference between the cells unchanged and removes the share ``rho^2`` of
    the outcome's variance.
    """
    xc = x - x.mean()
    var_x = float(np.dot(xc, xc))
    yc = y - y.mean()
    var_y = float(np.dot(yc, yc))
    if var_x <= 0.0:
        return y.copy(), 0.0, math.nan
    cov = float(np.dot(xc, yc))
    theta = cov / var_x
    rho = cov / math.sqrt(var_x * var_y) if var_y > 0.0 else math.nan
    return y - theta * xc, theta, rho


def _within_variance(y: np.ndarray, in_challenger: np.ndarray) -> float:
    """Pooled within-cell variance (the variance a test between the cells works with)."""
    total, dof = 0.0, 0
    for mask in (~in_challenger, in_challenger):
        part = y[mask]
        if part.size > 1:
            total += float(part.var(ddof=1)) * (part.size - 1)
            dof += part.size - 1
    return total / dof if dof else math.nan


def _cell_summary(y: np.ndarray) -> dict[str, float]:
    return {"n": int(y.size), "mean": float(y.mean()) if y.size else math.nan,
            "var": float(y.var(ddof=1)) if y.size > 1 else math.nan}


def trial_statistics(results: Results, scenario: Scenario,
                     params: Mapping[str, Any]) -> dict[str, Any]:
    """The extractor of a trial cell: per outcome, each cell's size, mean and variance,
    the effect (challenger minus champion) and the test; and per covariate the CUPED
    adjustment (theta, rho, adjusted effect, the within-cell variance ratio) and the
    test on the adjusted outcome (Welch's t: the adjusted outcome is not binary)."""
    accounts = results.accounts
    if "arm" not in accounts.columns:
        raise RuntimeError("a trial cell's run has no arm column")
    arm = accounts["arm"].astype(str).to_numpy()
    in_challenger = arm == CHALLENGER
    covariates = pre_period_covariates(scenario, results.seed, accounts)
    out: dict[str, Any] = {"cells": {CHAMPION: int((arm == CHAMPION).sum()),
                                     CHALLENGER: int(in_challenger.sum())},
                           "metrics": {}}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for metric in params["metrics"]:
            y, binary = account_outcome(accounts, metric)
            champion, challenger = y[~in_challenger], y[in_challenger]
            test = cell_test(y, in_challenger, binary)
            raw_var = _within_variance(y, in_challenger)
            adjusted: dict[str, Any] = {}
            for name, x in covariates.items():
                y_adj, theta, rho = cuped(y, x)
                adj_test = welch_test(y_adj[~in_challenger], y_adj[in_challenger])
                adjusted[name] = {
                    "theta": theta, "rho": rho,
                    "effect": float(y_adj[in_challenger].mean() - y_adj[~in_challenger].mean())
                    if champion.size and challenger.size else math.nan,
                    "variance_ratio": _within_variance(y_adj, in_challenger) / raw_var
                    if raw_var > 0 else math.nan,
                    "statistic": adj_test.statistic, "p_value": adj_test.p_value}
            out["metrics"][metric] = {
                "binary": binary,
                CHAMPION: _cell_summary(champion), CHALLENGER: _cell_summary(challenger),
                "effect": float(challenger.mean() - champion.mean())
                if champion.size and challenger.size else math.nan,
                "test": test.test, "statistic": test.statistic, "p_value": test.p_value,
                "cuped": adjusted}
    return out


def split_of(seed: int, n_accounts: int, split: float) -> np.ndarray:
    """The cell (``champion`` or ``challenger``) of accounts ``0 .. n-1`` in a trial run
    on ``seed`` at ``split``.

    The split of ``champion_challenger`` is a pure function of its random stream and the
    arms' shares, not of the arms' strategies, so a stand-in with two ``no_contact`` arms
    gives the trial's own split (``tests/test_power.py`` checks it).
    """
    spec = StrategySpec(use="champion_challenger", params={"arms": [
        {"use": "no_contact", "label": CHAMPION, "share": split},
        {"use": "no_contact", "label": CHALLENGER, "share": 1.0 - split}]})
    return arms_for_run(spec, seed, n_accounts)


def book_statistics(results: Results, scenario: Scenario,
                    params: Mapping[str, Any]) -> dict[str, Any]:
    """The extractor of a strategy run alone on the whole book: per outcome its mean
    over the book, and over the accounts each cell of the trial on the same seed holds
    (for the interference: the same accounts under the trial and alone)."""
    accounts = results.accounts
    ids = accounts["account_id"].to_numpy(dtype=np.int64)
    cell = split_of(results.seed, len(accounts), float(params["split"]))[ids]
    out: dict[str, Any] = {"metrics": {}}
    for metric in params["metrics"]:
        y, _ = account_outcome(accounts, metric)
        row: dict[str, Any] = {"book": _cell_summary(y)}
        for name in CELLS:
            row[name] = _cell_summary(y[cell == name])
        out["metrics"][metric] = row
    return out


# --------------------------------------------------------------------------- design


def _seed(root: int, *key: int) -> int:
    """A seed derived from the scenario's root seed and ``key`` (as ``replication_seed``)."""
    ss = np.random.SeedSequence(root, spawn_key=key)
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


#: First words of the spawn keys of the trials' and the whole-book runs' seeds.
_TRIAL_KEY, _BOOK_KEY = 0x70777231, 0x626F6F6B


def trial_seed(root: int, size: int, repetition: int) -> int:
    """The seed of repetition ``repetition`` of the trial of ``size`` accounts: each a
    fresh, independent book."""
    return _seed(root, _TRIAL_KEY, size, repetition)


def book_seed(root: int, repetition: int) -> int:
    """The seed of the ``repetition``-th whole-book run (trial and strategies alone)."""
    return _seed(root, _BOOK_KEY, repetition)


def parse_sizes(text: str, source: str = "--sizes") -> tuple[int, ...]:
    """``2000,5000,20000`` as sorted, distinct trial sizes."""
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip().replace("_", "")
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise UserError(f"expected whole numbers of accounts separated by commas, got "
                            f"'{part}'", source=source) from None
        sizes.append(value)
    if not sizes:
        raise UserError("give at least one trial size", source=source)
    return tuple(sorted(set(sizes)))


@dataclass(frozen=True)
class PowerDesign:
    """What a power analysis runs: the book, the two strategies, the trial's split,
    sizes, outcomes and look, the test's alpha, the repetitions and the adjustment."""

    scenario: Scenario
    champion: StrategySpec
    challenger: StrategySpec
    split: float
    sizes: tuple[int, ...]
    metrics: tuple[str, ...]
    look: float
    alpha: float = 0.05
    repetitions: int = 400
    covariate: str | None = None
    null: bool = False
    effect_repetitions: int = 5
    fair_queue: bool = True
    base_dir: str | None = None
    known_metrics: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse a design that cannot run, with one line naming the option."""
        if not (0.0 < self.split < 1.0) or not math.isfinite(self.split):
            raise UserError(f"the champion's share must lie strictly between 0 and 1, got "
                            f"{self.split:g}", source="--split")
        for size in self.sizes:
            small = min(size * self.split, size * (1.0 - self.split))
            if small < 2.0:
                raise UserError(f"a trial of {size:,} accounts at split {self.split:g} puts "
                                f"{small:.3g} accounts in a cell; each cell needs at least 2",
                                source="--sizes")
            if size > 50_000_000:
                raise UserError(f"{size:,} accounts is over the book's limit of 50,000,000",
                                source="--sizes")
        if not (0.0 < self.alpha < 1.0):
            raise UserError(f"alpha must lie strictly between 0 and 1, got {self.alpha:g}",
                            source="--alpha")
        if not (0.0 < self.look <= 3650.0) or not math.isfinite(self.look):
            raise UserError(f"the look must be a day after 0 and at most 3650, got "
                            f"{self.look:g}", source="--look")
        if self.repetitions < 1:
            raise UserError("give at least one repetition", source="--repetitions")
        if self.effect_repetitions < 2:
            raise UserError("the effects' intervals need at least 2 whole-book runs",
                            source="--effect-repetitions")
        if not self.metrics:
            raise UserError("name at least one outcome", source="--metric")
        known = self.known_metrics or tuple(DERIVED_OUTCOMES)
        for metric in self.metrics:
            if metric not in known:
                raise UserError(f"unknown outcome '{metric}'; expected one of "
                                f"{', '.join(known)}", source="--metric")
        if self.covariate is not None and self.covariate not in COVARIATES:
            raise UserError(f"unknown covariate '{self.covariate}'; expected one of "
                            f"{', '.join(COVARIATES)}", source="--cuped")

    @property
    def book_size(self) -> int:
        """The scenario's whole book, where the effects are estimated."""
        return self.scenario.population.size

    def agents_for(self, size: int) -> int:
        """The scenario's agents scaled to a book of ``size`` accounts (at least 1 when the
        scenario has agents), so that every size sees the same capacity per account."""
        count = self.scenario.agents.count
        if count == 0:
            return 0
        return max(1, math.floor(count * size / self.book_size + 0.5))

    def book_data(self, size: int) -> dict[str, Any]:
        """Resolved scenario data of a book of ``size`` accounts run to the look."""
        data = {k: v for k, v in self.scenario.to_dict().items() if k not in NOT_IN_CELL}
        data["population"]["size"] = int(size)
        data["agents"]["count"] = self.agents_for(size)
        data["horizon_days"] = float(self.look)
        scenario_from_dict(data, source=f"trial of {size} accounts")  # refuse it now
        return data

    def cell_specs(self) -> tuple[StrategySpec, StrategySpec]:
        """The strategies of the two cells (the champion twice with ``null``)."""
        return self.champion, self.champion if self.null else self.challenger

    def trial_spec(self) -> StrategySpec:
        """``champion_challenger`` with the two cells at the split."""
        champion, challenger = self.cell_specs()

        def arm(spec: StrategySpec, label: str, share: float) -> dict[str, Any]:
            return {"use": spec.use, "params": spec.params, "label": label, "share": share}

        return StrategySpec(use="champion_challenger", label="trial", params={
            "arms": [arm(champion, CHAMPION, self.split),
                     arm(challenger, CHALLENGER, 1.0 - self.split)],
            "fair_call_queue": self.fair_queue})

    def settings(self) -> dict[str, Any]:
        """The design as plain data, for ``power.json``."""
        champion, challenger = self.cell_specs()
        return {
            "champion": champion.model_dump(mode="json"),
            "challenger": challenger.model_dump(mode="json"),
            "null": self.null, "split": self.split, "sizes": list(self.sizes),
            "metrics": list(self.metrics), "look": self.look, "alpha": self.alpha,
            "repetitions": self.repetitions, "covariate": self.covariate,
            "effect_repetitions": self.effect_repetitions, "fair_queue": self.fair_queue,
            "book_size": self.book_size, "book_agents": self.scenario.agents.count,
            "agents": {str(s): self.agents_for(s) for s in self.sizes},
            "scenario": self.scenario.name, "seed": self.scenario.seed}


# --------------------------------------------------------------------------- cells


def plan_cells(design: PowerDesign) -> list[CellTask]:
    """Every cell of the analysis: the repetitions of the trial at every size, then the
    whole-book runs (the trial, the champion alone, the challenger alone) per seed."""
    metrics = {"metrics": sorted(design.metrics)}
    trial = design.trial_spec().model_dump(mode="json")
    root = design.scenario.seed
    tasks = []
    for size in design.sizes:
        data = design.book_data(size)
        for r in range(design.repetitions):
            tasks.append(CellTask.make(
                data, trial, trial_seed(root, size, r), r, base_dir=design.base_dir,
                variant={"role": "trial", "size": size, "repetition": r},
                extract=trial_statistics, extract_params=metrics))
    book = design.book_data(design.book_size)
    champion, challenger = design.cell_specs()
    alone = {"metrics": sorted(design.metrics), "split": design.split}
    for r in range(design.effect_repetitions):
        seed = book_seed(root, r)
        tasks.append(CellTask.make(
            book, trial, seed, r, base_dir=design.base_dir,
            variant={"role": "book_trial", "repetition": r},
            extract=trial_statistics, extract_params=metrics))
        for role, spec in (("champion_alone", champion), ("challenger_alone", challenger)):
            tasks.append(CellTask.make(
                book, spec.model_dump(mode="json"), seed, r, base_dir=design.base_dir,
                variant={"role": role, "repetition": r},
                extract=book_statistics, extract_params=alone))
    return tasks


@dataclass
class PowerRun:
    """What ``run_power`` computed: the cells and the tables made of them."""

    design: PowerDesign
    cells: CellRun
    repetitions: pd.DataFrame
    effects: dict[str, dict[str, Any]]
    table: pd.DataFrame
    summary: dict[str, Any]


def run_power(design: PowerDesign, out_dir: Path, backend: Backend, *,
              on_progress: Callable[[int, int], None] | None = None) -> PowerRun:
    """Compute (or reuse) every cell of ``design`` in ``out_dir/cells`` and summarise them.

    A failed cell stops the analysis with its error (one line): the power of a trial
    whose runs fail is not known.
    """
    tasks = plan_cells(design)
    cells = run_cached(tasks, out_dir / "cells", backend, fail_fast=True,
                       on_progress=on_progress)
    if cells.failures:
        first = cells.failures[0]
        raise UserError(f"a run failed ({first['variant']}): {first['error']}",
                        source=f"strategy '{first['strategy']}'")
    # From the tasks, not the records: with ``null`` the challenger alone is the champion
    # alone, one cell serving two roles.
    records = [(t.variant, cells.records[t.key]["values"]) for t in tasks]
    reps = repetition_frame(design, records)
    effects = book_effects(design, records)
    table = power_table(design, reps, effects)
    summary = power_summary(design, table, effects)
    return PowerRun(design, cells, reps, effects, table, summary)


# --------------------------------------------------------------------------- tables


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def repetition_frame(design: PowerDesign,
                     records: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
                     ) -> pd.DataFrame:
    """One row per trial repetition and outcome: the cells, the effect and the test, and
    (with a covariate) the adjusted effect and test."""
    rows = []
    cov = design.covariate
    for variant, values in records:
        if variant.get("role") != "trial":
            continue
        for metric in design.metrics:
            m = values["metrics"][metric]
            row: dict[str, Any] = {
                "size": int(variant["size"]), "repetition": int(variant["repetition"]),
                "metric": metric, "champion_n": m[CHAMPION]["n"],
                "challenger_n": m[CHALLENGER]["n"],
                "champion_mean": _num(m[CHAMPION]["mean"]),
                "challenger_mean": _num(m[CHALLENGER]["mean"]),
                "champion_var": _num(m[CHAMPION]["var"]),
                "challenger_var": _num(m[CHALLENGER]["var"]),
                "effect": _num(m["effect"]), "test": m["test"],
                "statistic": _num(m["statistic"]), "p_value": _num(m["p_value"]),
                "welch_p_value": _num(m["p_value"]) if m["test"] == "welch"
                else _welch_from_cells(m)}
            if cov is not None:
                a = m["cuped"][cov]
                row.update({"rho": _num(a["rho"]), "theta": _num(a["theta"]),
                            "variance_ratio": _num(a["variance_ratio"]),
                            "adjusted_effect": _num(a["effect"]),
                            "adjusted_p_value": _num(a["p_value"])})
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["size", "metric", "repetition"], kind="stable",
                             ignore_index=True)


def _welch_from_cells(m: Mapping[str, Any]) -> float:
    """Welch's t p-value of an outcome from its cells' sizes, means and variances: for a
    binary outcome, the unadjusted test of the same family as the CUPED one (Welch's t),
    so that the adjustment's gain is told apart from the change of test."""
    from scipy import stats
    a, b = m[CHAMPION], m[CHALLENGER]
    if a["n"] < 2 or b["n"] < 2:
        return math.nan
    va, vb = _num(a["var"]), _num(b["var"])
    if va == 0.0 and vb == 0.0:
        return 1.0 if _num(a["mean"]) == _num(b["mean"]) else 0.0
    with np.errstate(all="ignore"):
        test = stats.ttest_ind_from_stats(_num(b["mean"]), math.sqrt(vb), b["n"],
                                          _num(a["mean"]), math.sqrt(va), a["n"],
                                          equal_var=False)
    return float(test.pvalue)


def _interval(values: Sequence[float]) -> dict[str, float]:
    mean, low, high = t_interval(np.asarray(values, dtype=float))
    return {"mean": mean, "low": low, "high": high}


def book_effects(design: PowerDesign,
                 records: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
                 ) -> dict[str, dict[str, Any]]:
    """Per outcome, from the whole-book runs (means over seeds with 95 % t-intervals):

    * ``within``: challenger minus champion in the trial of the whole book at the split;
    * ``full_adoption``: the challenger alone minus the champion alone on the whole book;
    * ``champion_interference``: the champion cell's mean in the trial minus the same
      accounts' mean when the champion runs alone on the book (same seed);
    * ``challenger_interference``: likewise for the challenger's cell;
    * the cells' pooled means and variances (for the formula), and the covariate's rho.
    """
    by_rep: dict[int, dict[str, Mapping[str, Any]]] = {}
    for variant, values in records:
        role = variant.get("role")
        if role in ("book_trial", "champion_alone", "challenger_alone"):
            by_rep.setdefault(int(variant["repetition"]), {})[str(role)] = values
    reps = [by_rep[r] for r in sorted(by_rep)
            if {"book_trial", "champion_alone", "challenger_alone"} <= set(by_rep[r])]
    out: dict[str, dict[str, Any]] = {}
    for metric in design.metrics:
        within, full, inter_champ, inter_chal, rhos = [], [], [], [], []
        n = {c: 0 for c in CELLS}
        total = {c: 0.0 for c in CELLS}
        sq = {c: 0.0 for c in CELLS}
        binary = False
        for rep in reps:
            t = rep["book_trial"]["metrics"][metric]
            binary = bool(t["binary"])
            champ_alone = rep["champion_alone"]["metrics"][metric]
            chal_alone = rep["challenger_alone"]["metrics"][metric]
            within.append(_num(t["effect"]))
            full.append(_num(chal_alone["book"]["mean"]) - _num(champ_alone["book"]["mean"]))
            inter_champ.append(_num(t[CHAMPION]["mean"]) - _num(champ_alone[CHAMPION]["mean"]))
            inter_chal.append(_num(t[CHALLENGER]["mean"])
                              - _num(chal_alone[CHALLENGER]["mean"]))
            if design.covariate is not None:
                rhos.append(_num(t["cuped"][design.covariate]["rho"]))
            for c in CELLS:
                k, mean, var = t[c]["n"], _num(t[c]["mean"]), _num(t[c]["var"])
                if k > 1:
                    n[c] += k
                    total[c] += k * mean
                    sq[c] += (k - 1) * var + k * mean * mean
        pooled = {}
        for c in CELLS:
            mean = total[c] / n[c] if n[c] else math.nan
            var = (sq[c] - n[c] * mean * mean) / (n[c] - 1) if n[c] > 1 else math.nan
            pooled[c] = {"n": n[c], "mean": mean, "var": max(var, 0.0)}
        out[metric] = {
            "binary": binary, "repetitions": len(reps), "within": _interval(within),
            "full_adoption": _interval(full),
            "champion_interference": _interval(inter_champ),
            "challenger_interference": _interval(inter_chal),
            "cells": pooled,
            "rho": float(np.nanmean(rhos)) if rhos and np.isfinite(rhos).any() else math.nan}
    return out


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a share: inside [0, 1] for any count."""
    from statsmodels.stats.proportion import proportion_confint
    if trials <= 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, trials, alpha=1.0 - confidence,
                                   method="wilson")
    # The bound is exactly 0 (1) when no (every) trial succeeds; rounding can miss it.
    low = 0.0 if successes <= 0 else max(0.0, float(low))
    high = 1.0 if successes >= trials else min(1.0, float(high))
    return low, high


def effect_size(effect: Mapping[str, Any], rho: float = math.nan) -> float:
    """The standardised effect a closed-form power uses: Cohen's h of the two cells'
    proportions for a binary outcome, Cohen's d (pooled standard deviation) otherwise;
    with ``rho`` (CUPED) divided by ``sqrt(1 - rho^2)``, the adjusted outcome's spread."""
    from statsmodels.stats.proportion import proportion_effectsize
    cells = effect["cells"]
    p1, p2 = cells[CHAMPION]["mean"], cells[CHALLENGER]["mean"]
    if not (math.isfinite(p1) and math.isfinite(p2)):
        return math.nan
    if effect["binary"] and not math.isfinite(rho):
        return float(proportion_effectsize(min(max(p2, 0.0), 1.0), min(max(p1, 0.0), 1.0)))
    n1, n2 = cells[CHAMPION]["n"], cells[CHALLENGER]["n"]
    v1, v2 = cells[CHAMPION]["var"], cells[CHALLENGER]["var"]
    sd = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2)) if n1 + n2 > 2 else 0.0
    if math.isfinite(rho):
        sd *= math.sqrt(max(1.0 - rho * rho, 0.0))
    if sd <= 0.0:
        return math.nan
    return (p2 - p1) / sd


def formula_power(es: float, size: float, split: float, alpha: float) -> float:
    """``NormalIndPower`` of a two-sided test with standardised effect ``es``, the
    champion's ``size * split`` accounts and the challenger's ``size * (1 - split)``."""
    from statsmodels.stats.power import NormalIndPower
    if not math.isfinite(es):
        return math.nan
    if es == 0.0:
        return alpha
    return float(NormalIndPower().power(effect_size=abs(es), nobs1=size * split,
                                        alpha=alpha, ratio=(1.0 - split) / split,
                                        alternative="two-sided"))


def formula_size(es: float, split: float, alpha: float,
                 power: float = TARGET_POWER) -> float:
    """The trial size (both cells) at which ``formula_power`` reaches ``power``."""
    from statsmodels.stats.power import NormalIndPower
    if not math.isfinite(es) or es == 0.0:
        return math.nan
    nobs1 = NormalIndPower().solve_power(effect_size=abs(es), nobs1=None, alpha=alpha,
                                         power=power, ratio=(1.0 - split) / split,
                                         alternative="two-sided")
    return float(np.ravel(nobs1)[0]) / split


def power_table(design: PowerDesign, reps: pd.DataFrame,
                effects: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """``power.csv``: one row per size and outcome (``POWER_COLUMNS``).

    ``power`` is the share of repetitions rejecting at alpha (after CUPED when a
    covariate is given; ``power_unadjusted`` without, by the outcome's own test;
    ``power_welch`` without, by Welch's t, the test the adjusted outcome gets, so that for
    a binary outcome the adjustment's gain is not mistaken for the gain of Welch's unpooled
    variance over the pooled z-test), ``low``/``high`` its 95 % Wilson interval. A
    repetition whose test cannot be computed (a cell with too few accounts) counts as not
    rejecting (``untestable``). With ``null`` the share is the type-I
    error and is also in ``type1``. ``effect`` is the within-trial effect on the whole
    book, ``effect_at_size`` the mean effect of this size's repetitions.
    """
    rows = []
    cov = design.covariate
    for metric in design.metrics:
        eff = effects[metric]
        rho = eff["rho"] if cov is not None else math.nan
        es = effect_size(eff, rho)
        for size in design.sizes:
            part = reps[(reps["size"] == size) & (reps["metric"] == metric)] \
                if len(reps) else reps
            count = len(part)
            raw_p = part["p_value"].to_numpy(dtype=float) if count else np.empty(0)
            raw_k = int(np.sum(raw_p < design.alpha))
            raw_low, raw_high = wilson(raw_k, count)
            welch_p = part["welch_p_value"].to_numpy(dtype=float) if count else np.empty(0)
            if cov is not None and count:
                adj_p = part["adjusted_p_value"].to_numpy(dtype=float)
                k = int(np.sum(adj_p < design.alpha))
                untestable = int(np.sum(~np.isfinite(adj_p)))
                ratio = float(np.nanmean(part["variance_ratio"].to_numpy(dtype=float)))
                reduction = 1.0 - ratio
                rho_size = float(np.nanmean(part["rho"].to_numpy(dtype=float)))
                raw_var = float(np.var(part["effect"].to_numpy(dtype=float), ddof=1)) \
                    if count > 2 else math.nan
                adj_var = float(np.var(part["adjusted_effect"].to_numpy(dtype=float),
                                       ddof=1)) if count > 2 else math.nan
                effect_ratio = adj_var / raw_var if raw_var > 0 else math.nan
            else:
                k, untestable = raw_k, int(np.sum(~np.isfinite(raw_p)))
                reduction = rho_size = effect_ratio = math.nan
            low, high = wilson(k, count)
            share = k / count if count else math.nan
            rows.append({
                "size": size, "split": design.split, "metric": metric,
                "effect": eff["within"]["mean"], "power": share, "low": low, "high": high,
                "type1": share if design.null else math.nan,
                "variance_reduction": reduction, "covariate": cov or "",
                "rho": rho_size, "effect_variance_ratio": effect_ratio,
                "power_unadjusted": raw_k / count if count else math.nan,
                "unadjusted_low": raw_low, "unadjusted_high": raw_high,
                "power_welch": float(np.mean(welch_p < design.alpha)) if count else math.nan,
                "formula_power": formula_power(es, size, design.split, design.alpha),
                "effect_at_size": float(part["effect"].mean()) if count else math.nan,
                "effect_full_adoption": eff["full_adoption"]["mean"],
                "champion_accounts": float(part["champion_n"].mean()) if count else math.nan,
                "challenger_accounts": float(part["challenger_n"].mean())
                if count else math.nan,
                "agents": design.agents_for(size), "repetitions": count, "rejections": k,
                "untestable": untestable, "alpha": design.alpha, "look": design.look})
    return pd.DataFrame(rows, columns=list(POWER_COLUMNS))


def smallest_size(table: pd.DataFrame, metric: str,
                  target: float = TARGET_POWER) -> int | None:
    """The smallest simulated size whose power reaches ``target`` (None if none does)."""
    part = table[(table["metric"] == metric) & (table["power"] >= target)]
    return int(part["size"].min()) if len(part) else None


def interference_note(effect: Mapping[str, Any]) -> str:
    """One sentence on whether the cells' outcomes in the trial differ from the same
    accounts' outcomes under their strategy alone (95 % intervals over the seeds)."""
    parts = []
    for cell in CELLS:
        d = effect[f"{cell}_interference"]
        mean, low, high = d["mean"], d["low"], d["high"]
        if not math.isfinite(mean):
            continue
        if math.isfinite(low) and (low > 0 or high < 0):
            verdict = "higher" if mean > 0 else "lower"
            parts.append(f"the {cell}'s cell is {verdict} in the trial than the same accounts "
                         f"under the {cell} alone ({mean:+.4g} [{low:+.4g}, {high:+.4g}])")
        else:
            parts.append(f"the {cell}'s cell is no different in the trial from the same "
                         f"accounts under the {cell} alone ({mean:+.4g} [{low:+.4g}, "
                         f"{high:+.4g}])")
    if not parts:
        return "no interference measured"
    return "; ".join(parts)


def power_summary(design: PowerDesign, table: pd.DataFrame,
                  effects: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``power.json``: the design, per outcome the effects, the interference, the smallest
    simulated size reaching 80 % and the size the closed form asks for."""
    per_metric = {}
    for metric in design.metrics:
        eff = effects[metric]
        rho = eff["rho"] if design.covariate is not None else math.nan
        es = effect_size(eff, rho)
        per_metric[metric] = {
            **{k: eff[k] for k in ("binary", "repetitions", "within", "full_adoption",
                                   "champion_interference", "challenger_interference",
                                   "cells", "rho")},
            "effect_size": es,
            "smallest_size": smallest_size(table, metric),
            "formula_size": formula_size(es, design.split, design.alpha),
            "interference": interference_note(eff)}
    return {"design": design.settings(), "target_power": TARGET_POWER,
            "headline": design.metrics[0], "metrics": per_metric}


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def write_power_outputs(result: PowerRun, folder: OutputFolder) -> dict[str, Path]:
    """``power.csv``, ``repetitions.csv``, ``power.json`` and the resolved scenario,
    staged in the (locked) output folder and put in place together."""
    folder.stage("power.csv", lambda p: result.table.to_csv(p, index=False))
    folder.stage("repetitions.csv", lambda p: result.repetitions.to_csv(p, index=False))
    text = json.dumps(_json_ready(result.summary), indent=1, allow_nan=False) + "\n"
    folder.stage("power.json", lambda p: p.write_text(text, encoding="utf-8"))
    scenario = resolved_scenario_text(result.design.scenario)
    folder.stage("scenario.resolved.yaml", lambda p: p.write_text(scenario, encoding="utf-8"))
    placed = folder.commit("contactsim power")
    return {"power": placed["power.csv"], "repetitions": placed["repetitions.csv"],
            "summary": placed["power.json"], "scenario": placed["scenario.resolved.yaml"]}
