"""Compliance rules: each one answers "would this contact, now, break me?".

A rule sees the per-borrower contact log and the book, never the strategy. Rules are
checked at the moment a contact would be executed (a message at its release time, a
call when an agent dials), so caps count what really happened, including calls made
earlier the same day.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.book import AGENT_CALL, BOOL, CALLS, CHARGED_OFF, F64, I64, Book, hour_of, hour_one

ALL_CHANNELS: tuple[int, ...] = (0, 1, 2, 3, 4)


class ContactLog:
    """Per-borrower counts of executed contacts by day, in a ring of recent days."""

    KINDS = ("call_attempts", "connected_calls", "contacts")

    def __init__(self, n: int, window_days: int):
        self.window = max(int(window_days), 1)
        self.counts = {k: np.zeros((self.window, n), dtype=np.uint8) for k in self.KINDS}
        self.row_day = np.full(self.window, -(10**9), dtype=np.int64)
        self.last_conversation = np.full(n, -np.inf)

    def _row(self, day: int) -> int:
        r = day % self.window
        if self.row_day[r] != day:
            for arr in self.counts.values():
                arr[r] = 0
            self.row_day[r] = day
        return r

    def count(self, kind: str, idx: I64, day: int, days: int) -> I64:
        """Executed contacts of ``kind`` for ``idx`` on ``day`` and the ``days - 1`` before."""
        if days > self.window:
            raise ValueError(f"window of {days} days exceeds the log's {self.window}")
        total = np.zeros(idx.size, dtype=np.int64)
        arr = self.counts[kind]
        for d in range(day - days + 1, day + 1):
            r = d % self.window
            if self.row_day[r] == d:
                total += arr[r, idx]
        return total

    def count_one(self, kind: str, i: int, day: int, days: int) -> int:
        """``count`` for one borrower, without array overhead (``item`` reads a Python
        number directly, a third of the cost of ``int(arr[r, i])``)."""
        arr, row_day, w = self.counts[kind], self.row_day, self.window
        if days == 1:  # the daily caps: one row, no loop
            r = day % w
            return arr.item(r, i) if row_day.item(r) == day else 0
        if days > w:  # as ``count``: a longer window would silently undercount
            raise ValueError(f"window of {days} days exceeds the log's {w}")
        total = 0
        for d in range(day - days + 1, day + 1):
            r = d % w
            if row_day.item(r) == d:
                total += arr.item(r, i)
        return total

    def record(
        self, idx: I64, day: int, channel: int, delivered: BOOL, connected: BOOL,
        t: F64 | float,
    ) -> None:
        """Count executed contacts: attempts, connected calls, delivered communications."""
        r = self._row(day)
        c = self.counts
        is_call = channel in CALLS
        if is_call:
            np.add.at(c["call_attempts"][r], idx, 1)
            np.add.at(c["connected_calls"][r], idx[connected], 1)
            # A communication is a delivered message or an answered call.
            np.add.at(c["contacts"][r], idx[connected], 1)
        else:
            np.add.at(c["contacts"][r], idx[delivered], 1)
        if channel == AGENT_CALL:
            self.last_conversation[idx[connected]] = np.broadcast_to(t, idx.shape)[connected]


@dataclass(frozen=True)
class Context:
    """What a rule may look at."""

    book: Book
    log: ContactLog


class Rule(ABC):
    """One compliance rule. ``name`` is how blocked requests are counted."""

    name: str = "rule"
    channels: tuple[int, ...] = ALL_CHANNELS
    window_days: int = 1

    def applies(self, channel: int) -> bool:
        return channel in self.channels

    @abstractmethod
    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        """Mask of ``idx`` that this rule forbids contacting on ``channel`` at time ``t``."""

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        """``blocks`` for one borrower. Built-in rules override it with scalar code (an
        agent's dial checks one account); the default defers to ``blocks``."""
        return bool(self.blocks(ctx, np.array([i], dtype=np.int64), channel, t)[0])

    def describe(self) -> str:
        return self.name


class DoNotContact(Rule):
    name = "do_not_contact"

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        return ctx.book.observable.do_not_contact[idx]

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        return ctx.book.observable.do_not_contact.item(i)


class OptedOut(Rule):
    name = "opted_out"

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        return ctx.book.state.opted_out[idx, channel]

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        return ctx.book.state.opted_out.item(i, channel)


class Churned(Rule):
    """A customer who closed the relationship is not contacted again, when the scenario
    says so (``compliance.stop_after_churn``).

    By default it blocks nothing: churn loses the customer's future business, not the
    receivable, so in-house collection goes on. The rule stays in every pack either way,
    so that ``blocked_churned`` is a KPI of every run (0 when inactive).
    """

    name = "churned"

    def __init__(self, active: bool = False):
        self.active = active

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        if not self.active:
            return np.zeros(idx.size, dtype=bool)
        return ctx.book.state.churned[idx]

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        return self.active and ctx.book.state.churned.item(i)

    def describe(self) -> str:
        return self.name if self.active else f"{self.name} (inactive: contact continues)"


class ChargedOff(Rule):
    """Charge-off ends in-house contact."""

    name = "charged_off"

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        return ctx.book.state.status[idx] == CHARGED_OFF

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        return ctx.book.state.status.item(i) == CHARGED_OFF


class QuietHours(Rule):
    """No contact from ``start`` to ``end`` o'clock (may wrap midnight)."""

    def __init__(self, start: float, end: float, channels: Sequence[int] = ALL_CHANNELS,
                 consent_exempt: bool = False, name: str = "quiet_hours"):
        self.start, self.end = start, end
        self.channels = tuple(channels)
        self.consent_exempt = consent_exempt
        self.name = name

    def quiet(self, hour: float) -> bool:
        if self.start <= self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        hour = float(hour_of(t))
        if not self.quiet(hour):
            return np.zeros(idx.size, dtype=bool)
        if self.consent_exempt:
            return ~ctx.book.observable.consent_quiet_hours[idx]
        return np.ones(idx.size, dtype=bool)

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        if not self.quiet(hour_one(t)):
            return False
        return not (self.consent_exempt and ctx.book.observable.consent_quiet_hours.item(i))


class DailyCap(Rule):
    """At most ``limit`` contacts of a kind per borrower per calendar day.

    ``kind`` is ``connected_calls`` or ``unanswered_calls`` (attempts minus connected).
    """

    def __init__(self, kind: str, limit: int, channels: Sequence[int] = CALLS, name: str = ""):
        if kind not in ("connected_calls", "unanswered_calls", "call_attempts", "contacts"):
            raise ValueError(f"unknown count kind {kind}")
        self.kind, self.limit = kind, limit
        self.channels = tuple(channels)
        self.name = name or f"daily_{kind}_cap"

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        day = int(np.floor(t))
        if self.kind == "unanswered_calls":
            n = (ctx.log.count("call_attempts", idx, day, 1)
                 - ctx.log.count("connected_calls", idx, day, 1))
        else:
            n = ctx.log.count(self.kind, idx, day, 1)
        return n >= self.limit

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        day = math.floor(t)
        if self.kind == "unanswered_calls":
            n = (ctx.log.count_one("call_attempts", i, day, 1)
                 - ctx.log.count_one("connected_calls", i, day, 1))
        else:
            n = ctx.log.count_one(self.kind, i, day, 1)
        return n >= self.limit


class RollingCap(Rule):
    """At most ``limit`` contacts of a kind in any ``days`` consecutive days."""

    def __init__(self, kind: str, days: int, limit: int, channels: Sequence[int] = ALL_CHANNELS,
                 name: str = ""):
        self.kind, self.window_days, self.limit = kind, days, limit
        self.channels = tuple(channels)
        self.name = name or f"{kind}_per_{days}_days"

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        day = int(np.floor(t))
        return ctx.log.count(self.kind, idx, day, self.window_days) >= self.limit

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        return ctx.log.count_one(self.kind, i, math.floor(t), self.window_days) >= self.limit


class ConversationCooldown(Rule):
    """No call for ``days`` after a telephone conversation with the borrower."""

    def __init__(self, days: float, channels: Sequence[int] = CALLS,
                 name: str = "after_conversation"):
        self.days = days
        self.window_days = 1
        self.channels = tuple(channels)
        self.name = name

    def blocks(self, ctx: Context, idx: I64, channel: int, t: float) -> BOOL:
        return (t - ctx.log.last_conversation[idx]) < self.days

    def blocks_one(self, ctx: Context, i: int, channel: int, t: float) -> bool:
        return t - ctx.log.last_conversation.item(i) < self.days
