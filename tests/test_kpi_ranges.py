"""Every KPI has a declared range (``simulator.kpis.kpi_range``), and runs keep to it."""

from __future__ import annotations

import math

import pytest

from simulator.engine import run
from simulator.kpis import KPI_DEFINITIONS, KPI_RANGES, kpi_problem, kpi_range
from simulator.scenario import scenario_from_dict

SMALL = {"population": {"size": 1500}, "horizon_days": 90, "agents": {"count": 2},
         "repayment": {"charge_off_dpd": 45}, "agency": {"enabled": True}}
#: A book nobody reaches: a short horizon before any charge-off, so ratios over write-offs,
#: calls and promises have no denominator and are undefined (NaN).
UNDEFINED = {"population": {"size": 300}, "horizon_days": 20, "agents": {"count": 1},
             "repayment": {"charge_off_dpd": 60}, "agency": {"enabled": True}}
#: A living book (monthly statements, arrears on day 0, inflow, a warm-up): its KPIs
#: include the living-only ones and read per statement and per episode.
LIVING = {"population": {"size": 1500, "billing": {"enabled": True},
                         "arrears": {"M1": 0.05, "M2": 0.02}, "inflow": {"rate_per_day": 0.002}},
          "horizon_days": 90, "agents": {"count": 2}, "metrics": {"warmup_days": 30},
          "repayment": {"charge_off_dpd": 45}, "agency": {"enabled": True}}


def test_every_defined_kpi_has_a_range() -> None:
    assert set(KPI_RANGES) == set(KPI_DEFINITIONS)
    assert kpi_range("cost_sms") is not None and kpi_range("blocked_quiet_hours") is not None
    assert kpi_range("no_such_kpi") is None


@pytest.mark.parametrize("strategy", ["no_contact", "fixed_cadence", "risk_tiered"])
def test_every_kpi_of_a_run_lies_in_its_range(strategy: str) -> None:
    sc = scenario_from_dict(SMALL)
    kpis = run(sc, strategy, seed=3).kpis
    for name, value in kpis.items():
        found = kpi_range(name)
        assert found is not None, f"{name} has no declared range"
        # NaN is an undefined ratio (no denominator), e.g. rpc_rate without agent calls.
        assert math.isnan(value) or found.contains(value), (name, value, found)


@pytest.mark.parametrize("book", [SMALL, UNDEFINED, LIVING],
                         ids=["small", "undefined_ratios", "living"])
@pytest.mark.parametrize("strategy", ["no_contact", "fixed_cadence", "bandit",
                                      "champion_challenger"])
def test_every_run_passes_the_cell_validation(strategy: str, book: dict) -> None:
    """Cached cells are reused only if ``kpi_problem`` finds nothing: a run's own KPIs
    must always pass (a new ratio KPI that can be undefined needs an entry in
    ``RATIO_DENOMINATORS``, or its cells would be recomputed every time)."""
    sc = scenario_from_dict(book)
    kpis = run(sc, strategy, seed=3).kpis
    assert kpi_problem(kpis) is None
    stored = {k: None if math.isnan(v) else v for k, v in kpis.items()}  # as in a cell file
    assert kpi_problem(stored) is None
    assert kpi_problem({**stored, "recovery_rate": 7.5}) is not None
    assert kpi_problem({**stored, "violations": None}) is not None
    assert kpi_problem({"accounts": 1500.0}) is not None
    if book is LIVING:  # a living book missing one of its own KPIs is refused
        assert kpi_problem({k: v for k, v in stored.items() if k != "service_level"})
