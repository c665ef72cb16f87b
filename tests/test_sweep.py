"""Sweeps: plans and keys, resuming after repeated SIGKILLs, failed cells, and a real Dask
cluster."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simulator.engine import run
from simulator.errors import ScenarioError, UserError
from simulator.experiments.backends import LocalPool
from simulator.experiments.cells import (
    CELL_FIELDS,
    cell_checksum,
    cell_key,
    read_cell,
    simulator_version,
)
from simulator.experiments.sweep import (
    LatinHypercube,
    latin_hypercube_points,
    load_sweep,
    run_sweep,
)
from simulator.kpis import kpi_range
from simulator.scenario import scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
name: tiny
seed: 7
population: {size: 500}
horizon_days: 60
agents: {count: 1}
strategies: [{use: no_contact}, {use: fixed_cadence}]
"""

BOOM = """\
import pandas as pd
from simulator.strategies import Strategy

class Boom(Strategy):
    name = "boom"
    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("boom on purpose")
"""


def contactsim(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    # From the repository root with absolute paths; ``-c`` rather than ``-m simulator.cli``
    # so that the sub-commands registered on ``simulator.cli.app`` exist.
    return subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def counts(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"computed (\d+), reused (\d+), failed (\d+)", stdout)
    assert m, stdout
    return int(m[1]), int(m[2]), int(m[3])


def write_sweep(folder: Path, body: str, name: str = "sweep.yaml") -> Path:
    (folder / "tiny.yaml").write_text(TINY, encoding="utf-8")
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


# ----------------------------------------------------------------- plans and keys


def test_grid_plan(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, """\
base: tiny.yaml
set: {horizon_days: 30}
factors:
  grid: {agents.count: [1, 2], population.score.auc: [0.6, 0.8, 0.9]}
replications: 2
""")
    plan = load_sweep(path)
    assert plan.factors == ["agents.count", "population.score.auc"]
    assert len(plan.variants) == 6
    assert len(plan.cells) == 6 * 2 * 2  # variants x the base's two strategies x reps
    assert len({c.key for c in plan.cells}) == len(plan.cells)
    first = plan.cells[0]
    assert first.variant == {"agents.count": 1, "population.score.auc": 0.6}
    assert first.strategy == "no_contact" and first.replication == 0
    assert first.scenario["horizon_days"] == 30 and first.scenario["agents"]["count"] == 1
    # Common random numbers: a replication has one seed across strategies and variants.
    assert len({c.seed for c in plan.cells if c.replication == 0}) == 1
    assert plan.cells[1].seed != plan.cells[0].seed


def test_strategy_factor_leaves_other_strategies_alone(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, """\
base: tiny.yaml
factors:
  grid:
    agents.count: [1, 2]
    strategies.calls.params.steps.0.every: [2, 5]
strategies:
  - {use: fixed_cadence, label: calls,
     params: {steps: [{channel: agent_call, from_dpd: 1, every: 3}]}}
  - {use: no_contact}
replications: 1
""")
    plan = load_sweep(path)
    calls = [c for c in plan.cells if c.strategy == "calls"]
    other = [c for c in plan.cells if c.strategy == "no_contact"]
    assert len(calls) == 4 and len(other) == 2  # no_contact is not repeated per 'every'
    assert {c.spec["params"]["steps"][0]["every"] for c in calls} == {2, 5}
    assert all(c.variant["strategies.calls.params.steps.0.every"] is None for c in other)


def test_latin_hypercube_is_stratified_and_seeded() -> None:
    design = LatinHypercube(samples=10, seed=3,
                            ranges={"population.score.auc": (0.55, 0.9),
                                    "agents.count": (1, 10)},
                            integer=("agents.count",))
    points = latin_hypercube_points(design)
    auc = sorted(p["population.score.auc"] for p in points)
    # One point in each tenth of the range.
    assert [int((a - 0.55) / 0.035) for a in auc] == list(range(10))
    assert sorted(p["agents.count"] for p in points) == list(range(1, 11))
    assert points == latin_hypercube_points(design)
    other = latin_hypercube_points(design.model_copy(update={"seed": 4}))
    assert points != other


def test_latin_hypercube_sweep(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, """\
base: tiny.yaml
factors:
  latin_hypercube:
    samples: 4
    seed: 1
    ranges: {population.score.auc: [0.55, 0.9], agents.count: [1, 3]}
    integer: [agents.count]
strategies: [{use: no_contact}]
""")
    plan = load_sweep(path)
    assert plan.design == "latin_hypercube" and len(plan.cells) == 4
    assert all(isinstance(c.variant["agents.count"], int) for c in plan.cells)
    assert all(0.55 <= c.variant["population.score.auc"] <= 0.9 for c in plan.cells)


def test_keys_are_content_addresses(tmp_path: Path) -> None:
    body = """\
base: tiny.yaml
factors: {grid: {agents.count: [1, 2]}}
replications: {reps}
"""
    two = load_sweep(write_sweep(tmp_path, body.replace("{reps}", "2"), "a.yaml"))
    three = load_sweep(write_sweep(tmp_path, body.replace("{reps}", "3"), "b.yaml"))
    # More replications keep the cells already computed.
    assert {c.key for c in two.cells} < {c.key for c in three.cells}
    c = two.cells[0]
    assert cell_key(c.scenario, c.spec, c.seed) == c.key
    assert cell_key(c.scenario, c.spec, c.seed, version="9.9") != c.key
    assert cell_key(c.scenario, c.spec, c.seed + 1) != c.key
    renamed = {**c.spec, "label": "control"}
    assert cell_key(c.scenario, renamed, c.seed) != c.key


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("base: tiny.yaml\nreplication: 2\n", "sweep.yaml: replication: unknown field"),
        ("base: tiny.yaml\nfactors: {grid: {agents.count: [1]}, latin_hypercube: "
         "{samples: 2, ranges: {agents.count: [1, 2]}}}\n", "exactly one of grid"),
        ("base: tiny.yaml\nfactors: {grid: {agents.cont: [1, 2]}}\n",
         "agents.cont: unknown field"),
        ("base: tiny.yaml\nfactors: {grid: {agents.count: [1, -1]}}\n", "agents.count"),
        ("base: tiny.yaml\nfactors: {grid: {agents.count: [1, 1]}}\n", "value twice"),
        ("base: tiny.yaml\nfactors: {grid: {strategies.nope.params.x: [1]}}\n",
         "strategies.<name>"),
        ("base: missing.yaml\n", "missing.yaml: file not found"),
        ("base: tiny.yaml\nstrategies: [{use: nope}]\n", "unknown strategy"),
        ("base: tiny.yaml\nstrategies: [{use: fixed_cadence, params: {stepz: []}}]\n",
         "unknown parameter"),
        ("base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, ranges: "
         "{agents.count: [3, 1]}}}\n", "below low"),
    ],
)
def test_sweep_file_errors_name_file_and_field(tmp_path: Path, body: str,
                                               expected: str) -> None:
    path = write_sweep(tmp_path, body)
    with pytest.raises(UserError) as err:
        load_sweep(path)
    assert expected in str(err.value)
    if isinstance(err.value, ScenarioError):
        assert "sweep.yaml" in str(err.value) or "missing.yaml" in str(err.value)


