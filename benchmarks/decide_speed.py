"""How long one ``decide`` of every built-in strategy takes on a large book.

Usage: python benchmarks/decide_speed.py [--accounts 1000000] [--repeat 3] [--seed 1]

Builds a view with the exact columns and dtypes of ``simulator.view.build_view``
(checked against a real view of a small book) over N open accounts spread from 15 days
before the due date to 120 days past due, then times, for each built-in with its
default parameters:

* ``first decide``: a fresh strategy's first epoch (no state yet: every account is new;
  the learning strategies decide for everyone at once),
* ``next decide``: the following day's epoch on the same accounts, one day older,
* ``learn``: one ``learn`` call with an epoch's worth of events (10 % of accounts).

Each figure is the median of ``--repeat`` runs, in seconds. Not a unit test: the
figures depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from simulator.book import OUTCOMES
from simulator.population import generate_book
from simulator.recorder import EVENT_NAMES
from simulator.rng import Streams
from simulator.scenario import BUCKETS, CHANNELS, PRODUCTS, Scenario, StrategySpec
from simulator.strategies import BUILTINS, Strategy, build_strategy
from simulator.view import build_view

T = TypeVar("T")


def synthetic_view(n: int, day: int, rng: np.random.Generator) -> pd.DataFrame:
    """A view of ``n`` open accounts with build_view's columns and dtypes."""
    due = rng.integers(-120, 16, n) + day
    dpd = (day - due).astype(np.int64)
    delinquent = dpd >= 1
    amount = rng.lognormal(np.log(600) - 0.18, 0.6, n)
    contacts = rng.poisson(np.clip(dpd, 0, None)[:, None] * [0.05, 0.02, 0.15, 0.05, 0.1])
    last = np.where(contacts > 0, day - rng.uniform(0, 10, (n, len(CHANNELS))), np.nan)
    promise = delinquent & (rng.random(n) < 0.05)
    bucket = np.searchsorted([1, 31, 61, 91], dpd, side="right").astype(np.int8)
    data: dict[str, object] = {
        "status": pd.Categorical.from_codes(delinquent.astype(np.int8),
                                            ["pre_due", "delinquent"]),
        "dpd": dpd,
        "bucket": pd.Categorical.from_codes(bucket, BUCKETS),
        "due_day": due.astype(np.int64),
        "amount_due": amount,
        "amount_delinquent": np.where(delinquent, amount, 0.0),
        "amount_past_due": np.where(delinquent, amount, 0.0),
        "missed_payments": (delinquent * (1 + np.clip(dpd, 0, None) // 30)).astype(np.int64),
        "next_due_day": np.where(delinquent, np.nan, due).astype(np.float64),
        "next_amount_due": np.where(delinquent, 0.0, amount),
        "balance": amount * rng.uniform(1, 12, n),
        "credit_line": amount * rng.uniform(12, 30, n),
        "paid_so_far": np.where(rng.random(n) < 0.1, amount * 0.3, 0.0),
        "score": rng.normal(650, 70, n),
        "prior_delinquencies": rng.poisson(0.4, n).astype(np.int16),
        "tenure_months": rng.lognormal(2.7, 0.8, n),
        "product": pd.Categorical.from_codes(rng.integers(0, len(PRODUCTS), n), PRODUCTS),
        "clv_estimate": rng.lognormal(np.log(400) - 0.32, 0.8, n),
        "contacts_total": contacts.sum(axis=1).astype(np.int64),
    }
    for c, name in enumerate(CHANNELS):
        data[f"contacts_{name}"] = contacts[:, c].astype(np.int32)
    for c, name in enumerate(CHANNELS):
        data[f"last_{name}"] = last[:, c]
    data.update({
        "last_outcome": pd.Categorical.from_codes(
            np.where(contacts.sum(axis=1) > 0, rng.integers(1, len(OUTCOMES), n), 0),
            OUTCOMES),
        "right_party_contacts": (contacts[:, 4] // 10).astype(np.int32),
        "open_promise": promise,
        "promise_day": np.where(promise, day + rng.uniform(0, 7, n), np.nan),
        "promise_amount": np.where(promise, amount, 0.0),
        "promises_made": (promise + (rng.random(n) < 0.05)).astype(np.int16),
        "promises_broken": (rng.random(n) < 0.02).astype(np.int16),
    })
    phone = rng.random(n) < 0.97
    for name, reach in zip(CHANNELS, (rng.random(n) < 0.75, rng.random(n) < 0.6, phone, phone,
                                      phone), strict=True):
        data[f"reachable_{name}"] = reach
    data["do_not_contact"] = rng.random(n) < 0.01
    return pd.DataFrame(data, index=pd.Index(np.arange(n, dtype=np.int64), name="account_id"))


def synthetic_outcomes(view: pd.DataFrame, day: int, rng: np.random.Generator) -> pd.DataFrame:
    """An epoch's events for 10 % of the accounts: contacts and payments."""
    ids = rng.choice(view.index.to_numpy(), size=len(view) // 10, replace=False)
    m = ids.size
    is_pay = rng.random(m) < 0.3
    event = np.where(is_pay, EVENT_NAMES.index("payment"), EVENT_NAMES.index("contact"))
    channel = np.where(is_pay, -1, rng.integers(0, len(CHANNELS), m))
    return pd.DataFrame({
        "t": day - 1 + rng.random(m),
        "account_id": ids.astype(np.int64),
        "event": pd.Categorical.from_codes(event, EVENT_NAMES),
        "channel": pd.Categorical.from_codes(channel, CHANNELS),
        "amount": np.where(is_pay, view["amount_due"].to_numpy()[ids], 0.04),
        "code": np.zeros(m, dtype=np.int16),
        "agent_minutes": np.zeros(m, dtype=np.float32),
    })


def check_schema(view: pd.DataFrame) -> None:
    """Fail if the synthetic view's columns or dtypes drift from the real one."""
    sc = Scenario.model_validate({"population": {"size": 200}})
    real = build_view(generate_book(sc, Streams(0)), 0.0)
    ours = view.dtypes.astype(str).to_dict()
    theirs = real.dtypes.astype(str).to_dict()
    if ours != theirs:
        diff = {k: (ours.get(k), theirs.get(k)) for k in set(ours) | set(theirs)
                if ours.get(k) != theirs.get(k)}
        raise SystemExit(f"synthetic view differs from build_view: {diff}")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds ``fn`` took, and what it returned."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    day = 200
    t0 = time.perf_counter()
    view = synthetic_view(args.accounts, day, rng)
    nxt = view.assign(dpd=view["dpd"] + 1)
    outcomes = synthetic_outcomes(view, day, rng)
    check_schema(view)
    print(f"view: {len(view):,} accounts x {view.shape[1]} columns, "
          f"{view.memory_usage(deep=True).sum() / 2**20:,.0f} MiB, built in "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"{'strategy':<22}{'first decide':>14}{'next decide':>14}{'learn':>10}"
          f"{'requests':>12}")
    for name in BUILTINS:
        first, second, learn = [], [], []
        n_req = 0
        for r in range(args.repeat):
            strategy: Strategy[Any] = build_strategy(StrategySpec(use=name),
                                                     np.random.default_rng(r))
            seconds, _ = timed(partial(strategy.decide, day, view))
            first.append(seconds)
            seconds, _ = timed(partial(strategy.learn, outcomes))
            learn.append(seconds)
            seconds, requests = timed(partial(strategy.decide, day + 1, nxt))
            second.append(seconds)
            n_req = len(requests)
        print(f"{name:<22}{statistics.median(first):>13.3f}s{statistics.median(second):>13.3f}s"
              f"{statistics.median(learn):>9.3f}s{n_req:>12,}")


if __name__ == "__main__":
    main()
