"""Figures and the report section of a robustness folder (``contactsim robust``).

Three figures: the probability that each strategy is best, its regret with intervals,
and a map over the two most influential parameters of which strategy wins each draw.
The section opens with the plain-language headline ("A is best in 71 % (64-78 %) of
plausible worlds; it loses most where ...") and holds the ranking, pairwise,
sensitivity and PRIM tables as written.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from analysis.plotting import (
    kpi_label,
    new_figure,
    percent_axis,
    strategy_colours,
    style_axes,
)
from simulator.experiments.robust import headline


def _ordered(rank: pd.DataFrame) -> pd.DataFrame:
    return rank.sort_values("rank", kind="stable").reset_index(drop=True)


def probability_best_figure(rank: pd.DataFrame) -> Figure:
    """Horizontal bars: P(best) per strategy with its 95 % interval, best on top."""
    r = _ordered(rank)
    colours = strategy_colours(r["strategy"])
    fig = new_figure(7.0, 0.6 * len(r) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(r))[::-1]
    p = r["p_best"].to_numpy(dtype=float)
    err = np.vstack([p - r["p_best_low"].to_numpy(dtype=float),
                     r["p_best_high"].to_numpy(dtype=float) - p])
    ax.barh(y, p, color=[colours[s] for s in r["strategy"]], alpha=0.85)
    ax.errorbar(p, y, xerr=np.clip(err, 0, None), fmt="none", ecolor="0.2", capsize=4)
    for yi, pi in zip(y, p, strict=True):
        ax.text(min(pi + 0.02, 0.9), yi, f"{100 * pi:.0f} %", va="center", fontsize=9)
    ax.set_yticks(y, [str(s) for s in r["strategy"]])
    ax.set_xlim(0, 1)
    percent_axis(ax, "x")
    ax.set_xlabel("probability of being best (share of plausible worlds)")
    style_axes(ax)
    return fig


def regret_figure(rank: pd.DataFrame, kpi: str, currency: str = "money") -> Figure:
    """Expected regret per strategy with its 95 % interval; p95 and worst case as marks."""
    r = _ordered(rank)
    colours = strategy_colours(r["strategy"])
    fig = new_figure(7.0, 0.6 * len(r) + 1.6)
    ax = fig.add_subplot()
    y = np.arange(len(r))[::-1]
    m = r["expected_regret"].to_numpy(dtype=float)
    err = np.vstack([m - r["expected_regret_low"].to_numpy(dtype=float),
                     r["expected_regret_high"].to_numpy(dtype=float) - m])
    ax.barh(y, m, color=[colours[s] for s in r["strategy"]], alpha=0.85,
            label="expected regret (95 % CI)")
    ax.errorbar(m, y, xerr=np.clip(err, 0, None), fmt="none", ecolor="0.2", capsize=4)
    ax.scatter(r["p95_regret"], y, marker="|", s=250, color="0.25", label="95th percentile")
    ax.scatter(r["worst_regret"], y, marker="x", s=40, color="0.25", label="worst case")
    ax.set_yticks(y, [str(s) for s in r["strategy"]])
    ax.set_xlim(left=0)
    ax.set_xlabel(f"regret: {kpi_label(kpi, currency)} lost against the best strategy")
    ax.legend(loc="lower right", fontsize=8)
    style_axes(ax)
    return fig


def _axis_values(results: pd.DataFrame, path: str) -> tuple[np.ndarray, list[str] | None]:
    col = results[path]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float), None
    cats = sorted(map(str, col.unique()))
    return np.array([cats.index(str(v)) for v in col], dtype=float), cats


def winners(results: pd.DataFrame, kpi: str, direction: str) -> pd.DataFrame:
    """One row per draw: its parameters and the strategy that won it on the objective."""
    wide = results.pivot(index="draw", columns="strategy", values=kpi)
    best = wide.idxmax(axis=1) if direction == "max" else wide.idxmin(axis=1)
    first = results.drop_duplicates("draw").set_index("draw")
    out = first.loc[wide.index].copy()
    out["winner"] = best
    return out.reset_index()


def winner_map_figure(results: pd.DataFrame, parameters: Sequence[str],
                      labels: dict[str, str], kpi: str, direction: str,
                      where: pd.DataFrame | None = None,
                      order: Sequence[str] | None = None) -> Figure:
    """Each draw at its values of the two most influential parameters, coloured by the
    strategy that won it; the first PRIM box of the runner-up's wins outlined. ``order``
    (the ranking's) fixes the colours, as in the other figures."""
    w = winners(results, kpi, direction)
    strategies = list(order) if order is not None else list(
        dict.fromkeys(results["strategy"]))
    colours = strategy_colours(strategies)
    fig = new_figure(7.0, 5.0)
    ax = fig.add_subplot()
    px = parameters[0]
    x, xcats = _axis_values(w, px)
    if len(parameters) > 1:
        py = parameters[1]
        y, ycats = _axis_values(w, py)
    else:  # one parameter: the draws along it, jittered apart by winner
        py, ycats = "", None
        y = np.array([strategies.index(s) for s in w["winner"]], dtype=float)
    for s in strategies:
        mask = (w["winner"] == s).to_numpy()
        if mask.any():
            ax.scatter(x[mask], y[mask], s=22, color=colours[s], label=f"{s} wins",
                       edgecolor="white", linewidth=0.4)
    if where is not None and len(where) and xcats is None:
        box = where[where["box"] == 1]
        lim = {r.parameter: (float(r.low), float(r.high)) for r in box.itertuples()
               if r.restricted != "values"}
        if px in lim or py in lim:
            x0, x1 = lim.get(px, (float(np.min(x)), float(np.max(x))))
            if py and ycats is None:
                y0, y1 = lim.get(py, (float(np.min(y)), float(np.max(y))))
            else:
                y0, y1 = float(np.min(y)) - 0.4, float(np.max(y)) + 0.4
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, linestyle="--",
                                   edgecolor="0.2", linewidth=1.2,
                                   label=f"where {box['winner'].iloc[0]} wins (PRIM box 1)"))
    ax.set_xlabel(labels.get(px, px))
    if xcats is not None:
        ax.set_xticks(range(len(xcats)), xcats)
    if py:
        ax.set_ylabel(labels.get(py, py))
        if ycats is not None:
            ax.set_yticks(range(len(ycats)), ycats)
    else:
        ax.set_yticks(range(len(strategies)), [f"{s} wins" for s in strategies])
    ax.legend(fontsize=8, loc="best")
    style_axes(ax)
    return fig


