"""The tests run the pandas a user gets: nothing the project or its dev extras install
holds pandas below 3 (lifelines did, pinning ``pandas<3``; its Kaplan-Meier cross-check
now reads stored reference values, ``tests/data/kaplan_meier_reference.py``)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pandas as pd
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


def _requirements() -> list[Requirement]:
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    names = [*project["dependencies"], *extras["dev"]]  # type: ignore[misc]
    return [Requirement(r) for r in names]


def _allows_pandas_3(req: Requirement) -> bool:
    return req.specifier.contains("3.0.0", prereleases=True) or not req.specifier


def test_pandas_requirement_takes_pandas_3() -> None:
    pandas_req = next(r for r in _requirements() if r.name == "pandas")
    assert _allows_pandas_3(pandas_req)
    assert not pandas_req.specifier.contains("2.1.4")  # 2.2 is the oldest that works


def test_no_dev_dependency_holds_pandas_below_3() -> None:
    """Each requirement of the project and its dev extras, as installed, accepts pandas 3
    (a dependency pinning pandas<3 makes ``pip install -e ".[dev]"`` downgrade it)."""
    assert "lifelines" not in {r.name for r in _requirements()}
    for req in _requirements():
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing it pins
        for text in requires:
            dep = Requirement(text)
            if dep.name.lower() == "pandas" and (dep.marker is None
                                                 or dep.marker.evaluate({"extra": ""})):
                assert _allows_pandas_3(dep), f"{req.name} requires {text}"


def test_the_suite_runs_on_a_supported_pandas() -> None:
    major, minor = (int(p) for p in pd.__version__.split(".")[:2])
    assert (major, minor) >= (2, 2)
