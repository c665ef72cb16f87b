"""Writing results: a locked output folder that always holds one complete run, the run's
frames streamed to Parquet as each result arrives, the KPI tables and the resolved scenario.

An output folder (``OutputFolder``) is locked while a command writes to it, so that two
commands never write into one folder at once (the second is refused). Every file of a
run is written under a unique temporary name and put in place only once all are
written; then the files an earlier contactsim command wrote there and this one did not
are removed. Which files those are is read from the folder's record (``.contactsim.json``),
so a file contactsim did not write is never removed, and a sweep's ``cells/`` is kept.

The frames (events, daily, accounts, agents_daily) are written a row group at a time as each result
arrives (``ResultsWriter``), never concatenated in memory. In the written files a time
that never happened (``inf`` in memory: an account never paid, never charged off) is
written as NaN (null): the in-memory ``Results`` and the KPIs keep ``inf``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from simulator.engine import Results, twin_file
from simulator.errors import UserError
from simulator.experiments.runner import kpi_frame, summarise
from simulator.memory import release_free_memory
from simulator.scenario import Scenario

#: Every file name a contactsim command writes into an output folder. Only these are
#: ever removed, and only when the folder's record says contactsim wrote them.
KNOWN_OUTPUTS: frozenset[str] = frozenset({
    "kpis.csv", "summary.csv", "daily.parquet", "accounts.parquet", "events.parquet",
    "agents_daily.parquet", "kpis_by_arm.csv", "scenario.resolved.yaml", "kpis.parquet",
    "comparison.csv", "comparison.parquet", "sweep.resolved.yaml", "run.yaml",
    # contactsim robust
    "robust.resolved.yaml", "results.csv", "ranking.csv", "pairwise.csv", "sensitivity.csv",
    "where.csv",
    # contactsim power
    "power.csv", "repetitions.csv", "power.json",
    # contactsim calibrate (its study.db is the resume state, like cells/: never removed)
    "calibration.resolved.yaml", "targets.yaml", "calibrated.yaml", "estimates.csv",
    "fit.csv", "draws.csv"})

#: The folder's record of the files contactsim wrote there (hidden, JSON).
RECORD = ".contactsim.json"

#: Temporary files are ``.<name>.contactsim-<random>.tmp``: unique, so that two writers
#: never share one, and recognisable, so that one left by a killed command is removed.
_TEMP_INFIX = ".contactsim-"
_TEMPORARY = re.compile(r"^\..+\.contactsim-[A-Za-z0-9_]+\.tmp$")

#: Rows of a frame converted and written at a time (one Parquet row group): 65,536 rows
#: of the accounts frame are about 20 MB, held two or three times while converted.
ROWS_PER_GROUP = 1 << 16

#: The frames of a run and their files.
FRAMES: tuple[tuple[str, str], ...] = (
    ("daily", "daily.parquet"), ("accounts", "accounts.parquet"), ("events", "events.parquet"),
    ("agents_daily", "agents_daily.parquet"))


# --------------------------------------------------------------------------- files


def temporary_path(path: Path) -> Path:
    """A new, empty, uniquely named file beside ``path`` (created exclusively, so a link
    planted in its place cannot steer the write)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{_TEMP_INFIX}",
                                suffix=".tmp")
    os.close(fd)
    return Path(name)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a unique temporary file and rename, so a reader never sees half a
    file and two writers never share a temporary file."""
    tmp: Path | None = None
    try:
        tmp = temporary_path(path)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write ({exc.strerror})", source=str(path)) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def create_output_folder(out_dir: Path) -> None:
    """Create ``out_dir`` and its parents, or say in one line why it cannot be."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder ({exc.strerror})",
                        source=str(out_dir)) from None
    except ValueError as exc:  # e.g. a NUL character in the name
        raise UserError(f"cannot create output folder ({exc})",
                        source=repr(str(out_dir))) from None


