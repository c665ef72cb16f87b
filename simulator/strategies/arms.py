"""KPIs per arm of a split-portfolio strategy (``champion_challenger``).

The run's KPIs describe the whole book; a champion/challenger test needs them per arm.
``arm_kpis`` computes them from a run's ``Results`` (its accounts and events frames)
and the arm label of every account. Rates are per account of the arm, so arms of
different sizes compare directly; totals (cash, costs, net value) are also given per
account (``*_per_account``). Definitions follow ``simulator.kpis.KPI_DEFINITIONS``;
summed over arms, every total equals the run's own KPI.

The engine does not keep the strategy object, so ``arms_for_run`` rebuilds it as the
engine does (same reference, parameters and strategy random stream), which gives the
same split, since the split is a pure function of the strategy's stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from simulator.kpis import Ledger, Payments, collected_within, recovery_eligible
from simulator.recorder import PAY_AGENCY
from simulator.rng import Streams
from simulator.scenario import CHANNELS, Scenario, StrategySpec
from simulator.strategies.loader import build_strategy


class RunFrames(Protocol):
    """What per-arm KPIs read of a run's results (``simulator.engine.Results``)."""

    strategy: str
    replication: int
    seed: int
    accounts: pd.DataFrame
    events: pd.DataFrame


class SplitsAccounts(Protocol):
    """A strategy that assigns every account to a named arm."""

    def arm_of(self, account_ids: np.ndarray) -> np.ndarray: ...


