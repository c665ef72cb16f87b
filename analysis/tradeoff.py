"""Trade-off curves: recovery rate against churn rate and against contact cost.

On a sweep, each curve follows one strategy as a factor (its intensity parameter, the
agent count, ...) varies, other factors held at each of their values; on a run or a
comparison, each strategy is one point. Points are means over replications with 95 %
t-intervals drawn as crosses.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from analysis.factors import short_name
from analysis.folder import sweep_factors
from analysis.plotting import (
    kpi_axis,
    new_figure,
    strategy_colours,
    style_axes,
)
from analysis.stats import summarise_by

#: The KPIs a trade-off weighs: recovery (y) against each of the others (x).
TRADEOFF_KPIS: tuple[str, ...] = ("recovery_rate", "churn_rate", "contact_cost")
#: Summarised alongside, for tables and the Pareto frontier.
POINT_KPIS: tuple[str, ...] = (*TRADEOFF_KPIS, "net_value")


def order_values(values: pd.Series) -> pd.Series:
    """A sort key for a factor's values: numeric when they all are, else as they come."""
    num = pd.to_numeric(values, errors="coerce")
    if (num.notna() | values.isna()).all():
        return num  # missing values (a factor that does not apply) sort last
    return pd.Series(pd.factorize(values)[0], index=values.index)


def tradeoff_points(kpis: pd.DataFrame, factors: Sequence[str] | None = None,
                    columns: Sequence[str] = POINT_KPIS,
                    confidence: float = 0.95) -> pd.DataFrame:
    """Mean and interval of each KPI per strategy and factor values.

    ``factors`` defaults to the sweep factors of ``kpis`` (the columns before
    ``strategy``; none for a run). Rows keep the strategies' order of appearance and are
    sorted by factor value within a strategy.
    """
    factors = sweep_factors(kpis) if factors is None else list(factors)
    cols = [c for c in columns if c in kpis.columns]
    pts = summarise_by(kpis, ["strategy", *factors], cols, confidence)
    order = {s: i for i, s in enumerate(dict.fromkeys(kpis["strategy"]))}
    keys = pd.DataFrame({"_s": pts["strategy"].map(order)})
    for i, f in enumerate(factors):
        keys[f"_f{i}"] = order_values(pts[f])
    idx = keys.sort_values(list(keys.columns), kind="stable").index
    return pts.loc[idx].reset_index(drop=True)


def format_factor_value(value: object) -> str:
    """A factor value for a label: numbers compactly, anything else as text."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "–"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):g}"
    return str(value)


def _errors(pts: pd.DataFrame, col: str) -> np.ndarray | None:
    """Error bar lengths below and above (the interval is already inside the KPI's range:
    ``analysis.stats.summarise_by``)."""
    lo = (pts[col] - pts[f"{col}_low"]).to_numpy(dtype=float)
    hi = (pts[f"{col}_high"] - pts[col]).to_numpy(dtype=float)
    if not np.isfinite(lo).any():
        return None
    return np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)])


def _series(pts: pd.DataFrame, factor: str | None, factors: Sequence[str],
            labels: Mapping[str, str]) -> list[tuple[str, str, pd.DataFrame]]:
    """(label, strategy, rows) per line: one strategy, other factors fixed."""
    others = [f for f in factors if f != factor]
    out = []
    for key, rows in pts.groupby(["strategy", *others], sort=False, dropna=False):
        keys = key if isinstance(key, tuple) else (key,)
        label = str(keys[0]) + "".join(
            f", {short_name(labels.get(f, f))} = {format_factor_value(v)}"
            for f, v in zip(others, keys[1:], strict=True) if not _missing(v))
        if factor is not None:
            rows = rows.iloc[np.argsort(order_values(rows[factor]).to_numpy(), kind="stable")]
        out.append((label, str(keys[0]), rows))
    return out


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and bool(np.isnan(value)))


#: Offsets (points) of successive value labels along a line, so neighbours do not overlap.
_LABEL_OFFSETS: tuple[tuple[int, int], ...] = ((6, 5), (6, -11), (-14, 5), (-14, -11))


def draw_tradeoff(ax: Axes, pts: pd.DataFrame, x: str, y: str, factor: str | None,
                  factors: Sequence[str], currency: str,
                  labels: Mapping[str, str] | None = None) -> None:
    """One panel: ``y`` against ``x``, a line per series along ``factor`` (or points)."""
    series = _series(pts, factor, factors, labels or {})
    by_strategy = strategy_colours(pts["strategy"])
    # Several series per strategy (other factors) need their own colours.
    colours = (strategy_colours(label for label, _, _ in series)
               if len(series) > len(by_strategy) else
               {label: by_strategy[s] for label, s, _ in series})
    for label, _strategy, rows in series:
        colour = colours[label]
        ax.errorbar(rows[x], rows[y], xerr=_errors(rows, x), yerr=_errors(rows, y),
                    fmt="-o" if factor else "o", color=colour, ecolor=colour, elinewidth=1,
                    capsize=3, markersize=5, label=label, alpha=0.9)
        if factor is not None and len(rows) <= 10:
            for i, (_, r) in enumerate(rows[rows[factor].notna()].iterrows()):
                ax.annotate(format_factor_value(r[factor]), (r[x], r[y]),
                            textcoords="offset points", xytext=_LABEL_OFFSETS[i % 4],
                            fontsize=8, color=colour, fontweight="bold",
                            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                                  "alpha": 0.7})
    ax.margins(0.08)
    kpi_axis(ax, x, "x", currency)
    kpi_axis(ax, y, "y", currency)
    style_axes(ax)


def _only(label: str) -> str:
    """`` (<strategy> only)`` for a strategy factor's label, else ''."""
    head, sep, _ = label.partition(": ")
    return f" ({head} only)" if sep and " " not in head else ""


