"""Unit tests of the compliance gate: every rule, every pack, and the independent audit.

The gate is exercised on a small generated book whose state is set by hand, with the
contact log filled through ``ContactLog.record`` exactly as the engine fills it. The
audit is exercised on event frames built with the engine's own ``Recorder``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.book import (
    AGENT_CALL,
    CHARGED_OFF,
    DELINQUENT,
    EMAIL,
    OUTCOME_INDEX,
    PUSH,
    ROBOCALL,
    SMS,
    Book,
)
from simulator.compliance import PACKS, ContactLog, Context, RulePack
from simulator.compliance.audit import audit_contacts
from simulator.compliance.rules import (
    ALL_CHANNELS,
    DailyCap,
    QuietHours,
    RollingCap,
)
from simulator.population import generate_book
from simulator.recorder import Event, Recorder
from simulator.rng import Streams
from simulator.scenario import scenario_from_dict

ALWAYS = ["do_not_contact", "opted_out", "churned", "charged_off"]
MESSAGES = (PUSH, EMAIL, SMS)
CALL_CHANNELS = (ROBOCALL, AGENT_CALL)
NOON = 12.0


def at(day: int, hour: float) -> float:
    """Simulation time of ``hour`` o'clock on ``day``, as the engine computes it."""
    return day + hour / 24.0


@pytest.fixture
def book() -> Book:
    """50 clean accounts: delinquent, owing, contactable on every channel."""
    b = generate_book(scenario_from_dict({"population": {"size": 50}}), Streams(1))
    b.observable.do_not_contact[:] = False
    b.observable.consent_quiet_hours[:] = False
    b.observable.on_file[:] = True
    b.state.status[:] = DELINQUENT
    b.state.opted_out[:] = False
    b.state.churned[:] = False
    b.state.t_churn[:] = np.inf
    b.state.t_charged_off[:] = np.inf
    return b


class Gate:
    """A pack with its own contact log, driven the way the engine drives it."""

    def __init__(self, book: Book, pack: str | RulePack, stop_after_churn: bool = True):
        # Contact stops after churn here, so that the ``churned`` rule is exercised; the
        # scenario's default (collection continues) is tested on its own below.
        self.pack = (pack if isinstance(pack, RulePack)
                     else RulePack.named(pack, stop_after_churn=stop_after_churn))
        self.log = ContactLog(book.n, self.pack.window_days)
        self.ctx = Context(book, self.log)

    def verdict_of(self, account: int, channel: int, t: float) -> str | None:
        """Name of the rule that blocks this contact, or None when it may happen.

        Asked both ways the engine asks (a batch for messages and robocalls, one account
        for an agent's dial); the two answers must agree.
        """
        v = self.pack.check(self.ctx, np.array([account], dtype=np.int64), channel, t)
        one = self.pack.check_one(self.ctx, account, channel, t)
        batch = -1 if v.allowed.size else int(v.rule[0])
        assert one == batch, (one, batch)
        return None if batch < 0 else self.pack.rule_names[batch]

    def execute(self, account: int, channel: int, t: float, *, delivered: bool = True,
                connected: bool = False) -> None:
        """Record an executed contact (without checking it) as the engine does."""
        self.log.record(np.array([account], dtype=np.int64), int(np.floor(t)), channel,
                        np.array([delivered]), np.array([connected]), t)


# ----------------------------------------------------------------------------- packs


def test_every_pack_starts_with_the_always_rules_in_order() -> None:
    for name in PACKS:
        assert RulePack.named(name).rule_names[:4] == ALWAYS, name
    assert RulePack.named("none").rule_names == ALWAYS


def test_pack_rule_names_and_windows() -> None:
    assert RulePack.named("cn-2026").rule_names[4:] == [
        "quiet_hours_22_08", "connected_calls_per_day", "unanswered_calls_per_day"]
    assert RulePack.named("us-reg-f").rule_names[4:] == [
        "inconvenient_time_21_08", "call_attempts_per_7_days", "7_days_after_conversation"]
    assert RulePack.named("au-accc").rule_names[4:] == [
        "contacts_per_7_days", "contacts_per_30_days"]
    windows = {name: RulePack.named(name).window_days for name in PACKS}
    assert windows == {"cn-2026": 1, "us-reg-f": 7, "au-accc": 30, "none": 1}


def test_each_named_call_builds_fresh_rules() -> None:
    a, b = RulePack.named("cn-2026"), RulePack.named("cn-2026")
    assert all(x is not y for x, y in zip(a.rules, b.rules, strict=True))


def test_duplicate_rule_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        RulePack("dup", [QuietHours(1, 2, name="q"), QuietHours(3, 4, name="q")])


def test_unknown_pack_name_raises() -> None:
    with pytest.raises(KeyError):
        RulePack.named("eu-2030")


