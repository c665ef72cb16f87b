"""KPIs of a living book: per statement, per delinquency episode, month on month, and
over the days after the warm-up (docs/model.md section 11).

A run with monthly statements keeps every KPI of a single-statement run, each defined
for a book that lives: a rate is per statement that falls due or per delinquency
episode, roll rates are month-on-month flows, and every flow (money, contacts, cost,
churn, complaints, agents) is counted over the window from ``metrics.warmup_days`` to
the horizon. ``LIVING_KPIS`` are the KPIs only a living book has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from simulator.book import CHARGED_OFF, CURED, OUTCOME_INDEX, PAID_ON_TIME, Bills, Plan
from simulator.kpis import MonthEnds, RunFacts, _ratio
from simulator.recorder import EVENT_NAMES, PAY_AGENCY
from simulator.scenario import CHANNELS

#: KPIs only a living book has (their definitions are in ``KPI_DEFINITIONS``).
LIVING_KPIS = ("statements_due", "episodes", "roll_m1_m2_balance", "roll_m2_m3_balance",
               "roll_m3_m4_balance", "balance_start", "collected_per_month", "service_level")


#: Contacts judged at a time by ``wasted_contacts``.
_CONTACTS_AT_A_TIME = 1 << 20


def _parts(facts: RunFacts) -> tuple[Plan, Bills, MonthEnds]:
    plan, bills, month_ends = facts.book.plan, facts.book.state.bills, facts.month_ends
    if plan is None or bills is None or month_ends is None:
        raise ValueError("not a living book")
    return plan, bills, month_ends


def wasted_contacts(facts: RunFacts) -> tuple[np.ndarray, np.ndarray]:
    """The contacts of the run (their rows in the events frame) and whether each is
    wasted: the account's no-contact twin had paid every statement issued by the time of
    the contact within ``metrics.wasted_window_days`` after it ("paid what was due by
    then")."""
    plan, _, _ = _parts(facts)
    ev = facts.events
    rows = np.flatnonzero((ev["event"] == "contact").to_numpy())
    twin = facts.twin_paid_time
    if twin is None or rows.size == 0:
        return rows, np.zeros(rows.size, dtype=bool)
    all_ids, all_t = ev["account_id"].to_numpy(), ev["t"].to_numpy()
    window = facts.scenario.metrics.wasted_window_days
    wasted = np.empty(rows.size, dtype=bool)
    # A million contacts at a time: each is judged on its own, and the temporaries of
    # millions of contacts at once would add most of a gigabyte to a large run's peak.
    for start in range(0, rows.size, _CONTACTS_AT_A_TIME):
        part = rows[start:start + _CONTACTS_AT_A_TIME]
        ids = all_ids[part].astype(np.int64)
        t = all_t[part]
        # The last statement issued by the contact (the view holds an account only then).
        first = plan.first_due[ids] + 1.0 - plan.lead
        k = np.floor((t - first) / plan.cycle).astype(np.int64)
        k = np.clip(k, 0, plan.statements[ids].astype(np.int64) - 1)
        inside = k < twin.shape[1]
        paid = np.full(part.size, np.inf)
        paid[inside] = twin[ids[inside], k[inside]]
        wasted[start:start + part.size] = paid <= t + window
    return rows, wasted


def wasted_by_account(facts: RunFacts) -> np.ndarray:
    """Wasted contacts (``wasted_contacts``) of each account, over the whole run."""
    rows, wasted = wasted_contacts(facts)
    ids = facts.events["account_id"].to_numpy()[rows[wasted]].astype(np.int64)
    return np.bincount(ids, minlength=facts.book.n).astype(np.int64)


def payments_in_window(events: Iterable[pd.DataFrame], warmup: float,
                       horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """The amount of each payment from ``warmup`` to ``horizon`` and whether the agency
    collected it, in time order, from the event log given in consecutive chunks (picked
    from the columns in place: a frame of every payment's fields would be a quarter of a
    large run's event log)."""
    amounts, agency = [], []
    payment = EVENT_NAMES.index("payment")
    for ev in events:
        t = ev["t"].to_numpy()
        rows = np.flatnonzero((ev["event"].cat.codes.to_numpy() == payment)
                              & (t >= warmup) & (t <= horizon))
        amounts.append(ev["amount"].to_numpy()[rows])
        agency.append(ev["code"].to_numpy()[rows] == PAY_AGENCY)
    if not amounts:
        return np.empty(0), np.empty(0, dtype=bool)
    return np.concatenate(amounts), np.concatenate(agency)


def _closed_at(facts: RunFacts) -> np.ndarray:
    """When each account left the book: paid its last statement or charged off (inf:
    still open)."""
    s = facts.book.state
    paid = (s.status == PAID_ON_TIME) | (s.status == CURED)
    return np.where(paid, s.t_paid, np.where(s.status == CHARGED_OFF, s.t_charged_off, np.inf))


def _after(days: list[float] | list[int], warmup: float) -> float:
    """The sum of a day-by-day list over the days from the warm-up on."""
    first = math.ceil(warmup)
    return float(np.sum(np.asarray(days[first:], dtype=np.float64)))


def compute_living_kpis(facts: RunFacts) -> dict[str, float]:
    """All KPIs of a living book (``KPI_DEFINITIONS``, each as a living book reads it)."""
    plan, bills, me = _parts(facts)
    sc, book, ev = facts.scenario, facts.book, facts.events
    s = book.state
    warmup, horizon = sc.metrics.warmup_days, sc.horizon_days
    windowed = ev["t"].to_numpy() >= warmup
    # The event codes, compared with each kind's code: ``to_numpy()`` of the categorical
    # would make one string object per event (gigabytes for millions of events).
    event_codes = ev["event"].cat.codes.to_numpy()
    kinds = list(ev["event"].cat.categories)

    def event_is(kind: str) -> np.ndarray:
        return event_codes == (kinds.index(kind) if kind in kinds else -2)

    # Accounts in the book at some time in the window.
    in_book = (plan.opened <= horizon) & (_closed_at(facts) >= warmup)
    n = float(in_book.sum())
    paid_amount, by_agency = (facts.payments_in_window if facts.payments_in_window is not None
                              else payments_in_window([ev], warmup, horizon))
    cash = float(paid_amount.sum())
    agency = float(paid_amount[by_agency].sum())
    del paid_amount, by_agency
    amount_delinquent = float(bills.amount_w.sum())
    collected = float(bills.collected_w.sum())
    charged = (s.t_charged_off >= warmup) & (s.t_charged_off <= horizon)
    written_off = float(s.written_off[charged].sum())
    balance_start = me.balance_at_start + me.opened_after
    is_contact = event_is("contact") & windowed
    contact_amount = ev["amount"].to_numpy()[is_contact]
    contact_channel = ev["channel"].cat.codes.to_numpy()[is_contact]
    contact_cost = float(contact_amount.sum())
    n_contacts = float(is_contact.sum())
    churned = s.churned & (s.t_churn >= warmup)
    clv_lost = float(book.latent.clv[churned].sum())
    complaints = float((event_is("complaint") & windowed).sum())
    stats = facts.pool
    staffed_hours = _after(stats.staffed_by_day, warmup) * 24.0
    busy_hours = _after(stats.busy_by_day, warmup) * 24.0
    months = (horizon - warmup) / sc.metrics.month_days

    k: dict[str, float] = {
        "accounts": n,
        "statements_due": float(bills.due_w.sum()),
        "delinquency_rate": _ratio(float(bills.missed_w.sum()), float(bills.due_w.sum())),
        "episodes": float(bills.episodes_w.sum()),
        "amount_delinquent": amount_delinquent,
        "collected": collected,
        "recovery_rate": _ratio(collected, amount_delinquent),
    }
    for j, days in enumerate((30, 60, 90)):
        k[f"recovery_rate_{days}"] = _ratio(float(bills.collected_n[:, j].sum()),
                                            float(bills.amount_n[:, j].sum()))
    k["cure_rate"] = _ratio(float(bills.cures_w.sum()), float(bills.episodes_w.sum()))
    k["cure_rate_30"] = _ratio(float(bills.cures30_w.sum()), float(bills.episodes30_w.sum()))
    for name in ("m1_m2", "m2_m3", "m3_m4"):
        k[f"roll_{name}"] = me.rate(name)
        k[f"roll_{name}_balance"] = me.rate(name, by_balance=True)
    k["roll_30_60"] = _ratio(float(bills.reach60_w.sum()), float(bills.reach30_w.sum()))
    k["charge_off_rate"] = _ratio(float(charged.sum()), n)
    k["loss_rate"] = _ratio(written_off, balance_start)
    k["written_off"] = written_off
    k["agency_collected"] = agency
    k["agency_recovery_rate"] = _ratio(float(s.agency_collected[charged].sum()), written_off)
    k["cash_collected"] = cash
    k["collected_per_month"] = _ratio(cash, months)
    k["paid_before_start"] = float(s.paid_before_start.sum())
    k["balance_left"] = float(s.balance.sum())
    k["balance_start"] = balance_start
    k["contact_cost"] = contact_cost
    k["cost_per_collected"] = _ratio(contact_cost, collected)
    k["agent_utilisation"] = _ratio(busy_hours, staffed_hours)
    k["service_level"] = _ratio(_after(stats.in_time_by_day, warmup),
                                _after(stats.queued_by_day, warmup))
    k["staffing_cost"] = staffed_hours * sc.agents.cost_per_hour
    k["agency_commission"] = agency * sc.agency.commission
    k["churned"] = float(churned.sum())
    k["churn_rate"] = _ratio(float(churned.sum()), n)
    k["clv_lost"] = clv_lost
    k["complaints"] = complaints
    k["complaints_per_1000"] = 1000.0 * _ratio(complaints, n)
    k["contacts"] = n_contacts
    k["contacts_per_account"] = _ratio(n_contacts, n)
    rows, wasted = wasted_contacts(facts)
    counted = windowed[rows]
    k["wasted_contacts"] = float((wasted & counted).sum())
    k["wasted_contact_cost"] = float(ev["amount"].to_numpy()[rows[wasted & counted]].sum())
    k["net_value"] = (cash + k["balance_left"] - balance_start - contact_cost
                      - k["agency_commission"] - clv_lost)
    k["requests"] = float(facts.requests_after_warmup)
    blocked = event_is("blocked") & windowed
    rules = list(facts.blocked_by_rule)
    by_rule = np.bincount(ev["code"].to_numpy()[blocked].astype(np.int64),
                          minlength=len(rules))
    k["blocked_requests"] = float(blocked.sum())
    k["violations"] = float(facts.violations)
    k["calls_dropped"] = _after(stats.dropped_by_day, warmup)
    names = list(ev["channel"].cat.categories)
    calls = contact_channel == (names.index("agent_call") if "agent_call" in names else -2)
    answered = np.isin(ev["code"].to_numpy()[is_contact][calls],
                       [OUTCOME_INDEX["right_party"], OUTCOME_INDEX["promise"]])
    k["right_party_contacts"] = float(answered.sum())
    k["rpc_rate"] = _ratio(float(answered.sum()), float(calls.sum()))
    kept = float((event_is("promise_kept") & windowed).sum())
    broken = float((event_is("promise_broken") & windowed).sum())
    k["promises_made"] = float((event_is("promise") & windowed).sum())
    k["promises_kept"] = kept
    k["promise_kept_rate"] = _ratio(kept, kept + broken)
    for channel in CHANNELS:
        on = contact_channel == (names.index(channel) if channel in names else -2)
        k[f"cost_{channel}"] = float(contact_amount[on].sum())
        k[f"contacts_{channel}"] = float(on.sum())
    for code, rule in enumerate(rules):
        k[f"blocked_{rule}"] = float(by_rule[code])
    return k
