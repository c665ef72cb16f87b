"""Paired comparisons: the interval arithmetic against scipy, and ``contactsim compare``."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulator.experiments.compare import (
    COMPARISON_COLUMNS,
    compare_strategies,
    paired_interval,
    pairing_gain,
    t_interval,
    welch_interval,
)

ROOT = Path(__file__).resolve().parent.parent


def contactsim(*args: str) -> subprocess.CompletedProcess[str]:
    # Run from the repository root with absolute paths: ``-c`` rather than ``-m
    # simulator.cli`` so that the sub-commands registered on ``simulator.cli.app`` exist.
    return subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def frame(values: dict[str, list[float]], kpi: str = "recovery_rate") -> pd.DataFrame:
    """A tidy KPI frame: one row per strategy and replication, seeds shared."""
    rows = []
    for strategy, xs in values.items():
        for r, x in enumerate(xs):
            rows.append({"strategy": strategy, "replication": r, "seed": 100 + r, kpi: x,
                         "accounts": 1000.0})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------- interval arithmetic


def test_t_interval_matches_scipy() -> None:
    x = np.array([0.61, 0.64, 0.58, 0.66, 0.63, 0.60])
    mean, low, high = t_interval(x)
    ref = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert mean == pytest.approx(x.mean())
    assert (low, high) == pytest.approx(ref)


def test_t_interval_degenerate_samples() -> None:
    assert all(math.isnan(v) for v in t_interval([]))
    mean, low, high = t_interval([0.5])
    assert mean == 0.5 and math.isnan(low) and math.isnan(high)
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert t_interval([1.0, math.nan, 3.0])[0] == 2.0  # undefined values are left out


def test_paired_interval_matches_ttest_rel() -> None:
    a = np.array([0.61, 0.64, 0.58, 0.66, 0.63, 0.60, 0.65, 0.59])
    b = a + np.array([0.03, 0.05, 0.02, 0.04, 0.03, 0.06, 0.02, 0.04])
    diff, low, high = paired_interval(a, b)
    ci = stats.ttest_rel(b, a).confidence_interval(0.95)
    assert diff == pytest.approx((b - a).mean())
    assert (low, high) == pytest.approx((ci.low, ci.high))


def test_paired_interval_drops_unmatched_replications() -> None:
    a = [1.0, 2.0, math.nan, 4.0]
    b = [1.5, 2.5, 3.5, math.nan]
    diff, low, high = paired_interval(a, b)
    assert diff == pytest.approx(0.5) and low == high == pytest.approx(0.5)
    with pytest.raises(ValueError, match="length"):
        paired_interval([1.0, 2.0], [1.0])


def test_welch_interval_matches_ttest_ind() -> None:
    a = np.array([0.61, 0.64, 0.58, 0.66, 0.63, 0.60, 0.65])
    b = np.array([0.70, 0.62, 0.75, 0.66, 0.71, 0.69, 0.64, 0.73])
    diff, low, high = welch_interval(a, b)
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(b.mean() - a.mean())
    assert (low, high) == pytest.approx((ci.low, ci.high))
    assert welch_interval([1.0, 1.0], [3.0, 3.0]) == (2.0, 2.0, 2.0)


# ----------------------------------------------------------------- compare_strategies


def test_comparison_columns_and_baseline_rows() -> None:
    kpis = frame({"no_contact": [0.60, 0.62, 0.58], "sms": [0.65, 0.68, 0.62]})
    out = compare_strategies(kpis)
    assert tuple(out.columns) == COMPARISON_COLUMNS
    assert list(out["strategy"]) == ["no_contact", "no_contact", "sms", "sms"]
    assert list(out["kpi"]) == ["recovery_rate", "accounts"] * 2
    base = out[out["strategy"] == "no_contact"]
    assert (base["diff"] == 0.0).all()
    assert base[["diff_low", "diff_high", "unpaired_low", "unpaired_high"]].isna().all().all()
    assert not base["distinguishable"].any()
    sms = out[(out["strategy"] == "sms") & (out["kpi"] == "recovery_rate")].iloc[0]
    assert sms["diff"] == pytest.approx(0.05)
    assert sms["distinguishable"]
    # A KPI equal in every arm (the book size) is not a difference.
    acc = out[(out["strategy"] == "sms") & (out["kpi"] == "accounts")].iloc[0]
    assert acc["diff"] == 0.0 and not acc["distinguishable"]
    assert out["distinguishable"].dtype == bool


def test_baseline_is_the_first_strategy_named() -> None:
    kpis = frame({"a": [1.0, 2.0, 3.0], "b": [2.0, 3.0, 4.5]})
    out = compare_strategies(kpis, ["b", "a"])
    row = out[(out["strategy"] == "a") & (out["kpi"] == "recovery_rate")].iloc[0]
    assert row["diff"] == pytest.approx(-0.5 / 3 - 1.0)


def test_indistinguishable_difference_is_marked() -> None:
    kpis = frame({"a": [0.60, 0.64, 0.58, 0.62], "b": [0.62, 0.61, 0.60, 0.63]})
    row = compare_strategies(kpis).query("strategy == 'b' and kpi == 'recovery_rate'").iloc[0]
    assert row["diff_low"] < 0 < row["diff_high"]
    assert not row["distinguishable"]


def test_pairing_narrows_the_interval_when_arms_share_luck() -> None:
    # Common random numbers: both arms see the same replication effect, the difference
    # only its own small noise. The paired interval removes the shared part.
    shared = np.array([0.05, -0.08, 0.02, 0.11, -0.04, -0.06, 0.07, -0.01])
    noise = np.array([0.004, -0.002, 0.001, -0.003, 0.002, 0.000, -0.001, 0.003])
    kpis = frame({"a": list(0.6 + shared), "b": list(0.63 + shared + noise)})
    out = compare_strategies(kpis)
    gain = pairing_gain(out, "recovery_rate")
    assert list(gain["strategy"]) == ["b"]
    assert gain["ratio"].iloc[0] > 10
    row = out.query("strategy == 'b' and kpi == 'recovery_rate'").iloc[0]
    assert row["distinguishable"]
    assert not (row["unpaired_low"] > 0)  # unpaired, the same data cannot tell them apart


def test_unpairable_frames_are_refused() -> None:
    kpis = frame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]})
    with pytest.raises(ValueError, match="same replications"):
        compare_strategies(kpis)
    kpis = frame({"a": [1.0, 2.0], "b": [1.0, 2.0]})
    kpis.loc[kpis["strategy"] == "b", "seed"] += 1
    with pytest.raises(ValueError, match="same seeds"):
        compare_strategies(kpis)
    with pytest.raises(ValueError, match="no rows"):
        compare_strategies(kpis, ["a", "c"])


# ----------------------------------------------------------------- the command

SMALL = """\
name: small_compare
seed: 20261128
population: {size: 1500}
horizon_days: 180
repayment: {charge_off_dpd: 120}
agency: {enabled: true}
agents: {count: 1}
strategies: [{use: no_contact}, {use: fixed_cadence}]
"""


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("compare")
    scenario = tmp / "small.yaml"
    scenario.write_text(SMALL, encoding="utf-8")
    out = tmp / "out"
    r = contactsim("compare", str(scenario), "--strategies", "no_contact,fixed_cadence",
                   "--replications", "8", "--workers", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return scenario, out, r.stdout


def test_compare_writes_the_output_contract(compared: tuple[Path, Path, str]) -> None:
    _, out, stdout = compared
    for name in ("kpis.csv", "kpis.parquet", "comparison.csv", "comparison.parquet",
                 "scenario.resolved.yaml"):
        assert (out / name).is_file(), name
    comparison = pd.read_csv(out / "comparison.csv")
    assert tuple(comparison.columns) == COMPARISON_COLUMNS
    assert comparison["distinguishable"].dtype == bool
    pd.testing.assert_frame_equal(comparison, pd.read_parquet(out / "comparison.parquet"),
                                  check_exact=False)
    kpis = pd.read_csv(out / "kpis.csv")
    assert len(kpis) == 16 and list(kpis.columns[:3]) == ["strategy", "replication", "seed"]
    # Common random numbers: both arms of a replication ran on the same seed.
    seeds = kpis.pivot(index="replication", columns="strategy", values="seed")
    assert (seeds["no_contact"] == seeds["fixed_cadence"]).all()
    assert "recovery rate" in stdout and "fixed_cadence - no_contact" in stdout
    assert "paired vs" in stdout and "(ns)" in stdout


def test_compare_kpis_are_those_of_run(compared: tuple[Path, Path, str],
                                       tmp_path: Path) -> None:
    """``compare`` runs exactly what ``run`` runs: same seeds, same columns, same numbers."""
    scenario, out, _ = compared
    run_out = tmp_path / "run"
    r = contactsim("run", str(scenario), "--replications", "2", "--workers", "2",
                   "--no-events", "--out", str(run_out))
    assert r.returncode == 0, r.stderr
    ran = (run_out / "kpis.csv").read_text(encoding="utf-8").splitlines()
    compared_rows = (out / "kpis.csv").read_text(encoding="utf-8").splitlines()
    assert len(ran) == 5
    assert ran == compared_rows[:5]  # header and replications 0 and 1 of both arms


def test_paired_intervals_are_narrower(compared: tuple[Path, Path, str]) -> None:
    """With common random numbers both arms meet the same book, so pairing narrows.

    Not a statistical test that could flake: the seeds are fixed and results do not
    depend on the worker count, so these numbers are the same on every machine
    (recovery rate: paired half-width 0.79 pp against 1.08 pp unpaired when written).
    The margin rests on structure, not luck: both arms share which accounts go
    delinquent, their amounts and segments, and the hard core that rolls to charge-off
    at 120 days; across replications that shared part moves both arms' recovery rate
    together (correlation about 0.56 here, 0.7 to 0.8 on the default scenario) and
    cancels in the paired difference. Cash collected is dominated by the shared book
    (correlation near 1).
    """
    _, out, _ = compared
    comparison = pd.read_csv(out / "comparison.csv")
    for kpi in ("recovery_rate", "cash_collected"):
        gain = pairing_gain(comparison, kpi).iloc[0]
        assert gain["paired_half_width"] < gain["unpaired_half_width"], kpi
    kpis = pd.read_csv(out / "kpis.csv")
    rates = kpis.pivot(index="replication", columns="strategy", values="recovery_rate")
    assert rates["no_contact"].corr(rates["fixed_cadence"]) > 0


def test_compare_refuses_one_strategy(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SMALL, encoding="utf-8")
    r = contactsim("compare", str(scenario), "--strategies", "no_contact", "-r", "2",
                   "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "at least two strategies" in r.stderr and "Traceback" not in r.stderr