def test_clean_account_at_noon_passes_every_pack(book: Book) -> None:
    for name in PACKS:
        g = Gate(book, name)
        for ch in ALL_CHANNELS:
            assert g.verdict_of(0, ch, at(3, NOON)) is None, (name, ch)


# ----------------------------------------------------------------------------- always


@pytest.mark.parametrize("pack", sorted(PACKS))
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_do_not_contact_blocks_every_channel(book: Book, pack: str, channel: int) -> None:
    book.observable.do_not_contact[7] = True
    g = Gate(book, pack)
    assert g.verdict_of(7, channel, at(2, NOON)) == "do_not_contact"
    assert g.verdict_of(8, channel, at(2, NOON)) is None


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_opt_out_is_per_channel(book: Book, pack: str) -> None:
    book.state.opted_out[3, SMS] = True
    g = Gate(book, pack)
    assert g.verdict_of(3, SMS, at(1, NOON)) == "opted_out"
    for ch in (PUSH, EMAIL, ROBOCALL, AGENT_CALL):
        assert g.verdict_of(3, ch, at(1, NOON)) is None, ch
    assert g.verdict_of(4, SMS, at(1, NOON)) is None


@pytest.mark.parametrize("pack", sorted(PACKS))
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_churned_and_charged_off_block_every_channel(book: Book, pack: str,
                                                     channel: int) -> None:
    book.state.churned[5] = True
    book.state.status[6] = CHARGED_OFF
    g = Gate(book, pack)
    assert g.verdict_of(5, channel, at(4, NOON)) == "churned"
    assert g.verdict_of(6, channel, at(4, NOON)) == "charged_off"


@pytest.mark.parametrize("pack", sorted(PACKS))
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_churned_customers_are_contacted_by_default(book: Book, pack: str,
                                                    channel: int) -> None:
    # Churn loses future business, not the receivable: unless the scenario stops contact
    # after churn, a churned customer who owes is contacted like any other.
    book.state.churned[5] = True
    g = Gate(book, pack, stop_after_churn=False)
    assert g.verdict_of(5, channel, at(4, NOON)) is None
    assert "churned" in g.pack.rule_names  # still a rule of the pack, blocking nothing
    assert Gate(book, pack).verdict_of(5, channel, at(4, NOON)) == "churned"


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_verdict_names_the_first_blocking_rule_in_pack_order(book: Book, pack: str) -> None:
    o, s = book.observable, book.state
    o.do_not_contact[[1, 2]] = True
    s.opted_out[[1, 2, 3], SMS] = True
    s.churned[[1, 2, 3, 4]] = True
    s.status[[1, 2, 3, 4, 5]] = CHARGED_OFF
    g = Gate(book, pack)
    ids = np.arange(8, dtype=np.int64)
    v = g.pack.check(g.ctx, ids, SMS, at(1, NOON))
    names = [g.pack.rule_names[k] for k in v.rule]
    assert v.blocked.tolist() == [1, 2, 3, 4, 5]
    assert names == ["do_not_contact", "do_not_contact", "opted_out", "churned",
                     "charged_off"]
    assert v.allowed.tolist() == [0, 6, 7]


def test_verdict_partitions_the_batch(book: Book) -> None:
    book.observable.do_not_contact[::3] = True
    g = Gate(book, "cn-2026")
    ids = np.array([9, 0, 4, 3, 17, 18], dtype=np.int64)
    v = g.pack.check(g.ctx, ids, AGENT_CALL, at(0, 23.0))  # quiet hours for everyone
    assert sorted([*v.allowed.tolist(), *v.blocked.tolist()]) == sorted(ids.tolist())
    assert v.allowed.size == 0
    assert v.rule.shape == v.blocked.shape
    rule = dict(zip(v.blocked.tolist(), v.rule.tolist(), strict=True))
    dnc, quiet = g.pack.rule_names.index("do_not_contact"), g.pack.rule_names.index(
        "quiet_hours_22_08")
    assert {a for a, r in rule.items() if r == dnc} == {9, 0, 3, 18}
    assert {a for a, r in rule.items() if r == quiet} == {4, 17}


def test_pack_specific_rule_comes_after_always_rules(book: Book) -> None:
    # Churned *and* in quiet hours: counted under churned, which comes first.
    book.state.churned[2] = True
    g = Gate(book, "cn-2026")
    assert g.verdict_of(2, SMS, at(0, 23.0)) == "churned"
    assert g.verdict_of(3, SMS, at(0, 23.0)) == "quiet_hours_22_08"


def test_quiet_hours_before_daily_caps(book: Book) -> None:
    g = Gate(book, "cn-2026")
    for h in (9, 10, 11):
        g.execute(0, AGENT_CALL, at(0, h), connected=True)
    assert g.verdict_of(0, ROBOCALL, at(0, 23.0)) == "quiet_hours_22_08"
    assert g.verdict_of(0, ROBOCALL, at(0, 21.0)) == "connected_calls_per_day"


