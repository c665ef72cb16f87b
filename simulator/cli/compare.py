"""``contactsim compare``: strategies on common random numbers, paired differences with CIs."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from simulator.cli.helpers import (
    check_arms,
    check_output_folder,
    console,
    default_out_dir,
    guarded,
    kpi_label,
    kpi_table,
    progress_bar,
    specs_from_option,
    terminal_text,
    with_arms,
)
from simulator.engine import Results
from simulator.errors import UserError
from simulator.experiments.backends import LocalPool, run_tasks
from simulator.experiments.cells import NOT_IN_CELL, CellTask
from simulator.experiments.compare import compare_strategies, pairing_gain, rough_note
from simulator.experiments.outputs import OutputFolder, resolved_scenario_text
from simulator.experiments.resources import check_memory
from simulator.experiments.runinfo import RUN_INFO, run_info_text
from simulator.experiments.runner import cells_of, kpi_frame
from simulator.formatting import format_number, format_value
from simulator.kpis import TABLE_KPIS
from simulator.memory_estimate import run_memory_bytes
from simulator.scenario import Scenario, load_scenario


def _diff_text(value: float, low: float, high: float, kind: str) -> str:
    if not math.isfinite(value):
        return "-"
    half = (high - low) / 2
    if kind == "pct":  # a difference of rates is in percentage points
        text = f"{format_number(value, kind, signed=True)} pp"
        if math.isfinite(half):
            text += f" ± {format_number(half, kind)}"
    else:
        text = ("+" if value > 0 else "") + format_value(value, kind, half)
    if not (low > 0 or high < 0):
        text += " (ns)"
    return text


def difference_table(comparison: pd.DataFrame, title: str, replications: int,
                     currency: str) -> Table:
    """KPIs as rows; per strategy its paired difference to the baseline ± half-width."""
    strategies = list(dict.fromkeys(comparison["strategy"]))
    base = strategies[0]
    caption = (f"strategy - {base} on the same seeds, mean of {replications} paired "
               "differences ± 95% CI half-width (a difference can take either sign: the "
               "plain t-interval); (ns): the interval contains 0, not distinguishable")
    rough = rough_note(replications)
    # Text, not markup: the title and headers carry the arms' names.
    table = Table(title=Text(terminal_text(title), style="italic"),
                  caption=f"{caption}\n{rough}" if rough else caption)
    table.add_column("KPI")
    for s in strategies[1:]:
        table.add_column(Text(terminal_text(f"{s} - {base}")), justify="right")
    idx = comparison.set_index(["strategy", "kpi"])
    for key, label, kind in TABLE_KPIS:
        if (base, key) not in idx.index:
            continue
        row = [kpi_label(label, kind, currency)]
        for s in strategies[1:]:
            rec = idx.loc[(s, key)]
            row.append(_diff_text(float(rec["diff"]), float(rec["diff_low"]),
                                  float(rec["diff_high"]), kind))
        table.add_row(*row)
    return table


@guarded
def compare_command(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    strategies: Annotated[list[str] | None, typer.Option(
        "--strategies", "--strategy", "-s",
        help="arms to compare, the first is the baseline (repeatable, or comma-separated): "
             "built-in names, module:Class, file.py:Class or the names of the scenario's "
             "arms (default: the scenario's)")
    ] = None,
    replications: Annotated[int | None, typer.Option(
        "--replications", "-r", min=2, help="replications (default: the scenario's)")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                         help="worker processes")] = 1,
    out: Annotated[Path | None, typer.Option(
        help="output folder (default: out/<scenario name>-compare)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a field, e.g. --set agents.count=40 (repeatable)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Compare strategies on the same seeds: means, paired differences and their CIs."""
    overrides = list(set_ or [])
    if replications is not None:
        overrides.append(f"replications={replications}")
    sc = load_scenario(scenario, overrides)
    specs = specs_from_option(sc, strategies)
    if len(specs) < 2:
        raise UserError("name at least two strategies to compare (the first is the baseline)",
                        source="--strategies")
    arms_from = str(scenario) if not strategies else "--strategies"
    sc = with_arms(sc, specs, arms_from, str(scenario))
    if sc.replications < 2:
        raise UserError("intervals need at least 2 replications (--replications)",
                        source=str(scenario), field="replications")
    check_arms(sc.strategies, scenario.parent.resolve(), arms_from,
               sc.decision.timeout_seconds)
    out_dir = out or default_out_dir(f"{sc.name}-compare")
    check_output_folder(out_dir)
    base_dir = str(scenario.parent.resolve())
    data = {k: v for k, v in sc.to_dict().items() if k not in NOT_IN_CELL}
    tasks = []
    for cell in cells_of(sc):
        spec = cell.spec.model_dump(mode="json")
        tasks.append(CellTask.make(data, spec, cell.seed, cell.replication, base_dir=base_dir))
    records: dict[tuple[str, int], dict[str, float]] = {}
    show = not quiet and sys.stderr.isatty()
    # Every cell runs on a pool of new processes that send back KPIs only.
    at_once = min(workers, len(tasks))
    check_memory(run_memory_bytes(sc), at_once, new_processes=at_once,
                 what=f"{sc.population.size:,} accounts over {sc.horizon_days:g} days")
    with OutputFolder(out_dir) as folder, progress_bar(len(tasks), show) as bar:
        task_id = bar.add_task(terminal_text(sc.name), total=len(tasks))
        backend = LocalPool(workers)
        finished = False
        try:
            for task, outcome in run_tasks(backend, tasks):
                if isinstance(outcome, BaseException):
                    raise UserError(f"a worker failed: {type(outcome).__name__}: {outcome}",
                                    source="compare")
                if outcome["status"] != "ok":
                    raise UserError(f"replication {task.replication}: {outcome['error']}",
                                    source=f"strategy '{outcome['strategy']}'")
                records[(outcome["strategy"], task.replication)] = {
                    k: math.nan if v is None else float(v) for k, v in outcome["kpis"].items()}
                bar.advance(task_id)
            finished = True
        finally:
            backend.close(cancel=not finished)
        empty = pd.DataFrame()
        kpis = kpi_frame([Results(strategy=c.spec.name, replication=c.replication,
                                  seed=c.seed, kpis=records[(c.spec.name, c.replication)],
                                  events=empty, daily=empty, accounts=empty)
                          for c in cells_of(sc)])
        comparison = compare_strategies(kpis, [s.name for s in specs])
        info = run_info_text(command="compare", scenario_file=scenario, overrides=overrides,
                             strategies=[s.name for s in specs] if strategies else ())
        folder.stage(RUN_INFO, lambda p: p.write_text(info, encoding="utf-8"))
        _write(folder, sc, kpis, comparison)

    what = f"{sc.name}: {sc.population.size:,} accounts, {sc.horizon_days:g} days"
    console.print(kpi_table(kpis, what, sc.currency))
    console.print(difference_table(comparison, f"paired differences to {specs[0].name}",
                                   sc.replications, sc.currency))
    gain = pairing_gain(comparison, "recovery_rate")
    for row in gain.itertuples():
        console.print(
            f"recovery rate, {row.strategy} - {specs[0].name}: 95% CI half-width "
            f"{100 * row.paired_half_width:.2f} pp paired vs {100 * row.unpaired_half_width:.2f}"
            f" pp unpaired ({row.ratio:.1f}x narrower with common random numbers)",
            markup=False, highlight=False, soft_wrap=True)
    console.print(f"results in {terminal_text(out_dir)} (kpis.csv, comparison.csv, "
                  "kpis.parquet, comparison.parquet, scenario.resolved.yaml, run.yaml)",
                  markup=False, highlight=False, soft_wrap=True)


def _write(folder: OutputFolder, sc: Scenario, kpis: pd.DataFrame,
           comparison: pd.DataFrame) -> None:
    """Stage every file of the comparison, then put them in place together."""
    folder.stage("kpis.csv", lambda p: kpis.to_csv(p, index=False))
    folder.stage("kpis.parquet", lambda p: kpis.to_parquet(p, index=False))
    folder.stage("comparison.csv", lambda p: comparison.to_csv(p, index=False))
    folder.stage("comparison.parquet", lambda p: comparison.to_parquet(p, index=False))
    text = resolved_scenario_text(sc)
    folder.stage("scenario.resolved.yaml", lambda p: p.write_text(text, encoding="utf-8"))
    folder.commit("contactsim compare")
