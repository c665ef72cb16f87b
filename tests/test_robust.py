"""``contactsim robust``: the analysis's pure functions, a known answer, Sobol indices of a
dummy parameter, resuming after SIGKILL, Dask, a calibration's draws, and bad input.

The model runs on a tiny book where agent calls are the only contact and cost 70 per
attempt (``FLIP``): over an agent-call impulse of [0, 0.3], calling every other day
loses net value against no contact at a low impulse and wins at a high one, by the
write-offs it prevents (the flip is near 0.13 on these seeds). The full-size versions of these
checks are ``benchmarks/robust_acceptance.py``.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import valid_cells
from typer.testing import CliRunner

from simulator.experiments.backends import LocalPool
from simulator.experiments.measures import Measure
from simulator.experiments.robust import (
    RobustDesign,
    analyse,
    best_shares,
    design_from_space,
    headline,
    pairwise,
    plan_robust,
    ranking,
    read_draws_csv,
    regrets,
    run_robust,
    sensitivity,
    where_boxes,
)
from simulator.experiments.space import ParameterSpace
from simulator.experiments.sweep import load_sweep, run_sweep
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
IMPULSE = "channels.agent_call.impulse"
DUMMY = "channels.push.impulse"
LOW, HIGH = 0.0, 0.3

#: Calls pay for themselves only through the write-offs they prevent (net value counts
#: the balance left, so a payment in house is worth no more than the balance it clears):
#: due dates in the first five days, charge-off at 20 days past due inside the 30-day
#: horizon, no agency, and dear calls (70 per attempt) that a strong enough impulse repays.
#: On these seeds calls starts to win at an impulse of about 0.13.
FLIP = """\
name: flip
seed: 7
population: {size: 300, due_day: {low: 0, high: 5}}
horizon_days: 30
repayment: {charge_off_dpd: 20}
agents: {count: 1}
promises: {enabled: false}
channels: {unanswered_call_impulse: 0.0, agent_call: {cost: 70}}
strategies:
  - {use: no_contact}
  - {use: fixed_cadence, label: calls,
     params: {steps: [{channel: agent_call, hour: 9, from_dpd: 1, every: 2}]}}
