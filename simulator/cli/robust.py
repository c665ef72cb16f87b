"""``contactsim robust``: does the ranking of strategies survive what we do not know?"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from simulator.cli.helpers import (
    DaskScheduler,
    PoolWorkers,
    check_arms,
    check_output_folder,
    console,
    err_console,
    guarded,
    progress_bar,
    specs_from_option,
    with_arms,
)
from simulator.errors import UserError, one_line
from simulator.experiments.backends import Backend, DaskCluster, LocalPool
from simulator.experiments.measures import Measure
from simulator.experiments.robust import (
    RobustDesign,
    design_from_space,
    plan_robust,
    read_draws_csv,
    run_robust,
)
from simulator.experiments.space import ParameterSpace
from simulator.formatting import format_number
from simulator.kpis import TABLE_KPIS
from simulator.scenario import load_scenario


def _kind(kpi: str) -> str:
    """How a KPI's values are shown (money, pct or num), as in the KPI table."""
    return next((kind for key, _, kind in TABLE_KPIS if key == kpi), "num")


def ranking_table(rank: object, objective: Measure, title: str) -> Table:
    """One row per strategy: P(best) and expected regret with intervals, p95 and worst."""
    import pandas as pd

    assert isinstance(rank, pd.DataFrame)
    kind = _kind(objective.kpi)
    table = Table(title=Text(title, style="italic"), caption=(
        f"over {int(rank['draws'].iloc[0])} draws; 95% intervals: bootstrap over draws; "
        f"regret: {objective.kpi} lost against the best strategy of each draw"))
    for col in ("strategy", "P(best)", "expected regret", "p95 regret", "worst regret"):
        table.add_column(col, justify="left" if col == "strategy" else "right")

    def money(x: float) -> str:
        return format_number(x, kind) if math.isfinite(x) else "-"

    for r in rank.itertuples():
        table.add_row(
            Text(str(r.strategy)),
            f"{100 * r.p_best:.0f}% ({100 * r.p_best_low:.0f}-{100 * r.p_best_high:.0f}%)",
            f"{money(r.expected_regret)} ({money(r.expected_regret_low)}-"
            f"{money(r.expected_regret_high)})",
            money(r.p95_regret), money(r.worst_regret))
    return table


