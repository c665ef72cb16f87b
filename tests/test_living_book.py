"""The living book (docs/model.md sections 2.5, 2.6 and 2.7): monthly statements paid oldest first,
accounts in arrears on day 0, new accounts opening, and what a strategy sees.

Deterministic checks drive the repayment process directly (no payment at all, or a
payment of a chosen amount); properties run the engine on random living books.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.billing import BilledRepayment
from simulator.book import CHARGED_OFF, CURED, CURRENT, DELINQUENT, PAID_ON_TIME, PRE_DUE
from simulator.engine import Results, run
from simulator.kpis import kpi_range
from simulator.population import generate_book
from simulator.recorder import Recorder
from simulator.rng import Streams
from simulator.scenario import SEGMENTS, Scenario, StrategySpec, scenario_from_dict
from simulator.view import build_view


def living(**over: Any) -> Scenario:
    """A small living book; ``over`` merged into the scenario (dicts one level deep)."""
    data: dict[str, Any] = {
        "horizon_days": 150,
        "population": {"size": 1000, "billing": {"enabled": True}},
        "repayment": {"charge_off_dpd": 120},
        "agency": {"enabled": True},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return scenario_from_dict(data)


def never_pays() -> dict[str, Any]:
    """Segments whose intensity is always zero: nobody pays."""
    return {name: {"lambda_0": 0.0, "lambda_inf": 0.0, "delta10": 0.0, "delta11": 0.0,
                   "due_impulse": 0.0, "payday_impulse": 0.0, "bureau_impulse": 0.0,
                   "statement_impulse": 0.0} for name in SEGMENTS}


def process_of(scenario: Scenario, seed: int = 1) -> BilledRepayment:
    streams = Streams(seed)
    book = generate_book(scenario, streams)
    process = BilledRepayment(book, scenario, streams, Recorder())
    process.start()
    return process


# ----------------------------------------------------------------------------- statements


def test_statements_accumulate_and_days_past_due_count_from_the_oldest() -> None:
    # Nobody pays: every statement falls due unpaid. With a 30-day cycle and a late fee,
    # an account owes one instalment (+ fee) per statement due, days past due count from
    # its first due date, and statements stop at charge-off (120 days past due).
    fee = 7.0
    sc = living(population={"size": 300, "billing": {"enabled": True}, "due_day":
                            {"low": 5, "high": 5}, "instalments_remaining": 11,
                            "segments": never_pays()},
                repayment={"charge_off_dpd": 120, "late_fee": fee})
    p = process_of(sc)
    s, bills, a = p.book.state, p.bills, p.book.observable.amount_due
    first = p.plan.statements  # 1 + instalments
    for day, due in ((40, 2), (70, 3), (100, 4)):
        p.advance_due(float(day))
        # Statement k is due at the end of day 5 + 30 k; at day 40, 2 have fallen due.
        missed = np.minimum(due, first)
        np.testing.assert_array_equal(bills.missed, missed)
        assert (s.status == DELINQUENT).all()
        issued = np.minimum(np.floor((day - (5 + 1 - 15)) / 30) + 1, first)
        np.testing.assert_array_equal(bills.billed, issued)
        np.testing.assert_allclose(s.owed, issued * a + missed * fee)
        np.testing.assert_array_equal(bills.ref_due, 5.0)  # the oldest unpaid due date
        view = build_view(p.book, float(day))
        assert (view["dpd"] == day - 5).all()
        np.testing.assert_allclose(view["amount_past_due"], missed * (a + fee))
        np.testing.assert_array_equal(view["missed_payments"], missed)
    p.advance_due(5 + 120.0)  # charge-off at 120 days past due of the oldest
    assert (s.status == CHARGED_OFF).all()
    billed = bills.billed.copy()
    p.advance_due(400.0)
    np.testing.assert_array_equal(bills.billed, billed)  # no statement after charge-off
    # The whole balance was written off: the plan and every fee charged.
    np.testing.assert_allclose(s.written_off, first * a + bills.fees)


def test_a_plan_bills_its_instalments_and_then_stops() -> None:
    # Everybody pays in full right away: each statement is paid on time, the account is
    # current between statements and closed after its last one.
    fast = {name: {"lambda_0": 50.0, "lambda_inf": 50.0, "full_payment_prob": 1.0,
                   "kappa": 0.0} for name in SEGMENTS}
    sc = living(horizon_days=400, population={"size": 400, "billing": {"enabled": True},
                                             "instalments_remaining": 5, "segments": fast})
    p = process_of(sc)
    s, bills = p.book.state, p.bills
    p.advance_due(100.0)
    open_ = s.status == CURRENT
    assert open_.any()
    assert (s.owed[open_] == 0).all()
    assert (bills.missed == 0).all()
    p.advance_due(400.0)
    np.testing.assert_array_equal(bills.billed, p.plan.statements)
    assert (s.status == PAID_ON_TIME).all()  # closed, the last paid on time
    np.testing.assert_allclose(s.paid_in_house, p.book.observable.balance)
    np.testing.assert_array_equal(bills.delinquencies, 0)


def test_payments_go_to_the_oldest_statement_first() -> None:
    sc = living(population={"size": 50, "billing": {"enabled": True},
                            "due_day": {"low": 10, "high": 10}, "segments": never_pays()},
                repayment={"charge_off_dpd": 120, "late_fee": 5.0})
    p = process_of(sc)
    s, bills = p.book.state, p.bills
    a = p.book.observable.amount_due
    p.advance_due(75.0)
    # Day 75: the statements due at the end of days 10, 40 and 70 have fallen due (for
    # plans that long); the 4th (due on day 100) is issued on day 86 only.
    i = np.flatnonzero(p.plan.statements >= 4)[:10]
    assert i.size == 10
    np.testing.assert_array_equal(bills.missed[i], 3)
    t = np.full(i.size, 75.0)
    # Pay one and a half past-due statements: the oldest is cleared, the next half paid.
    p._on_payment(i, t, amount=1.5 * (a[i] + 5.0))
    np.testing.assert_array_equal(bills.oldest[i], 1)
    np.testing.assert_array_equal(bills.missed[i], 2)
    np.testing.assert_allclose(bills.oldest_left[i], 0.5 * (a[i] + 5.0))
    np.testing.assert_array_equal(bills.ref_due[i], 40.0)  # dpd now from day 40
    assert (s.status[i] == DELINQUENT).all()
    view = build_view(p.book, 76.0).loc[i]
    assert (view["dpd"] == 36).all()
    # Pay the rest of what is past due: a cure; nothing is open, so the account is current.
    p._on_payment(i, t + 1.0, amount=s.owed[i].copy())
    assert (s.status[i] == CURRENT).all()
    np.testing.assert_allclose(s.owed[i], 0.0)
    np.testing.assert_array_equal(bills.missed[i], 0)
    np.testing.assert_allclose(s.paid_delinquent[i], s.amount_delinquent[i])


def test_a_statement_restarts_a_paid_up_account_and_excites_one_in_arrears() -> None:
    impulse = 0.37
    segs = never_pays()
    for cfg in segs.values():
        cfg.update(lambda_0=0.2, lambda_inf=0.05, kappa=0.5, statement_impulse=impulse,
                   full_payment_prob=0.0, partial_fraction={"low": 0.01, "high": 0.01})
    sc = living(population={"size": 200, "billing": {"enabled": True},
                            "due_day": {"low": 20, "high": 20}, "segments": segs})
    p = process_of(sc)
    s, bills = p.book.state, p.bills
    p.advance_due(35.0)  # statement 1 (due 50) is issued at day 36
    late = np.flatnonzero((bills.missed == 1) & (s.owed > 0))
    assert late.size > 0
    i = late[:20]
    # Take the excess to the statement time, then let the statement fire alone.
    p.decay_to(i, 36.0)
    before = s.excess[i].copy()
    p._on_statement(i, np.full(i.size, 36.0))
    np.testing.assert_allclose(s.excess[i], before + impulse)
    # An account that owes nothing starts afresh at lambda_0.
    j = np.flatnonzero(s.owed > 0)[:5]
    s.owed[j] = 0.0
    s.status[j] = CURRENT
    bills.oldest[j] = bills.billed[j]
    bills.missed[j] = 0
    p._on_statement(j, np.full(j.size, 66.0))
    np.testing.assert_allclose(s.excess[j], 0.2 - 0.05)
    np.testing.assert_array_equal(s.t_state[j], 66.0)
    assert (s.status[j] == PRE_DUE).all()


def _lazy(seed: int) -> BilledRepayment:
    sc = living(horizon_days=200, population={"size": 2000, "billing": {"enabled": True},
                                              "arrears": {"M1": 0.05, "M2": 0.03, "M3": 0.02,
                                                          "M4": 0.02},
                                              "inflow": {"rate_per_day": 0.004}},
                repayment={"charge_off_dpd": 120, "late_fee": 10.0})
    return process_of(sc, seed)


def test_one_advance_equals_daily_steps_and_random_subsets() -> None:
    # The lazy advance is exact with statements too: one jump to the horizon, daily steps
    # and advances of random subsets at random times give the same book.
    eager, daily, lazy = _lazy(3), _lazy(3), _lazy(3)
    eager.advance_due(200.0)
    for day in range(-20, 201):
        daily.advance_due(float(day))
    rng = np.random.default_rng(0)
    n = lazy.book.n
    for t in np.sort(rng.uniform(-20, 200, 200)):
        lazy.advance(np.sort(rng.choice(n, size=int(rng.integers(1, 600)),
                                        replace=False)).astype(np.int64), float(t))
    lazy.advance_due(200.0)
    for other in (daily, lazy):
        for col in ("status", "owed", "balance", "t_paid", "paid_in_house", "excess",
                    "t_state", "repay_counter", "written_off", "agency_collected"):
            np.testing.assert_array_equal(getattr(eager.book.state, col),
                                          getattr(other.book.state, col), err_msg=col)
        for col in ("billed", "oldest", "oldest_left", "missed", "due_w", "episodes_w",
                    "cures_w", "amount_w", "collected_w"):
            np.testing.assert_array_equal(getattr(eager.bills, col),
                                          getattr(other.bills, col), err_msg=col)
    s = eager.book.state
    # The paths that matter were taken: closed, current, cured and charged-off accounts.
    for status in (PAID_ON_TIME, CURED, CURRENT, CHARGED_OFF, DELINQUENT):
        assert (s.status == status).any(), status
    assert (eager.bills.delinquencies >= 2).any()  # accounts with several episodes


# ----------------------------------------------------------------------------- day 0, inflow


def test_arrears_on_day_zero_meet_their_shares_and_owe_their_statements() -> None:
    shares = {"M1": 0.06, "M2": 0.02, "M3": 0.015, "M4": 0.01}
    fee = 3.0
    sc = living(population={"size": 20000, "billing": {"enabled": True}, "arrears": shares},
                repayment={"charge_off_dpd": 120, "late_fee": fee})
    book = generate_book(sc, Streams(5))
    plan, s, bills = book.plan, book.state, book.state.bills
    assert plan is not None and bills is not None
    dpd = np.where(plan.past_due0 > 0, -plan.first_due, 0)
    for (bucket, share), (low, high) in zip(shares.items(),
                                            ((1, 30), (31, 60), (61, 90), (91, 119)),
                                            strict=True):
        inside = (dpd >= low) & (dpd <= high)
        assert inside.sum() == round(share * 20000), bucket
    late = plan.past_due0 > 0
    m = plan.past_due0[late]
    np.testing.assert_array_equal(m, np.floor((dpd[late] - 1) / 30) + 1)
    a = book.observable.amount_due[late]
    open_ = bills.billed[late] > m
    np.testing.assert_allclose(s.owed[late], m * (a + fee) + open_ * a)
    assert (s.status[late] == DELINQUENT).all()
    # The model's own odds put the slow payers deep in arrears and almost no on-time payer.
    deep = dpd >= 61
    segment = np.asarray(SEGMENTS)[book.latent.segment]
    assert (segment[deep] == "on_time").mean() < 0.01
    assert np.isin(segment[deep], ["unreachable", "unwilling", "hardship", "cash_flow"]).mean() \
        > 0.8


def test_new_accounts_open_over_the_horizon_and_enter_the_view_when_they_open() -> None:
    rate = 0.004
    sc = living(horizon_days=120, population={"size": 5000, "billing": {"enabled": True},
                                              "inflow": {"rate_per_day": rate}})
    book = generate_book(sc, Streams(9))
    plan = book.plan
    assert plan is not None
    new = np.isfinite(plan.opened)
    expected = rate * 5000 * 120
    # Poisson: the count is within 4 standard deviations of its mean.
    assert abs(new.sum() - expected) < 4 * math.sqrt(expected)
    assert (plan.opened[new] >= 0).all() and (plan.opened[new] < 120).all()
    np.testing.assert_array_equal(plan.first_due[new], np.floor(plan.opened[new]) + 30)
    np.testing.assert_array_equal(plan.statements[new], 12)
    p = BilledRepayment(book, sc, Streams(9), Recorder())
    p.start()
    for day in (0.0, 40.0, 80.0):
        p.advance_due(day)
        view = build_view(book, day)
        ids = view.index.to_numpy()
        assert (plan.opened[ids] <= day).all()
        opened_new = new & (plan.opened <= day)
        assert np.isin(np.flatnonzero(opened_new), ids).all()


# ----------------------------------------------------------------------------- the engine


def money_adds_up(r: Results, sc: Scenario) -> None:
    """Per account, over every statement: the plan's balance + late fees = paid in house
    + balance left + written off; statements billed + fees = paid + owed in house +
    written off less the instalments never billed; the agency never collects more than
    was written off."""
    a = r.accounts
    fees = a["late_fees"].to_numpy()
    np.testing.assert_allclose(a["paid_in_house"] + a["balance_end"] + a["written_off"],
                               a["balance_start"] + fees, rtol=0, atol=1e-6)
    charged = (a["final_state"] == "charged_off").to_numpy()
    amount = a["amount_due"].to_numpy()
    owed_house = np.where(charged, 0.0, a["owed_end"])
    never_billed = np.where(charged, (a["statements"] - a["statements_billed"]) * amount, 0.0)
    np.testing.assert_allclose(a["statements_billed"] * amount + fees,
                               a["paid_in_house"] + owed_house + a["written_off"]
                               - never_billed, rtol=0, atol=1e-6)
    assert (a["agency_collected"] <= a["written_off"] + 1e-6).all()
    assert (a["statements_billed"] <= a["statements"]).all()
    assert (a["paid_delinquent"] <= a["amount_delinquent"] + 1e-6).all()
    assert (a["collected_counted"] <= a["amount_delinquent_counted"] + 1e-6).all()
    assert (a["cures"] <= a["episodes"]).all()
    assert (a["statements_missed"] <= a["statements_due"]).all()
    ev = r.events
    pay = ev[ev["event"] == "payment"]
    t = pay["t"].to_numpy()
    warmup = sc.metrics.warmup_days
    inside = (t >= warmup) & (t <= sc.horizon_days)
    assert math.isclose(r.kpis["cash_collected"], float(pay["amount"].to_numpy()[inside].sum()),
                        rel_tol=1e-9, abs_tol=1e-6)
    for name, value in r.kpis.items():
        found = kpi_range(name)
        assert found is not None, name
        assert math.isnan(value) or found.contains(value), (name, value)


@st.composite
def living_books(draw: st.DrawFn) -> tuple[Scenario, str, int]:
    lead = draw(st.sampled_from([0, 5, 15]))
    cycle = draw(st.integers(max(lead, 7), 45))
    charge_off = draw(st.integers(20, 150))
    horizon = draw(st.integers(60, 200))
    arrears = {f"M{k}": draw(st.sampled_from([0.0, 0.02, 0.1]))
               for k in range(1, 5) if charge_off > (1, 31, 61, 91)[k - 1]}
    sc = living(
        horizon_days=horizon,
        population={"size": draw(st.integers(150, 400)), "statement_lead_days": lead,
                     "billing": {"enabled": True, "cycle_days": cycle}, "arrears": arrears,
                     "inflow": {"rate_per_day": draw(st.sampled_from([0.0, 0.003]))},
                     "instalments_remaining": draw(st.integers(0, 8))},
        repayment={"charge_off_dpd": charge_off,
                   "late_fee": draw(st.sampled_from([0.0, 12.5]))},
        agency={"enabled": draw(st.booleans())},
        metrics={"warmup_days": draw(st.sampled_from([0.0, 0.25 * horizon]))},
        agents={"count": 2},
    )
    strategy = draw(st.sampled_from(["no_contact", "fixed_cadence", "escalation",
                                     "value_based"]))
    return sc, strategy, draw(st.integers(0, 2**31))


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(living_books())
def test_money_is_conserved_over_many_statements(case: tuple[Scenario, str, int]) -> None:
    sc, strategy, seed = case
    money_adds_up(run(sc, strategy, seed), sc)


# ----------------------------------------------------------------------------- strategies


@pytest.fixture(scope="module")
def cadence_run() -> tuple[Scenario, Results]:
    sc = living(horizon_days=150, population={"size": 3000, "billing": {"enabled": True},
                                              "arrears": {"M1": 0.05, "M2": 0.02}},
                agents={"count": 4})
    return sc, run(sc, "fixed_cadence", 4)


def test_the_view_of_a_living_book(cadence_run: tuple[Scenario, Results]) -> None:
    # Checked on a fresh book advanced to day 45, as the engine sees it at an epoch.
    sc, _ = cadence_run
    streams = Streams(4)
    book = generate_book(sc, streams)
    p = BilledRepayment(book, sc, streams, Recorder())
    p.start()
    p.advance_due(45.0)
    view = build_view(book, 45.0)
    s = book.state
    assert set(view["status"].cat.categories) == {"current", "pre_due", "delinquent"}
    status = np.asarray(("pre_due", "paid_on_time", "delinquent", "cured", "charged_off",
                         "current"))[s.status[view.index]]
    assert (view["status"].astype(str).to_numpy() == status).all()
    late = (view["status"] == "delinquent").to_numpy()
    assert (view["dpd"].to_numpy()[late] >= 1).all()
    assert (view["dpd"].to_numpy()[~late] <= 0).all()
    assert (view["missed_payments"].to_numpy()[late] >= 1).all()
    assert (view["amount_past_due"].to_numpy()[~late] == 0).all()
    np.testing.assert_array_less(view["amount_past_due"].to_numpy() - 1e-9,
                                 view["amount_due"].to_numpy())
    current = (view["status"] == "current").to_numpy()
    assert (view["amount_due"].to_numpy()[current] == 0).all()
    # The next due date lies ahead; what falls due then is the open statement's unpaid
    # part or the next instalment.
    nxt = view["next_due_day"].to_numpy()
    has = np.isfinite(nxt)
    assert (nxt[has] + 1 > 45).all()
    assert (view["next_amount_due"].to_numpy()[has] > 0).all()
    # Closed accounts are out of the view, current ones in it.
    assert not np.isin(np.flatnonzero((s.status == PAID_ON_TIME) | (s.status == CURED)),
                       view.index).any()
    assert np.isin(np.flatnonzero((s.status == CURRENT) & (book.opens_at <= 45)),
                   view.index).all()


def test_the_cadence_starts_again_at_each_delinquency(
        cadence_run: tuple[Scenario, Results]) -> None:
    # fixed_cadence steps by days past due from the oldest unpaid due date: an account
    # that cured and missed again gets its day-1 SMS again.
    _, r = cadence_run
    ev = r.events
    sms = ev[(ev["event"] == "contact") & (ev["channel"] == "sms")]
    late = ev[(ev["event"] == "delinquent") & (ev["code"] == 1)]  # a new episode begins
    episodes = late.groupby("account_id").size()
    again = episodes[episodes >= 2].index
    assert len(again) > 20
    first_sms = sms[sms["account_id"].isin(again)].groupby("account_id").size()
    # At least one day-1 SMS per episode for most such accounts (some cure first).
    assert (first_sms.reindex(again).fillna(0) >= 2).mean() > 0.5


def test_early_warning_reminds_before_every_due_date() -> None:
    sc = living(horizon_days=120, population={"size": 2000, "billing": {"enabled": True}})
    r = run(sc, StrategySpec(use="early_warning",
                             params={"high_risk_score": 2000}), 2)  # everybody high risk
    ev, a = r.events, r.accounts.set_index("account_id")
    sms = ev[(ev["event"] == "contact") & (ev["channel"] == "sms")]
    t = sms["t"].to_numpy()
    first_due = a.loc[sms["account_id"], "due_day"].to_numpy()
    # Reminders at 3 and 1 days before a due date: (due - t) mod 30 is 3 or 1 (less the
    # 10:00 hour), for due dates of the first statement and every later one.
    ahead = np.mod(first_due - np.floor(t), 30)
    assert np.isin(ahead, [1, 3]).all()
    statement = np.floor((np.floor(t) - first_due) / 30) + 1
    assert len(np.unique(statement)) >= 3  # several statements' reminders


def test_escalation_starts_again_after_a_cure() -> None:
    from simulator.strategies.escalation import NOT_STARTED, Escalation

    strategy = Escalation()
    cols = sorted(strategy.view_columns())
    ids = np.array([0, 1])

    def view(dpd: list[int], paid: list[float]) -> pd.DataFrame:
        data: dict[str, Any] = {c: np.zeros(2) for c in cols}
        data.update(dpd=np.array(dpd), paid_so_far=np.array(paid),
                    do_not_contact=np.zeros(2, dtype=bool), open_promise=np.zeros(2, bool))
        for c in cols:
            if c.startswith("reachable_"):
                data[c] = np.ones(2, dtype=bool)
            if c.startswith("last_"):
                data[c] = np.full(2, np.nan)
        return pd.DataFrame(data, index=pd.Index(ids, name="account_id"))

    strategy.decide(10, view([3, 3], [0, 0]))
    assert (strategy.rung_of(ids) == 0).all()
    strategy.decide(11, view([-20, 4], [500, 0]))  # account 0 cured
    assert strategy.rung_of(ids).tolist() == [NOT_STARTED, 0]
    out = strategy.decide(40, view([1, 33], [500, 0]))  # account 0 misses again
    assert strategy.rung_of(ids)[0] == 0
    assert 0 in out["account_id"].to_numpy()


def test_prior_delinquencies_count_the_episodes_of_the_run(
        cadence_run: tuple[Scenario, Results]) -> None:
    _, r = cadence_run
    a = r.accounts
    assert (a["delinquencies"] >= a["episodes"]).all()
    ev = r.events
    new = ev[(ev["event"] == "delinquent") & (ev["code"] == 1)]
    counts = new.groupby("account_id").size().reindex(a["account_id"]).fillna(0)
    np.testing.assert_array_equal(counts.to_numpy(), a["delinquencies"].to_numpy())


def test_warm_up_leaves_the_first_days_out_of_the_flow_kpis() -> None:
    sc0 = living(horizon_days=120, population={"size": 2000, "billing": {"enabled": True}})
    sc1 = living(horizon_days=120, population={"size": 2000, "billing": {"enabled": True}},
                 metrics={"warmup_days": 60})
    r0, r1 = run(sc0, "fixed_cadence", 8), run(sc1, "fixed_cadence", 8)
    # Same seed, same run: only the counting window differs.
    pd.testing.assert_frame_equal(r0.events, r1.events)
    ev = r1.events
    late = ev["t"] >= 60
    assert r1.kpis["contacts"] == float(((ev["event"] == "contact") & late).sum())
    assert r1.kpis["contacts"] < r0.kpis["contacts"]
    assert r1.kpis["statements_due"] < r0.kpis["statements_due"]
    assert r1.kpis["episodes"] < r0.kpis["episodes"]
    daily = r1.agents_daily
    busy = daily.loc[daily["day"] >= 60, "busy_hours"].sum()
    staffed = daily.loc[daily["day"] >= 60, "staffed_hours"].sum()
    assert math.isclose(r1.kpis["agent_utilisation"], busy / staffed, rel_tol=1e-9)
