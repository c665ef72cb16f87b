"""Hostile plug-ins: a plug-in cannot take contactsim down.

Plug-in code runs in a supervised child process (``simulator/experiments/supervised.py``):
a thread it leaves running, a ``KeyboardInterrupt`` or other ``BaseException``, a bare
``except:`` around a slow loop, an ignored SIGALRM or ``os._exit`` stop its run with one
line naming the strategy and the day (``contactsim run``: exit 2), or fail its cell of a
sweep, which completes. The user's own Ctrl-C and SIGTERM still stop everything (exit 130
and 143, no cell marked failed), and no process of contactsim outlives it, even after
SIGKILL. Relative ``file.py:Class`` references resolve where they are written.

The hostile strategies are ``tests/data/hostile_strategies.py``. Every test with a hang
in it would hang without the fix: those run contactsim as a subprocess with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulator.engine import run
from simulator.errors import StrategyError
from simulator.experiments.supervised import run_supervised
from simulator.experiments.sweep import load_sweep
from simulator.scenario import Scenario, StrategySpec, load_scenario
from simulator.strategies import build_strategy

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile_strategies.py"
HOSTILE_DAY = 3

SCENARIO = """\
name: hostile
seed: 7
population: {size: 300}
horizon_days: 12
agents: {count: 1}
decision: {timeout_seconds: 1}
strategies: [{use: no_contact}]
"""

#: Runs long enough (a few seconds each here) to be interrupted while they run.
LONG = """\
name: long
seed: 7
population: {size: 20000}
horizon_days: 180
agents: {count: 4}
replications: 2
strategies: [{use: fixed_cadence}, {use: risk_tiered}]
"""

#: How long a process of contactsim may outlive it (the issue's bound).
GONE_WITHIN = 5.0


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile")
    shutil.copy(HOSTILE, path / "hostile.py")
    (path / "hostile.yaml").write_text(SCENARIO, encoding="utf-8")
    (path / "long.yaml").write_text(LONG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scenario(folder: Path) -> Scenario:
    return load_scenario(folder / "hostile.yaml")


def spec(cls: str) -> StrategySpec:
    return StrategySpec(use=f"hostile.py:{cls}", label=cls.lower())


# --------------------------------------------------------------------------- processes


def process_table() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, state letter), from Linux's /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return table


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (children, their children, ...)."""
    table = process_table()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, (ppid, state) in table.items()
                    if ppid in frontier and state != "Z"} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has ended)."""
    table = process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def gone_within(pids: set[int], seconds: float) -> set[int]:
    """Wait up to ``seconds`` for ``pids`` to end; return those still alive."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def recorded_pids(folder: Path) -> set[int]:
    return {int(p.name) for p in folder.iterdir()} if folder.exists() else set()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def contactsim_process(args: list[str], cwd: Path, env: dict[str, str] | None = None
                       ) -> Iterator[subprocess.Popen[str]]:
    """``contactsim ARGS`` in a session of its own (as a shell runs a foreground job);
    whatever of it is left at the end is killed, so that a failing test leaves nothing.
    As in a terminal's foreground job, SIGINT has its default disposition: a process
    that ignores it (an earlier test may leave a pytest-xdist worker so) would pass that
    on to the child, which would then run through a Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "simulator", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})},
                            preexec_fn=_default_sigint)
    seen: set[int] = set()
    try:
        yield proc
    finally:
        seen |= descendants(proc.pid)
        for pid in alive(seen | {proc.pid}):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def wait_until(condition: Any, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, ("contactsim ended before the test could act",
                                     proc.returncode, proc.stderr.read() if proc.stderr else "")
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def contactsim(args: list[str], cwd: Path, timeout: float = 180,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``contactsim ARGS``; a hang is a failed test (exit code None), not a hung suite."""
    with contactsim_process(args, cwd, env) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, -999, "", f"hung for {timeout} s")
        return subprocess.CompletedProcess(args, proc.returncode, out, err)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# --------------------------------------------------------------------------- supervised runs


