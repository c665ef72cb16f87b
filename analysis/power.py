"""The power curve of a champion/challenger trial, and its report section.

Reads a ``contactsim power`` folder: ``power.csv`` (one row per size and outcome) and
``power.json`` (the design, the effects, the interference, the smallest size reaching
80 %). The figure draws the simulated power at each size with its Wilson interval, the
closed form's curve beside it, and the 80 % line (with ``--null``: the type-I error and
the alpha line).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis.plotting import new_figure, percent_axis, save_figure, style_axes
from simulator.errors import UserError
from simulator.experiments.power import TARGET_POWER, effect_size, formula_power

#: Files of a power folder.
POWER_FILES: tuple[str, ...] = ("power.csv", "power.json")


def is_power_folder(path: Path) -> bool:
    """Whether ``path`` is the output folder of ``contactsim power``."""
    return all((path / name).is_file() for name in POWER_FILES)


def read_power(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``power.csv`` and ``power.json`` of a power folder."""
    try:
        table = pd.read_csv(path / "power.csv")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read a table ({exc})", source=str(path / "power.csv")) from None
    try:
        summary = json.loads((path / "power.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the summary ({exc})",
                        source=str(path / "power.json")) from None
    needed = {"size", "metric", "power", "low", "high", "formula_power"}
    missing = sorted(needed - set(table.columns))
    if missing or not isinstance(summary, dict) or "design" not in summary:
        raise UserError(f"not a power table (missing {', '.join(missing) or 'the design'})",
                        source=str(path))
    table["metric"] = table["metric"].astype(str)
    return table, summary


def _formula_curve(info: Mapping[str, Any], design: Mapping[str, Any],
                   sizes: np.ndarray) -> np.ndarray:
    """The closed form's power over ``sizes`` (the whole-book effect, as power.csv)."""
    effect = {"binary": info.get("binary", False), "cells": {
        c: {k: math.nan if v is None else v for k, v in cell.items()}
        for c, cell in info["cells"].items()}}
    rho = info.get("rho")
    es = effect_size(effect, math.nan if design.get("covariate") is None or rho is None
                     else float(rho))
    return np.array([formula_power(es, float(s), float(design["split"]),
                                   float(design["alpha"])) for s in sizes])


def power_figure(table: pd.DataFrame, summary: Mapping[str, Any],
                 metric: str | None = None) -> Figure:
    """Power (or type-I error) against the trial size: the simulated share with its 95 %
    Wilson interval, the closed form's curve, and the 80 % (or alpha) line."""
    design = summary["design"]
    metric = metric or str(summary.get("headline") or table["metric"].iloc[0])
    rows = table[table["metric"] == metric].sort_values("size")
    null = bool(design.get("null"))
    fig = new_figure(7.5, 4.6)
    ax = fig.subplots()
    sizes = rows["size"].to_numpy(dtype=float)
    power = rows["power"].to_numpy(dtype=float)
    low, high = rows["low"].to_numpy(dtype=float), rows["high"].to_numpy(dtype=float)
    label = "simulated type-I error" if null else "simulated power"
    covariate = design.get("covariate")
    if covariate:
        label += f" (CUPED on {covariate})"
        raw = rows["power_unadjusted"].to_numpy(dtype=float)
        raw_err = np.vstack([raw - rows["unadjusted_low"].to_numpy(dtype=float),
                             rows["unadjusted_high"].to_numpy(dtype=float) - raw])
        ax.errorbar(sizes, raw, yerr=np.clip(raw_err, 0, None), fmt="s-", color="0.55",
                    capsize=3, linewidth=1.2, markersize=4,
                    label=f"unadjusted ({'z-test' if info_binary(summary, metric) else 'Welch'})")
    err = np.vstack([power - low, high - power])
    ax.errorbar(sizes, power, yerr=np.clip(err, 0, None), fmt="o-", color="#1f77b4",
                capsize=4, linewidth=1.8, label=label + ", 95 % Wilson interval")
    info = summary["metrics"].get(metric, {})
    if not null and info and len(sizes):
        grid = np.geomspace(max(sizes.min() / 2, 4.0), sizes.max() * 2, 80)
        curve = _formula_curve(info, design, grid)
        if np.isfinite(curve).any():
            which = (f"whole-book effect / sqrt(1 - rho^2), rho {float(info['rho']):+.2f}"
                     if covariate and info.get("rho") is not None else "whole-book effect")
            ax.plot(grid, curve, "--", color="#d62728", linewidth=1.2,
                    label=f"closed form (NormalIndPower, {which})")
    if null:
        ax.axhline(float(design["alpha"]), color="black", linewidth=0.9, linestyle=":",
                   label=f"alpha {float(design['alpha']):g}")
    else:
        ax.axhline(TARGET_POWER, color="black", linewidth=0.9, linestyle=":",
                   label=f"{TARGET_POWER:.0%} power")
        smallest = info.get("smallest_size")
        if smallest is not None:
            ax.axvline(float(smallest), color="#2ca02c", linewidth=0.9, linestyle="-.",
                       label=f"smallest size reaching {TARGET_POWER:.0%}: {int(smallest):,}")
    ax.set_xscale("log")
    if len(sizes):
        ax.set_xticks(sizes, [f"{int(s):,}" for s in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"trial size (accounts in both cells; champion's share "
                  f"{float(design['split']):g})")
    ax.set_ylabel("type-I error" if null else "power")
    ax.set_ylim(0, 1.02 if not null else max(0.2, float(np.nanmax(high)) * 1.2
                                             if len(high) else 0.2))
    percent_axis(ax, "y")
    style_axes(ax)
    ax.set_title(f"{metric}: {'type-I error' if null else 'power'} at alpha "
                 f"{float(design['alpha']):g}, look day {float(design['look']):g}, "
                 f"{int(design['repetitions'])} repetitions per size", fontsize=10)
    ax.legend(fontsize=8, loc="upper right" if null else "lower right")
    return fig


def info_binary(summary: Mapping[str, Any], metric: str) -> bool:
    """Whether ``metric`` is binary (tested by the two-proportion z-test)."""
    return bool(summary["metrics"].get(metric, {}).get("binary", False))


def write_power_figure(folder: Path) -> Path:
    """Draw ``power.png`` of the folder's headline outcome."""
    table, summary = read_power(folder)
    return save_figure(power_figure(table, summary), folder / "power.png")


# --------------------------------------------------------------------------- report


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * float(x):.1f} %" if pct else f"{float(x):+.4g}"


def _interval(d: Mapping[str, Any]) -> str:
    mean, low, high = d.get("mean"), d.get("low"), d.get("high")
    if mean is None:
        return "-"
    if low is None or high is None:
        return _fmt(mean)
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def power_section_html(table: pd.DataFrame, summary: Mapping[str, Any]) -> str:
    """The power table per outcome, the smallest size, the effects and the interference."""
    design = summary["design"]
    null = bool(design.get("null"))
    parts = []
    for metric, info in summary["metrics"].items():
        rows = table[table["metric"] == metric].sort_values("size")
        head = ("<tr><th>size</th><th>agents</th><th>{}</th><th>95 % Wilson interval</th>"
                "{}<th>closed form</th><th>effect at size</th></tr>").format(
                    "type-I error" if null else "power",
                    "<th>unadjusted</th><th>unadjusted, Welch's t</th>"
                    "<th>variance reduction</th>"
                    if design.get("covariate") else "")
        body = []
        for r in rows.itertuples():
            cells = [f"{int(r.size):,}", str(int(r.agents)), _fmt(r.power, True),
                     f"[{_fmt(r.low, True)}, {_fmt(r.high, True)}]"]
            if design.get("covariate"):
                cells += [_fmt(r.power_unadjusted, True), _fmt(r.power_welch, True),
                          _fmt(r.variance_reduction, True)]
            cells += [_fmt(r.formula_power, True), _fmt(r.effect_at_size)]
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                        + "</tr>")
        smallest = info.get("smallest_size")
        formula = info.get("formula_size")
        if null:
            verdict = (f"Type-I error of the test at alpha {float(design['alpha']):g}: the "
                       "champion against itself.")
        elif smallest is None:
            verdict = f"No simulated size reaches {TARGET_POWER:.0%} power."
        else:
            verdict = (f"Smallest simulated size reaching {TARGET_POWER:.0%} power: "
                       f"<b>{int(smallest):,}</b> accounts.")
        if not null and formula is not None:
            verdict += f" The closed form asks for {float(formula):,.0f}."
        effects = (f"Effect (challenger − champion) on the whole book of "
                   f"{int(design['book_size']):,} accounts over {info.get('repetitions')} "
                   f"seeds, 95 % t-intervals: within the trial at the same split "
                   f"{_interval(info['within'])}; full adoption (each strategy alone) "
                   f"{_interval(info['full_adoption'])}.")
        interference = (f"Interference (each cell in the trial minus the same accounts under "
                        f"its strategy alone, same seeds): {info.get('interference', '-')}. "
                        "A closed-form power cannot see it: the cells share the agents, so a "
                        "challenger's calls can take capacity from the champion, and a cell "
                        "gets only its share of the agents.")
        parts.append(
            f"<h3>{html.escape(metric)}</h3>"
            f'<table class="kpi"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'
            f"<p>{verdict}</p><p>{html.escape(effects)}</p>"
            f"<p>{html.escape(interference)}</p>")
    champion = design["champion"].get("label") or design["champion"]["use"]
    challenger = design["challenger"].get("label") or design["challenger"]["use"]
    intro = (f"Champion {champion} against {'itself' if null else challenger}, split "
             f"{float(design['split']):g} (the champion's share), look day "
             f"{float(design['look']):g}, alpha {float(design['alpha']):g}, "
             f"{int(design['repetitions'])} repetitions per size; agent calls "
             f"{'interleaved by share' if design.get('fair_queue') else 'in one shared queue'}"
             ". Each repetition is a fresh book of the size, split at random inside one "
             "book; outcomes over every account assigned (intention to treat); "
             "two-proportion z-test for a binary outcome, Welch's t otherwise"
             + (f"; CUPED on {design['covariate']}" if design.get("covariate") else "")
             + ".")
    return f"<p>{html.escape(intro)}</p>" + "".join(parts)
