"""The command line as a user meets it: real subprocesses, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

SMALL = """\
name: small
population: {size: 1500}
horizon_days: 60
agents: {count: 2}
replications: 2
strategies: [{use: no_contact}, {use: fixed_cadence}]
"""


def contactsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(SMALL, encoding="utf-8")
    return p


def test_run_writes_outputs_and_prints_table(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = contactsim("run", str(small), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "recovery rate" in r.stdout and "fixed_cadence" in r.stdout
    for name in ("kpis.csv", "summary.csv", "events.parquet", "daily.parquet",
                 "accounts.parquet", "scenario.resolved.yaml"):
        assert (out / name).is_file(), name
    kpis = pd.read_csv(out / "kpis.csv")
    assert len(kpis) == 4  # 2 strategies x 2 replications
    required = ["strategy", "replication", "accounts", "amount_delinquent", "collected",
                "recovery_rate", "cure_rate", "charge_off_rate", "contact_cost",
                "cost_per_collected", "churn_rate", "clv_lost", "complaints", "net_value",
                "blocked_requests"]
    assert set(required) <= set(kpis.columns)


def test_workers_do_not_change_results(small: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert contactsim("run", str(small), "--out", str(a), "--workers", "1",
                      cwd=tmp_path).returncode == 0
    assert contactsim("run", str(small), "--out", str(b), "--workers", "2",
                      cwd=tmp_path).returncode == 0
    assert (a / "kpis.csv").read_bytes() == (b / "kpis.csv").read_bytes()
    ea = pd.read_parquet(a / "events.parquet")
    eb = pd.read_parquet(b / "events.parquet")
    pd.testing.assert_frame_equal(ea, eb)


def test_seed_changes_results(small: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    contactsim("run", str(small), "--out", str(a), "-r", "1", cwd=tmp_path)
    contactsim("run", str(small), "--out", str(b), "-r", "1", "--seed", "7", cwd=tmp_path)
    assert (a / "kpis.csv").read_bytes() != (b / "kpis.csv").read_bytes()


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        ("population: {sise: 10}\n", [], "population.sise: unknown field"),
        ("agents: {count: -1}\n", [], "agents.count"),
        ("population: {size: many}\n", [], "population.size"),
        ("strategies: [{use: no_contact}]\n", ["--set", "agents.count=lots"], "agents.count"),
        ("strategies: [{use: no_contact}]\n", ["--set", "agnets.count=3"],
         "agnets: unknown field"),
        ("strategies: [{use: nope}]\n", [], "unknown strategy"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path: Path, content: str, args: list[str],
                                            expected: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(content, encoding="utf-8")
    r = contactsim("run", str(p), "--out", str(tmp_path / "o"), *args, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert expected in lines[0]
    if args:  # a mistake in an override names the option and what it set, not the file
        assert f"error: --set {args[1]}: " in lines[0] and str(p) not in lines[0]
    else:
        assert str(p) in lines[0] or "strategy" in lines[0]


def test_missing_scenario_file(tmp_path: Path) -> None:
    r = contactsim("run", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert r.returncode == 2
    assert "not found" in r.stderr and "Traceback" not in r.stderr


def test_params_reference_is_current() -> None:
    r = contactsim("params", cwd=ROOT)
    assert r.returncode == 0
    assert (ROOT / "docs" / "scenario-reference.md").read_text(encoding="utf-8") == r.stdout, (
        "docs/scenario-reference.md is stale: run `contactsim params > "
        "docs/scenario-reference.md`")
