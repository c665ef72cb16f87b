"""Replications and strategy arms: many calls of ``run`` on a process pool.

Every arm of a replication gets the same seed (common random numbers). Results are
collected in cell order, so outputs do not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from simulator.engine import Results, run
from simulator.experiments.compare import kpi_interval
from simulator.kpis import KPI_DEFINITIONS
from simulator.rng import replication_seed
from simulator.scenario import Scenario, StrategySpec
from simulator.strategies.loader import uses_plugin


@dataclass(frozen=True)
class Cell:
    """One run: an arm on one replication."""

    spec: StrategySpec
    replication: int
    seed: int


def cells_of(scenario: Scenario) -> list[Cell]:
    """Arms x replications, replication-major, every arm on the same seed."""
    return [Cell(spec, r, replication_seed(scenario.seed, r))
            for r in range(scenario.replications) for spec in scenario.strategies]


def _run_cell(args: tuple[Scenario, Cell, Path | None]) -> Results:
    scenario, cell, base_dir = args
    return run(scenario, cell.spec, cell.seed, cell.replication, base_dir)


def run_cells(scenario: Scenario, cells: Sequence[Cell], workers: int = 1,
              base_dir: Path | None = None,
              on_done: Callable[[Results], None] | None = None) -> list[Results]:
    """Run ``cells`` (in parallel when ``workers > 1``), returned in the order given."""
    jobs = [(scenario, c, base_dir) for c in cells]
    results: list[Results] = []
    # Plug-in code runs in a worker process even with one worker, so that a plug-in that
    # ends its process (os._exit, a crash in native code) fails the run with a message
    # (BrokenProcessPool) instead of ending contactsim silently.
    plugin = any(uses_plugin(c.spec) for c in cells)
    if (workers <= 1 or len(jobs) <= 1) and not plugin:
        for job in jobs:
            res = _run_cell(job)
            results.append(res)
            if on_done:
                on_done(res)
        return results
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        for res in pool.map(_run_cell, jobs):
            results.append(res)
            if on_done:
                on_done(res)
    return results


def kpi_frame(results: Sequence[Results]) -> pd.DataFrame:
    """One row per (strategy, replication): ids, then KPIs in their documented order."""
    rows = [{"strategy": r.strategy, "replication": r.replication, "seed": r.seed, **r.kpis}
            for r in results]
    df = pd.DataFrame(rows)
    first = ["strategy", "replication", "seed", *KPI_DEFINITIONS]
    rest = sorted(c for c in df.columns if c not in first)
    return df[[c for c in first if c in df.columns] + rest]


def summarise(kpis: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and interval of every KPI per strategy (long format): the t-interval
    truncated to the KPI's range (``compare.kpi_interval``)."""
    out = []
    value_cols = [c for c in kpis.columns if c not in ("strategy", "replication", "seed")]
    for strategy, group in kpis.groupby("strategy", sort=False):
        n = len(group)
        for col in value_cols:
            mean, low, high = kpi_interval(group[col].to_numpy(dtype=float), col,
                                           confidence)
            out.append({"strategy": strategy, "kpi": col, "mean": mean, "ci_low": low,
                        "ci_high": high, "replications": n})
    return pd.DataFrame(out)