def resolved_scenario_text(scenario: Scenario) -> str:
    """Every parameter the run used, as YAML: the run can be repeated from this file."""
    return yaml.safe_dump(scenario.to_dict(), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- the folder


class OutputFolder:
    """An output folder being written by one command: locked, checked writable, its new
    files staged under temporary names and put in place together by ``commit``.

    Use as a context manager, opened before any run starts (so that a folder that
    cannot be written, or one another command is writing, is refused at once). On exit
    without a commit the staged files are removed, and the folder too if this command
    created it and it is empty.
    """

    def __init__(self, path: Path):
        self.path = path
        self._created: list[Path] = []  # folders this command created, deepest first
        self._lock_fd: int | None = None
        self._staged: dict[str, Path] = {}

    def __enter__(self) -> OutputFolder:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Create, lock and check the folder; remove temporaries a killed command left."""
        self._created = [f for f in (self.path, *self.path.parents) if not f.exists()]
        create_output_folder(self.path)
        try:
            self._lock_fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise UserError(f"cannot open output folder ({exc.strerror})",
                            source=str(self.path)) from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError("another contactsim command is writing to this folder; "
                                "wait for it to finish or choose another output folder",
                                source=str(self.path)) from None
            raise UserError(f"cannot lock output folder ({exc.strerror})",
                            source=str(self.path)) from None
        try:
            probe = temporary_path(self.path / "probe")
            probe.unlink()
        except OSError as exc:
            self.close()
            raise UserError(f"cannot write to the output folder ({exc.strerror})",
                            source=str(self.path)) from None
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Temporary files of a command that was killed (none is running: we hold the lock)."""
        for folder in (self.path, self.path / "cells"):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if _TEMPORARY.match(name):
                    with contextlib.suppress(OSError):
                        (folder / name).unlink()

    def staged_file(self, name: str) -> Path:
        """A new temporary file that becomes ``name`` at ``commit`` (replacing any staged)."""
        if name not in KNOWN_OUTPUTS:
            raise ValueError(f"{name} is not an output file")
        old = self._staged.pop(name, None)
        if old is not None:
            old.unlink(missing_ok=True)
        try:
            tmp = temporary_path(self.path / name)
        except OSError as exc:
            raise UserError(f"cannot write ({exc.strerror})",
                            source=str(self.path / name)) from None
        self._staged[name] = tmp
        return tmp

    def stage(self, name: str, write: Callable[[Path], object]) -> None:
        """Write ``name`` under a temporary name; it is put in place by ``commit``."""
        tmp = self.staged_file(name)
        try:
            write(tmp)
        except OSError as exc:
            raise UserError(f"cannot write ({exc.strerror})",
                            source=str(self.path / name)) from None

    def adopt(self, name: str, tmp: Path) -> None:
        """Stage an already written temporary file of this folder as ``name``."""
        old = self._staged.pop(name, None)
        if old is not None and old != tmp:
            old.unlink(missing_ok=True)
        self._staged[name] = tmp

    def recorded(self) -> set[str]:
        """The files the folder's record says contactsim wrote (known names only)."""
        try:
            data = json.loads((self.path / RECORD).read_text(encoding="utf-8"))
            files = data.get("files", []) if isinstance(data, dict) else []
        except (OSError, ValueError):
            return set()
        return {f for f in files if isinstance(f, str) and f in KNOWN_OUTPUTS}

    def _write_record(self, names: set[str], command: str) -> None:
        text = json.dumps({"written_by": command, "files": sorted(names)}, indent=1) + "\n"
        atomic_write(self.path / RECORD, lambda p: p.write_text(text, encoding="utf-8"))

    def commit(self, command: str) -> dict[str, Path]:
        """Put every staged file in place, then remove the earlier command's other files.

        The record first lists both sets (so that a command killed half-way through
        leaves a record of everything contactsim may have written), then this command's.
        """
        previous = self.recorded()
        staged = dict(self._staged)
        self._write_record(previous | set(staged), command)
        placed: dict[str, Path] = {}
        for name, tmp in staged.items():
            target = self.path / name
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise UserError(f"cannot put the results in place ({exc.strerror})",
                                source=str(target)) from None
            del self._staged[name]
            placed[name] = target
        for name in sorted(previous - set(staged)):
            stale = self.path / name
            if stale.is_symlink() or stale.is_file():
                try:
                    stale.unlink()
                except OSError as exc:
                    raise UserError(f"cannot remove an earlier run's file ({exc.strerror})",
                                    source=str(stale)) from None
        self._write_record(set(staged), command)
        return placed

    def close(self) -> None:
        """Remove what was staged and not committed, unlock, and remove the folders this
        command created if it left them empty."""
        for tmp in self._staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None
        for created in self._created:
            try:
                created.rmdir()  # only if empty
            except OSError:
                break
        self._created = []


# --------------------------------------------------------------------------- frames


def _is_time_column(name: str) -> bool:
    """A column holding a time (``t``, ``t_paid``, ``twin_t_paid``...)."""
    return name == "t" or name.startswith("t_") or "_t_" in name


def as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as its file holds it: a time that never happened (inf) is NaN."""
    out = frame
    for name in frame.columns:
        col = frame[name]
        if _is_time_column(str(name)) and pd.api.types.is_float_dtype(col.dtype):
            values = col.to_numpy()
            never = np.isinf(values)
            if never.any():
                if out is frame:
                    out = frame.copy(deep=False)
                out[name] = np.where(never, np.nan, values)
    return out


def with_ids(frame: pd.DataFrame, strategy: str, replication: int) -> pd.DataFrame:
    """``frame`` with the ``strategy`` and ``replication`` columns first (a copy)."""
    f = frame.copy()
    f.insert(0, "replication", replication)
    f.insert(0, "strategy", strategy)
    return f


def _slice_with_ids(frame: pd.DataFrame, start: int, stop: int, strategy: str,
                    replication: int) -> pd.DataFrame:
    """Rows ``start:stop`` of ``frame`` with the id columns first, as ``with_ids`` gives
    them, without copying the frame's columns."""
    piece = frame.iloc[start:stop]
    columns: dict[str, object] = {"strategy": strategy, "replication": replication}
    columns.update((str(name), piece[name]) for name in piece.columns)
    return pd.DataFrame(columns, index=piece.index, copy=False)


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding in Parquet: categories, strings (the
    strategy) and small integers (codes). Float columns (times, amounts) take nearly as
    many values as rows: Parquet's default tries a dictionary on them too, then falls
    back, which made writing twice as slow and the files larger."""
    return [f.name for f in schema
            if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or (pa.types.is_integer(f.type) and f.type.bit_width <= 16)]


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema`` in its order (missing ones null), cast."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class _FrameStream:
    """One frame of every result, written to Parquet a row group at a time.

    Results whose frames have the same columns go to one file; a result with other
    columns (the ``arm`` of a split portfolio) starts another part, and ``finish``
    joins the parts under the schema of all of them together, a row group at a time.
    The file then equals ``pd.concat`` of every result's frame written by
    ``DataFrame.to_parquet``.
    """

    def __init__(self, folder: OutputFolder, name: str):
        self.folder = folder
        self.name = name
        self.parts: list[Path] = []
        self.part_schemas: list[pa.Schema] = []  # each part's schema, as written
        self.heads: list[pd.DataFrame] = []  # each result's first row, for the schema
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def _new_part(self, schema: pa.Schema) -> None:
        self._close_writer()
        path = temporary_path(self.folder.path / self.name)
        self.parts.append(path)
        self.part_schemas.append(schema)
        self._writer = pq.ParquetWriter(path, schema,
                                        use_dictionary=dictionary_columns(schema))
        self._schema = schema

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def add(self, frame: pd.DataFrame, strategy: str, replication: int) -> None:
        self.add_chunks([frame], strategy, replication)

    def add_chunks(self, frames: Iterable[pd.DataFrame], strategy: str,
                   replication: int) -> None:
        """One result's frame given as consecutive chunks (a spilled event log): the
        same file as ``add`` of the chunks joined when each chunk but the last has a
        multiple of ``ROWS_PER_GROUP`` rows."""
        schema: pa.Schema | None = None
        first = True
        for frame in frames:
            if first or (schema is None and len(frame)):
                # The first row, for the file's schema (``finish``): of the first chunk
                # with rows.
                head = as_written(with_ids(frame.iloc[:1], strategy, replication))
                if first:
                    self.heads.append(head)
                    first = False
                else:
                    self.heads[-1] = head
                # The table of a slice with its id columns, as pandas converts it, has
                # this schema (its pandas metadata included); the id columns are made by
                # Arrow rather than converted from a column of Python strings, a third of
                # the time of a large frame.
                if len(frame):
                    schema = pa.Table.from_pandas(head, preserve_index=False).schema
            for start in range(0, len(frame), ROWS_PER_GROUP):
                table = self._table(frame, start, start + ROWS_PER_GROUP, strategy,
                                    replication, schema)
                if self._schema is None or table.schema.names != self._schema.names:
                    self._new_part(table.schema)
                elif not table.schema.equals(self._schema, check_metadata=False):
                    table = _conform(table, self._schema)
                assert self._writer is not None
                self._writer.write_table(table)

    @staticmethod
    def _table(frame: pd.DataFrame, start: int, stop: int, strategy: str, replication: int,
               schema: pa.Schema | None) -> pa.Table:
        """Rows ``start:stop`` of ``frame`` with the id columns first, as an Arrow table
        equal to the conversion of ``_slice_with_ids``."""
        piece = as_written(frame.iloc[start:stop])
        # One thread: a slice is small, and a pool per call costs more than it saves.
        body = pa.Table.from_pandas(piece, preserve_index=False, nthreads=1)
        if schema is not None and schema.names[2:] == body.schema.names and all(
                body.schema.field(k).type == schema.field(k + 2).type
                for k in range(body.num_columns)):
            rows = body.num_rows
            # Made with the schema's own types, so they are its columns as they stand.
            ids = [pa.array([strategy], type=schema.field(0).type).take(
                       pa.array(np.zeros(rows, dtype=np.int32))),
                   pa.array(np.full(rows, replication), type=schema.field(1).type)]
            return pa.Table.from_arrays([*ids, *body.columns], schema=schema)
        # Any other case (a column whose type differs from the first row's): as pandas
        # converts the slice with its ids.
        piece = as_written(_slice_with_ids(frame, start, stop, strategy, replication))
        return pa.Table.from_pandas(piece, preserve_index=False, nthreads=1)

    def finish(self) -> Path:
        """The written file (a temporary file of the folder), parts joined if need be."""
        self._close_writer()
        head = pd.concat(self.heads, ignore_index=True) if self.heads else pd.DataFrame()
        schema = pa.Table.from_pandas(head, preserve_index=False).schema
        if not self.parts:  # no result had a row: the file of the empty frames
            path = temporary_path(self.folder.path / self.name)
            head.iloc[:0].to_parquet(path, index=False)
            return path
        # The schema the part was written with, not the one read back from the file:
        # Parquet reads a dictionary of strings back as ``string`` where pandas writes
        # ``large_string``, so the file's schema never equals the frame's, and every file
        # was rewritten (half the time of writing the outputs of a large run).
        if len(self.parts) == 1 and self.part_schemas[0].equals(schema):
            self.part_schemas.clear()
            return self.parts.pop()
        path = temporary_path(self.folder.path / self.name)
        with pq.ParquetWriter(path, schema,
                              use_dictionary=dictionary_columns(schema)) as writer:
            for part in self.parts:
                source = pq.ParquetFile(part)
                for group in range(source.num_row_groups):
                    writer.write_table(_conform(source.read_row_group(group), schema))
                source.close()
                part.unlink()
        self.parts = []
        self.part_schemas = []
        return path

    def discard(self) -> None:
        self._close_writer()
        for part in self.parts:
            part.unlink(missing_ok=True)
        self.parts = []
        self.part_schemas = []


_NO_FRAME = pd.DataFrame()


class ResultsWriter:
    """Writes a run's results into an open ``OutputFolder`` as they arrive.

    ``add`` streams a result's frames to Parquet (and, with ``release=True``, drops
    them from the result, keeping its KPIs), so that the frames of every replication
    are never held in memory together; ``finish`` writes the KPI tables and the resolved
    scenario and commits the folder.
    """

    def __init__(self, folder: OutputFolder, scenario: Scenario, events: bool = True):
        self.folder = folder
        self.scenario = scenario
        self.results: list[Results] = []
        self._by_arm: list[pd.DataFrame] = []
        self._streams = {kind: _FrameStream(folder, name) for kind, name in FRAMES
                         if events or kind != "events"}
        self._spills: list[Path] = []

    def add(self, result: Results, release: bool = False) -> None:
        """Write ``result``'s frames; with ``release``, hand them over (the result keeps
        its KPIs and empty frames)."""
        if "arm" in result.accounts.columns:
            from simulator.strategies.arms import arm_kpis

            if result.event_log is not None:  # the arms' KPIs read the whole log
                result.events = result.event_log.frame()
            self._by_arm.append(arm_kpis(result, result.accounts["arm"].to_numpy(),
                                         self.scenario))
            if result.event_log is not None:
                result.events = _NO_FRAME
        release_free_memory()  # what the run freed, before the frames are converted
        # The largest frames first, each dropped (with ``release``) once it is written.
        for kind in ("accounts", "events", "daily", "agents_daily"):
            stream = self._streams.get(kind)
            if stream is not None:
                try:
                    if kind == "events" and result.event_log is not None:
                        # Spilled during the run: copied from its file a chunk at a time.
                        stream.add_chunks(result.event_log.frames(), result.strategy,
                                          result.replication)
                    else:
                        stream.add(getattr(result, kind), result.strategy,
                                   result.replication)
                except OSError as exc:
                    raise UserError(f"cannot write ({exc.strerror})",
                                    source=str(self.folder.path / stream.name)) from None
            if release:
                setattr(result, kind, _NO_FRAME)
                release_free_memory()
        if result.event_log is not None:
            result.event_log.remove()
            result.event_log = None
        self.results.append(result)

    def spill_file(self) -> Path:
        """A new temporary file of the folder for a run's event log during the run
        (``run_cells(spill_events=...)``): removed once the result is written, or by
        ``discard``."""
        path = temporary_path(self.folder.path / "events.parquet")
        self._spills.append(path)
        return path

    def finish(self) -> dict[str, Path]:
        """Write the KPI tables and the resolved scenario, then put every file in place."""
        kpis = kpi_frame(self.results)
        folder = self.folder
        folder.stage("kpis.csv", lambda p: kpis.to_csv(p, index=False))
        folder.stage("summary.csv", lambda p: summarise(kpis).to_csv(p, index=False))
        for kind, name in FRAMES:
            if kind in self._streams:
                try:
                    folder.adopt(name, self._streams[kind].finish())
                except OSError as exc:
                    raise UserError(f"cannot write ({exc.strerror})",
                                    source=str(folder.path / name)) from None
        if self._by_arm:
            by_arm = pd.concat(self._by_arm, ignore_index=True)
            folder.stage("kpis_by_arm.csv", lambda p: by_arm.to_csv(p, index=False))
        text = resolved_scenario_text(self.scenario)
        folder.stage("scenario.resolved.yaml", lambda p: p.write_text(text, encoding="utf-8"))
        placed = folder.commit("contactsim run")
        order = ["kpis.csv", "summary.csv", "daily.parquet", "accounts.parquet",
                 "agents_daily.parquet", "events.parquet", "kpis_by_arm.csv",
                 "scenario.resolved.yaml", "run.yaml"]
        keys = {"kpis.csv": "kpis", "summary.csv": "summary", "daily.parquet": "daily",
                "accounts.parquet": "accounts", "agents_daily.parquet": "agents_daily",
                "events.parquet": "events",
                "kpis_by_arm.csv": "kpis_by_arm", "scenario.resolved.yaml": "scenario",
                "run.yaml": "run"}
        return {keys[n]: placed[n] for n in order if n in placed}

    def discard(self) -> None:
        """Remove the parts written so far (the folder removes what it staged)."""
        for stream in self._streams.values():
            stream.discard()
        for path in self._spills:
            path.unlink(missing_ok=True)
            twin_file(path).unlink(missing_ok=True)  # a run that failed in its loop
        self._spills = []


def write_outputs(results: Sequence[Results], scenario: Scenario, out_dir: Path,
                  events: bool = True) -> dict[str, Path]:
    """Write kpis.csv, the Parquet frames and the resolved scenario into ``out_dir``.

    File names are fixed: nothing a scenario or a strategy names reaches a path, so
    nothing is written outside ``out_dir``. The folder is locked while it is written and
    ends holding this run's files only (see ``OutputFolder``). The results keep their
    frames; ``contactsim run`` uses ``ResultsWriter`` directly to stream them instead.
    """
    with OutputFolder(out_dir) as folder:
        writer = ResultsWriter(folder, scenario, events)
        try:
            for r in results:
                writer.add(r)
            return writer.finish()
        finally:
            writer.discard()

