"""Cells: the unit of every experiment, cached by content and run anywhere.

A cell is one run of the model, ``run(scenario, strategy, seed)``, described by plain
data (``CellTask``) so that it can be pickled to a worker process or a Dask worker. Its
key is the SHA-256 of the canonical JSON of what determines its result: the resolved
scenario (without the fields that do not reach one run: ``seed``, ``replications``,
``strategies``), the strategy spec, the seed and the simulator version. A cell's result
is written atomically to ``<key>.json``, so an interrupted experiment resumes where it
stopped and a cell from another simulator version is computed again, never reused.

A cell file is reused only if it is this cell's (its key), finished, of this simulator
version, its content matches the SHA-256 checksum stored in it, and its KPIs are
possible (``simulator.kpis.kpi_problem``: all present, each inside its range, undefined
only where its denominator is 0). The checksum catches a damaged file (a disk error, a
partial copy, an edit that forgot the checksum), not a deliberate edit: anyone can
recompute it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import simulator
from simulator.engine import Results, run
from simulator.experiments.outputs import atomic_write
from simulator.experiments.supervised import run_supervised
from simulator.kpis import kpi_problem
from simulator.scenario import Scenario, StrategySpec, scenario_from_dict
from simulator.strategies.loader import uses_plugin

#: Fields of a scenario that never reach one run (the cell carries its own seed and
#: strategy), left out of the resolved scenario a cell is keyed and run on.
NOT_IN_CELL: tuple[str, ...] = ("seed", "replications", "strategies")

#: Keys of a cell file, in order.
CELL_FIELDS: tuple[str, ...] = ("key", "status", "error", "variant", "strategy", "replication",
                                "seed", "simulator_version", "kpis", "values", "checksum")

#: What a cell keeps of its run besides the KPIs: a module-level function (so that it
#: pickles by reference to a worker) of the run's results, its scenario and the
#: extractor's parameters, returning JSON-able data (numbers, lists, mappings). A power
#: repetition keeps its trial's test statistics, a calibration trial its targets.
Extract = Callable[[Results, Scenario, Mapping[str, Any]], dict[str, Any]]


def extract_name(extract: Extract) -> str:
    """The stable name of an extractor, part of a cell's key."""
    return f"{extract.__module__}:{extract.__qualname__}"