"""


def write_flip(folder: Path, dummy: bool = False) -> tuple[Path, Path]:
    scenario = folder / "flip.yaml"
    scenario.write_text(FLIP, encoding="utf-8")
    space = folder / "space.yaml"
    text = f"parameters:\n  {IMPULSE}: {{low: {LOW}, high: {HIGH}, label: agent-call impulse}}\n"
    if dummy:
        text += f"  {DUMMY}: {{low: 0.0, high: 0.3, label: push impulse}}\n"
    space.write_text(text, encoding="utf-8")
    return scenario, space


def robust_run(folder: Path, draws: int, sobol: bool = False, dummy: bool = False,
               workers: int = 2) -> pd.DataFrame:
    """Run the flip analysis in-process; return its pairwise table."""
    scenario, space = write_flip(folder, dummy)
    sc = load_scenario(scenario)
    design = design_from_space(ParameterSpace.load(space), draws, sobol, sc.seed)
    plan = plan_robust(sc, str(scenario), sc.strategies, design, Measure.parse("net_value:max"),
                       1, str(folder))
    report = run_robust(plan, folder / "out", LocalPool(workers))
    assert report.failed == 0 and report.answer is not None
    return report.answer.pairwise


def contactsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


# --------------------------------------------------------------------------- pure functions


def test_probabilities_of_being_best_sum_to_one_and_ties_share() -> None:
    scores = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [0.0, 5.0, 1.0]])
    shares = best_shares(scores)
    assert np.allclose(shares.sum(axis=1), 1.0)
    assert shares[1].tolist() == [0.5, 0.5, 0.0]
    assert np.allclose(shares[2], 1 / 3)
    rank = ranking(scores, ["a", "b", "c"], seed=1)
    assert rank["p_best"].sum() == pytest.approx(1.0)
    assert rank.set_index("strategy").loc["a", "p_best"] == pytest.approx((1 + 0.5 + 1 / 3) / 4)


def test_regret_is_zero_for_a_strategy_that_wins_every_draw() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(50, 3))
    scores[:, 1] = scores.max(axis=1) + rng.uniform(0.1, 1.0, size=50)
    rank = ranking(scores, ["a", "b", "c"], seed=2).set_index("strategy")
    b = rank.loc["b"]
    assert b["rank"] == 1 and b["p_best"] == 1.0
    assert (b["p_best_low"], b["p_best_high"]) == (1.0, 1.0)
    assert b[["expected_regret", "expected_regret_low", "expected_regret_high",
              "p95_regret", "worst_regret"]].tolist() == [0.0] * 5
    assert (regrets(scores)[:, 1] == 0).all()
    assert (rank.loc[["a", "c"], "expected_regret"] > 0).all()


def test_intervals_stay_inside_what_the_quantity_can_take() -> None:
    rng = np.random.default_rng(5)
    for n in (2, 7, 40):
        scores = rng.normal(size=(n, 4))
        rank = ranking(scores, list("abcd"), seed=n)
        assert (rank["p_best_low"] >= 0).all() and (rank["p_best_high"] <= 1).all()
        assert (rank["p_best_low"] <= rank["p_best"]).all()
        assert (rank["p_best"] <= rank["p_best_high"]).all()
        assert (rank["expected_regret_low"] >= 0).all()
        assert (rank["expected_regret_low"] <= rank["expected_regret"]).all()
        assert (rank["worst_regret"] >= rank["p95_regret"]).all()
        pairs = pairwise(scores, scores, list("abcd"), seed=n)
        assert len(pairs) == 12
        assert (pairs["p_beats_low"] >= 0).all() and (pairs["p_beats_high"] <= 1).all()
        both = pairs.set_index(["strategy", "other"])["p_beats"]
        for (a, b), p in both.items():
            assert p + both[(b, a)] == pytest.approx(1.0)


def test_a_min_objective_ranks_the_lowest_first() -> None:
    results = pd.DataFrame({"draw": [0, 0, 1, 1, 2, 2], "x": [0.1, 0.1, 0.5, 0.5, 0.9, 0.9],
                            "strategy": ["a", "b"] * 3,
                            "churn_rate": [0.01, 0.02, 0.01, 0.03, 0.05, 0.02]})
    space = ParameterSpace.from_mapping({"parameters": {"x": {"low": 0, "high": 1}}})
    design = RobustDesign("sobol", space.parameters, ({"x": 0.1}, {"x": 0.5}, {"x": 0.9}),
                          "test")
    answer = analyse(design, results, ["a", "b"], Measure.parse("churn_rate:min"), seed=1)
    top = answer.ranking.iloc[0]
    assert top["strategy"] == "a" and top["p_best"] == pytest.approx(2 / 3)
    # Regret in the KPI's own units: b loses 0.01 and 0.02 churn, a loses 0.03.
    regret = answer.ranking.set_index("strategy")["expected_regret"]
    assert regret["a"] == pytest.approx(0.03 / 3) and regret["b"] == pytest.approx(0.03 / 3)


def test_prim_finds_the_box_where_the_runner_up_wins() -> None:
    rng = np.random.default_rng(11)
    x = pd.DataFrame({"a": rng.uniform(0, 1, 200), "b": rng.uniform(0, 10, 200)})
    runner_wins = (x["a"] < 0.3).to_numpy()
    where = where_boxes(x, runner_wins, {"a": "the a", "b": "the b"}, "r", "lead")
    box = where[where["box"] == 1]
    assert box["parameter"].tolist() == ["a"]  # b does not matter: left unrestricted
    # PRIM peels 5 % of the draws in the box at a time, so its edge is a draw near 0.3
    # (200 draws: about 0.005 apart), within a peel's reach of it.
    assert box["restricted"].iloc[0] == "high" and abs(box["high"].iloc[0] - 0.3) < 0.03
    assert box["coverage"].iloc[0] >= 0.9 and box["density"].iloc[0] >= 0.9
    rank = pd.DataFrame({"strategy": ["lead", "r"], "p_best": [0.7, 0.3],
                         "p_best_low": [0.64, 0.22], "p_best_high": [0.78, 0.36]})
    text = headline(rank, where)
    assert text.startswith("lead is best in 70 % (64-78 %) of plausible worlds; it loses "
                           "to r most where the a is below 0.")
    # No box when the runner-up never (or always) wins.
    assert where_boxes(x, np.zeros(200, bool), {}, "r", "lead").empty
    assert where_boxes(x, np.ones(200, bool), {}, "r", "lead").empty


def test_sobol_indices_of_a_function_that_ignores_one_parameter() -> None:
    space = ParameterSpace.from_mapping({"parameters": {"x": {"low": 0, "high": 1},
                                                        "dummy": {"low": 0, "high": 1}}})
    design = design_from_space(space, 6 * 64, sobol=True, seed=4)
    y = np.array([np.sin(6 * d["x"]) + d["x"] for d in design.draws])
    sens = sensitivity(design, y, "a", "b", seed=1).set_index("parameter")
    assert sens["method"].iloc[0] == "sobol"
    # A parameter the output ignores gives f(A) = f(AB_i) exactly: a total index of 0.
    assert sens.loc["dummy", "ST"] == 0.0
    assert sens.loc["x", "ST"] > 0.9
    assert ((sens[["S1_low", "ST_low"]] >= 0).all().all()
            and (sens[["S1_high", "ST_high"]] <= 1).all().all())
    assert design_from_space(space, 12, sobol=False, seed=4).kind == "sobol"
    with pytest.raises(Exception, match="multiple of 2D\\+2 = 6"):
        design_from_space(space, 100, sobol=True, seed=4)


# --------------------------------------------------------------------------- the model


@pytest.mark.slow
def test_known_answer_matches_a_fine_grid(tmp_path: Path) -> None:
    """P(calls beats no_contact) over Sobol draws of the impulse agrees with the share of a
    fine grid (same seeds) where calls wins, and the PRIM box ends at the grid's flip."""
    draws, points = 32, 41
    pairs = robust_run(tmp_path, draws)
    p = float(pairs.query("strategy == 'calls' and other == 'no_contact'")["p_beats"].iloc[0])

    scenario = tmp_path / "flip.yaml"
    grid = np.linspace(LOW, HIGH, points)
    sweep = tmp_path / "grid.yaml"
    sweep.write_text(f"base: {scenario}\nfactors:\n  grid:\n    {IMPULSE}: "
                     f"[{', '.join(repr(float(g)) for g in grid)}]\nreplications: 1\n",
                     encoding="utf-8")
    kpis = run_sweep(load_sweep(sweep), tmp_path / "grid", LocalPool(2)).kpis
    assert kpis is not None
    wide = kpis.pivot(index=IMPULSE, columns="strategy", values="net_value")
    wins = (wide["calls"] > wide["no_contact"]).to_numpy()
    assert 0.3 < wins.mean() < 0.9, "the flip must lie inside the range"
    # A 1-D scrambled Sobol sample of 32 puts one draw in each 1/32 of the range, and the
    # grid steps 1/40 of it: each share is within ~1/32 of the true share when the winner
    # flips once, hence the 0.05.
    assert abs(p - wins.mean()) <= 0.05, (p, wins.mean())
    # The grid's flip: the threshold that best separates its wins from its losses.
    x = wide.index.to_numpy(dtype=float)
    cuts = (x[1:] + x[:-1]) / 2
    errors = [int(np.sum(wins[x <= t]) + np.sum(~wins[x > t])) for t in cuts]
    flip = float(cuts[int(np.argmin(errors))])
    where = pd.read_csv(tmp_path / "out" / "where.csv")
    box = where[(where["box"] == 1) & (where["parameter"] == IMPULSE)]
    assert box["restricted"].tolist() == ["high"] and (box["winner"] == "no_contact").all()
    assert abs(float(box["high"].iloc[0]) - flip) <= 0.1 * (HIGH - LOW)


