"""Means with t-intervals over replications, per group of a tidy KPI frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from simulator.experiments.compare import t_interval


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of its Student-t interval
    (``simulator.experiments.compare.t_interval``)."""
    return t_interval(np.asarray(values, dtype=float), confidence)


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
