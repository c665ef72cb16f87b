"""Fitting the model to a lender's portfolio: the data format, the one target extractor and
its simulation adapter, ``population.from_file``, ``contactsim targets`` and
``contactsim calibrate`` (recovery, resume after SIGKILL, outputs, report, bad input).

Books are tiny so that the file stays fast; the full-size recovery is
``benchmarks/calibration_recovery.py``.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import valid_cells
from typer.testing import CliRunner

from simulator.cli.app import app
from simulator.engine import Results, run
from simulator.errors import ScenarioError, UserError
from simulator.experiments.backends import LocalPool
from simulator.experiments.calibrate import (
    OUTPUTS,
    estimates_frame,
    plan_calibration,
    resampled_targets,
    run_calibration,
)
from simulator.experiments.cells import CellTask
from simulator.experiments.outputs import OutputFolder
from simulator.experiments.robust import read_draws_csv
from simulator.experiments.space import ParameterSpace
from simulator.experiments.targets import (
    Definition,
    billing_cycle,
    extract,
    load_targets,
    portfolio_buckets,
    portfolio_from_run,
    settled_days,
    write_targets,
)
from simulator.population import generate_book
from simulator.portfolio import portfolio_frames, read_portfolio
from simulator.rng import Streams
from simulator.scenario import PRODUCTS, SEGMENTS, load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

#: A small lender under the fixed cadence (SMS, robo-calls and agent calls).
LENDER = {
    "name": "tiny-lender", "seed": 11, "horizon_days": 150,
    "population": {"size": 1500}, "agents": {"count": 2},
    "repayment": {"charge_off_dpd": 120},
    "strategies": [{"use": "fixed_cadence"}],
}


def contactsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def lender_run() -> tuple[Results, object]:
    sc = scenario_from_dict(LENDER)
    return run(sc, sc.strategies[0], 99), sc


# --------------------------------------------------------------------------- the extractor


def test_statements_are_settled_oldest_first() -> None:
    # Account 0 owes 100 (due day -50) then 100 (due day -20); it pays 60, 60, 80.
    st_acc = np.array([0, 0, 1])
    st_due = np.array([-20.0, -50.0, -30.0])
    st_amount = np.array([100.0, 100.0, 50.0])
    pay_acc = np.array([0, 0, 0, 1])
    pay_day = np.array([-45.0, -40.0, -10.0, -31.0])
    pay_amount = np.array([60.0, 60.0, 80.0, 49.996])  # half a cent short still counts
    settled = settled_days(st_acc, st_due, st_amount, pay_acc, pay_day, pay_amount)
    # The older statement (due -50) is covered on day -40 (120 >= 100); the later one on
    # day -10 (200 >= 200); account 1's single statement on day -31.
    assert settled.tolist() == [-10.0, -40.0, -31.0]
    unpaid = settled_days(st_acc, st_due, st_amount, pay_acc[:1], pay_day[:1], pay_amount[:1])
    assert np.isinf(unpaid).all()


def test_any_payment_counts_partial_payments_a_cure_does_not() -> None:
    """A statement due on day -100 (100 owed) on each of four accounts: A pays 30 on day
    -95 and never the rest; B pays all on day -80; C pays 10 on day -40; D pays 100 on
    its due day (on time, so not delinquent) and E never pays. Within 10 days past due
    one of the four delinquent statements had a payment (A's part), within 30 two (A, B),
    within 60 three (C's part at 60 days past due does not count: before 60 only); the
    cure curve sees only B."""
    from simulator.experiments.targets import first_payment_after
    from simulator.portfolio import Portfolio

    accounts = list("ABCDE")
    statements = pd.DataFrame({"account_id": accounts, "due_day": -100.0,
                               "amount_due": 100.0})
    payments = pd.DataFrame({"account_id": ["A", "B", "C", "D"],
                             "day": [-95.0, -80.0, -40.0, -100.0],
                             "amount": [30.0, 100.0, 10.0, 100.0]})
    p = Portfolio(accounts=pd.DataFrame({"account_id": accounts, "score": 600.0}),
                  statements=statements, payments=payments, contacts=None, as_of=None,
                  source="hand-made")
    found = extract(p, Definition(cure_days=(30,), payment_days=(10, 30, 60, 61)),
                    resamples=2)
    assert found.counts["any_payment_10"] == 4
    assert found.values["any_payment_10"] == pytest.approx(1 / 4)
    assert found.values["any_payment_30"] == pytest.approx(2 / 4)
    assert found.values["any_payment_60"] == pytest.approx(2 / 4)
    assert found.values["any_payment_61"] == pytest.approx(3 / 4)
    assert found.values["cure_30"] == pytest.approx(1 / 4)
    # The first payment after each due day, per account (D's on its due day is not after).
    first = first_payment_after(np.arange(5), np.full(5, -100.0), np.array([0, 1, 2, 3]),
                                np.array([-95.0, -80.0, -40.0, -100.0]))
    assert first.tolist() == [-95.0, -80.0, -40.0, np.inf, np.inf]


def test_month_on_month_roll_rates_of_a_book_with_monthly_statements() -> None:
    """Roll rates by their definition on several statements per account (the living
    book's shape): A never pays, B pays its first statement late and nothing after, C pays
    every statement on its due date. Month-ends at -90, -60, -30 and 0."""
    from simulator.portfolio import Portfolio

    dues = [-95.0, -65.0, -35.0, -5.0]
    statements = pd.DataFrame({"account_id": [a for a in "ABC" for _ in dues],
                               "due_day": dues * 3, "amount_due": 100.0})
    payments = pd.DataFrame({"account_id": ["B", "C", "C", "C", "C"],
                             "day": [-80.0, *dues], "amount": 100.0})
    p = Portfolio(accounts=pd.DataFrame({"account_id": list("ABC"), "score": 600.0}),
                  statements=statements, payments=payments, contacts=None, as_of=None,
                  source="hand-made")
    found = extract(p, Definition(cure_days=(30,)), resamples=2)
    # A: M1 -> M2 -> M3 -> M4. B: M1 -> M1 (its first statement paid, the next one past
    # due), M1 -> M2, M2 -> M3. C: always M0.
    assert found.values["roll_m1_m2"] == pytest.approx(2 / 3)
    assert found.counts["roll_m1_m2"] == 3
    assert found.values["roll_m2_m3"] == 1.0 and found.counts["roll_m2_m3"] == 2
    assert found.values["roll_m3_m4"] == 1.0 and found.counts["roll_m3_m4"] == 1
    assert found.values["delinquency_rate"] == pytest.approx(8 / 12)
    # Delinquent statements due 30 days before as_of: A's and B's first three; only B's
    # first was settled (at 15 days past due) before reaching 30.
    assert found.values["cure_30"] == pytest.approx(1 / 6)
    buckets = portfolio_buckets(p, [-90, -60, -30, 0])
    assert buckets.tolist() == [[1, 1, 0], [2, 1, 0], [3, 2, 0], [4, 3, 0]]


def test_targets_of_a_run_agree_with_its_own_kpis_and_daily_buckets(lender_run) -> None:
    results, sc = lender_run
    p = portfolio_from_run(results.accounts, results.events, sc.horizon_days)
    found = extract(p, Definition(), resamples=50, seed=1)
    k = results.kpis
    # The same quantity defined twice (targets from the tables, KPIs from the engine's
    # state): equal to rounding.
    assert found.values["delinquency_rate"] == pytest.approx(k["delinquency_rate"], abs=1e-12)
    assert found.values["cure_30"] == pytest.approx(k["cure_rate_30"], abs=1e-12)
    assert found.values["rpc_rate"] == pytest.approx(k["rpc_rate"], abs=1e-12)
    assert found.counts["rpc_rate"] == k["contacts_agent_call"]
    # 1 - cure_k is the share of delinquent statements reaching k days past due: the
    # KPI roll_30_60 is reached-60 among reached-30 (same eligibility, due + 60 <= horizon).
    d60 = Definition(cure_days=(30, 60))
    c = extract(_due_by(p, sc.horizon_days - 60), d60, resamples=2)
    rolled = (1 - c.values["cure_60"]) / (1 - c.values["cure_30"])
    assert rolled == pytest.approx(k["roll_30_60"], abs=1e-12)
    # Buckets at each 30-day month-end from the tables equal the engine's daily snapshot
    # for M1-M3 (M4 differs only where the engine has charged the account off).
    days = [d for d in range(0, int(sc.horizon_days), 30)]
    buckets = portfolio_buckets(p, [d - sc.horizon_days for d in days])
    daily = results.daily.set_index(["day", "state"])["accounts"]
    for i, day in enumerate(days):
        for b in (1, 2, 3):
            assert int((buckets[i] == b).sum()) == int(daily[(day, f"M{b}")]), (day, b)
    # The names a targets file is checked against are the extractor's own.
    assert list(found.values) == Definition().target_names(contacts=True)
    banded = Definition(score_bands=(600.0, 700.0))
    assert list(extract(p, banded, resamples=2).values) == banded.target_names(contacts=True)
    # Standard errors: positive, and about a binomial's for a rate over accounts (one
    # statement per account here); 50 resamples give it within about 20 %, so 40 % is
    # a loose check that the bootstrap resamples accounts, not statements or days.
    q = found.values["delinquency_rate"]
    binomial = math.sqrt(q * (1 - q) / found.counts["delinquency_rate"])
    assert 0.6 * binomial < found.se["delinquency_rate"] < 1.4 * binomial


def test_targets_of_a_living_book_agree_with_its_own_kpis() -> None:
    """On monthly statements (several per account, new accounts opening, charge-off
    ending an account's statements), the statements rebuilt from the accounts table give
    the run's own per-statement delinquency rate and month-on-month roll rates exactly.
    No warm-up and no day-0 arrears: the KPIs count what falls due in the run, while a
    day-0 arrear's statements fell due before it (the data's statements include them)."""
    sc = scenario_from_dict({
        "seed": 5, "horizon_days": 210,
        "population": {"size": 1500, "statement_lead_days": 20,
                       "billing": {"enabled": True, "cycle_days": 30},
                       "inflow": {"rate_per_day": 0.003}},
        "repayment": {"charge_off_dpd": 120},
        "agents": {"count": 2}, "strategies": [{"use": "fixed_cadence"}]})
    results = run(sc, sc.strategies[0], 3)
    p = portfolio_from_run(results.accounts, results.events, sc.horizon_days,
                           cycle_days=billing_cycle(sc.population.billing))
    k = results.kpis
    assert len(p.statements) > results.accounts.shape[0]  # several statements per account
    assert (results.accounts["final_state"] == "charged_off").any()
    found = extract(p, Definition(), resamples=5, seed=1)
    assert found.counts["delinquency_rate"] == results.accounts["statements_due"].sum()
    for name in ("delinquency_rate", "roll_m1_m2", "roll_m2_m3", "rpc_rate"):
        assert found.values[name] == pytest.approx(k[name], abs=1e-12), name
    with pytest.raises(ValueError, match="cycle"):
        portfolio_from_run(results.accounts, results.events, sc.horizon_days)


def _due_by(p, last_due: float):
    """``p`` with only the statements due early enough for a 60-day roll (KPI roll_30_60's
    eligibility: due day + 60 <= horizon)."""
    from dataclasses import replace

    keep = p.statements["due_day"] + 60 <= 0
    ids = set(p.statements.loc[keep, "account_id"])
    return replace(p, statements=p.statements[keep],
                   payments=p.payments[p.payments["account_id"].isin(ids)])


def test_a_run_exported_to_files_gives_the_same_targets(lender_run, tmp_path: Path) -> None:
    results, sc = lender_run
    p = portfolio_from_run(results.accounts, results.events, sc.horizon_days)
    direct = extract(p, Definition(score_bands=(600, 700)), resamples=20, seed=3)
    as_of = pd.Timestamp("2026-07-01")
    frames = portfolio_frames(p, as_of)
    frames["accounts"] = _full_accounts(results.accounts)
    for fmt in ("csv", "parquet"):
        folder = tmp_path / fmt
        folder.mkdir()
        for name, frame in frames.items():
            if fmt == "csv":
                frame.to_csv(folder / f"{name}.csv", index=False)
            else:
                frame.to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "portfolio.yaml").write_text("as_of: 2026-07-01\n", encoding="utf-8")
        read = extract(read_portfolio(folder), Definition(score_bands=(600, 700)),
                       resamples=20, seed=3)
        assert read.names == direct.names
        for name in direct.names:
            assert read.counts[name] == direct.counts[name], name
            assert read.values[name] == pytest.approx(direct.values[name], abs=1e-12), name


def _full_accounts(accounts: pd.DataFrame) -> pd.DataFrame:
    n = len(accounts)
    return pd.DataFrame({
        "account_id": accounts["account_id"], "score": accounts["score"],
        "credit_line": accounts["balance_start"] * 2, "balance": accounts["balance_start"],
        "amount_due": accounts["amount_due"], "product": ["shopping"] * n,
        "tenure_months": 12.0, "prior_delinquencies": 0, "dpd": 0})


def test_contactsim_targets_on_a_run_folder(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({**LENDER, "population": {"size": 400}}))
    r = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    out = tmp_path / "t.yaml"
    r = runner.invoke(app, ["targets", str(tmp_path / "run"), "--out", str(out),
                            "--resamples", "20"])
    assert r.exit_code == 0, r.output
    found = load_targets(out)
    kpis = pd.read_csv(tmp_path / "run" / "kpis.csv").iloc[0]
    assert found.values["delinquency_rate"] == pytest.approx(kpis["delinquency_rate"])
    assert found.has_contacts and found.accounts == 400
    # Targets by score band: the ones asked for, each band's a part of the whole's.
    banded = tmp_path / "banded.yaml"
    r = runner.invoke(app, ["targets", str(tmp_path / "run"), "--out", str(banded),
                            "--resamples", "20", "--score-bands", "650",
                            "--band-targets", "cure_7,rpc_rate"])
    assert r.exit_code == 0, r.output
    by_band = load_targets(banded)
    assert [n for n in by_band.names if ".score_" in n] == [
        "cure_7.score_lt_650", "rpc_rate.score_lt_650", "cure_7.score_ge_650",
        "rpc_rate.score_ge_650"]
    parts = [by_band.counts[f"cure_7.score_{b}"] for b in ("lt_650", "ge_650")]
    assert sum(parts) == by_band.counts["cure_7"]
    r = runner.invoke(app, ["targets", str(tmp_path / "run"), "--out", str(banded),
                            "--score-bands", "650", "--band-targets", "cure_8"])
    assert r.exit_code == 2
    assert "--band-targets" in r.output and "'cure_8' is not a target" in r.output


# --------------------------------------------------------------------------- bad data


def _write_data(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"account_id": ["a1", "a2"], "score": [600, 700], "credit_line": [1000, 900],
                  "balance": [500, 400], "amount_due": [100, 80],
                  "product": ["shopping", "travel"], "tenure_months": [12, 3],
                  "prior_delinquencies": [0, 1], "dpd": [0, 0]}).to_csv(
        folder / "accounts.csv", index=False)
    pd.DataFrame({"account_id": ["a1", "a2"], "due_date": ["2026-01-10", "2026-01-20"],
                  "amount_due": [100, 80]}).to_csv(folder / "statements.csv", index=False)
    pd.DataFrame({"account_id": ["a1", "a2"], "date": ["2026-01-09", "2026-02-01"],
                  "amount": [100, 80]}).to_csv(folder / "payments.csv", index=False)
    pd.DataFrame({"account_id": ["a2", "a2"], "time": ["2026-01-25 10:00", "2026-01-28 11:00"],
                  "channel": ["sms", "agent_call"], "outcome": ["delivered", "promise"],
                  "promise_amount": ["", "80"], "promise_date": ["", "2026-02-02"]}).to_csv(
        folder / "contacts.csv", index=False)


def _edit(folder: Path, table: str, column: str, row: int, value: str) -> None:
    path = folder / f"{table}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


BAD_DATA = [
    (lambda d: (d / "payments.csv").unlink(), ["no payments.csv"]),
    (lambda d: pd.read_csv(d / "accounts.csv").drop(columns=["score"]).to_csv(
        d / "accounts.csv", index=False), ["accounts.csv", "missing column(s) score"]),
    (lambda d: _edit(d, "payments", "amount", 1, "lots"),
     ["payments.csv", "column 'amount', row 2", "expected a number > 0", "lots"]),
    (lambda d: _edit(d, "statements", "amount_due", 0, "-5"),
     ["statements.csv", "column 'amount_due', row 1", "expected a number >= 0"]),
    (lambda d: _edit(d, "payments", "account_id", 0, "zz"),
     ["payments.csv", "column 'account_id', row 1", "an account of the accounts table"]),
    (lambda d: _edit(d, "accounts", "account_id", 1, "a1"),
     ["accounts.csv", "column 'account_id', row 2", "listed twice"]),
    (lambda d: _edit(d, "statements", "due_date", 1, "2026-13-40"),
     ["statements.csv", "column 'due_date', row 2", "expected a date"]),
    (lambda d: _edit(d, "contacts", "promise_date", 1, "2026-01-01"),
     ["contacts.csv", "column 'promise_date', row 2", "dates out of order"]),
    (lambda d: _edit(d, "contacts", "promise_amount", 1, "-3"),
     ["contacts.csv", "column 'promise_amount', row 2", "expected a number >= 0"]),
    (lambda d: _edit(d, "contacts", "channel", 0, "fax"),
     ["contacts.csv", "column 'channel', row 1", "one of push, email, sms"]),
    (lambda d: _edit(d, "accounts", "product", 0, "cars"),
     ["accounts.csv", "column 'product', row 1", "one of shopping"]),
    (lambda d: (d / "portfolio.yaml").write_text("as_of: 2026-01-15\n"),
     ["statements.csv", "column 'due_date', row 2", "before as_of 2026-01-15"]),
    (lambda d: pd.read_csv(d / "payments.csv").to_parquet(d / "payments.parquet"),
     ["both payments.csv and payments.parquet"]),
]


@pytest.mark.parametrize(("damage", "words"), BAD_DATA)
def test_bad_portfolio_data_is_one_line_and_writes_nothing(tmp_path: Path, damage,
                                                           words: list[str]) -> None:
    data = tmp_path / "data"
    _write_data(data)
    out = tmp_path / "out" / "targets.yaml"
    assert runner.invoke(app, ["targets", str(data), "--out", str(tmp_path / "ok.yaml")]
                         ).exit_code == 0
    damage(data)
    r = runner.invoke(app, ["targets", str(data), "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists() and not out.parent.exists()


def test_without_contacts_contact_targets_are_absent_and_parameters_flagged(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_data(data)
    (data / "contacts.csv").unlink()
    found = extract(read_portfolio(data), Definition(), resamples=5)
    assert not found.has_contacts and "rpc_rate" not in found.values
    space = ParameterSpace.from_mapping({"parameters": {
        "channels.sms.impulse": {"low": 0.02, "high": 0.2},
        "population.segments.self_curer.share": {"low": 0.05, "high": 0.2}}})
    sc = scenario_from_dict({**LENDER, "population": {"size": 200}})
    plan = plan_calibration(sc, "s.yaml", space, found, "t.yaml", budget=1, refits=0,
                            refit_budget=0)
    frame = estimates_frame(plan, {p: 0.1 for p in space.paths}, [])
    flagged = dict(zip(frame["param"], frame["identified"], strict=True))
    assert flagged == {"channels.sms.impulse": False,
                       "population.segments.self_curer.share": True}
    assert "only contacts data" in frame["note"].iloc[0]


# --------------------------------------------------------------------------- from_file


def _accounts_file(tmp_path: Path, n: int = 4000, seed: int = 5) -> tuple[Path, object]:
    sc = scenario_from_dict({"population": {"size": n}, "seed": seed})
    book = generate_book(sc, Streams(seed))
    o = book.observable
    frame = pd.DataFrame({
        "account_id": np.arange(n), "score": o.score, "credit_line": o.credit_line,
        "balance": o.balance, "amount_due": o.amount_due,
        "product": [PRODUCTS[k] for k in o.product], "tenure_months": o.tenure_months,
        "prior_delinquencies": o.prior_delinquencies, "dpd": np.where(np.arange(n) < 10, 45, 0),
        "on_file_push": o.on_file[:, 0], "on_file_email": o.on_file[:, 1],
        "on_file_phone": o.on_file[:, 2], "opt_out_sms": np.arange(n) % 7 == 0})
    path = tmp_path / "accounts.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _auc(score: np.ndarray, bad: np.ndarray) -> float:
    """P(a good account scores above a bad one): the Mann-Whitney statistic."""
    ranks = pd.Series(score).rank().to_numpy()
    n_bad, n_good = int(bad.sum()), int((~bad).sum())
    return float((ranks[~bad].sum() - n_good * (n_good + 1) / 2) / (n_good * n_bad))


def test_book_from_file_keeps_the_observables_and_the_score_discriminates(
        tmp_path: Path) -> None:
    path, frame = _accounts_file(tmp_path)
    sc = scenario_from_dict({"population": {"size": len(frame), "from_file": str(path)}})
    book = generate_book(sc, Streams(8))
    o = book.observable
    assert np.array_equal(o.score, frame["score"].to_numpy(dtype=float))
    assert np.allclose(o.balance, frame["balance"].to_numpy(dtype=float), rtol=1e-12, atol=0)
    assert np.array_equal(o.on_file[:, 4], frame["on_file_phone"].to_numpy(dtype=bool))
    assert np.array_equal(o.due_day[:10], np.full(10, -45.0))  # in arrears: due day -dpd
    assert ((o.due_day[10:] >= 0) & (o.due_day[10:] <= 30)).all()
    sms = list(("push", "email", "sms", "robocall", "agent_call")).index("sms")
    assert np.array_equal(book.state.opted_out[:, sms], frame["opt_out_sms"].to_numpy())
    counts = np.bincount(book.latent.segment, minlength=len(SEGMENTS))
    expected = [round(sc.population.segments[s].share * len(frame)) for s in SEGMENTS]
    assert np.abs(counts - expected).max() <= 1  # shares met exactly (largest remainder)
    # The score keeps its discriminating power: the AUC between the bad and good classes
    # drawn from the scores is the scenario's 0.75 within 0.04 (the standard error of an
    # AUC over ~1,000 bad and ~3,000 good accounts is about 0.01).
    bad = np.array([sc.population.segments[s].score_bad for s in SEGMENTS])[
        book.latent.segment]
    assert abs(_auc(o.score, bad) - sc.population.score.auc) < 0.04
    # Another size: drawn from the file with replacement.
    resampled = generate_book(scenario_from_dict(
        {"population": {"size": 500, "from_file": str(path)}}), Streams(8))
    assert resampled.n == 500 and set(resampled.observable.score) <= set(o.score)


def test_from_file_is_relative_to_the_scenario_and_keys_cells_by_its_content(
        tmp_path: Path) -> None:
    path, frame = _accounts_file(tmp_path, n=300)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"population": {"size": 300, "from_file":
                                                       "accounts.csv"}, "horizon_days": 30}))
    sc = load_scenario(scenario)
    assert sc.population.from_file == str(path.resolve())
    cell = {k: v for k, v in sc.to_dict().items() if k not in ("seed", "replications",
                                                                "strategies")}
    before = CellTask.make(cell, {"use": "no_contact"}, 1, 0).key
    frame.loc[0, "score"] = 301
    frame.to_csv(path, index=False)
    assert CellTask.make(cell, {"use": "no_contact"}, 1, 0).key != before
    r = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output


def test_a_bad_accounts_file_is_one_line(tmp_path: Path) -> None:
    path, frame = _accounts_file(tmp_path, n=50)
    frame.loc[3, "dpd"] = -2
    frame.to_csv(path, index=False)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"population": {"size": 50, "from_file":
                                                       "accounts.csv"}}))
    r = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1
    assert "accounts.csv: column 'dpd', row 4: expected a whole number >= 0" in r.output
    assert not (tmp_path / "out").exists()


def test_from_file_and_arrears_together_name_the_one_to_drop() -> None:
    for billing in (False, True):
        with pytest.raises(ScenarioError, match=r"drop population\.arrears"):
            scenario_from_dict({"population": {"from_file": "x.csv",
                                               "billing": {"enabled": billing},
                                               "arrears": {"M1": 0.05}}})
    # All-zero arrears give no arrears: nothing to drop.
    scenario_from_dict({"population": {"from_file": "x.csv", "arrears": {"M1": 0.0}}})


def test_a_lenders_file_seeds_a_living_book(tmp_path: Path) -> None:
    """With monthly statements, a lender's account dpd days past due has missed the
    statements due since day -dpd (its amount past due is that many instalments), its
    plan is round(balance / instalment) statements, money adds up over every statement,
    and the accounts opening later are drawn from the scenario's population."""
    from tests.test_living_book import money_adds_up

    file = Path(__file__).resolve().parents[1] / "scenarios" / "calibration" / "data" / \
        "accounts.csv"
    accounts = pd.read_csv(file)
    accounts.loc[:399, "dpd"] = np.arange(400) % 119 + 1  # arrears of every bucket
    accounts.to_csv(tmp_path / "accounts.csv", index=False)
    sc = scenario_from_dict({
        "seed": 8, "horizon_days": 120,
        "population": {"from_file": str(tmp_path / "accounts.csv"), "size": len(accounts),
                       "billing": {"enabled": True, "cycle_days": 30},
                       "inflow": {"rate_per_day": 0.002}},
        "repayment": {"charge_off_dpd": 120}, "strategies": [{"use": "no_contact"}]})
    book = generate_book(sc, Streams(sc.seed))
    results = run(sc, sc.strategies[0], 0)
    plan, o = book.plan, book.observable
    assert plan is not None
    n = len(accounts)
    dpd = accounts["dpd"].to_numpy()
    missed = np.where(dpd > 0, (dpd - 1) // 30 + 1, 0)
    assert (plan.past_due0[:n] == missed).all()
    late = dpd > 0
    assert (plan.first_due[:n][late] == -dpd[late]).all()
    np.testing.assert_allclose(o.amount_due[:n][late] * missed[late],
                               accounts["amount_due"].to_numpy()[late])
    instalment = o.amount_due[:n]
    expected = np.maximum(np.rint(accounts["balance"].to_numpy() / instalment),
                          np.maximum(missed, 1))
    assert (plan.statements[:n] == expected).all()
    assert (book.state.owed[:n][late] > 0).all() and (book.state.owed[:n][~late] == 0).all()
    assert np.isfinite(plan.opened[n:]).all() and plan.opened.size > n  # inflow
    a = results.accounts
    assert len(a) > n  # the run draws its own inflow (its own seed)
    money_adds_up(results, sc)
    assert (a["statements_billed"][:n][~late] >= 1).all()


# --------------------------------------------------------------------------- calibrate


def _observed(tmp_path: Path, truth: dict[str, float], size: int, seed: int = 4242
              ) -> tuple[Path, Path, Path]:
    """A lender simulated with ``truth`` on a seed no trial uses; its targets, the
    scenario to calibrate (the defaults) and the parameter space."""
    base = {**LENDER, "population": {"size": size}}
    space_data = {"parameters": {
        "population.segments.self_curer.share": {"low": 0.05, "high": 0.25},
        "channels.sms.impulse": {"low": 0.03, "high": 0.25, "log": True}}}
    space = ParameterSpace.from_mapping(space_data)
    sc = scenario_from_dict(space.apply(scenario_from_dict(base).to_dict(), truth))
    results = run(sc, sc.strategies[0], seed)
    targets = tmp_path / "targets.yaml"
    write_targets(targets, extract(portfolio_from_run(results.accounts, results.events,
                                                      sc.horizon_days), Definition(),
                                   resamples=100, seed=1))
    scenario = tmp_path / "lender.yaml"
    scenario.write_text(yaml.safe_dump(base))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(space_data))
    return targets, scenario, params


TRUTH = {"population.segments.self_curer.share": 0.18, "channels.sms.impulse": 0.14}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Targets, scenario and space of a 200-account lender (for input checks)."""
    return _observed(tmp_path_factory.mktemp("small"), TRUTH, size=200)


@pytest.fixture(scope="session")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small recovery: a 1,500-account lender fitted in 37 trials (the start and six
    CMA-ES generations of 6: with two generations the search had not settled, and where
    it stood depended on the targets' set) and 3 refits. Made once per session even
    under pytest-xdist (the first worker makes it under a file lock, the others read
    it), as it is the file's costliest fixture."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    tmp = base / "small-calibration"
    out = tmp / "out"
    with open(base / "small-calibration.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "estimates.csv").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            targets, scenario, params = _observed(tmp, TRUTH, size=1500)
            plan = plan_calibration(load_scenario(scenario, ["horizon_days=120"]),
                                    str(scenario), ParameterSpace.load(params),
                                    load_targets(targets), str(targets), budget=37, refits=3,
                                    refit_budget=4, held_out=HELD_OUT, base_dir=str(tmp))
            run_calibration(plan, out, LocalPool(2))
    return out


#: Targets left out of the small recovery's fit: the issue's two examples, and the cure
#: rate at 5 days, which the uncalibrated defaults miss by more than 3 standard errors.
HELD_OUT = ("roll_m2_m3", "promise_kept_rate", "cure_5")


@pytest.mark.slow
def test_calibration_recovers_known_parameters(calibration: Path) -> None:
    est = pd.read_csv(calibration / "estimates.csv").set_index("param")
    assert list(est.columns) == ["estimate", "low", "high", "prior_low", "prior_high",
                                 "identified", "note"]
    # The small version of the recovery benchmark: 1,500 accounts, 37 trials. The
    # self-curer share moves the whole early cure curve and is pinned within 15 % of the
    # truth (the full benchmark asks 10 % at 10,000 accounts); the SMS impulse trades off
    # against it on so small a book, so it is asked only to land within 40 % of the truth
    # and inside its prior box, its interval inside the box.
    share = est.loc["population.segments.self_curer.share"]
    assert abs(share["estimate"] - 0.18) / 0.18 < 0.15, share
    sms = est.loc["channels.sms.impulse"]
    assert abs(sms["estimate"] - 0.14) / 0.14 < 0.40, sms
    for _, r in est.iterrows():
        assert r["prior_low"] <= r["low"] <= r["high"] <= r["prior_high"]
    fit = pd.read_csv(calibration / "fit.csv")
    assert list(fit.columns[:5]) == ["target", "observed", "se", "simulated", "z"]
    draws = read_draws_csv(calibration)  # as contactsim robust reads it
    assert len(draws.draws) == 3 and draws.paths == list(est.index)
    calibrated = load_scenario(calibration / "calibrated.yaml")
    assert calibrated.population.segments["self_curer"].share == pytest.approx(
        share["estimate"])
    assert [s.use for s in calibrated.strategies] == ["fixed_cadence"]


@pytest.mark.slow
def test_held_out_targets_are_reproduced_within_3_standard_errors(calibration: Path) -> None:
    """Targets not used in the fit, from the calibrated scenario re-run on fresh seeds
    (``fit.csv``), lie within 3 standard errors of the observed (observed and simulated
    se combined): a 3-se band is what the issue asks, and leaves a 0.3 % chance per
    target of failing by noise alone when the model is right."""
    fit = pd.read_csv(calibration / "fit.csv").set_index("target")
    held = fit[fit["held_out"]]
    assert sorted(held.index) == sorted(HELD_OUT)
    assert (held["z"].abs() <= 3).all(), held[["observed", "simulated", "se", "z"]]
    assert set(fit.index[~fit["held_out"]]).isdisjoint(HELD_OUT)
    # The check can fail: the uncalibrated scenario (the defaults), run on a fresh seed,
    # misses the held-out cure rate at 5 days by more than 3 of the same standard errors.
    resolved = yaml.safe_load((calibration / "calibration.resolved.yaml").read_text())
    default = scenario_from_dict(resolved["scenario"])
    results = run(default, default.strategies[0], resolved["check_seeds"][0])
    found = extract(portfolio_from_run(results.accounts, results.events,
                                       default.horizon_days), Definition(), resamples=0)
    z = (found.values["cure_5"] - fit.loc["cure_5", "observed"]) / fit.loc["cure_5", "se"]
    assert abs(z) > 3, z


@pytest.mark.slow
def test_report_of_a_calibration(calibration: Path) -> None:
    r = runner.invoke(app, ["report", str(calibration)])
    assert r.exit_code == 0, r.output
    assert "(4 figures)" in r.output
    page = (calibration / "report.html").read_text(encoding="utf-8")
    assert "Estimates and fit" in page and "Cure curve: observed and fitted" in page


def test_resampled_targets_stay_shares(small: tuple[Path, Path, Path]) -> None:
    targets, scenario, params = small
    plan = plan_calibration(load_scenario(scenario), str(scenario),
                            ParameterSpace.load(params), load_targets(targets),
                            str(targets), budget=1, refits=2, refit_budget=0)
    for b in range(20):
        draw = resampled_targets(plan, b)
        assert all(0.0 <= draw[t] <= 1.0 for t in plan.fitted)
    assert resampled_targets(plan, 3) == resampled_targets(plan, 3)


@pytest.mark.parametrize("weighting", ["diagonal", "full"])
def test_gauss_newton_refits_have_the_estimators_spread_on_a_linear_problem(
        small: tuple[Path, Path, Path], weighting: str) -> None:
    """On simulated targets linear in the parameters (unit scale, ``sim = A u``), each
    refit solves its resampled problem exactly, so the refits' covariance is the
    estimator's and they centre on the estimate. The targets' errors are correlated
    (AR(1), rho 0.8, as the cure curve's cumulative days are), S = D R D with D the
    standard errors: with ``diagonal`` weighting the estimator's covariance is the
    sandwich (J'J)^-1 J'RJ (J'J)^-1, J = D^-1 A; with ``full`` it is (A'S^-1 A)^-1.
    Either differs from the (J'J)^-1 that independent draws would give by more than the
    test's tolerance (checked), so the test fails if the draws ignore the correlation.
    400 refits estimate a standard deviation within about 3.5 % (1 / sqrt(2 x 400)):
    15 % is over 4 of its standard errors; the mean within 0.25 standard deviations is
    over 5 of its own (1 / sqrt(400) = 0.05)."""
    from dataclasses import replace

    from simulator.experiments.calibrate import _refits, jacobian

    targets, scenario, params = small
    plan = plan_calibration(load_scenario(scenario), str(scenario),
                            ParameterSpace.load(params), load_targets(targets),
                            str(targets), budget=1, refits=400, refit_budget=0,
                            weighting=weighting)
    space = plan.space
    d, k = len(space), len(plan.fitted)
    rng = np.random.default_rng(11)
    w = plan.se
    # Slopes mostly of one sign, as the cure curve's days move together.
    a = rng.normal(1.0, 1.0, (k, d)) * w[:, None] * 20.0
    lag = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
    corr = 0.8 ** lag
    centre = np.full(d, 0.5)
    observed = {t: 0.5 for t in plan.fitted}
    plan = replace(plan, correlation=corr, targets=replace(
        plan.targets, values={**plan.targets.values, **observed}))

    class Linear:
        def run(self, points, seeds):
            out = []
            for pt in points:
                u = np.array([q.to_unit(pt[q.path]) for q in space.parameters])
                sim = 0.5 + a @ (u - centre)
                out.append({"values": dict(zip(plan.fitted, sim.tolist(), strict=True))})
            return out

    estimate = {q.path: q.from_unit(0.5) for q in space.parameters}
    draws = _refits(plan, Linear(), jacobian(plan, Linear(), estimate), estimate,
                    Linear().run([estimate], ())[0], None)
    u = np.array([[q.to_unit(dr[q.path]) for q in space.parameters] for dr in draws])
    jac = a / w[:, None]
    bread = np.linalg.inv(jac.T @ jac)
    if weighting == "diagonal":
        expected = bread @ jac.T @ corr @ jac @ bread
    else:
        s_cov = corr * np.outer(w, w)
        expected = np.linalg.inv(a.T @ np.linalg.solve(s_cov, a))
    expected_sd = np.sqrt(np.diag(expected))
    assert (np.abs(expected_sd / np.sqrt(np.diag(bread)) - 1.0) > 0.3).any()
    assert len(draws) == 400
    np.testing.assert_allclose(u.std(axis=0, ddof=1), expected_sd, rtol=0.15)
    assert (np.abs(u.mean(axis=0) - 0.5) < 0.25 * expected_sd).all()


@pytest.mark.parametrize("cliff", [False, True])
def test_the_polish_reaches_the_minimum_or_keeps_the_best_trial(
        small: tuple[Path, Path, Path], cliff: bool) -> None:
    """The search's best trial is polished by Gauss-Newton. On targets linear in the
    parameters whose minimum (distance 0) is at the centre of the box, one step from a
    best trial off the centre lands on it (to 1e-6 of the unit scale; lsq_linear solves
    the step to machine precision). Where the targets are linear only near the best
    trial and fall off a cliff beyond it (every target 1,000 standard errors off
    further than the Jacobian's step), the step leads to a worse distance and the best
    trial is kept as it was: the polish only ever lowers the distance."""
    from dataclasses import replace

    from simulator.experiments.calibrate import JACOBIAN_STEP, _polish, distance, jacobian

    targets, scenario, params = small
    plan = plan_calibration(load_scenario(scenario), str(scenario),
                            ParameterSpace.load(params), load_targets(targets),
                            str(targets), budget=1, refits=0, refit_budget=2)
    space = plan.space
    k = len(plan.fitted)
    rng = np.random.default_rng(5)
    a = rng.normal(1.0, 1.0, (k, len(space))) * plan.se[:, None] * 20.0
    plan = replace(plan, targets=replace(
        plan.targets, values={**plan.targets.values, **{t: 0.5 for t in plan.fitted}}))

    class Model:
        def run(self, points, seeds):
            out = []
            for pt in points:
                u = np.array([q.to_unit(pt[q.path]) for q in space.parameters])
                sim = 0.5 + a @ (u - 0.5)
                if cliff and np.abs(u - 0.2).max() > JACOBIAN_STEP + 1e-9:
                    sim = 0.5 + 1000.0 * plan.se  # far worse than the best trial
                out.append({"values": dict(zip(plan.fitted, sim.tolist(), strict=True))})
            return out

    model = Model()
    start = {q.path: q.from_unit(0.2) for q in space.parameters}
    at_start = model.run([start], ())[0]
    best = (start, distance(plan, at_start["values"]), at_start)
    point, value, at_point = _polish(plan, model, jacobian(plan, model, start), best)
    assert value == pytest.approx(distance(plan, at_point["values"]))
    if cliff:
        assert point == start and value == best[1]
    else:
        units = np.array([q.to_unit(point[q.path]) for q in space.parameters])
        np.testing.assert_allclose(units, 0.5, atol=1e-6)
        assert value < 1e-9 < best[1]


def test_the_jacobian_is_averaged_over_its_sets_of_seeds(
        small: tuple[Path, Path, Path]) -> None:
    """With ``jacobian_replications`` K the central differences run on the fit's seeds
    and K - 1 fresh sets (none of them the check's), and the Jacobian is the mean of the
    differences on each: on targets ``A u + e(seed, u)``, with each seed's noise a
    different smooth function of the parameters, it is A plus the mean of the noises'
    slopes, to rounding. With one set it is the fit's seeds' slopes alone."""
    from simulator.experiments.calibrate import jacobian

    targets, scenario, params = small
    space = ParameterSpace.load(params)
    plans = {k: plan_calibration(load_scenario(scenario), str(scenario), space,
                                 load_targets(targets), str(targets), budget=1, refits=0,
                                 refit_budget=0, replications=2, jacobian_step=0.1,
                                 jacobian_replications=k) for k in (1, 3)}
    plan = plans[3]
    assert plan.jacobian_seeds[:2] == plan.seeds == plans[1].jacobian_seeds
    assert len(set(plan.jacobian_seeds)) == 6
    assert not set(plan.jacobian_seeds) & set(plan.check_seeds)
    k, d = len(plan.fitted), len(space)
    a = np.random.default_rng(3).normal(0.0, 1.0, (k, d))

    def tilt(seed: int) -> np.ndarray:  # each seed's noise slope
        return np.random.default_rng(seed % 2**32).normal(0.0, 1.0, (k, d))

    class Noisy:
        def __init__(self) -> None:
            self.seeds: list[tuple[int, ...]] = []

        def run(self, points, seeds):
            self.seeds.append(tuple(seeds))
            out = []
            for pt in points:
                u = np.array([q.to_unit(pt[q.path]) for q in space.parameters])
                sim = np.mean([0.5 + (a + tilt(s)) @ (u - 0.5) for s in seeds], axis=0)
                out.append({"values": dict(zip(plan.fitted, sim.tolist(), strict=True))})
            return out

    centre = {q.path: q.from_unit(0.5) for q in space.parameters}
    for k_sets, p in plans.items():
        model = Noisy()
        _, g = jacobian(p, model, centre)
        assert model.seeds == [p.jacobian_seeds]
        expected = a + np.mean([tilt(s) for s in p.jacobian_seeds], axis=0)
        np.testing.assert_allclose(g, expected, atol=1e-9)
        assert k_sets == 3 or np.allclose(g, a + np.mean([tilt(s) for s in p.seeds], axis=0))


def test_targets_carry_their_correlation_and_a_bad_one_is_one_line(
        small: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """The targets file holds the bootstrap correlation of its targets: the cure curve's
    days are cumulative, so neighbouring days are strongly correlated (above 0.5 on a
    200-account book: they share most of their statements); a malformed matrix is one
    line naming the file and the field."""
    targets, _, _ = small
    found = load_targets(targets)
    assert found.correlation is not None
    r = found.correlation
    np.testing.assert_allclose(np.diag(r), 1.0)
    np.testing.assert_allclose(r, r.T)
    i, j = found.names.index("cure_10"), found.names.index("cure_15")
    assert r[i, j] > 0.5
    data = yaml.safe_load(targets.read_text())
    data["correlation"][0] = data["correlation"][0][:-1]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"correlation\[0\]"):
        load_targets(bad)
    data = yaml.safe_load(targets.read_text())
    data["correlation"][1][2] = 1.5
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"in \[-1, 1\]"):
        load_targets(bad)


@pytest.mark.slow
def test_a_killed_calibration_resumes_to_the_same_estimates(tmp_path: Path,
                                                           kill_midway) -> None:
    targets, scenario, params = _observed(tmp_path, TRUTH, size=300)
    common = ["calibrate", str(scenario), "--targets", str(targets), "--params", str(params),
              "--budget", "7", "--refits", "2", "--refit-budget", "1", "--workers", "2",
              "--set", "horizon_days=60"]
    # The uninterrupted calibration, in this process (the same plan as the command's).
    plan = plan_calibration(load_scenario(scenario, ["horizon_days=60"]), str(scenario),
                            ParameterSpace.load(params), load_targets(targets), str(targets),
                            budget=7, refits=2, refit_budget=1, base_dir=str(tmp_path))
    run_calibration(plan, tmp_path / "whole", LocalPool(2))
    out = tmp_path / "killed"
    kill_midway([*common, "--out", str(out)], out / "cells", 3)
    before = set(valid_cells(out / "cells"))
    # Nothing half-written: the study and the cells are there to resume, no output is.
    assert (out / "study.db").is_file()
    assert not any((out / name).exists() for name in OUTPUTS), sorted(os.listdir(out))
    unfinished = runner.invoke(app, ["report", str(out)])
    assert unfinished.exit_code == 2 and "has not finished" in unfinished.output
    resumed = contactsim(*common, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    total = len(set(valid_cells(tmp_path / "whole" / "cells")))
    assert f"computed {total - len(before)} cells, reused {len(before)}" in resumed.stdout
    for name in ("estimates.csv", "fit.csv", "draws.csv"):
        assert (out / name).read_text() == (tmp_path / "whole" / name).read_text(), name


BAD_CALIBRATION = [
    (["--set", "strategies=[{use: no_contact}, {use: fixed_cadence}]"],
     ["exactly one strategy", "it has 2"]),
    (["--hold-out", "roll_m9"], ["--hold-out", "'roll_m9' is not a target"]),
    (["--targets", "{d}/params.yaml"], ["params.yaml", "not a targets file"]),
    (["--params", "{t}/bad_params.yaml"], ["bad_params.yaml", "parameters.channels.sms.impluse",
                                           "not a field"]),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], ["--workers"]),
    (["--refits", "1"], ["--refits", "at least 2 refits"]),
    (["--jacobian-step", "0"], ["--jacobian-step", "in (0, 0.5]", "got 0"]),
    (["--jacobian-replications", "0"], ["--jacobian-replications", "at least one set"]),
    (["--params", "{t}/flipped.yaml"], ["flipped.yaml", "self_curer.share",
                                        "is below low"]),
    (["--set", "population.from_file=no_such_accounts.csv"],
     ["no_such_accounts.csv", "no such file"]),
    (["--targets", "{t}/t_accounts.yaml"], ["t_accounts.yaml", "accounts:",
                                            "expected a whole number >= 0, got 'lots'"]),
    (["--targets", "{t}/t_se.yaml"], ["t_se.yaml", "targets.cure_5.se",
                                      "expected a number >= 0"]),
    (["--targets", "{t}/t_value.yaml"], ["t_value.yaml", "targets.cure_5.value",
                                         "expected a share in [0, 1]"]),
    (["--targets", "{t}/t_name.yaml"], ["t_name.yaml", "targets.cure_45",
                                        "not a target of this definition"]),
    (["--out", "{t}/a_file"], ["a_file", "cannot be the output folder"]),
]


def _damaged_inputs(targets: Path, folder: Path) -> None:
    """The bad files BAD_CALIBRATION names, made from the good targets file."""
    (folder / "bad_params.yaml").write_text(yaml.safe_dump(
        {"parameters": {"channels.sms.impluse": {"low": 0.01, "high": 0.2}}}))
    (folder / "flipped.yaml").write_text(yaml.safe_dump(
        {"parameters": {"population.segments.self_curer.share": {"low": 0.3, "high": 0.1}}}))
    (folder / "a_file").write_text("not a folder")
    good = yaml.safe_load(targets.read_text())

    def damaged(name: str, change) -> None:
        data = yaml.safe_load(yaml.safe_dump(good))
        change(data)
        (folder / name).write_text(yaml.safe_dump(data))

    damaged("t_accounts.yaml", lambda d: d.update(accounts="lots"))
    damaged("t_se.yaml", lambda d: d["targets"]["cure_5"].update(se=-0.01))
    damaged("t_value.yaml", lambda d: d["targets"]["cure_5"].update(value=1.5))
    damaged("t_name.yaml", lambda d: d["targets"].update(cure_45=d["targets"]["cure_5"]))


@pytest.mark.parametrize(("extra", "words"), BAD_CALIBRATION)
def test_bad_calibration_input_is_one_line_and_writes_nothing(
        tmp_path: Path, small: tuple[Path, Path, Path], extra, words: list[str]) -> None:
    targets, scenario, params = small
    _damaged_inputs(targets, tmp_path)
    out = tmp_path / "out"
    args = {"--targets": str(targets), "--params": str(params), "--out": str(out)}
    rest = [x.replace("{d}", str(targets.parent)).replace("{t}", str(tmp_path)) for x in extra]
    for key in list(args):
        if key in rest:
            del args[key]
    before = sorted(os.listdir(tmp_path))
    r = runner.invoke(app, ["calibrate", str(scenario), *[x for kv in args.items() for x in kv],
                            "--budget", "2", *rest])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert sorted(os.listdir(tmp_path)) == before  # no output folder, nothing half-written


def test_a_calibration_folder_is_one_problem_locked_and_feeds_robust(
        tmp_path: Path, small: tuple[Path, Path, Path]) -> None:
    targets, scenario, params = small
    out = tmp_path / "out"
    plan = plan_calibration(load_scenario(scenario, ["horizon_days=40"]), str(scenario),
                            ParameterSpace.load(params), load_targets(targets), str(targets),
                            budget=2, refits=2, refit_budget=1)
    run_calibration(plan, out, LocalPool(1))
    assert json.loads((out / ".contactsim.json").read_text())["files"] == sorted(OUTPUTS)
    other = plan_calibration(load_scenario(scenario, ["horizon_days=41"]), str(scenario),
                             ParameterSpace.load(params), load_targets(targets), str(targets),
                             budget=2, refits=0, refit_budget=0)
    with pytest.raises(UserError, match="another scenario"):
        run_calibration(other, out, LocalPool(1))
    # A second command on a folder being written is refused, and leaves it as it was.
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with OutputFolder(out), pytest.raises(UserError, match="another contactsim command"):
        run_calibration(plan, out, LocalPool(1))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # contactsim robust reads the calibration's draws.csv as it is.
    robust_scenario = tmp_path / "robust.yaml"
    robust_scenario.write_text(yaml.safe_dump({**yaml.safe_load(scenario.read_text()),
                                               "horizon_days": 40}))
    r = runner.invoke(app, ["robust", str(robust_scenario), "--draws-from", str(out),
                            "--strategies", "fixed_cadence,no_contact", "--out",
                            str(tmp_path / "robust"), "-q"])
    assert r.exit_code == 0, r.output
    ranking = pd.read_csv(tmp_path / "robust" / "ranking.csv")
    assert sorted(ranking["strategy"]) == ["fixed_cadence", "no_contact"]
    assert (ranking["draws"] == 2).all()


@pytest.mark.slow
def test_dask_gives_the_same_calibration(dask_cluster: str, tmp_path: Path,
                                         small: tuple[Path, Path, Path]) -> None:
    targets, scenario, params = small
    common = ["calibrate", str(scenario), "--targets", str(targets), "--params", str(params),
              "--budget", "4", "--refits", "2", "--refit-budget", "1",
              "--set", "horizon_days=40"]
    r = contactsim(*common, "--out", str(tmp_path / "dask"), "--scheduler", dask_cluster)
    assert r.returncode == 0, r.stderr
    assert "Dask scheduler" in r.stdout
    r = contactsim(*common, "--out", str(tmp_path / "local"), "--workers", "2")
    assert r.returncode == 0, r.stderr
    for name in ("estimates.csv", "fit.csv", "draws.csv", "calibrated.yaml"):
        assert (tmp_path / "dask" / name).read_text() == (tmp_path / "local" / name).read_text()
