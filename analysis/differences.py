"""Paired differences against the first strategy, from ``contactsim compare``.

Reads comparison.csv (``strategy, kpi, mean, ci_low, ci_high, diff, diff_low,
diff_high``); draws each KPI's difference with its interval, intervals that contain
zero in grey (not distinguishable from no difference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.plotting import SHARE_KPIS, kpi_label, money_axis, new_figure, style_axes

DIFF_KPIS: tuple[str, ...] = ("recovery_rate", "churn_rate", "contact_cost", "net_value")
DIFF_COLUMNS: tuple[str, ...] = ("strategy", "kpi", "diff", "diff_low", "diff_high")


def baseline_of(comparison: pd.DataFrame) -> str:
    """The reference strategy: the first in the table."""
    return str(comparison["strategy"].iloc[0])


def has_differences(comparison: pd.DataFrame | None) -> bool:
    """Whether the table carries paired differences to draw."""
    return comparison is not None and all(c in comparison.columns for c in DIFF_COLUMNS)


def differences_figure(comparison: pd.DataFrame, kpis: Sequence[str] = DIFF_KPIS,
                       currency: str = "money") -> Figure:
    """One panel per KPI: each strategy's paired difference against the baseline."""
    base = baseline_of(comparison)
    c = comparison[(comparison["strategy"].astype(str) != base)
                   & comparison["kpi"].isin(list(kpis))]
    shown = [k for k in kpis if k in set(c["kpi"])]
    strategies = list(dict.fromkeys(c["strategy"].astype(str)))
    ncols = 2 if len(shown) > 1 else 1
    nrows = max(math.ceil(len(shown) / ncols), 1)
    fig = new_figure(6 * ncols, nrows * (1.3 + 0.45 * max(len(strategies), 1)) + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, kpi in zip(axes, shown, strict=False):
        rows = c[c["kpi"] == kpi].set_index(c[c["kpi"] == kpi]["strategy"].astype(str))
        rows = rows.reindex(strategies)
        scale = 100.0 if kpi in SHARE_KPIS else 1.0
        y = np.arange(len(strategies))[::-1]
        for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
            lo, hi, d = (float(r["diff_low"]) * scale, float(r["diff_high"]) * scale,
                         float(r["diff"]) * scale)
            zero_inside = not (lo > 0 or hi < 0)
            colour = "0.6" if zero_inside else "#1f77b4"
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [yi, yi], color=colour, linewidth=2.5)
            ax.plot([d], [yi], "o", color=colour, markersize=6)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(y, strategies)
        ax.set_ylim(-0.6, len(strategies) - 0.4)
        unit = "percentage points" if kpi in SHARE_KPIS else currency
        ax.set_xlabel(f"difference ({unit})")
        if kpi not in SHARE_KPIS:
            money_axis(ax, "x")
        ax.set_title(kpi_label(kpi, currency).split(" (")[0], fontsize=10)
        style_axes(ax)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    fig.suptitle(f"Paired differences against {base} (95 % CI; grey: the interval "
                 "contains zero)", fontsize=12)
    return fig
