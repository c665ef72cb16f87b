"""``contactsim strategies``: the built-in library, its business rules and parameters."""

from __future__ import annotations

import inspect
import math
import types
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import annotated_types
import typer
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich import box
from rich.table import Table
from rich.text import Text

from simulator.cli.helpers import console, guarded
from simulator.strategies import BUILTINS, Strategy, resolve_strategy
from simulator.strategies.loader import ENTRY_POINT_GROUP

SHORT_DEFAULT = 48  # characters of a default shown in the overview before eliding


def type_name(annotation: Any) -> str:
    """A reader's name for a parameter type: ``int``, ``list of Step``, ``sms|push``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_name(args[0])}"
        return "list"
    if origin is dict:
        return "mapping"
    if annotation is Any:
        return "any"
    if isinstance(annotation, type):
        return {"str": "text", "bool": "true/false"}.get(annotation.__name__,
                                                         annotation.__name__)
    return str(annotation)


def _bounds(field: FieldInfo) -> str:
    parts = []
    for m in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(m, attr, None)
            if value is not None and isinstance(m, annotated_types.BaseMetadata):
                parts.append(f"{sym} {value:g}" if isinstance(value, float) else
                             f"{sym} {value}")
    return ", ".join(parts)


def field_type(field: FieldInfo) -> str:
    """The type of a parameter with its bounds, e.g. ``int >= 1``."""
    bounds = _bounds(field)
    name = type_name(field.annotation)
    return f"{name} {bounds}" if bounds else name


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json", exclude_defaults=False))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def default_text(field: FieldInfo, short: bool = True) -> str:
    """A parameter's default as compact YAML (elided when ``short`` and long)."""
    if field.is_required():
        return "(required)"
    value = _plain(field.get_default(call_default_factory=True))
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    text = text.removesuffix("...").strip()
    if short and len(text) > SHORT_DEFAULT:
        text = text[: SHORT_DEFAULT - 3] + "..."
    return text


def params_table(cls: type[Strategy[Any]], short: bool = True) -> Table:
    """Parameters of a strategy: name, type, default, description."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("parameter", style="bold", no_wrap=True)
    table.add_column("type", max_width=22)
    table.add_column("default", overflow="fold", max_width=None if not short else 30)
    table.add_column("description", ratio=1)

    def row(name: str, field: FieldInfo) -> None:
        # Text, not markup: defaults such as [sms, push] must print as they are.
        table.add_row(Text(name), Text(field_type(field)), Text(default_text(field, short)),
                      Text(field.description or ""))

    for name, field in cls.Params.model_fields.items():
        row(name, field)
        nested = field.annotation
        if not short and isinstance(nested, type) and issubclass(nested, BaseModel):
            for sub, sfield in nested.model_fields.items():
                row(f"  {name}.{sub}", sfield)
    return table


def _installed_plugins() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)
                  if ep.name not in BUILTINS)


@guarded
def strategies_command(
    name: Annotated[str | None, typer.Argument(
        help="show one strategy in full: a built-in name, module:Class or file.py:Class")
    ] = None,
) -> None:
    """List the built-in strategies with their parameters, or show one in full."""
    if name is not None:
        cls = resolve_strategy(name, Path.cwd())
        console.print(Text.assemble((cls.name or name, "bold"), ": ", cls.description))
        console.print()
        console.print(Text(inspect.cleandoc(cls.__doc__ or "")))
        console.print()
        if cls.Params.model_fields:
            console.print(params_table(cls, short=False))
        else:
            console.print("no parameters")
        return
    console.print("[bold]Built-in strategies[/] (use in a scenario as "
                  "strategies: [{use: NAME, params: {...}}])", highlight=False)
    for key, cls in BUILTINS.items():
        console.print()
        console.print(Text.assemble((key, "bold cyan"), "  ", cls.description))
        if cls.Params.model_fields:
            console.print(params_table(cls))
        else:
            console.print("  no parameters")
    plugins = _installed_plugins()
    if plugins:
        console.print()
        console.print(f"Installed plug-ins ({ENTRY_POINT_GROUP}): {', '.join(plugins)}",
                      highlight=False)
    console.print()
    console.print("contactsim strategies NAME shows the business rule in full, with the "
                  "nested parameters and complete defaults.", highlight=False)
