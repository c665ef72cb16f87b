"""Broken scenario files, sweep files and command lines: each is refused with one line
naming the file (and the field, where there is one), exit code 2, and no traceback.

The cases are generated. A deterministic mutator over ``scenarios/default.yaml`` (widened
so that every section appears) gives every mapping an unknown key, every value and
section a wrong type, numbers out of range, NaN, infinities and huge values, and removes
required nested fields; hand-made files add empty files, text that is not YAML, binary
junk, other encodings, deep nesting, duplicate keys, Python tags and alias bombs. A
valid sweep file is mutated the same way. Everything runs in-process through the
loaders (fast); a representative subset runs through ``python -m simulator`` in
subprocesses. ``python tests/bad_input_report.py`` prints the counts the README quotes.

Cases marked ``xfail(strict=True)`` (none at present) are known failures: the reason
names the change needed, and a fixed case turns into an error until its mark goes.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from simulator.errors import UserError
from simulator.experiments.sweep import load_sweep
from simulator.scenario import load_scenario
from simulator.strategies import build_strategy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "scenarios" / "default.yaml"
UNKNOWN = "colour"  # the unknown key added to every mapping
RAW = "__RAW_TOKEN__"  # replaced by a raw YAML token after dumping
#: Each in-process case must be refused within this many seconds (alias bombs, deep
#: nesting and huge files must not hang the loader).
CASE_SECONDS = 5.0


@dataclass(frozen=True)
class Case:
    """One broken input: the file's bytes and what its one-line error must name."""

    id: str
    category: str
    content: bytes
    field: str | None = None  # the field the error must name, as a prefix of the path
    file_name: str = "broken.yaml"
    fragment: str | None = None  # something else the error must say


# --------------------------------------------------------------------------- scenarios

#: Sections absent from default.yaml, with their default values, so that the mutator
#: reaches every level of the schema.
WIDEN: dict[str, Any] = {
    "population": {
        "statement_lead_days": 15.0,
        "amount_due": {"mean": 600.0, "sigma": 0.6},
        "instalments_remaining": 11,
        "credit_line_multiple": {"low": 1.0, "high": 2.5},
        "products": {"shopping": 0.6, "education": 0.1, "travel": 0.15, "medical": 0.15},
        "ability_willingness_correlation": 0.5,
        "on_file": {"push": 0.75, "email": 0.6, "sms": 0.97, "robocall": 0.97,
                    "agent_call": 0.97},
        "do_not_contact_share": 0.01,
        "segments": {"cash_flow": {
            "share": 0.153, "partial_fraction": {"low": 0.2, "high": 0.7},
            "impulse_multiplier": {"sms": 1.5}, "tolerance": {"mean": 2.5, "sigma": 0.5},
            "score_bad": True}},
        "score": {"auc": 0.75, "mean": 650.0, "sd": 70.0},
    },
    "repayment": {"bucket_multiplier": {"M0": 1.0, "M1": 1.0, "M2": 1.0, "M3": 0.7,
                                        "M4": 0.4, "agency": 0.3},
                  "fatigue_factor": 0.7, "payday_period_days": 30.0,
                  "bureau_report_dpd": 30, "late_fee": 0.0},
    "channels": {"sms": {"enabled": True, "cost": 0.04, "delivery_prob": 0.97},
                 "unanswered_call_impulse": 0.01},
    "agents": {"shifts": [{"start": 8.0, "end": 14.0, "fraction": 0.5},
                          {"start": 14.0, "end": 20.0, "fraction": 0.5}],
               "work_days": [0, 1, 2, 3, 4, 5, 6],
               "handle_minutes": {"mean": 6.0, "sigma": 0.5},
               "rpc_by_hour": [{"from_hour": 0, "rate": 0.03}, {"from_hour": 8, "rate": 0.12}],
               "unmade_calls": "drop"},
    "attrition": {"pressure_half_life_days": 7.0, "churn_sensitivity": 0.03},
    "promises": {"enabled": True, "days": {"low": 1, "high": 7}, "partial_prob": 0.3},
    "decision": {"every_days": 1, "timeout_seconds": 60.0},
    "metrics": {"wasted_window_days": 30.0},
}

#: Fields that may be null.
NULLABLE = {"repayment.bureau_report_dpd", "strategies.0.label", "strategies.1.label",
            "strategies.2.label"}
#: Free-form mappings whose unknown keys are reported at the mapping itself.
REPORTED_AT_MAPPING = {"population.segments"}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def widened_default() -> dict[str, Any]:
    """default.yaml with every section written out (still a valid scenario)."""
    data = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))
    data = _merge(data, WIDEN)
    data["strategies"][1]["label"] = "cadence"
    return data


Path_ = tuple[str | int, ...]