@pytest.mark.slow
def test_a_dummy_parameter_gets_no_total_sobol_index(tmp_path: Path) -> None:
    """The push impulse, unused by both strategies, against the deciding agent-call
    impulse, on SALib's Saltelli design (8 base samples x (2D + 2) = 48 draws)."""
    robust_run(tmp_path, 48, sobol=True, dummy=True)
    sens = pd.read_csv(tmp_path / "out" / "sensitivity.csv").set_index("parameter")
    assert sens.loc[DUMMY, "ST"] < 0.05
    assert sens.loc[IMPULSE, "ST"] > 0.5
    assert list(sens.index) == [IMPULSE, DUMMY]  # ranked by influence


# --------------------------------------------------------------------------- resuming, Dask


def test_resume_after_sigkill_reuses_every_finished_cell(tmp_path: Path, kill_midway) -> None:
    scenario, space = write_flip(tmp_path)
    out = tmp_path / "out"
    args = ["robust", str(scenario), "--uncertain", str(space), "--draws", "10", "--out",
            str(out), "--workers", "2"]
    kill_midway(args, out / "cells", random.Random(17).randint(3, 8))
    before = valid_cells(out / "cells")
    assert 0 < len(before) < 20
    assert not (out / "ranking.csv").exists()  # nothing half-written
    r = contactsim(*args)
    assert r.returncode == 0, r.stderr
    assert f"computed {20 - len(before)}, reused {len(before)}, failed 0" in r.stdout
    after = valid_cells(out / "cells")
    assert len(after) == 20 and all(after[k] == before[k] for k in before)
    assert len(pd.read_csv(out / "results.csv")) == 20


