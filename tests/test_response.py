"""Agent dials prepared in batches answer exactly as dials drawn on the spot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.engine import Simulation
from simulator.response import ContactResponse
from simulator.scenario import StrategySpec, load_scenario

ROOT = Path(__file__).resolve().parent.parent


def _response() -> ContactResponse:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml", ["population.size=3000"])
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