def _walk(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every node under ``node`` (pre-order), skipping strategy parameters."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "params":
                yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def _set(data: Any, path: Path_, value: Any) -> None:
    for p in path[:-1]:
        data = data[p]
    data[path[-1]] = value


def _dump(data: dict[str, Any], raw: str | None = None) -> bytes:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
    if raw is not None:
        text = text.replace(RAW, raw)
    return text.encode("utf-8")


def _mutated(base: dict[str, Any], path: Path_, value: Any, raw: str | None = None) -> bytes:
    data = copy.deepcopy(base)
    _set(data, path, RAW if raw is not None else value)
    return _dump(data, raw)


def _wrong_values(path: Path_, value: Any) -> list[tuple[str, Any]]:
    """Values of the wrong type for a node that holds ``value``."""
    nullable = _dotted(path) in NULLABLE
    if isinstance(value, bool):
        out: list[tuple[str, Any]] = [("word", "maybe"), ("int2", 2), ("list", [1]),
                                      ("map", {"a": 1})]
    elif isinstance(value, int | float):
        out = [("word", "twelve"), ("list", [1, 2]), ("map", {"a": 1})]
    elif isinstance(value, str):
        out = [("number", 12), ("list", ["a"]), ("map", {"a": 1})]
    elif isinstance(value, list):
        out = [("number", 5), ("word", "text"), ("map", {"a": 1})]
    else:
        out = [("number", 5), ("word", "text"), ("list", [1, 2])]
    if not nullable and not isinstance(value, dict | list):
        out.append(("null", None))
    return out


#: (path, value, field the error names) of values out of their documented range.
OUT_OF_RANGE: list[tuple[str, Any, str | None]] = [
    ("seed", -1, None), ("seed", 2**64, None), ("replications", 0, None),
    ("replications", 10_001, None), ("horizon_days", 0, None), ("horizon_days", -5, None),
    ("horizon_days", 3651, None), ("population.size", 0, None),
    ("population.size", 50_000_001, None),
    ("population.due_day.low", 40, "population.due_day"),
    ("population.due_day.high", 4000, "population.due_day"),
    ("population.statement_lead_days", -1, None),
    ("population.statement_lead_days", 366, None),
    ("population.amount_due.mean", 0, None), ("population.amount_due.mean", -600, None),
    ("population.amount_due.sigma", -0.1, None), ("population.amount_due.sigma", 11, None),
    ("population.instalments_remaining", -1, None),
    ("population.instalments_remaining", 121, None),
    ("population.credit_line_multiple.low", 3.0, "population.credit_line_multiple"),
    ("population.products.shopping", 0.9, "population"),  # shares sum to 1.3
    ("population.products.shopping", 1.5, None),
    ("population.ability_willingness_correlation", 1.0, None),
    ("population.ability_willingness_correlation", -1.5, None),
    ("population.credit_line_multiple.low", -1.0, None),
    ("population.on_file.sms", 1.2, None), ("population.on_file.push", -0.1, None),
    ("population.do_not_contact_share", 1.01, None),
    ("population.segments.cash_flow.share", 0.5, "population"),  # shares sum to 1.35
    ("population.segments.cash_flow.share", -0.1, None),
    ("population.segments.cash_flow.partial_fraction.low", 0.9,
     "population.segments.cash_flow.partial_fraction"),
    ("population.segments.cash_flow.partial_fraction.low", -0.2, None),
    ("population.segments.cash_flow.partial_fraction.high", 1.5, None),
    ("population.segments.cash_flow.impulse_multiplier.sms", -1, None),
    ("population.segments.cash_flow.tolerance.mean", 0, None),
    ("population.segments.cash_flow.tolerance.sigma", 10.5, None),
    ("population.score.auc", 0.4, None), ("population.score.auc", 1.0, None),
    ("population.score.sd", 0, None),
    ("repayment.bucket_multiplier.M3", -0.7, None), ("repayment.fatigue_factor", 1.5, None),
    ("repayment.payday_period_days", 0.5, None), ("repayment.bureau_report_dpd", 0, None),
    ("repayment.late_fee", -1, None), ("repayment.charge_off_dpd", 1, None),
    ("repayment.charge_off_dpd", 3651, None),
    ("channels.sms.cost", -0.04, None), ("channels.sms.delivery_prob", 2, None),
    ("channels.unanswered_call_impulse", -0.01, None),
    ("agents.count", -1, None), ("agents.count", 100_001, None),
    ("agents.cost_per_hour", -40, None),
    ("agents.shifts.0.end", 6.0, "agents.shifts.0"), ("agents.shifts.0.start", 25, None),
    ("agents.shifts.0.fraction", 1.5, None), ("agents.work_days.0", 7, None),
    ("agents.handle_minutes.mean", 0, None),
    ("agents.rpc_by_hour.0.from_hour", 1, "agents.rpc_by_hour"),
    ("agents.rpc_by_hour.1.from_hour", 0, "agents.rpc_by_hour"),
    ("agents.rpc_by_hour.1.rate", 1.2, None), ("agents.unmade_calls", "sometimes", None),
    ("attrition.pressure_half_life_days", 0, None),
    ("attrition.churn_sensitivity", -0.03, None),
    ("promises.days.low", 10, "promises.days"), ("promises.days.low", -3, None),
    ("promises.partial_prob", 1.3, None),
    ("agency.commission", 1.3, None), ("agency.commission", -0.1, None),
    ("compliance.pack", "eu-gdpr", None),
    ("decision.every_days", 0, None), ("decision.every_days", 366, None),
    ("decision.timeout_seconds", 0, None), ("decision.timeout_seconds", 86_401, None),
    ("metrics.wasted_window_days", 0, None),
    ("strategies", [], None), ("strategies.0.use", "", None),
    ("strategies.2.label", "cadence", "strategies"),  # two arms named cadence
]

#: (mapping, required key removed from it). (A segment's fields are merged over the
#: segment's defaults, so none is missing when left out.)
MISSING: list[tuple[str, str]] = [
    ("population.due_day", "high"), ("population.due_day", "low"),
    ("population.amount_due", "mean"), ("population.credit_line_multiple", "low"),
    ("agents.shifts.0", "fraction"),
    ("agents.shifts.1", "start"), ("agents.rpc_by_hour.1", "rate"),
    ("agents.handle_minutes", "mean"), ("promises.days", "low"), ("strategies.0", "use"),
]

#: Numeric fields with an upper bound, and those without (where only NaN and the
#: infinities are out of range).
BOUNDED = ["seed", "replications", "horizon_days", "population.size",
           "population.due_day.high", "population.statement_lead_days",
           "population.amount_due.sigma", "population.instalments_remaining",
           "repayment.payday_period_days", "repayment.bureau_report_dpd",
           "repayment.charge_off_dpd", "agents.count", "agency.commission",
           "decision.every_days", "decision.timeout_seconds", "population.score.auc"]
UNBOUNDED = ["agents.cost_per_hour", "channels.sms.cost", "population.score.mean",
             "population.amount_due.mean", "repayment.late_fee", "population.due_day.low",
             "attrition.churn_sensitivity", "metrics.wasted_window_days"]
NOT_FINITE = [".nan", ".NaN", ".inf", "-.inf", "+.INF", "1.0e+400", "-1.0e+400"]
HUGE = [str(10**30), "1.0e+300", "0x" + "f" * 40, "123456789012345678901234567890.5"]
#: Integers too long to read at all (Python refuses int() of over 4,300 digits).
UNREADABLE_NUMBERS = ["9" * 5000, "-" + "9" * 5000]


def _path(dotted: str) -> Path_:
    return tuple(int(p) if p.isdigit() else p for p in dotted.split("."))


def _generated_scenario_cases() -> Iterator[Case]:
    base = widened_default()
    for path, value in _walk(base):
        dotted = _dotted(path)
        if isinstance(value, dict):
            data = copy.deepcopy(base)
            target: Any = data
            for p in path:
                target = target[p]
            target[UNKNOWN] = 1
            field = dotted if dotted in REPORTED_AT_MAPPING else _dotted((*path, UNKNOWN))
            yield Case(f"unknown_key:{dotted or '(top)'}", "unknown key", _dump(data), field)
        if not path:
            continue
        for label, wrong in _wrong_values(path, value):
            yield Case(f"wrong_type:{dotted}={label}", "wrong type",
                       _mutated(base, path, wrong), dotted)
    for dotted, value, named in OUT_OF_RANGE:
        yield Case(f"out_of_range:{dotted}={value!r}"[:120], "out of range",
                   _mutated(base, _path(dotted), value), named or dotted)
    for dotted, key in MISSING:
        data = copy.deepcopy(base)
        target = data
        for p in _path(dotted):
            target = target[p]
        del target[key]
        yield Case(f"missing:{dotted}.{key}", "missing field", _dump(data), f"{dotted}.{key}")
    for dotted in BOUNDED + UNBOUNDED:
        tokens = NOT_FINITE + (HUGE if dotted in BOUNDED else [])
        for token in tokens:
            # The bound on due days is checked on the range as a whole.
            field = "population.due_day" if token in HUGE and "due_day" in dotted else dotted
            yield Case(f"number:{dotted}={token[:24]}", "NaN, infinite or huge number",
                       _mutated(base, _path(dotted), None, raw=token), field)
    for dotted in ("seed", "population.size", "channels.sms.cost"):
        for token in UNREADABLE_NUMBERS:
            yield Case(f"number:{dotted}={token[:8]}...", "NaN, infinite or huge number",
                       _mutated(base, _path(dotted), None, raw=token), None, fragment="line")


def _billion_laughs(width: int = 9, levels: int = 9, flow: bool = True) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * width)
        lines.append(f"l{i}: &l{i} [{refs}]")
    lines.append(f"strategies: [{{use: no_contact, params: {{x: *l{levels - 1}}}}}]")
    return "\n".join(lines) + "\n"


def _mapping_laughs() -> str:
    lines = ["a0: &a0 {k0: lol, k1: lol, k2: lol, k3: lol, k4: lol, k5: lol}"]
    for i in range(1, 10):
        refs = ", ".join(f"k{j}: *a{i - 1}" for j in range(6))
        lines.append(f"a{i}: &a{i} {{{refs}}}")
    return "\n".join(lines) + "\n"


def _junk(seed: int, size: int) -> bytes:
    return np.random.default_rng(seed).bytes(size)


CONTROL = "control character or surrogate"