def test_dask_gives_identical_csv_files(dask_cluster: str, tmp_path: Path) -> None:
    scenario, space = write_flip(tmp_path)
    common = ["robust", str(scenario), "--uncertain", str(space), "--draws", "6"]
    r = contactsim(*common, "--out", str(tmp_path / "dask"), "--scheduler", dask_cluster)
    assert r.returncode == 0, r.stderr
    assert "Dask scheduler" in r.stdout and "computed 12" in r.stdout
    r = contactsim(*common, "--out", str(tmp_path / "local"), "--workers", "2")
    assert r.returncode == 0, r.stderr
    for name in ("results.csv", "ranking.csv", "pairwise.csv", "sensitivity.csv",
                 "where.csv"):
        assert (tmp_path / "dask" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name


# --------------------------------------------------------------------------- draws.csv


def test_a_calibrations_draws_are_run_as_given(tmp_path: Path) -> None:
    scenario, _ = write_flip(tmp_path)
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / "draws.csv").write_text(
        f"draw,{IMPULSE},agents.count\n0,0.02,1\n1,0.25,1\n2,0.28,2\n", encoding="utf-8")
    design = read_draws_csv(calibration)
    assert design.kind == "draws.csv" and design.paths == [IMPULSE, "agents.count"]
    assert design.draws[2] == {IMPULSE: 0.28, "agents.count": 2}
    out = tmp_path / "out"
    r = contactsim("robust", str(scenario), "--draws-from", str(calibration), "--out", str(out),
                   "--workers", "2", "--objective", "net_value:max")
    assert r.returncode == 0, r.stderr
    results = pd.read_csv(out / "results.csv")
    assert results[IMPULSE].tolist() == [0.02, 0.02, 0.25, 0.25, 0.28, 0.28]
    assert results["agents.count"].tolist() == [1, 1, 1, 1, 2, 2]
    assert "sensitivity" in r.stdout or (out / "sensitivity.csv").exists()
    assert pd.read_csv(out / "sensitivity.csv")["method"].iloc[0] == "delta"
    r = contactsim("report", str(out))
    assert r.returncode == 0, r.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "of plausible worlds" in page and page.count("data:image/png;base64") == 3


