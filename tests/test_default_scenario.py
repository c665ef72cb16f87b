"""What the bundled default scenario must show (issue: the core simulator), and, since it
is a living book (issue 15), its steady state after the warm-up and the value of early
warning per statement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.engine import Results, run
from simulator.experiments.compare import paired_interval
from simulator.rng import replication_seed
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def default_results() -> dict[str, Results]:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    seed = replication_seed(sc.seed, 0)
    return {s.name: run(sc, s, seed) for s in sc.strategies}


def test_no_contact_costs_nothing_and_loses_no_customer(default_results: dict[str, Results]
                                                        ) -> None:
    k = default_results["no_contact"].kpis
    assert k["contact_cost"] == 0
    assert k["contacts"] == 0
    assert k["churned"] == 0
    assert k["complaints"] == 0
    assert k["wasted_contacts"] == 0


def test_cadence_recovers_more_and_loses_more_customers(default_results: dict[str, Results]
                                                        ) -> None:
    none, cadence = default_results["no_contact"].kpis, default_results["fixed_cadence"].kpis
    # Same borrowers and luck (common random numbers): the difference is the contact.
    # On 20,000 accounts (~5,000 delinquent) the recovery gain is several points while
    # its paired noise is well under one point.
    assert cadence["recovery_rate"] > none["recovery_rate"] + 0.01
    assert cadence["churned"] > none["churned"]
    assert cadence["contact_cost"] > 0
    assert cadence["wasted_contacts"] > 0  # self-curers were contacted too


def test_every_arm_is_compliant_and_conserves_money(default_results: dict[str, Results]
                                                    ) -> None:
    for r in default_results.values():
        assert r.kpis["violations"] == 0
        a = r.accounts
        lhs = a["paid_in_house"] + a["balance_end"] + a["written_off"]
        np.testing.assert_allclose(lhs, a["balance_start"], rtol=0, atol=1e-6)
        assert 0 <= r.kpis["recovery_rate"] <= 1
        assert (a["agency_collected"] <= a["written_off"] + 1e-9).all()


def test_same_seed_same_results() -> None:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml", ["population.size=2000"])
    a = run(sc, "fixed_cadence", 11)
    b = run(sc, "fixed_cadence", 11)
    assert pd.Series(a.kpis).equals(pd.Series(b.kpis))  # NaN-aware equality
    assert a.events.equals(b.events)


def test_the_default_is_a_living_book_whose_size_holds(default_results: dict[str, Results]
                                                       ) -> None:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    assert sc.population.billing.enabled and sc.population.inflow.rate_per_day > 0
    assert sum(sc.population.arrears.model_dump().values()) > 0
    assert 0 < sc.metrics.warmup_days < sc.horizon_days
    daily = default_results["fixed_cadence"].daily
    open_ = daily[daily["state"].isin(["M0", "M1", "M2", "M3", "M4"])].groupby("day")[
        "accounts"].sum()
    # The inflow rate is the one that keeps the book's size: within 5 % of day 0 on its
    # last day (the draft of this scenario drifted by about 1 % over 360 days).
    assert abs(open_.iloc[-1] / open_.iloc[0] - 1) < 0.05
    past_due0 = open_.iloc[0] - daily[(daily["day"] == 0) & (daily["state"] == "M0")][
        "accounts"].sum()
    assert past_due0 > 0.05 * open_.iloc[0]  # the day-0 arrears are in the book


def test_steady_state_after_the_warm_up(default_results: dict[str, Results]) -> None:
    """Reduced version of benchmarks/steady_state.py (which checks every bucket M1-M4 and
    agent utilisation within 10 % at 20,000 accounts and more): on the default's 20,000
    accounts, the mean accounts in M1, in M2-M4 together and the mean daily agent
    utilisation over the last 45 days lie within 10 % of their means over the 45 days
    before. M2-M4 are pooled here because, alone, M3 and M4 hold some 70 and 50 accounts
    on this book and their difference varies by 7 % and 14 % (standard deviations over 10
    replications, benchmarks/steady_state.py --seeds 10) from noise alone (accounts stay
    in a bucket for up to 30 days, so a window holds a few independent draws); pooled
    (about 270 accounts), the difference was -2.6 % with a standard deviation of 4.4 %
    over 10 replications, so 10 % is some two standard deviations: a drift of the deep
    buckets by a few per cent more than today's would fail it."""
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    r = default_results["fixed_cadence"]
    counts = r.daily.pivot(index="day", columns="state", values="accounts")
    series = pd.DataFrame({"M1": counts["M1"],
                           "M2-M4": counts[["M2", "M3", "M4"]].sum(axis=1),
                           "utilisation": r.agents_daily.set_index("day")["utilisation"]})
    h = int(sc.horizon_days)
    assert h - 90 >= sc.metrics.warmup_days  # both windows after the warm-up
    earlier = series.loc[h - 90:h - 46].mean()
    later = series.loc[h - 45:h - 1].mean()
    change = (later / earlier - 1).abs()
    assert (change <= 0.10).all(), change.to_dict()


def test_early_warning_lowers_the_delinquency_rate_per_statement() -> None:
    """A pre-due reminder before every due date against no contact, on the same seeds
    (common random numbers): the paired 95 % interval of the per-statement delinquency
    rate excludes zero. At 2,000 accounts (about 8,000 statements due after the warm-up)
    the difference is about -3.7 points and its paired spread about 0.3 point, so 3
    replications (t quantile 4.3) give an interval some 1 point wide."""
    sc = load_scenario(ROOT / "scenarios" / "default.yaml", ["population.size=2000"])
    none, warned = [], []
    for rep in range(3):
        seed = replication_seed(sc.seed, rep)
        none.append(run(sc, "no_contact", seed, rep).kpis["delinquency_rate"])
        warned.append(run(sc, "early_warning", seed, rep).kpis["delinquency_rate"])
    diff, low, high = paired_interval(none, warned)
    assert high < 0, (diff, low, high)
