"""The default scenario lands inside the stylised-fact ranges of docs/model.md section 12.

One replication of 20,000 accounts (about 5,000 become delinquent). The ranges are
wide and the measured values sit well inside them; the standard errors are stated per
fact below, and each margin to the nearest bound is at least about 3 of them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.stylised_facts import FACTS, measure
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent

# Approximate one-replication standard errors (binomial, from the counts involved):
# self-cure ~5,300 delinquent accounts -> 0.007; roll 30->60 ~900 accounts -> 0.016;
# SMS lift: paired under common random numbers, on-time rate ~0.75 over ~17,000
# accounts -> ~0.005 relative; churn after cure ~700 accounts -> 0.007; promises kept
# ~1,000 promises -> 0.015; right-party contacts ~40,000 dials -> 0.0015.


@pytest.fixture(scope="module")
def facts() -> pd.DataFrame:
    return measure(load_scenario(ROOT / "scenarios" / "default.yaml"), replications=1)


@pytest.mark.parametrize("fact", FACTS, ids=lambda f: f.key)
def test_fact_in_range(facts: pd.DataFrame, fact) -> None:  # type: ignore[no-untyped-def]
    value = float(facts[fact.key].mean())
    assert fact.low <= value <= fact.high, f"{fact.label}: {value:.3f} ({fact.source})"


def test_heavy_contact_costs_customers_without_buying_recovery(facts: pd.DataFrame) -> None:
    m = facts.mean()
    assert m["churn_heavy"] > 2 * m["churn_typical"]
    assert m["complaints_heavy"] > 2 * m["complaints_typical"]
    # "stops raising recovery": daily calls recover no more than the moderate cadence,
    # allowing 0.5 point for noise (the paired difference's noise is ~0.2 point here).
    assert m["recovery_heavy"] <= m["recovery_typical"] + 0.005