#: Per-arm KPI name -> definition.
ARM_KPI_DEFINITIONS: dict[str, str] = {
    "accounts": "accounts in the arm",
    "delinquency_rate": "share of the arm's accounts whose due date passed unpaid",
    "amount_delinquent": "amount past due when the arm's accounts became delinquent",
    "collected": "paid towards amounts past due after the due date (in-house and agency; "
                 "each account's agency collections count up to what was still past due at "
                 "charge-off)",
    "recovery_rate": "collected / amount_delinquent",
    "recovery_rate_30": "same within 30 days of the due date, among accounts due on day 0 or "
                        "later and at least 30 days before the horizon",
    "cure_rate": "share of delinquent accounts that paid their amount past due in full",
    "charge_off_rate": "share of accounts written off",
    "loss_rate": "balance written off / the arm's book balance at the start",
    "written_off": "balance written off at charge-off",
    "agency_collected": "collected by the outside agency after charge-off, towards the "
                        "written-off balance",
    "agency_recovery_rate": "agency_collected / written_off",
    "cash_collected": "all payments in the horizon [0, horizon]: on time, late and agency "
                      "(gross)",
    "paid_before_start": "payments before day 0; not in cash_collected",
    "balance_left": "balance still owed in house at the horizon, at face value",
    "contact_cost": "cost of executed contacts, agent time at the staffed-hour rate",
    "cost_per_collected": "contact_cost / collected",
    "agency_commission": "commission kept by the outside agency",
    "churned": "customers who closed their account or stopped using the product",
    "churn_rate": "churned / accounts",
    "clv_lost": "customer lifetime value of churned customers",
    "complaints_per_1000": "complaints per 1000 accounts",
    "contacts": "executed contact attempts, all channels",
    "contacts_per_account": "contacts / accounts",
    "wasted_contacts": "contacts to accounts whose no-contact twin paid in full within the "
                       "wasted-contact window after the contact",
    "blocked_requests": "requests refused by the rule pack",
    "promises_made": "promises to pay made on calls",
    "net_value": "cash_collected + balance_left - contact_cost - agency_commission - "
                 "clv_lost",
    "cash_collected_per_account": "cash_collected / accounts",
    "net_value_per_account": "net_value / accounts",
}


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def arm_kpis(results: RunFrames, arms: np.ndarray | SplitsAccounts,
             scenario: Scenario) -> pd.DataFrame:
    """One row per arm (in order of first appearance of the label): KPIs of its accounts.

    ``arms`` is the arm label of every account of the run (aligned with
    ``results.accounts.account_id``) or a strategy with ``arm_of``.
    """
    acc = results.accounts
    ids = acc["account_id"].to_numpy(dtype=np.int64)
    labels = np.asarray(arms.arm_of(ids) if hasattr(arms, "arm_of") else arms, dtype=object)
    if labels.shape != ids.shape:
        raise ValueError(f"expected {ids.size} arm labels, one per account, got "
                         f"{labels.size}")
    # Arm of each account id (ids are 0..n-1 in the engine, but do not rely on order).
    arm_codes, arm_names = pd.factorize(pd.Series(labels), sort=False)
    arm_of_id = np.full(int(ids.max()) + 1 if ids.size else 0, -1, dtype=np.int64)
    arm_of_id[ids] = arm_codes

    ev = results.events
    ev_arm = arm_of_id[ev["account_id"].to_numpy(dtype=np.int64)] if len(ev) else np.empty(0)
    event = ev["event"].astype(str).to_numpy()
    contact = event == "contact"
    window = scenario.metrics.wasted_window_days
    horizon = scenario.horizon_days
    commission = scenario.agency.commission

    t_del = acc["t_delinquent"].to_numpy(dtype=np.float64)
    twin = acc["twin_t_paid"].to_numpy(dtype=np.float64)
    wasted_all = np.zeros(len(ev), dtype=bool)
    if contact.any():
        cid = ev["account_id"].to_numpy(dtype=np.int64)[contact]
        pos = _positions(ids, cid)
        wasted_all[contact] = twin[pos] <= ev["t"].to_numpy()[contact] + window
    # Every account's money inside the horizon, as the run's KPIs count it.
    pos_of_id = np.zeros(int(ids.max()) + 1 if ids.size else 0, dtype=np.int64)
    pos_of_id[ids] = np.arange(ids.size)
    payments = Payments.of(ev, pos_of_id)
    amount_del = acc["amount_delinquent"].to_numpy(dtype=np.float64)
    ledger = Ledger.of(acc["paid_in_house"].to_numpy(dtype=np.float64),
                       acc["paid_delinquent"].to_numpy(dtype=np.float64),
                       acc["agency_collected"].to_numpy(dtype=np.float64), amount_del,
                       acc["paid_before_start"].to_numpy(dtype=np.float64), payments)
    eligible30 = recovery_eligible(t_del, horizon, 30)
    paid30 = collected_within(payments, amount_del, t_del, eligible30, 30)
    written = acc["written_off"].to_numpy(dtype=np.float64)

    living = "statements_due" in acc.columns
    if living:  # a living book: every flow counts from the end of the warm-up
        warmup = scenario.metrics.warmup_days
        late = ev["t"].to_numpy() >= warmup if len(ev) else np.empty(0, dtype=bool)
        contact &= late
        wasted_all &= late
        in_window = (payments.t >= warmup) & (payments.t <= horizon)
        pay_arm = arm_codes[payments.pos]
        t_off = acc["t_charged_off"].to_numpy(dtype=np.float64)
        charged_w = (t_off >= warmup) & (t_off <= horizon)
        t_churn = acc["t_churn"].to_numpy(dtype=np.float64)
    rows: list[dict[str, Any]] = []
    for k, name in enumerate(arm_names):
        a = arm_codes == k
        e = ev_arm == k
        n = int(a.sum())
        delinquent = np.isfinite(t_del[a])
        amount_delinquent = float(amount_del[a].sum())
        agency = float(ledger.agency[a].sum())
        collected = float(ledger.collected[a].sum())
        cash = float(ledger.cash[a].sum())
        written_off = float(written[a].sum())
        contact_cost = float(ev["amount"].to_numpy()[e & contact].sum())
        churned = acc["churned"].to_numpy()[a]
        clv_lost = float(acc["clv"].to_numpy()[a][churned].sum())
        state = acc["final_state"].astype(str).to_numpy()[a]
        amount30 = float(amount_del[a & eligible30].sum())
        balance_left = float(acc["balance_end"].to_numpy()[a].sum())
        net = cash + balance_left - contact_cost - agency * commission - clv_lost
        n_contacts = int((e & contact).sum())
        row: dict[str, Any] = {
            "arm": name,
            "accounts": n,
            "delinquency_rate": _ratio(float(delinquent.sum()), n),
            "amount_delinquent": amount_delinquent,
            "collected": collected,
            "recovery_rate": _ratio(collected, amount_delinquent),
            "recovery_rate_30": _ratio(float(paid30[a].sum()), amount30),
            "cure_rate": _ratio(float((state == "cured").sum()), float(delinquent.sum())),
            "charge_off_rate": _ratio(float((state == "charged_off").sum()), n),
            "loss_rate": _ratio(written_off, float(acc["balance_start"].to_numpy()[a].sum())),
            "written_off": written_off,
            "agency_collected": agency,
            "agency_recovery_rate": _ratio(agency, written_off),
            "cash_collected": cash,
            "paid_before_start": float(ledger.paid_before_start[a].sum()),
            "balance_left": balance_left,
            "contact_cost": contact_cost,
            "cost_per_collected": _ratio(contact_cost, collected),
            "agency_commission": agency * commission,
            "churned": float(churned.sum()),
            "churn_rate": _ratio(float(churned.sum()), n),
            "clv_lost": clv_lost,
            "complaints_per_1000": 1000 * _ratio(float(acc["complaints"].to_numpy()[a].sum()),
                                                 n),
            "contacts": float(n_contacts),
            "contacts_per_account": _ratio(float(n_contacts), n),
            "wasted_contacts": float((wasted_all & e).sum()),
            "blocked_requests": float((e & (event == "blocked")).sum()),
            "promises_made": float((e & (event == "promise")).sum()),
            "net_value": net,
            "cash_collected_per_account": _ratio(cash, n),
            "net_value_per_account": _ratio(net, n),
        }
        if living:
            row.update(_living_arm(acc, a, e & late, event, contact & e, in_window
                                   & (pay_arm == k), payments, charged_w & a,
                                   a & (t_churn >= warmup), row, scenario))
        for ch in CHANNELS:
            row[f"contacts_{ch}"] = float(acc[f"contacts_{ch}"].to_numpy()[a].sum())
        if living:
            channel = ev["channel"].astype(str).to_numpy()
            for ch in CHANNELS:
                row[f"contacts_{ch}"] = float((contact & e & (channel == ch)).sum())
        rows.append(row)
    out = pd.DataFrame(rows)
    out.insert(0, "replication", results.replication)
    out.insert(0, "strategy", results.strategy)
    return out


