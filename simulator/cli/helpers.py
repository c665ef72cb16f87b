"""Helpers shared by the command modules: the consoles, the error guard, the progress
bar, the KPI table, strategy arms from the command line and output-folder checks."""

from __future__ import annotations

import functools
import hashlib
import math
import re
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from simulator.errors import StrategyError, UserError, one_line
from simulator.experiments.runner import summarise
from simulator.formatting import format_value
from simulator.kpis import TABLE_KPIS
from simulator.scenario import (
    Scenario,
    StrategySpec,
    scenario_from_dict,
)
from simulator.strategies import build_strategy

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
            # Text, not markup: the message quotes file names, fields and values as given.
            err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)),
                              highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except MemoryError:
            # A resource limit, not a bug: the memory check before the run let it start
            # (or was turned off) and memory still ran out.
            err_console.print(Text.assemble(
                ("error:", "bold red"), " out of memory (a resource error, not a bug): "
                "use a smaller population.size or horizon_days, fewer --workers, or a "
                "machine with more memory"), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except Exception:
            # Not the user's mistake: a bug. Show everything, and keep exit code 1 for
            # "a regression check failed".
            traceback.print_exc()
            err_console.print(Text.assemble(("internal error", "bold red"),
                                            ": please report it with the traceback above"))
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def terminal_text(value: object) -> str:
    """``value`` as text safe to print: line breaks, terminal escapes (ESC) and other
    control characters are shown escaped (``\\x1b``), never sent to the terminal.

    Scenario, sweep and arm names are the user's own text and reach the terminal in
    titles, headers and progress bars.
    """
    return one_line(str(value))


def kpi_table(kpis: pd.DataFrame, title: str) -> Table:
    """Strategies as columns, KPIs as rows; mean ± 95 % half-width with replications."""
    summary = summarise(kpis)
    strategies = list(dict.fromkeys(kpis["strategy"]))
    reps = int(kpis.groupby("strategy").size().max())
    # Text, not markup: the title and headers carry the scenario's and arms' names.
    table = Table(title=Text(terminal_text(title), style="italic"),
                  caption=(f"mean ± 95% CI half-width over {reps} replications"
                           if reps > 1 else "one replication"))
    table.add_column("KPI")
    for s in strategies:
        table.add_column(Text(terminal_text(s)), justify="right")
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
    # The description is a scenario or sweep name: never read as markup, and passed
    # through ``terminal_text`` by the commands.
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


#: The longest default output folder name, in UTF-8 bytes (file systems allow 255).
MAX_FOLDER_NAME_BYTES = 100


def default_out_dir(name: str) -> Path:
    """``out/<name>`` with the name made one plain folder name: a scenario named ``../x``
    or ``/etc`` is data, and must not steer where results go.

    A name longer than ``MAX_FOLDER_NAME_BYTES`` is cut and ends with 8 hex digits of
    its SHA-256, so that two long names that share their start stay two folders.
    """
    folder = re.sub(r"[^\w.-]+", "_", name).lstrip("._") or "scenario"
    encoded = folder.encode("utf-8")
    if len(encoded) > MAX_FOLDER_NAME_BYTES:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cut = encoded[:MAX_FOLDER_NAME_BYTES - 9].decode("utf-8", "ignore")
        folder = f"{cut}-{digest}"
    return Path("out") / folder


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