# --------------------------------------------------------------------------- bad input


def _one_line_exit_2(args: list[str], *says: str) -> None:
    from simulator.cli import app

    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.stdout)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in says:
        assert fragment in lines[0], lines[0]


@pytest.fixture()
def bad(tmp_path: Path) -> Path:
    write_flip(tmp_path)
    (tmp_path / "unknown.yaml").write_text(
        "parameters:\n  channels.agent_call.impluse: {low: 0, high: 1}\n", encoding="utf-8")
    (tmp_path / "outside.yaml").write_text(
        f"parameters:\n  {IMPULSE}: {{low: -0.5, high: 1}}\n", encoding="utf-8")
    for name, text in {
        "no_draw": f"{IMPULSE}\n0.1\n",
        "text": f"draw,{IMPULSE}\n0,0.1\n1,lots\n",
        "field": "draw,channels.agent_call.impluse\n0,0.1\n",
        "range": f"draw,{IMPULSE}\n0,0.1\n1,-2\n",
        "empty": f"draw,{IMPULSE}\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "draws.csv").write_text(text, encoding="utf-8")
    (tmp_path / "none").mkdir()
    return tmp_path


@pytest.mark.parametrize(("args", "says"), [
    (["--uncertain", "{d}/unknown.yaml", "--draws", "4"],
     ["unknown.yaml", "channels.agent_call.impluse", "not a field"]),
    (["--uncertain", "{d}/outside.yaml", "--draws", "4"],
     ["outside.yaml", f"parameters.{IMPULSE}.low", "-0.5"]),
    (["--uncertain", "{d}/space.yaml", "--draws", "4", "--strategies", "no_contact"],
     ["--strategies", "at least two"]),
    (["--uncertain", "{d}/space.yaml", "--draws", "4", "--objective", "happiness:max"],
     ["--objective", "'happiness' is not a KPI"]),
    (["--uncertain", "{d}/space.yaml", "--draws", "4", "--objective", "net_value:up"],
     ["--objective", "KPI:max"]),
    (["--uncertain", "{d}/space.yaml", "--draws", "10", "--sobol"],
     ["--draws", "multiple of 2D+2 = 4"]),
    (["--uncertain", "{d}/space.yaml"], ["--draws"]),
    (["--draws-from", "{d}/none"], ["none", "no draws.csv"]),
    (["--draws-from", "{d}/no_draw"], ["draws.csv", "no 'draw' column"]),
    (["--draws-from", "{d}/text"], ["draws.csv", "row 3", "lots"]),
    (["--draws-from", "{d}/field"], ["draws.csv", "impluse", "not a field"]),
    (["--draws-from", "{d}/range"], ["draws.csv", f"column {IMPULSE}", "-2"]),
    (["--draws-from", "{d}/empty"], ["draws.csv", "no draws"]),
    (["--draws-from", "{d}/text", "--uncertain", "{d}/space.yaml"], ["exactly one"]),
], ids=["unknown-field", "outside-schema", "one-strategy", "not-a-kpi", "no-direction",
        "saltelli-size", "no-draws", "no-draws-csv", "no-draw-column", "not-a-number",
        "unknown-column", "column-outside-schema", "empty-draws", "both-sources"])
def test_bad_input_is_one_line_exit_2(bad: Path, args: list[str], says: list[str]) -> None:
    full = ["robust", str(bad / "flip.yaml"), "--out", str(bad / "out"),
            *[a.format(d=bad) for a in args]]
    _one_line_exit_2(full, *says)
    assert not (bad / "out").exists()  # nothing written