def test_read_cell_refuses_what_cannot_be_reused(tmp_path: Path) -> None:
    key = "ab" * 32
    kpis = {k: 0.5 if (r := kpi_range(k)) is not None and r.high == 1 else 1.0
            for k in run(scenario_from_dict({"population": {"size": 100},
                                             "horizon_days": 5}), "no_contact", 1).kpis}
    good = {"key": key, "status": "ok", "error": None, "variant": {}, "strategy": "s",
            "replication": 0, "seed": 1, "simulator_version": simulator_version(),
            "kpis": {**kpis, "rpc_rate": None, "contacts_agent_call": 0.0}, "values": {}}
    good["checksum"] = cell_checksum(good)
    path = tmp_path / f"{key}.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    assert read_cell(path, key) == good
    assert read_cell(path, "cd" * 32) is None  # not the file of this key
    text = json.dumps(good)
    path.write_text(text[: len(text) // 2], encoding="utf-8")  # truncated
    assert read_cell(path, key) is None
    for change in ({"simulator_version": "0.0.0-old"}, {"status": "failed"}, {"kpis": {}},
                   {"values": None}):
        changed = {**good, **change}
        changed["checksum"] = cell_checksum(changed)
        path.write_text(json.dumps(changed), encoding="utf-8")
        assert read_cell(path, key) is None, change
    no_checksum = {k: v for k, v in good.items() if k != "checksum"}
    path.write_text(json.dumps(no_checksum), encoding="utf-8")  # an older cell format
    assert read_cell(path, key) is None
    assert read_cell(tmp_path / "missing.json", key) is None


# ----------------------------------------------------------------- running sweeps

RESUMABLE = """\
base: tiny.yaml
set: {population.size: 400, horizon_days: 60}
factors: {grid: {agents.count: [1, 2, 3, 4]}}
strategies: [{use: fixed_cadence}, {use: risk_tiered}]
replications: 3
"""
#: SIGKILLs of one interrupted sweep, each at a random point (seeded, so a failure
#: can be replayed).
KILLS = 3
KILL_SEED = 20261128


def _live_group_members(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (Linux /proc)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def _valid_cells(cells: Path) -> dict[str, int]:
    """Key -> mtime of every reusable cell file."""
    return {p.stem: p.stat().st_mtime_ns for p in cells.glob("*.json")
            if read_cell(p, p.stem) is not None}


def _sweep_killed_at_random(sweep: Path, out: Path, rng: random.Random) -> None:
    """Start ``contactsim sweep`` and SIGKILL it at a random point once it has written a
    random number (1-3) of new cells, a random fraction of a cell's time later (so that
    some kills land while a cell file is being written)."""
    cells = out / "cells"
    start = len(_valid_cells(cells)) if cells.exists() else 0
    wanted, delay = start + rng.randint(1, 3), rng.uniform(0.0, 0.3)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from simulator.cli import main; main()", "sweep", str(sweep),
         "--out", str(out), "--workers", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not cells.exists() or len(_valid_cells(cells)) < wanted:
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(delay)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)  # the sweep process only, as `kill -9 PID`
        proc.wait(timeout=30)
        # Its pool workers notice and exit rather than linger.
        deadline = time.monotonic() + 20
        while _live_group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _live_group_members(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_resume_after_repeated_sigkill(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, RESUMABLE)
    plan = load_sweep(sweep)
    keys = {c.key for c in plan.unique_cells()}
    total = len(keys)
    assert total == 24
    out = tmp_path / "out"
    cells = out / "cells"
    rng = random.Random(KILL_SEED)
    before: dict[str, int] = {}
    for kill in range(KILLS):
        _sweep_killed_at_random(sweep, out, rng)
        # Atomic writes: a kill never leaves a cell file that cannot be read (at most a
        # hidden temporary file), and a cell once written is never rewritten.
        assert all(read_cell(p, p.stem) is not None for p in cells.glob("*.json"))
        now = _valid_cells(cells)
        assert set(now) <= keys
        assert len(before) < len(now) < total, (kill, len(before), len(now))
        assert all(now[k] == before[k] for k in before)
        before = now

    r = contactsim("sweep", str(sweep), "--out", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert counts(r.stdout) == (total - len(before), len(before), 0)
    after = _valid_cells(cells)
    assert set(after) == keys
    assert all(after[k] == before[k] for k in before)  # reused files were not rewritten
    # Every cell exactly once, and no temporary file left behind.
    assert sorted(p.name for p in cells.iterdir()) == sorted(f"{k}.json" for k in after)
    kpis = pd.read_csv(out / "kpis.csv")
    assert len(kpis) == total
    assert not kpis.duplicated(["agents.count", "strategy", "replication"]).any()
    assert list(kpis.columns[:4]) == ["agents.count", "strategy", "replication", "seed"]

    # The same results as a sweep that was never interrupted, byte for byte.
    ref = tmp_path / "uninterrupted"
    r = contactsim("sweep", str(sweep), "--out", str(ref), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert (out / "kpis.csv").read_bytes() == (ref / "kpis.csv").read_bytes()
    for key in keys:
        name = f"{key}.json"
        assert (cells / name).read_bytes() == (ref / "cells" / name).read_bytes(), name

    # A truncated file and one from another simulator version are recomputed.
    truncated, outdated = cells / f"{sorted(keys)[0]}.json", cells / f"{sorted(keys)[1]}.json"
    good_text = truncated.read_text(encoding="utf-8")
    truncated.write_text(good_text[:40], encoding="utf-8")
    record = json.loads(outdated.read_text(encoding="utf-8"))
    outdated.write_text(json.dumps({**record, "simulator_version": "0.0.1-old"}),
                        encoding="utf-8")
    report = run_sweep(plan, out, LocalPool(2))
    assert (report.computed, report.reused, report.failed, report.replaced) == (
        2, total - 2, 0, 2)
    assert truncated.read_text(encoding="utf-8") == good_text  # the same cell, recomputed
    assert json.loads(outdated.read_text(encoding="utf-8")) == record
    assert set(_valid_cells(cells)) == keys
    assert pd.read_csv(out / "kpis.csv").equals(kpis)


def test_failed_cells_are_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(BOOM, encoding="utf-8")
    sweep = write_sweep(tmp_path, """\
base: tiny.yaml
strategies: [{use: boom.py:Boom}, {use: no_contact}]
replications: 2
""")
    out = tmp_path / "out"
    r = contactsim("sweep", str(sweep), "--out", str(out))
    assert r.returncode == 1
    assert counts(r.stdout) == (2, 0, 2)
    assert "boom on purpose" in r.stderr and "Traceback" not in r.stderr
    records = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(records) == 4
    assert all(tuple(rec) == CELL_FIELDS for rec in records)
    failed = [rec for rec in records if rec["status"] == "failed"]
    assert len(failed) == 2 and all(rec["strategy"] == "boom.py:Boom" for rec in failed)
    assert all("RuntimeError: boom on purpose" in rec["error"] for rec in failed)
    assert all(rec["kpis"] == {} for rec in failed)
    kpis = pd.read_csv(out / "kpis.csv")
    assert list(kpis["strategy"]) == ["no_contact", "no_contact"]

    # A rerun retries the failed cells only.
    r = contactsim("sweep", str(sweep), "--out", str(out))
    assert counts(r.stdout) == (0, 2, 2)

    # --fail-fast stops at the first failure.
    r = contactsim("sweep", str(sweep), "--out", str(tmp_path / "ff"), "--fail-fast")
    assert r.returncode == 1 and "--fail-fast" in r.stderr
    ff = [json.loads(p.read_text()) for p in (tmp_path / "ff" / "cells").glob("*.json")]
    assert [rec["status"] for rec in ff] == ["failed"]


def test_sweep_user_errors_exit_2(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "base: tiny.yaml\nfactors: {grid: {agents.cont: [1]}}\n")
    r = contactsim("sweep", str(sweep), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "agents.cont: unknown field" in r.stderr and "Traceback" not in r.stderr
    r = contactsim("sweep", str(sweep), "--out", str(tmp_path / "o"), "--workers", "2",
                   "--scheduler", "tcp://127.0.0.1:8786")
    assert r.returncode == 2 and "--workers" in r.stderr


# ----------------------------------------------------------------- Dask


def test_dask_cluster_gives_the_local_pool_results(dask_cluster: str, tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, """\
base: tiny.yaml
factors: {grid: {agents.count: [1, 2]}}
strategies: [{use: no_contact}, {use: fixed_cadence}]
replications: 2
""")
    local, dask = tmp_path / "local", tmp_path / "dask"
    r = contactsim("sweep", str(sweep), "--out", str(dask), "--scheduler", dask_cluster)
    assert r.returncode == 0, r.stderr
    assert counts(r.stdout) == (8, 0, 0) and "Dask scheduler" in r.stdout
    r = contactsim("sweep", str(sweep), "--out", str(local), "--workers", "2")
    assert r.returncode == 0, r.stderr
    dask_cells = sorted((dask / "cells").glob("*.json"))
    local_cells = sorted((local / "cells").glob("*.json"))
    assert [p.name for p in dask_cells] == [p.name for p in local_cells]
    assert len(dask_cells) == 8
    for a, b in zip(dask_cells, local_cells, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert (dask / "kpis.csv").read_bytes() == (local / "kpis.csv").read_bytes()
    # The other way round, a Dask rerun reuses what the pool computed.
    r = contactsim("sweep", str(sweep), "--out", str(local), "--scheduler", dask_cluster)
    assert r.returncode == 0, r.stderr
    assert counts(r.stdout) == (0, 8, 0)


@pytest.mark.slow
def test_dask_sweep_with_hostile_cells_completes(dask_cluster: str, tmp_path: Path) -> None:
    """On Dask workers too, plug-in code runs in supervised children (started from a
    zygote that ``subprocess`` starts: a worker's threads make ``fork`` unsafe): a cell
    that hangs past the limit, raises KeyboardInterrupt or another BaseException, or
    ends its process fails with one line naming the strategy and the day, and the sweep
    completes with the others in kpis.csv."""
    import shutil

    shutil.copy(ROOT / "tests" / "data" / "hostile_strategies.py", tmp_path / "hostile.py")
    (tmp_path / "hostile.yaml").write_text(
        TINY.replace("horizon_days: 60", "horizon_days: 12").replace(
            "strategies:", "decision: {timeout_seconds: 1}\nstrategies:"), encoding="utf-8")
    hostile = ["CatchesEverything", "Interrupts", "RaisesBaseException", "Exits"]
    arms = ", ".join([*(f"{{use: 'hostile.py:{c}', label: {c.lower()}}}" for c in hostile),
                      "{use: 'hostile.py:LeavesThread', label: leavesthread}",
                      "{use: no_contact}"])
    sweep = tmp_path / "hostile_sweep.yaml"
    sweep.write_text(f"base: hostile.yaml\nstrategies: [{arms}]\n", encoding="utf-8")
    out = tmp_path / "out"
    r = contactsim("sweep", str(sweep), "--out", str(out), "--scheduler", dask_cluster)
    assert r.returncode == 1, r.stderr
    assert counts(r.stdout) == (2, 0, 4)
    records = {rec["strategy"]: rec for rec in (
        json.loads(p.read_text(encoding="utf-8")) for p in (out / "cells").glob("*.json"))}
    says = {"catcheseverything": "decide() took longer than 1 s (decision.timeout_seconds)",
            "interrupts": "decide() raised KeyboardInterrupt",
            "raisesbaseexception": "decide() raised Rebellion: not an Exception",
            "exits": "decide() ended its process (exit code 9)"}
    for name, text in says.items():
        assert records[name]["status"] == "failed"
        assert records[name]["error"] == (f"StrategyError: strategy '{name}': on day 3: "
                                          f"{text}"), records[name]["error"]
    kpis = pd.read_csv(out / "kpis.csv")
    assert sorted(kpis["strategy"]) == ["leavesthread", "no_contact"]
