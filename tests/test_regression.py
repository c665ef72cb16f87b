"""``contactsim check``: regression scenarios held to their baselines.

The shipped set must pass, quickly, with the same verdict however it is run; a copy of
a scenario with one behaviour parameter changed must fail and name what moved; bad
input must exit 2 with one line; baselines change only with ``--update``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from simulator.cli import app
from simulator.cli.check import number
from simulator.experiments.regression import (
    BaselineFile,
    KpiBaseline,
    baseline_path_of,
    discover,
    judge,
    summarise_values,
)
from simulator.scenario import Channels

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "scenarios" / "regression"


def contactsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The installed ``contactsim`` script, as a CI job runs it.

    (Not ``python -m simulator.cli``: run as ``__main__`` that module is a second copy of
    ``simulator.cli``, and sub-commands register on the other copy's app.)
    """
    script = Path(sys.executable).with_name("contactsim")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from simulator.cli import main; main()"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def invoke(*args: str) -> Any:
    """Run the command in-process (fast, for the cases that stop before simulating)."""
    return CliRunner().invoke(app, list(args))


def failed_in_summary(stdout: str) -> list[str]:
    """KPI names from the lines that follow 'KPIs left their band:'."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "left their band:" in line)
    named = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        named.append(line.split(":")[1].split()[-1])
    return named


# --------------------------------------------------------------------------- the shipped set


@pytest.fixture(scope="module")
def shipped_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """The whole shipped set checked twice: with one worker process and with two."""
    out = tmp_path_factory.mktemp("shipped")
    runs: dict[int, dict[str, Any]] = {}
    for workers in (1, 2):
        report = out / f"w{workers}.json"
        start = time.perf_counter()
        r = contactsim("check", str(SHIPPED), "--workers", str(workers), "--json", str(report))
        runs[workers] = {"proc": r, "seconds": time.perf_counter() - start,
                         "verdicts": json.loads(report.read_text()) if report.exists() else None}
    return runs


def test_shipped_set_passes(shipped_runs: dict[int, dict[str, Any]]) -> None:
    for workers, run in shipped_runs.items():
        r = run["proc"]
        assert r.returncode == 0, r.stdout + r.stderr
        assert "inside their bands" in r.stdout
        print(f"\ncontactsim check, whole shipped set, --workers {workers}: "
              f"{run['seconds']:.1f} s wall")  # printed, not asserted: no timed tests
    verdicts = shipped_runs[1]["verdicts"]
    scenarios = {v["scenario"] for v in verdicts}
    assert scenarios == {"self_cure", "cadence_cn2026", "capacity_calls", "us_reg_f_caps",
                         "churn_heavy", "early_warning"}
    assert {v["mode"] for v in verdicts} == {"replications", "deterministic"}


def test_same_verdict_run_twice_and_with_any_worker_count(
        shipped_runs: dict[int, dict[str, Any]]) -> None:
    one, two = shipped_runs[1]["verdicts"], shipped_runs[2]["verdicts"]
    assert one == two  # observed values equal to the last bit, not only the statuses

    def table(stdout: str) -> list[str]:  # the summary line carries the wall time
        return [line for line in stdout.splitlines() if "inside their bands" not in line]

    assert table(shipped_runs[1]["proc"].stdout) == table(shipped_runs[2]["proc"].stdout)


def test_shipped_scenarios_show_their_mechanisms(shipped_runs: dict[int, dict[str, Any]]) -> None:
    """Each scenario exercises what it is named after (so a baseline of zeros cannot pass)."""
    got = {(v["scenario"], v["arm"], v["kpi"]): v["observed"]
           for v in shipped_runs[1]["verdicts"]}
    assert got[("self_cure", "no_contact", "contacts")] == 0
    assert 0.35 <= got[("self_cure", "no_contact", "cure_rate_30")] <= 0.65
    assert got[("cadence_cn2026", "cadence", "blocked_quiet_hours_22_08")] > 0
    assert got[("capacity_calls", "call_everyone_daily", "calls_dropped")] > 0
    assert got[("capacity_calls", "call_everyone_daily", "agent_utilisation")] > 0.8
    for rule in ("call_attempts_per_7_days", "7_days_after_conversation",
                 "inconvenient_time_21_08"):
        assert got[("us_reg_f_caps", "too_many_calls", f"blocked_{rule}")] > 0
    assert (got[("churn_heavy", "heavy", "churn_rate")]
            > 3 * got[("churn_heavy", "moderate", "churn_rate")])
    assert (got[("early_warning", "pre_due_sms", "delinquency_rate")]
            < got[("early_warning", "no_contact", "delinquency_rate")])
    assert all(value == 0 for (_, _, kpi), value in got.items() if kpi == "violations")


# --------------------------------------------------------------------------- a change moves KPIs


def _copy_case(name: str, dest: Path) -> Path:
    dest.mkdir()
    shutil.copy(SHIPPED / f"{name}.yaml", dest)
    shutil.copy(SHIPPED / f"{name}.baseline.yaml", dest)
    return dest / f"{name}.yaml"


def test_changed_behaviour_fails_naming_the_kpis_that_moved(tmp_path: Path) -> None:
    same = _copy_case("cadence_cn2026", tmp_path / "same")
    changed = _copy_case("cadence_cn2026", tmp_path / "changed")
    data = yaml.safe_load(changed.read_text())
    sms = Channels().sms.model_dump()
    sms["impulse"] *= 2  # one behaviour parameter: the SMS impulse doubled
    data["channels"] = {"sms": sms}
    changed.write_text(yaml.safe_dump(data, sort_keys=False))

    ok = contactsim("check", str(same), "--workers", "2")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    report = tmp_path / "changed.json"
    bad = contactsim("check", str(changed), "--workers", "2", "--json", str(report))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    verdicts = json.loads(report.read_text())
    failed = {v["kpi"]: v["status"] for v in verdicts if v["status"] != "ok"}
    named = failed_in_summary(bad.stdout)
    assert sorted(named) == sorted(failed)  # every KPI that left its band is named
    # A stronger reminder cures sooner, so the cadence runs out sooner.
    assert failed.get("cure_rate_30") == "above"
    assert failed.get("contacts_per_account") == "below"
    assert "violations" not in failed
    assert "differs from the scenario its baseline was written for" in bad.stdout
    assert "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- --update

TINY = """\
name: tiny
seed: 7
horizon_days: 30
population: {size: 300, due_day: {low: 0, high: 10}}
strategies:
  - use: fixed_cadence
    label: cadence
