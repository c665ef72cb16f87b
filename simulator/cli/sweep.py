"""``contactsim sweep``: run a sweep file's cells on a local pool or a Dask cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from simulator.cli.helpers import check_output_folder, console, err_console, guarded, progress_bar
from simulator.errors import UserError, one_line
from simulator.experiments.backends import Backend, DaskCluster, LocalPool
from simulator.experiments.sweep import load_sweep, run_sweep


@guarded
def sweep_command(
    sweep: Annotated[Path, typer.Argument(help="sweep YAML file")],
    out: Annotated[Path, typer.Option(
        help="results folder; rerunning into it computes only the missing cells")],
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=1, help="local worker processes (default 1)")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (needs contactsim[dask]); "
             "default: a local process pool")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a field of every variant, e.g. --set population.size=2000 "
                      "(repeatable; as if added to the sweep file's set:)")] = None,
    fail_fast: Annotated[bool, typer.Option(
        "--fail-fast", help="stop at the first failed cell")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run every (variant x strategy x replication) cell of a sweep, resuming where it stopped.

    Each cell is written to OUT/cells/<key>.json as it completes; OUT/kpis.csv holds one
    row per finished cell. Exits 1 when a cell failed (its error is in its cell file).
    """
    if scheduler is not None and workers is not None:
        raise UserError("--workers sets the local pool; a Dask cluster has the workers "
                        "started for it", source="--workers")
    plan = load_sweep(sweep, set_ or ())
    check_output_folder(out)
    backend: Backend = DaskCluster(scheduler) if scheduler else LocalPool(workers or 1)
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers or 1} local worker(s)"
    show = not quiet and sys.stderr.isatty()
    with progress_bar(len(plan.unique_cells()), show) as bar:
        task = bar.add_task(plan.name, total=len(plan.unique_cells()))
        report = run_sweep(plan, out, backend, fail_fast=fail_fast,
                           on_progress=lambda done, _total: bar.update(task, completed=done))
    replaced = (f"; replaced {report.replaced} unreadable, failed or outdated cell file(s)"
                if report.replaced else "")
    # Names, paths and errors are shown as they are, never read as markup.
    console.print(f"sweep {plan.name}: {report.unique} cells on {where}: computed "
                  f"{report.computed}, reused {report.reused}, failed {report.failed}{replaced}",
                  markup=False, highlight=False, soft_wrap=True)
    console.print(f"results in {out} (kpis.csv, cells/, sweep.resolved.yaml)",
                  markup=False, highlight=False, soft_wrap=True)
    if report.failed:
        first = report.failures[0]
        err_console.print(Text.assemble(
            (f"{report.failed} cell(s) failed", "bold red"),
            f"; first: {first['strategy']} replication {first['replication']} "
            f"{first['variant']}: {one_line(str(first['error']))}"),
            highlight=False, soft_wrap=True)
        if report.stopped:
            err_console.print("stopped at the first failure (--fail-fast)")
        raise typer.Exit(1)
