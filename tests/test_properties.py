"""Property tests: no executed contact breaks the rule pack, whatever a strategy asks for.

An adversarial strategy, its parameters drawn by hypothesis, asks for every channel at
every hour (quiet hours included), many times a day, to the same accounts, to
do-not-contact accounts too. Runs go through the real engine, and every run must pass
the independent audit, block something, and keep its KPIs in range. Deliberately broken
gates show that the audit can fail, rule by rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from simulator.book import (
    AGENT_CALL,
    CALLS,
    CHARGED_OFF,
    ELECTRONIC,
    OUTCOME_INDEX,
    hour_of,
    hour_one,
)
from simulator.compliance import PACKS, ContactLog, Context, RulePack
from simulator.compliance.audit import audit_contacts
from simulator.engine import Results, run
from simulator.errors import StrategyError
from simulator.population import generate_book
from simulator.recorder import Event, Recorder
from simulator.rng import Streams
from simulator.scenario import CHANNELS, Channels, Scenario, StrategySpec, scenario_from_dict
from simulator.strategies import Strategy, StrategyParams, make_requests
from simulator.strategies.loader import BUILTINS

# ----------------------------------------------------------------------------- adversary


class AdversaryParams(StrategyParams):
    share: float = 0.5
    hours: tuple[float, ...] = (0.0, 7.99, 8.0, 12.0, 20.99, 21.0, 22.0, 23.5)
    channels: tuple[str, ...] = CHANNELS
    focus_every: int = 5


class Adversary(Strategy):
    """Asks for everything: every listed channel at every listed hour, every day.

    Each (channel, hour) goes to a fresh random ``share`` of open accounts plus, always,
    every ``focus_every``-th account and every do-not-contact account, so the same
    accounts are hammered day after day and caps must hold.
    """

    name = "adversary"
    description = "requests far more contact than any rule pack allows"
    Params = AdversaryParams

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, AdversaryParams)
        ids = accounts.index.to_numpy()
        always = accounts["do_not_contact"].to_numpy() | (ids % p.focus_every == 0)
        frames = []
        for channel in p.channels:
            for hour in p.hours:
                chosen = ids[always | (self.rng.random(ids.size) < p.share)]
                frames.append(make_requests(chosen, channel, hour,
                                            self.rng.integers(0, 3, chosen.size)))
        return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module", autouse=True)
def _register_adversary() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(BUILTINS, Adversary.name, Adversary)
        yield


# ----------------------------------------------------------------------------- scenarios

# Shift plans that cross quiet hours (shifts may not cross midnight, so night cover is
# split in two); calls are queued at any hour and dialled whenever an agent is on duty.
SHIFT_PLANS: list[list[dict[str, float]]] = [
    [{"start": 0, "end": 8, "fraction": 0.5}, {"start": 8, "end": 24, "fraction": 0.5}],
    [{"start": 6, "end": 9, "fraction": 0.5}, {"start": 20, "end": 23, "fraction": 0.5}],
    [{"start": 7.5, "end": 8.5, "fraction": 0.34}, {"start": 12, "end": 18, "fraction": 0.33},
     {"start": 20.5, "end": 24, "fraction": 0.33}],
    [{"start": 20.9, "end": 24, "fraction": 1.0}],
]
HOUR_PALETTE = [0.0, 3.0, 7.99, 8.0, 9.5, 12.0, 17.25, 20.99, 21.0, 21.99, 22.0, 23.99]


def build_scenario(pack: str, *, size: int = 300, horizon: int = 30, agents: int = 3,
                   shifts: list[dict[str, float]] | None = None,
                   unmade_calls: str = "carry_over", ring_seconds: float = 30.0,
                   consent_share: float = 0.2, dnc_share: float = 0.05,
                   charge_off_dpd: int = 10, churn: float = 0.1, optout: float = 0.5,
                   every_days: int = 1, stop_after_churn: bool = False,
                   **extra: Any) -> Scenario:
    """A small, busy scenario: early due dates, quick charge-off, touchy borrowers."""
    channels = Channels().model_dump()
    for c in ELECTRONIC:
        channels[CHANNELS[c]]["optout_sensitivity"] = optout
    data: dict[str, Any] = {
        "horizon_days": horizon,
        "population": {"size": size, "due_day": {"low": 0, "high": 10},
                       "consent_share": consent_share, "do_not_contact_share": dnc_share},
        "repayment": {"charge_off_dpd": charge_off_dpd},
        "attrition": {"churn_sensitivity": churn},
        "channels": channels,
        "agents": {"count": agents, "shifts": shifts or SHIFT_PLANS[0],
                   "unmade_calls": unmade_calls, "ring_seconds": ring_seconds},
        "compliance": {"pack": pack, "stop_after_churn": stop_after_churn},
        "decision": {"every_days": every_days},
        **extra,
    }
    return scenario_from_dict(data)


@st.composite
def adversarial_runs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Scenario options, adversary parameters and a seed."""
    options = {
        "size": draw(st.integers(200, 500)),
        "horizon": draw(st.integers(20, 40)),
        "agents": draw(st.integers(2, 4)),
        "shifts": draw(st.sampled_from(SHIFT_PLANS)),
        "unmade_calls": draw(st.sampled_from(["carry_over", "drop"])),
        "ring_seconds": draw(st.sampled_from([30.0, 300.0, 900.0])),
        "consent_share": draw(st.sampled_from([0.0, 0.3, 1.0])),
        "dnc_share": draw(st.sampled_from([0.05, 0.2])),
        "charge_off_dpd": draw(st.integers(3, 30)),
        "churn": draw(st.sampled_from([0.0, 0.05, 0.3])),
        "optout": draw(st.sampled_from([0.0, 0.5, 3.0])),
        "every_days": draw(st.sampled_from([1, 1, 2])),
        "stop_after_churn": draw(st.booleans()),
    }
    hour = st.sampled_from(HOUR_PALETTE) | st.floats(0.0, 23.99).map(lambda h: round(h, 2))
    params = {
        "share": draw(st.floats(0.05, 1.0)),
        "hours": draw(st.lists(hour, min_size=2, max_size=8, unique=True)),
        "channels": draw(st.sampled_from([list(CHANNELS), ["sms", "robocall", "agent_call"],
                                          ["agent_call"], ["push", "email", "sms"]])),
        "focus_every": draw(st.integers(1, 10)),
    }
    return options, params, draw(st.integers(0, 2**32 - 1))