"""

TINY_BASELINE = """\
mode: replications
replications: 2
k: 4
arms:
  cadence:
    recovery_rate: null
    contacts: null
    violations: null
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    baseline_path_of(p).write_text(TINY_BASELINE)
    return p


def _expected(path: Path, kpi: str) -> float:
    data = yaml.safe_load(baseline_path_of(path).read_text())
    return float(data["arms"]["cadence"][kpi]["expected"])


def test_update_fills_in_then_check_passes(tiny: Path) -> None:
    r = invoke("check", str(tiny), "--update", "-q")
    assert r.exit_code == 0, r.output
    assert "wrote" in r.stdout
    baseline = BaselineFile.model_validate(yaml.safe_load(baseline_path_of(tiny).read_text()))
    assert baseline.replications == 2 and baseline.k == 4
    entry = baseline.arms["cadence"]["recovery_rate"]
    assert entry is not None and entry.band is not None and entry.se is not None
    assert entry.band[0] <= entry.expected <= entry.band[1]
    # k = 4 standard errors either side, clipped to what a share can take.
    assert math.isclose(entry.band[1], min(entry.expected + 4 * entry.se, 1.0))
    assert math.isclose(entry.band[0], max(entry.expected - 4 * entry.se, 0.0))
    assert baseline_path_of(tiny).read_text().startswith("# Regression baseline for tiny.yaml")
    r = invoke("check", str(tiny), "-q")
    assert r.exit_code == 0, r.output


