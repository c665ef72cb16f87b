"""Reading a results folder written by ``contactsim run``, ``compare``, ``sweep``, ``robust``
or ``calibrate``.

The kind of folder is told by the files present: a calibration has
``calibration.resolved.yaml``, a robustness analysis has
``robust.resolved.yaml``, a sweep has ``sweep.resolved.yaml``
(or a ``cells/`` folder), a comparison ``comparison.csv``, a run only ``kpis.csv`` and
its Parquet frames. Frames are read on first use and kept on the instance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from simulator.errors import UserError

FolderKind = Literal["run", "compare", "sweep", "robust", "calibrate"]

#: Columns of a kpis.csv that identify a row rather than measure it.
ID_COLUMNS = ("strategy", "replication", "seed")


def sweep_factors(kpis: pd.DataFrame) -> list[str]:
    """The varied factors of a sweep's kpis.csv: the columns before ``strategy``."""
    cols = list(kpis.columns)
    return cols[: cols.index("strategy")] if "strategy" in cols else []


@dataclass(frozen=True, eq=False)
class ResultsFolder:
    """One output folder and lazy access to what it holds."""

    path: Path
    kind: FolderKind

    def has(self, name: str) -> bool:
        """Whether the folder holds the file ``name``."""
        return (self.path / name).is_file()

    def _csv(self, name: str) -> pd.DataFrame:
        try:
            return pd.read_csv(self.path / name)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read a table ({exc})", source=str(self.path / name)) from None

    def _parquet(self, name: str) -> pd.DataFrame:
        try:
            return pd.read_parquet(self.path / name)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read a table ({exc})", source=str(self.path / name)) from None

    @functools.cached_property
    def kpis(self) -> pd.DataFrame:
        """kpis.csv: one row per (factors,) strategy and replication."""
        df = self._csv("kpis.csv")
        missing = [c for c in ID_COLUMNS if c not in df.columns]
        if missing:
            raise UserError(f"missing column(s) {', '.join(missing)}",
                            source=str(self.path / "kpis.csv"))
        df["strategy"] = df["strategy"].astype(str)
        return df

    @property
    def factors(self) -> list[str]:
        """The sweep's varied factors (empty for a run or a comparison)."""
        return sweep_factors(self.kpis)

    @functools.cached_property
    def comparison(self) -> pd.DataFrame | None:
        """comparison.csv of ``contactsim compare``, if present."""
        return self._csv("comparison.csv") if self.has("comparison.csv") else None

    @functools.cached_property
    def daily(self) -> pd.DataFrame | None:
        """daily.parquet, if present."""
        return self._parquet("daily.parquet") if self.has("daily.parquet") else None

    @functools.cached_property
    def accounts(self) -> pd.DataFrame | None:
        """accounts.parquet, if present."""
        return self._parquet("accounts.parquet") if self.has("accounts.parquet") else None

    @functools.cached_property
    def events(self) -> pd.DataFrame | None:
        """events.parquet, if present."""
        return self._parquet("events.parquet") if self.has("events.parquet") else None

    @property
    def scenario_file(self) -> Path | None:
        """The resolved scenario (or sweep) file, if present."""
        for name in ("scenario.resolved.yaml", "sweep.resolved.yaml", "robust.resolved.yaml",
                     "calibration.resolved.yaml"):
            if self.has(name):
                return self.path / name
        return None

    @functools.cached_property
    def scenario_text(self) -> str:
        """The resolved scenario or sweep file as written, or an empty string."""
        f = self.scenario_file
        return f.read_text(encoding="utf-8") if f else ""

    @functools.cached_property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario (for a sweep: the sweep file) as plain data."""
        if not self.scenario_text:
            return {}
        try:
            data = yaml.safe_load(self.scenario_text)
        except yaml.YAMLError as exc:
            raise UserError(f"not valid YAML ({exc})", source=str(self.scenario_file)) from None
        return data if isinstance(data, dict) else {}

    def table(self, name: str) -> pd.DataFrame:
        """One of the folder's CSV tables (``ranking.csv`` ...), or a one-line error."""
        if not self.has(name):
            raise UserError(f"no {name}", source=str(self.path))
        return self._csv(name)

    @property
    def currency(self) -> str:
        """The currency of money KPIs, found in the resolved scenario (default: 'money')."""
        found = _find_key(self.scenario, "currency", depth=3)
        return str(found) if found else "money"

    @property
    def title(self) -> str:
        """A short name: the scenario's or sweep's ``name``, else the folder's."""
        name = self.scenario.get("name")
        if not name and isinstance(self.scenario.get("base"), dict):
            name = self.scenario["base"].get("name")
        return str(name or self.path.name)


def _find_key(data: Any, key: str, depth: int) -> Any:
    """The value of ``key`` in nested dicts, searched breadth first to ``depth`` levels."""
    level = [data]
    for _ in range(depth):
        nxt: list[Any] = []
        for d in level:
            if isinstance(d, dict):
                if key in d:
                    return d[key]
                nxt.extend(v for v in d.values() if isinstance(v, dict))
        level = nxt
    return None


def open_folder(path: Path) -> ResultsFolder:
    """Recognise a results folder, or raise a ``UserError`` saying what is missing."""
    if not path.exists():
        raise UserError("no such folder", source=str(path))
    if not path.is_dir():
        raise UserError("not a folder (expected the output folder of contactsim run, "
                        "compare, sweep or robust)", source=str(path))
    if (path / "calibration.resolved.yaml").is_file():
        if not (path / "estimates.csv").is_file():
            raise UserError("no estimates.csv: the calibration has not finished (rerun the "
                            "same contactsim calibrate command)", source=str(path))
        return ResultsFolder(path, "calibrate")
    if (path / "robust.resolved.yaml").is_file():
        if not (path / "ranking.csv").is_file():
            raise UserError("no ranking.csv: the robustness analysis has not finished (rerun "
                            "the same contactsim robust command)", source=str(path))
        return ResultsFolder(path, "robust")
    if not (path / "kpis.csv").is_file():
        raise UserError("no kpis.csv: not an output folder of contactsim run, compare, "
                        "sweep or robust", source=str(path))
    kind: FolderKind
    if (path / "sweep.resolved.yaml").is_file() or (path / "cells").is_dir():
        kind = "sweep"
    elif (path / "comparison.csv").is_file():
        kind = "compare"
    else:
        kind = "run"
    return ResultsFolder(path, kind)
