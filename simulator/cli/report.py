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
from simulator.errors import UserError


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
        help="output folder of contactsim run, compare, sweep, robust or power")],
    out: Annotated[Path | None, typer.Option(
        help="HTML file to write (default: DIR/report.html)")] = None,
    figures_as: Annotated[list[str] | None, typer.Option(
        "--figures", metavar="svg|pdf",
        help="also write every figure in this format beside the HTML, as "
             "<report>-<figure>.svg or .pdf (repeatable)")] = None,
) -> None:
    """Write one self-contained HTML report (KPI table, figures, resolved scenario)."""
    formats = list(dict.fromkeys(f.strip().lower().lstrip(".") for f in figures_as or ()))
    known = ("svg", "pdf")
    for fmt in formats:
        if fmt not in known:
            raise UserError(f"unknown figure format '{fmt}' (expected svg or pdf)",
                            source="--figures")
    report = _analysis_report()
    path, figures = report.write_report(folder, out, formats=formats)
    for fig in figures:
        if fig.error:
            err_console.print(Text.assemble(("warning:", "yellow"), f" figure '{fig.title}' "
                                            f"not drawn: {fig.error}"),
                              highlight=False, soft_wrap=True)
    drawn = sum(f.error is None for f in figures)
    files = [p for f in figures for p in f.files]
    also = f"; {len(files)} figure files beside it ({', '.join(formats)})" if files else ""
    console.print(f"report in {path} ({drawn} figure{'s' if drawn != 1 else ''}{also})",
                  markup=False, highlight=False, soft_wrap=True)
