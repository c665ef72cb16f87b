"""Means with t-intervals over replications, per group of a tidy KPI frame."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of its Student-t interval (NaN ends with fewer than 2 values).

    Non-finite values are ignored, as in ``simulator.runner.summarise``.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1)
                 / math.sqrt(x.size))
    return mean, mean - half, mean + half


def summarise_by(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str],
                 confidence: float = 0.95) -> pd.DataFrame:
    """One row per group of ``by`` (in order of first appearance) with, for each column
    ``c``, its mean ``c`` and interval ``c_low``, ``c_high``, and the group size ``n``."""
    rows = []
    for key, group in frame.groupby(list(by), sort=False, dropna=False):
        keys = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(by, keys, strict=True))
        row["n"] = len(group)
        for c in columns:
            m, lo, hi = mean_ci(group[c].to_numpy(dtype=float), confidence)
            row[c], row[f"{c}_low"], row[f"{c}_high"] = m, lo, hi
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "n", *[f"{c}{s}" for c in columns
                                                   for s in ("", "_low", "_high")]])
