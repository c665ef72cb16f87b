"""The command line's small promises: --version, -h, repeatable -s in compare, a quiet
check, overrides named as options, sweep --set, check outside the project, money columns
that name the currency, and the docs' figure script."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from simulator.cli import app
from simulator.cli.compare import difference_table
from simulator.cli.helpers import kpi_table
from simulator.errors import ScenarioError
from simulator.experiments.cells import simulator_version
from simulator.experiments.sweep import load_sweep

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
name: tiny-cli
seed: 3
currency: EUR
population: {size: 300}
horizon_days: 40
agents: {count: 1}
replications: 2
strategies: [{use: no_contact}, {use: fixed_cadence}, {use: risk_tiered}]
"""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def one_line_error(result: Any) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY, encoding="utf-8")
    return p


# --------------------------------------------------------------------------- --version, -h


def test_version() -> None:
    r = invoke("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"contactsim {simulator_version()}"


def test_version_of_the_console_script() -> None:
    r = subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()",
                        "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("contactsim "), r.stderr


@pytest.mark.parametrize("command", [[], ["run"], ["params"], ["check"], ["compare"],
                                     ["report"], ["strategies"], ["sweep"]])
def test_short_help_everywhere(command: list[str]) -> None:
    short, long = invoke(*command, "-h"), invoke(*command, "--help")
    assert short.exit_code == 0, short.output
    assert "Usage" in short.stdout and short.stdout == long.stdout


# --------------------------------------------------------------------------- compare -s


@pytest.mark.parametrize("arms", [
    ["-s", "no_contact", "-s", "risk_tiered"],
    ["-s", "no_contact,risk_tiered"],
    ["--strategies", "no_contact", "--strategy", "risk_tiered"],
])
def test_compare_takes_repeated_or_comma_separated_arms(tiny: Path, tmp_path: Path,
                                                        arms: list[str]) -> None:
    out = tmp_path / "cmp"
    r = invoke("compare", str(tiny), *arms, "--out", str(out), "-q")
    assert r.exit_code == 0, r.output
    comparison = pd.read_csv(out / "comparison.csv")
    assert list(dict.fromkeys(comparison["strategy"])) == ["no_contact", "risk_tiered"]


def test_compare_mixes_both_forms(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    r = invoke("compare", str(tiny), "-s", "risk_tiered", "-s", "no_contact,fixed_cadence",
               "--out", str(out), "-q")
    assert r.exit_code == 0, r.output
    comparison = pd.read_csv(out / "comparison.csv")
    assert list(dict.fromkeys(comparison["strategy"])) == [
        "risk_tiered", "no_contact", "fixed_cadence"]
    # Money rows name the scenario's currency, in both tables (the terminal may wrap a
    # label, so the tables are read as built).
    assert r.stdout.count("(EUR)") >= 10
    kpis = pd.read_csv(out / "kpis.csv")
    tables = [kpi_table(kpis, "t", "EUR"), difference_table(comparison, "d", 2, "EUR")]
    for table in tables:
        labels = list(table.columns[0].cells)
        for money in ("cash collected (EUR)", "contact cost (EUR)", "net value (EUR)",
                      "CLV lost (EUR)", "agency commission (EUR)"):
            assert money in labels, money
        assert "churn rate" in labels and "cost per unit collected" in labels


# --------------------------------------------------------------------------- --set names itself


def test_a_set_typo_names_the_option(tiny: Path, tmp_path: Path) -> None:
    r = invoke("run", str(tiny), "--set", "agnets.count=3", "--out", str(tmp_path / "o"))
    assert r.exit_code == 2
    line = one_line_error(r)
    assert line.startswith("error: --set agnets.count=3: agnets: unknown field"), line
    assert str(tiny) not in line
    # A mistake in the file itself still names the file.
    tiny.write_text(TINY.replace("agents: {count: 1}", "agents: {cuont: 1}"), encoding="utf-8")
    r = invoke("run", str(tiny), "--set", "population.size=200", "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and str(tiny) in one_line_error(r)


def test_run_records_the_overrides(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = invoke("run", str(tiny), "--set", "population.size=250", "-r", "1", "--no-events",
               "--out", str(out), "-q")
    assert r.exit_code == 0, r.output
    info = yaml.safe_load((out / "run.yaml").read_text(encoding="utf-8"))
    assert info["command"] == "run" and info["scenario_file"] == str(tiny)
    assert info["overrides"] == ["population.size=250", "replications=1"]
    assert yaml.safe_load((out / "scenario.resolved.yaml").read_text())["population"][
        "size"] == 250
    assert "run.yaml" in r.stdout


# --------------------------------------------------------------------------- check


def test_check_quiet_prints_only_the_verdict(tiny: Path) -> None:
    # 5 replications: bands that are not rough, so no note either.
    tiny.write_text(TINY.replace("replications: 2", "replications: 5").replace(
        ", {use: risk_tiered}", ""), encoding="utf-8")
    assert invoke("check", str(tiny), "--update", "-q").exit_code == 0
    r = invoke("check", str(tiny), "--quiet")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().startswith("all ") and len(r.stdout.strip().splitlines()) == 1
    assert r.stderr == ""
    # Without --quiet: the table of every KPI.
    loud = invoke("check", str(tiny))
    assert loud.exit_code == 0 and "expected band" in loud.stdout


def test_check_outside_the_project_says_where_it_looks(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = invoke("check")
    assert r.exit_code == 2
    line = one_line_error(r)
    assert "scenarios/regression" in line and str(tmp_path) in line
    assert "project's root" in line


# --------------------------------------------------------------------------- sweep --set

SWEEP = """\
name: tiny-sweep
base: tiny.yaml
set: {horizon_days: 30}
factors:
  grid: {agents.count: [1, 2]}
strategies: [{use: no_contact}]
replications: 1
"""


def test_sweep_set_overrides_every_variant(tiny: Path) -> None:
    sweep = tiny.with_name("sweep.yaml")
    sweep.write_text(SWEEP, encoding="utf-8")
    plan = load_sweep(sweep, ["population.size=120", "horizon_days=20"])
    assert len(plan.cells) == 2
    for cell in plan.cells:
        assert cell.scenario["population"]["size"] == 120
        assert cell.scenario["horizon_days"] == 20  # after the file's own set
    assert plan.resolved()["set"] == {"horizon_days": 20, "population.size": 120}
    assert plan.resolved()["command_line_set"] == {"population.size": 120, "horizon_days": 20}
    plain = load_sweep(sweep)
    assert {c.key for c in plain.cells}.isdisjoint(c.key for c in plan.cells)
    with pytest.raises(ScenarioError, match=r"^--set agnets\.count=2: agnets: unknown field"):
        load_sweep(sweep, ["agnets.count=2"])
    with pytest.raises(ScenarioError, match=r"^--set strategies\.no_contact\.x=1"):
        load_sweep(sweep, ["strategies.no_contact.x=1"])


def test_sweep_set_on_the_command_line(tiny: Path, tmp_path: Path) -> None:
    sweep = tiny.with_name("sweep.yaml")
    sweep.write_text(SWEEP, encoding="utf-8")
    out = tmp_path / "sw"
    r = invoke("sweep", str(sweep), "--out", str(out), "--set", "population.size=100", "-q")
    assert r.exit_code == 0, r.output
    resolved = yaml.safe_load((out / "sweep.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["set"]["population.size"] == 100
    assert resolved["scenario"]["population"]["size"] == 100
    r = invoke("sweep", str(sweep), "--out", str(out), "--set", "agents.count=many")
    assert r.exit_code == 2
    assert one_line_error(r).startswith("error: --set agents.count=many")


# --------------------------------------------------------------------------- terminal table


def test_run_table_names_the_currency_and_shows_intervals(tiny: Path, tmp_path: Path) -> None:
    r = invoke("run", str(tiny), "--no-events", "--out", str(tmp_path / "o"), "-q")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "(EUR)" in text  # the table as built: test_compare_mixes_both_forms
    # A rate, and below it (the next line of the row) its interval in points.
    assert re.search(r"\d+\.\d%", text) and re.search(r"\[\d+\.\d, \d+\.\d\]", text)
    assert "Only 2 replications: the intervals are rough" in text


# --------------------------------------------------------------------------- docs figures


def test_docs_figure_script_writes_the_readme_figure(tmp_path: Path) -> None:
    """``docs/make_figures.py`` regenerates ``docs/img/tradeoff.png`` (here smaller and to a
    temporary folder, to stay fast)."""
    spec = importlib.util.spec_from_file_location("make_figures",
                                                  ROOT / "docs" / "make_figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/make_figures.py" in readme and "docs/img/tradeoff.png" in readme
    module.INTERVALS = (3, 7)
    assert module.main(["--out", str(tmp_path), "--accounts", "300", "--replications", "2",
                        "--workers", "1"]) == 0
    assert (tmp_path / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
