"""The documents stay true to the project and to the code.

* No file tracked by git refers to a path outside the repository, and every relative
  link of a Markdown file points at a file inside it.
* ``docs/model.md`` exists; every "docs/model.md section N" cited anywhere, and every
  "section N" inside it, is a section it has; it names every scenario field and no field
  that does not exist, and the defaults it quotes are the schema's.
* ``docs/outputs.md`` lists exactly the columns of the files a run writes, the KPIs,
  the event kinds with their codes and the rules of every pack in their order.
* The README's strategy example is ``scenarios/examples/call_big_balances.py`` and runs.

Each check compares two sets or values exactly: a column, field or section added on one
side and not the other fails, naming it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from simulator.book import OUTCOMES
from simulator.compliance.packs import PACKS, RulePack
from simulator.engine import DAILY_STATES, LIVING_ACCOUNT_COLUMNS, Results, run
from simulator.experiments.cells import CELL_FIELDS
from simulator.experiments.compare import COMPARISON_COLUMNS
from simulator.experiments.outputs import write_outputs
from simulator.experiments.regression import Verdict
from simulator.experiments.runner import summarise
from simulator.experiments.sweep import load_sweep
from simulator.kpis import KPI_DEFINITIONS
from simulator.living_kpis import LIVING_KPIS
from simulator.recorder import EVENT_NAMES, PAY_AGENCY, PAY_DELINQUENT, PAY_PRE_DUE
from simulator.scenario import CHANNELS, Scenario, StrategySpec, scenario_from_dict
from simulator.scenario import schema as S
from simulator.strategies import make_requests
from simulator.strategies.arms import ARM_KPI_DEFINITIONS

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "docs" / "model.md"
OUTPUTS = REPO / "docs" / "outputs.md"
README = REPO / "README.md"
EXAMPLE = REPO / "scenarios" / "examples" / "call_big_balances.py"

# ----------------------------------------------------------------------------- helpers


def tracked_text_files() -> list[tuple[Path, str]]:
    """Every file git tracks that is UTF-8 text, with its text; outside a git checkout
    (an unpacked archive), every file of the project's tree but hidden folders, caches
    and build or run outputs."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (FileNotFoundError, subprocess.CalledProcessError):
        skipped = {"__pycache__", "out", "build", "dist"}
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if not any(part.startswith(".") or part in skipped
                            or part.endswith(".egg-info")
                            for part in p.relative_to(REPO).parts)]
    files = []
    for name in names:
        path = REPO / name
        if not path.is_file():
            continue
        try:
            files.append((path, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # images and other binary files
    return files


def sections(text: str, level: int = 2) -> dict[str, str]:
    """Markdown text by heading of the given level: heading text -> the text under it."""
    marker = "#" * level + " "
    found: dict[str, str] = {}
    heading = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(marker):
            if heading is not None:
                found[heading] = "\n".join(lines)
            heading, lines = line[len(marker):].strip(), []
        elif heading is not None:
            lines.append(line)
    if heading is not None:
        found[heading] = "\n".join(lines)
    return found


def table_rows(text: str) -> Iterator[list[str]]:
    """The cells of every row of every Markdown table in ``text``, header rows included,
    separator rows left out."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"\|[\s\-|:]+\|", line):
            yield [cell.strip() for cell in line.strip("|").split("|")]


def tables(text: str) -> list[list[list[str]]]:
    """The Markdown tables of ``text`` in order, each as its rows of cells (header first)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        row = list(table_rows(line))
        if line.strip().startswith("|"):
            current.extend(row)
        elif current:
            found.append(current)
            current = []
    return found


def code_name(cell: str) -> str | None:
    """The name in a cell that is exactly one backticked name, else None."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    return match.group(1) if match else None


def first_column_names(rows: list[list[str]]) -> list[str]:
    """The backticked names in the first column of a table, in order."""
    names = [code_name(row[0]) for row in rows]
    return [n for n in names if n is not None]


# ----------------------------------------------------------------------------- paths

# Assembled from parts, so that this file does not contain what it looks for.
OUTSIDE = ("/" + "work/", ".." + "/shared", "shared" + "/design", "/" + "home/",
           "/" + "Users/", "/" + "root/", "MODEL" + ".md", "ARCHITECTURE" + ".md",
           "STYLE" + ".md")


def test_no_tracked_file_refers_outside_the_repository() -> None:
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for path, text in tracked_text_files()
             for n, line in enumerate(text.splitlines(), 1)
             if any(p in line for p in OUTSIDE)]
    assert not found, "references to paths outside the repository:\n" + "\n".join(found)


def test_markdown_links_stay_inside_the_repository() -> None:
    broken = []
    for path, text in tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the same page
            resolved = (path.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(REPO) or not resolved.exists():
                broken.append(f"{path.relative_to(REPO)}: ({target})")
    assert not broken, "links that leave the repository or lead nowhere:\n" + "\n".join(broken)


# ----------------------------------------------------------------------------- model.md

_NUMBERS = r"\d+(?:\.\d+)?(?:\s*(?:-|,|and)\s*\d+(?:\.\d+)?)*"


def cited_sections(numbers: str) -> set[str]:
    """'2-4' -> {'2', '3', '4'}; '5 and 8' -> {'5', '8'}; '3.2' -> {'3.2'}."""
    cited: set[str] = set()
    for part in re.split(r"\s*(?:,|and)\s*", numbers.strip()):
        if "-" in part:
            low, high = (int(x) for x in part.split("-"))
            cited.update(str(k) for k in range(low, high + 1))
        else:
            cited.add(part)
    return cited


def model_sections() -> list[str]:
    """The numbers of the sections and subsections of docs/model.md, in order."""
    return re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", MODEL.read_text(encoding="utf-8"),
                      flags=re.M)


def test_model_document_exists_with_numbered_sections() -> None:
    assert MODEL.is_file(), "docs/model.md is missing"
    numbers = model_sections()
    top = [n for n in numbers if "." not in n]
    assert top == [str(k) for k in range(1, len(top) + 1)], f"sections out of order: {top}"
    assert len(top) >= 10, top


def test_every_cited_model_section_exists() -> None:
    have = set(model_sections())
    missing = []
    pattern = re.compile(r"docs/model\.md[\s#*,`]+sections?[\s#*]+(" + _NUMBERS + ")")
    for path, text in tracked_text_files():
        for match in pattern.finditer(text):
            absent = cited_sections(match.group(1)) - have
            if absent:
                missing.append(f"{path.relative_to(REPO)}: '{match.group(0)}' ({absent})")
    # Cross-references inside the document itself.
    for match in re.finditer(r"\bsections? (" + _NUMBERS + ")", MODEL.read_text("utf-8")):
        absent = cited_sections(match.group(1)) - have
        if absent:
            missing.append(f"docs/model.md: '{match.group(0)}' ({absent})")
    assert not missing, "citations of sections docs/model.md does not have:\n" + "\n".join(
        missing)


#: Sections of the schema documented as one parameter (a distribution, a range, one value
#: per channel, a list of shifts or bands), not field by field.
_VALUE_SECTIONS = (S.LogNormal, S.Range, S.PerChannel, S.Shift, S.RPCBand)


def scenario_fields(model: type[BaseModel] = S.Scenario, prefix: str = "") -> set[str]:
    """Every parameter of the scenario by dotted path, with ``<channel>`` and
    ``<segment>`` standing for the channels and segments."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        path = prefix + name
        if model is S.Channels and ann is S.Channel:
            path = prefix + "<channel>"
        if model is S.Population and name == "segments":
            paths.add(path)
            paths |= scenario_fields(S.Segment, path + ".<segment>.")
        elif (isinstance(ann, type) and issubclass(ann, S.Section)
              and not issubclass(ann, _VALUE_SECTIONS)):
            paths |= scenario_fields(ann, path + ".")
        else:
            paths.add(path)
    return paths


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, S.Section)


#: The scenario's sections (population, repayment, ...): how a field path begins.
_SECTION_NAMES = "|".join(name for name, field in S.Scenario.model_fields.items()
                          if _is_section(field.annotation))


def test_model_document_names_every_scenario_field_and_no_other() -> None:
    text = MODEL.read_text(encoding="utf-8")
    fields = scenario_fields()
    named = set(re.findall(r"`((?:" + _SECTION_NAMES + r")\.[\w.<>]+)`", text))
    unnamed = sorted(f for f in fields if f"`{f}`" not in text)
    unknown = sorted(named - fields)
    assert not unnamed, f"docs/model.md does not describe {unnamed}"
    assert not unknown, f"docs/model.md names fields the scenario does not have: {unknown}"


def default_of(path: str) -> Any:
    value: Any = Scenario()
    for part in path.split("."):
        value = getattr(value, part)
    return value


def same_value(cell: str, expected: Any) -> bool:
    """Whether a table cell quotes ``expected``: its leading number, a backticked text,
    or true/false."""
    if isinstance(expected, bool):
        return cell == str(expected).lower()
    if isinstance(expected, int | float):
        return float(cell) == float(expected)
    return cell == f"`{expected}`"


def quoted(cell: str) -> str | None:
    """What a default cell quotes, if it quotes a plain value: a leading number, a
    backticked value, or true/false; None for a described default."""
    match = re.match(r"(-?\d+(?:\.\d+)?)(?:\s|$)", cell)
    if match:
        return match.group(1)
    if re.fullmatch(r"`[^`]+`|true|false", cell):
        return cell
    return None


def test_model_document_quotes_the_schema_defaults() -> None:
    fields = scenario_fields()
    segments, channels = S.Population().segments, S.Channels()
    wrong = []
    checked = 0

    def check(where: str, cell: str, expected: Any) -> None:
        nonlocal checked
        if not isinstance(expected, bool | int | float | str):
            return  # a list or mapping: described in words
        value = quoted(cell)
        if value is None:
            return
        checked += 1
        if not same_value(value, expected):
            wrong.append(f"{where}: docs/model.md says {cell}, the schema {expected}")

    for table in tables(MODEL.read_text(encoding="utf-8")):
        header, rows = table[0], table[1:]
        if header[0] == "field":  # | `path` | default | source |
            for row in rows:
                path = code_name(row[0])
                if path is not None and "<" not in path and path in fields:
                    check(path, row[1], default_of(path))
        elif header[0] in ("segment", "channel"):  # a row per segment or channel
            for row in rows:
                owner = (segments[row[0]] if header[0] == "segment"
                         else getattr(channels, row[0]))
                for name, cell in zip(header[1:], row[1:], strict=True):
                    field = code_name(name)
                    assert field is not None, f"header cell {name} is not a field name"
                    check(f"{row[0]}.{field}", cell, getattr(owner, field))
    assert checked > 80, f"only {checked} defaults found to check"  # the tables were found
    assert not wrong, "\n".join(wrong)


# ----------------------------------------------------------------------------- outputs.md


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The files ``contactsim run`` writes for a small book: a plain arm and a split one
    (which adds the ``arm`` column and kpis_by_arm.csv), with an agency."""
    scenario = scenario_from_dict({
        "horizon_days": 60, "population": {"size": 400, "due_day": {"low": 0, "high": 10}},
        "agency": {"enabled": True}, "repayment": {"charge_off_dpd": 30}})
    specs = [StrategySpec(use="fixed_cadence"), StrategySpec(use="champion_challenger")]
    results: list[Results] = [run(scenario, spec, 7) for spec in specs]
    out = tmp_path_factory.mktemp("run")
    write_outputs(results, scenario, out)
    # A living book writes its own KPIs and account columns besides.
    living = scenario_from_dict({
        "horizon_days": 90, "population": {
            "size": 400, "billing": {"enabled": True}, "arrears": {"M1": 0.05, "M3": 0.02},
            "inflow": {"rate_per_day": 0.003}},
        "agency": {"enabled": True}, "metrics": {"warmup_days": 20}})
    living_results = [run(living, spec, 7) for spec in specs]
    living_out = tmp_path_factory.mktemp("living")
    write_outputs(living_results, living, living_out)
    return {"dir": out, "events": results[0].events, "living": living_out}


def columns_of(path: Path) -> list[str]:
    if path.suffix == ".csv":
        return list(pd.read_csv(path, nrows=0).columns)
    return list(pd.read_parquet(path).columns)


def documented(section: str, table: int = 0) -> list[str]:
    """The names in the first column of a table of a section of docs/outputs.md."""
    text = sections(OUTPUTS.read_text(encoding="utf-8"))
    assert section in text, f"docs/outputs.md has no section '{section}'"
    return first_column_names(tables(text[section])[table])


def collapse(names: list[str]) -> list[str]:
    """Per-channel and per-rule columns as one family each, at the first one's place."""
    out: list[str] = []
    for name in names:
        if name not in KPI_DEFINITIONS and name not in ARM_KPI_DEFINITIONS:
            for prefix in ("contacts_", "cost_"):
                if name.startswith(prefix) and name[len(prefix):] in CHANNELS:
                    name = prefix + "<channel>"
            if name.startswith("blocked_"):
                name = "blocked_<rule>"
        if name not in out:
            out.append(name)
    return out


FAMILIES = ["blocked_<rule>", "contacts_<channel>", "cost_<channel>"]


def test_outputs_lists_every_kpi_in_order() -> None:
    assert documented("kpis.csv") == [*KPI_DEFINITIONS, *FAMILIES]
    assert documented("kpis_by_arm.csv") == [*ARM_KPI_DEFINITIONS, "contacts_<channel>"]


@pytest.mark.parametrize("book", ["single_statement", "living"])
def test_outputs_lists_exactly_the_columns_of_the_files_run_writes(
        written: dict[str, Any], book: str) -> None:
    out = written["dir" if book == "single_statement" else "living"]
    # What only a living book writes is documented as such, in its place.
    for kpi in LIVING_KPIS:
        assert "a living book" in KPI_DEFINITIONS[kpi], kpi
    only_living = {"kpis.csv": set(LIVING_KPIS), "accounts.parquet": set(LIVING_ACCOUNT_COLUMNS)}

    def expected(section: str) -> list[str]:
        left_out = only_living.get(section, set()) if book != "living" else set()
        return [name for name in documented(section) if name not in left_out]

    kpis = columns_of(out / "kpis.csv")
    assert kpis[:3] == ["strategy", "replication", "seed"]
    assert collapse(kpis[3:]) == expected("kpis.csv")
    summary = summarise(pd.read_csv(out / "kpis.csv"))
    assert list(summary.columns) == documented("summary.csv")
    for name in ("events.parquet", "daily.parquet", "accounts.parquet",
                 "agents_daily.parquet"):
        assert collapse(columns_of(out / name)) == expected(name), name
    by_arm = columns_of(out / "kpis_by_arm.csv")
    assert by_arm[:3] == ["strategy", "replication", "arm"]
    assert collapse(by_arm[3:]) == documented("kpis_by_arm.csv")


def test_outputs_explains_every_event_kind_and_code() -> None:
    assert documented("events.parquet", 1) == list(EVENT_NAMES)
    text = sections(OUTPUTS.read_text(encoding="utf-8"))["events.parquet"]
    kinds = {code_name(row[0]): row for row in tables(text)[1]}
    # Payment stages and contact outcomes, by their code.
    assert (PAY_PRE_DUE, PAY_DELINQUENT, PAY_AGENCY) == (0, 1, 2)
    assert "0 before the due date, 1 while delinquent" in kinds["payment"][4]
    assert "2 after charge-off" in kinds["payment"][4]
    pairs = [(int(k), name) for k, name in re.findall(r"(\d) (\w+)", kinds["contact"][4])]
    assert pairs == [(OUTCOMES.index(name), name) for _, name in pairs]
    assert {name for _, name in pairs} == set(OUTCOMES) - {"none"}
    assert f"{OUTCOMES.index('none')}, none, is never written" in kinds["contact"][4]
    # Rule codes: each pack's rules in the order the engine counts them.
    packs = {str(code_name(row[0])): row[1] for row in tables(text)[2][1:]}
    assert set(packs) == set(PACKS)
    for pack, cell in packs.items():
        listed = [(int(k), name) for k, name in re.findall(r"(\d+) `([^`]+)`", cell)]
        assert listed == list(enumerate(RulePack.named(pack).rule_names)), pack
    daily = sections(OUTPUTS.read_text(encoding="utf-8"))["daily.parquet"]
    for state in DAILY_STATES:
        assert f"`{state}`" in daily, state


def test_outputs_lists_compare_sweep_and_check_fields() -> None:
    assert documented("comparison.csv (`compare`)") == list(COMPARISON_COLUMNS)
    assert documented("Sweeps (`sweep`)") == list(CELL_FIELDS)
    verdict = Verdict(scenario="s", arm="a", kpi="k", mode="replications", expected=1.0,
                      low=0.0, high=2.0, observed=1.0, se=0.1, tolerance=None, status="ok")
    assert documented("check --json") == list(verdict.as_dict())
    plan = load_sweep(REPO / "scenarios" / "sweeps" / "intensity_agents.yaml")
    prose = sections(OUTPUTS.read_text(encoding="utf-8"))["Sweeps (`sweep`)"]
    for key in plan.resolved():
        assert f"`{key}`" in prose, f"sweep.resolved.yaml key {key} is not described"


# ----------------------------------------------------------------------------- README


def readme_example() -> str:
    strategies = sections(README.read_text(encoding="utf-8"), level=3)["Strategies"]
    blocks = re.findall(r"```python\n(.*?)```", strategies, flags=re.S)
    assert len(blocks) == 1, "the Strategies section has one complete example"
    return blocks[0]


def test_readme_example_is_the_example_file() -> None:
    assert readme_example() == EXAMPLE.read_text(encoding="utf-8")


def test_readme_example_runs_as_documented(tmp_path: Path) -> None:
    """The README's code, loaded as a plug-in from a file, on a book where complaints
    happen often (so that "leave alone whoever complained" is exercised)."""
    (tmp_path / "mine.py").write_text(readme_example(), encoding="utf-8")
    scenario = scenario_from_dict({
        "horizon_days": 45, "population": {"size": 1500, "due_day": {"low": 0, "high": 5}},
        "attrition": {"complaint_sensitivity": 0.5}, "compliance": {"pack": "none"}})
    spec = StrategySpec(use="mine.py:CallBigBalances", params={"min_amount": 600})
    first = run(scenario, spec, 11, base_dir=tmp_path)
    again = run(scenario, spec, 11, base_dir=tmp_path)
    ev = first.events
    pd.testing.assert_frame_equal(ev, again.events)  # self.rng: the seed fixes the run
    contacts = ev[ev["event"] == "contact"]
    assert set(contacts["channel"].astype(str)) == {"agent_call", "sms"}
    hours = contacts.loc[contacts["channel"] == "sms", "t"].mod(1) * 24
    assert hours.between(10, 12).all() and hours.nunique() > 10  # 10:00 + up to 2 h
    complaints = ev[ev["event"] == "complaint"].groupby("account_id")["t"].min()
    assert len(complaints) >= 5, "the scenario must produce complaints to test the rule"
    after = contacts.merge(complaints.rename("t_complaint"), left_on="account_id",
                           right_index=True)
    # learn() sees a complaint at the next epoch; from then on nothing is sent.
    assert (after["t"] < np.floor(after["t_complaint"]) + 1).all()


def test_make_requests_dtypes_are_as_documented() -> None:
    req = make_requests([3, 1], "sms", 10, priority=[2, 1])
    assert req.dtypes.astype(str).to_dict() == {
        "account_id": "int64", "channel": "str", "hour": "float64", "priority": "float64"}
