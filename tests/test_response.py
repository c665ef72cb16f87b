"""How borrowers answer contact: agent dials prepared in batches answer exactly as dials
drawn on the spot; a dark borrower ignores the ring; a kept promise to pay in full
covers a later late fee."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.book import CURED, DELINQUENT, ROBOCALL
from simulator.engine import Simulation
from simulator.response import ContactResponse
from simulator.scenario import StrategySpec, load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
#: One statement per account: these tests stand borrowers at their statements.
SINGLE_COHORT = ROOT / "scenarios" / "examples" / "single_cohort.yaml"


def _response() -> ContactResponse:
    sc = load_scenario(SINGLE_COHORT, ["population.size=3000"])
    return Simulation(sc, StrategySpec(use="no_contact"), seed=7).response


def test_prepared_dials_equal_dials_drawn_on_the_spot() -> None:
    response = _response()
    ids = np.arange(0, 3000, 3, dtype=np.int64)
    # Hours across the right-party-contact bands, so every rate is used.
    times = [2.0 + h / 24.0 for h in (8.5, 12.25, 17.0, 19.75)]
    fresh = [[response.dial(int(i), t) for i in ids] for t in times]
    prepared = []
    for t in times:
        response.prepare_dials(ids)
        assert len(response._prepared) == ids.size
        prepared.append([response.dial(int(i), t) for i in ids])
        assert not response._prepared  # each dial used its prepared draws up
    assert prepared == fresh
    # The draws decide something: answered, unanswered and undelivered calls all occur.
    outcomes = {(d, a) for row in prepared for d, a, _ in row}
    assert outcomes == {(True, True), (True, False), (False, False)}


def test_a_dial_after_another_contact_draws_afresh() -> None:
    response = _response()
    counters = response.book.state.contact_counter
    ids = np.arange(0, 3000, 3, dtype=np.int64)
    response.prepare_dials(ids)
    counters[ids] += 1  # another contact used the prepared draws' counter
    moved = [response.dial(int(i), 2.5) for i in ids]
    response.prepare_dials(ids)  # prepared again, at the new counter
    assert [response.dial(int(i), 2.5) for i in ids] == moved
    counters[ids] -= 1
    assert [response.dial(int(i), 2.5) for i in ids] != moved  # the counter matters


# ----------------------------------------------------------------------------- item decisions


def _started(overrides: list[str], size: int = 3000) -> Simulation:
    """A simulation of the default scenario whose borrowers stand at their statements."""
    sc = load_scenario(SINGLE_COHORT,
                       [f"population.size={size}", *overrides])
    sim = Simulation(sc, StrategySpec(use="no_contact"), seed=7)
    sim.repayment.start()
    return sim


def test_a_dark_borrower_ignores_the_ring() -> None:
    # Nobody answers a robocall (attention 0), every call rings (delivery 1): a ring is a
    # missed-call reminder (channels.unanswered_call_impulse), except for a borrower gone
    # dark on the channel, who ignores it: no impulse (no jump of the intensity, so the
    # repayment clock is not touched), though the ring still adds pressure.
    sim = _started(["channels.robocall.attention_prob=0", "channels.robocall.delivery_prob=1"])
    book, s = sim.book, sim.book.state
    t = 3.5
    sim.repayment.advance_due(t)
    # (The unreachable segment's impulse multiplier is 0: its borrowers never jump.)
    moved = book.segments.impulse_multiplier[book.latent.segment, ROBOCALL] > 0
    ids = np.flatnonzero(book.observable.on_file[:, ROBOCALL] & (s.owed > 0)
                         & moved).astype(np.int64)
    dark = ids % 2 == 0
    s.dark[ids[dark], ROBOCALL] = True
    before = s.t_state[ids].copy()
    out = sim.response.contact(ids, ROBOCALL, t)
    assert out.delivered.all() and not out.attended.any()
    lifted = s.t_state[ids] == t  # ``jump`` brings the excess forward to the contact time
    assert lifted[~dark].all()
    assert not lifted[dark].any()
    np.testing.assert_array_equal(s.t_state[ids[dark]], before[dark])
    assert (s.pressure[ids[dark]] > 0).all()


@pytest.mark.parametrize("covers", [True, False])
def test_a_kept_full_promise_covers_a_late_fee_added_after_it(covers: bool) -> None:
    # A promise to pay in full made before the due date, falling due after it, kept; a
    # late fee of 25 is added when the due date passes. Nobody pays on their own (zero
    # intensity, no jump on a payment), so only the promise pays.
    # promises.full_covers_fees (default true): the kept promise settles the account, fee
    # included (cured, nothing owed). False: it pays the instalment promised and the fee
    # stays owed (still delinquent, owing 25).
    zero = {name: {"lambda_0": 0.0, "lambda_inf": 0.0, "due_impulse": 0.0, "delta10": 0.0,
                   "delta11": 0.0, "payday_impulse": 0.0, "bureau_impulse": 0.0}
            for name in ("on_time", "self_curer", "cash_flow", "unwilling", "hardship")}
    sc = load_scenario(SINGLE_COHORT, [
        "population.size=200", "repayment.late_fee=25",
        f"promises.full_covers_fees={str(covers).lower()}"])
    data = sc.to_dict()
    for name, values in zero.items():
        data["population"]["segments"][name].update(values)
    sim = Simulation(scenario_from_dict(data), StrategySpec(use="no_contact"), seed=7)
    sim.repayment.start()
    s, due = sim.book.state, sim.book.observable.due_day
    ids = np.arange(sim.book.n, dtype=np.int64)
    s.t_promise[ids] = due + 3.5  # after the due date passes (due + 1)
    s.promise_amount[ids] = s.owed[ids]
    s.promise_full[ids] = True
    s.promise_kept[ids] = True
    instalment = s.owed.copy()
    sim.repayment.advance_due(60.0)
    assert np.isinf(s.t_promise).all()
    if covers:
        assert (s.status == CURED).all()
        assert (s.owed == 0).all()
        np.testing.assert_allclose(s.paid_in_house, instalment + 25.0)
    else:
        assert (s.status == DELINQUENT).all()
        np.testing.assert_allclose(s.owed, 25.0)
        np.testing.assert_allclose(s.paid_in_house, instalment)
