"""Paired comparisons of strategy arms run on common random numbers.

Every arm of a replication runs on the same seed, so the same borrowers meet the same
luck. The difference of a KPI between two arms is therefore estimated from the
per-replication differences (a paired t-interval), whose variance is
``var(A) + var(B) - 2 cov(A, B)``: the shared luck cancels. The unpaired (Welch)
interval of the same difference ignores that covariance; both are reported so the
gain from pairing can be quoted.

The interval of a KPI's mean (``kpi_interval``) is the Student t-interval truncated
to the range the KPI can take (``simulator.kpis.kpi_range``: shares in [0, 1], counts
and amounts >= 0): a rate's interval never reaches below 0 % or above 100 %. The
truncation removes only values the KPI cannot take, so the interval covers the true
mean exactly as often as the t-interval does (``benchmarks/interval_coverage.py``
measures it against a logit/log-scale interval: about the same coverage, much narrower
at 2 or 3 replications). A paired difference is unbounded and keeps the plain
t-interval.

Pure functions of a tidy KPI frame (one row per strategy and replication, as in
``kpis.csv``); nothing here runs the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from simulator.kpis import KpiRange, kpi_range

# scipy.stats is imported inside the functions that use it: importing it takes about a
# second, which every command (a --help, a file refused at once) would otherwise pay.

#: Identifier columns of a KPI frame; every other numeric column is a KPI.
ID_COLUMNS: tuple[str, ...] = ("strategy", "replication", "seed")

#: Below this many replications intervals are rough (a t quantile of 2.78 at 5, 12.7 at
#: 2, on a standard deviation estimated from so few values): tables and reports say so.
ROUGH_BELOW = 5

#: Columns of ``comparison.csv``, in order.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "strategy", "kpi", "mean", "ci_low", "ci_high", "diff", "diff_low", "diff_high",
    "unpaired_low", "unpaired_high", "distinguishable",
)


def t_interval(x: Sequence[float] | np.ndarray,
               confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of the finite values of ``x`` and its t-interval ``(mean, low, high)``.

    Fewer than two finite values give a NaN interval; a constant sample gives a
    zero-width one.
    """
    from scipy import stats
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(a.mean())
    if a.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, a.size - 1) * a.std(ddof=1)
                 / math.sqrt(a.size))
    return mean, mean - half, mean + half


def bounded_interval(x: Sequence[float] | np.ndarray, bounds: KpiRange | None,
                     confidence: float = 0.95) -> tuple[float, float, float]:
    """``t_interval`` of ``x`` with both ends moved inside ``bounds`` (None: unbounded).

    All replications equal (every one 0, say) give a zero-width interval at that value:
    the replications show no variation to estimate from, which is not certainty.
    """
    mean, low, high = t_interval(x, confidence)
    if bounds is None:
        return mean, low, high
    return bounds.clip(mean), bounds.clip(low), bounds.clip(high)