def test_check_one_is_check_for_one_account(book: Book) -> None:
    """The agent's scalar path and the batch path agree on every account of a busy book."""
    rng = np.random.default_rng(3)
    o, s = book.observable, book.state
    o.do_not_contact[:] = rng.random(book.n) < 0.1
    o.consent_quiet_hours[:] = rng.random(book.n) < 0.5
    s.opted_out[:] = rng.random((book.n, 5)) < 0.1
    s.churned[:] = rng.random(book.n) < 0.1
    s.status[rng.random(book.n) < 0.1] = CHARGED_OFF
    ids = np.arange(book.n, dtype=np.int64)
    for name in PACKS:
        g = Gate(book, name)
        for step in range(1000):
            t = step * 0.0371  # every hour of the day, over five weeks
            channel = step % 5
            v = g.pack.check(g.ctx, ids, channel, t)
            batch = np.full(book.n, -1)
            batch[v.blocked] = v.rule
            one = [g.pack.check_one(g.ctx, int(i), channel, t) for i in ids]
            assert one == batch.tolist(), (name, step)
            g.log.record(v.allowed, int(np.floor(t)), channel,
                         rng.random(v.allowed.size) < 0.8, rng.random(v.allowed.size) < 0.3,
                         t)


def test_empty_batch(book: Book) -> None:
    g = Gate(book, "au-accc")
    v = g.pack.check(g.ctx, np.empty(0, dtype=np.int64), SMS, 1.0)
    assert v.allowed.size == v.blocked.size == v.rule.size == 0


# ----------------------------------------------------------------------------- cn-2026


@pytest.mark.parametrize(
    ("hour", "quiet"),
    [(21.99, False), (22.0, True), (23.99, True), (0.0, True), (3.0, True), (7.99, True),
     (8.0, False), (12.0, False)],
)
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_cn_quiet_hours_22_to_08(book: Book, hour: float, quiet: bool, channel: int) -> None:
    g = Gate(book, "cn-2026")
    for day in (0, 17):
        got = g.verdict_of(0, channel, at(day, hour))
        assert got == ("quiet_hours_22_08" if quiet else None), (day, hour)


@pytest.mark.parametrize("hour", [22.0, 23.5, 0.0, 7.99])
def test_cn_consent_exempts_from_quiet_hours(book: Book, hour: float) -> None:
    book.observable.consent_quiet_hours[[1, 3]] = True
    g = Gate(book, "cn-2026")
    v = g.pack.check(g.ctx, np.arange(5, dtype=np.int64), SMS, at(2, hour))
    assert v.allowed.tolist() == [1, 3]
    assert v.blocked.tolist() == [0, 2, 4]


@pytest.mark.parametrize("first", CALL_CHANNELS)
def test_cn_three_connected_calls_a_day(book: Book, first: int) -> None:
    g = Gate(book, "cn-2026")
    # Robocalls and agent calls both count; unanswered calls do not count as connected.
    g.execute(0, first, at(5, 9.0), connected=True)
    g.execute(0, AGENT_CALL, at(5, 10.0), connected=False)
    g.execute(0, ROBOCALL, at(5, 11.0), connected=True)
    assert g.verdict_of(0, AGENT_CALL, at(5, 12.0)) is None
    g.execute(0, AGENT_CALL, at(5, 12.0), connected=True)
    for ch in CALL_CHANNELS:
        assert g.verdict_of(0, ch, at(5, 13.0)) == "connected_calls_per_day"
        assert g.verdict_of(0, ch, at(5, 21.99)) == "connected_calls_per_day"
    for ch in MESSAGES:  # messages are not calls
        assert g.verdict_of(0, ch, at(5, 13.0)) is None
    assert g.verdict_of(1, AGENT_CALL, at(5, 13.0)) is None  # per debtor
    assert g.verdict_of(0, AGENT_CALL, at(6, 8.0)) is None  # a new day


def test_cn_six_unanswered_attempts_a_day_reset_next_day(book: Book) -> None:
    g = Gate(book, "cn-2026")
    for k in range(5):
        g.execute(0, (ROBOCALL, AGENT_CALL)[k % 2], at(3, 8 + k), connected=False)
    assert g.verdict_of(0, ROBOCALL, at(3, 14.0)) is None
    # An undelivered call (number not reached) is an unanswered attempt too.
    g.execute(0, ROBOCALL, at(3, 14.0), delivered=False, connected=False)
    for ch in CALL_CHANNELS:
        assert g.verdict_of(0, ch, at(3, 15.0)) == "unanswered_calls_per_day"
    assert g.verdict_of(0, SMS, at(3, 15.0)) is None
    assert g.verdict_of(0, AGENT_CALL, at(4, 8.0)) is None
    assert g.verdict_of(0, AGENT_CALL, at(4, 21.99)) is None


