"""Intervals stay inside what a KPI can take (``simulator.kpis.kpi_range``).

The interval of a KPI's mean is the t-interval truncated to the KPI's range
(``simulator.experiments.compare.kpi_interval``); regression bands are cut the same way.
At 2 replications the t quantile is 12.7, so a plain t-interval of a rate near 0 % or
100 %, or of a rare count, reaches past the range: the end-to-end test below runs every
output that shows an interval at 2 replications and checks every KPI's interval, and
that some of them did need truncating (so the test can fail).
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from simulator.cli import app
from simulator.experiments.compare import (
    ROUGH_BELOW,
    bounded_interval,
    kpi_interval,
    rough_note,
    t_interval,
)
from simulator.experiments.regression import baseline_path_of, known_kpis
from simulator.kpis import NON_NEGATIVE, SHARE, TABLE_KPIS, UNBOUNDED, KpiRange, kpi_range
from simulator.scenario import load_scenario

#: Room for float formatting (values are written to CSV and YAML and read back).
SLACK = 1e-12

# --------------------------------------------------------------------------- the interval


def test_truncated_interval_on_hand_examples() -> None:
    # Complaints of 0, 0 and 4: the t-interval is 1.33 +- 4.30 * 1.33 = [-4.40, 7.07].
    mean, low, high = kpi_interval([0.0, 0.0, 4.0], "complaints")
    half = stats.t.ppf(0.975, 2) * np.std([0, 0, 4], ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(4 / 3)
    assert low == 0.0 and high == pytest.approx(4 / 3 + half)
    # A cure rate of 93 % and 99 %: the t-interval [0.579, 1.341] ends at 100 %.
    mean, low, high = kpi_interval([0.93, 0.99], "cure_rate")
    assert mean == pytest.approx(0.96) and high == 1.0
    assert low == pytest.approx(0.96 - stats.t.ppf(0.975, 1) * 0.03)
    # Net value is unbounded: the plain t-interval.
    assert kpi_interval([-5.0, 3.0], "net_value") == t_interval([-5.0, 3.0])
    # All replications equal, at the edge of the range: a zero-width interval there.
    assert kpi_interval([0.0, 0.0, 0.0], "churn_rate") == (0.0, 0.0, 0.0)
    assert kpi_interval([1.0, 1.0], "promise_kept_rate") == (1.0, 1.0, 1.0)
    # One replication: no interval; nothing finite: nothing at all.
    assert math.isnan(kpi_interval([0.5], "cure_rate")[1])
    assert all(math.isnan(v) for v in kpi_interval([math.nan, math.nan], "cure_rate"))
    # A column that is not a KPI keeps the t-interval.
    assert kpi_interval([1.0, 9.0], "not_a_kpi") == t_interval([1.0, 9.0])


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12),
       bounds=st.sampled_from([SHARE, NON_NEGATIVE, UNBOUNDED]))
def test_interval_is_inside_the_range_and_holds_the_mean(values: list[float],
                                                         bounds: KpiRange) -> None:
    mean, low, high = bounded_interval(values, bounds)
    t_mean, t_low, t_high = t_interval(values)
    assert mean == t_mean
    assert bounds.low <= low <= mean <= high <= bounds.high
    # Truncation only removes what the KPI cannot take: inside the range nothing moves.
    assert low == max(t_low, bounds.low) and high == min(t_high, bounds.high)


def test_rough_note_below_five_replications() -> None:
    assert "rough" in rough_note(2) and "12.7" in rough_note(2)
    assert "rough" in rough_note(ROUGH_BELOW - 1)
    assert rough_note(ROUGH_BELOW) == "" and rough_note(30) == ""


# --------------------------------------------------------------------------- end to end

TINY = """\
name: tiny-intervals
seed: 5
currency: EUR
population: {size: 700}
horizon_days: 90
repayment: {charge_off_dpd: 45}
agency: {enabled: true}
agents: {count: 1}
replications: 2
strategies: [{use: no_contact}, {use: fixed_cadence}, {use: risk_tiered}]
"""


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``run``, ``compare`` and ``report`` at 2 replications, and a regression baseline of
    every KPI written by ``check --update`` at 2 replications."""
    tmp = tmp_path_factory.mktemp("intervals")
    scenario = tmp / "tiny.yaml"
    scenario.write_text(TINY, encoding="utf-8")
    run_out, cmp_out = tmp / "run", tmp / "cmp"
    ran = invoke("run", str(scenario), "--out", str(run_out), "--no-events", "-q")
    compared = invoke("compare", str(scenario), "--out", str(cmp_out), "-q")
    invoke("report", str(cmp_out))
    names = sorted(known_kpis(load_scenario(scenario)))
    arms = {"no_contact": dict.fromkeys(names), "fixed_cadence": dict.fromkeys(names)}
    case = tmp / "case" / "tiny.yaml"
    case.parent.mkdir()
    case.write_text(TINY.replace("{use: risk_tiered}", "").replace(", ]", "]"), encoding="utf-8")
    baseline_path_of(case).write_text(yaml.safe_dump({"replications": 2, "arms": arms}),
                                      encoding="utf-8")
    updated = invoke("check", str(case), "--update", "-q")
    checked = CliRunner().invoke(app, ["check", str(case), "-q"])
    return {"summary": pd.read_csv(run_out / "summary.csv"),
            "kpis": pd.read_csv(run_out / "kpis.csv"),
            "comparison": pd.read_csv(cmp_out / "comparison.csv"),
            "report": (cmp_out / "report.html").read_text(encoding="utf-8"),
            "baseline": yaml.safe_load(baseline_path_of(case).read_text(encoding="utf-8")),
            "run_stdout": ran.stdout, "compare_stdout": compared.stdout,
            "update_stdout": updated.stdout, "check": checked}


