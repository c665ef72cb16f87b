"""Running a list of cells once: reuse the finished ones, compute the rest on a backend.

Every experiment (a sweep, a comparison, a calibration's trials, a robustness
analysis's draws, a power analysis's repetitions) is a list of ``CellTask``s whose
results are cached by key in a ``cells/`` folder. ``run_cached`` reads what is there,
computes only the missing, unreadable, failed, outdated or invalid cells (a checksum
that does not match, impossible KPIs: ``cells.check_cell``), and writes each
atomically as it arrives, so an interrupted experiment resumes where it stopped and
never computes a finished cell twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import UserError
from simulator.experiments.backends import Backend, run_tasks
from simulator.experiments.cells import CellTask, cell_record, check_cell, write_cell
from simulator.experiments.outputs import OutputFolder, temporary_path


@contextmanager
def locked_folder(out_dir: Path, backend: Backend) -> Iterator[OutputFolder]:
    """``out_dir`` opened and locked (``OutputFolder``) for an experiment whose cells run
    on ``backend``; on any failure, the folder refused before any cell ran included,
    the backend's cells are cancelled before the error goes on."""
    try:
        with OutputFolder(out_dir) as folder:
            yield folder
    except BaseException:
        backend.close(cancel=True)
        raise


@dataclass
class CellRun:
    """What ``run_cached`` did, and the finished records by key."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    cells: int = 0
    computed: int = 0
    reused: int = 0
    failed: int = 0
    replaced: int = 0
    invalid: int = 0
    stopped: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)


def run_cached(tasks: Sequence[CellTask], cells_dir: Path, backend: Backend, *,
               fail_fast: bool = False,
               on_progress: Callable[[int, int], None] | None = None) -> CellRun:
    """Finish every task of ``tasks`` (each key once), reusing cell files in ``cells_dir``.

    ``on_progress(done, total)`` is called after the scan and after every computed cell.
    The backend is closed when done (cancelling what is in flight if stopped early).
    """
    try:
        cells_dir.mkdir(parents=True, exist_ok=True)
        temporary_path(cells_dir / "probe").unlink()  # writable, before any cell runs
    except OSError as exc:
        raise UserError(f"cannot write to the cells folder ({exc.strerror})",
                        source=str(cells_dir)) from None
    unique: dict[str, CellTask] = {}
    for task in tasks:
        unique.setdefault(task.key, task)
    out = CellRun(cells=len(unique))
    todo: list[CellTask] = []
    for key, task in unique.items():
        record, why = check_cell(cells_dir / f"{key}.json", key)
        if record is not None:
            out.records[key] = record
            out.reused += 1
        else:
            if why != "missing":
                out.replaced += 1
            if why is not None and why.startswith("invalid"):
                out.invalid += 1
            todo.append(task)
    done = out.reused
    if on_progress:
        on_progress(done, out.cells)
    stream = run_tasks(backend, todo)
    finished = False
    try:
        for task, outcome in stream:
            if isinstance(outcome, BaseException):
                outcome = cell_record(task, "failed", f"{type(outcome).__name__}: {outcome}")
            elif not isinstance(outcome, dict) or outcome.get("key") != task.key:
                # A worker of a cluster sent back something else than this cell's record.
                outcome = cell_record(task, "failed", "the worker returned no record of "
                                      "this cell")
            write_cell(cells_dir, task.key, outcome)
            done += 1
            if outcome["status"] == "ok":
                out.records[task.key] = outcome
                out.computed += 1
            else:
                out.failed += 1
                out.failures.append(outcome)
            if on_progress:
                on_progress(done, out.cells)
            if fail_fast and outcome["status"] != "ok":
                out.stopped = True
                break
        finished = not out.stopped
    finally:
        stream.close()
        backend.close(cancel=not finished)
    return out
