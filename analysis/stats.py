"""Means with intervals over replications, per group of a tidy KPI frame.

A column named after a KPI gets ``simulator.experiments.compare.kpi_interval``: the
t-interval truncated to the range the KPI can take; other columns give their range in
``ranges`` (a column in neither is unbounded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from simulator.experiments.compare import bounded_interval
from simulator.kpis import KpiRange, kpi_range


def mean_ci(values: ArrayLike, confidence: float = 0.95,
            bounds: KpiRange | None = None) -> tuple[float, float, float]:
    """Mean and the two ends of its Student-t interval, truncated to ``bounds``
    (``simulator.experiments.compare.bounded_interval``)."""
    return bounded_interval(np.asarray(values, dtype=float), bounds, confidence)


def column_range(column: str, ranges: Mapping[str, KpiRange] | None = None) -> KpiRange | None:
    """The range of ``column``: given in ``ranges``, else the KPI's, else None."""
    if ranges and column in ranges:
        return ranges[column]
    return kpi_range(column)


def summarise_by(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str],
                 confidence: float = 0.95,
                 ranges: Mapping[str, KpiRange] | None = None) -> pd.DataFrame:
    """One row per group of ``by`` (in order of first appearance) with, for each column
    ``c``, its mean ``c`` and interval ``c_low``, ``c_high`` (inside the column's range,
    ``column_range``), and the group size ``n``."""
    bounds = {c: column_range(c, ranges) for c in columns}
    rows = []
    for key, group in frame.groupby(list(by), sort=False, dropna=False):
        keys = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(by, keys, strict=True))
        row["n"] = len(group)
        for c in columns:
            m, lo, hi = mean_ci(group[c].to_numpy(dtype=float), confidence, bounds[c])
            row[c], row[f"{c}_low"], row[f"{c}_high"] = m, lo, hi
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "n", *[f"{c}{s}" for c in columns
                                                   for s in ("", "_low", "_high")]])