def test_cn_caps_count_per_calendar_day_not_per_24_hours(book: Book) -> None:
    g = Gate(book, "cn-2026")
    for h in (19.0, 20.0, 21.0):
        g.execute(0, AGENT_CALL, at(3, h), connected=True)
    assert g.verdict_of(0, AGENT_CALL, at(3, 21.5)) == "connected_calls_per_day"
    assert g.verdict_of(0, AGENT_CALL, at(4, 8.0)) is None


def test_cn_connected_and_unanswered_mixed(book: Book) -> None:
    g = Gate(book, "cn-2026")
    for h in (8, 9):
        g.execute(0, AGENT_CALL, at(1, h), connected=True)
    for h in range(10, 16):
        g.execute(0, ROBOCALL, at(1, h), connected=False)
    # Two connected (below 3) but six unanswered: blocked by the unanswered cap.
    assert g.verdict_of(0, AGENT_CALL, at(1, 17.0)) == "unanswered_calls_per_day"
    g.execute(0, AGENT_CALL, at(1, 16.5), connected=True)
    assert g.verdict_of(0, AGENT_CALL, at(1, 17.0)) == "connected_calls_per_day"


def test_cn_messages_do_not_fill_call_caps(book: Book) -> None:
    g = Gate(book, "cn-2026")
    for k in range(20):
        g.execute(0, MESSAGES[k % 3], at(2, 8 + k * 0.5), delivered=True)
    assert g.verdict_of(0, AGENT_CALL, at(2, 20.0)) is None


# ----------------------------------------------------------------------------- us-reg-f


@pytest.mark.parametrize(
    ("hour", "quiet"),
    [(20.99, False), (21.0, True), (23.0, True), (0.0, True), (7.99, True), (8.0, False),
     (12.0, False)],
)
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_us_inconvenient_time_21_to_08(book: Book, hour: float, quiet: bool,
                                       channel: int) -> None:
    book.observable.consent_quiet_hours[:] = True  # consent does not exempt under Reg F
    g = Gate(book, "us-reg-f")
    got = g.verdict_of(0, channel, at(9, hour))
    assert got == ("inconvenient_time_21_08" if quiet else None)


def test_us_seven_call_attempts_in_seven_days(book: Book) -> None:
    g = Gate(book, "us-reg-f")
    # Days 0..6, alternating robocalls and agent calls, none answered.
    for d in range(7):
        assert g.verdict_of(0, CALL_CHANNELS[d % 2], at(d, 10.0)) is None, d
        g.execute(0, CALL_CHANNELS[d % 2], at(d, 10.0), connected=False)
    for ch in CALL_CHANNELS:
        assert g.verdict_of(0, ch, at(6, 15.0)) == "call_attempts_per_7_days"
    for ch in MESSAGES:
        assert g.verdict_of(0, ch, at(6, 15.0)) is None
    assert g.verdict_of(1, ROBOCALL, at(6, 15.0)) is None  # per debt
    # Day 7: the day-0 attempt has left the window of days 1..7.
    assert g.verdict_of(0, ROBOCALL, at(7, 8.0)) is None


def test_us_seven_attempts_on_one_day_block_for_the_week(book: Book) -> None:
    g = Gate(book, "us-reg-f")
    for k in range(7):
        g.execute(0, ROBOCALL, at(10, 8 + k), delivered=k % 2 == 0, connected=False)
    for d in range(10, 17):
        assert g.verdict_of(0, AGENT_CALL, at(d, 9.0)) == "call_attempts_per_7_days", d
    assert g.verdict_of(0, AGENT_CALL, at(17, 9.0)) is None


def test_us_six_attempts_allow_a_seventh(book: Book) -> None:
    g = Gate(book, "us-reg-f")
    for k in range(6):
        g.execute(0, ROBOCALL, at(2, 8 + k), connected=False)
    assert g.verdict_of(0, AGENT_CALL, at(2, 20.0)) is None


def test_us_no_call_within_seven_days_after_a_conversation(book: Book) -> None:
    g = Gate(book, "us-reg-f")
    t0 = at(3, 10.0)
    g.execute(0, AGENT_CALL, t0, connected=True)
    for dt in (0.01, 1.0, 6.25, 6.99):
        for ch in CALL_CHANNELS:
            assert g.verdict_of(0, ch, t0 + dt) == "7_days_after_conversation", dt
    for ch in MESSAGES:  # messages are not calls
        assert g.verdict_of(0, ch, t0 + 1.0) is None
    assert g.verdict_of(0, AGENT_CALL, t0 + 7.0) is None
    assert g.verdict_of(0, ROBOCALL, t0 + 7.1) is None
    assert g.verdict_of(1, AGENT_CALL, t0 + 1.0) is None


@pytest.mark.parametrize(("channel", "connected"),
                         [(ROBOCALL, True), (AGENT_CALL, False), (SMS, False)])