def run_adversary(scenario: Scenario, params: dict[str, Any], seed: int) -> Results:
    """A run of the adversary; its money is checked (``check_money``) whatever the test."""
    res = run(scenario, StrategySpec(use="adversary", params=params), seed)
    check_money(res, scenario)
    return res


# ----------------------------------------------------------------------------- checks

RATES = ("delinquency_rate", "recovery_rate", "recovery_rate_30", "recovery_rate_60",
         "recovery_rate_90", "cure_rate", "cure_rate_30", "roll_m1_m2", "roll_m2_m3",
         "roll_m3_m4", "charge_off_rate", "loss_rate", "agency_recovery_rate",
         "agent_utilisation", "churn_rate", "rpc_rate", "promise_kept_rate")
COUNTS = ("accounts", "churned", "complaints", "contacts", "wasted_contacts", "requests",
          "blocked_requests", "violations", "calls_dropped", "right_party_contacts",
          "promises_made", "promises_kept")
AMOUNTS = ("amount_delinquent", "collected", "cash_collected", "contact_cost",
           "cost_per_collected", "staffing_cost", "agency_commission", "clv_lost",
           "complaints_per_1000", "contacts_per_account", "wasted_contact_cost",
           "written_off", "agency_collected", "paid_before_start", "balance_left")


def contacts_that_should_not_exist(res: Results, scenario: Scenario) -> dict[str, int]:
    """Executed contacts forbidden whatever the pack, counted straight from the frames."""
    ev, acc = res.events, res.accounts
    c = ev[ev["event"] == "contact"]
    ids = c["account_id"].to_numpy()
    t = c["t"].to_numpy()
    row = acc.set_index("account_id").loc[ids]
    opt = ev[ev["event"] == "opt_out"].groupby(
        ["account_id", "channel"], observed=True)["t"].min().rename("t_opt")
    t_opt = c.join(opt, on=["account_id", "channel"])["t_opt"].fillna(np.inf).to_numpy()
    # Results do not carry the book; its observable columns depend on the seed alone.
    observable = generate_book(scenario, Streams(res.seed)).observable
    dnc, consent = observable.do_not_contact, observable.consent_quiet_hours
    hour = hour_of(t)
    found = {
        "do_not_contact": int(dnc[ids].sum()),
        "after_churn": (int((t > row["t_churn"].to_numpy()).sum())
                        if scenario.compliance.stop_after_churn else 0),
        "at_or_after_charge_off": int((t >= row["t_charged_off"].to_numpy()).sum()),
        "after_opt_out": int((t > t_opt).sum()),
        "at_or_after_paid_in_full": int((t >= row["t_paid"].to_numpy()).sum()),
        "outside_horizon": int(((t < 0) | (t >= scenario.horizon_days)).sum()),
    }
    if scenario.compliance.pack == "cn-2026":
        found["quiet_hours"] = int((((hour >= 22) | (hour < 8)) & ~consent[ids]).sum())
    if scenario.compliance.pack == "us-reg-f":
        found["inconvenient_time"] = int(((hour >= 21) | (hour < 8)).sum())
    return found


_ANSWERED = (OUTCOME_INDEX["right_party"], OUTCOME_INDEX["promise"])
_DELIVERED_MESSAGE = (OUTCOME_INDEX["delivered"], OUTCOME_INDEX["read"])


