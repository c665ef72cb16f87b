"""One run: ``run(scenario, strategy, seed) -> Results``, a pure function of its inputs.

SimPy drives what is truly event-driven: decision epochs, the release of requests at
their hour, and agents working through the call queue on their shifts. Borrowers'
repayment lives are advanced exactly and lazily (``simulator.repayment``) whenever the
engine touches them, so no borrower needs a heap entry or daily polling.
"""

from __future__ import annotations

import gc
import math
import signal
import threading
import time
from collections.abc import Callable, Collection, Generator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import simpy

from simulator.agents import AgentPool, ShiftPlan
from simulator.billing import BilledRepayment
from simulator.book import (
    AGENT_CALL,
    CALLS,
    CHARGED_OFF,
    CURED,
    CURRENT,
    DELINQUENT,
    I64,
    LIVING_STATUS_NAMES,
    PAID_ON_TIME,
    PRE_DUE,
    STATUS_NAMES,
    Book,
    Plan,
    bucket_of_dpd,
)
from simulator.compliance import ContactLog, Context, RulePack
from simulator.compliance.audit import audit_contacts
from simulator.errors import StrategyError
from simulator.kpis import KPI_EVENTS, MonthEnds, RunFacts, compute_kpis
from simulator.living_kpis import compute_living_kpis, payments_in_window, wasted_by_account
from simulator.memory import release_free_memory
from simulator.population import generate_book, initial_state
from simulator.recorder import Event, Recorder, SpilledEvents, no_events
from simulator.repayment import RepaymentProcess
from simulator.response import ContactOutcome, ContactResponse
from simulator.rng import Streams
from simulator.scenario import CHANNELS, SEGMENTS, Scenario, StrategySpec
from simulator.strategies import Strategy, build_strategy
from simulator.strategies.requests import Requests, validate_requests
from simulator.view import ALL_COLUMNS, build_view


class _StrategyTimeout(BaseException):
    """Raised inside a strategy call that ran out of time.

    A BaseException, so that strategy code catching ``Exception`` cannot swallow it.
    """


#: A hook around every call of a strategy's code: ``watch(day, what)`` returns a context
#: manager entered just before the call and left just after it (``what`` is the call as
#: errors name it: ``"decide()"``, ``"its constructor"``). The experiments layer uses it
#: to put a deadline on each call from outside the process (``supervised.py``); the
#: model knows nothing of processes.
StrategyWatch = Callable[[int, str], AbstractContextManager[object]]

#: The ``method`` of ``call_strategy`` for building the strategy (module and constructor).
CONSTRUCTOR = "__init__"


def call_strategy(source: str, limit: float, day: int, method: str, call: Callable[..., Any],
                  *args: Any, watch: StrategyWatch | None = None) -> Any:
    """Call strategy code under the time limit; any failure is a StrategyError naming
    ``source``, the day and the call.

    Every exception is caught, ``SystemExit`` and other ``BaseException`` subclasses
    too: a plug-in's ``sys.exit()`` must fail the run with a message, not end the process
    (or a sweep worker) silently. ``KeyboardInterrupt`` alone goes through: in
    contactsim's own process it is the user's Ctrl-C (a supervised child, which no
    terminal interrupts, names the strategy for it). The limit is a real-time timer, so
    it works in a process's main thread only, and strategy code that swallows the
    timeout or ignores the signal escapes it: a supervised run also has a deadline
    enforced from outside (``watch``).
    """
    what = "its constructor" if method == CONSTRUCTOR else f"{method}()"
    timed = threading.current_thread() is threading.main_thread()
    running = True

    def expire(signum: int, frame: object) -> None:
        if running:  # a late signal, once the call is over, is ignored
            raise _StrategyTimeout

    # The watch is entered before the timer starts and left after it stops, so that no
    # timeout interrupts the watch itself.
    with watch(day, what) if watch is not None else nullcontext():
        previous: Any = None
        try:
            if timed:  # a real-time timer works only in a main thread (CLI, process pool)
                previous = signal.signal(signal.SIGALRM, expire)
                # The interval re-fires the timeout should the strategy swallow the first.
                signal.setitimer(signal.ITIMER_REAL, limit, max(limit, 0.05))
            result = call(*args)
            running = False
            return result
        except _StrategyTimeout:
            running = False
            raise StrategyError(f"on day {day}: {what} took longer than {limit:g} s "
                                "(decision.timeout_seconds)", source=source) from None
        except StrategyError as exc:
            running = False
            if exc.source is None:  # raised by strategy code (an arm of a composite)
                detail = exc.detail if exc.detail.startswith("on day ") else (
                    f"on day {day}: {exc.detail}")
                raise StrategyError(detail, source=source, field=exc.field) from None
            raise
        except KeyboardInterrupt:
            running = False
            raise
        except BaseException as exc:
            running = False
            raise StrategyError(f"on day {day}: {what} raised {type(exc).__name__}: "
                                f"{exc}", source=source) from exc
        finally:
            running = False
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                if previous is not None:
                    signal.signal(signal.SIGALRM, previous)


