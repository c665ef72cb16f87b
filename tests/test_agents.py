"""Tests of ``simulator.agents.AgentPool``: queueing theory and shift discipline.

The pool is driven directly with SimPy: calls are items carrying their arrival time and
their own service time, so runs with different staffing see the same arrival stream and
the same work. Times are in days; an hour is 1/24.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import simpy

from simulator.agents import AgentPool, ShiftPlan

HOUR = 1.0 / 24.0


@dataclass(frozen=True)
class Call:
    """A call of the test stream: its index, arrival time and service time (days)."""

    k: int
    arrival: float
    service: float


@dataclass
class Trace:
    """What the pool did with each call: start of service, in order of service."""

    started: list[tuple[Call, float]]

    def waits(self, n: int) -> np.ndarray:
        """Waiting time per call, by arrival index (NaN for calls never served)."""
        w = np.full(n, np.nan)
        for call, t in self.started:
            w[call.k] = t - call.arrival
        return w


def _run(env: simpy.Environment, until: float, max_steps: int) -> None:
    """``env.run(until)`` with a step budget: a livelocked pool fails instead of hanging."""
    steps = 0
    while env.peek() < until:
        env.step()
        steps += 1
        if steps > max_steps:
            raise AssertionError(f"no progress: {steps} events by t={env.now}")


def _budget(calls: int, horizon: float, agents: int) -> int:
    # Each call costs a handful of events per agent woken; each shift a few per agent.
    return 50 * calls * max(agents, 1) + 100 * int(horizon + 1) * max(agents, 1) + 1000


def _simulate(calls: Sequence[Call], shifts: Sequence[ShiftPlan], horizon: float,
              priorities: Sequence[float] | None = None) -> tuple[AgentPool, Trace]:
    env = simpy.Environment()
    trace = Trace([])

    def serve(item: Call, now: float) -> float:
        trace.started.append((item, now))
        return item.service

    pool = AgentPool(env, shifts, horizon, serve)
    pool.start()

    def arrivals() -> Generator[simpy.Event, Any, None]:
        for i, call in enumerate(calls):
            if call.arrival > env.now:
                yield env.timeout(call.arrival - env.now)
            pool.enqueue(call, 0.0 if priorities is None else priorities[i])

    env.process(arrivals())
    _run(env, horizon, _budget(len(calls), horizon, sum(p.agents for p in shifts)))
    return pool, trace


def _poisson_calls(rate: float, mean_service: float, horizon: float, seed: int) -> list[Call]:
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * horizon)
    arrival = np.sort(rng.uniform(0.0, horizon, n))  # a Poisson process given its count
    service = rng.exponential(mean_service, n)
    return [Call(k, float(a), float(s)) for k, (a, s) in enumerate(zip(arrival, service,
                                                                       strict=True))]


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a = lambda / mu``."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


# ============================================================================ Erlang C

MINUTE = 1.0 / 1440.0


@pytest.mark.parametrize(
    ("agents", "load"),
    [(1, 0.7), (5, 4.0), (12, 10.0)],
    ids=["M/M/1", "M/M/5", "M/M/12"],
)
def test_round_the_clock_pool_matches_erlang_c(agents: int, load: float) -> None:
    # Poisson arrivals, exponential service of mean 6 minutes, ``agents`` agents on a
    # 0-24 h shift every day: an M/M/c FIFO queue. Erlang C gives P(wait > 0) and
    # E[W] = C / (c mu - lambda).
    #
    # Successive calls' waits are strongly autocorrelated (a busy spell delays many
    # calls), so the binomial SE would be too small. Batch means instead: drop a 2-day
    # warm-up, cut the next 100 days into 40 batches of 2.5 days (~1 000-2 400 calls
    # each, against a relaxation time of well under an hour of simulated time at these
    # loads), take the share that waited in each batch, and use SE = sd(batch means) /
    # sqrt(40). The batch means are then close to independent (checked: lag-1
    # autocorrelation of the batch means). Tolerance 3 SE; the SE must also be small
    # (< 0.015) so the test can fail for a pool that is off by a few points.
    mean_service = 6 * MINUTE
    mu = 1.0 / mean_service
    lam = load * mu
    warmup, batches, batch_days = 2.0, 40, 2.5
    horizon = warmup + batches * batch_days
    calls = _poisson_calls(lam, mean_service, horizon, seed=100 + agents)
    pool, trace = _simulate(calls, [ShiftPlan(0.0, 24.0, agents)], horizon + 1.0)
    waits = trace.waits(len(calls))
    arrival = np.array([c.arrival for c in calls])
    keep = (arrival >= warmup) & (arrival < horizon)
    assert np.isfinite(waits[keep]).all()  # every call in the window was served
    batch = ((arrival[keep] - warmup) // batch_days).astype(int)
    waited = waits[keep] > 0
    share = np.bincount(batch, weights=waited, minlength=batches) / np.bincount(batch)
    mean_wait = np.bincount(batch, weights=waits[keep], minlength=batches) / np.bincount(batch)

    c_pred = erlang_c(agents, load)
    se = share.std(ddof=1) / np.sqrt(batches)
    assert se < 0.015
    assert abs(share.mean() - c_pred) < 3 * se, (share.mean(), c_pred, se)

    w_pred = c_pred / (agents * mu - lam)
    se_w = mean_wait.std(ddof=1) / np.sqrt(batches)
    assert abs(mean_wait.mean() - w_pred) < 3 * se_w, (mean_wait.mean(), w_pred, se_w)

    lag1 = np.corrcoef(share[:-1], share[1:])[0, 1]
    assert abs(lag1) < 0.45  # ~2.8 SE of a lag-1 correlation of 40 independent values

    # The pool's own counters agree with the trace (all calls, warm-up included).
    served = np.isfinite(waits)
    assert pool.stats.served == served.sum()
    assert pool.stats.waited == (waits[served] > 0).sum()
    assert pool.stats.total_wait == pytest.approx(waits[served].sum(), rel=1e-9)
    assert pool.stats.busy_time == pytest.approx(
        sum(c.service for c in calls if np.isfinite(waits[c.k])), rel=1e-9)
    # Utilisation busy / staffed estimates rho = load / agents; staffed time covers the
    # whole horizon for every agent.
    assert pool.stats.staffed_time == pytest.approx(agents * (horizon + 1.0))


# ============================================================================ monotonicity


def test_more_agents_never_lengthen_any_wait() -> None:
    # FIFO multi-server queues are monotone path by path: with the same arrivals and the
    # same service time per call, adding a server never delays any call (Kiefer-Wolfowitz
    # workload vectors are ordered). So each call's wait, and the mean, must not grow.
    # 2 000 calls in one day against 240 calls a day per agent: from heavily overloaded
    # (1 agent needs ~8 days) to comfortably staffed (12 agents, rho ~ 0.7).
    calls = _poisson_calls(rate=2000.0, mean_service=6 * MINUTE, horizon=1.0, seed=1)
    previous: np.ndarray | None = None
    means = []
    for agents in range(1, 13):
        _, trace = _simulate(calls, [ShiftPlan(0.0, 24.0, agents)], horizon=20.0)
        w = trace.waits(len(calls))
        assert np.isfinite(w).all()
        if previous is not None:
            assert (w <= previous + 1e-12).all(), agents
        previous = w
        means.append(w.mean())
    assert means[0] > 10 * means[-1]  # the comparison is not vacuous: 1 agent is swamped


def test_more_agents_never_lengthen_the_mean_wait_on_real_shifts() -> None:
    # The engine's default floor: two 6-hour shifts, calls arriving at any hour (those
    # outside shifts wait for the next one), lognormal-ish service via exponential.
    calls = _poisson_calls(rate=150.0, mean_service=6 * MINUTE, horizon=20.0, seed=2)
    means = []
    for agents in (1, 2, 3, 4, 6, 8):
        shifts = [ShiftPlan(8.0, 14.0, agents), ShiftPlan(14.0, 20.0, agents)]
        _, trace = _simulate(calls, shifts, horizon=40.0)
        w = trace.waits(len(calls))
        assert np.isfinite(w).all()
        means.append(float(w.mean()))
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(means)), means


# ============================================================================ costs


def test_no_calls_cost_no_agent_time() -> None:
    env = simpy.Environment()
    pool = AgentPool(env, [ShiftPlan(8.0, 14.0, 3), ShiftPlan(14.0, 20.0, 2)], 10.0,
                     lambda item, now: 1.0)
    pool.start()
    _run(env, 10.0, _budget(0, 10.0, 5))
    assert pool.stats.busy_time == 0.0
    assert pool.stats.served == 0
    assert pool.stats.total_wait == 0.0
    # Staffing is paid whether or not calls come: (3 + 2) agents x 6 h x 10 days.
    assert pool.stats.staffed_time == pytest.approx(5 * 6 * HOUR * 10)


def test_calls_that_need_no_agent_time_cost_nothing() -> None:
    # ``serve`` returns 0 for a call that turned out unnecessary (e.g. paid meanwhile).
    calls = [Call(k, 0.3 + 0.01 * k, 0.0) for k in range(50)]
    pool, trace = _simulate(calls, [ShiftPlan(8.0, 20.0, 2)], horizon=3.0)
    assert len(trace.started) == 50  # each was looked at ...
    assert pool.stats.busy_time == 0.0  # ... but none cost agent time
    assert pool.stats.served == 0
    assert len(pool) == 0


def test_idle_agents_go_off_shift_for_every_whole_hour_shift() -> None:
    # Float rounding: ``d + s/24 + (d + e/24 - (d + s/24))`` is not always ``d + e/24``
    # (08:00-20:00 on day 0 falls one ulp short). An idle agent must still leave its
    # shift when the shift-end timeout fires, rather than re-wait on the spent timeout
    # at the same instant forever (which hung the engine for an 08:00-20:00 floor).
    for start in range(24):
        for end in range(start + 1, 25):
            env = simpy.Environment()
            pool = AgentPool(env, [ShiftPlan(float(start), float(end), 1)], 3.0,
                             lambda item, now: 0.0)
            pool.start()
            _run(env, 3.0, 1000)
            assert pool.stats.staffed_time == pytest.approx(3 * (end - start) * HOUR)


def test_staffed_time_is_clipped_at_the_horizon() -> None:
    env = simpy.Environment()
    pool = AgentPool(env, [ShiftPlan(8.0, 14.0, 2)], 9.5, lambda item, now: 0.0)
    pool.start()
    _run(env, 9.5, _budget(0, 9.5, 2))
    # Days 0-8 full (6 h), day 9 from 08:00 to 12:00 (the horizon).
    assert pool.stats.staffed_time == pytest.approx(2 * (9 * 6 + 4) * HOUR)


# ============================================================================ discipline


def test_calls_are_served_in_priority_order_fifo_on_ties() -> None:
    # Everything is queued at 00:00, before the 08:00 shift: one agent then takes them
    # strictly by (priority, order queued).
    priorities = [3.0, 1.0, 2.0, 1.0, 0.0, 3.0, 1.0, -1.0]
    calls = [Call(k, 0.0, 0.01 * HOUR) for k in range(len(priorities))]
    _, trace = _simulate(calls, [ShiftPlan(8.0, 20.0, 1)], 2.0, priorities)
    order = [call.k for call, _ in trace.started]
    expected = sorted(range(len(priorities)), key=lambda k: (priorities[k], k))
    assert order == expected
    # The agent does not start before its shift: the first call starts at 08:00 exactly.
    assert trace.started[0][1] == pytest.approx(8 * HOUR)


def test_urgent_call_jumps_the_queue_but_does_not_interrupt() -> None:
    # One agent busy on a 1-hour call; two routine calls queue, then an urgent one.
    calls = [Call(0, 9 * HOUR, 1 * HOUR), Call(1, 9.1 * HOUR, 0.1 * HOUR),
             Call(2, 9.2 * HOUR, 0.1 * HOUR), Call(3, 9.3 * HOUR, 0.1 * HOUR)]
    _, trace = _simulate(calls, [ShiftPlan(8.0, 20.0, 1)], 1.0, [5.0, 5.0, 5.0, 0.0])
    assert [c.k for c, _ in trace.started] == [0, 3, 1, 2]
    assert trace.started[1][1] == pytest.approx(10 * HOUR)  # after call 0, not before


def test_agents_never_start_a_call_outside_their_shift() -> None:
    # Calls arrive around the clock for two weeks; the floor works 08:00-14:00 and
    # 15:00-20:00 on weekdays only (day mod 7 in 0..4). Every call must start inside a
    # shift on a working day, and calls queued out of hours start when a shift opens.
    work = (0, 1, 2, 3, 4)
    shifts = [ShiftPlan(8.0, 14.0, 2, work), ShiftPlan(15.0, 20.0, 1, work)]
    calls = _poisson_calls(rate=60.0, mean_service=4 * MINUTE, horizon=14.0, seed=3)
    _, trace = _simulate(calls, shifts, horizon=21.0)
    assert len(trace.started) == len(calls)
    for call, t in trace.started:
        day = math.floor(t + 1e-12)
        hour = (t - day) * 24.0
        assert day % 7 in work, (call, t)
        assert 8.0 - 1e-9 <= hour < 20.0 and not (14.0 <= hour < 15.0), (call, t)
        assert t >= call.arrival
    # Calls queued out of hours start exactly at a shift opening (08:00 or 15:00 of a
    # working day) when they are the head of an empty floor's queue.
    first_after = {}
    for call, t in trace.started:
        if call.arrival < 8 * HOUR:  # queued in the night before day 0's first shift
            first_after[call.k] = t
    assert first_after and min(first_after.values()) == pytest.approx(8 * HOUR)
    # Weekend (days 5, 6) arrivals wait for Monday (day 7) at the earliest.
    weekend = [(c, t) for c, t in trace.started if 5.0 <= c.arrival < 7.0]
    assert weekend and all(t >= 7 + 8 * HOUR - 1e-12 for _, t in weekend)


def test_a_call_started_before_shift_end_is_finished_then_agent_stops() -> None:
    # The agent finishes a call that runs past the end of the shift, then takes no new
    # call until the next shift.
    calls = [Call(0, 13.9 * HOUR, 0.5 * HOUR), Call(1, 14.1 * HOUR, 0.1 * HOUR)]
    _, trace = _simulate(calls, [ShiftPlan(8.0, 14.0, 1)], 3.0)
    assert [c.k for c, _ in trace.started] == [0, 1]
    assert trace.started[1][1] == pytest.approx(1 + 8 * HOUR)


def test_a_call_longer_than_a_day_does_not_break_the_pool() -> None:
    # A very long call (a heavy-tailed handle-time distribution can produce one) keeps its
    # agent busy through later shifts; the agent then returns to work on the next shift.
    calls = [Call(0, 8 * HOUR, 2.5), Call(1, 9 * HOUR, 0.1 * HOUR)]
    pool, trace = _simulate(calls, [ShiftPlan(0.0, 24.0, 1)], 6.0)
    assert [c.k for c, _ in trace.started] == [0, 1]
    assert trace.started[1][1] == pytest.approx(8 * HOUR + 2.5)
    assert pool.stats.staffed_time == pytest.approx(6.0)  # shifts spent on the call count
    # 13:00 day 0 plus 2.1 days ends at 15:24 on day 2, after that day's 08:00-14:00 shift:
    # the next call waits for 08:00 on day 3.
    calls = [Call(0, 13 * HOUR, 2.1), Call(1, 13.5 * HOUR, 0.1 * HOUR)]
    pool, trace = _simulate(calls, [ShiftPlan(8.0, 14.0, 1)], 6.0)
    assert [c.k for c, _ in trace.started] == [0, 1]
    assert trace.started[1][1] == pytest.approx(3 + 8 * HOUR)


def test_drain_empties_the_queue_in_priority_order() -> None:
    env = simpy.Environment()
    pool = AgentPool(env, [ShiftPlan(8.0, 20.0, 1)], 5.0, lambda item, now: 0.01)
    pool.start()
    for item, prio in [("c", 2.0), ("a", 0.0), ("d", 2.0), ("b", 1.0)]:
        pool.enqueue(item, prio)
    assert len(pool) == 4
    assert pool.drain() == ["a", "b", "c", "d"]
    assert len(pool) == 0
    assert pool.stats.dropped == 4
    _run(env, 5.0, _budget(4, 5.0, 1))
    assert pool.stats.served == 0  # nothing left to serve
    assert pool.drain() == []
    assert pool.stats.dropped == 4