def kpi_interval(x: Sequence[float] | np.ndarray, kpi: str,
                 confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of a KPI over replications and its interval, inside the KPI's range.

    ``kpi`` names the KPI (``simulator.kpis.kpi_range``); a column that is not a KPI
    gets the plain t-interval.
    """
    return bounded_interval(x, kpi_range(kpi), confidence)


def rough_note(replications: int) -> str:
    """A sentence saying the intervals are rough, or '' from ``ROUGH_BELOW`` replications."""
    from scipy import stats
    if replications < 2:
        return "One replication: no interval."
    if replications >= ROUGH_BELOW:
        return ""
    return (f"Only {replications} replications: the intervals are rough (the t quantile "
            f"is {stats.t.ppf(0.975, replications - 1):.1f} and the spread is estimated "
            f"from {replications} values); run at least {ROUGH_BELOW} to read them.")


def paired_interval(baseline: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray,
                    confidence: float = 0.95) -> tuple[float, float, float]:
    """``other - baseline`` from matched replications: mean difference and its t-interval.

    Replications where either value is not finite are left out of the pair.
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(other, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length ({a.size} and {b.size})")
    keep = np.isfinite(a) & np.isfinite(b)
    return t_interval(b[keep] - a[keep], confidence)


def welch_interval(baseline: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray,
                   confidence: float = 0.95) -> tuple[float, float, float]:
    """``mean(other) - mean(baseline)`` with the unpaired Welch t-interval.

    This is the interval one would get from independent seeds per arm; it ignores the
    covariance that common random numbers create.
    """
    from scipy import stats
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(other, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan, math.nan
    diff = float(b.mean() - a.mean())
    if a.size < 2 or b.size < 2:
        return diff, math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return diff, diff, diff
    # Welch-Satterthwaite degrees of freedom.
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    return diff, diff - half, diff + half


def kpi_columns(kpis: pd.DataFrame) -> list[str]:
    """The KPI columns of a KPI frame, in their order: numeric columns that are not ids."""
    return [c for c in kpis.columns
            if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(kpis[c])
            and not pd.api.types.is_bool_dtype(kpis[c])]


def _aligned(kpis: pd.DataFrame, strategies: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Each strategy's rows indexed by replication, checked to share replications and seeds."""
    by: dict[str, pd.DataFrame] = {}
    for s in strategies:
        rows = kpis[kpis["strategy"] == s]
        if rows.empty:
            raise ValueError(f"no rows for strategy '{s}'")
        if rows["replication"].duplicated().any():
            raise ValueError(f"strategy '{s}' has a replication more than once")
        by[s] = rows.set_index("replication").sort_index()
    base = by[strategies[0]]
    for s in strategies[1:]:
        if not by[s].index.equals(base.index):
            raise ValueError(f"strategies '{strategies[0]}' and '{s}' were not run on the "
                             "same replications, so they cannot be paired")
        if "seed" in base.columns and not by[s]["seed"].equals(base["seed"]):
            raise ValueError(f"strategies '{strategies[0]}' and '{s}' were not run on the "
                             "same seeds, so they cannot be paired")
    return by


def compare_strategies(kpis: pd.DataFrame, strategies: Sequence[str] | None = None,
                       confidence: float = 0.95) -> pd.DataFrame:
    """Per strategy and KPI: mean with its interval, and the difference to the baseline.

    The mean's interval is ``kpi_interval`` (inside the KPI's range); a difference's is
    the plain paired t-interval (a difference can take either sign).

    The baseline is the first of ``strategies`` (default: the first strategy in
    ``kpis``). ``diff`` is ``strategy - baseline`` with its paired interval
    (``diff_low``, ``diff_high``) and the unpaired Welch interval (``unpaired_low``,
    ``unpaired_high``); ``distinguishable`` is true when the paired interval excludes
    zero. Baseline rows have ``diff = 0``, NaN intervals and ``distinguishable`` false.
    Rows come strategy-major, KPIs in column order: the columns of
    ``COMPARISON_COLUMNS``.
    """
    for col in ("strategy", "replication"):
        if col not in kpis.columns:
            raise ValueError(f"the KPI frame has no '{col}' column")
    names = list(strategies) if strategies is not None else list(dict.fromkeys(kpis["strategy"]))
    if not names:
        raise ValueError("no strategies to compare")
    if len(set(names)) != len(names):
        raise ValueError("a strategy is named twice")
    by = _aligned(kpis, names)
    base = by[names[0]]
    rows = []
    for s in names:
        cur = by[s]
        for kpi in kpi_columns(kpis):
            x = cur[kpi].to_numpy(dtype=float)
            mean, low, high = kpi_interval(x, kpi, confidence)
            if s == names[0]:
                diff, dlow, dhigh, ulow, uhigh = 0.0, math.nan, math.nan, math.nan, math.nan
            else:
                x0 = base[kpi].to_numpy(dtype=float)
                diff, dlow, dhigh = paired_interval(x0, x, confidence)
                _, ulow, uhigh = welch_interval(x0, x, confidence)
            rows.append({
                "strategy": s, "kpi": kpi, "mean": mean, "ci_low": low, "ci_high": high,
                "diff": diff, "diff_low": dlow, "diff_high": dhigh,
                "unpaired_low": ulow, "unpaired_high": uhigh,
                "distinguishable": bool(dlow > 0.0 or dhigh < 0.0),
            })
    out = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    out["distinguishable"] = out["distinguishable"].astype(bool)
    return out


def pairing_gain(comparison: pd.DataFrame, kpi: str) -> pd.DataFrame:
    """How much narrower pairing makes the interval of each difference for one KPI.

    Returns one row per non-baseline strategy: ``paired_half_width``,
    ``unpaired_half_width`` and ``ratio`` (unpaired / paired; above 1 when pairing
    helps).
    """
    rows = comparison[(comparison["kpi"] == kpi) & comparison["diff_low"].notna()]
    paired = (rows["diff_high"] - rows["diff_low"]) / 2
    unpaired = (rows["unpaired_high"] - rows["unpaired_low"]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = unpaired.to_numpy(dtype=float) / paired.to_numpy(dtype=float)
    return pd.DataFrame({
        "strategy": rows["strategy"].to_numpy(),
        "paired_half_width": paired.to_numpy(dtype=float),
        "unpaired_half_width": unpaired.to_numpy(dtype=float),
        "ratio": ratio,
    })
