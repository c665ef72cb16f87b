"""``contactsim run``: a scenario's strategies, the KPI table and the results folder."""

from __future__ import annotations

import os
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.helpers import (
    check_arms,
    check_output_folder,
    command_line_reference,
    console,
    default_out_dir,
    guarded,
    kpi_table,
    progress_bar,
    terminal_text,
    with_arms,
)
from simulator.engine import Results
from simulator.errors import UserError
from simulator.experiments.outputs import OutputFolder, ResultsWriter
from simulator.experiments.resources import check_memory
from simulator.experiments.runinfo import RUN_INFO, run_info_text
from simulator.experiments.runner import cells_of, kpi_frame, run_cells
from simulator.memory_estimate import run_memory_bytes
from simulator.scenario import (
    StrategySpec,
    load_scenario,
)
from simulator.strategies.loader import uses_plugin


@guarded
def run_command(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", "-s",
        help="strategy to run (repeatable): built-in name, module:Class or file.py:Class; "
             "default: the scenario's strategies")] = None,
    seed: Annotated[int | None, typer.Option(
        min=0, help="root seed (default: the scenario's)")] = None,
    replications: Annotated[int | None, typer.Option(
        "--replications", "-r", min=1, help="replications (default: the scenario's)")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                         help="worker processes")] = 1,
    out: Annotated[Path | None, typer.Option(
        help="output folder (default: out/<scenario name>)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a field, e.g. --set agents.count=40 (repeatable)")] = None,
    events: Annotated[bool, typer.Option(help="write the event log (events.parquet)")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run a scenario's strategies, print the KPI table and write the results."""
    overrides = list(set_ or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    if replications is not None:
        overrides.append(f"replications={replications}")
    sc = load_scenario(scenario, overrides)
    arms_from = str(scenario)
    if strategy:
        arms_from = "--strategy"
        sc = with_arms(sc, [StrategySpec(use=command_line_reference(s)) for s in strategy],
                       arms_from, str(scenario))
    base_dir = scenario.parent.resolve()
    check_arms(sc.strategies, base_dir, arms_from, sc.decision.timeout_seconds)
    out_dir = out or default_out_dir(sc.name)
    check_output_folder(out_dir)
    cells = cells_of(sc)
    # Runs at once: each worker runs one; on a pool, this process also receives each
    # run's frames (about as much again as one run, at most).
    pooled = (workers > 1 and len(cells) > 1) or any(uses_plugin(c.spec) for c in cells)
    check_memory(run_memory_bytes(sc), min(workers, len(cells)) + (1 if pooled else 0),
                 what=f"{sc.population.size:,} accounts over {sc.horizon_days:g} days")
    show = not quiet and sys.stderr.isatty()
    # The folder is locked and checked writable before anything runs; each result's
    # frames are written (and dropped) as it arrives, and every file is put in place
    # once all are written.
    with OutputFolder(out_dir) as folder, progress_bar(len(cells), show) as bar:
        writer = ResultsWriter(folder, sc, events=events)
        task = bar.add_task(terminal_text(sc.name), total=len(cells))

        def done(result: Results) -> None:
            writer.add(result, release=True)
            bar.advance(task)

        try:
            # The event log of each run is spilled to the folder during the run, then
            # copied into events.parquet a row group at a time (or dropped: --no-events).
            results = run_cells(sc, cells, workers, base_dir=base_dir, on_done=done,
                                spill_events=writer.spill_file)
            info = run_info_text(command="run", scenario_file=scenario, overrides=overrides,
                                 strategies=strategy or ())
            folder.stage(RUN_INFO, lambda p: p.write_text(info, encoding="utf-8"))
            paths = writer.finish()
        except BrokenProcessPool:
            # Built-in strategies only (plug-in code runs in supervised children, which
            # name the strategy): a worker killed from outside, by the out-of-memory
            # killer say.
            raise UserError("a worker process died while running the strategies (killed "
                            "from outside, or memory ran out)", source=arms_from) from None
        finally:
            writer.discard()
    kpis = kpi_frame(results)
    console.print(kpi_table(kpis, f"{sc.name}: {sc.population.size:,} accounts, "
                                  f"{sc.horizon_days:g} days, pack {sc.compliance.pack}",
                            sc.currency))
    console.print(f"results in {terminal_text(out_dir)}{os.sep} "
                  f"({', '.join(p.name for p in paths.values())})",
                  markup=False, highlight=False, soft_wrap=True)