def _handmade_scenario_cases() -> Iterator[Case]:
    text: list[tuple[str, str, str, str | None, str | None]] = [
        # (id, category, content, field, fragment)
        ("empty", "empty file", "", None, "empty"),
        ("blank_lines", "empty file", "\n\n   \n", None, "empty"),
        ("comment_only", "empty file", "# nothing but a comment\n", None, "empty"),
        ("document_marker", "empty file", "---\n", None, "empty"),
        ("null_document", "empty file", "~\n", None, "empty"),
        ("list_document", "not a mapping", "- 1\n- 2\n", None, "mapping"),
        ("text_document", "not a mapping", "just some words\n", None, "mapping"),
        ("number_document", "not a mapping", "42\n", None, "mapping"),
        ("empty_list_document", "not a mapping", "[]\n", None, "mapping"),
        ("bool_document", "not a mapping", "yes\n", None, "mapping"),
        ("unclosed_list", "not YAML", "population: {size: [1, 2\n", None, "invalid YAML"),
        ("unclosed_map", "not YAML", "population: {size: 3\n", None, "invalid YAML"),
        ("bad_indent", "not YAML", "population:\n  size: 3\n due_day: 4\n", None,
         "invalid YAML"),
        ("tab_indent", "not YAML", "population:\n\tsize: 3\n", None, "invalid YAML"),
        ("colon_chain", "not YAML", "seed: a: b\n", None, "invalid YAML"),
        ("unterminated_quote", "not YAML", "name: 'unterminated\n", None, "invalid YAML"),
        ("list_then_map", "not YAML", "- a\nb: 1\n", None, "invalid YAML"),
        ("yaml_2_directive", "not YAML", "%YAML 2.0\n---\nname: x\n", None, "invalid YAML"),
        ("two_documents", "not YAML", "name: a\n---\nname: b\n", None, "invalid YAML"),
        ("undefined_alias", "not YAML", "name: *nowhere\n", None, "invalid YAML"),
        ("duplicate_anchor", "not YAML", "a: &x 1\nb: &x 2\n", None, "invalid YAML"),
        ("json_garbage", "not YAML", '{"name": "x",, }\n', None, "invalid YAML"),
        ("toml", "not YAML", "[population]\nsize = 3\n", None, None),
        ("ini_section", "not YAML", "[population\nsize=3\n", None, "invalid YAML"),
        ("merge_key", "not YAML", "d: &d {size: 300}\npopulation: {<<: *d}\n", None,
         "invalid YAML"),
        ("control_char", CONTROL, "name: \x07bell\n", None, "invalid YAML"),
        ("escape_char", CONTROL, "name: \x1b[31mred\n", None, "invalid YAML"),
        ("nul_in_text", CONTROL, "name: a\x00b\n", None, "invalid YAML"),
        ("escaped_surrogate", CONTROL, 'name: "\\ud800"\n', None, "Unicode"),
        ("surrogate_key", CONTROL, '"\\udfff": 1\n', None, "Unicode"),
        ("dup_top", "duplicate key", "seed: 1\nseed: 2\n", None, "duplicate key 'seed'"),
        ("dup_nested", "duplicate key", "population:\n  size: 3\n  size: 4\n", None,
         "duplicate key 'size'"),
        ("dup_flow", "duplicate key", "agents: {count: 1, count: 2}\n", None, "duplicate key"),
        ("dup_in_list_item", "duplicate key", "strategies:\n- use: a\n  use: b\n", None,
         "duplicate key 'use'"),
        ("dup_quoted", "duplicate key", "seed: 1\n'seed': 2\n", None, "duplicate key"),
        ("dup_multiline_key", "duplicate key", '"a\\nb": 1\n"a\\nb": 2\n', None,
         "duplicate key"),
        ("unhashable_key", "duplicate key", "? [1, 2]\n: 3\n", None, "mapping key"),
        ("python_apply", "YAML tag", "name: !!python/object/apply:os.system ['true']\n",
         None, "invalid YAML"),
        ("python_object_new", "YAML tag",
         "name: !!python/object/new:subprocess.Popen [['true']]\n", None, "invalid YAML"),
        ("python_name", "YAML tag", "name: !!python/name:os.system\n", None, "invalid YAML"),
        ("python_module", "YAML tag", "name: !!python/module:os\n", None, "invalid YAML"),
        ("python_tuple", "YAML tag", "agents: {work_days: !!python/tuple [1, 2]}\n", None,
         "invalid YAML"),
        ("python_top", "YAML tag", "!!python/object:builtins.dict {}\n", None,
         "invalid YAML"),
        ("custom_tag", "YAML tag", "name: !include other.yaml\n", None, "invalid YAML"),
        ("int_tag_on_word", "YAML tag", "seed: !!int abc\n", None, "line 1"),
        ("float_tag_on_word", "YAML tag", "horizon_days: !!float abc\n", None, "line 1"),
        ("bool_tag_on_word", "YAML tag", "agency: {enabled: !!bool maybe}\n", None,
         "line 1"),
        ("timestamp_tag_on_word", "YAML tag", "seed: !!timestamp notadate\n", None,
         "line 1"),
        ("timestamp_bad_date", "YAML tag", "seed: !!timestamp 2001-13-45\n", None, "line 1"),
        ("map_tag_on_list", "YAML tag", "population: !!map [1, 2]\n", None, "line 1"),
        ("seq_tag_on_map", "YAML tag", "strategies: !!seq {a: 1}\n", None, "line 1"),
        ("set_tag", "YAML tag", "name: !!set {a, b}\n", "name", None),
        ("timestamp_seed", "YAML tag", "seed: 2001-12-14\n", "seed", None),
        ("binary_tag_bad", "YAML tag", "name: !!binary 5\n", None, "invalid YAML"),
        ("omap_tag_bad", "YAML tag", "name: !!omap [1, 2]\n", None, "invalid YAML"),
        ("billion_laughs", "alias bomb", _billion_laughs(), None, "aliases"),
        ("billion_laughs_wide", "alias bomb", _billion_laughs(width=30, levels=6), None,
         "aliases"),
        ("mapping_laughs", "alias bomb", _mapping_laughs(), None, "aliases"),
        ("recursive_list", "alias bomb", "a: &a [*a, *a]\n", None, "alias"),
        ("recursive_mapping", "alias bomb", "a: &a {b: *a}\n", None, "invalid YAML"),
        ("deep_flow_41", "deep nesting", "x: " + "[" * 41 + "]" * 41 + "\n", None, "deeper"),
        ("deep_flow_1000", "deep nesting", "x: " + "[" * 1000 + "]" * 1000 + "\n", None,
         None),
        ("deep_flow_100000", "deep nesting", "x: " + "[" * 100_000 + "]" * 100_000 + "\n",
         None, "invalid YAML"),
        ("deep_block_60", "deep nesting",
         "".join(f"{'  ' * i}k{i}:\n" for i in range(60)) + "  " * 60 + "v: 1\n", None, None),
        ("deep_maps_flow", "deep nesting", "x: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
         None, None),
        ("deep_in_params", "deep nesting",
         "strategies: [{use: fixed_cadence, params: {steps: " + "[" * 50 + "]" * 50 + "}}]\n",
         None, "deeper"),
        ("newline_in_key", "unknown key", '"popu\\nlation": 1\n', "popu\\nlation", None),
        ("bidi_in_key", "unknown key", '"\\u202epopulation": 1\n', "\\u202epopulation",
         None),
        ("bool_key", "unknown key", "true: 1\n", None, "strings"),
        ("null_key", "unknown key", "~: 1\n", None, "strings"),
        ("number_key", "unknown key", "population: {1: 2}\n", "population", None),
        ("unknown_segment_newline", "unknown key",
         'population: {segments: {"a\\nb": {}}}\n', "population.segments", None),
        ("unknown_strategy_field", "unknown key", "strategies: [{use: no_contact, uses: x}]\n",
         "strategies.0.uses", None),
    ]
    for case_id, category, content, field, fragment in text:
        yield Case(case_id, category, content.encode("utf-8"), field, fragment=fragment)
    binary: list[tuple[str, bytes, str | None]] = [
        ("latin1", "name: café\n".encode("latin-1"), "UTF-8"),
        ("utf16_bom", "name: x\n".encode("utf-16"), "UTF-8"),
        ("utf32", "name: x\n".encode("utf-32"), "UTF-8"),
        ("overlong_utf8", b"name: \xc0\xaf\n", "UTF-8"),
        ("encoded_surrogate", b"name: \xed\xa0\x80\n", "UTF-8"),
        ("truncated_utf8", b"name: \xe2\x82\n", "UTF-8"),
        ("png_header", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None),
        ("gzip_header", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", None),
        ("elf_header", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8, None),
        ("nul_bytes", b"\x00" * 64, None),
        ("all_bytes", bytes(range(256)), None),
        *[(f"random_junk_{i}", _junk(i, n), None)
          for i, n in enumerate((1, 7, 64, 512, 4096, 65_536))],
        ("random_printable", bytes(np.random.default_rng(99).integers(32, 127, 2000,
                                                                     dtype=np.uint8)), None),
        ("over_size_limit", b"# " + b"x" * (2 * 1024 * 1024) + b"\n", "larger than"),
    ]
    for case_id, content_bytes, fragment in binary:
        yield Case(case_id, "binary junk or not UTF-8", content_bytes, fragment=fragment)


def scenario_cases() -> list[Case]:
    """Every broken scenario file, with a unique id."""
    cases = [*_generated_scenario_cases(), *_handmade_scenario_cases()]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert set(KNOWN_GAPS) <= set(ids)
    return cases


#: Broken files the loader accepts today: case id -> the change needed.
KNOWN_GAPS: dict[str, str] = {}


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Outcome:
    """What a case gave: whether it passed, and the message (or why it did not pass)."""

    passed: bool
    detail: str


def _one_line_naming(message: str, source: str, case: Case) -> Outcome:
    lines = message.splitlines()
    if len(lines) != 1 or not message.strip():
        return Outcome(False, f"not one line: {message!r}")
    if "Traceback" in message:
        return Outcome(False, f"traceback: {message!r}")
    if source not in message:
        return Outcome(False, f"does not name {source}: {message!r}")
    if case.field is not None and f": {case.field}" not in message:
        return Outcome(False, f"does not name the field {case.field}: {message!r}")
    if case.fragment is not None and case.fragment not in message:
        return Outcome(False, f"does not say {case.fragment!r}: {message!r}")
    return Outcome(True, message)


class _Hang(BaseException):
    """Raised in a case that runs far beyond ``CASE_SECONDS``."""


def _timed(call: Callable[[], object], virtual: bool = False
           ) -> tuple[BaseException | None, float]:
    """Run ``call``; what it raised and how long it took. A call that hangs is stopped
    after ``4 * CASE_SECONDS`` by an interval timer (in the main thread), of wall-clock
    time or, if ``virtual``, of CPU time."""

    def hang(signum: int, frame: object) -> None:
        raise _Hang(f"still running after {4 * CASE_SECONDS:g} s")

    which, sig = ((signal.ITIMER_VIRTUAL, signal.SIGVTALRM) if virtual
                  else (signal.ITIMER_REAL, signal.SIGALRM))
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(sig, hang) if main else None
    if main:
        signal.setitimer(which, 4 * CASE_SECONDS)
    start = time.perf_counter()
    try:
        call()
    except BaseException as exc:  # the case reports whatever escapes
        return exc, time.perf_counter() - start
    finally:
        if main:
            signal.setitimer(which, 0)
            signal.signal(sig, previous)
    return None, time.perf_counter() - start


def check_scenario_case(case: Case, folder: Path) -> Outcome:
    """Load the file as ``contactsim run`` does (validate, build every arm): refused?"""
    path = folder / case.file_name
    path.write_bytes(case.content)

    def load() -> None:
        sc = load_scenario(path)
        for spec in sc.strategies:
            build_strategy(spec, np.random.default_rng(0), folder)

    exc, seconds = _timed(load)
    if seconds > CASE_SECONDS:
        return Outcome(False, f"took {seconds:.1f} s")
    if exc is None:
        return Outcome(False, "accepted")
    if not isinstance(exc, UserError):
        return Outcome(False, f"{type(exc).__name__} escaped: {exc!r:.200}")
    return _one_line_naming(str(exc), str(path), case)


def _scenario_params() -> list[Any]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True,
                                                              reason=KNOWN_GAPS[c.id])]
                         if c.id in KNOWN_GAPS else []) for c in scenario_cases()]