def test_us_only_an_answered_agent_call_is_a_conversation(book: Book, channel: int,
                                                         connected: bool) -> None:
    g = Gate(book, "us-reg-f")
    g.execute(0, channel, at(3, 10.0), delivered=True, connected=connected)
    assert g.verdict_of(0, AGENT_CALL, at(3, 11.0)) is None


def test_us_message_volume_does_not_touch_call_caps(book: Book) -> None:
    g = Gate(book, "us-reg-f")
    for d in range(7):
        for h in (9.0, 12.0, 15.0):
            for ch in MESSAGES:
                g.execute(0, ch, at(d, h), delivered=True)
    assert g.verdict_of(0, ROBOCALL, at(6, 20.0)) is None


# ----------------------------------------------------------------------------- au-accc


def test_au_three_contacts_per_rolling_week(book: Book) -> None:
    g = Gate(book, "au-accc")
    g.execute(0, SMS, at(0, 10.0), delivered=True)
    g.execute(0, AGENT_CALL, at(2, 10.0), connected=True)
    assert g.verdict_of(0, EMAIL, at(4, 10.0)) is None
    g.execute(0, ROBOCALL, at(4, 10.0), connected=True)
    for d in (4, 5, 6):
        for ch in ALL_CHANNELS:
            assert g.verdict_of(0, ch, at(d, 12.0)) == "contacts_per_7_days", (d, ch)
    assert g.verdict_of(1, SMS, at(4, 12.0)) is None
    # Day 7: the window is days 1..7 and holds two contacts.
    assert g.verdict_of(0, SMS, at(7, 0.0)) is None


def test_au_undelivered_messages_and_unanswered_calls_do_not_count(book: Book) -> None:
    g = Gate(book, "au-accc")
    for k in range(10):
        g.execute(0, ROBOCALL, at(1, 8 + k), delivered=True, connected=False)
        g.execute(0, AGENT_CALL, at(1, 8.5 + k), delivered=True, connected=False)
        g.execute(0, MESSAGES[k % 3], at(1, 8.25 + k), delivered=False)
    for ch in ALL_CHANNELS:
        assert g.verdict_of(0, ch, at(1, 20.0)) is None


def test_au_ten_contacts_per_rolling_30_days(book: Book) -> None:
    g = Gate(book, "au-accc")
    days = list(range(0, 30, 3))  # 0, 3, ..., 27: ten contacts, never 3 in a week
    assert len(days) == 10
    for d in days:
        assert g.verdict_of(0, SMS, at(d, 10.0)) is None, d
        g.execute(0, SMS, at(d, 10.0), delivered=True)
    assert g.verdict_of(0, SMS, at(29, 10.0)) == "contacts_per_30_days"
    assert g.verdict_of(0, AGENT_CALL, at(29, 10.0)) == "contacts_per_30_days"
    # Day 30: the day-0 contact left the 30-day window (days 1..30).
    assert g.verdict_of(0, SMS, at(30, 0.0)) is None


def test_au_no_time_of_day_rule(book: Book) -> None:
    g = Gate(book, "au-accc")
    for ch in ALL_CHANNELS:
        assert g.verdict_of(0, ch, at(1, 3.0)) is None


def test_none_pack_has_no_caps_or_hours(book: Book) -> None:
    g = Gate(book, "none")
    for k in range(40):
        g.execute(0, CALL_CHANNELS[k % 2], at(1, k * 0.5), connected=True)
    for ch in ALL_CHANNELS:
        assert g.verdict_of(0, ch, at(1, 23.5)) is None


# ----------------------------------------------------------------------------- rules, log


def test_quiet_hours_window_that_does_not_wrap(book: Book) -> None:
    rule = QuietHours(12.0, 14.0, channels=(SMS,), name="lunch")
    assert [rule.quiet(h) for h in (11.99, 12.0, 13.99, 14.0)] == [False, True, True, False]
    assert rule.applies(SMS) and not rule.applies(EMAIL)
    pack = RulePack("lunch", [rule])
    g = Gate(book, pack)
    assert g.verdict_of(0, SMS, at(0, 13.0)) == "lunch"
    assert g.verdict_of(0, EMAIL, at(0, 13.0)) is None


def test_daily_cap_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown count kind"):
        DailyCap("emails", 3)


def test_rolling_cap_on_contacts_counts_delivered_only(book: Book) -> None:
    pack = RulePack("r", [RollingCap("contacts", 2, 1, name="one_per_2_days")])
    g = Gate(book, pack)
    g.execute(0, SMS, at(0, 23.0), delivered=False)
    assert g.verdict_of(0, SMS, at(1, 1.0)) is None
    g.execute(0, SMS, at(0, 23.5), delivered=True)
    assert g.verdict_of(0, SMS, at(1, 1.0)) == "one_per_2_days"
    assert g.verdict_of(0, SMS, at(2, 0.0)) is None


def test_log_refuses_windows_longer_than_it_keeps() -> None:
    log = ContactLog(3, 7)
    with pytest.raises(ValueError, match="exceeds"):
        log.count("contacts", np.arange(3, dtype=np.int64), 10, 8)
    with pytest.raises(ValueError, match="exceeds"):
        log.count_one("contacts", 1, 10, 8)


