"""Faulty strategies: a run stops with a ``StrategyError`` naming the strategy, the sim day
and the first offending rows (on the command line: exit 2, one line); in a sweep the
cell is recorded as failed with its error and the sweep goes on, unless ``--fail-fast``.

The faulty strategies live in a plug-in file, as a strategy team's half-finished code
would. Each behaves for a few epochs, then breaks on ``FAULT_DAY``; one kills its own
process, which in a sweep breaks the worker pool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from simulator.engine import run
from simulator.errors import StrategyError, UserError
from simulator.experiments.backends import LocalPool
from simulator.experiments.cells import CellTask, run_cell
from simulator.experiments.sweep import load_sweep, run_sweep
from simulator.scenario import Scenario, StrategySpec, load_scenario

FAULT_DAY = 3

PLUGIN = '''\
"""Strategies with one fault each: they behave until FAULT_DAY, then break."""

import os
import sys
import time

import numpy as np
import pandas as pd

from simulator.strategies import Strategy, make_requests

FAULT_DAY = 3


class Faulty(Strategy):
    """Texts five open accounts a day, then calls ``fault`` on FAULT_DAY and after."""

    name = "faulty"

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        if day < FAULT_DAY:
            return make_requests(accounts.index[:5], "sms", 10)
        return self.fault(accounts)

    def fault(self, accounts: pd.DataFrame) -> object:
        raise NotImplementedError


def frame(ids, channel="sms", hour=10.0, **extra) -> pd.DataFrame:
    n = len(ids)
    data = {"account_id": list(ids), "channel": [channel] * n, "hour": [hour] * n}
    data.update(extra)
    return pd.DataFrame(data)


class Raises(Faulty):
    def fault(self, accounts):
        raise RuntimeError("forgot to handle an empty segment")


class RaisesInLearn(Faulty):
    def learn(self, outcomes):
        if len(outcomes) and outcomes["t"].max() >= FAULT_DAY - 1:
            raise KeyError("promise_amount")


class RaisesInInit(Faulty):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        raise ValueError("config table missing")


class ReturnsList(Faulty):
    def fault(self, accounts):
        return [(int(accounts.index[0]), "sms", 10.0)]


class ReturnsNone(Faulty):
    def fault(self, accounts):
        return None


class MissingColumn(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2]).drop(columns="hour")


class ExtraColumn(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], note=["x", "y"])


class UnknownIds(Faulty):
    def fault(self, accounts):
        return frame([int(accounts.index[0]), 987654321])


class NegativeIds(Faulty):
    def fault(self, accounts):
        return frame([-7])


class FractionalIds(Faulty):
    def fault(self, accounts):
        return frame([1.5])


class NaNIds(Faulty):
    def fault(self, accounts):
        return frame([float("nan")])


class HugeIds(Faulty):
    def fault(self, accounts):
        return frame([1e30])


class UnknownChannel(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], channel="fax")


class NumericChannel(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], channel=3)


class StringIds(Faulty):
    def fault(self, accounts):
        return frame([str(i) for i in accounts.index[:2]])


class HourString(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], hour="10")


class HourBool(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], hour=True)


class PriorityString(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], priority=["1", "2"])


class Hour24(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], hour=24.0)


class HourNegative(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], hour=-1.0)


class HourNaN(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], hour=float("nan"))


class HourInf(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], hour=float("inf"))


class HourText(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], hour="ten")


class PriorityNaN(Faulty):
    def fault(self, accounts):
        return frame(accounts.index[:2], priority=[0.0, float("nan")])


class Duplicates(Faulty):
    def fault(self, accounts):
        first = int(accounts.index[0])
        return frame([first, int(accounts.index[1]), first])


class Slow(Faulty):
    def fault(self, accounts):
        time.sleep(5)
        return frame([])


class SlowLearn(Faulty):
    def learn(self, outcomes):
        if len(outcomes) and outcomes["t"].max() >= FAULT_DAY - 1:
            time.sleep(5)


class MultiLineError(Faulty):
    def fault(self, accounts):
        raise ValueError("first line of the problem\\nsecond line of the problem")


class Exits(Faulty):
    def fault(self, accounts):
        sys.exit(4)


class Dies(Faulty):
    def fault(self, accounts):
        os._exit(9)


class ColumnsRaise(Faulty):
    def view_columns(self):
        raise KeyError("no such feature list")


class ColumnsSlow(Faulty):
    def view_columns(self):
        time.sleep(5)
        return None


class ColumnsUnknown(Faulty):
    def view_columns(self):
        return ["dpd", "segment"]


class ColumnsTooFew(Faulty):
    """Names the days past due only, then reads the amount due."""

    def view_columns(self):
        return ["dpd"]

    def fault(self, accounts):
        return frame(accounts.index[accounts["amount_due"] > 0][:2])


class SwallowsTimeout(Faulty):
    """Catches every Exception around its slow work (once), as careless code does."""

    slow = True

    def fault(self, accounts):
        end = time.monotonic() + (3 if self.slow else 0)
        self.slow = False
        while time.monotonic() < end:
            try:
                time.sleep(0.05)
            except Exception:
                pass
        return frame([])
'''

SCENARIO = """\
name: faulty
seed: 7
population: {size: 300}
horizon_days: 12
agents: {count: 1}
decision: {timeout_seconds: 1}
strategies: [{use: no_contact}]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faulty")
    (path / "faulty.py").write_text(PLUGIN, encoding="utf-8")
    (path / "faulty.yaml").write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scenario(folder: Path) -> Scenario:
    return load_scenario(folder / "faulty.yaml")