@pytest.mark.parametrize("case", _scenario_params())
def test_broken_scenario_file_is_one_line_naming_file_and_field(case: Case,
                                                                tmp_path: Path) -> None:
    outcome = check_scenario_case(case, tmp_path)
    assert outcome.passed, outcome.detail


def test_the_mutator_starts_from_a_valid_scenario(tmp_path: Path) -> None:
    path = tmp_path / "widened.yaml"
    path.write_bytes(_dump(widened_default()))
    sc = load_scenario(path)
    assert sc.population.score.auc == 0.75 and len(sc.strategies) == 3


def test_enough_cases_of_every_kind() -> None:
    cases = scenario_cases()
    categories = {c.category for c in cases}
    assert len(cases) >= 200
    assert {"unknown key", "wrong type", "out of range", "missing field", "empty file",
            "not YAML", "binary junk or not UTF-8", "NaN, infinite or huge number",
            "deep nesting", "duplicate key", "YAML tag", "alias bomb"} <= categories


# --------------------------------------------------------------------------- extreme values

#: Segments and channels share their fields: one of each family is enough.
SKIP_FAMILIES = ("population.segments.on_time", "population.segments.self_curer",
                 "population.segments.unwilling", "population.segments.hardship",
                 "population.segments.unreachable", "channels.push", "channels.email",
                 "channels.robocall")


def _extreme_variants(value: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """The resolved default scenario (tiny) with one numeric field set to ``value``."""
    from simulator.scenario import Scenario

    base = Scenario().to_dict()
    base.update(horizon_days=5, strategies=[{"use": "fixed_cadence"}])
    base["population"]["size"] = 100
    for path, old in _walk(base):
        dotted = _dotted(path)
        if (isinstance(old, bool) or not isinstance(old, int | float)
                or dotted.startswith(SKIP_FAMILIES)
                or dotted == "decision.timeout_seconds"):  # see test_faulty_strategies
            continue
        data = copy.deepcopy(base)
        _set(data, path, value)
        yield dotted, data


@pytest.mark.parametrize("value", [1e300, 1e-9])
def test_extreme_values_that_validate_never_crash_a_run(value: float) -> None:
    """A huge or tiny value is refused when the scenario loads, or the run copes with it:
    no internal error and no hang (each run is stopped after ``4 * CASE_SECONDS`` of CPU)."""
    from simulator.engine import run
    from simulator.scenario import scenario_from_dict

    problems = []
    ran = 0
    for dotted, data in _extreme_variants(value):
        try:
            sc = scenario_from_dict(data, source=dotted)
        except UserError:
            continue
        ran += 1
        # CPU time, as the engine's own wall-clock timer (SIGALRM) is busy with strategies.
        exc, seconds = _timed(lambda sc=sc: run(sc, sc.strategies[0], seed=1), virtual=True)
        if (exc is not None and not isinstance(exc, UserError)) or seconds > CASE_SECONDS:
            problems.append(f"{dotted}={value:g}: {type(exc).__name__} {exc} ({seconds:.1f} s)")
    assert ran > 50
    assert not problems, problems


# --------------------------------------------------------------------------- strategy params

TINY = """\
name: tiny
seed: 7
population: {size: 300}
horizon_days: 20
agents: {count: 1}
strategies: [{use: no_contact}, {use: fixed_cadence}]
"""

#: Bad parameters of a built-in strategy: (id, params, field the error names).
BAD_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown", {"stepz": []}, "params.stepz"),
    ("wrong_type", {"pause_on_promise": "sometimes"}, "params.pause_on_promise"),
    ("steps_not_list", {"steps": 5}, "params.steps"),
    ("step_channel", {"steps": [{"channel": "fax", "hour": 10, "days": [1]}]},
     "params.steps.0.channel"),
    ("step_hour_nan", {"steps": [{"channel": "sms", "hour": float("nan"), "days": [1]}]},
     "params.steps.0.hour"),
]