def _living_arm(acc: pd.DataFrame, a: np.ndarray, e: np.ndarray, event: np.ndarray,
                contact: np.ndarray, paid: np.ndarray, payments: Payments,
                charged: np.ndarray, churned: np.ndarray, row: dict[str, Any],
                scenario: Scenario) -> dict[str, float]:
    """The KPIs of one arm of a living book that differ from a single statement's, as
    ``simulator.living_kpis`` defines them: per statement and per episode, every flow
    from the end of the warm-up (``e``, ``contact`` and ``paid`` are already limited to
    it, and to the arm)."""

    def total(column: str, rows: np.ndarray = a) -> float:
        return float(acc[column].to_numpy(dtype=np.float64)[rows].sum())

    warmup, horizon = scenario.metrics.warmup_days, scenario.horizon_days
    closed = np.where(acc["final_state"].isin(["paid_on_time", "cured"]).to_numpy(),
                      acc["t_paid"].to_numpy(dtype=np.float64),
                      np.where(acc["final_state"].to_numpy() == "charged_off",
                               acc["t_charged_off"].to_numpy(dtype=np.float64), np.inf))
    n = float((a & (acc["opened"].to_numpy() <= horizon) & (closed >= warmup)).sum())
    amount = total("amount_delinquent_counted")
    collected = total("collected_counted")
    agency = float(payments.amount[paid & (payments.code == PAY_AGENCY)].sum())
    cash = float(payments.amount[paid].sum())
    written_off = total("written_off", charged)
    contact_cost = float(row["contact_cost"])
    clv_lost = total("clv", churned)
    commission = agency * scenario.agency.commission
    balance_left = total("balance_end")
    n_contacts = float(contact.sum())
    complaints = float((e & (event == "complaint")).sum())
    balance_start = total("balance_start_counted")
    net = cash + balance_left - balance_start - contact_cost - commission - clv_lost
    return {
        "accounts": n,
        "delinquency_rate": _ratio(total("statements_missed"), total("statements_due")),
        "amount_delinquent": amount,
        "collected": collected,
        "recovery_rate": _ratio(collected, amount),
        "recovery_rate_30": _ratio(total("collected_counted_30"),
                                   total("amount_delinquent_counted_30")),
        "cure_rate": _ratio(total("cures"), total("episodes")),
        "charge_off_rate": _ratio(float(charged.sum()), n),
        "loss_rate": _ratio(written_off, balance_start),
        "written_off": written_off,
        "agency_collected": agency,
        "agency_recovery_rate": _ratio(total("agency_collected", charged), written_off),
        "cash_collected": cash,
        "balance_left": balance_left,
        "cost_per_collected": _ratio(contact_cost, collected),
        "agency_commission": commission,
        "churned": float(churned.sum()),
        "churn_rate": _ratio(float(churned.sum()), n),
        "clv_lost": clv_lost,
        "complaints_per_1000": 1000 * _ratio(complaints, n),
        "contacts": n_contacts,
        "contacts_per_account": _ratio(n_contacts, n),
        "blocked_requests": float((e & (event == "blocked")).sum()),
        "promises_made": float((e & (event == "promise")).sum()),
        "net_value": net,
        "cash_collected_per_account": _ratio(cash, n),
        "net_value_per_account": _ratio(net, n),
    }


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each ``wanted`` id in ``ids``."""
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids[order], wanted)]


def arms_for_run(spec: StrategySpec, seed: int, n_accounts: int,
                 base_dir: Path | None = None) -> np.ndarray:
    """The arm label of accounts ``0 .. n_accounts-1`` in the run of ``spec`` on ``seed``.

    Rebuilds the strategy as the engine does (``Streams(seed).generator("strategy")``):
    the split is a pure function of that stream, so it is the run's split.
    """
    strategy = build_strategy(spec, Streams(seed).generator("strategy"), base_dir)
    if not hasattr(strategy, "arm_of"):
        raise TypeError(f"strategy '{spec.name}' does not split accounts into arms")
    return np.asarray(strategy.arm_of(np.arange(n_accounts, dtype=np.int64)), dtype=object)


def arm_kpis_of_run(results: RunFrames, scenario: Scenario, spec: StrategySpec,
                    base_dir: Path | None = None) -> pd.DataFrame:
    """Per-arm KPIs of one run of ``spec`` (rebuilding its split from the run's seed)."""
    labels = arms_for_run(spec, results.seed, len(results.accounts), base_dir)
    ids = results.accounts["account_id"].to_numpy(dtype=np.int64)
    return arm_kpis(results, labels[ids], scenario)
