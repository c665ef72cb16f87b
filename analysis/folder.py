"""Reading a results folder written by ``contactsim run``, ``compare``, ``sweep``,
``robust``, ``power`` or ``calibrate``.

The kind of folder is told by the files present: a calibration has
``calibration.resolved.yaml``, a robustness analysis ``robust.resolved.yaml``, a power
analysis ``power.csv`` and ``power.json``, a sweep ``sweep.resolved.yaml`` (or a
``cells/`` folder), a comparison ``comparison.csv``, a run only ``kpis.csv`` and its
Parquet frames. Frames are read on first use and kept on the instance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from simulator.errors import UserError
from simulator.scenario import Scenario

FolderKind = Literal["run", "compare", "sweep", "robust", "power", "calibrate"]

#: Columns of a kpis.csv that identify a row rather than measure it.
ID_COLUMNS = ("strategy", "replication", "seed")
#: Columns of a comparison.csv that hold numbers.
COMPARISON_NUMBERS = ("mean", "ci_low", "ci_high", "diff", "diff_low", "diff_high",
                      "unpaired_low", "unpaired_high")


def sweep_factors(kpis: pd.DataFrame) -> list[str]:
    """The varied factors of a sweep's kpis.csv: the columns before ``strategy``."""
    cols = list(kpis.columns)
    return cols[: cols.index("strategy")] if "strategy" in cols else []


def numeric_column(values: pd.Series, source: str, column: str) -> pd.Series:
    """``values`` as numbers, or a one-line ``UserError`` naming the file, the column and
    the first value that is not a number (an empty cell is NaN)."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise UserError(f"value {str(values.iloc[row])!r} in row {row + 1} is not a number",
                        source=source, field=f"column {column}")
    return numbers


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
        """kpis.csv: one row per (factors,) strategy and replication.

        Refused in one line naming the file and the column: a file with no rows, or a
        value that is not a number in ``replication``, ``seed`` or a KPI column (the
        columns after ``seed``; a sweep's factor columns, before ``strategy``, may hold
        text). An empty cell is an undefined value (NaN) and allowed.
        """
        source = str(self.path / "kpis.csv")
        df = self._csv("kpis.csv")
        missing = [c for c in ID_COLUMNS if c not in df.columns]
        if missing:
            raise UserError(f"missing column(s) {', '.join(missing)}", source=source)
        if df.empty:
            raise UserError("no rows (a header only): no run to report", source=source)
        cols = list(df.columns)
        numeric = ["replication", "seed", *cols[cols.index("seed") + 1:]]
        for col in numeric:
            df[col] = numeric_column(df[col], source, col)
        df["strategy"] = df["strategy"].astype(str)
        return df

    @property
    def factors(self) -> list[str]:
        """The sweep's varied factors (empty for a run or a comparison)."""
        return sweep_factors(self.kpis)

    @functools.cached_property
    def comparison(self) -> pd.DataFrame | None:
        """comparison.csv of ``contactsim compare``, if present (its means and interval
        ends must be numbers, as in ``kpis``)."""
        if not self.has("comparison.csv"):
            return None
        df = self._csv("comparison.csv")
        for col in COMPARISON_NUMBERS:
            if col in df.columns:
                df[col] = numeric_column(df[col], str(self.path / "comparison.csv"), col)
        return df

    @functools.cached_property
    def daily(self) -> pd.DataFrame | None:
        """daily.parquet, if present."""
        return self._parquet("daily.parquet") if self.has("daily.parquet") else None

    @functools.cached_property
    def agents_daily(self) -> pd.DataFrame | None:
        """agents_daily.parquet, if present."""
        return (self._parquet("agents_daily.parquet") if self.has("agents_daily.parquet")
                else None)

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
        """The currency of money KPIs, found in the resolved scenario (default: the
        scenario schema's, CNY)."""
        found = _find_key(self.scenario, "currency", depth=3)
        return str(found) if found else str(Scenario.model_fields["currency"].default)

    @functools.cached_property
    def run_info(self) -> dict[str, Any]:
        """run.yaml (what the command line changed), or an empty dict."""
        if not self.has("run.yaml"):
            return {}
        try:
            data = yaml.safe_load((self.path / "run.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read ({exc})", source=str(self.path / "run.yaml")) from None
        return data if isinstance(data, dict) else {}

    @property
    def overrides(self) -> list[str]:
        """The overrides applied to the scenario file, as ``KEY=VALUE``: from run.yaml
        (run, compare) or the sweep's ``set`` (a sweep)."""
        if self.kind == "sweep":
            given = self.scenario.get("set")
            if isinstance(given, dict):
                return [f"{k}={_yaml_value(v)}" for k, v in given.items()]
            return []
        found = self.run_info.get("overrides")
        return [str(o) for o in found] if isinstance(found, list) else []

    @property
    def design(self) -> str:
        """A sweep's design: ``grid``, ``latin_hypercube`` or ``none`` (others: ``none``)."""
        return str(self.scenario.get("design") or "none") if self.kind == "sweep" else "none"

    @property
    def title(self) -> str:
        """A short name: the scenario's or sweep's ``name``, else the folder's."""
        name = self.scenario.get("name")
        if not name and isinstance(self.scenario.get("base"), dict):
            name = self.scenario["base"].get("name")
        return str(name or self.path.name)


def _yaml_value(value: Any) -> str:
    """A value as one would type it after ``--set KEY=``."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


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
                        "compare, sweep, robust, power or calibrate)", source=str(path))
    if (path / "calibration.resolved.yaml").is_file():
        if not (path / "estimates.csv").is_file():
            raise UserError("no estimates.csv: not a calibration's output folder (its files "
                            "are put in place together)", source=str(path))
        return ResultsFolder(path, "calibrate")
    if (path / "study.db").is_file() and not (path / "kpis.csv").is_file():
        raise UserError("a calibration that has not finished (rerun the same contactsim "
                        "calibrate command to resume it)", source=str(path))
    if (path / "robust.resolved.yaml").is_file():
        if not (path / "ranking.csv").is_file():
            raise UserError("no ranking.csv: the robustness analysis has not finished (rerun "
                            "the same contactsim robust command)", source=str(path))
        return ResultsFolder(path, "robust")
    if (path / "power.csv").is_file() and (path / "power.json").is_file():
        return ResultsFolder(path, "power")
    if not (path / "kpis.csv").is_file():
        raise UserError("no kpis.csv: not an output folder of contactsim run, compare, "
                        "sweep, robust, power or calibrate", source=str(path))
    kind: FolderKind
    if (path / "sweep.resolved.yaml").is_file() or (path / "cells").is_dir():
        kind = "sweep"
    elif (path / "comparison.csv").is_file():
        kind = "compare"
    else:
        kind = "run"
    return ResultsFolder(path, kind)
