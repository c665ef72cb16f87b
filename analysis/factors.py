"""Readable names for sweep factors, which ``kpis.csv`` names by their dotted path.

``strategies.fixed_cadence.params.steps.2.every`` reads as "fixed_cadence: agent-call
interval in days (steps.2.every)"; ``agents.count`` as "agents (agents.count)". A
scenario field takes a short name from a table of the common ones, else the first
clause of its description in the scenario schema; a strategy parameter the description
of its declared parameter (``Params``), a cadence step its channel and field. The
dotted path stays in brackets, so the name still says which field varied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from simulator.scenario import Scenario

#: Short names of the scenario fields most often swept.
SCENARIO_FIELD_NAMES: dict[str, str] = {
    "agents.count": "agents",
    "agents.cost_per_hour": "agent cost per hour",
    "population.size": "accounts",
    "population.score.auc": "score AUC",
    "horizon_days": "horizon in days",
    "compliance.pack": "rule pack",
    "agency.enabled": "agency used",
    "agency.commission": "agency commission",
    "repayment.charge_off_dpd": "charge-off days past due",
}

#: What a field of a cadence step (``simulator.strategies.cadence.Step``) is.
STEP_FIELD_NAMES: dict[str, str] = {
    "every": "interval in days",
    "hour": "hour of day",
    "days": "days past due",
    "from_dpd": "first day past due",
    "to_dpd": "last day past due",
    "channel": "channel",
}

#: Longest description clause used as a name; longer ones fall back to the field's name.
MAX_NAME = 32


def _clause(description: str | None) -> str | None:
    """The first clause of a field description, if short enough to be a name."""
    if not description:
        return None
    first = re.split(r"[,;:(]", description, maxsplit=1)[0].strip()
    return first if 0 < len(first) <= MAX_NAME else None


def _schema_description(model: type[BaseModel], path: Sequence[str]) -> str | None:
    """The description of the field at ``path`` inside ``model``, walking nested models."""
    current: Any = model
    info = None
    for part in path:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return None
        info = fields[part]
        current = info.annotation
    return info.description if info is not None else None


def _strategy_name(rest: str, names: Sequence[str]) -> tuple[str, str] | None:
    """``<name>.<path>`` -> (name, path), the longest matching strategy name first."""
    for name in sorted(names, key=len, reverse=True):
        if rest.startswith(name + "."):
            return name, rest[len(name) + 1:]
    head, _, tail = rest.partition(".")
    return (head, tail) if tail else None


def _strategy_specs(sweep: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    specs = (sweep or {}).get("strategies") or []
    out: dict[str, Mapping[str, Any]] = {}
    for spec in specs:
        if isinstance(spec, Mapping) and spec.get("use"):
            out[str(spec.get("label") or spec["use"])] = spec
    return out


def _param_name(spec: Mapping[str, Any] | None, path: list[str]) -> str:
    """A readable name of a strategy parameter at ``path`` (under ``params``)."""
    params = (spec or {}).get("params") or {}
    # A cadence step: steps.<i>.<field> (also low/medium/high tiers of risk_tiered).
    if len(path) == 3 and path[1].isdecimal() and path[2] in STEP_FIELD_NAMES:
        steps = params.get(path[0]) if isinstance(params, Mapping) else None
        i = int(path[1])
        channel = None
        if isinstance(steps, list) and i < len(steps) and isinstance(steps[i], Mapping):
            channel = steps[i].get("channel")
        what = STEP_FIELD_NAMES[path[2]]
        tier = "" if path[0] == "steps" else f"{path[0]} tier "
        if channel:
            return f"{tier}{str(channel).replace('_', '-')} {what}"
        return f"{tier}step {i} {what}"
    described = None
    if spec and spec.get("use"):
        try:
            from simulator.strategies import BUILTINS

            cls = BUILTINS.get(str(spec["use"]))
            if cls is not None:
                described = _clause(_schema_description(cls.Params, path))
        except ImportError:  # pragma: no cover - the strategies ship with the package
            described = None
    return described or path[-1].replace("_", " ")


def factor_label(factor: str, sweep: Mapping[str, Any] | None = None) -> str:
    """A readable name for the sweep factor ``factor`` (a dotted path), with the path.

    ``sweep`` is the resolved sweep (``sweep.resolved.yaml``), whose strategy specs name
    the channel of a cadence step.
    """
    if factor.startswith("strategies."):
        specs = _strategy_specs(sweep)
        split = _strategy_name(factor[len("strategies."):], list(specs))
        if split is None:
            return factor
        name, rest = split
        path = rest.split(".")
        if path and path[0] == "params":
            path = path[1:]
        if not path:
            return factor
        return f"{name}: {_param_name(specs.get(name), path)} ({'.'.join(path)})"
    name = (SCENARIO_FIELD_NAMES.get(factor)
            or _clause(_schema_description(Scenario, factor.split(".")))
            or factor.rsplit(".", 1)[-1].replace("_", " "))
    return factor if name == factor else f"{name} ({factor})"


def short_name(label: str) -> str:
    """A factor label without its dotted path in brackets nor its strategy prefix:
    "fixed_cadence: agent-call interval in days (steps.2.every)" -> "agent-call interval
    in days"."""
    name = label.rsplit(" (", 1)[0] if label.endswith(")") and " (" in label else label
    head, sep, tail = name.partition(": ")
    return tail if sep and " " not in head else name


def factor_labels(factors: Sequence[str],
                  sweep: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``factor_label`` of each factor."""
    return {f: factor_label(f, sweep) for f in factors}
