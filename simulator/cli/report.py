"""``contactsim report DIR``: one self-contained HTML report of a results folder."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.text import Text

from simulator.cli.helpers import console, err_console, guarded


def _analysis_report() -> ModuleType:
    """``analysis.report``, imported lazily (matplotlib is slow to import).

    ``analysis`` lives beside ``simulator`` in the source tree; when the package was
    installed without it, the source tree is put on the path.
    """
    try:
        return importlib.import_module("analysis.report")
    except ModuleNotFoundError as exc:
        root = Path(__file__).resolve().parents[2]
        if exc.name != "analysis" or not (root / "analysis" / "__init__.py").is_file():
            raise
        sys.path.insert(0, str(root))
        return importlib.import_module("analysis.report")


@guarded
def report_command(
    folder: Annotated[Path, typer.Argument(
        help="output folder of contactsim run, compare, sweep or power")],
    out: Annotated[Path | None, typer.Option(
        help="HTML file to write (default: DIR/report.html)")] = None,
) -> None:
    """Write one self-contained HTML report (KPI table, figures, resolved scenario)."""
    report = _analysis_report()
    path, figures = report.write_report(folder, out)
    for fig in figures:
        if fig.error:
            err_console.print(Text.assemble(("warning:", "yellow"), f" figure '{fig.title}' "
                                            f"not drawn: {fig.error}"),
                              highlight=False, soft_wrap=True)
    drawn = sum(f.error is None for f in figures)
    console.print(f"report in {path} ({drawn} figure{'s' if drawn != 1 else ''})",
                  markup=False, highlight=False, soft_wrap=True)
