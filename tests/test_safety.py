"""Safety: files never run code, output stays in the chosen folder, and a results folder
from another simulator version is recomputed, never mixed into new results.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from simulator.engine import run
from simulator.errors import ScenarioError, UserError
from simulator.experiments.cells import CELL_FIELDS, CellTask, cell_key, simulator_version
from simulator.experiments.outputs import RECORD, write_outputs
from simulator.experiments.sweep import load_sweep, run_sweep
from simulator.scenario import load_scenario, scenario_from_dict
from simulator.strategies import build_strategy

TINY = {"name": "tiny", "seed": 7, "population": {"size": 200}, "horizon_days": 10,
        "agents": {"count": 1}, "strategies": [{"use": "no_contact"}]}

#: YAML that would run a command in an unsafe loader; ``{s}`` is the sentinel file.
PAYLOADS = {
    "object_apply_system": "!!python/object/apply:os.system ['touch {s}']",
    "object_apply_subprocess": "!!python/object/apply:subprocess.call [[touch, '{s}']]",
    "object_new_popen": "!!python/object/new:subprocess.Popen [[touch, '{s}']]",
    "object_apply_exec": "!!python/object/apply:builtins.exec [\"open('{s}', 'w')\"]",
    "object_apply_eval": "!!python/object/apply:builtins.eval [\"open('{s}', 'w')\"]",
    "name_then_apply": "{{f: !!python/name:os.system , c: !!python/object/apply:os.system "
                       "['touch {s}']}}",
}
#: Where a payload goes in a scenario file.
SCENARIO_PLACES = {
    "top": "name: {p}\n",
    "nested": "population: {{size: {p}}}\n",
    "strategy_params": "strategies: [{{use: fixed_cadence, params: {{steps: {p}}}}}]\n",
    "key": "? {p}\n: 1\n",
    "whole_file": "{p}\n",
}
#: Where a payload goes in a sweep file.
SWEEP_PLACES = {
    "base": "base: {p}\n",
    "set": "base: tiny.yaml\nset: {{agents.count: {p}}}\n",
    "grid": "base: tiny.yaml\nfactors: {{grid: {{agents.count: [{p}]}}}}\n",
}


class InProcess:
    """A sweep backend that computes each cell as it is submitted (in this process)."""

    slots = 1

    def submit(self, fn: Any, task: CellTask) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        future.set_result(fn(task))
        return future

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        return {f for f in futures if f.done()}

    def close(self, cancel: bool) -> None:
        pass


def files_under(folder: Path) -> set[str]:
    """Every file and link under ``folder``, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()}


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- no code runs