def test_check_never_rewrites_and_update_prints_old_and_new(tiny: Path) -> None:
    assert invoke("check", str(tiny), "--update", "-q").exit_code == 0
    old_contacts = _expected(tiny, "contacts")
    # A bigger book: more contacts, outside any band.
    tiny.write_text(TINY.replace("size: 300", "size: 450"))
    before = baseline_path_of(tiny).read_bytes()
    r = invoke("check", str(tiny), "-q")
    assert r.exit_code == 1, r.output
    assert "contacts" in failed_in_summary(r.stdout)
    assert baseline_path_of(tiny).read_bytes() == before  # not without --update

    r = invoke("check", str(tiny), "--update", "-q")
    assert r.exit_code == 0, r.output
    new_contacts = _expected(tiny, "contacts")
    assert new_contacts > old_contacts
    row = next(line for line in r.stdout.splitlines() if " contacts " in line)
    assert number(old_contacts) in row and number(new_contacts) in row
    assert invoke("check", str(tiny), "-q").exit_code == 0


def test_update_creates_a_missing_baseline(tmp_path: Path) -> None:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    r = invoke("check", str(p), "--update", "-q")
    assert r.exit_code == 0, r.output
    baseline = BaselineFile.model_validate(yaml.safe_load(baseline_path_of(p).read_text()))
    assert set(baseline.arms) == {"cadence"}
    assert "recovery_rate" in baseline.arms["cadence"]


def test_tolerance_is_kept_by_update(tiny: Path) -> None:
    text = TINY_BASELINE.replace("recovery_rate: null", "recovery_rate: {expected: 0.5, "
                                 "tolerance: 0.25}")
    baseline_path_of(tiny).write_text(text)
    assert invoke("check", str(tiny), "--update", "-q").exit_code == 0
    data = yaml.safe_load(baseline_path_of(tiny).read_text())
    entry = data["arms"]["cadence"]["recovery_rate"]
    assert entry["tolerance"] == 0.25
    # expected ± tolerance, cut to what a rate can take ([0, 1]).
    assert entry["band"] == [max(entry["expected"] - 0.25, 0.0),
                             min(entry["expected"] + 0.25, 1.0)]


# --------------------------------------------------------------------------- bad input


BAD_BASELINES = {
    "invalid_yaml": ("mode: [replications\n", "invalid YAML"),
    "unknown_kpi": (TINY_BASELINE.replace("contacts: null", "contactz: null"), "unknown KPI"),
    "unknown_arm": (TINY_BASELINE.replace("  cadence:", "  cadense:"), "arms.cadense"),
    "no_value": (TINY_BASELINE, "no expected value"),
    "one_replication": (TINY_BASELINE.replace("replications: 2", "replications: 1"),
                        "at least 2 replications"),
    "band_reversed": (TINY_BASELINE.replace(
        "violations: null", "violations: {expected: 0, se: 0, band: [1, 0]}"), "band"),
    "unknown_field": (TINY_BASELINE.replace("k: 4", "kk: 4"), "kk"),
    "bad_mode": (TINY_BASELINE.replace("mode: replications", "mode: exact"), "mode"),
}


