"""Writing a run's results: the KPI tables, the Parquet frames and the resolved scenario,
each file atomically, in a folder that never mixes two runs."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import yaml

from simulator.engine import Results
from simulator.errors import UserError
from simulator.experiments.runner import kpi_frame, summarise
from simulator.scenario import Scenario


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
        "agents_daily": out_dir / "agents_daily.parquet",
        "scenario": out_dir / "scenario.resolved.yaml",
    }
    kpis = kpi_frame(results)
    atomic_write(paths["kpis"], lambda p: kpis.to_csv(p, index=False))
    atomic_write(paths["summary"], lambda p: summarise(kpis).to_csv(p, index=False))
    daily = pd.concat([_with_ids(r.daily, r) for r in results], ignore_index=True)
    atomic_write(paths["daily"], lambda p: daily.to_parquet(p, index=False))
    accounts = pd.concat([_with_ids(r.accounts, r) for r in results], ignore_index=True)
    atomic_write(paths["accounts"], lambda p: accounts.to_parquet(p, index=False))
    agents = pd.concat([_with_ids(r.agents_daily, r) for r in results], ignore_index=True)
    atomic_write(paths["agents_daily"], lambda p: agents.to_parquet(p, index=False))
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
