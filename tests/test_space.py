"""Parameter spaces and measures: the vocabulary shared by calibrate, robust, power and
sweeps (simulator/experiments/space.py, measures.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from simulator.errors import ScenarioError, UserError
from simulator.experiments.measures import Constraint, Measure
from simulator.experiments.space import ParameterSpace
from simulator.scenario import SEGMENTS, Scenario, scenario_from_dict

BASE = Scenario().to_dict()


def space(parameters: dict[str, object]) -> ParameterSpace:
    return ParameterSpace.from_mapping({"parameters": parameters}, source="space.yaml")


def test_uniform_log_integer_and_categorical_values() -> None:
    sp = space({
        "channels.sms.impulse": {"low": 0.0, "high": 0.2},
        "population.segments.on_time.lambda_inf": {"low": 0.1, "high": 0.4, "log": True},
        "agents.count": {"low": 2, "high": 5, "integer": True},
        "compliance.pack": {"values": ["cn-2026", "us-reg-f"]},
    })
    assert sp.point([0.5, 0.5, 0.0, 0.99]) == {
        "channels.sms.impulse": 0.1,
        "population.segments.on_time.lambda_inf": pytest.approx(0.2),  # geometric mean
        "agents.count": 2, "compliance.pack": "us-reg-f"}
    # Each integer of [2, 5] is equally likely: a quarter of the unit interval each.
    counts = [sp.parameters[2].from_unit(u) for u in np.linspace(0, 1, 400, endpoint=False)]
    assert {k: counts.count(k) for k in range(2, 6)} == {2: 100, 3: 100, 4: 100, 5: 100}
    for p in sp.parameters[:3]:
        for u in (0.0, 0.3, 0.999):
            assert p.to_unit(p.from_unit(u)) == pytest.approx(u, abs=0.26 if p.spec.integer
                                                              else 1e-9)


def test_truncated_normal_follows_its_distribution() -> None:
    p = space({"repayment.fatigue_factor": {"distribution": "truncated_normal", "mean": 0.7,
                                            "sd": 0.1, "low": 0.5, "high": 1.0}}).parameters[0]
    values = np.array([p.from_unit(u) for u in (np.arange(1000) + 0.5) / 1000])
    assert values.min() >= 0.5 and values.max() <= 1.0
    dist = stats.truncnorm((0.5 - 0.7) / 0.1, (1.0 - 0.7) / 0.1, loc=0.7, scale=0.1)
    # Quantiles on a fine grid: the mean is exact up to the grid's discretisation.
    assert values.mean() == pytest.approx(dist.mean(), abs=1e-3)


def test_segment_shares_rescale_the_others_in_proportion() -> None:
    sp = space({"population.segments.self_curer.share": {"low": 0.05, "high": 0.3}})
    data = sp.apply(BASE, {"population.segments.self_curer.share": 0.3})
    shares = {s: data["population"]["segments"][s]["share"] for s in SEGMENTS}
    assert math.isclose(sum(shares.values()), 1.0, abs_tol=1e-12)
    assert shares["self_curer"] == 0.3
    old = {s: BASE["population"]["segments"][s]["share"] for s in SEGMENTS}
    ratio = shares["on_time"] / old["on_time"]
    for s in SEGMENTS:
        if s != "self_curer":
            assert shares[s] == pytest.approx(old[s] * ratio)
    scenario_from_dict(data)  # a valid scenario


def test_check_names_the_file_and_parameter_of_an_impossible_value() -> None:
    with pytest.raises(ScenarioError) as err:
        space({"channels.sms.delivery_prob": {"low": 0.5, "high": 1.5}}).check(BASE, "base")
    text = str(err.value)
    assert text.startswith("space.yaml: parameters.channels.sms.delivery_prob.high: 1.5")
    assert "\n" not in text
    with pytest.raises(ScenarioError, match="is not a field"):
        space({"channels.sms.impulze": {"low": 0, "high": 1}}).check(BASE, "base")
    with pytest.raises(ScenarioError, match="not a number"):
        space({"compliance.pack": {"low": 0, "high": 1}}).check(BASE, "base")
    space({"channels.sms.impulse": {"low": 0.0, "high": 0.5}}).check(BASE, "base")


@pytest.mark.parametrize(("spec", "message"), [
    ({"low": 1, "high": 0}, "below low"),
    ({"low": 0, "high": 1, "log": True}, "low > 0"),
    ({"low": 0, "high": 1, "distribution": "truncated_normal"}, "mean and sd"),
    ({"low": 0, "high": 1, "mean": 0.5}, "truncated_normal only"),
    ({"values": [1, 1]}, "twice"),
    ({"high": 1}, "give low and high"),
    ({"low": 0, "high": 1, "typo": 1}, "unknown field"),
])
def test_bad_specs_are_one_line_errors(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        space({"channels.sms.impulse": spec})
    assert "\n" not in str(err.value)


def test_shares_must_leave_room_for_the_other_segments() -> None:
    with pytest.raises(ScenarioError, match="sum to less than 1"):
        space({"population.segments.self_curer.share": {"low": 0.1, "high": 0.6},
               "population.segments.cash_flow.share": {"low": 0.1, "high": 0.5}})


def test_designs_cover_the_unit_cube_and_saltelli_checks_its_size() -> None:
    sp = space({"channels.sms.impulse": {"low": 0.0, "high": 1.0},
                "channels.push.impulse": {"low": 0.0, "high": 1.0}})
    points = sp.sobol_points(64, seed=1)
    x = np.array([p["channels.sms.impulse"] for p in points])
    # A scrambled Sobol sequence of 64 points puts exactly 8 in each eighth of each axis.
    assert np.histogram(x, bins=8, range=(0, 1))[0].tolist() == [8] * 8
    assert sp.sobol_points(64, seed=1) == points  # reproducible
    assert len(sp.saltelli_points(6 * 4, seed=1)) == 24  # 2D + 2 = 6 per base sample
    with pytest.raises(ValueError, match="multiple of 2D\\+2 = 6"):
        sp.saltelli_points(25, seed=1)


def test_optuna_distributions() -> None:
    dists = space({"agents.count": {"low": 2, "high": 40, "integer": True, "log": True},
                   "channels.sms.impulse": {"low": 0.01, "high": 1.0, "log": True},
                   "compliance.pack": {"values": ["none", "cn-2026"]}}).to_optuna()
    assert dists["agents.count"].log and dists["agents.count"].low == 2
    assert dists["channels.sms.impulse"].log
    assert list(dists["compliance.pack"].choices) == ["none", "cn-2026"]


def test_a_space_file_is_read_safely(tmp_path: Path) -> None:
    f = tmp_path / "uncertain.yaml"
    f.write_text("parameters:\n  channels.sms.impulse: {low: 0.01, high: 0.2}\n",
                 encoding="utf-8")
    assert ParameterSpace.load(f).paths == ["channels.sms.impulse"]
    f.write_text("parameters: !!python/object:os.system {}\n", encoding="utf-8")
    with pytest.raises(ScenarioError):
        ParameterSpace.load(f)


def test_measures_and_constraints() -> None:
    m = Measure.parse("net_value:max")
    assert m.better(2.0, 1.0) and not Measure.parse("churn_rate:min").better(2.0, 1.0)
    for bad in ("net_value", "net_value:up", "nett_value:max", ":max"):
        with pytest.raises(UserError):
            Measure.parse(bad)
    c = Constraint.parse("churn_rate<=0.01")
    assert c.holds(0.005) and not c.holds(0.02) and not c.holds(math.nan)
    for bad in ("churn_rate<0.01", "churn_rate<=x", "churn_rate<=inf", "nope>=1"):
        with pytest.raises(UserError):
            Constraint.parse(bad)
