"""The headline of a comparison: which strategy leads on net value, by how much, and
how sure that is; and the net-value figure beside it.

The leader is the strategy with the highest mean net value over the replications. Its
lead over the next best is the paired difference on the same seeds (common random
numbers) with its t-interval: the arms' own intervals overlap far more than their
difference varies, so only the paired interval says whether the lead is real. The
leader is picked from the very replications that measure its lead, so with close arms
the quoted lead is optimistic: the headline says to confirm it on fresh seeds.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.plotting import money_axis, new_figure, strategy_colours, style_axes
from simulator.experiments.compare import kpi_interval, paired_interval, rough_note
from simulator.formatting import format_interval, format_number

#: The KPI the headline ranks strategies by.
HEADLINE_KPI = "net_value"


@dataclass(frozen=True)
class Standing:
    """One strategy's mean net value and its interval."""

    strategy: str
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Lead:
    """The leader on net value and its paired lead over another strategy."""

    standings: list[Standing]  # best first
    replications: int
    runner_up: str | None
    diff: float
    diff_low: float
    diff_high: float
    baseline: str
    baseline_diff: float
    baseline_low: float
    baseline_high: float

    @property
    def leader(self) -> Standing:
        return self.standings[0]

    @property
    def distinguishable(self) -> bool:
        """The paired interval of the lead over the runner-up excludes zero."""
        return self.diff_low > 0 or self.diff_high < 0


def _values(kpis: pd.DataFrame, strategy: str, kpi: str) -> pd.Series:
    rows = kpis[kpis["strategy"].astype(str) == strategy]
    return rows.set_index("replication")[kpi].sort_index()


def net_value_lead(kpis: pd.DataFrame, confidence: float = 0.95,
                   kpi: str = HEADLINE_KPI) -> Lead | None:
    """Who leads on ``kpi``, by how much, with paired intervals; None with fewer than two
    strategies or no such KPI."""
    if kpi not in kpis.columns:
        return None
    names = [str(s) for s in dict.fromkeys(kpis["strategy"].astype(str))]
    if len(names) < 2:
        return None
    standings = []
    for s in names:
        m, lo, hi = kpi_interval(_values(kpis, s, kpi).to_numpy(dtype=float), kpi, confidence)
        standings.append(Standing(s, m, lo, hi))
    standings = [s for s in standings if math.isfinite(s.mean)]
    if len(standings) < 2:
        return None
    standings.sort(key=lambda s: -s.mean)
    leader, runner = standings[0].strategy, standings[1].strategy

    def lead_over(other: str) -> tuple[float, float, float]:
        a, b = _values(kpis, other, kpi), _values(kpis, leader, kpi)
        common = a.index.intersection(b.index)
        return paired_interval(a.loc[common].to_numpy(dtype=float),
                               b.loc[common].to_numpy(dtype=float), confidence)

    d, dlo, dhi = lead_over(runner)
    base = names[0]
    bd, blo, bhi = lead_over(base) if base != leader else (0.0, math.nan, math.nan)
    reps = int(kpis.groupby("strategy").size().min())
    return Lead(standings, reps, runner, d, dlo, dhi, base, bd, blo, bhi)


def _money(value: float, currency: str, signed: bool = False) -> str:
    return f"{format_number(value, 'money', signed=signed)} {currency}"


def headline_html(lead: Lead, currency: str, confidence: float = 0.95) -> str:
    """The headline paragraph of a comparison report."""
    best = lead.leader
    level = f"{confidence:.0%}"
    interval = format_interval(best.low, best.high, "money")
    parts = [f"<b>{html.escape(best.strategy)}</b> leads on net value: "
             f"{html.escape(_money(best.mean, currency))}"
             + (f" ({level} interval {html.escape(interval)})" if interval else "")
             + f", mean of {lead.replications} replications."]
    lead_interval = format_interval(lead.diff_low, lead.diff_high, "money")
    verdict = ("the interval excludes zero: the lead is real at this confidence"
               if lead.distinguishable else
               "the interval contains zero: the two are not distinguishable")
    parts.append(f"It is ahead of the next best, <b>{html.escape(str(lead.runner_up))}</b>, "
                 f"by {html.escape(_money(lead.diff, currency))}"
                 + (f" (paired {level} interval {html.escape(lead_interval)} on the same "
                    f"seeds; {verdict})" if lead_interval else "")
                 + ".")
    if lead.baseline not in (best.strategy, lead.runner_up):
        base_interval = format_interval(lead.baseline_low, lead.baseline_high, "money")
        parts.append(f"Against the baseline {html.escape(lead.baseline)} it gains "
                     f"{html.escape(_money(lead.baseline_diff, currency, signed=True))}"
                     + (f" (paired interval {html.escape(base_interval)})" if base_interval
                        else "") + ".")
    parts.append("The leader is chosen from these same replications, which flatters its "
                 "lead when arms are close: confirm it on fresh seeds (for example "
                 "<code>contactsim compare ... --set seed=N</code> with another N) before "
                 "quoting it.")
    rough = rough_note(lead.replications)
    if rough:
        parts.append(f"<b>{html.escape(rough)}</b>")
    return '<p class="headline">' + " ".join(parts) + "</p>"


def net_value_figure(kpis: pd.DataFrame, currency: str = "money",
                     confidence: float = 0.95) -> Figure:
    """Net value per strategy with its interval (left) and each strategy's paired
    difference to the leader (right), best first."""
    lead = net_value_lead(kpis, confidence)
    if lead is None:
        raise ValueError("a net-value comparison needs two strategies with a net_value")
    names = [st.strategy for st in lead.standings]
    colours = strategy_colours(dict.fromkeys(kpis["strategy"].astype(str)))
    fig = new_figure(12, 1.6 + 0.55 * len(names))
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))[::-1]
    for yi, st in zip(y, lead.standings, strict=True):
        c = colours[st.strategy]
        if math.isfinite(st.low):
            left.plot([st.low, st.high], [yi, yi], color=c, linewidth=3, alpha=0.6)
        left.plot([st.mean], [yi], "o", color=c, markersize=7)
    left.set_yticks(y, names)
    left.set_xlabel(f"net value ({currency}; {confidence:.0%} interval)")
    money_axis(left, "x")
    left.set_title("Net value of each strategy", fontsize=11)
    style_axes(left)
    leader = lead.leader.strategy
    for yi, s in zip(y, names, strict=True):
        if s == leader:
            right.plot([0], [yi], "D", color=colours[s], markersize=7)
            right.annotate("leader", (0, yi), textcoords="offset points", xytext=(8, -3),
                           fontsize=9, color="0.3")
            continue
        a, b = _values(kpis, leader, HEADLINE_KPI), _values(kpis, s, HEADLINE_KPI)
        common = a.index.intersection(b.index)
        d, lo, hi = paired_interval(a.loc[common].to_numpy(dtype=float),
                                    b.loc[common].to_numpy(dtype=float), confidence)
        grey = not (lo > 0 or hi < 0)
        shade: Any = "0.6" if grey else colours[s]
        if math.isfinite(lo):
            right.plot([lo, hi], [yi, yi], color=shade, linewidth=3, alpha=0.8)
        right.plot([d], [yi], "o", color=shade, markersize=7)
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlabel(f"paired difference to {leader} ({currency}; {confidence:.0%} interval)")
    money_axis(right, "x")
    right.set_title(f"Each strategy minus {leader}, same seeds (grey: contains 0)",
                    fontsize=11)
    style_axes(right)
    right.margins(x=0.15)
    fig.suptitle(f"Net value: {leader} leads (mean of {lead.replications} replications)",
                 fontsize=12)
    return fig
