"""Dotted overrides (``--set agents.count=40``) applied to a scenario's plain data."""

from __future__ import annotations

from typing import Any

import yaml

from simulator.errors import ScenarioError
from simulator.scenario.files import UniqueKeyLoader


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.0.c=value`` into a key path and a YAML-parsed value."""
    if "=" not in text:
        raise ScenarioError(f"expected KEY=VALUE, got '{text}'", source="--set")
    key, _, value = text.partition("=")
    path = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in path):
        raise ScenarioError(f"expected a dotted key such as agents.count, got "
                            f"'{key}'", source="--set")
    try:
        parsed = yaml.load(value, Loader=UniqueKeyLoader) if value.strip() else ""
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, KeyError, AttributeError,
            OverflowError):
        parsed = value  # not YAML: the text itself
    return path, parsed


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path`` inside nested dicts and lists, creating dicts as needed."""
    node: Any = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            if not (part.isdecimal() and len(part) < 10) or int(part) >= len(node):
                raise ScenarioError(f"no list item '{part}' (the list has "
                                    f"{len(node)} items)",
                                    source="--set", field=where)
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ScenarioError("cannot set a field inside a plain value", source="--set",
                                field=where)
