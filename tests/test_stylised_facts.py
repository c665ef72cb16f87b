"""The default scenario lands inside the stylised-fact ranges of docs/model.md section 12.

The default scenario is a living book (monthly statements, day-0 arrears, inflow, a
120-day warm-up): each fact is measured per statement or per delinquency episode after
the warm-up, on one replication of 20,000 accounts (about 24,000 statements a month).
Every fact must hold on it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.stylised_facts import FACTS, measure
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent

# Approximate one-replication standard errors (binomial, from the counts involved, after
# the warm-up): self-cure ~15,000 episodes -> 0.004; roll 30->60 ~1,000 episodes -> 0.012;
# SMS lift: paired under common random numbers, on-time rate ~0.8 over ~70,000
# statements -> ~0.004 relative; churn after cure ~1,000 accounts -> 0.006; promises
# kept ~3,500 promises -> 0.008; right-party contacts ~30,000 dials -> 0.002.


@pytest.fixture(scope="module")
def facts() -> pd.DataFrame:
    return measure(load_scenario(ROOT / "scenarios" / "default.yaml"), replications=1)


def test_facts_in_range(facts: pd.DataFrame) -> None:
    # One test, not one per fact, so that the 20,000-account measurement runs once even
    # when pytest-xdist spreads the tests over workers.
    outside = []
    for fact in FACTS:
        value = float(facts[fact.key].mean())
        if not fact.low <= value <= fact.high:
            outside.append(f"{fact.label}: {value:.3f} ({fact.source})")
    assert not outside, outside
    heavy_contact_costs_customers_without_buying_recovery(facts)


def heavy_contact_costs_customers_without_buying_recovery(facts: pd.DataFrame) -> None:
    """Heavy contact against the typical cadence (checked by ``test_facts_in_range``)."""
    m = facts.mean()
    assert m["churn_heavy"] > 2 * m["churn_typical"]
    assert m["complaints_heavy"] > 2 * m["complaints_typical"]
    # "stops raising recovery": daily calls recover no more than the moderate cadence,
    # allowing 0.5 point for noise (the paired difference's noise is ~0.2 point here).
    assert m["recovery_heavy"] <= m["recovery_typical"] + 0.005
