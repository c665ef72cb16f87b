"""Scenarios: the schema, reading files safely, dotted overrides and validation.

``from simulator.scenario import Scenario, load_scenario`` is the way in; the modules are
``schema`` (the sections and their defaults), ``files`` (the hardened YAML reader),
``overrides`` (``--set``) and ``loading`` (file and overrides to a validated scenario).
"""

from simulator.scenario.files import read_yaml
from simulator.scenario.loading import format_validation_error, load_scenario, scenario_from_dict
from simulator.scenario.overrides import apply_override, parse_override
from simulator.scenario.schema import (
    BUCKET_NAMES,
    BUCKETS,
    CHANNELS,
    DEFAULT_SEGMENTS,
    PRODUCTS,
    SEGMENTS,
    Channels,
    LogNormal,
    Scenario,
    Segment,
    StrategySpec,
)

__all__ = [
    "BUCKETS",
    "BUCKET_NAMES",
    "CHANNELS",
    "DEFAULT_SEGMENTS",
    "PRODUCTS",
    "SEGMENTS",
    "Channels",
    "LogNormal",
    "Scenario",
    "Segment",
    "StrategySpec",
    "apply_override",
    "format_validation_error",
    "load_scenario",
    "parse_override",
    "read_yaml",
    "scenario_from_dict",
]