def run_faulty(scenario: Scenario, folder: Path, cls: str) -> StrategyError:
    """Run the faulty strategy ``cls`` (labelled as its lower-case name); return its error."""
    spec = StrategySpec(use=f"faulty.py:{cls}", label=cls.lower())
    with pytest.raises(StrategyError) as err:
        run(scenario, spec, seed=1, base_dir=folder)
    return err.value


# (class, what the message says, the offending value shown in the rows or None)
FAULTS: list[tuple[str, str, str | None]] = [
    ("Raises", "decide() raised RuntimeError: forgot to handle an empty segment", None),
    ("ReturnsList", "must return a pandas DataFrame, got list", None),
    ("ReturnsNone", "must return a pandas DataFrame, got NoneType", None),
    ("MissingColumn", "lack column(s) hour", None),
    ("ExtraColumn", "unexpected request column(s) note", None),
    ("UnknownIds", "not among today's open accounts", "987654321"),
    ("NegativeIds", "not among today's open accounts", "-7"),
    ("FractionalIds", "account_id must be whole numbers", "1.5"),
    ("NaNIds", "account_id must be whole numbers", "nan"),
    ("HugeIds", "not among today's open accounts", "1e+30"),
    ("UnknownChannel", "unknown channel", "'fax'"),
    ("NumericChannel", "unknown channel", "'channel': 3"),
    ("Hour24", "hour must be a number with 0 <= hour < 24", "24.0"),
    ("HourNegative", "hour must be a number with 0 <= hour < 24", "-1.0"),
    ("HourNaN", "hour must be a number with 0 <= hour < 24", "nan"),
    ("HourInf", "hour must be a number with 0 <= hour < 24", "inf"),
    ("HourText", "hour must be a number with 0 <= hour < 24", "'ten'"),
    ("PriorityNaN", "priority must be a finite number", "nan"),
    # Wrong types are not converted: text that reads as a number is still text.
    ("StringIds", "account_id must be whole numbers", "'account_id': '"),
    ("HourString", "hour must be a number with 0 <= hour < 24", "'hour': '10'"),
    ("HourBool", "hour must be a number with 0 <= hour < 24", "'hour': True"),
    ("PriorityString", "priority must be a finite number", "'priority': '1'"),
    ("Duplicates", "duplicate requests", None),
    ("Slow", "decide() took longer than 1 s", None),
]


@pytest.mark.parametrize(
    ("cls", "says", "row"),
    [pytest.param(*f, id=f[0], marks=[pytest.mark.filterwarnings("ignore::RuntimeWarning")]
                  if f[0] == "HugeIds" else []) for f in FAULTS])