@pytest.mark.parametrize("case", sorted(BAD_BASELINES))
def test_bad_baseline_exits_2_with_one_line(case: str, tiny: Path) -> None:
    text, expect = BAD_BASELINES[case]
    baseline_path_of(tiny).write_text(text)
    r = invoke("check", str(tiny), "-q")
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "tiny.baseline.yaml" in lines[0] and expect in lines[0]


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, tiny: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "alone.yaml").write_text(TINY.replace("name: tiny", "name: alone"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "b.yaml").write_text(TINY + "agentz: {count: 3}\n")
    (broken / "b.baseline.yaml").write_text(TINY_BASELINE)
    twins = tmp_path / "twins"
    twins.mkdir()
    for stem in ("one", "two"):
        shutil.copy(tiny, twins / f"{stem}.yaml")
        shutil.copy(baseline_path_of(tiny), twins / f"{stem}.baseline.yaml")
    cases = {
        str(tmp_path / "missing.yaml"): "no such file",
        str(empty): "no scenario files",
        str(lonely): "no baseline",
        str(broken): "agentz",
        str(twins): "distinct names",  # found before anything runs, even with --update
    }
    for path, expect in cases.items():
        r = invoke("check", path, "-q", *(["--update"] if path == str(twins) else []))
        assert r.exit_code == 2, (path, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], (path, r.stderr)
    r = invoke("check", str(tiny), "--workers", "0")
    assert r.exit_code == 2


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    r = contactsim("check", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_default_path_is_scenarios_regression(tmp_path: Path, tiny: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project" / "scenarios" / "regression"
    folder.mkdir(parents=True)
    shutil.copy(tiny, folder)
    monkeypatch.chdir(tmp_path / "project")
    r = invoke("check", "--update", "-q")
    assert r.exit_code == 0, r.output
    assert (folder / "tiny.baseline.yaml").exists()
    assert invoke("check", "-q").exit_code == 0


# --------------------------------------------------------------------------- the logic


def _baseline(mode: str = "replications", **kw: Any) -> BaselineFile:
    return BaselineFile.model_validate({"mode": mode, "replications": 2 if mode ==
                                        "replications" else 1, "arms": {"a": {"x": None}},
                                        **kw})


def test_judge_band_edges_and_nan() -> None:
    b = _baseline()
    e = KpiBaseline(expected=1.0, se=0.1, band=(0.6, 1.4))
    assert judge("s", "a", "x", e, b, 1.4).status == "ok"
    assert judge("s", "a", "x", e, b, 1.4 * (1 + 1e-12)).status == "ok"  # formatting noise
    assert judge("s", "a", "x", e, b, 1.41).status == "above"
    assert judge("s", "a", "x", e, b, 0.59).status == "below"
    assert judge("s", "a", "x", e, b, math.nan).status == "changed"
    undefined = KpiBaseline(expected=math.nan, se=0.0, band=(math.nan, math.nan))
    assert judge("s", "a", "x", undefined, b, math.nan).status == "ok"
    assert judge("s", "a", "x", undefined, b, 0.5).status == "changed"


def test_judge_deterministic_is_exact_to_rel_tol() -> None:
    b = _baseline("deterministic")
    e = KpiBaseline(expected=0.123456789)
    assert judge("s", "a", "x", e, b, 0.123456789 * (1 + 5e-10)).status == "ok"
    assert judge("s", "a", "x", e, b, 0.123456789 * (1 + 1e-7)).status == "above"
    zero = KpiBaseline(expected=0.0)
    assert judge("s", "a", "x", zero, b, 0.0).status == "ok"
    assert judge("s", "a", "x", zero, b, 1.0).status == "above"


def test_summarise_values_mean_and_standard_error() -> None:
    obs = summarise_values([1.0, 2.0, 3.0, math.nan])
    assert obs.mean == 2.0
    assert math.isclose(obs.se, 1.0 / math.sqrt(3))


def test_discover_takes_folders_files_and_baselines(tmp_path: Path) -> None:
    for stem in ("b", "a"):
        (tmp_path / f"{stem}.yaml").write_text(TINY)
        (tmp_path / f"{stem}.baseline.yaml").write_text(TINY_BASELINE)
    assert [p.name for p in discover([tmp_path])] == ["a.yaml", "b.yaml"]
    assert [p.name for p in discover([tmp_path / "b.baseline.yaml", tmp_path])] == [
        "b.yaml", "a.yaml"]