@pytest.mark.parametrize("place", SCENARIO_PLACES)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_scenario_file_never_runs_code(payload: str, place: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    text = SCENARIO_PLACES[place].format(p=PAYLOADS[payload].format(s=sentinel))
    path = tmp_path / "evil.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load_scenario(path)
    assert not sentinel.exists()


@pytest.mark.parametrize("place", SWEEP_PLACES)
@pytest.mark.parametrize("payload", ["object_apply_system", "object_new_popen"])
def test_a_sweep_file_never_runs_code(payload: str, place: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    write_yaml(tmp_path / "tiny.yaml", TINY)
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP_PLACES[place].format(p=PAYLOADS[payload].format(s=sentinel)),
                    encoding="utf-8")
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load_sweep(path)
    assert not sentinel.exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_set_override_never_runs_code(payload: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    path = write_yaml(tmp_path / "tiny.yaml", TINY)
    for key in ("name", "seed", "strategies.0.params.x"):
        with contextlib.suppress(UserError):  # refused or kept as text: nothing runs
            load_scenario(path, [f"{key}={PAYLOADS[payload].format(s=sentinel)}"])
    assert not sentinel.exists()


def test_the_command_line_never_runs_code_from_a_file(tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: {PAYLOADS['object_apply_system'].format(s=sentinel)}\n",
                    encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "simulator", "run", str(path)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert not sentinel.exists()


def test_code_beside_a_scenario_is_not_imported_unless_named(tmp_path: Path) -> None:
    """Only an explicit ``file.py:Class`` or ``module:Class`` reference loads code."""
    sentinel = tmp_path / "ran"
    trap = f"open({str(sentinel)!r}, 'w').close()\n"
    for name in ("no_contact", "fixed_cadence", "builtin", "strategies", "tiny", "simulator",
                 "sweep"):
        (tmp_path / f"{name}.py").write_text(trap, encoding="utf-8")
    data = {**TINY, "strategies": [{"use": "no_contact"}, {"use": "fixed_cadence"}]}
    path = write_yaml(tmp_path / "tiny.yaml", data)
    sc = load_scenario(path)
    for spec in sc.strategies:
        build_strategy(spec, np.random.default_rng(0), tmp_path)
    (tmp_path / "sweep.yaml").write_text("base: tiny.yaml\n", encoding="utf-8")
    load_sweep(tmp_path / "sweep.yaml")
    assert not sentinel.exists()


# --------------------------------------------------------------------------- output paths

HOSTILE_LABELS = ["../../evil", "/tmp/contactsim-evil", "..", ".", "a/b\\c", "kpis.csv",
                  "~/.bashrc", "nul\x00byte", "line\nbreak", "$(touch pwned)", "*"]


def test_hostile_labels_never_steer_where_results_go(tmp_path: Path) -> None:
    work = tmp_path / "work" / "deep" / "deeper"
    work.mkdir(parents=True)
    data = {**TINY, "name": "../../escaped",
            "strategies": [{"use": "no_contact", "label": label} for label in HOSTILE_LABELS]}
    sc = scenario_from_dict(data)
    results = [run(sc, spec, seed=1) for spec in sc.strategies]
    before = files_under(tmp_path)
    out = work / "out"
    paths = write_outputs(results, sc, out)
    written = files_under(tmp_path) - before
    assert written == {str((out / name).relative_to(tmp_path)) for name in (
        "kpis.csv", "summary.csv", "daily.parquet", "accounts.parquet", "events.parquet",
        "agents_daily.parquet", "scenario.resolved.yaml", RECORD)}
    assert {p.parent for p in paths.values()} == {out}
    assert not Path("/tmp/contactsim-evil").exists()
    daily = pd.read_parquet(out / "daily.parquet")
    assert list(daily["strategy"].unique()) == HOSTILE_LABELS  # the labels survive, as data


def test_hostile_labels_never_steer_a_sweep(tmp_path: Path) -> None:
    write_yaml(tmp_path / "tiny.yaml", TINY)
    labels = ["../../evil", "/tmp/contactsim-evil", "cells", "kpis.csv"]
    sweep = {"name": "../../evil-sweep", "base": "tiny.yaml",
             "factors": {"grid": {"agents.count": [1, 2]}},
             "strategies": [{"use": "no_contact", "label": label} for label in labels]}
    path = write_yaml(tmp_path / "sweep.yaml", sweep)
    plan = load_sweep(path)
    out = tmp_path / "work" / "out"
    report = run_sweep(plan, out, InProcess())
    assert report.computed == 8 and report.failed == 0
    assert files_under(tmp_path) == {
        "tiny.yaml", "sweep.yaml", "work/out/kpis.csv", "work/out/sweep.resolved.yaml",
        f"work/out/{RECORD}", *(f"work/out/cells/{c.key}.json" for c in plan.unique_cells())}
    assert all(len(c.key) == 64 and set(c.key) <= set("0123456789abcdef")
               for c in plan.unique_cells())
    assert not Path("/tmp/contactsim-evil").exists()


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/contactsim-evil-name", "..", "a/../.."])
@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_scenario_name_never_steers_the_default_output_folder(
        command: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is data: it becomes one plain folder under out/."""
    from simulator.cli import app

    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    data = {**TINY, "name": name, "replications": 2,
            "strategies": [{"use": "no_contact"}, {"use": "no_contact", "label": "again"}]}
    write_yaml(work / "tiny.yaml", data)
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, [command, "tiny.yaml", "-q"])
    assert result.exit_code == 0, result.output
    written = files_under(tmp_path) - {"work/deep/tiny.yaml"}
    folders = {Path(f).parent for f in written}
    assert len(folders) == 1 and folders.pop().parent == Path("work/deep/out"), written
    assert all(not Path(f).name.startswith(".") or Path(f).name == RECORD for f in written)
    assert not Path("/tmp/contactsim-evil-name").exists()


def test_a_planted_link_never_redirects_a_write(tmp_path: Path) -> None:
    """A symbolic link in place of an output or a temporary file is replaced or
    removed, not followed: the file it points to is left alone. (Temporary names are
    unique and created exclusively, so a link cannot be planted where one will be.)"""
    precious = tmp_path / "precious.txt"
    precious.write_text("precious", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    planted = out / ".kpis.csv.contactsim-abc123.tmp"  # like one a killed run left
    planted.symlink_to(precious)
    (out / "summary.csv").symlink_to(precious)
    sc = scenario_from_dict(TINY)
    write_outputs([run(sc, sc.strategies[0], seed=1)], sc, out)
    assert precious.read_text(encoding="utf-8") == "precious"
    for name in ("kpis.csv", "summary.csv"):
        assert (out / name).is_file() and not (out / name).is_symlink()
    assert not planted.is_symlink() and not planted.exists()


def test_an_unwritable_output_folder_is_a_one_line_error(tmp_path: Path) -> None:
    sc = scenario_from_dict(TINY)
    results = [run(sc, sc.strategies[0], seed=1)]
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    for out in (blocker, blocker / "sub", tmp_path / "nul\x00name"):
        with pytest.raises(UserError, match="cannot create output folder") as err:
            write_outputs(results, sc, out)
        assert len(str(err.value).splitlines()) == 1


# --------------------------------------------------------------------------- never mixed


def test_a_rerun_leaves_no_file_of_the_previous_run(tmp_path: Path) -> None:
    """Optional outputs an earlier run wrote (the event log, KPIs by arm) are removed when
    this run does not write them, so the folder holds one run only."""
    split = scenario_from_dict({**TINY, "strategies": [{
        "use": "champion_challenger", "label": "cc", "params": {"arms": [
            {"use": "fixed_cadence", "label": "champion", "share": 0.5},
            {"use": "no_contact", "label": "challenger", "share": 0.5}]}}]})
    out = tmp_path / "out"
    write_outputs([run(split, split.strategies[0], seed=1)], split, out, events=True)
    assert (out / "events.parquet").exists() and (out / "kpis_by_arm.csv").exists()
    sc = scenario_from_dict(TINY)
    paths = write_outputs([run(sc, sc.strategies[0], seed=1)], sc, out, events=False)
    assert set(os.listdir(out)) == {p.name for p in paths.values()} | {RECORD}


def test_a_sweep_folder_from_another_version_is_recomputed_not_mixed(tmp_path: Path) -> None:
    write_yaml(tmp_path / "tiny.yaml", TINY)
    sweep = {"base": "tiny.yaml", "factors": {"grid": {"agents.count": [1, 2]}},
             "strategies": [{"use": "no_contact"}, {"use": "fixed_cadence"}]}
    plan = load_sweep(write_yaml(tmp_path / "sweep.yaml", sweep))
    out = tmp_path / "out"
    first = run_sweep(plan, out, InProcess())
    assert first.computed == 4
    expected = pd.read_csv(out / "kpis.csv")

    # Another version's folder: every cell file and the resolved sweep say another version,
    # with KPIs that are not these results; plus a cell of some other plan.
    sentinel = 123456.0
    for path in (out / "cells").glob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        record["simulator_version"] = "0.0.1-other"
        record["kpis"] = {k: sentinel for k in record["kpis"]}
        path.write_text(json.dumps(record), encoding="utf-8")
    foreign = {**record, "key": "f" * 64, "simulator_version": simulator_version()}
    (out / "cells" / f"{'f' * 64}.json").write_text(json.dumps(foreign), encoding="utf-8")
    resolved = yaml.safe_load((out / "sweep.resolved.yaml").read_text(encoding="utf-8"))
    resolved["simulator_version"] = "0.0.1-other"
    write_yaml(out / "sweep.resolved.yaml", resolved)

    again = run_sweep(plan, out, InProcess())
    assert (again.reused, again.replaced, again.computed) == (0, 4, 4)
    kpis = pd.read_csv(out / "kpis.csv")
    pd.testing.assert_frame_equal(kpis, expected)
    assert not (kpis.select_dtypes("number") == sentinel).any().any()
    for c in plan.unique_cells():
        record = json.loads((out / "cells" / f"{c.key}.json").read_text(encoding="utf-8"))
        assert tuple(record) == CELL_FIELDS
        assert record["simulator_version"] == simulator_version()
    resolved = yaml.safe_load((out / "sweep.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["simulator_version"] == simulator_version()


def test_cell_keys_differ_between_versions() -> None:
    """Another version's cells have other keys: they can never stand in for this one's."""
    scenario = {"population": {"size": 200}}
    spec: dict[str, Any] = {"use": "no_contact", "params": {}, "label": None}
    assert cell_key(scenario, spec, 1) == cell_key(scenario, spec, 1, simulator_version())
    assert cell_key(scenario, spec, 1) != cell_key(scenario, spec, 1, "0.0.1-other")