def test_a_faulty_decision_stops_the_run_naming_strategy_day_and_rows(
        cls: str, says: str, row: str | None, scenario: Scenario, folder: Path) -> None:
    message = str(run_faulty(scenario, folder, cls))
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"strategy '{cls.lower()}': on day {FAULT_DAY}: "), message
    assert says in message, message
    if row is not None:
        assert "first offending rows: [{" in message and row in message, message


def test_a_faulty_learn_names_the_strategy_and_day(scenario: Scenario, folder: Path) -> None:
    message = str(run_faulty(scenario, folder, "RaisesInLearn"))
    assert message.startswith(f"strategy 'raisesinlearn': on day {FAULT_DAY}: learn() raised "
                              "KeyError"), message
    message = str(run_faulty(scenario, folder, "SlowLearn"))
    assert message == (f"strategy 'slowlearn': on day {FAULT_DAY}: learn() took longer than "
                       "1 s (decision.timeout_seconds)")


@pytest.mark.parametrize(("cls", "says"), [
    ("ColumnsRaise", "on day 0: view_columns() raised KeyError: 'no such feature list'"),
    ("ColumnsSlow", "on day 0: view_columns() took longer than 1 s"),
    ("ColumnsUnknown", "view_columns() names unknown column(s) segment; the view has status, "),
    ("ColumnsTooFew", f"on day {FAULT_DAY}: decide() raised KeyError: 'amount_due'"),
])
def test_faulty_view_columns_stop_the_run_with_one_line(cls: str, says: str,
                                                        scenario: Scenario,
                                                        folder: Path) -> None:
    # A latent trait ("segment") is as unknown to the view as a misspelt column.
    message = str(run_faulty(scenario, folder, cls))
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"strategy '{cls.lower()}': "), message
    assert says in message, message


@pytest.mark.parametrize(("cls", "says"), [
    ("Raises", "decide() raised RuntimeError: forgot to handle an empty segment"),
    ("Hour24", "hour must be a number with 0 <= hour < 24; first offending rows: [{"),
    ("UnknownIds", "account_id not among this arm's open accounts; first offending rows"),
    ("RaisesInLearn", "learn() raised KeyError: 'promise_amount'"),
    ("ColumnsRaise", "view_columns() raised KeyError: 'no such feature list'"),
])
def test_a_faulty_arm_of_champion_challenger_is_named(cls: str, says: str,
                                                      scenario: Scenario,
                                                      folder: Path) -> None:
    """The error names the container (by its label) and the arm (by its own)."""
    spec = StrategySpec(use="champion_challenger", label="split", params={"arms": [
        {"use": "no_contact", "share": 0.5, "label": "champion"},
        {"use": f"faulty.py:{cls}", "share": 0.5, "label": "challenger"}]})
    with pytest.raises(StrategyError) as err:
        run(scenario, spec, seed=1, base_dir=folder)
    day = 0 if cls.startswith("Columns") else FAULT_DAY
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"strategy 'split': on day {day}: arm 'challenger': {says}"), (
        message)


def test_a_constructor_that_raises_names_the_strategy(scenario: Scenario,
                                                      folder: Path) -> None:
    spec = StrategySpec(use="faulty.py:RaisesInInit", label="init")
    with pytest.raises(StrategyError) as err:
        run(scenario, spec, seed=1, base_dir=folder)
    assert str(err.value) == ("strategy 'init': constructor failed: ValueError: config table "
                              "missing")


def test_offending_rows_are_the_first_few_only(scenario: Scenario, folder: Path) -> None:
    message = str(run_faulty(scenario, folder, "Duplicates"))
    assert message.count("'account_id'") == 2  # the two rows of the duplicated request


