"""The rule packs shipped with contactsim (docs/model.md section 9).

A pack is an ordered list of rules; the first rule that forbids a contact is the one
the blocked request is counted under. Every pack starts with the rules that always
hold: do-not-contact, per-channel opt-outs, churned customers (only when the scenario
stops contact after churn, ``compliance.stop_after_churn``; by default collection
continues) and charge-off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.book import CALLS, I64
from simulator.compliance.rules import (
    ChargedOff,
    Churned,
    Context,
    ConversationCooldown,
    DailyCap,
    DoNotContact,
    OptedOut,
    QuietHours,
    RollingCap,
    Rule,
)
from simulator.scenario import CHANNELS


def always(stop_after_churn: bool = False) -> list[Rule]:
    """Rules every pack carries; ``churned`` blocks only with ``stop_after_churn``."""
    return [DoNotContact(), OptedOut(), Churned(active=stop_after_churn), ChargedOff()]


def cn_2026(stop_after_churn: bool = False) -> list[Rule]:
    """China: national standard on post-loan collection for internet consumer credit
    (2025) and the China Banking Association guideline (2026).

    No collection contact 22:00-08:00 without consent; at most 3 connected calls a day
    per debtor and at most 6 unanswered attempts a day to the same number. Third-party
    contact is not modelled at all, so it cannot happen.
    """
    return [
        *always(stop_after_churn),
        QuietHours(22.0, 8.0, consent_exempt=True, name="quiet_hours_22_08"),
        DailyCap("connected_calls", 3, name="connected_calls_per_day"),
        DailyCap("unanswered_calls", 6, name="unanswered_calls_per_day"),
    ]


def us_reg_f(stop_after_churn: bool = False) -> list[Rule]:
    """US Regulation F (12 CFR 1006).

    Communications only 08:00-21:00 local (1006.6(b)(1)(i)); a call is presumed to harass
    if more than 7 attempts are made within 7 days, or any within 7 days after a
    telephone conversation about the debt (1006.14(b)(2)). Electronic messages carry an
    opt-out that is honoured (1006.6(e)), enforced by the ``opted_out`` rule.
    """
    return [
        *always(stop_after_churn),
        QuietHours(21.0, 8.0, name="inconvenient_time_21_08"),
        RollingCap("call_attempts", 7, 7, channels=CALLS, name="call_attempts_per_7_days"),
        ConversationCooldown(7.0, channels=CALLS, name="7_days_after_conversation"),
    ]


def au_accc(stop_after_churn: bool = False) -> list[Rule]:
    """Australia: ACCC/ASIC debt collection guideline: at most 3 contacts a week and 10
    a month. A contact is a delivered message or an answered call; weeks and months are
    rolling 7- and 30-day windows."""
    return [
        *always(stop_after_churn),
        RollingCap("contacts", 7, 3, name="contacts_per_7_days"),
        RollingCap("contacts", 30, 10, name="contacts_per_30_days"),
    ]


def no_pack(stop_after_churn: bool = False) -> list[Rule]:
    """Only the rules that always hold."""
    return always(stop_after_churn)


#: Pack name -> its rules, given whether contact stops after churn.
PACKS: dict[str, Callable[[bool], list[Rule]]] = {
    "cn-2026": cn_2026,
    "us-reg-f": us_reg_f,
    "au-accc": au_accc,
    "none": no_pack,
}


@dataclass
class Verdict:
    """Outcome of checking a batch: who may be contacted and why the rest may not."""

    allowed: I64
    blocked: I64
    rule: np.ndarray  # index into RulePack.rule_names, one per blocked id


class RulePack:
    """An ordered list of rules enforced by the engine."""

    def __init__(self, name: str, rules: Sequence[Rule]):
        self.name = name
        self.rules = list(rules)
        self.rule_names = [r.name for r in self.rules]
        if len(set(self.rule_names)) != len(self.rule_names):
            raise ValueError(f"rule names in pack {name} must be unique")
        # Per channel, the applicable rules' index and bound ``blocks_one``: an agent's
        # dial checks one account at a time, so lookups per rule add up.
        self._one_by_channel = {
            c: [(k, r.blocks_one) for k, r in enumerate(self.rules) if r.applies(c)]
            for c in range(len(CHANNELS))}

    @classmethod
    def named(cls, name: str, stop_after_churn: bool = False) -> RulePack:
        """The shipped pack ``name``; its ``churned`` rule blocks only with
        ``stop_after_churn`` (the scenario's ``compliance.stop_after_churn``)."""
        return cls(name, PACKS[name](stop_after_churn))

    @property
    def window_days(self) -> int:
        """Longest look-back any rule needs, in days."""
        return max(r.window_days for r in self.rules)

    def check(self, ctx: Context, idx: I64, channel: int, t: float) -> Verdict:
        """Split ``idx`` into allowed and blocked, naming the first rule that blocks."""
        rule = np.full(idx.size, -1, dtype=np.int16)
        open_ = np.ones(idx.size, dtype=bool)
        for k, r in enumerate(self.rules):
            if not r.applies(channel) or not open_.any():
                continue
            pos = np.flatnonzero(open_)
            hit = r.blocks(ctx, idx[pos], channel, t)
            rule[pos[hit]] = k
            open_[pos[hit]] = False
        return Verdict(allowed=idx[open_], blocked=idx[~open_], rule=rule[~open_])

    def check_one(self, ctx: Context, i: int, channel: int, t: float) -> int:
        """Index of the first rule that blocks contacting ``i`` now, or -1 if none does."""
        for k, blocks_one in self._one_by_channel[channel]:
            if blocks_one(ctx, i, channel, t):
                return k
        return -1
