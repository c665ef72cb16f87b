"""From a file (or plain data) and overrides to a validated ``Scenario``, with one-line
errors naming the file and the field."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulator.errors import ScenarioError
from simulator.scenario.files import check_tree, read_yaml
from simulator.scenario.overrides import apply_override, parse_override
from simulator.scenario.schema import Scenario


def _shown(value: Any) -> str:
    """``repr(value)``, except for integers too long for Python to print (over 4,300 digits)."""
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"an integer of {round(value.bit_length() * math.log10(2))} digits"
    try:
        return repr(value)
    except ValueError:
        return f"a {type(value).__name__}"


def format_validation_error(exc: ValidationError) -> tuple[str, str]:
    """The first error of a pydantic ``ValidationError`` as (field path, message)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling; see docs/scenario-reference.md)"
    elif "input" in first and first["type"] not in ("missing",):
        shown = _shown(first["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{msg} (got {shown})"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    more = len(errors) - 1
    if more:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return field, msg


def scenario_from_dict(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate plain data into a ``Scenario``, raising ``ScenarioError`` on the first problem."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        field, msg = format_validation_error(exc)
        raise ScenarioError(msg, source=source, field=field) from None
    except RecursionError:
        raise ScenarioError("nested too deeply", source=source) from None


def _override_at(field: str, overrides: dict[str, str]) -> str | None:
    """The override (``key=value`` text) that set ``field`` or a field inside or above it."""
    for key, text in reversed(overrides.items()):  # the last one given wins
        if field == key or field.startswith(key + ".") or key.startswith(field + "."):
            return text
    return None


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    A field an override set that does not validate (a typo in its key, a bad value) is
    reported as the option's (``--set KEY=VALUE``), not the file's.
    """
    data = read_yaml(path)
    given: dict[str, str] = {}
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, key, value)
        given[".".join(key)] = text
    if overrides:
        check_tree(data, "--set")
    try:
        return scenario_from_dict(data, source=str(path))
    except ScenarioError as exc:
        culprit = _override_at(exc.field or "", given) if exc.field else None
        if culprit is None:
            raise
        raise ScenarioError(exc.detail, source=f"--set {culprit}", field=exc.field) from None