def test_a_thread_left_running_ends_with_the_run(scenario: Scenario, folder: Path,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-daemon thread would keep a process alive for an hour: the run's child exits
    anyway, with the results of the same strategy run here, without the thread."""
    monkeypatch.setenv("HOSTILE_PIDS", str(tmp_path))
    results = run_supervised(scenario, spec("LeavesThread"), seed=1, base_dir=folder)
    assert recorded_pids(tmp_path) and not gone_within(recorded_pids(tmp_path), GONE_WITHIN)
    monkeypatch.delenv("HOSTILE_PIDS")
    here = run(scenario, spec("Behaves"), seed=1, base_dir=folder)
    assert results.kpis.keys() == here.kpis.keys()
    assert all(a == b or (math.isnan(a) and math.isnan(b))
               for a, b in zip(results.kpis.values(), here.kpis.values(), strict=True))
    for frame in ("events", "daily", "accounts"):
        pd.testing.assert_frame_equal(getattr(results, frame), getattr(here, frame))


# (class, what the one line says after "strategy '<label>': on day 3: ")
HOSTILE_FAULTS: list[tuple[str, str]] = [
    ("Interrupts", "decide() raised KeyboardInterrupt"),
    ("InterruptsItself", "decide() raised KeyboardInterrupt"),
    ("RaisesBaseException", "decide() raised Rebellion: not an Exception"),
    ("CatchesEverything", "decide() took longer than 1 s (decision.timeout_seconds)"),
    ("IgnoresAlarm", "decide() took longer than 1 s (decision.timeout_seconds)"),
    ("Exits", "decide() ended its process (exit code 9)"),
]


@pytest.mark.parametrize(("cls", "says"), HOSTILE_FAULTS, ids=[c for c, _ in HOSTILE_FAULTS])
def test_a_hostile_decision_stops_its_run_with_one_line(cls: str, says: str,
                                                        scenario: Scenario, folder: Path,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setenv("HOSTILE_PIDS", str(tmp_path))
    with pytest.raises(StrategyError) as err:
        run_supervised(scenario, spec(cls), seed=1, base_dir=folder)
    assert str(err.value) == f"strategy '{cls.lower()}': on day {HOSTILE_DAY}: {says}"
    # The child is gone (the ones that hang would otherwise sleep on for a minute).
    assert not gone_within(recorded_pids(tmp_path), GONE_WITHIN)


def test_a_base_exception_in_decide_is_a_strategy_error_in_process_too(
        scenario: Scenario, folder: Path) -> None:
    # In contactsim's own process (a built-in, or the library's run()), anything but
    # KeyboardInterrupt, which is the user's there, is the strategy's fault.
    with pytest.raises(StrategyError, match="decide\\(\\) raised Rebellion: not an Exception"):
        run(scenario, spec("RaisesBaseException"), seed=1, base_dir=folder)
    with pytest.raises(KeyboardInterrupt):
        run(scenario, spec("Interrupts"), seed=1, base_dir=folder)


# --------------------------------------------------------------------------- contactsim run

#: On the command line, one of each kind (the others differ only inside the child).
CLI_HOSTILE = [("LeavesThread", None), *(f for f in HOSTILE_FAULTS if f[0] in (
    "Interrupts", "RaisesBaseException", "CatchesEverything"))]


@pytest.fixture(scope="module")
def cli_hostile(folder: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    def one(cls: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        return cls, contactsim(["run", "hostile.yaml", "-s", f"hostile.py:{cls}", "--out",
                                f"out_{cls}", "-q"], cwd=folder)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, [c for c, _ in CLI_HOSTILE]))


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "says"), CLI_HOSTILE, ids=[c for c, _ in CLI_HOSTILE])
def test_cli_run_with_a_hostile_strategy(cls: str, says: str | None, folder: Path,
                                         cli_hostile: dict[str, Any]) -> None:
    r = cli_hostile[cls]
    if says is None:  # the thread left running neither hangs contactsim nor fails the run
        assert r.returncode == 0, (r.returncode, r.stderr)
        assert (folder / f"out_{cls}" / "kpis.csv").exists()
        return
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    assert lines[0] == (f"error: strategy '{folder / 'hostile.py'}:{cls}': on day "
                        f"{HOSTILE_DAY}: {says}"), lines[0]
    assert not (folder / f"out_{cls}").exists()


# --------------------------------------------------------------------------- sweeps

SWEEP_HOSTILE = ["LeavesThread", "Interrupts", "CatchesEverything", "Exits"]


def write_hostile_sweep(folder: Path, name: str, classes: list[str],
                        replications: int = 1) -> Path:
    arms = ", ".join([*(f"{{use: 'hostile.py:{c}', label: {c.lower()}}}" for c in classes),
                      "{use: no_contact}"])
    path = folder / f"{name}.yaml"
    path.write_text(f"base: hostile.yaml\nstrategies: [{arms}]\nreplications: {replications}\n",
                    encoding="utf-8")
    return path


def check_hostile_sweep(r: subprocess.CompletedProcess[str], out: Path) -> None:
    """The sweep completed: the hostile cells failed with one line naming the strategy
    and the day, the others are in kpis.csv."""
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "computed 2, reused 0, failed 3" in r.stdout, r.stdout
    records = {rec["strategy"]: rec for rec in (
        json.loads(p.read_text(encoding="utf-8")) for p in (out / "cells").glob("*.json"))}
    assert records["no_contact"]["status"] == records["leavesthread"]["status"] == "ok"
    for cls, says in [("Interrupts", "decide() raised KeyboardInterrupt"),
                      ("CatchesEverything", "decide() took longer than 1 s"),
                      ("Exits", "decide() ended its process (exit code 9)")]:
        error = records[cls.lower()]["error"]
        assert records[cls.lower()]["status"] == "failed" and len(error.splitlines()) == 1
        assert error.startswith(f"StrategyError: strategy '{cls.lower()}': on day "
                                f"{HOSTILE_DAY}: {says}"), error
    kpis = pd.read_csv(out / "kpis.csv")
    assert sorted(kpis["strategy"]) == ["leavesthread", "no_contact"]


def test_a_sweep_with_hostile_cells_completes_on_the_local_pool(folder: Path,
                                                               tmp_path: Path) -> None:
    sweep = write_hostile_sweep(folder, "hostile_sweep", SWEEP_HOSTILE)
    out = tmp_path / "out"
    r = contactsim(["sweep", str(sweep), "--out", str(out), "-w", "2", "-q"], cwd=folder)
    check_hostile_sweep(r, out)


# --------------------------------------------------------------------------- signals


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_ctrl_c_stops_everything_with_exit_130_and_fails_no_cell(command: str, folder: Path,
                                                                 tmp_path: Path) -> None:
    """The terminal's Ctrl-C (SIGINT to the foreground process group) reaches contactsim
    and its pool workers, never the plug-ins' children: contactsim stops them all, says
    so in one line and exits 130; no cell is recorded as failed."""
    pids = tmp_path / "pids"
    pids.mkdir()
    out = tmp_path / "out"
    if command == "run":
        # 12 replications of 2.4 s each on 2 workers: still running when the signal
        # comes, however loaded the machine (the signal follows the first two plug-ins).
        args = ["run", "hostile.yaml", "-s", "hostile.py:Slow", "-s", "no_contact", "-r", "12",
                "-w", "2", "--out", str(out), "-q"]
    else:
        args = ["sweep", str(write_hostile_sweep(folder, "slow_sweep", ["Slow"], 12)),
                "--out", str(out), "-w", "2", "-q"]
    with contactsim_process(args, folder, {"HOSTILE_PIDS": str(pids)}) as proc:
        wait_until(lambda: len(recorded_pids(pids)) >= 2, proc)
        ours = descendants(proc.pid) | recorded_pids(pids)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (proc.returncode, err)
        assert error_lines(err) == ["interrupted"], err
        assert not gone_within(ours, GONE_WITHIN)
    if command == "sweep":
        statuses = [json.loads(p.read_text(encoding="utf-8"))["status"]
                    for p in (out / "cells").glob("*.json")]
        assert "failed" not in statuses
    else:
        assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("arms", ["built-in", "plug-in"])
def test_no_process_of_a_run_outlives_its_sigkill(arms: str, folder: Path,
                                                  tmp_path: Path) -> None:
    """After SIGKILL of ``contactsim run --workers 2``, no process of the run is alive 5 s
    later: pool workers watch their parent; a plug-in's children die with the zygote
    that forked them, which dies with contactsim."""
    pids = tmp_path / "pids"
    pids.mkdir()
    if arms == "built-in":
        args = ["run", "long.yaml", "-w", "2", "--out", str(tmp_path / "out"), "-q"]
    else:
        args = ["run", "hostile.yaml", "-s", "hostile.py:Slow", "-s", "hostile.py:Behaves",
                "-r", "4", "-w", "2", "--out", str(tmp_path / "out"), "-q"]
    with contactsim_process(args, folder, {"HOSTILE_PIDS": str(pids)}) as proc:
        if arms == "built-in":  # both pool workers started, and busy
            wait_until(lambda: len(descendants(proc.pid)) >= 2, proc)
            time.sleep(1.0)
        else:
            wait_until(lambda: len(recorded_pids(pids)) >= 2, proc)
        ours = descendants(proc.pid) | recorded_pids(pids)
        assert len(ours) >= 2
        os.kill(proc.pid, signal.SIGKILL)  # contactsim only, as `kill -9 PID`
        proc.wait(timeout=30)
        assert not gone_within(ours, GONE_WITHIN)


@pytest.mark.slow
@pytest.mark.parametrize("sender", ["user", "plug-in"])
def test_sigterm_stops_contactsim_in_one_line_and_leaves_no_process(
        sender: str, folder: Path, tmp_path: Path) -> None:
    """SIGTERM to contactsim (from the user, or from a plug-in that found its process id)
    stops it as Ctrl-C does: one line, exit 143, every process of the run gone."""
    pids = tmp_path / "pids"
    pids.mkdir()
    target = tmp_path / "contactsim.pid"
    env = {"HOSTILE_PIDS": str(pids), "HOSTILE_TARGET": str(target)}
    if sender == "user":
        args = ["run", "long.yaml", "-w", "2", "--out", str(tmp_path / "out"), "-q"]
    else:
        args = ["run", "hostile.yaml", "-s", "hostile.py:TerminatesContactsim", "-s",
                "hostile.py:Slow", "-r", "2", "-w", "2", "--out", str(tmp_path / "out"),
                "-q"]
    with contactsim_process(args, folder, env) as proc:
        ours: set[int] = set()
        if sender == "user":
            wait_until(lambda: len(descendants(proc.pid)) >= 2, proc)
            time.sleep(1.0)
            ours = descendants(proc.pid)
            os.kill(proc.pid, signal.SIGTERM)
        else:
            wait_until(lambda: len(recorded_pids(pids)) >= 2, proc)
            ours = descendants(proc.pid) | recorded_pids(pids)
            target.write_text(str(proc.pid), encoding="utf-8")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, (proc.returncode, err)
        assert error_lines(err) == ["terminated"], err
        assert not gone_within(ours | recorded_pids(pids), GONE_WITHIN)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- references


TRAP = """\
from pathlib import Path
from simulator.strategies import Strategy, no_requests

Path(__file__).with_suffix(".ran").touch()


class Pick(Strategy):
    name = "pick"

    def decide(self, day, accounts):
        return no_requests()
"""


@pytest.fixture
def three_folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A scenario's folder, a sweep's folder and a working folder, each with its own
    ``pick.py`` (which leaves ``pick.ran`` beside itself when imported)."""
    folders = tuple(tmp_path / name for name in ("scenario", "sweep", "work"))
    for path in folders:
        path.mkdir()
        (path / "pick.py").write_text(TRAP, encoding="utf-8")
    (folders[0] / "s.yaml").write_text(SCENARIO.replace("no_contact", "pick.py:Pick"),
                                       encoding="utf-8")
    (folders[1] / "sweep.yaml").write_text(
        "base: ../scenario/s.yaml\nstrategies: [{use: pick.py:Pick}]\n", encoding="utf-8")
    return folders  # type: ignore[return-value]


def ran(*folders: Path) -> list[str]:
    return [p.name for p in folders if (p / "pick.ran").exists()]


def test_a_reference_in_a_scenario_never_runs_the_working_folders_file(
        three_folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    scenario_dir, sweep_dir, work = three_folders
    monkeypatch.chdir(work)
    sc = load_scenario(scenario_dir / "s.yaml")
    build_strategy(sc.strategies[0], np.random.default_rng(0), scenario_dir)
    assert ran(scenario_dir, sweep_dir, work) == ["scenario"]
    # Given in code or on the command line (no file's folder): the working folder's.
    build_strategy(StrategySpec(use="pick.py:Pick"), np.random.default_rng(0), None)
    assert ran(scenario_dir, sweep_dir, work) == ["scenario", "work"]


def test_a_reference_in_a_sweep_file_is_relative_to_the_sweep_file(
        three_folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    scenario_dir, sweep_dir, work = three_folders
    monkeypatch.chdir(work)
    plan = load_sweep(sweep_dir / "sweep.yaml")
    assert ran(scenario_dir, sweep_dir, work) == ["sweep"]
    assert {c.base_dir for c in plan.cells} == {str(sweep_dir)}


def test_a_reference_is_never_looked_up_in_the_working_folder_instead(
        three_folders: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The file beside the scenario is missing: the one of the same name in the working
    folder must not stand in for it."""
    scenario_dir, sweep_dir, work = three_folders
    (scenario_dir / "pick.py").unlink()
    monkeypatch.chdir(work)
    with pytest.raises(StrategyError, match=r"file 'pick\.py' not found"):
        build_strategy(StrategySpec(use="pick.py:Pick"), np.random.default_rng(0),
                       scenario_dir)
    assert ran(scenario_dir, sweep_dir, work) == []


def test_cli_reference_in_a_scenario_resolves_beside_it(
        three_folders: tuple[Path, Path, Path]) -> None:
    scenario_dir, sweep_dir, work = three_folders
    # (A --strategy on the command line is read from the working folder:
    # tests/test_strategies.py::test_cli_relative_file_path_resolves_from_the_working_folder.)
    r = contactsim(["run", "../scenario/s.yaml", "--out", "a", "-q"], cwd=work)
    assert r.returncode == 0, r.stderr
    assert ran(scenario_dir, sweep_dir, work) == ["scenario"]
