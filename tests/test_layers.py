"""The three layers (model, experiments, command line) and the contract that keeps them.

``lint-imports`` (import-linter, configured in ``pyproject.toml``) checks the direction
of imports in CI; these tests show that the contract covers every model module and
that a wrong import breaks it, naming the import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Top-level parts of ``simulator`` that are not the model or below it.
ABOVE_THE_MODEL = {"cli", "experiments", "__main__", "__init__"}


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["importlinter"]["contracts"])


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    # import-linter is a dev dependency: without it the layer contract is unchecked.
    assert exe.exists(), "lint-imports is not installed (pip install -e '.[dev]')"
    return subprocess.run([str(exe), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": str(exe.parent), "PYTHONPATH": str(cwd)})


def test_every_model_module_is_held_by_the_forbidden_contract() -> None:
    forbidden = next(c for c in contracts() if c["type"] == "forbidden")
    sources = set(forbidden["source_modules"])  # type: ignore[call-overload]
    top = {p.stem if p.is_file() else p.name for p in (ROOT / "simulator").iterdir()
           if (p.suffix == ".py" or (p / "__init__.py").exists())}
    model = {f"simulator.{name}" for name in top - ABOVE_THE_MODEL}
    assert model - sources == set(), "add the new module to the forbidden contract"
    assert sources - model == set(), "the contract names a module that does not exist"
    assert set(forbidden["forbidden_modules"]) == {  # type: ignore[call-overload]
        "simulator.experiments", "simulator.cli", "analysis"}


def test_the_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "wrong"), [
    ("simulator/book.py", "simulator.cli"),
    ("simulator/scenario/schema.py", "simulator.experiments.sweep"),
    ("simulator/experiments/runner.py", "simulator.cli.helpers"),
    ("analysis/stats.py", "simulator.cli"),
])
def test_a_wrong_import_breaks_the_contract_and_is_named(tmp_path: Path, module: str,
                                                         wrong: str) -> None:
    for folder in ("simulator", "analysis"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\nimport {wrong}  # noqa\n",
                      encoding="utf-8")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {wrong}" in result.stdout, result.stdout


def test_no_module_imports_itself_back() -> None:
    """No import cycle between any two modules of simulator/ and analysis/, counting
    imports inside functions and under TYPE_CHECKING too."""
    graph = grimp.build_graph("simulator", "analysis")
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                cycles.append((module, *chain))
    assert cycles == []
