"""``contactsim power``: the outcomes, the tests between cells, the power against the closed
form, CUPED, the type-I error, the interference of shared agents, cached and resumable
repetitions on the local pool and on Dask, the report, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize
from typer.testing import CliRunner

from simulator.engine import run
from simulator.experiments.backends import LocalPool
from simulator.experiments.outputs import OutputFolder
from simulator.experiments.power import (
    POWER_COLUMNS,
    PowerDesign,
    PowerRun,
    _welch_from_cells,
    account_outcome,
    cuped,
    run_power,
    split_of,
    two_proportion_test,
    welch_test,
    wilson,
    write_power_outputs,
)
from simulator.scenario import Scenario, scenario_from_dict

#: A tiny book whose trial runs in about a tenth of a second: due dates in the first five
#: days, decisions every five days, read on day 35 (every paid_30 window complete).
TINY = """\
name: tiny
seed: 11
population: {size: 600, due_day: {low: 0, high: 5}}
horizon_days: 35
decision: {every_days: 5}
agents: {count: 1}
strategies:
  - use: no_contact
  - use: fixed_cadence
    label: sms_only
    params:
      steps: [{channel: sms, hour: 10, from_dpd: -4, to_dpd: 30, every: 1}]
"""

#: Scarce agents (one agent, one hour a day, for 3,000 accounts) and a challenger that calls
#: every delinquent account daily, against a champion calling every third day.
SCARCE = """\
name: scarce
seed: 5
population: {size: 3000, due_day: {low: 0, high: 5}}
horizon_days: 35
agents:
  count: 1
  shifts: [{start: 9, end: 10, fraction: 1.0}]
  rpc_by_hour: [{from_hour: 0, rate: 0.6}]
strategies:
  - use: fixed_cadence
    label: calls
    params:
      steps: [{channel: agent_call, hour: 9, from_dpd: 1, to_dpd: 30, every: 3}]
  - use: fixed_cadence
    label: call_heavy
    params:
      steps: [{channel: agent_call, hour: 9, from_dpd: 1, to_dpd: 30, every: 1}]