def simulator_version() -> str:
    """``simulator.__version__``, read from the distribution if the package lacks it.

    (An editable install made before ``simulator/__init__.py`` existed imports
    ``simulator`` as a namespace package, without ``__version__``.)
    """
    found = getattr(simulator, "__version__", None)
    if isinstance(found, str):
        return found
    try:
        return metadata.version("contactsim")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def cell_key(scenario: dict[str, Any], spec: dict[str, Any], seed: int,
             version: str | None = None, extract: str | None = None,
             extract_params: Mapping[str, Any] | None = None) -> str:
    """The content address of a cell: SHA-256 of what determines its result (the
    extractor by name and parameters, when the cell keeps more than its KPIs)."""
    payload: dict[str, Any] = {
        "scenario": scenario, "strategy": spec, "seed": int(seed),
        "simulator_version": simulator_version() if version is None else version}
    if extract is not None:
        payload["extract"] = {"function": extract, "params": dict(extract_params or {})}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to compute one cell (plain data, picklable)."""

    key: str
    scenario: dict[str, Any]
    spec: dict[str, Any]
    seed: int
    replication: int
    variant: dict[str, Any]
    base_dir: str | None
    simulator_version: str
    extract: Extract | None = None
    extract_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, scenario: dict[str, Any], spec: dict[str, Any], seed: int,
             replication: int, *, variant: dict[str, Any] | None = None,
             base_dir: str | None = None, extract: Extract | None = None,
             extract_params: Mapping[str, Any] | None = None) -> CellTask:
        """A task with its key computed from what determines its result.

        ``scenario`` is resolved scenario data without the fields that do not reach one
        run (``NOT_IN_CELL``); ``spec`` the strategy spec as JSON data.
        """
        params = dict(extract_params or {})
        key = cell_key(scenario, spec, seed,
                       extract=None if extract is None else extract_name(extract),
                       extract_params=params)
        return cls(key=key, scenario=scenario, spec=spec, seed=seed, replication=replication,
                   variant=dict(variant or {}), base_dir=base_dir,
                   simulator_version=simulator_version(), extract=extract,
                   extract_params=params)


def _json_number(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def _json_data(value: Any) -> Any:
    """``value`` as JSON data: numbers (non-finite as null), text, lists and mappings."""
    if isinstance(value, Mapping):
        return {str(k): _json_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_data(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _json_number(value)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"an extractor returned {type(value).__name__}, not JSON data")


def cell_checksum(record: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a cell record without its checksum."""
    content = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def cell_record(task: CellTask, status: str, error: str | None = None,
                kpis: dict[str, Any] | None = None,
                values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A cell file's content. Non-finite KPIs (undefined ratios) are stored as null;
    ``values`` is what the task's extractor kept (empty for a plain cell)."""
    record = {
        "key": task.key,
        "status": status,
        "error": error,
        "variant": task.variant,
        "strategy": StrategySpec.model_validate(task.spec).name,
        "replication": task.replication,
        "seed": task.seed,
        "simulator_version": simulator_version(),
        "kpis": {k: _json_number(v) for k, v in (kpis or {}).items()},
        "values": _json_data(values or {}),
    }
    record["checksum"] = cell_checksum(record)
    return record


def run_cell(task: CellTask) -> dict[str, Any]:
    """Compute one cell: a pure function of ``task``. Any exception becomes a failed record.

    A cell with plug-in code runs in a supervised child process (``supervised.py``), so
    that nothing the plug-in does (hang, exit, raise ``KeyboardInterrupt``, leave
    threads) reaches the worker; ``KeyboardInterrupt`` here is the user's Ctrl-C, which
    fails no cell.
    """
    if task.simulator_version != simulator_version():
        return cell_record(task, "failed", f"this worker runs contactsim {simulator_version()}"
                           f", the sweep expects {task.simulator_version}")
    try:
        scenario = scenario_from_dict(task.scenario, source=f"cell {task.key}")
        spec = StrategySpec.model_validate(task.spec)
        base_dir = Path(task.base_dir) if task.base_dir else None
        if uses_plugin(spec):
            # An extractor reads the run's frames: only then are they sent back.
            results = run_supervised(scenario, spec, task.seed, task.replication, base_dir,
                                     frames=task.extract is not None)
        else:
            results = run(scenario, spec, task.seed, task.replication, base_dir)
        values = ({} if task.extract is None
                  else task.extract(results, scenario, task.extract_params))
        return cell_record(task, "ok", kpis=results.kpis, values=values)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit and the like too: one line, not a lost worker
        return cell_record(task, "failed", f"{type(exc).__name__}: {exc}")


def check_cell(path: Path, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a cell file that can be reused, else (None, why not).

    Why not is ``"missing"``, ``"unreadable"`` (not JSON, or not a cell record),
    ``"not finished"`` (failed), ``"outdated"`` (another simulator version or another
    key), or ``"invalid: ..."``: the checksum does not match the content, or the KPIs
    are impossible (missing, out of their range, undefined where they cannot be).
    """
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError):
        return None, "unreadable"
    if not isinstance(record, dict) or set(record) != set(CELL_FIELDS):
        return None, "unreadable"
    if record["key"] != key or record["simulator_version"] != simulator_version():
        return None, "outdated"
    if record["status"] != "ok":
        return None, "not finished"
    try:
        matches = record["checksum"] == cell_checksum(record)
    except (TypeError, ValueError):  # NaN or infinity written into the file
        matches = False
    if not matches:
        return None, "invalid: its checksum does not match its content"
    if not isinstance(record["values"], dict):
        return None, "invalid: its values are not a mapping"
    kpis = record["kpis"]
    problem = kpi_problem(kpis) if isinstance(kpis, dict) else "no KPIs"
    if problem is not None:
        return None, f"invalid: {problem}"
    return record, None


def read_cell(path: Path, key: str) -> dict[str, Any] | None:
    """A cell file that can be reused (``check_cell``), or None."""
    return check_cell(path, key)[0]


def write_cell(cells_dir: Path, key: str, record: dict[str, Any]) -> Path:
    """Write the file of the cell ``key`` atomically (temporary file, then rename).

    The name comes from the plan's key, never from the record a worker sent back.
    """
    path = cells_dir / f"{key}.json"
    text = json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path