@pytest.mark.parametrize(("params", "field"), [(p, f) for _, p, f in BAD_PARAMS],
                         ids=[i for i, _, _ in BAD_PARAMS])
def test_bad_strategy_parameters_name_the_strategy_and_field(params: dict[str, Any],
                                                             field: str,
                                                             tmp_path: Path) -> None:
    data = yaml.safe_load(TINY)
    data["strategies"][1]["params"] = params
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    sc = load_scenario(path)
    with pytest.raises(UserError) as err:
        build_strategy(sc.strategies[1], np.random.default_rng(0), tmp_path)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("strategy 'fixed_cadence': " + field), message


# --------------------------------------------------------------------------- sweeps

SWEEP = """\
name: tiny_sweep
description: two floors, two strategies
base: tiny.yaml
set: {population.size: 300, horizon_days: 20}
factors:
  grid:
    agents.count: [1, 2]
    strategies.fixed_cadence.params.pause_on_promise: [true, false]
strategies:
  - {use: no_contact}
  - {use: fixed_cadence}
replications: 1
"""

SWEEP_LH = """\
base: tiny.yaml
factors:
  latin_hypercube:
    samples: 3
    seed: 1
    ranges: {agents.count: [1, 4], population.score.auc: [0.6, 0.8]}
    integer: [agents.count]
"""


def _sweep_handmade() -> Iterator[Case]:
    items: list[tuple[str, str, str | None, str | None]] = [
        ("empty", "", None, "empty"),
        ("not_mapping", "- base: tiny.yaml\n", None, "mapping"),
        ("not_yaml", "base: [tiny.yaml\n", None, "invalid YAML"),
        ("duplicate_key", "base: tiny.yaml\nbase: tiny.yaml\n", None, "duplicate key"),
        ("python_tag", "base: !!python/object/apply:os.system ['true']\n", None,
         "invalid YAML"),
        ("alias_bomb", _billion_laughs().replace("strategies:", "base: tiny.yaml\nset:")
         .replace("[{use: no_contact, params: {x: *l8}}]", "{x: *l8}"), None, "aliases"),
        ("deep", "base: tiny.yaml\nset: {x: " + "[" * 60 + "]" * 60 + "}\n", None, "deeper"),
        ("no_base", "factors: {grid: {agents.count: [1]}}\n", "base", None),
        ("base_missing_file", "base: nowhere.yaml\n", None, "nowhere.yaml: file not found"),
        ("base_is_folder", "base: .\n", None, "folder"),
        ("base_broken", "base: broken_base.yaml\n", None, "broken_base.yaml"),
        ("base_number", "base: 5\n", "base", None),
        ("base_empty", "base: ''\n", "base", None),
        ("name_number", "name: 5\nbase: tiny.yaml\n", "name", None),
        ("unknown_top", "base: tiny.yaml\ncolour: 1\n", "colour", None),
        ("set_list", "base: tiny.yaml\nset: [1]\n", "set", None),
        ("set_unknown_field", "base: tiny.yaml\nset: {population.sise: 1}\n",
         "population.sise", None),
        ("set_out_of_range", "base: tiny.yaml\nset: {population.size: 0}\n",
         "population.size", None),
        ("set_strategies", "base: tiny.yaml\nset: {strategies.0.use: x}\n",
         "set.strategies.0.use", None),
        ("set_nan", "base: tiny.yaml\nset: {horizon_days: .nan}\n", "horizon_days", None),
        ("set_into_value", "base: tiny.yaml\nset: {seed.x: 1}\n", "set.seed.x", None),
        ("factors_number", "base: tiny.yaml\nfactors: 5\n", "factors", None),
        ("factors_empty", "base: tiny.yaml\nfactors: {}\n", "factors", None),
        ("factors_both", "base: tiny.yaml\nfactors: {grid: {agents.count: [1]}, "
         "latin_hypercube: {samples: 2, ranges: {agents.count: [1, 2]}}}\n", "factors", None),
        ("factors_unknown", "base: tiny.yaml\nfactors: {grid: {agents.count: [1]}, "
         "colour: 1}\n", "factors.colour", None),
        ("grid_list", "base: tiny.yaml\nfactors: {grid: [1, 2]}\n", "factors.grid", None),
        ("grid_empty", "base: tiny.yaml\nfactors: {grid: {}}\n", "factors.grid", None),
        ("grid_levels_scalar", "base: tiny.yaml\nfactors: {grid: {agents.count: 5}}\n",
         "factors.grid.agents.count", None),
        ("grid_levels_empty", "base: tiny.yaml\nfactors: {grid: {agents.count: []}}\n",
         "factors.grid", None),
        ("grid_levels_repeat", "base: tiny.yaml\nfactors: {grid: {agents.count: [1, 1]}}\n",
         "factors.grid", None),
        ("grid_level_list", "base: tiny.yaml\nfactors: {grid: {agents.count: [[1]]}}\n",
         "factors.grid.agents.count.0", None),
        ("grid_level_map", "base: tiny.yaml\nfactors: {grid: {agents.count: [{a: 1}]}}\n",
         "factors.grid.agents.count.0", None),
        ("grid_level_nan", "base: tiny.yaml\nfactors: {grid: {agents.count: [.nan]}}\n",
         "factors.grid.agents.count.0", None),
        ("grid_level_huge", "base: tiny.yaml\nfactors: {grid: {agents.count: "
         "[1000000000000000000000000000000]}}\n", "agents.count", None),
        ("grid_level_out_of_range", "base: tiny.yaml\nfactors: {grid: {agents.count: [-1]}}\n",
         "agents.count", None),
        ("grid_level_wrong_type", "base: tiny.yaml\nfactors: {grid: {agents.count: [lots]}}\n",
         "agents.count", None),
        ("factor_unknown_field", "base: tiny.yaml\nfactors: {grid: {agents.cont: [1]}}\n",
         "agents.cont", None),
        ("factor_key_newline", 'base: tiny.yaml\nfactors: {grid: {"agents.co\\nunt": [1]}}\n',
         "agents.co\\nunt", None),
        ("factor_replications", "base: tiny.yaml\nfactors: {grid: {replications: [1, 2]}}\n",
         "factors.grid.replications", None),
        ("factor_unknown_strategy", "base: tiny.yaml\nfactors: {grid: "
         "{strategies.nope.params.x: [1]}}\n", "factors.grid.strategies.nope.params.x", None),
        ("factor_strategy_param", "base: tiny.yaml\nfactors: {grid: "
         "{strategies.fixed_cadence.params.stepz: [1]}}\n", None, "unknown parameter"),
        ("lh_no_ranges", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2}}\n",
         "factors.latin_hypercube.ranges", None),
        ("lh_no_samples", "base: tiny.yaml\nfactors: {latin_hypercube: "
         "{ranges: {agents.count: [1, 2]}}}\n", "factors.latin_hypercube.samples", None),
        ("lh_samples_zero", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 0, "
         "ranges: {agents.count: [1, 2]}}}\n", "factors.latin_hypercube.samples", None),
        ("lh_samples_huge", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: "
         "1000000000000000000000000000000, ranges: {agents.count: [1, 2]}}}\n",
         "factors.latin_hypercube.samples", None),
        ("lh_samples_word", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: many, "
         "ranges: {agents.count: [1, 2]}}}\n", "factors.latin_hypercube.samples", None),
        ("lh_seed_negative", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "seed: -1, ranges: {agents.count: [1, 2]}}}\n", "factors.latin_hypercube.seed", None),
        ("lh_range_short", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {agents.count: [1]}}}\n", "factors.latin_hypercube.ranges.agents.count",
         None),
        ("lh_range_words", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {agents.count: [a, b]}}}\n", "factors.latin_hypercube.ranges.agents.count",
         None),
        ("lh_range_reversed", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {agents.count: [3, 1]}}}\n", "factors.latin_hypercube", None),
        ("lh_range_nan", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {population.score.auc: [.nan, 0.8]}}}\n",
         "factors.latin_hypercube.ranges.population.score.auc", None),
        ("lh_range_inf", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {population.score.auc: [0.6, .inf]}}}\n",
         "factors.latin_hypercube.ranges.population.score.auc", None),
        ("lh_range_out_of_field", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {population.score.auc: [0.1, 0.2]}}}\n", "population.score.auc", None),
        ("lh_integer_unknown", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {agents.count: [1, 2]}, integer: [agents.cont]}}\n",
         "factors.latin_hypercube", None),
        ("lh_integer_empty_range", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {agents.count: [0.2, 0.8]}, integer: [agents.count]}}\n",
         "factors.latin_hypercube", None),
        ("lh_unknown", "base: tiny.yaml\nfactors: {latin_hypercube: {samples: 2, "
         "ranges: {agents.count: [1, 2]}, colour: 1}}\n", "factors.latin_hypercube.colour",
         None),
        ("strategies_word", "base: tiny.yaml\nstrategies: no_contact\n", "strategies", None),
        ("strategies_empty", "base: tiny.yaml\nstrategies: []\n", "strategies", None),
        ("strategy_number", "base: tiny.yaml\nstrategies: [5]\n", "strategies.0", None),
        ("strategy_no_use", "base: tiny.yaml\nstrategies: [{label: x}]\n", "strategies.0.use",
         None),
        ("strategy_unknown_field", "base: tiny.yaml\nstrategies: [{use: no_contact, "
         "colour: 1}]\n", "strategies.0.colour", None),
        ("strategy_unknown", "base: tiny.yaml\nstrategies: [{use: nope}]\n", None,
         "unknown strategy"),
        ("strategy_duplicate", "base: tiny.yaml\nstrategies: [{use: no_contact}, "
         "{use: no_contact}]\n", "strategies", None),
        ("strategy_bad_param", "base: tiny.yaml\nstrategies: [{use: fixed_cadence, "
         "params: {stepz: 1}}]\n", None, "unknown parameter"),
        ("strategy_missing_file", "base: tiny.yaml\nstrategies: [{use: 'nowhere.py:X'}]\n",
         None, "not found"),
        ("replications_zero", "base: tiny.yaml\nreplications: 0\n", "replications", None),
        ("replications_huge", "base: tiny.yaml\nreplications: 1.0e+400\n", "replications",
         None),
        ("replications_word", "base: tiny.yaml\nreplications: some\n", "replications", None),
        ("replications_list", "base: tiny.yaml\nreplications: [1]\n", "replications", None),
        ("description_map", "base: tiny.yaml\ndescription: {a: 1}\n", "description", None),
    ]
    for case_id, text, field, fragment in items:
        yield Case(f"sweep:{case_id}", "broken sweep file", text.encode("utf-8"), field,
                   file_name="sweep.yaml", fragment=fragment)