def test_huge_ids_warn_nothing(scenario: Scenario, folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_faulty(scenario, folder, "HugeIds")
    assert not caught, [str(w.message) for w in caught]


def test_a_multi_line_exception_gives_a_one_line_error(scenario: Scenario,
                                                       folder: Path) -> None:
    message = str(run_faulty(scenario, folder, "MultiLineError"))
    assert len(message.splitlines()) == 1, message


def test_sys_exit_in_a_strategy_is_a_strategy_error(scenario: Scenario, folder: Path) -> None:
    message = str(run_faulty(scenario, folder, "Exits"))
    assert f"on day {FAULT_DAY}" in message


def test_a_strategy_cannot_swallow_its_timeout(scenario: Scenario, folder: Path) -> None:
    message = str(run_faulty(scenario, folder, "SwallowsTimeout"))
    assert "took longer than 1 s" in message


def test_a_tiny_timeout_is_a_strategy_error(scenario: Scenario) -> None:
    tiny = scenario.model_copy(update={"decision": scenario.decision.model_copy(
        update={"timeout_seconds": 1e-6})})
    with pytest.raises(StrategyError, match="took longer than"):
        run(tiny, StrategySpec(use="fixed_cadence"), seed=1)


# --------------------------------------------------------------------------- command line


def contactsim(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


CLI_FAULTS: list[tuple[str, str, str | None]] = [
    ("Raises", "decide() raised RuntimeError", None),
    ("UnknownChannel", "unknown channel; expected one of push, email, sms, robocall, "
                       "agent_call; first offending rows: [{", None),
    ("Slow", "decide() took longer than 1 s", None),
    ("MultiLineError", "first line", None),
    ("Exits", f"on day {FAULT_DAY}", None),
    ("HugeIds", "first offending rows", None),
]


@pytest.fixture(scope="module")
def cli_results(folder: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    def one(cls: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        return cls, contactsim(["run", "faulty.yaml", "-s", f"faulty.py:{cls}", "--out",
                                f"out_{cls}", "-q"], cwd=folder)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, [c for c, _, _ in CLI_FAULTS]))


@pytest.mark.parametrize(
    ("cls", "says"),
    [pytest.param(c, s, id=c, marks=[pytest.mark.xfail(strict=True, reason=x)] if x else [])
     for c, s, x in CLI_FAULTS])
def test_cli_run_with_a_faulty_strategy_exits_2_in_one_line(
        cls: str, says: str, cli_results: dict[str, subprocess.CompletedProcess[str]],
        folder: Path) -> None:
    r = cli_results[cls]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1, r.stderr
    # A file reference on the command line is resolved to an absolute path.
    assert lines[0].startswith(f"error: strategy '{folder / 'faulty.py'}:{cls}': "
                               f"on day {FAULT_DAY}: "), lines[0]
    assert says in lines[0], lines[0]
    assert not (folder / f"out_{cls}").exists()  # a failed run writes no results


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_run_with_a_strategy_that_ends_its_process_exits_2_in_one_line(
        folder: Path, workers: str) -> None:
    # With one worker too: plug-in code runs in a supervised child, never in contactsim's
    # own process, and the supervisor names the strategy, the day and how it ended.
    r = contactsim(["run", "faulty.yaml", "-s", "faulty.py:Dies", "-s", "no_contact", "-w",
                    workers, "--out", "out_dies", "-q"], cwd=folder)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    assert lines[0] == (f"error: strategy '{folder / 'faulty.py'}:Dies': on day {FAULT_DAY}: "
                        "decide() ended its process (exit code 9)"), lines[0]
    assert not (folder / "out_dies").exists()


def test_a_plugin_arm_of_a_built_in_also_runs_in_a_supervised_child(folder: Path) -> None:
    # champion_challenger is built in, but one of its arms is plug-in code.
    (folder / "split.yaml").write_text(SCENARIO.replace(
        "strategies: [{use: no_contact}]",
        "strategies: [{use: champion_challenger, params: {arms: [\n"
        "  {use: no_contact, share: 0.5}, {use: 'faulty.py:Dies', share: 0.5}]}}]"),
        encoding="utf-8")
    r = contactsim(["run", "split.yaml", "-w", "1", "--out", "out_split", "-q"], cwd=folder)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    assert lines[0] == (f"error: strategy 'champion_challenger': on day {FAULT_DAY}: decide() "
                        "ended its process (exit code 9)"), lines[0]


# --------------------------------------------------------------------------- sweeps


class InProcess:
    """A sweep backend that computes each cell as it is submitted (in this process)."""

    slots = 1

    def submit(self, fn: Any, task: CellTask) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        try:
            future.set_result(fn(task))
        except Exception as exc:  # the sweep reports it as a failed cell
            future.set_exception(exc)
        return future

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        return {f for f in futures if f.done()}

    def close(self, cancel: bool) -> None:
        pass


def write_sweep(folder: Path, name: str, classes: list[str], replications: int = 1) -> Path:
    arms = ", ".join([*(f"{{use: 'faulty.py:{c}', label: {c.lower()}}}" for c in classes),
                      "{use: no_contact}"])
    path = folder / f"{name}.yaml"
    path.write_text(f"base: faulty.yaml\nstrategies: [{arms}]\n"
                    f"replications: {replications}\n", encoding="utf-8")
    return path


def cell_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in (out / "cells").glob("*.json")]


SWEEP_FAULTS = ["Raises", "ReturnsList", "UnknownChannel", "Hour24", "Duplicates", "Slow"]


def test_sweep_records_each_faulty_cell_and_goes_on(folder: Path, tmp_path: Path) -> None:
    plan = load_sweep(write_sweep(folder, "mixed", SWEEP_FAULTS))
    report = run_sweep(plan, tmp_path / "out", InProcess())
    assert not report.stopped
    assert (report.failed, report.computed) == (len(SWEEP_FAULTS), 1)
    records = {r["strategy"]: r for r in cell_records(tmp_path / "out")}
    assert records["no_contact"]["status"] == "ok"
    for cls in SWEEP_FAULTS:
        rec = records[cls.lower()]
        assert rec["status"] == "failed" and rec["kpis"] == {}
        assert rec["error"].startswith(f"StrategyError: strategy '{cls.lower()}': on day "
                                       f"{FAULT_DAY}: "), rec["error"]
    assert list(report.kpis["strategy"]) == ["no_contact"]  # type: ignore[index]


def test_fail_fast_stops_at_the_first_failed_cell(folder: Path, tmp_path: Path) -> None:
    plan = load_sweep(write_sweep(folder, "fast", ["Raises", "Hour24"], replications=2))
    report = run_sweep(plan, tmp_path / "out", InProcess(), fail_fast=True)
    assert report.stopped and report.failed == 1 and report.computed == 0
    [record] = cell_records(tmp_path / "out")
    assert record["strategy"] == "raises" and record["replication"] == 0
    assert "decide() raised RuntimeError" in record["error"]


def test_timeouts_are_enforced_in_pool_workers(folder: Path, tmp_path: Path) -> None:
    plan = load_sweep(write_sweep(folder, "pool", ["Slow"]))
    report = run_sweep(plan, tmp_path / "out", LocalPool(1))
    assert (report.failed, report.computed) == (1, 1)
    [failed] = report.failures
    assert failed["error"] == (f"StrategyError: strategy 'slow': on day {FAULT_DAY}: decide() "
                               "took longer than 1 s (decision.timeout_seconds)")


def test_sys_exit_in_a_pool_worker_is_a_failed_cell(folder: Path, tmp_path: Path) -> None:
    plan = load_sweep(write_sweep(folder, "exits", ["Exits"]))
    try:
        report = run_sweep(plan, tmp_path / "out", LocalPool(1))
    except BaseException as exc:  # escaping is the failure being shown
        pytest.fail(f"{type(exc).__name__} escaped the sweep")
    assert (report.failed, report.computed) == (1, 1)


ENDED = (f"StrategyError: strategy 'dies': on day {FAULT_DAY}: decide() ended its process "
         "(exit code 9)")


def test_a_strategy_that_ends_its_process_fails_only_its_cell(folder: Path,
                                                              tmp_path: Path) -> None:
    plan = load_sweep(write_sweep(folder, "dies", ["Dies"], replications=2))
    report = run_sweep(plan, tmp_path / "out", LocalPool(1))
    assert report.computed == 2, [f["error"] for f in report.failures]
    assert [(f["strategy"], f["replication"]) for f in report.failures] == [("dies", 0),
                                                                            ("dies", 1)]
    assert {f["error"] for f in report.failures} == {ENDED}
    records = cell_records(tmp_path / "out")
    assert sorted((r["strategy"], r["status"]) for r in records) == [
        ("dies", "failed"), ("dies", "failed"), ("no_contact", "ok"), ("no_contact", "ok")]


def run_or_die(task: CellTask) -> dict[str, Any]:
    """``run_cell``, except that a cell of the arm labelled ``doomed`` kills its worker
    (as the out-of-memory killer would: plug-in code cannot, it runs in a child)."""
    if task.spec.get("label") == "doomed":
        os._exit(9)
    return run_cell(task)


class KillingPool(LocalPool):
    """A local pool whose workers die on the cells of the arm labelled ``doomed``."""

    def submit(self, fn: Any, task: CellTask) -> Any:
        return super().submit(run_or_die, task)


def write_doomed_sweep(folder: Path, name: str, replications: int,
                       raises: bool = True) -> Path:
    arms = "{use: 'faulty.py:Raises', label: raises}, " if raises else ""
    path = folder / f"{name}.yaml"
    path.write_text(f"base: faulty.yaml\nstrategies: [{arms}{{use: no_contact, label: doomed}}, "
                    f"{{use: no_contact}}]\nreplications: {replications}\n", encoding="utf-8")
    return path


def test_with_several_workers_only_the_cells_of_a_killed_worker_fail(
        folder: Path, tmp_path: Path) -> None:
    """A worker that dies breaks the local pool and every cell in flight: the healthy ones
    are rerun, not failed, and the KPIs are those of a sweep without the doomed arm."""
    killed = load_sweep(write_doomed_sweep(folder, "doomed", replications=3))
    report = run_sweep(killed, tmp_path / "killed", KillingPool(2))
    assert (report.computed, report.failed) == (3, 6), report.failures
    errors = {(f["strategy"], f["error"].split(":")[0]) for f in report.failures}
    assert errors == {("raises", "StrategyError"),
                      ("doomed", "worker process died (exit code 9)")}
    clean = run_sweep(load_sweep(write_sweep(folder, "clean", [], replications=3)),
                      tmp_path / "clean", InProcess())
    assert report.kpis is not None and clean.kpis is not None
    pd.testing.assert_frame_equal(report.kpis, clean.kpis)


def test_with_several_workers_a_strategy_that_ends_its_process_fails_only_its_cells(
        folder: Path, tmp_path: Path) -> None:
    plan = load_sweep(write_sweep(folder, "dies2", ["Raises", "Dies"], replications=3))
    report = run_sweep(plan, tmp_path / "out", LocalPool(2))
    assert (report.computed, report.failed) == (3, 6), report.failures
    assert {f["error"] for f in report.failures if f["strategy"] == "dies"} == {ENDED}


def test_fail_fast_stops_at_a_killed_worker(folder: Path, tmp_path: Path) -> None:
    plan = load_sweep(write_doomed_sweep(folder, "doomedfast", replications=2, raises=False))
    report = run_sweep(plan, tmp_path / "out", KillingPool(2), fail_fast=True)
    assert report.stopped and report.failed == 1 and report.computed == 0
    assert report.failures[0]["error"] == "worker process died (exit code 9)"
    plan = load_sweep(write_sweep(folder, "diesfast", ["Dies"], replications=2))
    report = run_sweep(plan, tmp_path / "out2", LocalPool(2), fail_fast=True)
    assert report.stopped and report.failed == 1 and report.computed == 0
    assert report.failures[0]["error"] == ENDED


def test_cli_sweep_with_faulty_cells_exits_1_and_keeps_the_good_ones(
        folder: Path, tmp_path: Path) -> None:
    sweep = write_sweep(folder, "cli", ["Raises", "Slow", "NaNIds"])
    out = tmp_path / "out"
    r = contactsim(["sweep", str(sweep), "--out", str(out), "-w", "2", "-q"], cwd=folder)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "computed 1, reused 0, failed 3" in r.stdout
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr
    assert "3 cell(s) failed; first: raises" in r.stderr
    records = {rec["strategy"]: rec for rec in cell_records(out)}
    assert records["no_contact"]["status"] == "ok"
    assert "took longer than 1 s" in records["slow"]["error"]
    assert "account_id must be whole numbers" in records["nanids"]["error"]
    assert (out / "kpis.csv").read_text(encoding="utf-8").count("\nno_contact,") == 1


def test_a_strategy_error_is_a_user_error() -> None:
    # The command line turns every UserError into exit code 2 and one line.
    assert issubclass(StrategyError, UserError)
