"""``contactsim check``: run the regression scenarios and hold their KPIs to baselines.

Exit codes: 0 every KPI inside its band, 1 some KPI left its band (each is named),
2 bad input (a missing file, a baseline or scenario that does not validate).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simulator.cli.helpers import console, err_console, guarded, progress_bar
from simulator.errors import UserError
from simulator.experiments.compare import ROUGH_BELOW
from simulator.experiments.regression import (
    Case,
    Change,
    KpiBaseline,
    Observed,
    Verdict,
    cell_count,
    evaluate,
    failures,
    load_cases,
    observe,
    rebaseline,
    scenario_hash,
    write_baseline,
)

DEFAULT_PATH = Path("scenarios/regression")


def number(x: float) -> str:
    """A KPI value, short but with the digits that matter."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e12:
        return f"{x:,.0f}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def band_text(low: float, high: float) -> str:
    if math.isnan(low) and math.isnan(high):
        return "nan"
    if low == high:
        return f"= {number(low)}"
    return f"[{number(low)}, {number(high)}]"


def deviation(v: Verdict) -> str:
    """How far the observed value is from the expected one, in the band's own unit."""
    if math.isnan(v.observed) or math.isnan(v.expected):
        return "-"
    diff = v.observed - v.expected
    if diff == 0:
        return "0"
    if v.tolerance is not None:
        return f"{diff:+.3g}"
    if v.mode == "replications":
        return f"{diff / v.se:+.1f} se" if v.se else f"{diff:+.3g}"
    scale = abs(v.expected) if v.expected else 1.0
    return f"{diff / scale:+.1e} rel"


def entry_text(e: KpiBaseline | None) -> str:
    if e is None:
        return "-"
    if e.tolerance is not None:
        return f"{number(e.expected)} ± {number(e.tolerance)}"
    if e.band is not None:
        return f"{number(e.expected)} {band_text(*e.band)}"
    return number(e.expected)


def _output_console() -> Console:
    # In a CI log (not a terminal) rich would fold the table to 80 columns.
    return console if console.is_terminal else Console(width=140, highlight=False)


Observation = dict[str, dict[str, Observed]]


def _run_all(cases: list[Case], workers: int, quiet: bool) -> tuple[list[Observation], float]:
    show = not quiet and sys.stderr.isatty()
    total = sum(cell_count(c) for c in cases)
    observed: list[Observation] = []
    start = time.perf_counter()
    with progress_bar(total, show) as bar:
        task = bar.add_task("check", total=total)
        for case in cases:
            t0 = time.perf_counter()
            bar.update(task, description=case.name)
            observed.append(observe(case, workers, on_done=lambda _r: bar.advance(task)))
            if not quiet:
                err_console.print(f"{case.name}: {_count(cell_count(case), 'run')} in "
                                  f"{time.perf_counter() - t0:.1f} s", highlight=False,
                                  markup=False)
    return observed, time.perf_counter() - start


def _write_json(path: Path, verdicts: list[Verdict]) -> None:
    try:
        path.write_text(json.dumps([v.as_dict() for v in verdicts], indent=1) + "\n",
                        encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror})", source=str(path)) from None


