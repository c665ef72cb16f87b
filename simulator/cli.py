"""The ``contactsim`` command line."""

from __future__ import annotations

import functools
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from simulator.errors import StrategyError, UserError
from simulator.formatting import format_value
from simulator.kpis import TABLE_KPIS
from simulator.runner import cells_of, kpi_frame, run_cells, summarise, write_outputs
from simulator.scenario import (
    Scenario,
    StrategySpec,
    load_scenario,
    scenario_from_dict,
)
from simulator.strategies import build_strategy

try:  # Typer 0.2x vendors click and raises its own copy of click's exceptions.
    from typer._click import exceptions as click_exceptions
except ImportError:  # older Typer uses click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def one_line_message(text: str) -> str:
    """``text`` on one line: click wraps some messages and appends suggestions."""
    return " ".join(text.split())


def usage_error_line(exc: click_exceptions.UsageError) -> str:
    """A usage error as ``error: <message> (see <command> --help)``."""
    message = one_line_message(exc.format_message())
    param = getattr(exc, "param", None)
    if isinstance(exc, click_exceptions.MissingParameter) and getattr(param, "help", None):
        message += f" ({one_line_message(param.help)})"  # type: ignore[union-attr]
    # Some parser errors (an option without its value) come without the command.
    command = f"{exc.ctx.command_path} " if exc.ctx is not None else ""
    return f"error: {message} (see {command}--help)"


class OneLineErrors(TyperGroup):
    """The ``contactsim`` group: command-line usage errors are one line and exit code 2.

    Typer's own reporting is a multi-line box; the group runs the commands with
    ``standalone_mode=False`` so that click's exceptions reach us instead, and exits with
    the code a command gave (``typer.Exit``). Being the group's ``main``, this covers the
    console script, ``python -m simulator`` and Typer's test runner alike.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            # Returns what the command returned (None) or the code of a ``typer.Exit``.
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, windows_expand_args=windows_expand_args,
                                **extra)
        except click_exceptions.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                # ``contactsim`` alone: the help was the answer (Typer has printed it).
                help_text = exc.format_message()
                if help_text.strip():
                    typer.echo(help_text)
            else:
                err_console.print(usage_error_line(exc), markup=False, highlight=False,
                                  soft_wrap=True)
            code = exc.exit_code
        except click_exceptions.ClickException as exc:
            err_console.print(f"error: {one_line_message(exc.format_message())}",
                              markup=False, highlight=False, soft_wrap=True)
            code = exc.exit_code
        except typer.Abort:
            err_console.print("aborted", markup=False, highlight=False)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate contact strategies for delinquent consumer-credit borrowers.",
)


def guarded(func: F) -> F:
    """Turn user mistakes into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except UserError as exc:
            # Text, not markup: the message quotes file names, fields and values as given.
            err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)),
                              highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception:
            # Not the user's mistake: a bug. Show everything, and keep exit code 1 for
            # "a regression check failed".
            traceback.print_exc()
            err_console.print(Text.assemble(("internal error", "bold red"),
                                            ": please report it with the traceback above"))
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def kpi_table(kpis: pd.DataFrame, title: str) -> Table:
    """Strategies as columns, KPIs as rows; mean ± 95 % half-width with replications."""
    summary = summarise(kpis)
    strategies = list(dict.fromkeys(kpis["strategy"]))
    reps = int(kpis.groupby("strategy").size().max())
    # Text, not markup: the title and headers carry the scenario's and arms' names.
    table = Table(title=Text(title, style="italic"),
                  caption=(f"mean ± 95% CI half-width over {reps} replications"
                           if reps > 1 else "one replication"))
    table.add_column("KPI")
    for s in strategies:
        table.add_column(Text(str(s)), justify="right")
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
    # The description is a scenario or sweep name: shown as it is, never read as markup.
    return Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, disable=not enabled,
                    transient=True)


def command_line_reference(ref: str) -> str:
    """A ``file.py:Class`` given on the command line is relative to the working folder
    (a reference inside a scenario file is relative to that file)."""
    target, sep, attr = ref.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target) and not Path(target).is_absolute():
        return f"{Path(target).resolve()}:{attr}"
    return ref


def default_out_dir(name: str) -> Path:
    """``out/<name>`` with the name made one plain folder name: a scenario named ``../x``
    or ``/etc`` is data, and must not steer where results go."""
    folder = re.sub(r"[^\w.-]+", "_", name).lstrip("._")
    return Path("out") / (folder or "scenario")


def check_output_folder(out_dir: Path) -> None:
    """Refuse, before anything runs, an output folder that cannot be created (a file, or
    a path under a file), rather than lose the results at the end."""
    for folder in (out_dir, *out_dir.parents):
        if folder.is_dir():
            return
        if folder.exists():
            where = "it is a file" if folder == out_dir else f"{folder} is a file"
            raise UserError(f"cannot be the output folder: {where}", source=str(out_dir))


def with_arms(sc: Scenario, specs: Sequence[StrategySpec], option: str,
              source: str) -> Scenario:
    """``sc`` with the arms named on the command line (``option``); each may run once,
    as results are keyed by the arm's name."""
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError("strategies must be unique; given more than once: "
                        f"{', '.join(repeated)}", source=option)
    data = sc.to_dict()
    data["strategies"] = [s.model_dump(mode="json") for s in specs]
    return scenario_from_dict(data, source=source)


def check_arms(specs: Sequence[StrategySpec], base_dir: Path, source: str) -> None:
    """Build every arm once before anything runs, so that an unknown strategy or a bad
    parameter is reported naming where the arm was given (the scenario file or the
    option), not after the other arms have run."""
    for spec in specs:
        try:
            build_strategy(spec, np.random.default_rng(0), base_dir)
        except UserError as exc:
            raise StrategyError(str(exc), source=source) from None


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
    arms_from = str(scenario)
    if strategy:
        arms_from = "--strategy"
        sc = with_arms(sc, [StrategySpec(use=command_line_reference(s)) for s in strategy],
                       arms_from, str(scenario))
    base_dir = scenario.parent.resolve()
    check_arms(sc.strategies, base_dir, arms_from)
    out_dir = out or default_out_dir(sc.name)
    check_output_folder(out_dir)
    cells = cells_of(sc)
    show = not quiet and sys.stderr.isatty()
    with progress_bar(len(cells), show) as bar:
        task = bar.add_task(sc.name, total=len(cells))
        try:
            results = run_cells(sc, cells, workers, base_dir=base_dir,
                                on_done=lambda _r: bar.advance(task))
        except BrokenProcessPool:
            # A strategy that ends its process (os._exit, a crash in native code) or the
            # out-of-memory killer: the pool cannot say which arm it was.
            raise UserError("a worker process died while running the strategies (a strategy "
                            "that exits its process or crashes, or memory ran out)",
                            source=arms_from) from None
    paths = write_outputs(results, sc, out_dir, events=events)
    kpis = kpi_frame(results)
    console.print(kpi_table(kpis, f"{sc.name}: {sc.population.size:,} accounts, "
                                  f"{sc.horizon_days:g} days, pack {sc.compliance.pack}"))
    console.print(f"results in {out_dir}{os.sep} ({', '.join(p.name for p in paths.values())})",
                  markup=False, highlight=False, soft_wrap=True)


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
