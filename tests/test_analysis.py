"""Analysis helpers and ``contactsim report``: Pareto frontier, Kaplan-Meier, curves, HTML.

The report tests run on a tiny real run (1,500 accounts, 60 days, 2 replications, three
strategies), generated once per module; comparison and sweep folders are built from it
or faked with a factor column.
"""

from __future__ import annotations

import base64
import io
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.image import imread

from analysis.curves import (
    STATES,
    account_states,
    cure_durations,
    kaplan_meier,
    roll_rate_matrix,
    staffed_minutes_by_hour,
    steady_state_figure,
    survival_at,
    utilisation_by_hour,
)
from analysis.folder import open_folder
from analysis.pareto import pareto_front, pareto_mask
from analysis.report import render_report, write_report
from analysis.tradeoff import tradeoff_figure, tradeoff_points
from simulator.errors import UserError
from simulator.experiments.outputs import write_outputs
from simulator.experiments.runner import cells_of, run_cells
from simulator.formatting import format_interval, format_value
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
name: tiny
seed: 11
population: {size: 1500}
horizon_days: 60
agents: {count: 2}
replications: 2
strategies: [{use: no_contact}, {use: fixed_cadence}, {use: risk_tiered}]
"""

#: Figures a run folder with every file and a 60-day horizon gets.
RUN_FIGURES = ("tradeoff", "pareto", "cure", "roll", "balance", "steady", "utilisation",
               "cost")

# --------------------------------------------------------------------------- Pareto


def test_pareto_front_on_a_hand_made_table() -> None:
    table = pd.DataFrame({
        "name": ["A", "B", "C", "D", "E", "F", "G"],
        "recovery_rate": [0.90, 0.80, 0.95, 0.90, 0.85, np.nan, 0.90],
        "churn_rate": [0.010, 0.020, 0.030, 0.010, 0.005, 0.001, 0.010],
        "contact_cost": [100.0, 200.0, 300.0, 100.0, 500.0, 0.0, 150.0],
    })
    front = pareto_front(table)
    # B is beaten by A on all three; G ties A on recovery and churn but costs more;
    # F cannot be compared (no recovery); A and D are equal, so neither dominates.
    assert front["name"].tolist() == ["A", "C", "D", "E"]
    assert front.index.tolist() == [0, 2, 3, 4]
    # One objective: only the best rows remain.
    assert pareto_front(table, ["recovery_rate"], [])["name"].tolist() == ["C"]
    # F has no recovery but the lowest churn: with churn alone it wins.
    assert pareto_front(table, [], ["churn_rate"])["name"].tolist() == ["F"]


def test_pareto_mask_definition_on_random_points() -> None:
    rng = np.random.default_rng(5)
    v = rng.integers(0, 6, size=(80, 3)).astype(float)  # many ties
    on = pareto_mask(v)

    def dominates(a: np.ndarray, b: np.ndarray) -> bool:
        return bool((a >= b).all() and (a > b).any())

    for i in range(len(v)):
        beaten = any(dominates(v[j], v[i]) for j in range(len(v)))
        assert on[i] == (not beaten)
    assert on.any()


def test_pareto_rejects_unknown_objective() -> None:
    with pytest.raises(KeyError):
        pareto_front(pd.DataFrame({"recovery_rate": [1.0]}), ["recovery_rate"], ["cost"])


# --------------------------------------------------------------------------- Kaplan-Meier


def test_kaplan_meier_on_a_hand_example() -> None:
    # Six accounts; censored ones at 2 (tied with an event) and 4.
    km = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    assert km["time"].tolist() == [0, 1, 2, 3, 5]
    assert km["at_risk"].tolist() == [6, 6, 5, 3, 1]
    assert km["events"].tolist() == [0, 1, 1, 1, 1]
    # S(1) = 5/6, S(2) = 5/6 * 4/5, S(3) = 2/3 * 2/3, S(5) = 4/9 * 0.
    np.testing.assert_allclose(km["survival"], [1, 5 / 6, 2 / 3, 4 / 9, 0.0])
    np.testing.assert_allclose(survival_at(km, [0.5, 2.5, 4.9, 9]), [1, 2 / 3, 4 / 9, 0])
    # Greenwood at t = 2: 1/(6*5) + 1/(5*4) = 1/12; interval on the log(-log S) scale.
    s, z = 2 / 3, 1.959963984540054
    se = math.sqrt(1 / 12) / abs(math.log(s))
    lo = math.exp(-math.exp(math.log(-math.log(s)) + z * se))
    hi = math.exp(-math.exp(math.log(-math.log(s)) - z * se))
    row = km[km["time"] == 2].iloc[0]
    assert row["ci_low"] == pytest.approx(lo) and row["ci_high"] == pytest.approx(hi)
    assert lo == pytest.approx(0.1946, abs=1e-4) and hi == pytest.approx(0.9045, abs=1e-4)


def test_kaplan_meier_without_censoring_is_the_empirical_survival() -> None:
    d = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    km = kaplan_meier(d, np.ones(d.size, dtype=bool))
    for t in (0.5, 1, 2.5, 5, 9):
        assert survival_at(km, t)[()] == pytest.approx((d > t).mean())


def test_kaplan_meier_matches_lifelines() -> None:
    # Reference values computed once with lifelines (tests/data/kaplan_meier_reference.py
    # says how): lifelines pins pandas<3, so it is not a dependency of the suite.
    data = Path(__file__).resolve().parent / "data"
    sample = pd.read_csv(data / "kaplan_meier_sample.csv")
    ref = pd.read_csv(data / "kaplan_meier_reference.csv")
    km = kaplan_meier(sample["duration"].to_numpy(), sample["observed"].to_numpy(bool))
    assert km["time"].iloc[0] == 0 and len(km) == len(ref) + 1
    np.testing.assert_allclose(km["time"].to_numpy()[1:], ref["time"])
    np.testing.assert_allclose(km["survival"].to_numpy()[1:], ref["survival"], rtol=1e-12)
    # lifelines' interval where 0 < S < 1 (its ends at S = 0 are 0, as ours); rtol for
    # the normal quantile, which the two compute differently.
    inner = slice(1, -1)
    np.testing.assert_allclose(km["ci_low"].to_numpy()[inner], ref["ci_low"][:-1], rtol=1e-6)
    np.testing.assert_allclose(km["ci_high"].to_numpy()[inner], ref["ci_high"][:-1], rtol=1e-6)


def test_cure_durations_censor_churn_and_horizon() -> None:
    inf = math.inf
    accounts = pd.DataFrame({
        "strategy": "s", "replication": 0,
        "due_day": [10, 10, 20, 5, 0, 3],
        "t_delinquent": [11, 11, 21, 6, inf, 4],
        "t_paid": [25.0, inf, 40.0, inf, 2.0, inf],
        "t_charged_off": [inf, inf, inf, 50.0, inf, inf],
        "churned": [False, True, True, False, False, False],
        "t_churn": [inf, 30.0, 30.0, inf, inf, inf],
        "final_state": ["cured", "delinquent", "cured", "charged_off", "paid_on_time",
                        "delinquent"],
    })
    d = cure_durations(accounts, horizon=60)
    # cured at day 15 after due; churned at 20 (censored); churned before curing
    # (censored at 10, not a cure); written off (at risk to the horizon, 55); the
    # account paid on time is not delinquent; still delinquent at the horizon (57).
    assert d["duration"].tolist() == [15, 20, 10, 55, 57]
    assert d["cured"].tolist() == [True, False, False, False, False]
    d2 = cure_durations(accounts, horizon=60, censor_at_churn=False)
    assert d2["duration"].tolist() == [15, 50, 20, 55, 57]
    assert d2["cured"].tolist() == [True, False, True, False, False]


# --------------------------------------------------------------------------- agents


def test_staffed_minutes_follow_shifts_work_days_and_horizon() -> None:
    agents = {"count": 4, "work_days": [0, 1, 2, 3, 4, 5, 6],
              "shifts": [{"start": 8, "end": 14, "fraction": 0.5},
                         {"start": 14, "end": 20, "fraction": 0.5}]}
    m = staffed_minutes_by_hour(agents, horizon=2.0)
    np.testing.assert_allclose(m[8:20], 2 * 60 * 2)  # 2 agents, 60 minutes, 2 days
    assert m[:8].sum() == 0 and m[20:].sum() == 0
    # Weekdays 0-4 only over 7.5 days: 5 working days; the horizon cuts day 7 at noon
    # (day 7 is weekday 0).
    agents["work_days"] = [0, 1, 2, 3, 4]
    m = staffed_minutes_by_hour(agents, horizon=7.5)
    assert m[9] == pytest.approx(2 * 60 * 6) and m[15] == pytest.approx(2 * 60 * 5)


# --------------------------------------------------------------------------- on a real run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tiny")
    path = base / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    sc = load_scenario(path)
    results = run_cells(sc, cells_of(sc), workers=1, base_dir=base)
    out = base / "run"
    write_outputs(results, sc, out)
    return out


def test_account_states_reproduce_the_daily_counts(run_dir: Path) -> None:
    accounts = pd.read_parquet(run_dir / "accounts.parquet")
    daily = pd.read_parquet(run_dir / "daily.parquet")
    for (strategy, rep), g in accounts.groupby(["strategy", "replication"]):
        for day in (0, 1, 15, 30, 31, 45, 59):
            counts = np.bincount(account_states(g, day), minlength=len(STATES))
            want = daily[(daily["strategy"] == strategy) & (daily["replication"] == rep)
                         & (daily["day"] == day)].set_index("state")["accounts"]
            assert counts.tolist() == want.reindex(list(STATES)).tolist(), (strategy, day)


def test_roll_rate_rows_are_shares(run_dir: Path) -> None:
    m = roll_rate_matrix(pd.read_parquet(run_dir / "accounts.parquet"), horizon=60)
    assert list(m) == ["no_contact", "fixed_cadence", "risk_tiered"]
    for matrix in m.values():
        # 60 days: snapshots 0 -> 30 -> 60 see only M0 and M1 as origins.
        assert matrix.loc[["M2", "M3", "M4"]].isna().all().all()
        np.testing.assert_allclose(matrix.loc[["M0", "M1"]].sum(axis=1), 1.0)
        assert matrix.loc["M1", "M0"] == 0  # no way back to not-yet-due


def test_utilisation_by_hour_adds_up_to_the_kpi(run_dir: Path) -> None:
    events = pd.read_parquet(run_dir / "events.parquet")
    sc = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    per_hour = utilisation_by_hour(events, sc["agents"], sc["horizon_days"])
    kpis = pd.read_csv(run_dir / "kpis.csv")
    got = per_hour.groupby("strategy")["busy_minutes"].sum() / per_hour.groupby(
        "strategy")["staffed_minutes"].sum()
    want = kpis.groupby("strategy")["agent_utilisation"].mean()
    np.testing.assert_allclose(got.loc[want.index], want, rtol=1e-6)
    assert per_hour.loc[per_hour["staffed_minutes"] == 0, "utilisation"].isna().all()


def _images(page: str) -> list[str]:
    return re.findall(r"<img [^>]*>", page)


def assert_self_contained(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    for src in re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]*)""", page):
        assert src.startswith("data:image/png;base64,"), src[:60]
    assert "<link" not in page and "<script" not in page
    assert "url(" not in page  # no CSS assets either