DAILY_STATES = ("M0", "M1", "M2", "M3", "M4", "paid_on_time", "cured", "charged_off")
#: ``DAILY_STATES`` index of each account status; a delinquent account's comes from its bucket.
_DAILY_STATE_OF_STATUS = np.zeros(len(LIVING_STATUS_NAMES), dtype=np.intp)
_DAILY_STATE_OF_STATUS[[PRE_DUE, PAID_ON_TIME, CURED, CHARGED_OFF, CURRENT]] = [0, 5, 6, 7, 0]

#: Columns of the accounts frame of a living book only (after the columns of every run).
LIVING_ACCOUNT_COLUMNS = (
    "opened", "first_due_day", "statements", "statements_billed", "statements_due",
    "statements_missed", "missed_payments", "amount_past_due_end", "late_fees",
    "delinquencies", "episodes", "cures", "amount_delinquent_counted", "collected_counted",
    "amount_delinquent_counted_30", "collected_counted_30", "balance_start_counted",
    "t_cured_from_30", "wasted_contacts")


@dataclass
class Results:
    """Everything one run produced."""

    strategy: str
    replication: int
    seed: int
    kpis: dict[str, float]
    events: pd.DataFrame
    daily: pd.DataFrame
    accounts: pd.DataFrame
    wall_seconds: float = 0.0
    #: Day by day: the agents' staffed and busy hours, utilisation and calls.
    agents_daily: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: A run asked to spill its event log (``run(spill_events=...)``): the log, in its
    #: file; ``events`` is then empty.
    event_log: SpilledEvents | None = None


def agents_per_shift(count: int, fractions: list[float]) -> list[int]:
    """Whole agents per shift, ``count * fraction`` each, rounded by largest remainder so
    that the total is ``round(count * sum(fractions))`` (one agent on two half shifts
    works the first, not neither)."""
    raw = [count * f for f in fractions]
    heads = [math.floor(x) for x in raw]
    missing = round(sum(raw)) - sum(heads)
    order = sorted(range(len(raw)), key=lambda k: (-(raw[k] - heads[k]), k))
    for k in order[:max(missing, 0)]:
        heads[k] += 1
    return heads


def make_repayment(book: Book, scenario: Scenario, streams: Streams,
                   recorder: Recorder) -> RepaymentProcess:
    """The repayment process of ``book``: monthly statements in a living book."""
    if book.plan is not None:
        return BilledRepayment(book, scenario, streams, recorder)
    return RepaymentProcess(book, scenario, streams, recorder)


#: Accounts whose no-contact twin is run at a time (``no_contact_paid_times``).
TWIN_ACCOUNTS_AT_A_TIME = 1 << 17


def twin_width(plan: Plan, horizon: float) -> int:
    """Statements of the plan issued by the horizon, at most, over the accounts."""
    first = plan.first_due + 1.0 - plan.lead
    issued = np.floor((horizon - first) / plan.cycle) + 1
    return int(max(np.minimum(issued, plan.statements).max(initial=0), 1))


def no_contact_paid_times(book: Book, scenario: Scenario, streams: Streams) -> np.ndarray:
    """When each account of a freshly drawn ``book`` pays in full (inf if never) in its
    no-contact twin; the book is back at its initial state afterwards. In a living book:
    when each statement is paid in full, ``(accounts, statements)``, statement ``k`` of
    an account in column ``k``.

    Same borrowers, same per-borrower random streams: the twin is the account's own
    counterfactual under common random numbers. It runs on the run's own book (its
    draws are keyed by borrower and counter, not by order), so no second book is drawn.
    """
    process = make_repayment(book, scenario, streams, Recorder(enabled=False))
    if isinstance(process, BilledRepayment) and book.plan is not None:
        process.record_paid_times(twin_width(book.plan, scenario.horizon_days))
    process.start()
    # A slice of the book at a time: no contact ties one account to another, so each
    # account's events are the same whichever accounts share its batch, and the
    # batch's temporaries stay small (the whole book at once added about half the
    # book's own size to a large run's peak).
    horizon = scenario.horizon_days
    for start in range(0, book.n, TWIN_ACCOUNTS_AT_A_TIME):
        process.advance_due(horizon, slice(start, start + TWIN_ACCOUNTS_AT_A_TIME))
    if book.state.bills is not None and book.state.bills.paid_at is not None:
        paid: np.ndarray = book.state.bills.paid_at
    else:
        paid = book.state.t_paid.copy()
    # The twin's state goes before the run's is made: two states at once were a large
    # run's peak.
    del process, book.state
    book.state = initial_state(book.observable, book.plan, scenario.repayment.late_fee)
    return paid


