"""``contactsim sweep``: run a sweep file's cells on a local pool or a Dask cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from simulator.cli.helpers import (
    DaskScheduler,
    PoolWorkers,
    check_output_folder,
    console,
    err_console,
    guarded,
    progress_bar,
    terminal_text,
)
from simulator.errors import UserError, one_line
from simulator.experiments.backends import (
    Backend,
    DaskCluster,
    LocalPool,
    check_scheduler_address,
)
from simulator.experiments.resources import check_memory
from simulator.experiments.sweep import MAX_CELLS, SweepPlan, load_sweep, run_sweep
from simulator.memory_estimate import run_memory_bytes
from simulator.scenario import scenario_from_dict


def _largest_cell_bytes(plan: SweepPlan) -> tuple[int, str]:
    """The estimated memory of the plan's largest cell, and what it is."""
    best, what = 0, ""
    seen: set[tuple[int, float]] = set()
    for cell in plan.unique_cells():
        size = (int(cell.scenario["population"]["size"]), float(cell.scenario["horizon_days"]))
        if size in seen:
            continue
        seen.add(size)
        need = run_memory_bytes(scenario_from_dict(cell.scenario, source="sweep cell"))
        if need > best:
            best, what = need, f"cells of {size[0]:,} accounts over {size[1]:g} days"
    return best, what


@guarded
def sweep_command(
    sweep: Annotated[Path, typer.Argument(help="sweep YAML file")],
    out: Annotated[Path, typer.Option(
        help="results folder; rerunning into it computes only the missing cells")],
    workers: PoolWorkers = None,
    scheduler: DaskScheduler = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a field of every variant, e.g. --set population.size=2000 "
                      "(repeatable; as if added to the sweep file's set:)")] = None,
    fail_fast: Annotated[bool, typer.Option(
        "--fail-fast", help="stop at the first failed cell")] = False,
    max_cells: Annotated[int, typer.Option(
        "--max-cells", min=1, help="refuse a plan of more cells than this "
                                   "(variants x strategies x replications)")] = MAX_CELLS,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run every (variant x strategy x replication) cell of a sweep, resuming where it stopped.

    Each cell is written to OUT/cells/<key>.json as it completes; OUT/kpis.csv holds one
    row per finished cell. Exits 1 when a cell failed (its error is in its cell file).
    """
    if scheduler is not None and workers is not None:
        raise UserError("--workers sets the local pool; a Dask cluster has the workers "
                        "started for it", source="--workers")
    if scheduler is not None:
        scheduler = check_scheduler_address(scheduler)
    plan = load_sweep(sweep, set_ or (), max_cells=max_cells)
    check_output_folder(out)
    if scheduler is None:  # a Dask cluster's memory is its workers', not this machine's
        per_cell, what = _largest_cell_bytes(plan)
        check_memory(per_cell, min(workers or 1, len(plan.unique_cells())), what=what,
                     new_processes=min(workers or 1, len(plan.unique_cells())))
    backend: Backend = DaskCluster(scheduler) if scheduler else LocalPool(workers or 1)
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers or 1} local worker(s)"
    show = not quiet and sys.stderr.isatty()
    with progress_bar(len(plan.unique_cells()), show) as bar:
        task = bar.add_task(terminal_text(plan.name), total=len(plan.unique_cells()))
        report = run_sweep(plan, out, backend, fail_fast=fail_fast,
                           on_progress=lambda done, _total: bar.update(task, completed=done))
    replaced = (f"; replaced {report.replaced} unreadable, failed, outdated or invalid cell "
                f"file(s)" if report.replaced else "")
    # Names, paths and errors are shown as they are, never read as markup.
    console.print(f"sweep {terminal_text(plan.name)}: {report.unique} cells on "
                  f"{terminal_text(where)}: computed {report.computed}, reused "
                  f"{report.reused}, failed {report.failed}{replaced}",
                  markup=False, highlight=False, soft_wrap=True)
    if report.invalid:
        err_console.print(
            f"warning: recomputed {report.invalid} cell file(s) that failed validation (a "
            "checksum that does not match the content, or impossible KPIs)",
            markup=False, highlight=False, soft_wrap=True)
    console.print(f"results in {terminal_text(out)} (kpis.csv, cells/, sweep.resolved.yaml)",
                  markup=False, highlight=False, soft_wrap=True)
    if report.failed:
        first = report.failures[0]
        err_console.print(Text.assemble(
            (f"{report.failed} cell(s) failed", "bold red"),
            f"; first: {terminal_text(first['strategy'])} replication "
            f"{first['replication']} {terminal_text(first['variant'])}: "
            f"{one_line(str(first['error']))}"),
            highlight=False, soft_wrap=True)
        if report.stopped:
            err_console.print("stopped at the first failure (--fail-fast)")
        raise typer.Exit(1)