def test_log_count_one_agrees_with_count() -> None:
    log = ContactLog(3, 7)
    rng = np.random.default_rng(5)
    for day in range(20):
        for _ in range(4):
            idx = rng.integers(0, 3, rng.integers(1, 4)).astype(np.int64)
            channel = int(rng.integers(0, 5))
            log.record(idx, day, channel, rng.random(idx.size) < 0.7,
                       rng.random(idx.size) < 0.4, day + 0.5)
        for kind in ContactLog.KINDS:
            for days in range(1, 8):
                many = log.count(kind, np.arange(3, dtype=np.int64), day, days).tolist()
                assert [log.count_one(kind, i, day, days) for i in range(3)] == many


def test_log_ring_forgets_days_that_left_the_window() -> None:
    log = ContactLog(2, 3)
    idx = np.array([0], dtype=np.int64)
    yes, no = np.array([True]), np.array([False])
    log.record(idx, 0, SMS, yes, no, 0.5)
    log.record(idx, 1, ROBOCALL, yes, yes, 1.5)
    assert log.count("contacts", idx, 2, 3).tolist() == [2]
    assert log.count("call_attempts", idx, 2, 3).tolist() == [1]
    log.record(idx, 3, SMS, yes, no, 3.5)  # reuses day 0's row
    assert log.count("contacts", idx, 3, 3).tolist() == [2]  # days 1..3
    assert log.count("contacts", idx, 3, 1).tolist() == [1]
    # Days the log never saw count as zero, even where the ring row holds another day.
    assert log.count("contacts", idx, 6, 3).tolist() == [0]
    assert log.count("contacts", np.array([1], dtype=np.int64), 3, 3).tolist() == [0]


def test_log_counts_repeated_ids_in_one_batch() -> None:
    log = ContactLog(4, 1)
    idx = np.array([2, 2, 1], dtype=np.int64)
    log.record(idx, 0, ROBOCALL, np.ones(3, bool), np.array([True, False, True]), 0.5)
    assert log.count("call_attempts", np.arange(4), 0, 1).tolist() == [0, 1, 2, 0]
    assert log.count("connected_calls", np.arange(4), 0, 1).tolist() == [0, 1, 1, 0]


def test_log_conversation_time_is_the_latest_answered_agent_call() -> None:
    log = ContactLog(2, 1)
    idx = np.array([0, 1], dtype=np.int64)
    log.record(idx, 0, AGENT_CALL, np.ones(2, bool), np.array([True, False]), 0.5)
    log.record(idx, 0, ROBOCALL, np.ones(2, bool), np.array([True, True]), 0.75)
    assert log.last_conversation[0] == 0.5
    assert log.last_conversation[1] == -np.inf


# ----------------------------------------------------------------------------- audit

ANSWER = OUTCOME_INDEX["right_party"]
NO_ANSWER = OUTCOME_INDEX["no_answer"]
DELIVERED = OUTCOME_INDEX["delivered"]
UNDELIVERED = OUTCOME_INDEX["undelivered"]


class Log:
    """Hand-made event frames in exactly the engine's format."""

    def __init__(self) -> None:
        self.rec = Recorder()

    def contact(self, account: int, channel: int, t: float, code: int) -> Log:
        self.rec.add(Event.CONTACT, t, np.array([account], dtype=np.int64), channel=channel,
                     amount=0.01, code=code)
        return self

    def event(self, kind: Event, account: int, t: float, channel: int = -1) -> Log:
        self.rec.add(kind, t, np.array([account], dtype=np.int64), channel=channel)
        return self

    def frame(self) -> pd.DataFrame:
        return self.rec.frame()