def _check(kpi: str, low: float, high: float, where: str) -> bool:
    """Assert ``[low, high]`` lies in the KPI's range; True when it touches a finite end."""
    found = kpi_range(kpi)
    assert found is not None, f"{where}: {kpi} has no declared range"
    if math.isnan(low) and math.isnan(high):
        return False
    assert low >= found.low - SLACK and high <= found.high + SLACK, (
        f"{where}: {kpi} [{low}, {high}] leaves [{found.low}, {found.high}]")
    return bool(low == found.low or high == found.high) and found.bounded


def _check_frame(frame: pd.DataFrame, where: str) -> int:
    touching = 0
    for row in frame.itertuples(index=False):
        touching += _check(str(row.kpi), float(row.ci_low), float(row.ci_high), where)
    return touching


def test_plain_t_intervals_would_leave_the_range(outputs: dict[str, Any]) -> None:
    """What makes the tests below able to fail: at 2 replications the plain t-interval of
    several KPIs of this run reaches below 0 or above 100 %."""
    kpis = outputs["kpis"]
    leaving = set()
    for (strategy, kpi), values in kpis.melt(id_vars=["strategy", "replication", "seed"],
                                             var_name="kpi").groupby(["strategy", "kpi"]):
        _, low, high = t_interval(values["value"].to_numpy(dtype=float))
        bounds = kpi_range(str(kpi))
        assert bounds is not None
        if low < bounds.low or high > bounds.high:
            leaving.add((strategy, kpi))
    assert len(leaving) >= 5, leaving


def test_summary_csv_intervals_stay_in_range(outputs: dict[str, Any]) -> None:
    summary = outputs["summary"]
    assert (summary["replications"] == 2).all()
    assert len(set(summary["kpi"])) > 40  # every KPI, channels and rules included
    assert _check_frame(summary, "summary.csv") >= 5


def test_comparison_csv_mean_intervals_stay_in_range(outputs: dict[str, Any]) -> None:
    comparison = outputs["comparison"]
    assert _check_frame(comparison, "comparison.csv") >= 5
    # A paired difference is unbounded: its interval is the plain t-interval, which may
    # well be negative for a count.
    other = comparison[comparison["strategy"] != "no_contact"]
    assert (other["diff_low"] < 0).any()


def _report_intervals(page: str) -> list[tuple[str, float, float]]:
    """(KPI, low, high) of every interval in the report's KPI table, in KPI units."""
    table = page[page.index('<table class="kpi"'):]
    table = table[:table.index("</table>")]
    by_label = {label.strip(): (key, kind) for key, label, kind in TABLE_KPIS}
    out = []
    for row in re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", table):
        label = re.sub(r" \([A-Z]{3}\)$", "", html.unescape(row[0]))
        key, kind = by_label[label]
        for low, high in re.findall(r'class="ci">\[([-\d.,]+), ([-\d.,]+)\]', row[1]):
            scale = 100.0 if kind == "pct" else 1.0
            out.append((key, float(low.replace(",", "")) / scale,
                        float(high.replace(",", "")) / scale))
    return out


def test_report_intervals_stay_in_range(outputs: dict[str, Any]) -> None:
    found = _report_intervals(outputs["report"])
    assert len(found) >= 3 * 15
    # The report rounds (a rate to 0.1 point): allow for it.
    for kpi, low, high in found:
        bounds = kpi_range(kpi)
        assert bounds is not None
        assert low >= bounds.low - 1e-3 and high <= bounds.high + 1e-3, (kpi, low, high)
    assert "rough" in outputs["report"]


def test_regression_bands_stay_in_range(outputs: dict[str, Any]) -> None:
    baseline = outputs["baseline"]
    touching = 0
    for arm, kpis in baseline["arms"].items():
        assert len(kpis) > 40
        for kpi, entry in kpis.items():
            low, high = (math.nan, math.nan) if entry["band"] is None else entry["band"]
            touching += _check(kpi, float(low), float(high), f"baseline {arm}")
    assert touching >= 5
    assert outputs["check"].exit_code == 0, outputs["check"].output


def test_tables_and_check_say_two_replications_are_rough(outputs: dict[str, Any]) -> None:
    for key in ("run_stdout", "compare_stdout"):
        text = " ".join(outputs[key].split())
        assert "Only 2 replications: the intervals are rough" in text, key
        assert "[95% interval]" in text
    assert "rough" in outputs["update_stdout"]
    assert "rough" in outputs["check"].stdout