def sweep_cases() -> list[Case]:
    """Every broken sweep file (a ``tiny.yaml`` base scenario sits beside it)."""
    cases = list(_sweep_handmade())
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    assert set(KNOWN_SWEEP_GAPS) <= set(ids)
    return cases


#: Broken sweep files not refused in one line today: case id -> the change needed.
KNOWN_SWEEP_GAPS: dict[str, str] = {}


def prepare_sweep_folder(folder: Path) -> None:
    (folder / "tiny.yaml").write_text(TINY, encoding="utf-8")
    (folder / "broken_base.yaml").write_text("population: {size: [\n", encoding="utf-8")


def check_sweep_case(case: Case, folder: Path) -> Outcome:
    prepare_sweep_folder(folder)
    path = folder / case.file_name
    path.write_bytes(case.content)
    exc, seconds = _timed(lambda: load_sweep(path))
    if seconds > CASE_SECONDS:
        return Outcome(False, f"took {seconds:.1f} s")
    if exc is None:
        return Outcome(False, "accepted")
    if not isinstance(exc, UserError):
        return Outcome(False, f"{type(exc).__name__} escaped: {exc!r:.200}")
    message = str(exc)
    # An error in the base scenario names the base file rather than the sweep file.
    source = str(folder) if "base" in case.id else str(path)
    return _one_line_naming(message, source, case)


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_SWEEP_GAPS[c.id])]
                 if c.id in KNOWN_SWEEP_GAPS else []) for c in sweep_cases()])
def test_broken_sweep_file_is_one_line_naming_file_and_field(case: Case,
                                                             tmp_path: Path) -> None:
    outcome = check_sweep_case(case, tmp_path)
    assert outcome.passed, outcome.detail


def test_the_sweep_mutations_start_from_valid_sweeps(tmp_path: Path) -> None:
    prepare_sweep_folder(tmp_path)
    for i, text in enumerate((SWEEP, SWEEP_LH)):
        path = tmp_path / f"ok{i}.yaml"
        path.write_text(text, encoding="utf-8")
        assert load_sweep(path).cells


def _generated_sweep_cases() -> Iterator[Case]:
    """Every mapping of the valid sweeps gets an unknown key, every node a wrong type."""
    for name, text in (("grid", SWEEP), ("lh", SWEEP_LH)):
        base = yaml.safe_load(text)
        for path, value in _walk(base):
            dotted = _dotted(path)
            if isinstance(value, dict) and path[:1] not in (("set",), ("strategies",)) \
                    and path[-1:] not in (("grid",), ("ranges",)):
                data = copy.deepcopy(base)
                target: Any = data
                for p in path:
                    target = target[p]
                target[UNKNOWN] = 1
                yield Case(f"sweep_{name}:unknown_key:{dotted or '(top)'}", "broken sweep file",
                           _dump(data), _dotted((*path, UNKNOWN)), file_name="sweep.yaml")
            if not path or path[:1] == ("set",) or path[:1] == ("description",):
                continue
            for label, wrong in _wrong_values(path, value):
                if label == "null" and path[-1] in ("name", "seed", "replications"):
                    continue  # optional fields
                if label == "word" and path[-2:-1] == ("grid",):
                    continue  # a single word is refused, but as "a list of values"
                yield Case(f"sweep_{name}:wrong_type:{dotted}={label}", "broken sweep file",
                           _mutated(base, path, wrong), None, file_name="sweep.yaml")


def generated_sweep_cases() -> list[Case]:
    return list(_generated_sweep_cases())


@pytest.mark.parametrize("case", generated_sweep_cases(), ids=lambda c: c.id)
def test_mutated_sweep_file_is_refused_in_one_line(case: Case, tmp_path: Path) -> None:
    outcome = check_sweep_case(case, tmp_path)
    assert outcome.passed, outcome.detail


# --------------------------------------------------------------------------- command lines

@dataclass(frozen=True)
class ArgCase:
    """A bad command line: its arguments (``{dir}`` is the case's folder) and what the
    one-line error must say."""

    id: str
    args: tuple[str, ...]
    fragments: tuple[str, ...]
    category: str = "argument"  # or "usage error": refused by the option parser
    xfail: str | None = None

    @property
    def says(self) -> tuple[str, ...]:
        """What the one line must say: a usage error also points at the command's help."""
        return (*self.fragments, "--help") if self.category == "usage error" else self.fragments


