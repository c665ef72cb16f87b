"""Figures and the report section of a calibration folder (``contactsim calibrate``).

Observed against fitted: the cure curve and the pre-due payment timing as curves, the
other targets (roll rates, contact rates, score bands) as paired points, each with its
95 % band (observed: the data's bootstrap standard error; fitted: the estimate re-run on
fresh seeds); and each estimate with its bootstrap interval inside its prior range.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.plotting import new_figure, percent_axis, style_axes

Z95 = 1.959963984540054
OBSERVED = "#333333"
FITTED = "#1f77b4"


def _rows(fit: pd.DataFrame, pattern: str) -> pd.DataFrame:
    keep = fit["target"].astype(str).str.fullmatch(pattern)
    out = fit[keep].copy()
    out["k"] = out["target"].astype(str).str.extract(r"(\d+)$")[0].astype(float)
    return out.sort_values("k")


def _band(ax: object, x: np.ndarray, y: np.ndarray, se: np.ndarray, colour: str,
          label: str, marker: str) -> None:
    low = np.clip(y - Z95 * np.nan_to_num(se), 0, 1)
    high = np.clip(y + Z95 * np.nan_to_num(se), 0, 1)
    ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)  # type: ignore[attr-defined]
    ax.plot(x, y, marker=marker, color=colour, label=label)  # type: ignore[attr-defined]


def curve_figure(fit: pd.DataFrame, which: str) -> Figure:
    """The cure curve (``which="cure"``: share of delinquent statements cured before k days
    past due) or the pre-due timing (``"timing"``: share paid at least k days before the
    due date, 0 being on time), observed and fitted with 95 % bands."""
    if which == "cure":
        rows = _rows(fit, r"cure_\d+")
        x = rows["k"].to_numpy(dtype=float)
        xlabel = "days past due"
        ylabel = "delinquent statements cured"
    else:
        rows = _rows(fit, r"paid_by_due_minus_\d+")
        on_time = fit[fit["target"] == "delinquency_rate"]
        if len(on_time):
            r = on_time.iloc[0]
            rows = pd.concat([rows, pd.DataFrame([{
                "target": "on time", "observed": 1 - float(r["observed"]),
                "simulated": 1 - float(r["simulated"]), "observed_se": r["observed_se"],
                "simulated_se": r["simulated_se"], "held_out": r["held_out"], "k": 0.0}])])
        rows = rows.sort_values("k", ascending=False)
        x = -rows["k"].to_numpy(dtype=float)
        xlabel = "days relative to the due date"
        ylabel = "statements paid in full"
    if rows.empty:
        raise ValueError(f"no {which} targets in fit.csv")
    fig = new_figure(7.0, 4.0)
    ax = fig.add_subplot()
    _band(ax, x, rows["observed"].to_numpy(dtype=float),
          rows["observed_se"].to_numpy(dtype=float), OBSERVED, "observed (95 % band)", "o")
    _band(ax, x, rows["simulated"].to_numpy(dtype=float),
          rows["simulated_se"].to_numpy(dtype=float), FITTED,
          "calibrated model, fresh seeds (95 % band)", "s")
    for xi, held in zip(x, rows["held_out"].astype(bool), strict=True):
        if held:
            ax.axvline(xi, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    percent_axis(ax, "y")
    ax.legend(loc="lower right", fontsize=8)
    style_axes(ax)
    return fig


def other_targets_figure(fit: pd.DataFrame) -> Figure:
    """Every target that is not on a curve: observed and fitted with 95 % intervals,
    held-out targets marked."""
    curves = fit["target"].astype(str).str.fullmatch(r"(cure_\d+|paid_by_due_minus_\d+)")
    rows = fit[~curves].reset_index(drop=True)
    if rows.empty:
        raise ValueError("no other targets in fit.csv")
    fig = new_figure(7.0, 0.42 * len(rows) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    for offset, col, se_col, colour, label in (
            (0.15, "observed", "observed_se", OBSERVED, "observed"),
            (-0.15, "simulated", "simulated_se", FITTED, "calibrated model, fresh seeds")):
        v = rows[col].to_numpy(dtype=float)
        half = Z95 * np.nan_to_num(rows[se_col].to_numpy(dtype=float))
        err = np.vstack([v - np.clip(v - half, 0, 1), np.clip(v + half, 0, 1) - v])
        ax.errorbar(v, y + offset, xerr=err, fmt="o", color=colour, capsize=3, label=label)
    labels = [f"{t}{' (held out)' if h else ''}"
              for t, h in zip(rows["target"], rows["held_out"].astype(bool), strict=True)]
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    percent_axis(ax, "x")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8,
              frameon=False)
    style_axes(ax)
    return fig


def estimates_figure(estimates: pd.DataFrame, log_scale: dict[str, bool]) -> Figure:
    """Each estimate with its bootstrap interval, on its prior range scaled to [0, 1]
    (a log range on the log scale); red: flagged not identified."""
    # Wide enough for the dotted paths on the left and the whole range on the right.
    fig = new_figure(9.0, 0.5 * len(estimates) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(estimates))[::-1]

    def unit(value: float, r: pd.Series) -> float:
        lo, hi = float(r["prior_low"]), float(r["prior_high"])
        if not math.isfinite(value) or hi <= lo:
            return math.nan
        if log_scale.get(str(r["param"]), False) and lo > 0 and value > 0:
            return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (value - lo) / (hi - lo)

    for yi, (_, r) in zip(y, estimates.iterrows(), strict=True):
        colour = FITTED if bool(r["identified"]) else "#c0392b"
        lo, hi = unit(float(r["low"]), r), unit(float(r["high"]), r)
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [yi, yi], color=colour, linewidth=4, alpha=0.5)
        ax.plot(unit(float(r["estimate"]), r), yi, "o", color=colour)
    ax.set_yticks(y, [str(p) for p in estimates["param"]])
    ax.set_xlim(-0.03, 1.03)
    ax.set_xticks([0, 0.5, 1], ["prior low", "middle", "prior high"])
    for tick, align in zip(ax.get_xticklabels(), ("left", "center", "right"), strict=True):
        tick.set_horizontalalignment(align)
    ax.set_xlabel("position in the prior range (bar: 95 % interval)")
    style_axes(ax)
    return fig


def _fmt(x: object) -> str:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return html.escape(str(x))
    return "" if not math.isfinite(v) else f"{v:.4g}"


def calibration_tables_html(estimates: pd.DataFrame, fit: pd.DataFrame, headline: str) -> str:
    """The headline, the estimates table and the fit table."""
    head = "".join(f"<th>{c}</th>" for c in ("parameter", "estimate", "95 % interval",
                                              "prior", "identified", "note"))
    body = "".join(
        f"<tr><th scope=\"row\">{html.escape(str(r['param']))}</th><td>{_fmt(r['estimate'])}"
        f"</td><td>{_fmt(r['low'])} – {_fmt(r['high'])}</td><td>{_fmt(r['prior_low'])} – "
        f"{_fmt(r['prior_high'])}</td><td>{'yes' if bool(r['identified']) else 'no'}</td>"
        f"<td>{html.escape('' if pd.isna(r['note']) else str(r['note']))}</td></tr>"
        for _, r in estimates.iterrows())
    fhead = "".join(f"<th>{c}</th>" for c in ("target", "observed", "se", "simulated", "z",
                                               "held out"))
    fbody = "".join(
        f"<tr><th scope=\"row\">{html.escape(str(r['target']))}</th><td>{_fmt(r['observed'])}"
        f"</td><td>{_fmt(r['se'])}</td><td>{_fmt(r['simulated'])}</td><td>{_fmt(r['z'])}</td>"
        f"<td>{'yes' if bool(r['held_out']) else ''}</td></tr>" for _, r in fit.iterrows())
    return (f'<p class="headline">{html.escape(headline)}</p>'
            f'<table class="kpi"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            '<p class="note">Interval: 2.5 and 97.5 percentiles of the parametric bootstrap '
            "refits (draws.csv). Not identified: the interval spans half the prior range or "
            "more, or only contacts data identify the parameter and there are none.</p>"
            f'<table class="kpi"><thead><tr>{fhead}</tr></thead><tbody>{fbody}</tbody></table>'
            '<p class="note">The estimate re-run on fresh seeds; se combines the observed and '
            "the simulated standard errors; z = (simulated - observed) / se.</p>")


def headline(estimates: pd.DataFrame, fit: pd.DataFrame) -> str:
    """One sentence: how many parameters are identified, how well the fit holds."""
    ident = int(estimates["identified"].astype(bool).sum())
    z = fit["z"].abs()
    held = fit[fit["held_out"].astype(bool)]
    text = (f"{ident} of {len(estimates)} parameters identified; on fresh seeds the "
            f"calibrated model is within {z.max():.1f} standard errors of every target")
    if len(held):
        text += (f" (held out: {', '.join(held['target'].astype(str))}, largest |z| "
                 f"{held['z'].abs().max():.1f})")
    return re.sub(r"\s+", " ", text)
