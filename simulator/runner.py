"""Replications and strategy arms: many calls of ``run`` on a process pool.

Every arm of a replication gets the same seed (common random numbers). Results are
collected in cell order, so outputs do not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from simulator.compare import t_interval
from simulator.engine import Results, run
from simulator.errors import UserError
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
    """Mean and t-interval of every KPI per strategy (long format)."""
    out = []
    value_cols = [c for c in kpis.columns if c not in ("strategy", "replication", "seed")]
    for strategy, group in kpis.groupby("strategy", sort=False):
        n = len(group)
        for col in value_cols:
            mean, low, high = t_interval(group[col].to_numpy(dtype=float), confidence)
            out.append({"strategy": strategy, "kpi": col, "mean": mean, "ci_low": low,
                        "ci_high": high, "replications": n})
    return pd.DataFrame(out)


def _with_ids(frame: pd.DataFrame, r: Results) -> pd.DataFrame:
    f = frame.copy()
    f.insert(0, "replication", r.replication)
    f.insert(0, "strategy", r.strategy)
    return f


def write_outputs(results: Sequence[Results], scenario: Scenario, out_dir: Path,
                  events: bool = True) -> dict[str, Path]:
    """Write kpis.csv, the Parquet frames and the resolved scenario into ``out_dir``.

    File names are fixed: nothing a scenario or a strategy names reaches a path, so
    nothing is written outside ``out_dir``. An optional file this run does not write
    (the event log, KPIs by arm) is removed, so the folder never mixes two runs.
    """
    create_output_folder(out_dir)
    paths = {
        "kpis": out_dir / "kpis.csv",
        "summary": out_dir / "summary.csv",
        "daily": out_dir / "daily.parquet",
        "accounts": out_dir / "accounts.parquet",
        "scenario": out_dir / "scenario.resolved.yaml",
    }
    kpis = kpi_frame(results)
    atomic_write(paths["kpis"], lambda p: kpis.to_csv(p, index=False))
    atomic_write(paths["summary"], lambda p: summarise(kpis).to_csv(p, index=False))
    daily = pd.concat([_with_ids(r.daily, r) for r in results], ignore_index=True)
    atomic_write(paths["daily"], lambda p: daily.to_parquet(p, index=False))
    accounts = pd.concat([_with_ids(r.accounts, r) for r in results], ignore_index=True)
    atomic_write(paths["accounts"], lambda p: accounts.to_parquet(p, index=False))
    if events:
        paths["events"] = out_dir / "events.parquet"
        ev = pd.concat([_with_ids(r.events, r) for r in results], ignore_index=True)
        atomic_write(paths["events"], lambda p: ev.to_parquet(p, index=False))
    split = [r for r in results if "arm" in r.accounts.columns]
    if split:
        from simulator.strategies.arms import arm_kpis

        paths["kpis_by_arm"] = out_dir / "kpis_by_arm.csv"
        by_arm = pd.concat([arm_kpis(r, r.accounts["arm"].to_numpy(), scenario)
                            for r in split], ignore_index=True)
        atomic_write(paths["kpis_by_arm"], lambda p: by_arm.to_csv(p, index=False))
    write_resolved_scenario(paths["scenario"], scenario)
    for name in OPTIONAL_OUTPUTS:
        stale = out_dir / name
        if stale not in paths.values():
            try:
                stale.unlink(missing_ok=True)
            except OSError as exc:
                raise UserError(f"cannot remove an earlier run's file ({exc.strerror})",
                                source=str(stale)) from None
    return paths


#: Files ``write_outputs`` writes only for some runs.
OPTIONAL_OUTPUTS: tuple[str, ...] = ("events.parquet", "kpis_by_arm.csv")


def create_output_folder(out_dir: Path) -> None:
    """Create ``out_dir`` and its parents, or say in one line why it cannot be."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder ({exc.strerror})",
                        source=str(out_dir)) from None
    except ValueError as exc:  # e.g. a NUL character in the name
        raise UserError(f"cannot create output folder ({exc})",
                        source=repr(str(out_dir))) from None


def write_resolved_scenario(path: Path, scenario: Scenario) -> None:
    """Every parameter the run used, as YAML: the run can be repeated from this file."""
    text = yaml.safe_dump(scenario.to_dict(), sort_keys=False, allow_unicode=True)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file.

    The temporary file is created afresh (a leftover one, or a symbolic link planted in
    its place, is removed first), so the write cannot be steered outside the folder.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        write(tmp)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write ({exc.strerror})", source=str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
