"""Replications and strategy arms: many calls of ``run`` on a process pool.

Every arm of a replication gets the same seed (common random numbers). Results are
collected in cell order, so outputs do not depend on the number of workers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from simulator.engine import Results, run
from simulator.experiments.compare import kpi_interval
from simulator.experiments.supervised import exit_with_parent, run_supervised, stop_workers
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


def _run_cell(args: tuple[Scenario, Cell, Path | None, Path | None]) -> Results:
    scenario, cell, base_dir, spill = args
    return run(scenario, cell.spec, cell.seed, cell.replication, base_dir, spill_events=spill)


def run_cells(scenario: Scenario, cells: Sequence[Cell], workers: int = 1,
              base_dir: Path | None = None,
              on_done: Callable[[Results], None] | None = None,
              spill_events: Callable[[], Path] | None = None) -> list[Results]:
    """Run ``cells`` (``workers`` at a time), returned in the order given.

    With ``spill_events`` (a function giving a new file of a local folder each call),
    each cell run here or on the pool writes its event log to such a file during the
    run (``run(spill_events=...)``); supervised cells keep it in memory.

    When any cell runs plug-in code (a plug-in strategy, or a plug-in arm of a built-in
    composite), every cell runs in a supervised child process (``supervised.py``), even
    with one worker: plug-in code never runs in this process, and a fault of one arm
    stops the others at once. Otherwise the cells run here (one worker) or on a process
    pool whose workers exit with this process.
    """
    if any(uses_plugin(c.spec) for c in cells):
        return _run_supervised(scenario, cells, workers, base_dir, on_done)
    jobs = [(scenario, c, base_dir, spill_events() if spill_events is not None else None)
            for c in cells]
    results: list[Results] = []
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            res = _run_cell(job)
            results.append(res)
            if on_done:
                on_done(res)
        return results
    pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))),
                               initializer=exit_with_parent, initargs=(os.getpid(),))
    try:
        for res in pool.map(_run_cell, jobs):
            results.append(res)
            if on_done:
                on_done(res)
    except BaseException:
        stop_workers(pool)  # a failed run, Ctrl-C or SIGTERM: the other cells are not wanted
        raise
    pool.shutdown(wait=True)
    return results


def _run_supervised(scenario: Scenario, cells: Sequence[Cell], workers: int,
                    base_dir: Path | None,
                    on_done: Callable[[Results], None] | None) -> list[Results]:
    """Every cell in a supervised child, ``workers`` at a time, each watched by a thread."""
    stop = threading.Event()
    threads = ThreadPoolExecutor(max_workers=max(1, min(workers, len(cells))),
                                 thread_name_prefix="contactsim-supervisor")
    results: list[Results] = []
    try:
        futures = [threads.submit(run_supervised, scenario, c.spec, c.seed, c.replication,
                                  base_dir, stop=stop) for c in cells]
        for future in futures:
            res = future.result()
            results.append(res)
            if on_done:
                on_done(res)
    finally:
        stop.set()  # on a failure, Ctrl-C or SIGTERM, the other children are killed
        threads.shutdown(wait=True, cancel_futures=True)
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