def twin_file(spill_events: Path) -> Path:
    """Where a streaming run keeps its no-contact twin's paid times during its loop: the
    spill file's name with ``_twin`` before its suffix, beside it."""
    return spill_events.with_name(f"{spill_events.stem}_twin{spill_events.suffix or '.npy'}")


class Simulation:
    """The state of one run while it runs."""

    def __init__(self, scenario: Scenario, spec: StrategySpec, seed: int, replication: int = 0,
                 base_dir: Path | None = None, watch: StrategyWatch | None = None,
                 spill_events: Path | None = None):
        self.scenario = scenario
        self.spec = spec
        self.seed = seed
        self.replication = replication
        self.horizon = scenario.horizon_days
        self.watch = watch
        self._started = time.perf_counter()
        streams = Streams(seed)
        self.strategy: Strategy = self._call_strategy(
            0, CONSTRUCTOR, build_strategy, spec, streams.generator("strategy"), base_dir)
        self.book: Book = generate_book(scenario, streams)
        self.twin_paid_time = (None if spec.use == "no_contact"
                               else no_contact_paid_times(self.book, scenario, streams))
        # A streaming run keeps the twin's times (a float per statement of every account)
        # on disk while its loop runs: nothing reads them before the KPIs.
        self._twin_file = (twin_file(spill_events) if spill_events is not None
                           and self.twin_paid_time is not None else None)
        if self._twin_file is not None and self.twin_paid_time is not None:
            with self._twin_file.open("wb") as f:
                np.save(f, self.twin_paid_time, allow_pickle=False)
            self.twin_paid_time = None
        release_free_memory()  # the twin's temporaries
        # The plan's balance (a late fee, even one charged before day 0, comes on top).
        self.balance0 = self.book.observable.balance.copy()
        self.recorder = Recorder(spill=spill_events)
        self.repayment = make_repayment(self.book, scenario, streams, self.recorder)
        self.living = self.book.plan is not None
        self.warmup = scenario.metrics.warmup_days
        self.response = ContactResponse(self.book, scenario, streams, self.repayment,
                                        self.recorder)
        self.stop_after_churn = scenario.compliance.stop_after_churn
        self.pack = RulePack.named(scenario.compliance.pack, self.stop_after_churn)
        self.log = ContactLog(self.book.n, self.pack.window_days)
        self.ctx = Context(self.book, self.log)
        self.env = simpy.Environment()
        ag = scenario.agents
        heads = agents_per_shift(ag.count, [s.fraction for s in ag.shifts])
        shifts = [ShiftPlan(s.start, s.end, k, ag.work_days)
                  for s, k in zip(ag.shifts, heads, strict=True)]
        self.pool = AgentPool(self.env, shifts, self.horizon, self._serve_call,
                              epoch_days=scenario.decision.every_days)
        self.channel_enabled = [scenario.channels.get(c).enabled for c in CHANNELS]
        self.queued = np.zeros(self.book.n, dtype=bool)
        # Agent calls dialled but whose effects on the borrower are not yet applied.
        self._dialled = np.zeros(self.book.n, dtype=bool)
        self._calls: list[tuple[int, float, bool, bool, float]] = []
        self._calls_day = -1
        self._call_blocks: list[tuple[int, float, int]] = []
        self._call_skips: list[tuple[int, float]] = []
        # Accounts queued for a call (a superset: some may have been dialled since).
        self._waiting = np.empty(0, dtype=np.int64)
        self.requests = 0
        self.requests_after_warmup = 0
        self.blocked = np.zeros(len(self.pack.rules), dtype=np.int64)
        # Month-ends of a living book (the roll rates): from the end of the warm-up.
        month = scenario.metrics.month_days
        count = math.floor((self.horizon - self.warmup) / month + 1e-9) + 1
        self.month_end_times = [self.warmup + k * month for k in range(count)] \
            if self.living else []
        self.month_ends = MonthEnds()
        # A living book lists its accounts by the day they open (the book of day 0 first,
        # then the inflow), so those opened by a day are the first ones.
        opened = self.book.plan.opened if self.book.plan is not None else None
        self._opened_in_order = opened is not None and bool(np.all(opened[1:] >= opened[:-1]))
        self._month_prev: tuple[np.ndarray, np.ndarray] | None = None
        self.daily_rows: list[np.ndarray] = []
        self._paid_before_start: float | None = None
        self._learn_mark = 0
        self._wants_outcomes = type(self.strategy).learn is not Strategy.learn
        self.view_columns = self._view_columns()

    # ------------------------------------------------------------------ run

    def run(self) -> Results:
        gc_was_enabled = gc.isenabled()
        gc.disable()  # the run allocates few cycles; collection passes only cost time
        try:
            self.repayment.start()
            self.repayment.advance_due(0.0)
            self.pool.start()
            self.env.process(self._decisions())
            if self.month_end_times:
                self.env.process(self._month_end_process())
            self.env.run(until=self.horizon)
            self._apply_calls()
            self.repayment.advance_due(self.horizon)
            for t in self.month_end_times:
                if t >= self.horizon:  # a month-end at the horizon itself
                    self._month_end(t)
        finally:
            if gc_was_enabled:
                gc.enable()
        release_free_memory()  # the event loop's temporaries, before the result frames
        log: SpilledEvents | None = None
        window: tuple[np.ndarray, np.ndarray] | None = None
        if self.recorder.spilling:
            # A streaming run keeps as little as it can: what only the loop used goes,
            # and the KPIs and the audit read a few kinds of event only (the dropped
            # calls and the like stay in the file).
            self._release_loop()
            log = self.recorder.spilled()
            if self.living:  # the payments' sums in the window are all a living book needs
                window = payments_in_window(log.frames(["payment"]), self.warmup, self.horizon)
                events = log.frame([k for k in KPI_EVENTS if k != "payment"])
            else:
                events = log.frame(KPI_EVENTS)
        else:
            events = self.recorder.frame(release=True)
        twin = self.twin_paid_time
        if self._twin_file is not None:
            twin = np.load(self._twin_file, allow_pickle=False)
            self._twin_file.unlink()
        violations = audit_contacts(events, self.book, self.scenario.compliance.pack,
                                    self.stop_after_churn)
        release_free_memory()  # the audit's temporaries
        facts = RunFacts(
            scenario=self.scenario, book=self.book, events=events, pool=self.pool.stats,
            requests=self.requests,
            blocked_by_rule=dict(zip(self.pack.rule_names, self.blocked.tolist(), strict=True)),
            violations=violations, twin_paid_time=twin, balance0=self.balance0,
            requests_after_warmup=self.requests_after_warmup, month_ends=self.month_ends,
            payments_in_window=window,
        )
        kpis = compute_living_kpis(facts) if self.living else compute_kpis(facts)
        wasted = wasted_by_account(facts) if self.living else None
        if log is not None:  # the frame of the KPIs' events is done with
            events = facts.events = no_events()
            release_free_memory()
        accounts = self._accounts_frame(twin, facts, wasted)
        return Results(
            strategy=self.spec.name, replication=self.replication, seed=self.seed,
            kpis=kpis, events=events, daily=self._daily_frame(), accounts=accounts,
            wall_seconds=time.perf_counter() - self._started,
            agents_daily=self._agents_daily_frame(), event_log=log,
        )

    def _release_loop(self) -> None:
        """Drop what only the event loop used: the book's loop state, the contact log of
        the rule pack, the repayment and response processes' scratch."""
        self.book.release_loop_state()
        del self.log, self.ctx, self.response, self.repayment
        self.queued = self._dialled = self._waiting = np.empty(0, dtype=np.int64)
        release_free_memory()

    # ------------------------------------------------------------------ decisions

    def _decisions(self) -> Generator[simpy.Event, Any, None]:
        every = self.scenario.decision.every_days
        day = 0
        while day < self.horizon:
            self._apply_calls()
            self.repayment.advance_due(float(day))
            self._snapshot(day)
            if self.scenario.agents.unmade_calls == "drop":
                dropped = np.asarray(self.pool.drain(), dtype=np.int64)
                self.queued[dropped] = False
                self.response.forget_all_dials()  # the queue is empty now
                self.recorder.add(Event.CALL_DROPPED, float(day), dropped, channel=AGENT_CALL)
            if self._wants_outcomes:
                self._teach(day)
            if self.recorder.spilling:
                # Every event before now is in: the repayment events are processed up to
                # now and the calls dialled before it applied; what comes later happens
                # now or after.
                self.recorder.settle(float(day))
                self._learn_mark = self.recorder.mark()
            view = build_view(self.book, float(day), self.view_columns,
                              include_churned=not self.stop_after_churn)
            result = self._call_strategy(day, "decide", self.strategy.decide, day, view)
            requests = validate_requests(self.spec.name, day, result, view.index)
            self.requests += len(requests)
            if day >= self.warmup:
                self.requests_after_warmup += len(requests)
            if len(requests):
                self.env.process(self._dispatch(day, requests))
            yield self.env.timeout(every)
            day += every

    def _view_columns(self) -> frozenset[str] | None:
        """The view columns the strategy reads (None: all), checked once per run."""
        columns = self._call_strategy(0, "view_columns", self.strategy.view_columns)
        if columns is None:
            return None
        # A string is a collection too (of letters): refuse it rather than read "dpd"
        # as the columns d, p and d.
        names = (list(columns) if isinstance(columns, Collection)
                 and not isinstance(columns, str | bytes) else None)
        if names is None or not all(isinstance(c, str) for c in names):
            raise StrategyError(f"view_columns() must return None or a collection of column "
                                f"names, got {columns!r}",
                                source=f"strategy '{self.spec.name}'")
        unknown = sorted(set(names) - set(ALL_COLUMNS))
        if unknown:
            raise StrategyError(f"view_columns() names unknown column(s) "
                                f"{', '.join(unknown)}; the view has {', '.join(ALL_COLUMNS)}",
                                source=f"strategy '{self.spec.name}'")
        return frozenset(names)

    def _teach(self, day: int) -> None:
        """Hand the strategy the observable outcomes since the last epoch."""
        frame = self.recorder.frame(start=self._learn_mark)
        self._learn_mark = self.recorder.mark()
        observable = frame["event"].isin([
            "payment", "contact", "promise", "promise_kept", "promise_broken", "complaint",
            "opt_out", "churn", "blocked"])
        self._call_strategy(day, "learn", self.strategy.learn,
                            frame[observable].reset_index(drop=True))

    def _call_strategy(self, day: int, method: str, call: Callable[..., Any],
                       *args: Any) -> Any:
        """Call a strategy method under the time limit (``call_strategy``)."""
        return call_strategy(f"strategy '{self.spec.name}'",
                             self.scenario.decision.timeout_seconds, day, method, call, *args,
                             watch=self.watch)

    def _dispatch(self, day: int, req: Requests) -> Generator[simpy.Event, Any, None]:
        """Release the day's requests at their hours, in (time, channel, priority) order."""
        t_release = day + req.hour / 24.0
        order = np.lexsort((req.priority, req.channel, t_release))
        t_sorted, ch_sorted = t_release[order], req.channel[order]
        ids_sorted, prio_sorted = req.account_id[order], req.priority[order]
        cuts = np.flatnonzero(np.diff(t_sorted) != 0) + 1
        for group in np.split(np.arange(order.size), cuts):
            t = float(t_sorted[group[0]])
            if t >= self.horizon:
                return
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            for channel in np.unique(ch_sorted[group]):
                sel = group[ch_sorted[group] == channel]
                ids = ids_sorted[sel]
                if not self.channel_enabled[channel]:
                    continue
                if channel == AGENT_CALL:
                    # An account waits in the queue once (ids of one release are unique).
                    new = ~self.queued[ids]
                    fresh = ids[new]
                    waiting = self._waiting  # each queued account once: filter, then add
                    self._waiting = np.concatenate([waiting[self.queued[waiting]], fresh])
                    self.queued[fresh] = True
                    self.response.prepare_dials(fresh)
                    self.pool.enqueue_many(fresh.tolist(), prio_sorted[sel][new].tolist())
                else:
                    self._execute(ids, int(channel), t)

    # ------------------------------------------------------------------ contacts

    def _execute(self, ids: I64, channel: int, t: float) -> ContactOutcome | None:
        """Advance, screen by the rule pack and execute contacts on one channel at ``t``."""
        self._apply_calls()
        s = self.book.state
        self.repayment.advance(ids, t)
        owing = s.owed[ids] > 0
        if not owing.all():
            self.recorder.add(Event.SKIPPED_PAID, t, ids[~owing], channel=channel)
            ids = ids[owing]
        if ids.size == 0:
            return None
        verdict = self.pack.check(self.ctx, ids, channel, t)
        if verdict.blocked.size:
            np.add.at(self.blocked, verdict.rule, 1)
            self.recorder.add(Event.BLOCKED, t, verdict.blocked, channel=channel,
                              code=verdict.rule)
        if verdict.allowed.size == 0:
            return None
        out = self.response.contact(verdict.allowed, channel, t)
        connected = out.attended if channel in CALLS else np.zeros(out.idx.size, dtype=bool)
        self.log.record(out.idx, int(np.floor(t)), channel, out.delivered, connected, t)
        return out

    def _serve_call(self, account: int, now: float) -> float:
        """An agent dials ``account``: returns the agent's busy time in days.

        Everything the dial needs (is the debt still owed, may the call be made, is it
        answered, how long it takes) is read here for this one account; the call's
        effects on the borrower are queued and applied to many calls at once in
        ``_apply_calls``, before anything else reads those borrowers. Borrowers do not
        interact, so this gives the same results as applying each call at once.
        """
        i = account
        self.queued[i] = False
        day = math.floor(now)
        if self._dialled[i] or (self._calls and day != self._calls_day):
            self._apply_calls()
        if self.repayment.due_one(i, now):
            # Something happens to this borrower before the dial. Whatever is due by now
            # for the other waiting borrowers is processed in the same batch: one batch
            # costs what one borrower alone does, and each event is still processed at
            # its own time, before anything reads that borrower.
            # Not those dialled today whose call is not applied yet: its effects come first.
            waiting = self._waiting = self._waiting[self.queued[self._waiting]]
            self.repayment.advance(np.append(waiting[~self._dialled[waiting]], i), now)
        if self.book.state.owed[i] <= 0:
            self._call_skips.append((i, now))
            self.response.forget_dials((i,))
            return 0.0
        rule = self.pack.check_one(self.ctx, i, AGENT_CALL, now)
        if rule >= 0:
            self.blocked[rule] += 1
            self._call_blocks.append((i, now, rule))
            self.response.forget_dials((i,))
            return 0.0
        delivered, attended, minutes = self.response.dial(i, now)
        self._calls.append((i, now, delivered, attended, minutes))
        self._calls_day = day
        self._dialled[i] = True
        return minutes / 1440.0

    def _apply_calls(self) -> None:
        """Apply the effects of dialled agent calls, vectorised, at their own dial times."""
        if self._call_skips:
            ids, ts = zip(*self._call_skips, strict=True)
            self.recorder.add(Event.SKIPPED_PAID, np.array(ts), np.array(ids, dtype=np.int64),
                              channel=AGENT_CALL)
            self._call_skips.clear()
        if self._call_blocks:
            ids, ts, rules = zip(*self._call_blocks, strict=True)
            self.recorder.add(Event.BLOCKED, np.array(ts), np.array(ids, dtype=np.int64),
                              channel=AGENT_CALL, code=np.array(rules))
            self._call_blocks.clear()
        if not self._calls:
            return
        ids_, ts_, delivered_, attended_, minutes_ = zip(*self._calls, strict=True)
        self._calls.clear()
        idx = np.array(ids_, dtype=np.int64)
        t = np.array(ts_)
        delivered = np.array(delivered_, dtype=bool)
        attended = np.array(attended_, dtype=bool)
        self._dialled[idx] = False
        self.response.contact(idx, AGENT_CALL, t, (delivered, attended, np.array(minutes_)))
        self.log.record(idx, self._calls_day, AGENT_CALL, delivered, attended, t)

    # ------------------------------------------------------------------ month-ends

    def _month_end_process(self) -> Generator[simpy.Event, Any, None]:
        for t in self.month_end_times:
            if t >= self.horizon:
                return
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            self._apply_calls()
            self.repayment.advance_due(t)
            self._month_end(t)

    def _month_end(self, t: float) -> None:
        """Each account's days past due and balance at a month-end of a living book: what
        the month-on-month roll rates pair with the previous month-end's."""
        s, plan = self.book.state, self.book.plan
        bills = s.bills
        assert plan is not None and bills is not None
        opened = plan.opened <= t
        dpd = np.where(s.status == DELINQUENT, np.floor(t - bills.ref_due), 0.0)
        open_ = opened & ((s.status == DELINQUENT) | (s.status == PRE_DUE)
                          | (s.status == CURRENT))
        dpd = np.where(open_, dpd, -1.0)  # closed, charged off or not yet opened: out
        balance = s.balance.copy()
        if self._month_prev is None:
            self.month_ends.balance_at_start = float(balance[opened].sum())
            later = ~opened
            self.month_ends.opened_after = float(self.book.observable.balance[later].sum())
            self.month_ends.balance_start = np.where(opened, balance,
                                                     self.book.observable.balance)
        else:
            self.month_ends.add(*self._month_prev, dpd, balance)
        self._month_prev = (dpd, balance)

    # ------------------------------------------------------------------ outputs

    def _snapshot(self, day: int) -> None:
        """Accounts and amount owed per daily state (``DAILY_STATES``) at ``day``."""
        if self.living:
            self._living_snapshot(day)
            return
        s = self.book.state
        status = s.status
        # Paid accounts owe exactly 0 for good, so only the others are binned (in book
        # order, which keeps each state's sum of amounts the same to the last bit).
        owing = np.flatnonzero((status == PRE_DUE) | (status == DELINQUENT)
                               | (status == CHARGED_OFF))
        owing_status = status[owing]
        code = np.take(_DAILY_STATE_OF_STATUS, owing_status)
        late = np.flatnonzero(owing_status == DELINQUENT)
        dpd = np.floor(day - self.book.observable.due_day[owing[late]])
        code[late] = np.maximum(bucket_of_dpd(dpd), 1)  # a delinquent account's bucket
        counts = np.bincount(code, minlength=len(DAILY_STATES))
        counts[_DAILY_STATE_OF_STATUS[PAID_ON_TIME]] = np.count_nonzero(status == PAID_ON_TIME)
        counts[_DAILY_STATE_OF_STATUS[CURED]] = np.count_nonzero(status == CURED)
        owed = np.bincount(code, weights=s.owed[owing], minlength=len(DAILY_STATES))
        churned = int(s.churned.sum())
        if self._paid_before_start is None:  # every payment before day 0 is in by now
            self._paid_before_start = float(s.paid_before_start.sum())
        self.daily_rows.append(np.column_stack([
            np.full(len(DAILY_STATES), day), np.arange(len(DAILY_STATES)), counts, owed,
            np.full(len(DAILY_STATES), churned),
            np.full(len(DAILY_STATES), self._paid_before_start)]))

    def _living_snapshot(self, day: int) -> None:
        """``_snapshot`` of a living book: every account opened by ``day``; current and
        pre-due accounts are M0, delinquent ones in the bucket of their oldest unpaid due
        date, closed ones paid on time or cured by how their last statement was paid."""
        s, plan = self.book.state, self.book.plan
        assert plan is not None and s.bills is not None
        if self._opened_in_order:
            # The accounts opened by ``day`` are the first ones: slices of the book, in
            # the same order as the gathered rows (so every sum is the same to the bit),
            # without gathering millions of rows each day.
            opened: slice | np.ndarray = slice(0, int(np.searchsorted(plan.opened, day,
                                                                      side="right")))
        else:
            opened = np.flatnonzero(plan.opened <= day)
        status = s.status[opened]
        code = np.take(_DAILY_STATE_OF_STATUS, status)
        late = np.flatnonzero(status == DELINQUENT)
        rows = late if isinstance(opened, slice) else opened[late]
        dpd = np.floor(day - s.bills.ref_due[rows])
        code[late] = np.maximum(bucket_of_dpd(dpd), 1)
        counts = np.bincount(code, minlength=len(DAILY_STATES))
        owed = np.bincount(code, weights=s.owed[opened], minlength=len(DAILY_STATES))
        if self._paid_before_start is None:
            self._paid_before_start = float(s.paid_before_start.sum())
        self.daily_rows.append(np.column_stack([
            np.full(len(DAILY_STATES), day), np.arange(len(DAILY_STATES)), counts, owed,
            np.full(len(DAILY_STATES), int(s.churned.sum())),
            np.full(len(DAILY_STATES), self._paid_before_start)]))

    def _agents_daily_frame(self) -> pd.DataFrame:
        """Day by day: agent hours staffed and busy, utilisation, and agent calls queued,
        made, dropped and taken in time (the service level) by the day they were queued."""
        st = self.pool.stats
        days = math.ceil(self.horizon)
        staffed = np.array(st.staffed_by_day[:days]) * 24.0
        busy = np.array(st.busy_by_day[:days]) * 24.0
        queued = np.array(st.queued_by_day[:days], dtype=np.int64)
        in_time = np.array(st.in_time_by_day[:days], dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            utilisation = np.where(staffed > 0, busy / staffed, np.nan)
            service = np.where(queued > 0, in_time / queued, np.nan)
        return pd.DataFrame({
            "day": np.arange(days, dtype=np.int64),
            "staffed_hours": staffed,
            "busy_hours": busy,
            "utilisation": utilisation,
            "calls_queued": queued,
            "calls_made": np.array(st.made_by_day[:days], dtype=np.int64),
            "calls_dropped": np.array(st.dropped_by_day[:days], dtype=np.int64),
            "service_level": service,
        })

    def _daily_frame(self) -> pd.DataFrame:
        arr = np.vstack(self.daily_rows) if self.daily_rows else np.empty((0, 6))
        df = pd.DataFrame({
            "day": arr[:, 0].astype(np.int64),
            "state": pd.Categorical.from_codes(arr[:, 1].astype(int), DAILY_STATES),
            "accounts": arr[:, 2].astype(np.int64),
            "amount_owed": arr[:, 3],
            "churned_to_date": arr[:, 4].astype(np.int64),
            # Paid before day 0 (the same on every row of a run), kept out of every money
            # KPI: the horizon's money starts at day 0.
            "paid_before_start": arr[:, 5],
        })
        return df

    def _accounts_frame(self, twin: np.ndarray | None, facts: RunFacts,
                        wasted: np.ndarray | None) -> pd.DataFrame:
        b, s, o = self.book, self.book.state, self.book.observable
        data: dict[str, Any] = {
            "account_id": np.arange(b.n, dtype=np.int64),
            "segment": pd.Categorical.from_codes(b.latent.segment, SEGMENTS),
            "score": o.score,
            "due_day": o.due_day.astype(np.int64),
            "amount_due": o.amount_due,
            "balance_start": self.balance0,
            "final_state": pd.Categorical.from_codes(
                s.status, LIVING_STATUS_NAMES if self.living else STATUS_NAMES),
            "amount_delinquent": s.amount_delinquent,
            "owed_end": s.owed,
            "balance_end": s.balance,
            "paid_in_house": s.paid_in_house,
            "paid_delinquent": s.paid_delinquent,
            "agency_collected": s.agency_collected,
            "written_off": s.written_off,
            "paid_before_start": s.paid_before_start,
            "t_delinquent": s.t_delinquent,
            "t_paid": s.t_paid,
            "t_charged_off": s.t_charged_off,
            "churned": s.churned,
            "t_churn": s.t_churn,
            "complaints": s.complaints,
            "promises_made": s.promises_made,
            "promises_broken": s.promises_broken,
            "clv": b.latent.clv,
        }
        for c, name in enumerate(CHANNELS):
            data[f"contacts_{name}"] = s.contacts[:, c]
        if self.living:
            data["twin_t_paid"] = self._twin_closed(twin)
            assert wasted is not None
            data.update(self._living_columns(facts, wasted))
        else:
            data["twin_t_paid"] = twin if twin is not None else s.t_paid.copy()
        arm_of = getattr(self.strategy, "arm_of", None)
        if callable(arm_of):  # a split portfolio (champion/challenger): each account's arm
            data["arm"] = np.asarray(arm_of(data["account_id"])).astype(str)
        # The book is final and is dropped with the simulation, so the frame may share its
        # arrays instead of holding a second copy of every column.
        return pd.DataFrame(data, copy=False)


    def _twin_closed(self, twin: np.ndarray | None) -> np.ndarray:
        """When the no-contact twin of each account of a living book paid its last
        statement (inf: not by the horizon)."""
        if twin is None:  # the no-contact arm is its own twin
            return self.book.state.t_paid.copy()
        plan = self.book.plan
        assert plan is not None
        last = plan.statements.astype(np.int64) - 1
        inside = last < twin.shape[1]
        out = np.full(self.book.n, np.inf)
        rows = np.flatnonzero(inside)
        out[rows] = twin[rows, last[rows]]
        return out

    def _living_columns(self, facts: RunFacts, wasted: np.ndarray) -> dict[str, Any]:
        """The accounts frame's columns of a living book (``LIVING_ACCOUNT_COLUMNS``);
        ``wasted``: each account's wasted contacts (``wasted_by_account``)."""
        s, plan, bills = self.book.state, self.book.plan, self.book.state.bills
        assert plan is not None and bills is not None
        a = self.book.observable.amount_due
        billed = bills.billed.astype(np.int64)
        oldest = bills.oldest.astype(np.int64)
        open_ = bills.missed < billed - oldest
        open_unpaid = np.where(open_, np.where(billed - 1 == oldest, bills.oldest_left, a), 0.0)
        house = (s.status == DELINQUENT) | (s.status == PRE_DUE)
        columns: dict[str, Any] = {
            "opened": plan.opened,
            "first_due_day": plan.first_due,
            "statements": plan.statements.astype(np.int64),
            "statements_billed": billed,
            "statements_due": bills.due_w.astype(np.int64),
            "statements_missed": bills.missed_w.astype(np.int64),
            "missed_payments": bills.missed.astype(np.int64),
            "amount_past_due_end": np.where(house, np.maximum(s.owed - open_unpaid, 0.0), 0.0),
            "late_fees": bills.fees,
            "delinquencies": bills.delinquencies.astype(np.int64),
            "episodes": bills.episodes_w.astype(np.int64),
            "cures": bills.cures_w.astype(np.int64),
            "amount_delinquent_counted": bills.amount_w,
            "collected_counted": bills.collected_w,
            "amount_delinquent_counted_30": bills.amount_n[:, 0].copy(),
            "collected_counted_30": bills.collected_n[:, 0].copy(),
            "balance_start_counted": facts.month_ends.balance_start
            if facts.month_ends is not None and facts.month_ends.balance_start is not None
            else np.full(self.book.n, np.nan),
            "t_cured_from_30": bills.t_cured_deep,
            "wasted_contacts": wasted,
        }
        assert tuple(columns) == LIVING_ACCOUNT_COLUMNS
        return columns


def run(scenario: Scenario, spec: StrategySpec | str, seed: int, replication: int = 0,
        base_dir: Path | None = None, watch: StrategyWatch | None = None,
        spill_events: Path | None = None) -> Results:
    """Run one strategy arm on one seed.

    ``base_dir`` resolves a relative ``file.py:Class`` reference (None: the working
    folder); ``watch`` is a hook around every call of the strategy's code (see
    ``StrategyWatch``). With ``spill_events`` (a file, overwritten) the event log is
    written to that file during the run instead of held in memory: the result's
    ``event_log`` is it, its ``events`` frame empty; every other output is the same.
    """
    if isinstance(spec, str):
        spec = StrategySpec(use=spec)
    return Simulation(scenario, spec, seed, replication, base_dir, watch, spill_events).run()
