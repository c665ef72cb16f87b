"""Helpers shared by the command modules: the consoles, the error guard, the progress
bar, the KPI table, strategy arms from the command line and output-folder checks."""

from __future__ import annotations

import functools
import hashlib
import re
import signal
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from simulator.errors import StrategyError, UserError, one_line
from simulator.experiments.compare import rough_note
from simulator.experiments.runner import summarise
from simulator.experiments.supervised import check_strategies
from simulator.formatting import format_interval, format_value
from simulator.kpis import TABLE_KPIS
from simulator.scenario import (
    Scenario,
    StrategySpec,
    scenario_from_dict,
)

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """contactsim received SIGTERM: stop as after Ctrl-C (children stopped, nothing
    half-written), with its own exit code. A KeyboardInterrupt, so that everything on the
    way treats it as the user's stop (never as a strategy's fault or a failed cell)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


#: ``--workers`` of the commands whose cells run on the local pool or on Dask.
PoolWorkers = Annotated[int | None, typer.Option(
    "--workers", "-w", min=1, help="local worker processes (default 1)")]
#: ``--scheduler`` of the same commands.
DaskScheduler = Annotated[str | None, typer.Option(
    help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (needs contactsim[dask]); "
         "default: a local process pool")]

#: Exit code after SIGTERM (128 + the signal's number, as a shell reports it).
EXIT_TERMINATED = 128 + signal.SIGTERM


def guarded(func: F) -> F:
    """Turn user mistakes into one line on stderr and exit code 2, never a traceback;
    Ctrl-C and SIGTERM into one line and exit codes 130 and 143."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        previous: Any = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Terminated:
            err_console.print("terminated")
            raise typer.Exit(EXIT_TERMINATED) from None
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
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


def terminal_text(value: object) -> str:
    """``value`` as text safe to print: line breaks, terminal escapes (ESC) and other
    control characters are shown escaped (``\\x1b``), never sent to the terminal.

    Scenario, sweep and arm names are the user's own text and reach the terminal in
    titles, headers and progress bars.
    """
    return one_line(str(value))


def kpi_label(label: str, kind: str, currency: str) -> str:
    """A KPI's row label, naming the currency of a money KPI."""
    return f"{label} ({currency})" if kind == "money" else label


def interval_caption(replications: int) -> str:
    """What a table's intervals are, and whether they are rough."""
    if replications < 2:
        return "one replication: no interval"
    text = (f"mean and [95% interval] over {replications} replications: the t-interval, "
            "kept inside what the KPI can take")
    rough = rough_note(replications)
    return f"{text}\n{rough}" if rough else text


def kpi_table(kpis: pd.DataFrame, title: str, currency: str) -> Table:
    """Strategies as columns, KPIs as rows; each cell the mean and, with replications,
    its 95 % interval (``summarise``: inside the KPI's range) below it."""
    summary = summarise(kpis)
    strategies = list(dict.fromkeys(kpis["strategy"]))
    reps = int(kpis.groupby("strategy").size().max())
    # Text, not markup: the title and headers carry the scenario's and arms' names.
    table = Table(title=Text(terminal_text(title), style="italic"),
                  caption=interval_caption(reps))
    table.add_column("KPI")
    for s in strategies:
        table.add_column(Text(terminal_text(s)), justify="right")
    idx = summary.set_index(["strategy", "kpi"])
    for key, label, kind in TABLE_KPIS:
        row = [kpi_label(label, kind, currency)]
        for s in strategies:
            if (s, key) not in idx.index:
                row.append("-")
                continue
            rec = idx.loc[(s, key)]
            text = format_value(float(rec["mean"]), kind)
            interval = format_interval(float(rec["ci_low"]), float(rec["ci_high"]), kind)
            row.append(f"{text}\n{interval}" if interval and reps > 1 else text)
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
    if sep and (target.endswith(".py") or "/" in target or "\\" in target) and not Path(
            target).is_absolute():
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


def specs_from_option(sc: Scenario, strategies: str | Sequence[str] | None
                      ) -> tuple[StrategySpec, ...]:
    """The arms named on the command line (``-s A -s B`` or ``-s A,B``; default the
    scenario's); a name of the scenario's arms keeps its params."""
    if not strategies:
        return sc.strategies
    given = [strategies] if isinstance(strategies, str) else list(strategies)
    own = {s.name: s for s in sc.strategies}
    names = [n.strip() for item in given for n in item.split(",") if n.strip()]
    return tuple(own.get(n, StrategySpec(use=command_line_reference(n))) for n in names)


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


def check_arms(specs: Sequence[StrategySpec], base_dir: Path, source: str,
               limit: float) -> None:
    """Build every arm once before anything runs, so that an unknown strategy or a bad
    parameter is reported naming where the arm was given (the scenario file or the
    option), not after the other arms have run. Plug-in code is built in a supervised
    child process, held to the time limit ``limit`` (never in this process)."""
    try:
        check_strategies(specs, base_dir, limit)
    except UserError as exc:
        raise StrategyError(str(exc), source=source) from None