def png_sizes(page: str) -> list[tuple[int, int]]:
    sizes = []
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        img = imread(io.BytesIO(base64.b64decode(data)), format="png")
        sizes.append((img.shape[1], img.shape[0]))
    return sizes


def contactsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console script's code path (``python -m simulator.cli`` runs the CLI module as
    ``__main__``, a second copy on which the sub-commands do not register)."""
    return subprocess.run(
        [sys.executable, "-c", "from simulator.cli import main; main()", *args], cwd=cwd,
        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run_report(run_dir: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``contactsim report`` on the tiny run, from outside the source tree."""
    r = contactsim("report", str(run_dir), cwd=tmp_path_factory.mktemp("elsewhere"))
    return r, run_dir / "report.html"


def test_report_of_a_run_via_the_command_line(
        run_report: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    r, out = run_report
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr
    assert f"({len(RUN_FIGURES)} figures)" in r.stdout
    page = out.read_text(encoding="utf-8")
    assert len(_images(page)) == len(RUN_FIGURES)
    for key in RUN_FIGURES:
        assert f'id="fig-{key}"' in page
    assert all(w >= 600 and h >= 300 for w, h in png_sizes(page))
    assert 'class="missing"' not in page
    assert_self_contained(page)
    # The KPI table, with intervals, one column per strategy.
    table = page[page.index('<table class="kpi"'):page.index("</table>")]
    for name in ("no_contact", "fixed_cadence", "risk_tiered"):
        assert f"<th>{name}</th>" in table
    assert "recovery rate" in table and "churn rate" in table and "contact cost" in table
    assert table.count('class="ci"') > 20
    assert re.search(r'class="v">\d+\.\d%</span>', table)  # as the terminal table: 12.3%
    # What was paid before day 0, apart from the KPIs of money, one value per strategy.
    line = page[page.index('id="paid-before-start"'):]
    line = line[:line.index("</p>")]
    for name in ("no_contact", "fixed_cadence", "risk_tiered"):
        assert re.search(rf"{name} \d[\d,]*", line), line
    # The resolved scenario.
    assert "<pre>name: tiny" in page and "horizon_days: 60" in page


def test_report_numbers_read_as_the_terminal_table() -> None:
    """One formatter serves ``contactsim run`` and the report."""
    assert format_value(0.1234, "pct", 0.0051) == "12.3% ± 0.5"
    assert format_interval(0.118, 0.129, "pct") == "[11.8, 12.9]"
    assert format_value(1_234_567.4, "money") == "1,234,567"
    assert format_value(math.nan, "ratio") == "-"
    assert format_interval(1.0, math.inf, "num") == ""


def test_report_to_another_file(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    path, figures = write_report(run_dir, target)
    assert path == target and target.is_file()
    assert [f.key for f in figures] == list(RUN_FIGURES)
    assert all(f.error is None for f in figures)


def test_report_of_a_comparison(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cmp"
    shutil.copytree(run_dir, folder)
    kpis = pd.read_csv(folder / "kpis.csv")
    rows = []
    for strategy, g in kpis.groupby("strategy", sort=False):
        base = kpis[kpis["strategy"] == "no_contact"]
        for k in ("recovery_rate", "churn_rate", "contact_cost", "net_value"):
            d = g[k].to_numpy() - base[k].to_numpy()
            rows.append({"strategy": strategy, "kpi": k, "mean": g[k].mean(),
                         "ci_low": g[k].min(), "ci_high": g[k].max(), "diff": d.mean(),
                         "diff_low": d.min() - 0.001, "diff_high": d.max() + 0.001})
    pd.DataFrame(rows).to_csv(folder / "comparison.csv", index=False)
    assert open_folder(folder).kind == "compare"
    page = render_report(open_folder(folder))
    assert len(_images(page)) == len(RUN_FIGURES) + 2  # paired differences and net value
    assert 'id="fig-differences"' in page and "Δ" in page
    assert 'id="fig-net-value"' in page and 'id="headline"' in page
    assert "Report of a comparison" in page
    assert_self_contained(page)


def _fake_sweep(folder: Path) -> Path:
    """A sweep folder: two factors, one a strategy factor (empty for other strategies)."""
    rng = np.random.default_rng(1)
    rows = []
    for agents in (2, 4):
        for every in (1, 3, 7):
            for strategy in ("no_contact", "fixed_cadence"):
                for rep in range(3):
                    cad = strategy == "fixed_cadence"
                    rows.append({
                        "agents.count": agents,
                        "strategies.fixed_cadence.params.steps.2.every": every if cad
                        else np.nan,
                        "strategy": strategy, "replication": rep, "seed": 100 + rep,
                        "recovery_rate": 0.9 + (0.05 / every if cad else 0)
                        + rng.normal(0, 0.005),
                        "churn_rate": (0.02 / every if cad else 0.0) + abs(rng.normal(0, 1e-3)),
                        "contact_cost": (5000 / every + 100 * agents if cad else 0.0),
                        "net_value": 1e6 + rng.normal(0, 1e3),
                        "cost_sms": 100.0 * cad, "cost_agent_call": 4000.0 / every * cad,
                    })
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "kpis.csv", index=False)
    (folder / "cells").mkdir()
    (folder / "sweep.resolved.yaml").write_text(
        "name: fake-sweep\nscenario:\n  currency: EUR\n  horizon_days: 90\n", encoding="utf-8")
    return folder


def test_tradeoff_points_group_by_strategy_and_factors(tmp_path: Path) -> None:
    kpis = pd.read_csv(_fake_sweep(tmp_path / "sw") / "kpis.csv")
    pts = tradeoff_points(kpis)
    assert len(pts) == 2 + 6  # no_contact once per agent count; the cadence per cell
    cad = pts[(pts["strategy"] == "fixed_cadence") & (pts["agents.count"] == 2)]
    assert cad["strategies.fixed_cadence.params.steps.2.every"].tolist() == [1, 3, 7]
    assert (cad["n"] == 3).all()
    np.testing.assert_allclose(cad["contact_cost"], [5200, 5000 / 3 + 200, 5000 / 7 + 200])
    assert (cad["recovery_rate_low"] < cad["recovery_rate"]).all()
    with pytest.raises(ValueError):
        tradeoff_figure(kpis, factor="not.a.factor")


def test_report_of_a_sweep(tmp_path: Path) -> None:
    folder = _fake_sweep(tmp_path / "sw")
    path, figures = write_report(folder)
    assert [f.key for f in figures] == [
        "tradeoff-agents.count", "tradeoff-strategies.fixed_cadence.params.steps.2.every",
        "pareto", "cost"]
    assert all(f.error is None for f in figures)
    page = path.read_text(encoding="utf-8")
    assert len(_images(page)) == 4
    assert open_folder(folder).currency == "EUR"
    assert "Report of a sweep" in page and "fake-sweep" in page
    assert '<table class="kpi sweep"' in page and "★" in page
    assert_self_contained(page)


def test_bad_folders_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no kpis\.csv"):
        open_folder(tmp_path)
    r = contactsim("report", str(tmp_path / "missing"), cwd=tmp_path)
    assert r.returncode == 2
    assert "no such folder" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "kpis.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    r = contactsim("report", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "strategy" in r.stderr and "Traceback" not in r.stderr


def test_report_renders_its_figures(
        run_report: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path) -> None:
    """Every figure of the page is a PNG that decodes and is drawn on; where chromium is
    installed, the page is also rendered headless and its screenshot checked."""
    _, page = run_report
    html = page.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(RUN_FIGURES)
    for data in images:
        img = imread(io.BytesIO(base64.b64decode(data)), format="png")
        # Drawn on: more than a blank canvas with a few labels would give.
        assert (img[..., :3] < 0.9).any(axis=-1).mean() > 0.01
    if shutil.which("chromium") is None:
        return  # a browser is not a dependency of the project
    shot = tmp_path / "shot.png"
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        f"--screenshot={shot}", "--window-size=1200,3000",
                        page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), r.stderr[-2000:]
    img = imread(shot)
    # Figures drawn: far more non-white pixels than text alone would give.
    ink = (img[..., :3] < 0.9).any(axis=-1).mean()
    assert ink > 0.05


def test_steady_state_figure_shades_the_warm_up_and_draws_each_series() -> None:
    days = np.arange(60)
    daily = pd.DataFrame([{"strategy": "a", "replication": 0, "day": d, "state": st,
                           "accounts": 10 + k} for d in days
                          for k, st in enumerate(("M0", "M1", "M2", "M3", "M4"))])
    agents = pd.DataFrame({"strategy": "a", "replication": 0, "day": days,
                           "utilisation": 0.5, "calls_queued": 9, "calls_made": 8,
                           "calls_dropped": 1})
    fig = steady_state_figure(daily, agents, warmup=20)
    top, bottom = fig.axes[0], fig.axes[1]
    assert len(top.lines) == 4  # M1-M4
    assert {line.get_label() for line in bottom.lines} == {
        "calls queued", "calls made", "calls dropped"}
    shaded = [p for p in top.patches if p.get_label() == "warm-up"]
    assert len(shaded) == 1
    span = shaded[0]
    assert (span.get_x(), span.get_x() + span.get_width()) == (0, 20)  # type: ignore[attr-defined]
    # No warm-up, no shading.
    assert not [p for p in steady_state_figure(daily, agents).axes[0].patches
                if p.get_label() == "warm-up"]


def test_staffing_figure_draws_service_level_recovery_and_utilisation() -> None:
    from analysis.staffing import staffing_figure, staffing_table

    kpis = pd.DataFrame([{"strategy": "fixed_cadence", "agents.count": a, "replication": r,
                          "service_level": min(1.0, a / 6) - 0.01 * r,
                          "recovery_rate": 0.8 + 0.01 * min(a, 6),
                          "agent_utilisation": min(1.0, 6 / a)}
                         for a in (40, 2, 4, 8) for r in range(2)])
    table = staffing_table(kpis)
    assert table["agents.count"].tolist() == [2, 4, 8, 40]
    assert (table["service_level_high"] <= 1).all()  # intervals inside the KPI's range
    fig = staffing_figure(kpis)
    assert [ax.get_title() for ax in fig.axes] == ["service level", "recovery rate",
                                                   "agent utilisation"]
    assert all(len(ax.lines) == 1 for ax in fig.axes)


def test_staffing_money_and_paired_recovery() -> None:
    from analysis.staffing import money_table, paired_with_largest

    # Recovery rises by 0.01 per agent up to 6 on every replication, with a replication
    # effect of 0.05 (the spread common random numbers pair away).
    kpis = pd.DataFrame([{"strategy": "fixed_cadence", "agents.count": a, "replication": r,
                          "recovery_rate": 0.8 + 0.05 * r + 0.01 * min(a, 6),
                          "contact_cost": 10.0 * a, "staffing_cost": 100.0 * a,
                          "cost_agent_call": 50.0 * min(a, 6), "net_value": -1000.0 + a}
                         for a in (40, 2, 6) for r in range(3)])
    money = money_table(kpis)
    assert money["agents.count"].tolist() == [2, 6, 40]
    # Net value less the idle hours: staffed cost less the agents' time on calls.
    assert money["net_of_floor"].tolist() == [-998.0 - 100.0, -994.0 - 300.0,
                                              -960.0 - 3700.0]
    paired = paired_with_largest(kpis, "recovery_rate")
    row = paired.set_index("agents.count").loc[2]
    assert row["recovery_rate_difference"] == pytest.approx(-0.04)
    assert row["low"] == pytest.approx(-0.04) and row["high"] == pytest.approx(-0.04)
