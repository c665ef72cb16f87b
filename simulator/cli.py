"""The ``contactsim`` command line."""

from __future__ import annotations

import functools
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.errors import UserError
from simulator.kpis import TABLE_KPIS
from simulator.runner import cells_of, kpi_frame, run_cells, summarise, write_outputs
from simulator.scenario import StrategySpec, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate contact strategies for delinquent consumer-credit borrowers.",
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])



def guarded(func: F) -> F:
    """Turn user mistakes into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except UserError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception:
            # Not the user's mistake: a bug. Show everything, and keep exit code 1 for
            # "a regression check failed".
            traceback.print_exc()
            err_console.print("[bold red]internal error[/]: please report it with the "
                              "traceback above")
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def format_value(value: float, kind: str, half: float = math.nan) -> str:
    if not math.isfinite(value):
        return "-"
    if kind == "pct":
        text = f"{100 * value:.1f}%"
        extra = f" ± {100 * half:.1f}" if math.isfinite(half) else ""
    elif kind == "money":
        text = f"{value:,.0f}"
        extra = f" ± {half:,.0f}" if math.isfinite(half) else ""
    elif kind == "ratio":
        text = f"{value:.4f}"
        extra = f" ± {half:.4f}" if math.isfinite(half) else ""
    elif kind == "int":
        text = f"{value:,.0f}"
        extra = f" ± {half:,.0f}" if math.isfinite(half) else ""
    else:
        text = f"{value:.2f}"
        extra = f" ± {half:.2f}" if math.isfinite(half) else ""
    return text + extra


def kpi_table(kpis: pd.DataFrame, title: str) -> Table:
    """Strategies as columns, KPIs as rows; mean ± 95 % half-width with replications."""
    summary = summarise(kpis)
    strategies = list(dict.fromkeys(kpis["strategy"]))
    reps = int(kpis.groupby("strategy").size().max())
    table = Table(title=title, caption=(f"mean ± 95% CI half-width over {reps} replications"
                                        if reps > 1 else "one replication"))
    table.add_column("KPI")
    for s in strategies:
        table.add_column(s, justify="right")
    idx = summary.set_index(["strategy", "kpi"])
    for key, label, kind in TABLE_KPIS:
        row = [label]
        for s in strategies:
            if (s, key) not in idx.index:
                row.append("-")
                continue
            rec = idx.loc[(s, key)]
            half = (rec["ci_high"] - rec["mean"]) if reps > 1 else math.nan
            row.append(format_value(float(rec["mean"]), kind, float(half)))
        table.add_row(*row)
    return table


def progress_bar(total: int, enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, disable=not enabled,
                    transient=True)


def command_line_reference(ref: str) -> str:
    """A ``file.py:Class`` given on the command line is relative to the working folder
    (a reference inside a scenario file is relative to that file)."""
    target, sep, attr = ref.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target) and not Path(target).is_absolute():
        return f"{Path(target).resolve()}:{attr}"
    return ref


@app.callback()
def _root() -> None:
    """Simulate contact strategies for delinquent consumer-credit borrowers."""


@app.command("run")
@guarded
def run_command(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", "-s",
        help="strategy to run (repeatable): built-in name, module:Class or file.py:Class; "
             "default: the scenario's strategies")] = None,
    seed: Annotated[int | None, typer.Option(help="root seed (default: the scenario's)")] = None,
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
    if strategy:
        specs = tuple(StrategySpec(use=command_line_reference(s)) for s in strategy)
        sc = sc.model_copy(update={"strategies": specs})
        sc = type(sc).model_validate(sc.model_dump())  # re-check unique names
    out_dir = out or Path("out") / sc.name
    cells = cells_of(sc)
    show = not quiet and sys.stderr.isatty()
    with progress_bar(len(cells), show) as bar:
        task = bar.add_task(f"{sc.name}", total=len(cells))
        results = run_cells(sc, cells, workers, base_dir=scenario.parent.resolve(),
                            on_done=lambda _r: bar.advance(task))
    paths = write_outputs(results, sc, out_dir, events=events)
    kpis = kpi_frame(results)
    console.print(kpi_table(kpis, f"{sc.name}: {sc.population.size:,} accounts, "
                                  f"{sc.horizon_days:g} days, pack {sc.compliance.pack}"))
    console.print(f"results in {out_dir}{os.sep} ({', '.join(p.name for p in paths.values())})")


@app.command("params")
@guarded
def params_command() -> None:
    """Print the scenario reference: every field, its default and meaning (Markdown)."""
    from simulator.reference import scenario_reference

    typer.echo(scenario_reference())


def main() -> None:
    """Console-script entry point."""
    app()


# Sub-commands register themselves on ``app`` when imported.
import simulator.commands  # noqa: E402,F401

if __name__ == "__main__":
    main()