def arg_cases() -> list[ArgCase]:
    usage = "usage error"
    return [
        ArgCase("unknown_option", ("run", "{dir}/tiny.yaml", "--frobnicate"),
                ("--frobnicate",), usage),
        ArgCase("unknown_command", ("frobnicate",), ("frobnicate",), usage),
        ArgCase("missing_scenario_argument", ("run",), ("scenario",), usage),
        ArgCase("extra_argument", ("run", "{dir}/tiny.yaml", "{dir}/tiny.yaml"),
                ("argument",), usage),
        ArgCase("workers_zero", ("run", "{dir}/tiny.yaml", "--workers", "0"), ("--workers",),
                usage),
        ArgCase("workers_word", ("run", "{dir}/tiny.yaml", "--workers", "many"),
                ("--workers",), usage),
        ArgCase("replications_zero", ("run", "{dir}/tiny.yaml", "-r", "0"),
                ("--replications",), usage),
        ArgCase("seed_word", ("run", "{dir}/tiny.yaml", "--seed", "lucky"), ("--seed",),
                usage),
        ArgCase("option_without_value", ("run", "{dir}/tiny.yaml", "--out"), ("--out",),
                usage),
        ArgCase("sweep_without_out", ("sweep", "{dir}/sweep.yaml"), ("--out",), usage),
        ArgCase("sweep_workers_zero", ("sweep", "{dir}/sweep.yaml", "--out", "{dir}/o",
                                       "-w", "0"), ("--workers",), usage),
        ArgCase("set_without_equals", ("run", "{dir}/tiny.yaml", "--set", "agents.count"),
                ("--set", "KEY=VALUE")),
        ArgCase("set_without_key", ("run", "{dir}/tiny.yaml", "--set", "=3"),
                ("--set", "dotted key")),
        ArgCase("set_empty_part", ("run", "{dir}/tiny.yaml", "--set", "agents..count=3"),
                ("--set", "dotted key")),
        # A bad override names the option and what it set, not the scenario file.
        ArgCase("set_bad_value", ("run", "{dir}/tiny.yaml", "--set", "agents.count=lots"),
                ("--set agents.count=lots", "agents.count")),
        ArgCase("set_unknown_field", ("run", "{dir}/tiny.yaml", "--set", "agents.cont=3"),
                ("--set agents.cont=3", "agents.cont", "unknown field")),
        ArgCase("set_no_list_item", ("run", "{dir}/tiny.yaml", "--set",
                                     "strategies.9.use=x"), ("--set", "strategies.9")),
        ArgCase("set_huge_index", ("run", "{dir}/tiny.yaml", "--set",
                                   "strategies." + "9" * 5000 + ".use=x"), ("--set",)),
        ArgCase("set_inside_value", ("run", "{dir}/tiny.yaml", "--set", "seed.x=1"),
                ("--set", "seed.x")),
        ArgCase("set_python_tag", ("run", "{dir}/tiny.yaml", "--set",
                                   "seed=!!python/object/apply:os.system ['true']"),
                ("--set seed=!!python", "seed")),
        ArgCase("set_int_tag", ("run", "{dir}/tiny.yaml", "--set", "seed=!!int abc"),
                ("--set seed=!!int abc", "seed")),
        ArgCase("set_alias_bomb", ("run", "{dir}/tiny.yaml", "--set",
                                   "description=" + _billion_laughs().replace("\n", ", ")
                                   .replace("strategies: [{use: no_contact, params: {x: *l8}}]",
                                            "z: *l8").join("{}")),
                ("--set", "aliases")),
        ArgCase("seed_negative", ("run", "{dir}/tiny.yaml", "--seed", "-1"),
                ("--seed", "greater than or equal to 0")),
        ArgCase("missing_scenario_file", ("run", "{dir}/nope.yaml"),
                ("nope.yaml", "not found")),
        ArgCase("scenario_is_folder", ("run", "{dir}"), ("folder",)),
        ArgCase("out_is_a_file", ("run", "{dir}/tiny.yaml", "--out", "{dir}/tiny.yaml"),
                ("tiny.yaml", "output folder")),
        ArgCase("out_under_a_file", ("run", "{dir}/tiny.yaml", "--out", "{dir}/tiny.yaml/x"),
                ("output folder",)),
        ArgCase("unknown_strategy", ("run", "{dir}/tiny.yaml", "--strategy", "nope"),
                ("strategy 'nope'", "unknown strategy")),
        ArgCase("strategy_missing_file", ("run", "{dir}/tiny.yaml", "-s", "nowhere.py:X"),
                ("nowhere.py", "not found")),
        ArgCase("strategy_bad_reference", ("run", "{dir}/tiny.yaml", "-s", "a:b:"),
                ("module:Class",)),
        ArgCase("strategy_twice", ("run", "{dir}/tiny.yaml", "-s", "no_contact", "-s",
                                   "no_contact"), ("--strategy", "strategies", "unique")),
        ArgCase("sweep_missing_file", ("sweep", "{dir}/nope.yaml", "--out", "{dir}/o"),
                ("nope.yaml", "not found")),
        ArgCase("sweep_out_is_a_file", ("sweep", "{dir}/sweep.yaml", "--out",
                                        "{dir}/tiny.yaml"), ("tiny.yaml", "output folder")),
        ArgCase("sweep_workers_and_scheduler", ("sweep", "{dir}/sweep.yaml", "--out",
                                                "{dir}/o", "-w", "2", "--scheduler",
                                                "tcp://127.0.0.1:1"), ("--workers",)),
        ArgCase("markup_in_field", ("run", "{dir}/markup.yaml"), ("[/x]",)),
        ArgCase("markup_in_label", ("run", "{dir}/markup_label.yaml"), ("[bold]",)),
        ArgCase("bad_params_name_the_file", ("run", "{dir}/params.yaml"),
                ("params.yaml", "strategy 'fixed_cadence'", "params.stepz")),
        ArgCase("compare_strategy_twice", ("compare", "{dir}/tiny.yaml", "-r", "2", "-s",
                                           "no_contact,no_contact"),
                ("--strategies", "strategies", "unique")),
        ArgCase("compare_out_is_a_file", ("compare", "{dir}/tiny.yaml", "-r", "2", "--out",
                                          "{dir}/tiny.yaml"), ("tiny.yaml", "output folder")),
    ]


def prepare_cli_folder(folder: Path) -> None:
    prepare_sweep_folder(folder)
    (folder / "sweep.yaml").write_text(SWEEP, encoding="utf-8")
    (folder / "markup.yaml").write_text('"[/x]": 1\n', encoding="utf-8")
    # A bad parameter of an arm labelled with markup: the error quotes the label.
    (folder / "markup_label.yaml").write_text(
        TINY.replace("{use: fixed_cadence}", "{use: fixed_cadence, label: '[bold]', "
                     "params: {x: 1}}"), encoding="utf-8")
    (folder / "params.yaml").write_text(
        TINY.replace("{use: fixed_cadence}", "{use: fixed_cadence, params: {stepz: []}}"),
        encoding="utf-8")


def _expand(args: tuple[str, ...], folder: Path) -> list[str]:
    return [a.replace("{dir}", str(folder)) for a in args]


def check_cli_result(code: int, stderr: str, fragments: tuple[str, ...]) -> Outcome:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr:
        return Outcome(False, f"traceback (exit {code}): {stderr[-300:]!r}")
    if code != 2:
        return Outcome(False, f"exit {code}: {stderr[-300:]!r}")
    if len(lines) != 1:
        return Outcome(False, f"{len(lines)} lines on stderr: {stderr[:300]!r}")
    missing = [f for f in fragments if f not in lines[0]]
    if missing:
        return Outcome(False, f"does not say {missing}: {lines[0]!r}")
    return Outcome(True, lines[0])


