"""Staffing: service level, recovery and utilisation as the agent floor grows.

Usage: python -m analysis.staffing SWEEP_FOLDER [--out docs/img/staffing.png]

Reads the ``kpis.csv`` of a sweep over ``agents.count`` (``scenarios/sweeps/staffing.yaml``)
and draws, against the number of agents, the service level (agent calls an agent took
before the next decision epoch / calls queued), the recovery rate and agent utilisation,
each the mean over replications with its 95 % interval. Prints the figures it draws,
the contact cost, staffing cost and net value (with net value less the idle staffed
hours) per agent count, and the recovery rate against the largest floor, paired by
replication (common random numbers).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.plotting import new_figure, percent_axis, save_figure, style_axes
from analysis.stats import summarise_by
from simulator.experiments.compare import paired_interval
from simulator.kpis import KPI_RANGES

FACTOR = "agents.count"
SERIES = (("service_level", "service level"), ("recovery_rate", "recovery rate"),
          ("agent_utilisation", "agent utilisation"))


def staffing_table(kpis: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and interval of each series per agent count (and strategy)."""
    columns = [c for c, _ in SERIES]
    table = summarise_by(kpis, ["strategy", FACTOR], columns, confidence,
                         ranges={c: KPI_RANGES[c] for c in columns})
    return table.sort_values(["strategy", FACTOR]).reset_index(drop=True)


def staffing_figure(kpis: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """One panel per series against the number of agents, one line per strategy."""
    table = staffing_table(kpis, confidence)
    fig = new_figure(4.2 * len(SERIES), 3.6)
    axes = fig.subplots(1, len(SERIES))
    for ax, (column, label) in zip(axes, SERIES, strict=True):
        for strategy, rows in table.groupby("strategy", sort=False):
            x = rows[FACTOR].to_numpy(dtype=float)
            ax.plot(x, rows[column], marker="o", label=str(strategy))
            ax.fill_between(x, rows[f"{column}_low"], rows[f"{column}_high"], alpha=0.2,
                            linewidth=0)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sorted(set(table[FACTOR])))
        ax.set_xticklabels([str(int(v)) for v in sorted(set(table[FACTOR]))])
        ax.set_xlabel("agents")
        ax.set_title(label, fontsize=10)
        percent_axis(ax, "y")
        style_axes(ax)
    reps = int(table["n"].max()) if len(table) else 0
    fig.suptitle(f"Staffing the living book (mean of {reps} replications, "
                 f"{confidence:.0%} band)", fontsize=12)
    return fig


#: Money per agent count, printed beside the figure when the sweep has them.
MONEY = ("contact_cost", "staffing_cost", "net_value")


def money_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """Mean over replications, per agent count (and strategy), of contact cost, staffing
    cost and net value, and net value less the idle staffed hours (``net_of_floor``): net
    value counts an agent's time on calls (in the contact cost) but not the hours the
    floor sits idle, which staffing cost counts as well."""
    columns = [c for c in (*MONEY, "cost_agent_call") if c in kpis]
    table = kpis.groupby(["strategy", FACTOR], sort=False)[columns].mean().reset_index()
    if {"net_value", "staffing_cost", "cost_agent_call"} <= set(table):
        idle = table["staffing_cost"] - table["cost_agent_call"]
        table["net_of_floor"] = table["net_value"] - idle
    return table.drop(columns=["cost_agent_call"], errors="ignore").sort_values(
        ["strategy", FACTOR]).reset_index(drop=True)


def paired_with_largest(kpis: pd.DataFrame, column: str, confidence: float = 0.95
                        ) -> pd.DataFrame:
    """``column`` at each agent count less at the largest, paired by replication: the
    floors of a replication share its seed (common random numbers), so the paired
    interval shows a difference that the spread between replications would hide."""
    rows = []
    for strategy, by_strategy in kpis.groupby("strategy", sort=False):
        wide = by_strategy.pivot(index="replication", columns=FACTOR, values=column)
        largest = wide.columns.max()
        for count in sorted(wide.columns):
            mean, low, high = paired_interval(wide[largest], wide[count], confidence)
            rows.append({"strategy": strategy, FACTOR: count, "against": largest,
                         f"{column}_difference": mean, "low": low, "high": high})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.staffing",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the sweep's output folder")
    parser.add_argument("--out", type=Path, default=Path("docs/img/staffing.png"))
    args = parser.parse_args(argv)
    kpis = pd.read_csv(args.folder / "kpis.csv")
    table = staffing_table(kpis)
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table[["strategy", FACTOR, "n", *[c for c, _ in SERIES]]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"))
        money = money_table(kpis)
        if len(money.columns) > 2:
            print(money.to_string(index=False, float_format=lambda v: f"{v:,.0f}"))
        if kpis["replication"].nunique() > 1:
            print(paired_with_largest(kpis, "recovery_rate").to_string(
                index=False, float_format=lambda v: f"{v:+.4f}"))
    save_figure(staffing_figure(kpis), args.out)
    print(f"figure in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