def influential(sensitivity: pd.DataFrame, paths: Sequence[str], count: int = 2) -> list[str]:
    """The ``count`` parameters of highest influence (ST or delta), else the first ones."""
    ranked = sensitivity.dropna(subset=["influence"]).sort_values(
        "influence", ascending=False, kind="stable")["parameter"].astype(str).tolist()
    rest = [p for p in paths if p not in ranked]
    return (ranked + rest)[:count]


# --------------------------------------------------------------------------- html


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if math.isfinite(x) else "-"


def _num(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.{digits}g}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="kpi"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def robust_tables_html(rank: pd.DataFrame, pairs: pd.DataFrame, sens: pd.DataFrame,
                       where: pd.DataFrame, objective: str) -> str:
    """The headline and the four answer tables of a robustness folder, as HTML."""
    r = _ordered(rank)
    parts = [f'<p class="headline"><b>{html.escape(headline(r, where))}.</b></p>']
    parts.append("<h3>Ranking</h3>" + _table(
        ["strategy", "P(best)", "95 % CI", "expected regret", "95 % CI", "p95 regret",
         "worst regret"],
        [[str(x.strategy), _pct(x.p_best), f"{_pct(x.p_best_low)}-{_pct(x.p_best_high)}",
          _num(x.expected_regret),
          f"{_num(x.expected_regret_low)}-{_num(x.expected_regret_high)}",
          _num(x.p95_regret), _num(x.worst_regret)] for x in r.itertuples()]))
    parts.append(f'<p class="note">Objective {html.escape(objective)} over '
                 f"{int(r['draws'].iloc[0])} draws; intervals: 95 % bootstrap over draws; "
                 "regret: the objective lost against the best strategy of each draw; ties "
                 "share being best.</p>")
    if len(pairs):
        parts.append("<h3>Pairwise</h3>" + _table(
            ["strategy", "beats", "P", "95 % CI", "mean difference", "95 % CI"],
            [[str(x.strategy), str(x.other), _pct(x.p_beats),
              f"{_pct(x.p_beats_low)}-{_pct(x.p_beats_high)}", _num(x.mean_difference),
              f"{_num(x.mean_difference_low)}-{_num(x.mean_difference_high)}"]
             for x in pairs.itertuples()]))
    if len(sens):
        method = str(sens["method"].iloc[0])
        what = ("Sobol indices (SALib; first-order S1 and total ST, Saltelli design)"
                if method == "sobol" else
                "delta moment-independent measure (SALib; with its first-order estimate S1)")
        parts.append("<h3>What decides the ranking</h3>" + _table(
            ["parameter", "S1", "95 % CI", "ST" if method == "sobol" else "delta", "95 % CI"],
            [[str(x.label), _num(x.S1), f"{_num(x.S1_low)}-{_num(x.S1_high)}",
              _num(x.ST if method == "sobol" else x.delta),
              (f"{_num(x.ST_low)}-{_num(x.ST_high)}" if method == "sobol"
               else f"{_num(x.delta_low)}-{_num(x.delta_high)}")]
             for x in sens.itertuples()]))
        parts.append(f'<p class="note">{html.escape(what)} of the difference '
                     f"{html.escape(str(sens['difference_of'].iloc[0]))} per draw.</p>")
    if len(where):
        parts.append("<h3>Where the runner-up wins (PRIM)</h3>" + _table(
            ["box", "parameter", "low", "high", "coverage", "density", "draws in box"],
            [[str(x.box), str(x.label), str(x.low) if x.restricted == "values"
              else _num(float(x.low)), "" if x.restricted == "values" else _num(float(x.high)),
              _pct(x.coverage), _pct(x.density), str(x.draws_in_box)]
             for x in where.itertuples()]))
        parts.append('<p class="note">Coverage: share of the runner-up\'s wins inside the '
                     "box; density: share of the draws inside the box that the runner-up "
                     "wins.</p>")
    return "\n".join(parts)
