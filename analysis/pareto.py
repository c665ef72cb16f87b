"""The Pareto frontier across strategies and parameter values.

A row is dominated when another row is at least as good on every objective and strictly
better on one (higher recovery, lower churn, lower contact cost by default). Only the
non-dominated rows are worth choosing between; which one is a business decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import NDArray

from analysis.factors import short_name
from analysis.folder import sweep_factors
from analysis.plotting import kpi_axis, new_figure, strategy_colours, style_axes
from analysis.tradeoff import format_factor_value, tradeoff_points

MAXIMISE: tuple[str, ...] = ("recovery_rate",)
MINIMISE: tuple[str, ...] = ("churn_rate", "contact_cost")


def pareto_mask(better: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which rows of ``better`` (n x k, larger is better in every column) are not dominated.

    Rows with a non-finite value are never on the frontier and dominate nothing. Equal
    rows do not dominate each other, so duplicates of a frontier point all stay.
    """
    v = np.asarray(better, dtype=float)
    if v.ndim != 2:
        raise ValueError("expected a 2-d array (rows x objectives)")
    ok = np.isfinite(v).all(axis=1)
    mask = ok.copy()
    w = v[ok]
    for i in np.flatnonzero(ok):
        ge = (w >= v[i]).all(axis=1)
        gt = (w > v[i]).any(axis=1)
        if (ge & gt).any():
            mask[i] = False
    return mask


def pareto_front(table: pd.DataFrame, maximise: Sequence[str] = MAXIMISE,
                 minimise: Sequence[str] = MINIMISE) -> pd.DataFrame:
    """The non-dominated rows of ``table`` (same columns, index and order)."""
    return table[pareto_flags(table, maximise, minimise)]


def pareto_flags(table: pd.DataFrame, maximise: Sequence[str] = MAXIMISE,
                 minimise: Sequence[str] = MINIMISE) -> NDArray[np.bool_]:
    """For each row of ``table``, whether it is on the frontier."""
    missing = [c for c in (*maximise, *minimise) if c not in table.columns]
    if missing:
        raise KeyError(f"objective column(s) not in the table: {missing}")
    if not maximise and not minimise:
        raise ValueError("no objective given")
    better = np.column_stack([table[c].to_numpy(dtype=float) for c in maximise]
                             + [-table[c].to_numpy(dtype=float) for c in minimise])
    return pareto_mask(better)


def _point_label(row: pd.Series, factors: Sequence[str]) -> str:
    if not factors:
        return str(row["strategy"])
    return ", ".join(format_factor_value(row[f]) for f in factors)


def pareto_figure(kpis: pd.DataFrame, currency: str = "money", confidence: float = 0.95,
                  title: str | None = None, labels: Mapping[str, str] | None = None) -> Figure:
    """The frontier of (recovery up, churn down, cost down) over strategy x factor values.

    Means over replications; frontier points solid and labelled, dominated ones faded.
    Each panel is a projection of the three objectives; the dashed line is the frontier
    of that panel's two objectives alone.
    """
    factors = sweep_factors(kpis)
    pts = tradeoff_points(kpis, factors, (*MAXIMISE, *MINIMISE), confidence)
    pts = pts.dropna(subset=[*MAXIMISE, *MINIMISE]).reset_index(drop=True)
    on = pareto_flags(pts)
    colours = strategy_colours(pts["strategy"])
    fig = new_figure(12, 5.2)
    axes = fig.subplots(1, 2)
    for ax, x in zip(axes, MINIMISE, strict=True):
        for strategy, rows in pts.groupby("strategy", sort=False):
            sel = on[rows.index]
            c = colours[str(strategy)]
            ax.scatter(rows[x][~sel], rows["recovery_rate"][~sel], color=c, alpha=0.22,
                       s=30, edgecolors="none")
            ax.scatter(rows[x][sel], rows["recovery_rate"][sel], color=c, s=55,
                       edgecolors="black", linewidths=0.7, label=str(strategy), zorder=3)
            if sel.sum() <= 15:
                for i, (_, r) in enumerate(rows[sel].iterrows()):
                    ax.annotate(_point_label(r, factors), (r[x], r["recovery_rate"]),
                                textcoords="offset points",
                                xytext=((6, 5), (6, -11))[i % 2], fontsize=7,
                                bbox={"boxstyle": "round,pad=0.1", "fc": "white",
                                      "ec": "none", "alpha": 0.7})
        # The two-objective frontier of this panel as a staircase.
        two = pts[pareto_flags(pts, MAXIMISE, (x,))].sort_values(x)
        ax.step(two[x], two["recovery_rate"], where="post", linestyle="--", color="0.35",
                linewidth=1, label="frontier of this panel" if x == MINIMISE[0] else None)
        ax.margins(0.1)
        kpi_axis(ax, x, "x", currency)
        kpi_axis(ax, "recovery_rate", "y", currency)
        style_axes(ax)
    axes[0].set_title("Recovery against churn")
    axes[1].set_title("Recovery against contact cost")
    names = [short_name((labels or {}).get(f, f)) for f in factors]
    what = f"strategies x {', '.join(names)}" if factors else "strategies"
    fig.suptitle(title or f"Pareto frontier over {what}: max recovery, min churn, min cost\n"
                          f"(solid: not dominated on all three; faded: dominated; "
                          f"{int(on.sum())} of {len(pts)} on the frontier"
                          + (f"; labels: {', '.join(names)}" if names else "") + ")",
                 fontsize=12)
    # One legend entry per strategy, even if a strategy has no frontier point.
    handles = [axes[0].scatter([], [], color=colours[s], s=55, edgecolors="black",
                               linewidths=0.7) for s in colours]
    entries = list(colours)
    line = [h for h, lab in zip(*axes[0].get_legend_handles_labels(), strict=True)
            if lab == "frontier of this panel"]
    fig.legend(handles + line, entries + ["two-objective frontier of the panel"][: len(line)],
               loc="outside lower center", ncols=min(len(entries) + 1, 5), frameon=False)
    return fig
