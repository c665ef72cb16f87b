"""Scenario files: validation, overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.errors import ScenarioError
from simulator.scenario import (
    SEGMENTS,
    Scenario,
    load_scenario,
    scenario_from_dict,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_default_scenario_file_validates() -> None:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    assert sc.population.size == 20_000
    assert sc.compliance.pack == "cn-2026"
    assert [s.name for s in sc.strategies] == ["no_contact", "fixed_cadence", "risk_tiered"]


def test_every_segment_present_with_positive_share_by_default() -> None:
    sc = Scenario()
    assert set(sc.population.segments) == set(SEGMENTS)
    assert all(s.share > 0 for s in sc.population.segments.values())


def test_scenario_is_immutable() -> None:
    sc = Scenario()
    with pytest.raises(Exception, match="frozen"):
        sc.population.size = 5  # type: ignore[misc]


def test_segment_override_merges_over_its_own_defaults() -> None:
    sc = scenario_from_dict({"population": {"segments": {
        "hardship": {"lambda_inf": 0.5}, "on_time": {"share": 0.69}}}})
    hardship = sc.population.segments["hardship"]
    assert hardship.lambda_inf == 0.5
    # Untouched fields keep the hardship defaults, not the generic Segment defaults.
    default = Scenario().population.segments["hardship"]
    assert hardship.full_payment_prob == default.full_payment_prob


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("population: {sise: 10}\n", "population.sise", "unknown field"),
        ("agents: {count: -3}\n", "agents.count", "greater than or equal to 0"),
        ("population: {size: ten}\n", "population.size", "valid integer"),
        ("horizon_days: .nan\n", "horizon_days", "finite"),
        ("population: {segments: {hardship: {share: 0.5}}}\n", "population",
         "sum to 1"),
        ("compliance: {pack: eu-gdpr}\n", "compliance.pack", "cn-2026"),
        ("agents: {shifts: [{start: 10, end: 9, fraction: 1}]}\n", "agents.shifts.0",
         "end must be after start"),
    ],
)
def test_bad_fields_name_file_field_and_expectation(tmp_path: Path, text: str, field: str,
                                                     expected: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(p)
    msg = str(info.value)
    assert msg.startswith(str(p))
    assert f": {field}" in msg
    assert expected in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("- 1\n- 2\n", "mapping"),
        ("a: [1, 2\n", "invalid YAML"),
        ("seed: 1\nseed: 2\n", "duplicate key 'seed'"),
        ("x: !!python/object/apply:os.system ['echo hi']\n", "invalid YAML"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, expected: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError, match=expected):
        load_scenario(p)


def test_binary_file_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "b.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(p)
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.yaml")


def test_dotted_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "strategies: [{use: no_contact}, {use: fixed_cadence}]\n")
    sc = load_scenario(p, ["agents.count=40", "population.size=1000",
                           "strategies.1.label=cadence", "compliance.pack=us-reg-f"])
    assert sc.agents.count == 40
    assert sc.population.size == 1000
    assert sc.strategies[1].name == "cadence"
    assert sc.compliance.pack == "us-reg-f"


@pytest.mark.parametrize("override", ["agents.count", "=3", "strategies.7.use=x"])
def test_bad_overrides(tmp_path: Path, override: str) -> None:
    p = write(tmp_path, "strategies: [{use: no_contact}]\n")
    with pytest.raises(ScenarioError, match="--set"):
        load_scenario(p, [override])


def test_duplicate_strategy_names_refused() -> None:
    with pytest.raises(ScenarioError, match="unique"):
        scenario_from_dict({"strategies": [{"use": "no_contact"}, {"use": "no_contact"}]})


def test_resolved_scenario_round_trips() -> None:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    assert scenario_from_dict(sc.to_dict()) == sc
