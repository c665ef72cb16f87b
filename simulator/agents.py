"""The agent pool: agents on shifts pulling calls from a priority queue (SimPy).

Each agent is one SimPy process that, while on shift, takes the most urgent queued call
and spends the time the call takes. An idle agent waits on a shared "work arrived"
event or its shift end, so the event count follows calls made, not calls requested,
and no abandoned timeouts pile up in the heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
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
    """What the pool did: calls served, waiting, agent time."""

    served: int = 0
    waited: int = 0  # calls that did not start the moment they were queued
    total_wait: float = 0.0  # days
    busy_time: float = 0.0  # agent-days spent on calls
    staffed_time: float = 0.0  # agent-days on shift
    dropped: int = 0


class AgentPool:
    """Agents on shifts serving a priority queue of calls.

    ``serve(item, now)`` performs the call and returns how long the agent is busy, in
    days (zero for a call that turned out not to be needed). Lower ``priority`` is
    served first; equal priorities in the order queued.
    """

    def __init__(self, env: simpy.Environment, shifts: Sequence[ShiftPlan], horizon: float,
                 serve: Callable[[Any, float], float]):
        self.env = env
        self.shifts = list(shifts)
        self.horizon = horizon
        self.serve = serve
        self.stats = PoolStats()
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
        items = [entry[3] for entry in sorted(self._heap)]
        self._heap.clear()
        self.stats.dropped += len(items)
        return items

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
        day = int(env.now)
        while True:
            start, end = day + plan.start / 24.0, min(day + plan.end / 24.0, self.horizon)
            if start >= self.horizon:
                return
            if day % 7 in plan.work_days:
                if env.now < start:
                    yield env.timeout(start - env.now)
                stats.staffed_time += end - start
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
                    if busy > 0:
                        # A call running past the shift end is overtime, staffed too, up to
                        # where the agent's next shift would begin anyway.
                        overtime = min(now + busy, next_start) - end
                        if overtime > 0:  # adding a zero would change nothing
                            stats.staffed_time += overtime
                        wait = now - queued_at
                        stats.total_wait += wait
                        stats.waited += wait > 0
                        stats.served += 1
                        stats.busy_time += busy
                        yield env.timeout(busy)
            day += 1