def legend_columns(labels: Sequence[str], width_inches: float, most: int = 4) -> int:
    """Columns of a legend under a figure ``width_inches`` wide, so that it fits."""
    if not labels:
        return 1
    # About 0.075 inch per character at the legend's font size, plus the marker.
    entry = 0.075 * max(len(label) for label in labels) + 0.6
    return max(1, min(len(labels), most, int(width_inches * 0.95 // entry)))


def draw_tradeoff_scatter(ax: Axes, pts: pd.DataFrame, x: str, y: str, factor: str,
                          currency: str, norm: Normalize) -> Any:
    """One panel of a sampled design: a point per cell, its colour the factor's value and
    its marker the strategy; no lines (neighbouring points differ in every factor)."""
    markers = dict(zip(dict.fromkeys(pts["strategy"]), "osD^vP*X", strict=False))
    mappable = None
    for strategy, rows in pts.groupby("strategy", sort=False):
        applies = rows[rows[factor].notna()]
        rows = applies if len(applies) else rows
        ax.errorbar(rows[x], rows[y], xerr=_errors(rows, x), yerr=_errors(rows, y), fmt="none",
                    ecolor="0.75", elinewidth=0.8, zorder=1)
        style: dict[str, Any] = {"marker": markers.get(str(strategy), "o"), "s": 40,
                                 "edgecolors": "black", "linewidths": 0.5,
                                 "label": str(strategy), "zorder": 2}
        if len(applies):
            mappable = ax.scatter(rows[x], rows[y], c=pd.to_numeric(
                rows[factor], errors="coerce").to_numpy(dtype=float), cmap="viridis",
                norm=norm, **style)
        else:  # the factor does not apply to this strategy (a strategy factor): grey
            ax.scatter(rows[x], rows[y], color="0.6", **style)
    ax.margins(0.08)
    kpi_axis(ax, x, "x", currency)
    kpi_axis(ax, y, "y", currency)
    style_axes(ax)
    return mappable


def tradeoff_figure(kpis: pd.DataFrame, factor: str | None = None, currency: str = "money",
                    confidence: float = 0.95, title: str | None = None,
                    max_series: int = 12, labels: Mapping[str, str] | None = None,
                    scatter: bool = False) -> Figure:
    """Recovery rate against churn rate (left) and contact cost (right).

    With ``factor`` (a sweep factor), each strategy's points are joined in factor order
    and labelled with the factor's value, one line per strategy and combination of the
    other factors (averaged over the other factors when that makes more than
    ``max_series`` lines); without, each strategy is one point. With ``scatter`` (a
    Latin-hypercube sweep, whose cells share no grid) every cell is a point coloured by
    the factor's value, never joined. ``labels`` gives readable factor names
    (``analysis.factors.factor_label``).
    """
    labels = dict(labels or {})
    factors = sweep_factors(kpis)
    if factor is not None and factor not in factors:
        raise ValueError(f"{factor!r} is not a factor of this table (factors: {factors})")
    name = labels.get(factor, factor) if factor is not None else None
    others = [f for f in factors if f != factor]
    averaged = not scatter and bool(others) and (
        kpis.groupby(["strategy", *others], sort=False).ngroups > max_series)
    if averaged:
        # Too many lines to read: average over the other factors instead.
        factors = [factor] if factor is not None else []
    pts = tradeoff_points(kpis, factors, TRADEOFF_KPIS, confidence)
    reps = int(pts["n"].max()) if len(pts) else 0
    fig = new_figure(12, 5.6)
    axes = fig.subplots(1, 2)
    bars = (f"mean of {reps} replications, {confidence:.0%} interval bars" if reps > 1
            else "one replication, no interval")
    if scatter and factor is not None:
        values = pd.to_numeric(pts[factor], errors="coerce")
        norm = Normalize(float(values.min()), float(values.max()))
        mappable = None
        for ax, x in zip(axes, ("churn_rate", "contact_cost"), strict=True):
            mappable = draw_tradeoff_scatter(ax, pts, x, "recovery_rate", factor, currency,
                                             norm) or mappable
        if mappable is not None:
            fig.colorbar(mappable, ax=list(axes), label=name, shrink=0.9, pad=0.01)
        # Legend entries by marker alone: the colour is the factor's, not the strategy's.
        for ax in axes:
            for coll in ax.collections:
                coll.set_label("_" + str(coll.get_label()).lstrip("_"))
        markers = dict(zip(dict.fromkeys(pts["strategy"]), "osD^vP*X", strict=False))
        for strategy, marker in markers.items():
            axes[0].scatter([], [], marker=marker, s=40, color="white", edgecolors="black",
                            linewidths=0.8, label=str(strategy))
        what = (f"each point a sampled cell, coloured by {short_name(str(name))}"
                f"{_only(str(name))}")
    else:
        for ax, x in zip(axes, ("churn_rate", "contact_cost"), strict=True):
            draw_tradeoff(ax, pts, x, "recovery_rate", factor, factors, currency, labels)
        what = (f"as {short_name(str(name))} varies{_only(str(name))} (labels: its value)"
                if factor else "one point per strategy")
        if averaged:
            what += f", averaged over {', '.join(short_name(labels.get(o, o)) for o in others)}"
    axes[0].set_title("Recovery against churn", fontsize=11)
    axes[1].set_title("Recovery against contact cost", fontsize=11)
    fig.suptitle(title or f"Trade-off: {what}\n({bars})", fontsize=12)
    handles, legend_labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="outside lower center",
               ncols=legend_columns(legend_labels, 12.0),
               title="strategy" if scatter or not others or averaged
               else "strategy, other factors", frameon=False)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Draw the trade-off figure of a results folder into an image file."""
    import argparse
    from pathlib import Path

    from analysis.factors import factor_labels
    from analysis.folder import open_folder
    from analysis.plotting import save_figure
    from simulator.errors import UserError

    parser = argparse.ArgumentParser(
        prog="python -m analysis.tradeoff",
        description="Recovery against churn and contact cost, from a run, compare or sweep "
                    "folder.")
    parser.add_argument("folder", type=Path, help="results folder")
    parser.add_argument("--out", type=Path, required=True, help="image file (.png, .svg)")
    parser.add_argument("--factor", help="sweep factor along which to join the points "
                                         "(default: the first factor, if any)")
    parser.add_argument("--label", help="name to show for the factor (default: a readable "
                                        "name and its dotted path)")
    parser.add_argument("--title", help="figure title")
    args = parser.parse_args(argv)
    try:
        folder = open_folder(args.folder)
        kpis = folder.kpis
        factor = args.factor or (folder.factors[0] if folder.factors else None)
        if factor is not None and factor not in folder.factors:
            raise UserError(f"not a factor of this sweep (factors: {folder.factors})",
                            field=factor)
        labels = factor_labels(folder.factors, folder.scenario)
        if factor is not None and args.label:
            labels[factor] = args.label
        fig = tradeoff_figure(kpis, factor, folder.currency, title=args.title, labels=labels,
                              scatter=folder.design == "latin_hypercube")
        print(save_figure(fig, args.out, dpi=110))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