def rules_that_apply(res: Results, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """For each blocked request: which of the pack's rules held at that moment.

    Recomputed from the event log alone (an event happened before a block when it comes
    earlier in the time-sorted, otherwise recording-ordered frame). Returns the matrix
    (blocked events x rules) and the rule each block was counted under.
    """
    ev = res.events
    pos = np.arange(len(ev))
    t_all = ev["t"].to_numpy()
    is_b = (ev["event"] == "blocked").to_numpy()
    pb, ab, tb = pos[is_b], ev["account_id"].to_numpy()[is_b], t_all[is_b]
    chb = ev["channel"].cat.codes.to_numpy()[is_b]
    day = np.floor(tb).astype(np.int64)
    hour = hour_of(tb)
    big = len(ev) + 1
    observable = generate_book(scenario, Streams(res.seed)).observable

    def first_before(mask: np.ndarray, key_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     key_b: np.ndarray) -> np.ndarray:
        """Whether an event in ``mask`` with the blocked row's key came before it."""
        keys = key_of(ev["account_id"].to_numpy()[mask], ev["channel"].cat.codes.to_numpy()[mask])
        first = pd.Series(pos[mask]).groupby(keys).min()
        return first.reindex(key_b).fillna(np.inf).to_numpy() < pb

    def count_before(mask: np.ndarray, days: int) -> np.ndarray:
        """Rows in ``mask`` of the blocked row's account, from ``days - 1`` days before
        its day up to just before it."""
        key = np.sort(ev["account_id"].to_numpy()[mask] * big + pos[mask])
        p_lo = np.searchsorted(t_all, (day - days + 1).astype(float), side="left")
        return (np.searchsorted(key, ab * big + pb, side="left")
                - np.searchsorted(key, ab * big + p_lo, side="left"))

    contact = (ev["event"] == "contact").to_numpy()
    channel = ev["channel"].astype(str).to_numpy()
    call = contact & np.isin(channel, ("robocall", "agent_call"))
    answered = ev["code"].isin(_ANSWERED).to_numpy()
    delivered = np.where(call, answered, ev["code"].isin(_DELIVERED_MESSAGE).to_numpy())
    by_account = lambda a, c: a  # noqa: E731
    by_channel = lambda a, c: a * 8 + c  # noqa: E731
    b_is_call = np.isin(chb, CALLS)

    convo = contact & (channel == "agent_call") & answered
    ckey = np.sort(ev["account_id"].to_numpy()[convo] * big + pos[convo])
    last = np.searchsorted(ckey, ab * big + pb, side="left") - 1  # latest one before
    last_key = ckey[np.maximum(last, 0)] if ckey.size else np.zeros_like(ab)
    has = (last >= 0) & (last_key // big == ab)
    t_conv = np.where(has, t_all[last_key % big], -np.inf)

    predicates = {
        "do_not_contact": observable.do_not_contact[ab],
        "opted_out": first_before((ev["event"] == "opt_out").to_numpy(), by_channel,
                                  ab * 8 + chb),
        "churned": first_before((ev["event"] == "churn").to_numpy(), by_account, ab)
        & scenario.compliance.stop_after_churn,
        "charged_off": first_before((ev["event"] == "charge_off").to_numpy(), by_account, ab),
        "quiet_hours_22_08": ((hour >= 22) | (hour < 8))
        & ~observable.consent_quiet_hours[ab],
        "connected_calls_per_day": b_is_call & (count_before(call & answered, 1) >= 3),
        "unanswered_calls_per_day": b_is_call & (count_before(call & ~answered, 1) >= 6),
        "inconvenient_time_21_08": (hour >= 21) | (hour < 8),
        "call_attempts_per_7_days": b_is_call & (count_before(call, 7) >= 7),
        "7_days_after_conversation": b_is_call & (tb - t_conv < 7.0),
        "contacts_per_7_days": count_before(contact & delivered, 7) >= 3,
        "contacts_per_30_days": count_before(contact & delivered, 30) >= 10,
    }
    names = RulePack.named(scenario.compliance.pack).rule_names
    holds = np.column_stack([predicates[name] for name in names])
    return holds, ev["code"].to_numpy()[is_b]


def unjustified_blocks(res: Results, scenario: Scenario) -> int:
    """Blocks whose rule did not hold, or that an earlier rule of the pack should have
    been counted under: an over-strict or misattributing gate."""
    holds, rule = rules_that_apply(res, scenario)
    if rule.size == 0:
        return 0
    k = np.arange(holds.shape[1])
    named_holds = holds[np.arange(rule.size), rule]
    earlier_holds = (holds & (k[None, :] < rule[:, None])).any(axis=1)
    return int((~named_holds | earlier_holds).sum())


def check_money(res: Results, scenario: Scenario) -> None:
    """The money of a run adds up, account by account and in the KPIs.

    Per account: balance at the start + late fees = paid in house + balance left +
    written off; the agency collects towards the written-off balance, never more, and
    what is still owed after charge-off is the rest of it. In the KPIs: cash collected is
    the sum of the payment events inside [0, horizon], what was paid before day 0 is
    reported apart, and the net loss is written off - agency collected.
    """
    k, ev, a = res.kpis, res.events, res.accounts
    fee = scenario.repayment.late_fee
    fees = np.where(np.isfinite(a["t_delinquent"].to_numpy()), fee, 0.0)
    np.testing.assert_allclose(
        a["paid_in_house"] + a["balance_end"] + a["written_off"], a["balance_start"] + fees,
        rtol=0, atol=1e-6)
    assert (a["agency_collected"] <= a["written_off"] + 1e-6).all()
    charged = (a["final_state"] == "charged_off").to_numpy()
    np.testing.assert_allclose(a["owed_end"].to_numpy()[charged],
                               (a["written_off"] - a["agency_collected"]).to_numpy()[charged],
                               rtol=0, atol=1e-6)
    assert (a["paid_delinquent"] <= a["amount_delinquent"] + 1e-6).all()

    pay = ev[ev["event"] == "payment"]
    t, amount = pay["t"].to_numpy(), pay["amount"].to_numpy()
    inside = (t >= 0) & (t <= scenario.horizon_days)
    assert inside.sum() + (t < 0).sum() == t.size  # nothing is paid after the horizon
    assert math.isclose(k["cash_collected"], float(amount[inside].sum()), rel_tol=1e-9,
                        abs_tol=1e-6)
    assert math.isclose(k["paid_before_start"], float(amount[t < 0].sum()), rel_tol=1e-9,
                        abs_tol=1e-6)
    agency = inside & (pay["code"].to_numpy() == 2)
    assert math.isclose(k["agency_collected"], float(amount[agency].sum()), rel_tol=1e-9,
                        abs_tol=1e-6)
    assert k["agency_collected"] <= k["written_off"] + 1e-6
    assert math.isclose(k["written_off"], float(a["written_off"].sum()), rel_tol=1e-9,
                        abs_tol=1e-6)
    assert math.isclose(k["agency_commission"],
                        k["agency_collected"] * scenario.agency.commission, rel_tol=1e-9,
                        abs_tol=1e-6)
    # What is collected towards amounts past due is part of the cash, capped by them.
    assert k["collected"] <= k["cash_collected"] + 1e-6
    assert k["collected"] <= k["amount_delinquent"] + 1e-6
    # Daily frame: the same amount paid before day 0 on every row.
    assert np.allclose(res.daily["paid_before_start"], k["paid_before_start"], rtol=1e-9,
                       atol=1e-6)


def check_run(res: Results, scenario: Scenario) -> None:
    """Everything that must hold for any run of any strategy."""
    k, ev = res.kpis, res.events
    pack = RulePack.named(scenario.compliance.pack)

    # The gate held: the audit and direct checks find nothing.
    assert k["violations"] == 0
    bad = contacts_that_should_not_exist(res, scenario)
    assert not any(bad.values()), bad

    # Blocks are counted consistently: KPIs, per-rule KPIs and blocked events agree.
    blocked = ev[ev["event"] == "blocked"]
    by_rule = np.bincount(blocked["code"].to_numpy(), minlength=len(pack.rules))
    assert by_rule.size == len(pack.rules)
    assert k["blocked_requests"] == len(blocked) > 0
    for name, n in zip(pack.rule_names, by_rule, strict=True):
        assert k[f"blocked_{name}"] == n, name
    assert set(blocked["channel"].astype(str)) <= set(CHANNELS)
    # ...and every block is justified by the event log, under the first rule that held.
    assert unjustified_blocks(res, scenario) == 0

    # A request ends at most once: executed, blocked, skipped (paid) or dropped.
    contacts = ev[ev["event"] == "contact"]
    skipped = int((ev["event"] == "skipped_paid").sum())
    assert len(contacts) + len(blocked) + skipped + k["calls_dropped"] <= k["requests"]

    # KPIs in their mathematical ranges.
    for name in RATES:
        assert math.isnan(k[name]) or 0.0 <= k[name] <= 1.0, (name, k[name])
    for name in COUNTS:
        assert k[name] >= 0 and float(k[name]).is_integer(), (name, k[name])
    for name in AMOUNTS:
        assert math.isnan(k[name]) or k[name] >= 0, (name, k[name])
    for ch in CHANNELS:
        assert k[f"cost_{ch}"] >= 0 and k[f"contacts_{ch}"] >= 0
    assert k["accounts"] == scenario.population.size
    assert sum(k[f"contacts_{ch}"] for ch in CHANNELS) == k["contacts"] == len(contacts)
    assert k["wasted_contacts"] <= k["contacts"]
    assert k["right_party_contacts"] <= k["contacts_agent_call"]
    assert k["promises_kept"] <= k["promises_made"]
    assert k["churned"] <= k["accounts"]
    assert math.isclose(k["net_value"], k["cash_collected"] + k["balance_left"]
                        - k["contact_cost"] - k["agency_commission"] - k["clv_lost"],
                        rel_tol=1e-9, abs_tol=1e-6)
    # The balance left is the in-house balance at the horizon, account by account.
    assert math.isclose(k["balance_left"], float(res.accounts["balance_end"].sum()),
                        rel_tol=1e-9, abs_tol=1e-6)

    # Costs are never negative, contact by contact.
    assert (contacts["amount"].to_numpy() >= 0).all()
    assert (contacts["agent_minutes"].to_numpy() >= 0).all()
    assert math.isclose(k["contact_cost"], float(contacts["amount"].sum()), rel_tol=1e-9,
                        abs_tol=1e-9)

    # Account-level contact counts match the event log.
    per_channel = contacts["channel"].astype(str).value_counts()
    for ch in CHANNELS:
        assert int(res.accounts[f"contacts_{ch}"].sum()) == int(per_channel.get(ch, 0))


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("pack", sorted(PACKS))
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(drawn=adversarial_runs())
def test_adversary_never_breaks_the_pack(pack: str,
                                         drawn: tuple[dict[str, Any], dict[str, Any], int]
                                         ) -> None:
    options, params, seed = drawn
    scenario = build_scenario(pack, **options)
    res = run_adversary(scenario, params, seed)
    check_run(res, scenario)
    target(res.kpis["blocked_requests"] / max(res.kpis["requests"], 1.0),
           label="share of requests blocked")


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_every_rule_of_the_pack_is_exercised(pack: str) -> None:
    """One long, busy run per pack in which every rule blocks something."""
    # No agent on duty from 18:00 to midnight, so calls asked for at 23:00 wait for the
    # night shift and some reach accounts charged off at midnight (see RULE_SCENARIOS).
    # Contact stops after churn, so that the ``churned`` rule has something to block.
    shifts = [{"start": 0, "end": 2, "fraction": 0.5}, {"start": 7.5, "end": 8.5, "fraction": 0.5},
              {"start": 12, "end": 18, "fraction": 0.5}]
    scenario = build_scenario(
        pack, size=400, horizon=40, agents=2, shifts=shifts, ring_seconds=300.0,
        consent_share=0.3, dnc_share=0.05, charge_off_dpd=20, churn=0.1, optout=3.0,
        stop_after_churn=True)
    hours = [0.0, 7.99, 8.0, 10.0, 12.0, 20.99, 21.0, 22.0, 23.0]
    res = run_adversary(scenario, {"share": 0.6, "hours": hours}, seed=11)
    check_run(res, scenario)
    never = [r for r in RulePack.named(pack).rule_names if res.kpis[f"blocked_{r}"] == 0]
    assert not never, f"rules that blocked nothing: {never}"


@st.composite
def charged_off_books(draw: st.DrawFn) -> tuple[Scenario, str, int]:
    """A small book with agency placement, an early charge-off and time after it."""
    charge_off = draw(st.integers(2, 20))
    scenario = scenario_from_dict({
        "horizon_days": draw(st.integers(charge_off + 45, charge_off + 70)),
        "population": {"size": draw(st.integers(300, 600)),
                       "due_day": {"low": 0, "high": draw(st.integers(0, 15))}},
        "repayment": {"charge_off_dpd": charge_off,
                      "late_fee": draw(st.sampled_from([0.0, 25.0])),
                      "bucket_multiplier": {"M0": 1.0, "M1": 1.0, "M2": 1.0, "M3": 0.7,
                                            "M4": 0.4,
                                            "agency": draw(st.sampled_from([0.5, 1.0]))}},
        "agency": {"enabled": True, "commission": draw(st.sampled_from([0.0, 0.3]))},
        "agents": {"count": 2},
    })
    strategy = draw(st.sampled_from(["no_contact", "fixed_cadence", "risk_tiered"]))
    return scenario, strategy, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(drawn=charged_off_books())
def test_agency_collects_towards_the_written_off_balance(
        drawn: tuple[Scenario, str, int]) -> None:
    """After an early charge-off the agency collects towards the whole written-off
    balance: for some accounts more than the amount past due, for none more than was
    written off; and every money KPI adds up (``check_money``)."""
    scenario, strategy, seed = drawn
    res = run(scenario, strategy, seed)
    check_money(res, scenario)
    a = res.accounts
    charged = a["final_state"] == "charged_off"
    assert charged.sum() > 0
    beyond = a["agency_collected"] > a["amount_delinquent"] - a["paid_delinquent"] + 1e-6
    assert beyond.any(), "no agency collection went beyond the amount past due"
    assert (a["agency_collected"] <= a["written_off"] + 1e-6).all()
    # recovery_rate still counts only what went towards the amounts past due: in [0, 1].
    assert 0.0 <= res.kpis["recovery_rate"] <= 1.0
    assert 0.0 < res.kpis["agency_recovery_rate"] <= 1.0


# ----------------------------------------------------------------------------- the gate
# against the audit, without the engine: replay random traffic through a pack and the
# contact log exactly as the engine does, then audit what was let through.

_MOSTLY_FALSE = st.sampled_from([False, False, False, True])
# (step in 1/50ths of the pace, account, channel, outcome decile, state-change permille);
# integers, because hypothesis' floats crowd at 0 and 1. Times are whole minutes, as the
# engine's are whole hours or so, so boundaries such as 22:00 are hit exactly.
_OP = st.tuples(st.integers(0, 100), st.integers(0, 3), st.sampled_from([0, 1, 2, 3, 3, 4, 4, 4]),
                st.integers(0, 9), st.integers(0, 999))


@pytest.mark.parametrize("pack", sorted(PACKS))
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    consent=st.lists(st.booleans(), min_size=4, max_size=4),
    dnc=st.lists(_MOSTLY_FALSE, min_size=4, max_size=4),
    # Mean minutes between attempts: dense traffic fills daily caps, sparse 30 days.
    pace=st.sampled_from([7, 30, 144, 720]),
    state_change=st.sampled_from([0, 3, 20]),
    start_hour=st.integers(0, 23),
    answered_from=st.sampled_from([2, 6, 10]),  # calls answered when the decile >= this
    ops=st.lists(_OP, min_size=60, max_size=300),
    stop_after_churn=st.booleans(),
)
def test_whatever_the_gate_lets_through_passes_the_audit(
        pack: str, consent: list[bool], dnc: list[bool], pace: int, state_change: int,
        start_hour: int, answered_from: int, ops: list[tuple[int, int, int, int, int]],
        stop_after_churn: bool) -> None:
    """Random traffic replayed through a pack and the contact log exactly as the engine
    drives them (a charge-off, churn or opt-out now and then): the audit of whatever the
    gate let through finds nothing."""
    book = generate_book(scenario_from_dict({"population": {"size": 4}}), Streams(0))
    o, s = book.observable, book.state
    o.on_file[:] = True
    o.consent_quiet_hours[:] = consent
    o.do_not_contact[:] = dnc
    rules = RulePack.named(pack, stop_after_churn)
    log = ContactLog(book.n, rules.window_days)
    ctx = Context(book, log)
    rec = Recorder()
    minute = start_hour * 60
    executed = blocked = 0
    for step, account, channel, u, kind in ops:
        if step < 99:
            minute += pace * step // 50
        elif step == 99:  # on to the next full hour
            minute += 60 - minute % 60
        else:  # a week passes
            minute += 7 * 1440
        t = minute / 1440
        a = np.array([account], dtype=np.int64)
        if kind < state_change:
            what = kind % 3
            if what == 0 and not s.churned[account]:
                s.churned[account], s.t_churn[account] = True, t
            elif what == 1 and s.status[account] != CHARGED_OFF:
                # The engine processes a charge-off before any contact at the same instant.
                minute += 1
                s.status[account], s.t_charged_off[account] = CHARGED_OFF, minute / 1440
            elif what == 2 and channel in ELECTRONIC and not s.opted_out[account, channel]:
                s.opted_out[account, channel] = True
                rec.add(Event.OPT_OUT, t, a, channel=channel)
            continue
        verdict = rules.check(ctx, a, channel, t)
        # The agent's scalar path must say the same as the batch path.
        assert rules.check_one(ctx, account, channel, t) == (
            -1 if verdict.allowed.size else int(verdict.rule[0]))
        if verdict.allowed.size == 0:
            blocked += 1
            continue
        executed += 1
        delivered = u >= 2
        if channel in CALLS:
            connected = u >= answered_from
            promise = connected and channel == AGENT_CALL and u >= 9
            code = ("promise" if promise else "right_party" if connected
                    else "no_answer" if delivered else "undelivered")
        else:
            connected = False
            code = "read" if u >= 7 else "delivered" if delivered else "undelivered"
        log.record(a, int(np.floor(t)), channel, np.array([delivered]), np.array([connected]),
                   t)
        rec.add(Event.CONTACT, t, a, channel=channel, amount=0.0, code=OUTCOME_INDEX[code])
    assert audit_contacts(rec.frame(), book, pack, stop_after_churn) == 0, (executed, blocked)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(t=st.floats(0.0, 3650.0, exclude_max=True)
       | st.builds(lambda d, h: d + h / 24.0, st.integers(0, 3649),
                   st.sampled_from(HOUR_PALETTE) | st.floats(0.0, 24.0, exclude_max=True)))
def test_hour_of_one_time_is_hour_of(t: float) -> None:
    """The scalar hour the agent's gate uses is the vectorised one, bit for bit."""
    assert hour_one(t) == float(hour_of(t)) == float(hour_of(np.array([t]))[0])


# ----------------------------------------------------------------------------- broken gates


def _broken_pack(monkeypatch: pytest.MonkeyPatch, keep: Callable[[str], bool]) -> None:
    """Make the engine enforce only the rules of the scenario's pack that ``keep``."""
    real = {name: build for name, build in PACKS.items()}

    def named(cls: type[RulePack], name: str, stop_after_churn: bool = False) -> RulePack:
        return cls(name, [r for r in real[name](stop_after_churn) if keep(r.name)])

    monkeypatch.setattr(RulePack, "named", classmethod(named))


ALWAYS = ("do_not_contact", "opted_out", "churned", "charged_off")


@pytest.mark.parametrize("pack", ["cn-2026", "us-reg-f", "au-accc"])
def test_audit_catches_a_gate_with_only_the_always_rules(monkeypatch: pytest.MonkeyPatch,
                                                         pack: str) -> None:
    scenario = build_scenario(pack, consent_share=0.0)
    res_ok = run_adversary(scenario, {}, seed=5)
    assert res_ok.kpis["violations"] == 0
    _broken_pack(monkeypatch, lambda name: name in ALWAYS)
    res = run_adversary(scenario, {}, seed=5)
    assert res.kpis["violations"] > 0


# For each rule: a scenario in which the adversary would break it, were it missing.
RULE_SCENARIOS: dict[tuple[str, str], dict[str, Any]] = {
    ("none", "do_not_contact"): {"dnc_share": 0.2},
    ("none", "opted_out"): {"optout": 5.0, "churn": 0.0},
    ("none", "churned"): {"churn": 0.5, "optout": 0.0, "stop_after_churn": True},
    # Charged-off accounts leave the strategy's view, so only a call queued before the
    # charge-off at midnight and dialled after it can reach one: calls are asked for at
    # 23:00, carried over, and dialled from 00:00.
    ("none", "charged_off"): {"charge_off_dpd": 3, "churn": 0.0, "optout": 0.0,
                              "shifts": [{"start": 0, "end": 2, "fraction": 1.0}],
                              "params": {"hours": [23.0], "channels": ["agent_call"],
                                         "share": 1.0}},
    ("cn-2026", "quiet_hours_22_08"): {"consent_share": 0.0},
    ("cn-2026", "connected_calls_per_day"): {
        "params": {"channels": ["robocall", "agent_call"], "share": 1.0,
                   "hours": [8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]},
        "agents": {"count": 4, "rpc_by_hour": [{"from_hour": 0, "rate": 1.0}]}},
    ("cn-2026", "unanswered_calls_per_day"): {
        "params": {"channels": ["robocall"], "share": 1.0,
                   "hours": [8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]}},
    ("us-reg-f", "inconvenient_time_21_08"): {},
    ("us-reg-f", "call_attempts_per_7_days"): {
        "params": {"channels": ["robocall"], "share": 1.0, "hours": [9.0, 15.0]}},
    ("us-reg-f", "7_days_after_conversation"): {
        "params": {"channels": ["agent_call"], "share": 1.0, "hours": [9.0]}},
    ("au-accc", "contacts_per_7_days"): {},
    ("au-accc", "contacts_per_30_days"): {
        "horizon": 40, "charge_off_dpd": 60, "churn": 0.0, "optout": 0.0,
        "params": {"channels": ["sms"], "share": 1.0, "hours": [10.0]}},
}


@pytest.mark.parametrize(("pack", "rule"), sorted(RULE_SCENARIOS))
def test_audit_catches_each_missing_rule(monkeypatch: pytest.MonkeyPatch, pack: str,
                                         rule: str) -> None:
    options = dict(RULE_SCENARIOS[(pack, rule)])
    params = options.pop("params", {})
    agents = options.pop("agents", None)
    scenario = build_scenario(pack, **options)
    if agents is not None:
        data = scenario.to_dict()
        data["agents"].update(agents)
        scenario = scenario_from_dict(data)
    assert rule in RulePack.named(pack).rule_names
    full = run_adversary(scenario, params, seed=3)
    assert full.kpis["violations"] == 0
    assert full.kpis[f"blocked_{rule}"] > 0, "the scenario never tests the rule"
    _broken_pack(monkeypatch, lambda name: name != rule)
    res = run_adversary(scenario, params, seed=3)
    assert res.kpis["violations"] > 0, f"the audit missed contacts that break {rule}"


# ----------------------------------------------------------------------------- engine edges


@pytest.mark.parametrize("stop_after_churn", [False, True])
def test_collection_continues_after_churn_unless_the_scenario_stops_it(
        stop_after_churn: bool) -> None:
    """A churned customer still owes: by default the view keeps them and contacts go on;
    ``compliance.stop_after_churn`` ends both."""
    scenario = build_scenario("none", size=400, horizon=40, churn=3.0, optout=0.0,
                              dnc_share=0.0, charge_off_dpd=60,
                              stop_after_churn=stop_after_churn)
    res = run_adversary(scenario, {"share": 0.2, "hours": [9.0, 15.0],
                                   "channels": ["sms", "agent_call"]}, seed=4)
    assert res.kpis["violations"] == 0
    bad = contacts_that_should_not_exist(res, scenario)
    assert not any(bad.values()), bad
    ev, a = res.events, res.accounts
    c = ev[ev["event"] == "contact"]
    t_churn = a.set_index("account_id")["t_churn"].reindex(c["account_id"]).to_numpy()
    after = int((c["t"].to_numpy() > t_churn).sum())
    assert res.kpis["churned"] > 20
    if stop_after_churn:
        assert after == 0
    else:
        assert after > 50
        assert res.kpis["blocked_churned"] == 0


def test_going_dark_and_opting_out_are_permanent() -> None:
    """Once dark on a channel a borrower never again reads or answers it; once opted out
    of an electronic channel, it is never used again (every pack honours it), though the
    adversary keeps asking."""
    scenario = build_scenario("none", size=400, horizon=30, churn=0.0, optout=3.0,
                              dnc_share=0.0, charge_off_dpd=60,
                              attrition={"dark_sensitivity": 2.0, "churn_sensitivity": 0.0})
    res = run_adversary(scenario, {"share": 0.5, "hours": [9.0, 15.0]}, seed=6)
    ev = res.events
    kind = ev["event"].astype(str).to_numpy()
    key = ev["account_id"].to_numpy() * 8 + ev["channel"].cat.codes.to_numpy()
    t = ev["t"].to_numpy()

    def first(name: str) -> np.ndarray:
        """Per event row: time of the first ``name`` event of its account and channel."""
        rows = kind == name
        return pd.Series(t[rows]).groupby(key[rows]).min().reindex(key).fillna(
            np.inf).to_numpy()

    contact = kind == "contact"
    attended = ev["code"].isin([OUTCOME_INDEX[o] for o in ("read", "right_party", "promise")])
    after_dark = contact & (t > first("dark"))
    assert after_dark.sum() > 100, "the run must contact borrowers after they went dark"
    assert (attended.to_numpy() & after_dark).sum() == 0
    assert (kind == "opt_out").sum() > 20
    assert (contact & (t > first("opt_out"))).sum() == 0
    assert res.kpis["blocked_opted_out"] > 0


def test_agent_utilisation_is_at_most_one() -> None:
    """A call that runs past the end of the shift is overtime: staffed, not only busy."""
    # One agent, a one-hour shift, and a dial that rings for two hours.
    scenario = build_scenario(
        "none", size=50, horizon=3, agents=1, dnc_share=0.0, churn=0.0, optout=0.0,
        shifts=[{"start": 8, "end": 9, "fraction": 1.0}], ring_seconds=7200.0)
    res = run_adversary(scenario, {"channels": ["agent_call"], "hours": [0.0],
                                   "share": 1.0}, seed=1)
    assert res.kpis["contacts_agent_call"] > 0
    assert 0.0 <= res.kpis["agent_utilisation"] <= 1.0


def test_requests_released_at_the_same_instant_cannot_overshoot_the_caps() -> None:
    """Two requests whose hours differ by a rounding error are released at the same
    instant, in one batch; the gate checks a batch against the log as it was before it,
    so the engine must refuse them (or execute them one after the other), never let both
    through past a cap."""
    h = 13.0
    h_next = float(np.nextafter(h, 24.0))
    assert h_next != h and 5 + h / 24 == 5 + h_next / 24  # same release time
    scenario = build_scenario("cn-2026", size=300, horizon=20, churn=0.0, optout=0.0,
                              dnc_share=0.0)
    # Five unanswered robocalls before 13:00 leave room for one more, not two.
    params = {"share": 1.0, "channels": ["robocall"],
              "hours": [8.0, 9.0, 10.0, 11.0, 12.0, h, h_next]}
    try:
        res = run_adversary(scenario, params, seed=1)
    except StrategyError as exc:
        assert "duplicate requests" in str(exc)
    else:
        assert res.kpis["violations"] == 0


def test_adversary_requests_are_valid_and_hit_quiet_hours() -> None:
    adv = Adversary(AdversaryParams(hours=(23.5, 3.0), channels=("sms", "agent_call")),
                    np.random.default_rng(0))
    view = pd.DataFrame({"do_not_contact": [False, True, False]},
                        index=pd.Index([4, 7, 10], name="account_id"))
    req = adv.decide(0, view)
    assert list(req.columns) == ["account_id", "channel", "hour", "priority"]
    assert set(req["hour"]) == {23.5, 3.0}
    for channel in ("sms", "agent_call"):
        for hour in (23.5, 3.0):
            asked = req[(req["channel"] == channel) & (req["hour"] == hour)]
            assert {7, 10} <= set(asked["account_id"])  # DNC and focus accounts, always
    assert not req.duplicated(["account_id", "channel", "hour"]).any()
    assert set(req["channel"]) == {"sms", "agent_call"}