"""


def scenario(text: str = TINY, **changes: Any) -> Scenario:
    import yaml

    data = yaml.safe_load(text)
    data.update(changes)
    return scenario_from_dict(data)


def design(sc: Scenario | None = None, **kw: Any) -> PowerDesign:
    sc = sc or scenario()
    arms = {s.name: s for s in sc.strategies}
    base: dict[str, Any] = dict(
        scenario=sc, champion=sc.strategies[0], challenger=sc.strategies[1], split=0.5,
        sizes=(100,), metrics=("paid_30",), look=35.0, repetitions=4, effect_repetitions=2)
    base.update(kw)
    for role in ("champion", "challenger"):
        if isinstance(base[role], str):
            base[role] = arms[base[role]]
    return PowerDesign(**base)


def power(tmp: Path, d: PowerDesign, workers: int = 2) -> PowerRun:
    with OutputFolder(tmp) as folder:
        result = run_power(d, tmp, LocalPool(workers))
        write_power_outputs(result, folder)
    return result


# ----------------------------------------------------------------- outcomes


def test_the_stand_in_split_is_the_trials_split() -> None:
    d = design(split=0.3)
    sc = scenario_from_dict(d.book_data(200))
    results = run(sc, d.trial_spec(), 1234)
    assert (split_of(1234, 200, 0.3) == results.accounts["arm"].to_numpy()).all()
    assert set(results.accounts["arm"]) == {"champion", "challenger"}


def test_paid_30_is_paid_in_full_within_30_days_of_the_due_date() -> None:
    # Checked against the KPI code, which shares nothing with the outcome: an account paid
    # within 30 days paid on time or cured within 30 days of its due date.
    sc = scenario(horizon_days=36.0)  # due by day 5: every 30-day window ends by day 35
    results = run(sc, sc.strategies[1], 7)
    paid30, binary = account_outcome(results.accounts, "paid_30")
    assert binary
    state = results.accounts["final_state"].astype(str)
    delinquent = np.isfinite(results.accounts["t_delinquent"]).sum()
    cured30 = results.kpis["cure_rate_30"] * delinquent
    assert paid30.sum() == pytest.approx((state == "paid_on_time").sum() + cured30, abs=1e-6)
    share, _ = account_outcome(results.accounts, "collected_share")
    assert ((share >= 0) & (share <= 1 + 1e-9)).all()  # no late fee: at most what was due


def test_a_run_to_the_look_has_the_outcomes_known_at_the_look() -> None:
    # Why each trial runs with horizon_days = look: the engine is causal, so a run stopped
    # at the look holds exactly what a longer run knew at the look.
    sc = scenario(SCARCE, population={"size": 500, "due_day": {"low": 0, "high": 5}})
    long_sc = scenario_from_dict({**sc.to_dict(), "horizon_days": 50.0})
    for spec in sc.strategies:
        short, long = run(sc, spec, 3), run(long_sc, spec, 3)
        acc = long.accounts
        known = acc["t_paid"] <= np.minimum(acc["due_day"] + 30, 35)
        assert (account_outcome(short.accounts, "paid_30")[0] == known.to_numpy()).all()
        ev = long.events
        paid = ev[(ev["event"] == "payment") & (ev["t"] <= 35)]
        collected = np.bincount(paid["account_id"], weights=paid["amount"], minlength=len(acc))
        short_collected = short.accounts["paid_in_house"] + short.accounts["agency_collected"]
        assert np.array_equal(collected, short_collected.to_numpy())


# ----------------------------------------------------------------- tests between cells


def test_the_tests_are_the_textbook_ones() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 80), rng.normal(0.4, 2, 50)
    ours = welch_test(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    x, y = (rng.random(300) < 0.6).astype(float), (rng.random(200) < 0.7).astype(float)
    p = (x.sum() + y.sum()) / 500
    z = (y.mean() - x.mean()) / math.sqrt(p * (1 - p) * (1 / 300 + 1 / 200))
    assert two_proportion_test(x, y).statistic == pytest.approx(z, rel=1e-9)
    assert two_proportion_test(x, y).p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    # Welch's t from the cells' stored sizes, means and variances is the same test.
    cells = {"champion": {"n": x.size, "mean": x.mean(), "var": x.var(ddof=1)},
             "challenger": {"n": y.size, "mean": y.mean(), "var": y.var(ddof=1)}}
    assert _welch_from_cells(cells) == pytest.approx(welch_test(x, y).p_value, rel=1e-9)
    # Degenerate cells: nothing to tell apart, or one account only.
    assert two_proportion_test(np.zeros(5), np.zeros(7)).p_value == 1.0
    assert welch_test(np.ones(5), np.ones(3)).p_value == 1.0
    assert welch_test(np.ones(5), np.zeros(3)).p_value == 0.0
    assert math.isnan(welch_test(np.ones(1), np.zeros(3)).p_value)
    for k, n in ((0, 10), (10, 10), (3, 400)):
        low, high = wilson(k, n)
        assert 0.0 <= low <= k / n <= high <= 1.0
    # CUPED in-sample: removes exactly rho^2 of the variance (theta = cov / var).
    xs = rng.normal(size=1000)
    ys = 0.5 * xs + rng.normal(size=1000)
    adj, _theta, rho = cuped(ys, xs)
    assert adj.var() == pytest.approx(ys.var() * (1 - rho**2), rel=1e-12)


# ----------------------------------------------------------------- power and CUPED


@pytest.fixture(scope="module")
def powered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PowerRun]:
    """60 trials at 100 and 300 accounts, 50/50: no_contact against SMS only (no agent
    calls in either cell, so nothing is shared but the book), with CUPED on prior
    delinquencies."""
    out = tmp_path_factory.mktemp("powered")
    d = design(sizes=(100, 300), repetitions=60, effect_repetitions=3,
               metrics=("paid_30", "collected_share"), covariate="prior_delinquencies")
    return out, power(out, d)


@pytest.mark.slow
def test_power_agrees_with_the_closed_form_without_shared_capacity(
        powered: tuple[Path, PowerRun]) -> None:
    _, result = powered
    reps = result.repetitions[result.repetitions["metric"] == "paid_30"]
    # The effect, estimated from every account of every trial (no agents, so the same at
    # every size), and its standard error on Cohen's h (arcsine: variance 1/n per cell).
    n1, n2 = reps["champion_n"].sum(), reps["challenger_n"].sum()
    p1 = (reps["champion_mean"] * reps["champion_n"]).sum() / n1
    p2 = (reps["challenger_mean"] * reps["challenger_n"]).sum() / n2
    h = proportion_effectsize(p2, p1)
    se_h = math.sqrt(1 / n1 + 1 / n2)
    assert p2 > p1  # the SMS cadence helps
    table = result.table[result.table["metric"] == "paid_30"]
    for row in table.itertuples():
        expected = NormalIndPower().power(effect_size=h, nobs1=row.size * 0.5, alpha=0.05,
                                          ratio=1.0)
        slope = (NormalIndPower().power(effect_size=h + 1e-4, nobs1=row.size * 0.5,
                                        alpha=0.05, ratio=1.0) - expected) / 1e-4
        simulated = row.power_unadjusted
        # 3 standard errors: the binomial error of the share of 60 trials rejecting, plus
        # the effect estimate's carried through the formula's slope.
        se = math.sqrt(expected * (1 - expected) / row.repetitions + (slope * se_h) ** 2)
        assert abs(simulated - expected) <= 3 * se, (row.size, simulated, expected, se)
        assert row.low <= row.power <= row.high
    powers = table["power_unadjusted"].to_numpy()
    assert powers[1] > powers[0]  # more accounts, more power


@pytest.mark.slow
def test_cuped_removes_rho_squared_of_the_variance(powered: tuple[Path, PowerRun]) -> None:
    _, result = powered
    table = result.table[result.table["metric"] == "paid_30"]
    for row in table.itertuples():
        # On today's single-statement book prior delinquencies reach |rho| ~ 0.32 with
        # paid_30 (measured; the score stays near 0.2).
        assert abs(row.rho) >= 0.3, row.rho
        # The within-cell variance the test works with, after adjustment, against 1 - rho^2.
        assert abs((1 - row.variance_reduction) - (1 - row.rho**2)) <= 0.03
        # Across trials, the effect estimator's variance shrinks by about 1 - rho^2 too:
        # the ratio of two sample variances of 60 highly correlated estimates (their
        # correlation is about sqrt(1 - rho^2)); its standard error is about
        # sqrt(2 (1 - c^2) / 60) ~ 0.06 with c = 0.95, hence a tolerance of 0.2 (3 s.e.).
        assert abs(row.effect_variance_ratio - (1 - row.rho**2)) <= 0.2, row
    # Power rises with the adjustment, against the same test (Welch's t) on the raw
    # outcome of the same trials (paired rejections): never fewer over both sizes.
    assert table["rejections"].sum() >= (table["power_welch"] * table["repetitions"]).sum()


@pytest.mark.slow
def test_the_folder_and_its_report(powered: tuple[Path, PowerRun]) -> None:
    out, _ = powered
    table = pd.read_csv(out / "power.csv")
    assert list(table.columns[:9]) == ["size", "split", "metric", "effect", "power", "low",
                                       "high", "type1", "variance_reduction"]
    assert list(table.columns) == list(POWER_COLUMNS)
    assert table["type1"].isna().all()  # not a --null run
    summary = json.loads((out / "power.json").read_text(encoding="utf-8"))
    assert summary["headline"] == "paid_30"
    info = summary["metrics"]["paid_30"]
    smallest = info["smallest_size"]
    reached = table[(table["metric"] == "paid_30") & (table["power"] >= 0.8)]["size"]
    assert smallest == (int(reached.min()) if len(reached) else None)
    assert info["formula_size"] > 0
    from analysis.report import write_report

    path, figures = write_report(out)
    page = path.read_text(encoding="utf-8")
    assert [f.error for f in figures] == [None, None]
    assert "Power of the trial" in page and "data:image/png;base64," in page
    assert ("Smallest simulated size reaching 80% power" in page
            or "No simulated size reaches 80% power" in page)
    assert "Interference" in page and "full adoption" in page


# ----------------------------------------------------------------- type-I error


@pytest.mark.slow
def test_the_null_trial_rejects_at_about_alpha(tmp_path: Path) -> None:
    # The champion without contacts keeps the 160 trials cheap; the benchmark
    # (benchmarks/power_type1.py) runs a cadence with agent calls against itself.
    d = design(sizes=(100,), repetitions=160, null=True, champion="no_contact",
               metrics=("paid_30", "collected_share"))
    result = power(tmp_path, d)
    table = result.table.set_index("metric")
    # 160 trials: the binomial standard error of a share of 0.05 is 0.017; 3 s.e. allow up
    # to 0.10 (the lower end is zero: a test rejecting too rarely is the benchmark's to see,
    # with 1,000 trials). The closed-form z and Welch tests at 50 accounts a cell are
    # approximations, which the allowance also covers.
    se = math.sqrt(0.05 * 0.95 / 160)
    for metric in ("paid_30", "collected_share"):
        assert table.loc[metric, "type1"] == table.loc[metric, "power"]
        assert table.loc[metric, "type1"] <= 0.05 + 3 * se, table.loc[metric]
    # Under the null the p-values of a continuous outcome are uniform: their mean is 1/2
    # with standard error sqrt(1/12/160) = 0.023; 3 s.e. allow 0.07 either way.
    p = result.repetitions.query("metric == 'collected_share'")["p_value"]
    assert abs(p.mean() - 0.5) <= 3 * math.sqrt(1 / 12 / 160), p.mean()
    # The champion against itself: one strategy alone, the full-adoption effect exactly 0.
    assert result.effects["paid_30"]["full_adoption"]["mean"] == 0.0


# ----------------------------------------------------------------- interference


@pytest.mark.slow
def test_scarce_agents_show_the_challenger_taking_the_champions_calls(
        tmp_path: Path) -> None:
    d = design(scenario(SCARCE), sizes=(3000,), repetitions=1, effect_repetitions=3,
               metrics=("contacts_agent_call", "paid_30"), fair_queue=False,
               known_metrics=("contacts_agent_call", "paid_30"))
    result = power(tmp_path, d)
    calls = result.effects["contacts_agent_call"]
    # With one queue ordered by amount, the call-heavy challenger's calls displace the
    # champion's: the champion's cell gets fewer calls than the same accounts got with the
    # champion alone (t-interval over 3 seeds, each a paired difference on the same
    # accounts under common random numbers), and the challenger's cell more.
    assert calls["champion_interference"]["high"] < 0, calls
    assert calls["challenger_interference"]["low"] > 0, calls
    paid = result.effects["paid_30"]
    assert paid["champion_interference"]["mean"] < 0  # and pays less
    summary = json.loads((tmp_path / "power.json").read_text(encoding="utf-8"))
    note = summary["metrics"]["contacts_agent_call"]["interference"]
    assert "the champion's cell is lower in the trial" in note
    # Without agents the cells cannot interfere: the same accounts, the same outcome.
    quiet = design(sizes=(100,), repetitions=1, effect_repetitions=2)
    alone = power(tmp_path / "quiet", quiet).effects["paid_30"]
    assert alone["champion_interference"]["mean"] == 0.0
    assert alone["challenger_interference"]["mean"] == 0.0


# ----------------------------------------------------------------- cells


def invoke(*args: str) -> Any:
    from simulator.cli import app

    return CliRunner().invoke(app, list(args))


def cli_args(sc_file: Path, out: Path, *extra: str) -> list[str]:
    return ["power", str(sc_file), "--champion", "no_contact", "--challenger", "sms_only",
            "--split", "0.5", "--sizes", "60,120", "--look", "35", "--effect-repetitions", "2",
            "--out", str(out), "-q", *extra]


def cell_counts(stdout: str) -> tuple[int, int]:
    import re

    m = re.search(r"computed (\d+), reused (\d+)", stdout)
    assert m, stdout
    return int(m[1]), int(m[2])


def test_repetitions_are_cached_cells_that_resume(tmp_path: Path) -> None:
    sc_file = tmp_path / "tiny.yaml"
    sc_file.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    r = invoke(*cli_args(sc_file, out, "-r", "3"))
    assert r.exit_code == 0, r.stderr
    assert cell_counts(r.stdout) == (12, 0)  # 2 sizes x 3 trials, 2 book seeds x 3 runs
    first = (out / "power.csv").read_bytes()
    # An interrupted analysis: two repetitions lost, one cell file half-written.
    cells = sorted((out / "cells").glob("*.json"))
    trial_cells = [p for p in cells if '"role": "trial"' in p.read_text(encoding="utf-8")]
    trial_cells[0].unlink()
    trial_cells[1].write_text(trial_cells[1].read_text(encoding="utf-8")[:40],
                              encoding="utf-8")
    r = invoke(*cli_args(sc_file, out, "-r", "3", "--workers", "2"))
    assert r.exit_code == 0, r.stderr
    assert cell_counts(r.stdout) == (2, 10)
    assert (out / "power.csv").read_bytes() == first
    # More repetitions reuse the first ones; another alpha or covariate reuses them all.
    r = invoke(*cli_args(sc_file, out, "-r", "4"))
    assert cell_counts(r.stdout) == (2, 12)
    r = invoke(*cli_args(sc_file, out, "-r", "4", "--alpha", "0.1", "--cuped", "score"))
    assert r.exit_code == 0, r.stderr
    assert cell_counts(r.stdout) == (0, 14)
    assert "smallest size reaching 80% power" in r.stdout or "no simulated size" in r.stdout
    assert (out / "power.png").is_file()


@pytest.mark.slow
def test_dask_gives_the_local_pools_cells(dask_cluster: str, tmp_path: Path) -> None:
    sc_file = tmp_path / "tiny.yaml"
    sc_file.write_text(TINY, encoding="utf-8")
    local, dask = tmp_path / "local", tmp_path / "dask"
    r = invoke(*cli_args(sc_file, dask, "-r", "1", "--scheduler", dask_cluster))
    assert r.exit_code == 0, r.stderr
    assert "Dask scheduler" in r.stdout and cell_counts(r.stdout) == (8, 0)
    r = invoke(*cli_args(sc_file, local, "-r", "1", "--workers", "2"))
    assert r.exit_code == 0, r.stderr
    dask_cells = sorted((dask / "cells").glob("*.json"))
    local_cells = sorted((local / "cells").glob("*.json"))
    assert [p.name for p in dask_cells] == [p.name for p in local_cells]
    for a, b in zip(dask_cells, local_cells, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert (dask / "power.csv").read_bytes() == (local / "power.csv").read_bytes()


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(("args", "says"), [
    (("--split", "1"), ("--split", "strictly between 0 and 1")),
    (("--split", "0"), ("--split", "strictly between 0 and 1")),
    (("--split", "-0.5"), ("--split",)),
    (("--split", "0.99", "--sizes", "100"), ("--sizes", "at least 2")),
    (("--sizes", "3"), ("--sizes", "at least 2")),
    (("--sizes", "100,abc"), ("--sizes", "abc")),
    (("--metric", "paid_31"), ("--metric", "unknown outcome 'paid_31'")),
    (("--metric", "segment"), ("--metric", "unknown outcome 'segment'")),
    (("--cuped", "segment"), ("--cuped", "unknown covariate 'segment'")),
    (("--challenger", "no_such_strategy"), ("no_such_strategy",)),
    (("--champion", "nowhere.py:Nope"), ("nowhere.py",)),
    (("--alpha", "1.5"), ("--alpha",)),
    (("--look", "0"), ("--look",)),
    (("--workers", "2", "--scheduler", "tcp://127.0.0.1:1"), ("--workers",)),
    (("--queue", "mine"), ("--queue",)),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...],
                                          says: tuple[str, ...]) -> None:
    sc_file = tmp_path / "tiny.yaml"
    sc_file.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    base = ["power", str(sc_file), "--champion", "no_contact", "--challenger", "sms_only",
            "--sizes", "100", "--out", str(out), "-q"]
    # A later option overrides an earlier one.
    r = invoke(*base, *args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.stdout)
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    for fragment in says:
        assert fragment in lines[0], lines[0]
    assert not (out / "cells").exists()  # refused before anything ran


def test_a_null_trial_needs_no_challenger_and_a_trial_does(tmp_path: Path) -> None:
    sc_file = tmp_path / "tiny.yaml"
    sc_file.write_text(TINY, encoding="utf-8")
    r = invoke("power", str(sc_file), "--champion", "no_contact", "--sizes", "100",
               "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "--challenger" in r.stderr
    r = invoke("power", str(sc_file), "--champion", "sms_only", "--null", "--sizes", "60",
               "--look", "35", "-r", "2", "--effect-repetitions", "2", "--out",
               str(tmp_path / "n"), "-q")
    assert r.exit_code == 0, r.stderr
    assert "type-I error" in r.stdout
    table = pd.read_csv(tmp_path / "n" / "power.csv")
    assert (table["type1"] == table["power"]).all()
