"""The benchmark scripts run at their smallest sizes, so that they cannot rot.

These tests check that each script runs and prints its figures; they assert nothing
about speed (the figures depend on the machine and its load).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench(script: str, *args: str) -> str:
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_run_speed_prints_every_figure_per_size() -> None:
    out = bench("run_speed.py", "--sizes", "2000", "3000", "--repeat", "2")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["size"] for r in rows] == [2000, 3000]
    for r in rows:
        assert r["wall"] > 0 and r["events"] > 0 and r["peak_kib"] > 0
        assert r["bare_us_per_event"] > 0
        assert len(r["walls"]) == 2 and r["wall"] == min(r["walls"])  # the best of two
    header = out.splitlines()[0].split()
    for column in ("wall", "us/borrower", "events", "us/event", "ratio", "peak", "B/borrower"):
        assert column in header, header


def test_daystep_baseline_prints_every_figure() -> None:
    out = bench("daystep_baseline.py", "--sizes", "2000", "--repeat", "2")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["size"] for r in rows] == [2000]
    r = rows[0]
    for arm in ("daystep", "no_contact", "fixed_cadence"):
        assert r[f"{arm}_wall"] > 0 and len(r[f"{arm}_walls"]) == 2
        assert r[f"{arm}_wall"] == min(r[f"{arm}_walls"])  # the best of two
    assert r["ratio_no_contact"] == r["no_contact_wall"] / r["daystep_wall"]
    assert r["ratio_fixed_cadence"] == r["fixed_cadence_wall"] / r["daystep_wall"]
    for share in ("paid_in_full", "charged_off"):
        assert 0.0 <= r[f"daystep_{share}"] <= 1.0 and 0.0 <= r[f"engine_{share}"] <= 1.0
    # The same book: on the single cohort ~96 % of accounts pay in full. The two models
    # draw independently, so at 2,000 accounts the difference of the shares has a
    # binomial sd of about 0.6 points; the day step's own bias is ~0.3 points (100,000
    # accounts). 3 points apart (5 sd) would be a different book or a broken model.
    assert abs(r["daystep_paid_in_full"] - r["engine_paid_in_full"]) < 0.03, r
    header = out.splitlines()[0]
    for column in ("day-step", "no_contact", "fixed_cad", "nc/day", "fc/day", "paid full"):
        assert column in header, header


def test_daystep_baseline_runs_the_living_book() -> None:
    out = bench("daystep_baseline.py", "--scenario", "scenarios/default.yaml", "--sizes", "2000")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["size"] for r in rows] == [2000]
    r = rows[0]
    assert r["accounts"] > 2000  # the day-0 book and the accounts opening over the horizon
    for arm in ("daystep", "no_contact", "fixed_cadence"):
        assert r[f"{arm}_wall"] > 0 and r[f"{arm}_wall"] == min(r[f"{arm}_walls"])
    assert r["fixed_cadence_events"] > r["no_contact_events"] > 0
    # The same book. 2,000 accounts and their inflow (~3,500) have ~10,000 statements
    # falling due after the warm-up, ~79 % paid by their due date: the two models draw
    # independently, so the difference of the shares has an sd of about 0.8 points
    # (statements of one account are correlated: twice the binomial sd); the day step's
    # own bias is ~0.4 points (35,000 accounts). ~3.5 % of the accounts are charged off:
    # the difference has a binomial sd of about 0.45 points. 4 and 2.5 points apart
    # (5 sd) would be a different book or a broken model.
    assert abs(r["daystep_paid_by_due"] - r["engine_paid_by_due"]) < 0.04, r
    assert abs(r["daystep_charged_off"] - r["engine_charged_off"]) < 0.025, r
    assert 0.5 < r["engine_paid_by_due"] < 1.0 and 0.0 < r["engine_charged_off"] < 0.2, r
    header = out.splitlines()[0]
    for column in ("day-step", "no_contact", "fixed_cad", "paid by due", "charged off"):
        assert column in header, header


def test_run_speed_profiles_a_run_on_request() -> None:
    out = bench("run_speed.py", "--sizes", "2000", "--profile")
    assert "profile of one run at 2,000 borrowers" in out
    assert "simulator/engine.py" in out and "cumtime" in out


def test_sweep_efficiency_reports_rates_and_identical_cells() -> None:
    out = bench("sweep_efficiency.py", "--cells", "2", "--population", "300", "--rounds", "1",
                "--horizon", "20")
    assert "parallel efficiency" in out
    assert "cell files identical at every worker count" in out


def test_decide_speed_times_every_builtin() -> None:
    out = bench("decide_speed.py", "--accounts", "2000", "--repeat", "1")
    from simulator.strategies import BUILTINS

    for name in BUILTINS:
        assert name in out, out


def test_robust_acceptance_prints_its_figures() -> None:
    out = bench("robust_acceptance.py", "--parts", "known", "speed", "--population", "300",
                "--draws", "8", "--grid", "5", "--speed-draws", "2",
                "--speed-population", "300")
    assert "P(calls beats no_contact) = " in out and "grid flip point" in out
    assert "384" not in out and "6 cells at 300 accounts on 2 workers" in out
    assert "CPU time of the command and its workers" in out
    assert "summary: known " in out


@pytest.mark.slow
def test_power_type1_prints_the_type1_error_and_the_formula_check() -> None:
    out = bench("power_type1.py", "--repetitions", "4", "--type1-size", "100", "--sizes",
                "100", "--power-repetitions", "4", "--book-size", "300",
                "--effect-repetitions", "2", "--look", "35")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["part"] for r in rows] == ["type1", "power"]
    assert rows[0]["repetitions"] == 4 and 0.0 <= rows[0]["type1"] <= 1.0
    assert rows[1]["size"] == 100 and 0.0 <= rows[1]["formula"] <= 1.0
    assert "type-I error" in out and "NormalIndPower" in out and "1 - rho^2" in out


def test_supervised_overhead_prints_its_figures() -> None:
    out = bench("supervised_overhead.py", "--sizes", "300", "--repeat", "1", "--horizon", "10")
    assert "zygote forked from this process: first child after" in out, out
    assert "zygote a fresh interpreter (subprocess): first child after" in out, out
    last = out.splitlines()[-1].split()
    assert last[0] == "300" and last[-1] == "yes", out  # supervised results identical


def test_memory_fit_measures_and_fits() -> None:
    out = bench("memory_fit.py", "--sizes", "2000", "4000", "--horizons", "30")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["size"] for r in rows] == [2000, 4000]
    assert all(r["peak_kib"] >= r["idle_kib"] > 0 and r["stored_estimate_bytes"] > 0
               for r in rows)
    assert "fit: need =" in out and "stored estimate:" in out


def test_user_command_memory_times_the_command() -> None:
    out = bench("user_command_memory.py", "--sizes", "2000")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["size"] for r in rows] == [2000]
    assert rows[0]["wall"] > 0 and rows[0]["peak_kib"] > 0 and rows[0]["written_bytes"] > 0
    assert rows[0]["command"].startswith("contactsim run ")


def test_calibration_recovery_prints_its_figures() -> None:
    out = bench("calibration_recovery.py", "--accounts", "300", "--budget", "4", "--refits",
                "2", "--refit-budget", "1")
    assert "parameters recovered" in out and "held-out targets on fresh seeds" in out
    assert "point estimate: 4 trials at 300 accounts" in out
    assert "bootstrap: 2 refits, 1 chord iteration(s)" in out and "CPU time" in out
    assert "search's best trial" in out and "truth" in out


def test_calibration_recovery_with_a_bigger_lender() -> None:
    out = bench("calibration_recovery.py", "--accounts", "200", "--lender-accounts", "400",
                "--budget", "2", "--refits", "2")
    assert "lender: single_cohort.yaml, 400 accounts" in out
    assert "point estimate: 2 trials at 200 accounts" in out


def test_calibration_coverage_prints_its_figures(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    out = bench("calibration_coverage.py", "--lenders", "1", "--accounts", "200", "--budget",
                "2", "--refits", "2", "--jacobian-replications", "2", "--csv", str(rows))
    lines = out.splitlines()
    assert sum(line.startswith("lender ") for line in lines) == 1
    assert ("1 lenders of 200 accounts, 2 trials, 2 refits each, Jacobian step 0.15 on 2 "
            "set(s) of seeds") in out
    table = [line for line in lines if line.startswith(("population.", "channels."))]
    assert len(table) == 6 and all("/1" in line for line in table)
    assert "all parameters" in out and "CPU-s" in out and "median distance" in out
    frame = pd.read_csv(rows)
    assert len(frame) == 6 and {"truth", "estimate", "low", "high", "error_in_sd",
                                "distance_truth"} <= set(frame.columns)