def compliant_log(pack: str) -> Log:
    """Busy but compliant traffic for ``pack`` on accounts 0-2."""
    log = Log()
    if pack in ("cn-2026", "none"):
        for d in range(3):
            for k in range(3):
                log.contact(0, CALL_CHANNELS[k % 2], at(d, 8 + k), ANSWER)
            for k in range(6):
                log.contact(0, CALL_CHANNELS[k % 2], at(d, 12 + k), NO_ANSWER)
            for h in (8.0, 12.0, 21.99):
                log.contact(1, SMS, at(d, h), DELIVERED)
    elif pack == "us-reg-f":
        for d in range(14):
            log.contact(0, ROBOCALL, at(d, 8.0), NO_ANSWER)  # 7 in any 7 days
            log.contact(1, SMS, at(d, 20.99), DELIVERED)
        log.contact(2, AGENT_CALL, at(0, 10.0), ANSWER)
        log.contact(2, AGENT_CALL, at(7, 10.0), ANSWER)  # exactly 7 days later
        log.contact(2, ROBOCALL, at(7, 10.0) + 7.0, NO_ANSWER)
        log.contact(2, SMS, at(8, 10.0), DELIVERED)
    elif pack == "au-accc":
        for d in range(0, 30, 3):  # 10 in 30 days, never 4 in a week
            log.contact(0, SMS, at(d, 10.0), DELIVERED)
        for d in (0, 1, 2, 7, 8, 9):
            log.contact(1, AGENT_CALL, at(d, 23.0), ANSWER)
        for k in range(20):  # unanswered and undelivered do not count
            log.contact(1, ROBOCALL, at(1, k), NO_ANSWER)
            log.contact(1, EMAIL, at(1, k + 0.5), UNDELIVERED)
    return log


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_audit_passes_a_compliant_log(book: Book, pack: str) -> None:
    assert audit_contacts(compliant_log(pack).frame(), book, pack) == 0


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_audit_of_an_empty_log(book: Book, pack: str) -> None:
    assert audit_contacts(Log().frame(), book, pack) == 0
    only_payments = Log().event(Event.PAYMENT, 0, 1.0).frame()
    assert audit_contacts(only_payments, book, pack) == 0


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_audit_finds_contact_to_do_not_contact(book: Book, pack: str) -> None:
    book.observable.do_not_contact[7] = True
    log = compliant_log(pack).contact(7, EMAIL, at(1, 12.0), DELIVERED)
    assert audit_contacts(log.frame(), book, pack) == 1


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_audit_finds_contact_after_churn(book: Book, pack: str) -> None:
    book.state.churned[3] = True
    book.state.t_churn[3] = at(2, 12.0)
    ok = compliant_log(pack).contact(3, SMS, at(2, 12.0), DELIVERED)  # the churning contact
    assert audit_contacts(ok.frame(), book, pack, stop_after_churn=True) == 0
    bad = ok.contact(3, SMS, at(2, 13.0), DELIVERED)
    assert audit_contacts(bad.frame(), book, pack, stop_after_churn=True) == 1
    # By default collection continues after churn: the same contact breaks nothing.
    assert audit_contacts(bad.frame(), book, pack) == 0


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_audit_finds_contact_at_or_after_charge_off(book: Book, pack: str) -> None:
    book.state.t_charged_off[3] = at(5, 10.0)
    ok = compliant_log(pack).contact(3, SMS, at(4, 13.0), DELIVERED)
    assert audit_contacts(ok.frame(), book, pack) == 0
    assert audit_contacts(ok.contact(3, SMS, at(5, 13.0), DELIVERED).frame(), book, pack) == 1
    at_charge_off = compliant_log(pack).contact(3, EMAIL, at(5, 10.0), DELIVERED)
    assert audit_contacts(at_charge_off.frame(), book, pack) == 1


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_audit_finds_contact_after_opt_out_on_that_channel(book: Book, pack: str) -> None:
    log = (compliant_log(pack)
           .contact(4, SMS, at(1, 12.0), DELIVERED)
           .event(Event.OPT_OUT, 4, at(1, 12.0), channel=SMS)
           .contact(4, EMAIL, at(1, 13.0), DELIVERED))  # another channel: fine
    assert audit_contacts(log.frame(), book, pack) == 0
    log.contact(4, SMS, at(1, 14.0), DELIVERED)
    assert audit_contacts(log.frame(), book, pack) == 1
    # A second opt-out event on the channel does not move the first one later.
    log.event(Event.OPT_OUT, 4, at(1, 15.0), channel=SMS)
    assert audit_contacts(log.frame(), book, pack) == 1


@pytest.mark.parametrize("hour", [22.0, 23.99, 0.0, 7.99])
def test_audit_cn_quiet_hours(book: Book, hour: float) -> None:
    book.observable.consent_quiet_hours[1] = True
    ok = compliant_log("cn-2026").contact(1, AGENT_CALL, at(2, hour), ANSWER)
    assert audit_contacts(ok.frame(), book, "cn-2026") == 0
    bad = compliant_log("cn-2026").contact(2, PUSH, at(2, hour), DELIVERED)
    assert audit_contacts(bad.frame(), book, "cn-2026") == 1
    assert audit_contacts(bad.frame(), book, "none") == 0


def test_audit_cn_fourth_connected_call_a_day(book: Book) -> None:
    log = compliant_log("cn-2026").contact(0, ROBOCALL, at(1, 20.0), ANSWER)
    assert audit_contacts(log.frame(), book, "cn-2026") == 1
    assert audit_contacts(log.frame(), book, "none") == 0
    spread = Log()
    for d, h in [(0, 9), (0, 10), (0, 11), (1, 9), (1, 10), (1, 11)]:
        spread.contact(5, AGENT_CALL, at(d, h), ANSWER)
    assert audit_contacts(spread.frame(), book, "cn-2026") == 0


