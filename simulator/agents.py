"""The agent pool: agents on shifts pulling calls from a priority queue (SimPy).

Each agent is one SimPy process that, while on shift, takes the most urgent queued call
and spends the time the call takes. An idle agent waits on a shared "work arrived"
event or its shift end, so the event count follows calls made, not calls requested,
and no abandoned timeouts pile up in the heap.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy


@dataclass(frozen=True)
class ShiftPlan:
    """``agents`` agents work from ``start`` to ``end`` hours on the listed weekdays."""

    start: float
    end: float
    agents: int
    work_days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)


@dataclass
class PoolStats:
    """What the pool did: calls served, waiting, agent time; and day by day (lists indexed
    by day: agent-days staffed and busy by the day they fall on, calls made by the day of
    their dial, calls queued, dropped and taken in time by the day they were queued)."""

    served: int = 0
    waited: int = 0  # calls that did not start the moment they were queued
    total_wait: float = 0.0  # days
    busy_time: float = 0.0  # agent-days spent on calls
    staffed_time: float = 0.0  # agent-days on shift
    dropped: int = 0
    staffed_by_day: list[float] = field(default_factory=list)
    busy_by_day: list[float] = field(default_factory=list)
    made_by_day: list[int] = field(default_factory=list)
    queued_by_day: list[int] = field(default_factory=list)
    dropped_by_day: list[int] = field(default_factory=list)
    # Taken off the queue by an agent (dialled, or found paid or blocked at the dial)
    # before the decision epoch after the one that queued it.
    in_time_by_day: list[int] = field(default_factory=list)


class AgentPool:
    """Agents on shifts serving a priority queue of calls.

    ``serve(item, now)`` performs the call and returns how long the agent is busy, in
    days (zero for a call that turned out not to be needed). Lower ``priority`` is
    served first; equal priorities in the order queued.
    """

    def __init__(self, env: simpy.Environment, shifts: Sequence[ShiftPlan], horizon: float,
                 serve: Callable[[Any, float], float], epoch_days: float = 1.0):
        self.env = env
        self.shifts = list(shifts)
        self.horizon = horizon
        self.serve = serve
        self.epoch_days = epoch_days  # a call is in time before the next epoch
        days = max(math.ceil(horizon), 1) + 1
        self.stats = PoolStats(staffed_by_day=[0.0] * days, busy_by_day=[0.0] * days,
                               made_by_day=[0] * days, queued_by_day=[0] * days,
                               dropped_by_day=[0] * days, in_time_by_day=[0] * days)
        self._heap: list[tuple[float, int, float, Any]] = []
        self._seq = 0
        self._work: simpy.Event = env.event()

    def __len__(self) -> int:
        return len(self._heap)

    def start(self) -> None:
        """Start one process per agent per shift."""
        for plan in self.shifts:
            for _ in range(plan.agents):
                self.env.process(self._agent(plan))

    def enqueue(self, item: Any, priority: float = 0.0) -> None:
        """Queue a call now."""
        self.enqueue_many([item], [priority])

    def enqueue_many(self, items: Sequence[Any], priorities: Sequence[float]) -> None:
        """Queue calls now, in the order given (which breaks ties of priority)."""
        now, seq = self.env.now, self._seq
        entries = [(p, seq + k, now, item)
                   for k, (p, item) in enumerate(zip(priorities, items, strict=True))]
        self._seq += len(entries)
        if not entries:
            return
        self.stats.queued_by_day[math.floor(now)] += len(entries)
        # Entries are totally ordered by (priority, seq), so the calls come off the queue
        # in the same order however the heap was built; heapify is the cheaper build.
        if len(entries) > len(self._heap):
            self._heap.extend(entries)
            heapq.heapify(self._heap)
        else:
            for entry in entries:
                heapq.heappush(self._heap, entry)
        if not self._work.triggered:
            self._work.succeed()

    def drain(self) -> list[Any]:
        """Remove and return every queued call (in priority order)."""
        entries = sorted(self._heap)
        self._heap.clear()
        self.stats.dropped += len(entries)
        dropped = self.stats.dropped_by_day
        for entry in entries:
            dropped[math.floor(entry[2])] += 1
        return [entry[3] for entry in entries]

    def _next_work(self) -> simpy.Event:
        if self._work.triggered:
            self._work = self.env.event()
        return self._work

    @staticmethod
    def _next_start(plan: ShiftPlan, day: int) -> float:
        """Start of the plan's next shift after the one on ``day``."""
        for later in range(day + 1, day + 8):
            if later % 7 in plan.work_days:
                return later + plan.start / 24.0
        return float("inf")

    def _agent(self, plan: ShiftPlan) -> Generator[simpy.Event, Any, None]:
        # Locals for what the per-call loop touches: it runs once per call made.
        env, heap, serve, stats = self.env, self._heap, self.serve, self.stats
        staffed_by_day, busy_by_day = stats.staffed_by_day, stats.busy_by_day
        made_by_day, in_time_by_day = stats.made_by_day, stats.in_time_by_day
        every = self.epoch_days
        day = int(env.now)
        while True:
            start, end = day + plan.start / 24.0, min(day + plan.end / 24.0, self.horizon)
            if start >= self.horizon:
                return
            if day % 7 in plan.work_days:
                if env.now < start:
                    yield env.timeout(start - env.now)
                stats.staffed_time += end - start
                staffed_by_day[day] += end - start
                # Zero when a long call outlasted this whole shift (a negative delay raises).
                delay = max(end - env.now, 0.0)
                shift_over = env.timeout(delay)
                # The time SimPy reaches when shift_over fires, to the last bit: ``start +
                # (end - start)`` can fall one ulp short of ``end`` (8:00-20:00 on day 0
                # does), and an idle agent would then re-wait on the spent timeout forever.
                end = env.now + delay
                next_start = self._next_start(plan, day)
                while (now := env.now) < end:
                    if not heap:
                        yield self._next_work() | shift_over
                        continue
                    _, _, queued_at, item = heapq.heappop(heap)
                    busy = serve(item, now)
                    if now < (math.floor(queued_at / every) + 1) * every:
                        in_time_by_day[math.floor(queued_at)] += 1
                    if busy > 0:
                        # A call running past the shift end is overtime, staffed too, up to
                        # where the agent's next shift would begin anyway.
                        overtime = min(now + busy, next_start) - end
                        if overtime > 0:  # adding a zero would change nothing
                            stats.staffed_time += overtime
                            staffed_by_day[day] += overtime
                        day_now = math.floor(now)
                        busy_by_day[day_now] += busy
                        made_by_day[day_now] += 1
                        wait = now - queued_at
                        stats.total_wait += wait
                        stats.waited += wait > 0
                        stats.served += 1
                        stats.busy_time += busy
                        yield env.timeout(busy)
            day += 1