@guarded
def robust_command(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    out: Annotated[Path, typer.Option(
        help="results folder; rerunning into it computes only the missing cells")],
    strategies: Annotated[list[str] | None, typer.Option(
        "--strategies", "--strategy", "-s",
        help="arms to rank, at least two (repeatable, or comma-separated): built-in names, "
             "module:Class, file.py:Class or the names of the scenario's arms (default: "
             "the scenario's)")
    ] = None,
    uncertain: Annotated[Path | None, typer.Option(
        help="parameter-space file of the uncertain parameters (see scenarios/robust/)")
    ] = None,
    draws_from: Annotated[Path | None, typer.Option(
        "--draws-from", help="a calibration's output folder: its draws.csv gives the draws")
    ] = None,
    draws: Annotated[int | None, typer.Option(
        min=2, help="number of parameter sets (with --draws-from: the first N; default all)")
    ] = None,
    sobol: Annotated[bool, typer.Option(
        "--sobol", help="SALib's Saltelli design (Sobol indices; --draws a multiple of "
                        "2D+2) instead of a scrambled Sobol sequence")] = False,
    replications: Annotated[int | None, typer.Option(
        "--replications", "-r", min=1, help="replications per draw and strategy "
                                            "(default: the scenario's)")] = None,
    objective: Annotated[str, typer.Option(
        help="KPI:max or KPI:min, e.g. net_value:max or churn_rate:min")] = "net_value:max",
    workers: PoolWorkers = None,
    scheduler: DaskScheduler = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a field of the scenario, e.g. --set population.size=2000 "
                      "(repeatable)")] = None,
    fail_fast: Annotated[bool, typer.Option(
        "--fail-fast", help="stop at the first failed cell")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Rank strategies over many plausible parameter sets: how likely each is to be best,
    what choosing it costs when it is not, which unknowns decide, and where it loses.

    Every (draw, strategy, replication) is a cell written to OUT/cells/ as it completes,
    all on the same seeds; OUT/ranking.csv, pairwise.csv, sensitivity.csv, where.csv and
    results.csv are written when every cell has finished. Exits 1 when a cell failed.
    """
    if scheduler is not None and workers is not None:
        raise UserError("--workers sets the local pool; a Dask cluster has the workers "
                        "started for it", source="--workers")
    if (uncertain is None) == (draws_from is None):
        raise UserError("give exactly one of --uncertain FILE or --draws-from DIR",
                        source="--uncertain")
    if sobol and uncertain is None:
        raise UserError("--sobol samples a parameter space (--uncertain); a calibration's "
                        "draws are used as they are", source="--sobol")
    measure = Measure.parse(objective, "--objective")
    sc = load_scenario(scenario, list(set_ or []))
    specs = specs_from_option(sc, strategies)
    arms_from = str(scenario) if strategies is None else "--strategies"
    if len(specs) < 2:
        raise UserError("name at least two strategies to rank", source=arms_from)
    sc = with_arms(sc, specs, arms_from, str(scenario))
    base_dir = scenario.parent.resolve()
    check_arms(sc.strategies, base_dir, arms_from, sc.decision.timeout_seconds)
    design: RobustDesign
    if uncertain is not None:
        if draws is None:
            raise UserError("say how many parameter sets to draw (e.g. --draws 128)",
                            source="--draws")
        space = ParameterSpace.load(uncertain)
        design = design_from_space(space, draws, sobol, sc.seed)
    else:
        assert draws_from is not None
        design = read_draws_csv(draws_from, draws)
    plan = plan_robust(sc, str(scenario), sc.strategies, design, measure,
                       replications or sc.replications, str(base_dir))
    check_output_folder(out)
    backend: Backend = DaskCluster(scheduler) if scheduler else LocalPool(workers or 1)
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers or 1} local worker(s)"
    show = not quiet and sys.stderr.isatty()
    total = len({c.task.key for c in plan.cells})
    with progress_bar(total, show) as bar:
        task = bar.add_task(f"{plan.name} robust", total=total)
        report = run_robust(plan, out, backend, fail_fast=fail_fast,
                            on_progress=lambda done, _total: bar.update(task, completed=done))
    replaced = (f"; replaced {report.replaced} unreadable, failed or outdated cell file(s)"
                if report.replaced else "")
    console.print(f"robust {plan.name}: {len(design.draws)} draws x {len(specs)} strategies x "
                  f"{plan.replications} replication(s) = {report.cells} cells on {where}: "
                  f"computed {report.computed}, reused {report.reused}, failed "
                  f"{report.failed}{replaced}", markup=False, highlight=False, soft_wrap=True)
    if report.answer is None:
        if report.failures:
            first = report.failures[0]
            err_console.print(Text.assemble(
                (f"{report.failed} cell(s) failed", "bold red"),
                f"; first: {first['strategy']} replication {first['replication']} "
                f"draw {first['variant'].get('draw')}: {one_line(str(first['error']))}"),
                highlight=False, soft_wrap=True)
        if report.stopped:
            err_console.print("stopped at the first failure (--fail-fast)")
        err_console.print("no ranking written: rerun the same command to retry the "
                          "failed cells (finished cells are reused)", highlight=False)
        raise typer.Exit(1)
    answer = report.answer
    console.print(ranking_table(answer.ranking, measure,
                                f"{plan.name}: {measure} over {len(design.draws)} draws"))
    console.print(answer.headline, markup=False, highlight=False, soft_wrap=True)
    console.print(f"results in {out} (ranking.csv, pairwise.csv, sensitivity.csv, where.csv, "
                  "results.csv, cells/, robust.resolved.yaml); figures: contactsim report "
                  f"{out}", markup=False, highlight=False, soft_wrap=True)