def test_audit_cn_seventh_unanswered_attempt_a_day(book: Book) -> None:
    log = compliant_log("cn-2026").contact(0, AGENT_CALL, at(2, 21.0), UNDELIVERED)
    assert audit_contacts(log.frame(), book, "cn-2026") == 1


def test_audit_cn_promise_counts_as_connected(book: Book) -> None:
    log = Log()
    for h in (9, 10, 11, 12):
        log.contact(0, AGENT_CALL, at(0, h), OUTCOME_INDEX["promise"])
    assert audit_contacts(log.frame(), book, "cn-2026") == 1


@pytest.mark.parametrize("hour", [21.0, 22.5, 0.0, 7.99])
@pytest.mark.parametrize("channel", [SMS, AGENT_CALL])
def test_audit_us_inconvenient_time(book: Book, hour: float, channel: int) -> None:
    book.observable.consent_quiet_hours[:] = True
    log = compliant_log("us-reg-f").contact(3, channel, at(2, hour), DELIVERED)
    assert audit_contacts(log.frame(), book, "us-reg-f") == 1


def test_audit_us_eighth_call_attempt_in_seven_days(book: Book) -> None:
    log = Log()
    for d in range(7):
        log.contact(0, CALL_CHANNELS[d % 2], at(d, 9.0), NO_ANSWER)
    log.contact(0, ROBOCALL, at(7, 9.0), NO_ANSWER)  # days 1..7 hold 7
    assert audit_contacts(log.frame(), book, "us-reg-f") == 0
    log.contact(0, ROBOCALL, at(7, 10.0), NO_ANSWER)  # the 8th in days 1..7
    assert audit_contacts(log.frame(), book, "us-reg-f") == 1
    many = compliant_log("us-reg-f").contact(0, AGENT_CALL, at(13, 20.0), NO_ANSWER)
    assert audit_contacts(many.frame(), book, "us-reg-f") == 1


@pytest.mark.parametrize("gap", [0.01, 3.0, 6.99])
@pytest.mark.parametrize("channel", CALL_CHANNELS)
def test_audit_us_call_within_seven_days_of_a_conversation(book: Book, gap: float,
                                                           channel: int) -> None:
    log = Log().contact(0, AGENT_CALL, at(1, 9.0), ANSWER)
    log.contact(0, channel, at(1, 9.0) + gap, NO_ANSWER)
    assert audit_contacts(log.frame(), book, "us-reg-f") == 1
    assert audit_contacts(log.frame(), book, "au-accc") == 0


@pytest.mark.parametrize(("channel", "code"), [(ROBOCALL, ANSWER), (AGENT_CALL, NO_ANSWER)])
def test_audit_us_only_agent_conversations_start_the_cooldown(book: Book, channel: int,
                                                              code: int) -> None:
    log = Log().contact(0, channel, at(1, 9.0), code)
    log.contact(0, AGENT_CALL, at(1, 10.0), NO_ANSWER)
    assert audit_contacts(log.frame(), book, "us-reg-f") == 0


def test_audit_us_cooldown_is_per_account(book: Book) -> None:
    log = Log().contact(0, AGENT_CALL, at(1, 9.0), ANSWER)
    log.contact(1, AGENT_CALL, at(1, 10.0), ANSWER)
    log.contact(2, ROBOCALL, at(1, 11.0), NO_ANSWER)
    assert audit_contacts(log.frame(), book, "us-reg-f") == 0


def test_audit_au_fourth_contact_in_a_week(book: Book) -> None:
    log = Log()
    for d, ch, code in [(0, SMS, DELIVERED), (3, AGENT_CALL, ANSWER),
                        (5, EMAIL, OUTCOME_INDEX["read"])]:
        log.contact(0, ch, at(d, 12.0), code)
    log.contact(0, ROBOCALL, at(6, 12.0), NO_ANSWER)
    assert audit_contacts(log.frame(), book, "au-accc") == 0
    log.contact(0, ROBOCALL, at(6, 13.0), ANSWER)
    assert audit_contacts(log.frame(), book, "au-accc") == 1
    assert audit_contacts(log.frame(), book, "cn-2026") == 0


def test_audit_au_eleventh_contact_in_thirty_days(book: Book) -> None:
    log = compliant_log("au-accc").contact(0, PUSH, at(29, 10.0), DELIVERED)
    assert audit_contacts(log.frame(), book, "au-accc") == 1
    later = compliant_log("au-accc").contact(0, PUSH, at(30, 10.0), DELIVERED)
    assert audit_contacts(later.frame(), book, "au-accc") == 0


def test_audit_counts_each_breach(book: Book) -> None:
    book.observable.do_not_contact[9] = True
    log = Log()
    for h in (9, 10, 11, 12, 13):  # two connected calls too many
        log.contact(0, AGENT_CALL, at(0, h), ANSWER)
    log.contact(9, SMS, at(0, 23.0), DELIVERED)  # do-not-contact and quiet hours
    assert audit_contacts(log.frame(), book, "cn-2026") == 4
