"""Finding a strategy class from a reference and building it with validated parameters.

A reference is a built-in name (``risk_tiered``), a module path
(``mypkg.strategies:CallBigBalances``), a file path (``my_rules.py:CallBigBalances``)
or a name registered by an installed package in the ``contactsim.strategies``
entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from simulator.errors import StrategyError, UserError
from simulator.scenario import StrategySpec, format_validation_error
from simulator.strategies.bandit import Bandit
from simulator.strategies.base import Strategy
from simulator.strategies.builtin import FixedCadence, NoContact, RiskTiered
from simulator.strategies.champion_challenger import ChampionChallenger
from simulator.strategies.early_warning import EarlyWarning
from simulator.strategies.escalation import Escalation
from simulator.strategies.value_based import ValueBased

#: The built-in library, by name, in the order ``contactsim strategies`` lists it.
BUILTINS: dict[str, type[Strategy[Any]]] = {
    cls.name: cls for cls in (NoContact, FixedCadence, RiskTiered, Escalation, EarlyWarning,
                              ValueBased, Bandit, ChampionChallenger)
}
ENTRY_POINT_GROUP = "contactsim.strategies"


def _check_class(obj: Any, ref: str) -> type[Strategy[Any]]:
    if not (inspect.isclass(obj) and issubclass(obj, Strategy)):
        raise StrategyError(f"'{ref}' is not a subclass of simulator.strategies.Strategy",
                            source="strategy")
    if inspect.isabstract(obj):
        raise StrategyError(f"'{ref}' does not implement decide()", source="strategy")
    return obj


def _from_file(path_text: str, attr: str, ref: str, base_dir: Path | None) -> type[Strategy[Any]]:
    """The class ``attr`` of the Python file ``path_text``.

    A relative path is read from ``base_dir`` only (the folder of the file the reference
    is written in), never from the working folder: a file of the same name there must
    not run in place of the one the scenario's author chose. Without ``base_dir`` (a
    reference given in code or on the command line) it is relative to the working folder.
    """
    path = Path(path_text)
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if not path.is_file():
        raise StrategyError(f"file '{path_text}' not found (looked for {path})",
                            source=f"strategy '{ref}'")
    module_name = f"contactsim_plugin_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"cannot load '{path_text}' as Python", source=f"strategy '{ref}'")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a plug-in's own error, reported as the user's input
        sys.modules.pop(module_name, None)
        raise StrategyError(f"importing '{path_text}' failed: {type(exc).__name__}: {exc}",
                            source=f"strategy '{ref}'") from None
    if not hasattr(module, attr):
        raise StrategyError(f"'{path_text}' has no class '{attr}'", source=f"strategy '{ref}'")
    return _check_class(getattr(module, attr), ref)


def _from_module(module_name: str, attr: str, ref: str) -> type[Strategy[Any]]:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise StrategyError(f"cannot import module '{module_name}': {type(exc).__name__}: "
                            f"{exc}", source=f"strategy '{ref}'") from None
    if not hasattr(module, attr):
        raise StrategyError(f"module '{module_name}' has no class '{attr}'",
                            source=f"strategy '{ref}'")
    return _check_class(getattr(module, attr), ref)


def resolve_strategy(ref: str, base_dir: Path | None = None) -> type[Strategy[Any]]:
    """The strategy class a reference names."""
    ref = ref.strip()
    if ref in BUILTINS:
        return BUILTINS[ref]
    if ":" in ref:
        target, _, attr = ref.rpartition(":")
        if not target or not attr.isidentifier():
            raise StrategyError("expected module:Class or file.py:Class",
                                source=f"strategy '{ref}'")
        if target.endswith(".py") or "/" in target or "\\" in target:
            return _from_file(target, attr, ref, base_dir)
        return _from_module(target, attr, ref)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == ref:
            try:
                obj = ep.load()
            except Exception as exc:
                raise StrategyError(f"entry point failed to load: {type(exc).__name__}: {exc}",
                                    source=f"strategy '{ref}'") from None
            return _check_class(obj, ref)
    raise StrategyError(
        f"unknown strategy; built-ins are {', '.join(sorted(BUILTINS))}, or give "
        "module:Class or file.py:Class", source=f"strategy '{ref}'")


def uses_plugin(spec: StrategySpec) -> bool:
    """Whether ``spec`` runs code from outside the built-in library: its own reference,
    or that of a strategy nested in its parameters (an arm of ``champion_challenger``:
    any mapping with a ``use`` key)."""
    def refs(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            if isinstance(value.get("use"), str):
                yield value["use"]
            for item in value.values():
                yield from refs(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from refs(item)

    return any(ref.strip() not in BUILTINS for ref in (spec.use, *refs(spec.params)))


def build_strategy(spec: StrategySpec, rng: np.random.Generator,
                   base_dir: Path | None = None) -> Strategy[Any]:
    """Instantiate the strategy of ``spec`` with its validated parameters.

    ``base_dir`` (the folder of the file the reference is written in: a scenario or a
    sweep file; None: the working folder) resolves relative file references, and is
    handed to constructors that take a ``base_dir`` keyword; constructors that take a
    ``build`` keyword (strategies made of other strategies, such as
    ``champion_challenger``) receive this function with ``base_dir`` bound.
    """
    cls = resolve_strategy(spec.use, base_dir)
    try:
        params = cls.Params.model_validate(spec.params)
    except ValidationError as exc:
        field, msg = format_validation_error(exc)
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:
            known = ", ".join(cls.Params.model_fields) or "no parameters"
            msg = f"unknown parameter; {spec.use} takes {known}"
        raise StrategyError(msg, source=f"strategy '{spec.name}'",
                            field=f"params.{field}") from None
    kwargs: dict[str, Any] = {}
    if _accepts_keyword(cls, "base_dir"):
        kwargs["base_dir"] = base_dir
    if _accepts_keyword(cls, "build"):
        def build(child: StrategySpec, child_rng: np.random.Generator) -> Strategy[Any]:
            return build_strategy(child, child_rng, base_dir)

        kwargs["build"] = build
    try:
        return cls(params=params, rng=rng, **kwargs)
    except UserError as exc:  # e.g. an arm of a composite strategy that cannot be built
        raise StrategyError(str(exc), source=f"strategy '{spec.name}'") from None
    except Exception as exc:
        raise StrategyError(f"constructor failed: {type(exc).__name__}: {exc}",
                            source=f"strategy '{spec.name}'") from None


def _accepts_keyword(cls: type[Strategy[Any]], name: str) -> bool:
    try:
        return name in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