def check_arg_case(case: ArgCase, folder: Path) -> Outcome:
    """Run the command line in-process (Typer's test runner), as ``contactsim`` would."""
    from simulator.cli import app

    prepare_cli_folder(folder)
    result = CliRunner().invoke(app, _expand(case.args, folder))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return Outcome(False, f"{type(result.exception).__name__} escaped (exit "
                              f"{result.exit_code}): {result.exception!r:.200}")
    return check_cli_result(result.exit_code, result.stderr, case.says)


def _arg_params() -> list[Any]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)]
                         if c.xfail else []) for c in arg_cases()]


@pytest.mark.parametrize("case", _arg_params())
def test_bad_command_line_is_one_line_exit_2(case: ArgCase, tmp_path: Path) -> None:
    outcome = check_arg_case(case, tmp_path)
    assert outcome.passed, outcome.detail


def test_help_still_works(tmp_path: Path) -> None:
    from simulator.cli import app

    for args in (["--help"], ["run", "--help"], ["sweep", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.stdout and not result.stderr, args
    # ``contactsim`` alone answers with the help, as a usage error (click's exit code 2).
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "Usage" in result.stdout and "error" not in result.stderr


def test_an_unusable_output_folder_is_refused_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.cli.compare
    import simulator.cli.run
    from simulator.cli import app

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the simulation started")

    monkeypatch.setattr(simulator.cli.run, "run_cells", never)
    monkeypatch.setattr(simulator.cli.compare, "run_tasks", never)
    prepare_cli_folder(tmp_path)
    tiny = str(tmp_path / "tiny.yaml")
    for command in (["run", tiny], ["compare", tiny, "-r", "2"]):
        for out in (tiny, f"{tiny}/sub"):
            result = CliRunner().invoke(app, [*command, "--out", out])
            outcome = check_cli_result(result.exit_code, result.stderr, (out, "output folder"))
            assert outcome.passed, (command, outcome.detail)


# --------------------------------------------------------------------------- real processes

#: Scenario and sweep cases run through ``python -m simulator`` as well.
SUBPROCESS_SCENARIOS = [
    "empty", "random_junk_3", "latin1", "billion_laughs", "dup_nested", "python_apply",
    "int_tag_on_word", "deep_flow_100000", "newline_in_key",
    "unknown_key:population.segments.cash_flow", "wrong_type:agents.shifts.0.start=word",
    "out_of_range:population.size=0", "number:horizon_days=.nan",
]
SUBPROCESS_SWEEPS = ["sweep:alias_bomb", "sweep:factor_unknown_field",
                     "sweep:lh_range_reversed", "sweep:base_broken"]
SUBPROCESS_ARGS = ["unknown_option", "unknown_command", "set_without_equals", "workers_zero",
                   "missing_scenario_argument", "scenario_is_folder", "out_is_a_file",
                   "set_alias_bomb", "sweep_out_is_a_file", "markup_in_field",
                   "strategy_twice", "bad_params_name_the_file"]


def contactsim(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@dataclass(frozen=True)
class ProcessCase:
    """One real ``python -m simulator`` invocation and what its error must say."""

    id: str
    args: list[str]
    fragments: tuple[str, ...]
    xfail: str | None = None


def subprocess_cases(folder: Path) -> list[ProcessCase]:
    """The representative subset, with its files written under ``folder``."""
    prepare_cli_folder(folder)
    out: list[ProcessCase] = []
    by_id = {c.id: c for c in scenario_cases()}
    for i, case_id in enumerate(SUBPROCESS_SCENARIOS):
        case = by_id[case_id]
        path = folder / f"scenario_{i}.yaml"
        path.write_bytes(case.content)
        fragments = (path.name, *([case.field] if case.field else []))
        out.append(ProcessCase(case_id, ["run", str(path), "--out", str(folder / "o")],
                               fragments))
    sweeps = {c.id: c for c in sweep_cases()}
    for i, case_id in enumerate(SUBPROCESS_SWEEPS):
        case = sweeps[case_id]
        path = folder / f"sweep_{i}.yaml"
        path.write_bytes(case.content)
        name = "broken_base.yaml" if "base" in case_id else path.name
        fragments = (name, *([case.field] if case.field else []))
        out.append(ProcessCase(case_id, ["sweep", str(path), "--out", str(folder / "o")],
                               fragments))
    args = {c.id: c for c in arg_cases()}
    for case_id in SUBPROCESS_ARGS:
        arg = args[case_id]
        out.append(ProcessCase(f"args:{case_id}", _expand(arg.args, folder), arg.says,
                               arg.xfail))
    return out


@pytest.fixture(scope="module")
def subprocess_outcomes(tmp_path_factory: pytest.TempPathFactory
                        ) -> dict[str, tuple[ProcessCase, Outcome]]:
    """Run the subset two at a time (the machine has two cores)."""
    folder = tmp_path_factory.mktemp("cli")
    cases = subprocess_cases(folder)

    def one(case: ProcessCase) -> tuple[ProcessCase, Outcome]:
        r = contactsim(case.args, cwd=folder)
        return case, check_cli_result(r.returncode, r.stderr, case.fragments)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return {case.id: (case, outcome) for case, outcome in pool.map(one, cases)}


def _subprocess_ids() -> list[Any]:
    xfails = {f"args:{c.id}": c.xfail for c in arg_cases() if c.xfail}
    ids = [*SUBPROCESS_SCENARIOS, *SUBPROCESS_SWEEPS, *(f"args:{a}" for a in SUBPROCESS_ARGS)]
    return [pytest.param(i, id=i, marks=[pytest.mark.xfail(strict=True, reason=xfails[i])]
                         if i in xfails else []) for i in ids]


@pytest.mark.parametrize("case_id", _subprocess_ids())
def test_real_command_line_exits_2_with_one_line(
        case_id: str, subprocess_outcomes: dict[str, tuple[ProcessCase, Outcome]]) -> None:
    _, outcome = subprocess_outcomes[case_id]
    assert outcome.passed, outcome.detail



# --------------------------------------------------------------------------- living book

#: (id, the scenario's living-book sections, what the one line must say: the field).
LIVING_BOOK_CASES: list[tuple[str, str, tuple[str, ...]]] = [
    ("cycle_shorter_than_pre_due_window",
     "population: {billing: {enabled: true, cycle_days: 10}, statement_lead_days: 15}\n",
     ("population.billing", "cycle_days", "statement_lead_days")),
    ("arrears_shares_above_one",
     "population: {billing: {enabled: true}, arrears: {M1: 0.7, M2: 0.2, M3: 0.1, M4: 0.1}}\n",
     ("population.arrears", "at most 1")),
    ("negative_inflow",
     "population: {billing: {enabled: true}, inflow: {rate_per_day: -0.001}}\n",
     ("population.inflow.rate_per_day",)),
    ("warmup_not_shorter_than_horizon",
     "horizon_days: 120\npopulation: {billing: {enabled: true}}\n"
     "metrics: {warmup_days: 120}\n",
     ("metrics", "warmup_days", "horizon_days")),
    ("arrears_without_billing", "population: {arrears: {M1: 0.05}}\n",
     ("population.arrears", "population.billing.enabled")),
    ("warmup_without_billing", "metrics: {warmup_days: 30}\n",
     ("metrics", "warmup_days", "population.billing.enabled")),
]


@pytest.mark.parametrize("case", LIVING_BOOK_CASES, ids=lambda c: c[0])
def test_bad_living_book_is_one_line_naming_the_field_exit_2(
        case: tuple[str, str, tuple[str, ...]], tmp_path: Path) -> None:
    from simulator.cli import app

    _, text, says = case
    path = tmp_path / "living.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    outcome = check_cli_result(result.exit_code, result.stderr, (str(path), *says))
    assert outcome.passed, outcome.detail
    assert not (tmp_path / "out").exists()  # refused before anything was written