@guarded
def check_command(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="regression scenario files or folders of them "
             f"(default: {DEFAULT_PATH})", show_default=False)] = None,
    update: Annotated[bool, typer.Option(
        "--update", help="rewrite the baselines from this run, showing old and new values "
                         "(creates missing ones)")] = False,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                         help="worker processes")] = 1,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="also write the verdicts to this JSON file")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="print only the verdict: one line, or the KPIs that left "
                              "their band (no progress, timings or table)")] = False,
) -> None:
    """Run regression scenarios and check each KPI against its baseline band.

    Exit code 0 when every KPI is inside its band, 1 when any left it, 2 for bad input.
    """
    if not paths and not DEFAULT_PATH.exists():
        raise UserError(f"no regression scenarios here: contactsim check looks for them in "
                        f"{DEFAULT_PATH}{os.sep} under the working folder ({Path.cwd()}); run "
                        "it from the project's root or name the files or folders to check",
                        source=str(DEFAULT_PATH))
    cases = load_cases(paths or [DEFAULT_PATH], update=update)
    observed, elapsed = _run_all(cases, workers, quiet)
    out = _output_console()
    if update:
        _report_update(out, cases, observed)
        return
    verdicts: list[Verdict] = []
    for case, obs in zip(cases, observed, strict=True):
        verdicts.extend(evaluate(case, obs))
    if json_out is not None:
        _write_json(json_out, verdicts)
    table = Table(title="contactsim check", caption="band: mean ± k se over the replications, "
                  "within what the KPI can take, or = exact value (deterministic)")
    # Names may wrap in a narrow terminal; numbers never do.
    for name in ("scenario", "arm", "KPI"):
        table.add_column(name, overflow="fold")
    for name in ("expected band", "observed", "deviation"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for v in verdicts:
        status = "ok" if v.passed else f"[bold red]FAIL ({v.status})[/]"
        table.add_row(escape(v.scenario), escape(v.arm), escape(v.kpi),
                      band_text(v.low, v.high), number(v.observed),
                      deviation(v), status)
    if not quiet:
        out.print(table)
    for note in _notes(cases):
        out.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    failed = failures(verdicts)
    runs = sum(cell_count(c) for c in cases)
    if not failed:
        out.print(f"all {_count(len(verdicts), 'KPI')} of {_count(len(cases), 'scenario')} "
                  f"inside their bands ({_count(runs, 'run')}, {elapsed:.1f} s)",
                  highlight=False, soft_wrap=True, markup=False)
        return
    out.print(f"{len(failed)} of {_count(len(verdicts), 'KPI')} left their band:", highlight=False,
              soft_wrap=True, markup=False)
    for v in failed:
        out.print(f"  {v.label}: observed {number(v.observed)}, expected "
                  f"{band_text(v.low, v.high)} ({v.status}, {deviation(v)})",
                  highlight=False, soft_wrap=True, markup=False)
    out.print("if the change is intended, rewrite the baselines with "
              "`contactsim check --update`", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(1)


def _notes(cases: list[Case]) -> list[str]:
    """What a reader of the verdicts should know: a baseline written for another version of
    its scenario, and bands from fewer replications than intervals need."""
    notes = []
    for case in cases:
        assert case.baseline is not None
        if case.baseline.scenario_hash not in (None, scenario_hash(case.scenario)):
            notes.append(f"{case.scenario_path} differs from the scenario its baseline was "
                         "written for")
        reps = case.baseline.replications
        if case.baseline.mode == "replications" and reps < ROUGH_BELOW:
            notes.append(f"{case.name}: its bands come from {reps} replications, so they are "
                         f"rough (the standard error is estimated from {reps} values); set "
                         f"replications: {ROUGH_BELOW} or more in {case.baseline_path.name} "
                         "and rerun --update")
    return notes


def _report_update(out: Console, cases: list[Case], observed: list[Observation]) -> None:
    table = Table(title="contactsim check --update")
    for name in ("scenario", "arm", "KPI"):
        table.add_column(name, overflow="fold")
    for name in ("old", "new"):
        table.add_column(name, no_wrap=True)
    written: list[Path] = []
    notes: list[str] = []
    for case, obs in zip(cases, observed, strict=True):
        upd = rebaseline(case, obs)
        for ch in upd.changes:
            table.add_row(escape(case.name), escape(ch.arm), escape(ch.kpi),
                          entry_text(ch.old), _new_text(ch))
        for arm in upd.dropped_arms:
            notes.append(f"{case.name}: arm '{arm}' is no longer in the scenario; dropped")
        reps = upd.baseline.replications
        if upd.baseline.mode == "replications" and reps < ROUGH_BELOW:
            notes.append(f"{case.name}: bands from {reps} replications are rough; "
                         f"{ROUGH_BELOW} or more give bands to rely on")
        write_baseline(case, upd.baseline)
        written.append(case.baseline_path)
    out.print(table)
    for note in notes:
        out.print(note, highlight=False, soft_wrap=True, markup=False)
    for path in written:
        out.print(f"wrote {path}", highlight=False, soft_wrap=True, markup=False)


def _new_text(ch: Change) -> str:
    text = entry_text(ch.new)
    if ch.old is not None and ch.old.expected == ch.new.expected:
        return text + " (same)"
    return text
