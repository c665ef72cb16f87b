"""Cells that keep more than KPIs (extractors) and running a list of cells once
(simulator/experiments/cells.py, cache.py): the machinery every experiment shares."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simulator.engine import Results
from simulator.experiments.backends import LocalPool
from simulator.experiments.cache import run_cached
from simulator.experiments.cells import NOT_IN_CELL, CellTask
from simulator.rng import replication_seed
from simulator.scenario import Scenario, scenario_from_dict

SCENARIO = scenario_from_dict({"population": {"size": 300}, "horizon_days": 20,
                               "agents": {"count": 1}})
DATA = {k: v for k, v in SCENARIO.to_dict().items() if k not in NOT_IN_CELL}
SPEC = {"use": "no_contact", "params": {}, "label": None}


def paid_share(results: Results, scenario: Scenario, params: Mapping[str, Any]) -> dict[str, Any]:
    """Share of accounts paid in full by ``params['day']``, and an undefined ratio."""
    paid = results.accounts["t_paid"].to_numpy() <= params["day"]
    return {"paid": float(paid.mean()), "by_segment": [1, 2.5], "undefined": math.nan,
            "accounts": np.int64(scenario.population.size)}


def broken(results: Results, scenario: Scenario, params: Mapping[str, Any]) -> dict[str, Any]:
    raise ValueError("this extractor fails")


def tasks(extract: Any = None, day: float = 10.0, reps: int = 2) -> list[CellTask]:
    return [CellTask.make(DATA, SPEC, replication_seed(1, r), r, extract=extract,
                          extract_params=None if extract is None else {"day": day})
            for r in range(reps)]


def test_the_extractor_and_its_parameters_are_part_of_the_key() -> None:
    plain, kept, later = tasks(), tasks(paid_share), tasks(paid_share, day=15.0)
    keys = [t.key for group in (plain, kept, later) for t in group]
    assert len(set(keys)) == 6
    assert tasks(paid_share)[0].key == kept[0].key  # content-addressed: same inputs, same key


def test_cells_keep_what_the_extractor_returns_and_are_reused(tmp_path: Path) -> None:
    cells = tmp_path / "cells"
    first = run_cached(tasks(paid_share), cells, LocalPool(1))
    assert (first.computed, first.reused, first.failed) == (2, 0, 0)
    for record in first.records.values():
        values = record["values"]
        assert 0.0 <= values["paid"] <= 1.0
        assert values["undefined"] is None and values["by_segment"] == [1, 2.5]
        assert values["accounts"] == 300
        assert record["kpis"]["accounts"] == 300.0
    on_disk = json.loads(next(cells.iterdir()).read_text(encoding="utf-8"))
    assert on_disk["values"] == first.records[on_disk["key"]]["values"]
    again = run_cached(tasks(paid_share), cells, LocalPool(2))
    assert (again.computed, again.reused) == (0, 2)
    assert again.records == first.records


def test_a_failing_extractor_fails_its_cell_with_one_line(tmp_path: Path) -> None:
    out = run_cached(tasks(broken, reps=1), tmp_path / "cells", LocalPool(1))
    assert out.failed == 1 and out.records == {}
    assert out.failures[0]["error"] == "ValueError: this extractor fails"
