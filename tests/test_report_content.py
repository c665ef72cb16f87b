"""Reports say what was run and can be read: overrides shown, the compare headline and its
net-value figure, readable sweep figures (names, legends, Latin hypercubes), vector
copies of every figure, and a default scenario whose description matches the file."""

from __future__ import annotations

import html
import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from typer.testing import CliRunner

from analysis.factors import factor_label, short_name
from analysis.folder import open_folder
from analysis.headline import net_value_figure, net_value_lead
from analysis.report import _figure_plan, render_report
from analysis.tradeoff import tradeoff_figure
from simulator.cli import app
from simulator.experiments.compare import paired_interval
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
name: tiny-report
description: 5,000 accounts followed for 60 days.
seed: 9
population: {size: 5000}
horizon_days: 60
agents: {count: 1}
replications: 2
strategies: [{use: no_contact}, {use: fixed_cadence}, {use: risk_tiered}]
"""


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A comparison of three arms at 400 accounts (``--set``), with its report and the
    figures as SVG and PDF."""
    tmp = tmp_path_factory.mktemp("report")
    scenario = tmp / "tiny.yaml"
    scenario.write_text(TINY, encoding="utf-8")
    out = tmp / "cmp"
    invoke("compare", str(scenario), "--set", "population.size=400", "--out", str(out), "-q")
    invoke("report", str(out), "--figures", "svg", "--figures", "pdf")
    return out


# --------------------------------------------------------------------------- what was run


def test_report_shows_the_overrides_beside_the_description(compared: Path) -> None:
    page = (compared / "report.html").read_text(encoding="utf-8")
    assert "5,000 accounts followed for 60 days." in page  # the file's own description
    overrides = page[page.index('class="overrides"'):]
    overrides = html.unescape(overrides[:overrides.index("</p>")])
    assert "population.size=400" in overrides and "replications" not in overrides
    assert "the run followed these" in overrides
    assert "400 accounts" in page  # the header says what ran


def test_default_description_matches_the_file() -> None:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    text = " ".join(sc.description.split())
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight",
             10: "ten", 12: "a dozen"}
    assert f"{sc.population.size:,} " in text
    assert f"{sc.horizon_days:g} days" in text and sc.compliance.pack in text
    assert f"{words[sc.agents.count]} agents" in text, text
    assert f"{words[len(sc.agents.shifts)]} shifts" in text
    assert sc.agency.enabled == ("agency" in text)
    assert f"{sc.repayment.charge_off_dpd} days past due" in text


# --------------------------------------------------------------------------- headline


def test_compare_report_opens_with_the_net_value_headline(compared: Path) -> None:
    page = (compared / "report.html").read_text(encoding="utf-8")
    kpis = pd.read_csv(compared / "kpis.csv")
    means = kpis.groupby("strategy")["net_value"].mean().sort_values(ascending=False)
    leader, runner = means.index[0], means.index[1]
    headline = page[page.index('<section id="headline">'):page.index('<section id="kpis">')]
    text = html.unescape(re.sub(r"<[^>]+>", "", headline))
    assert text.startswith(f"Headline{leader} leads on net value")
    assert f"ahead of the next best, {runner}, by" in text
    by = kpis.pivot(index="replication", columns="strategy", values="net_value")
    diff, low, high = paired_interval(by[runner], by[leader])
    assert f"{diff:,.0f} CNY" in text and f"[{low:,.0f}, {high:,.0f}]" in text
    assert "fresh seeds" in text and "rough" in text
    assert 'id="fig-net-value"' in headline  # the figure opens the report with it
    lead = net_value_lead(kpis)
    assert lead is not None and lead.leader.strategy == leader


def test_net_value_figure_is_readable(compared: Path) -> None:
    assert_readable(net_value_figure(pd.read_csv(compared / "kpis.csv"), "CNY"))


def test_figures_are_also_written_as_svg_and_pdf(compared: Path) -> None:
    page = (compared / "report.html").read_text(encoding="utf-8")
    keys = re.findall(r'<figure id="fig-([^"]+)"><img', page)
    assert len(keys) >= 4
    for key in keys:
        svg = compared / f"report-{key}.svg"
        pdf = compared / f"report-{key}.pdf"
        assert b"<svg" in svg.read_bytes()[:2000], svg
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf
    r = CliRunner().invoke(app, ["report", str(compared), "--figures", "gif"])
    assert r.exit_code == 2 and "--figures" in r.stderr


# --------------------------------------------------------------------------- readable figures


def _inside(inner: Bbox, outer: Bbox, slack: float = 1.0) -> bool:
    return (inner.x0 >= outer.x0 - slack and inner.y0 >= outer.y0 - slack
            and inner.x1 <= outer.x1 + slack and inner.y1 <= outer.y1 + slack)


def assert_readable(fig: Figure) -> None:
    """Titles and legends inside the figure, legends off every axes, tick labels of an
    axis that do not run into each other."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    whole = fig.bbox
    texts: list[Text] = [t for t in (fig._suptitle,) if t is not None]
    for text in texts:
        assert _inside(text.get_window_extent(renderer), whole), text.get_text()
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        assert _inside(box, whole), "a legend reaches outside the figure"
        for ax in axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), "a legend over the data"
    for ax in axes:
        legend = ax.get_legend()
        if legend is not None:  # a legend inside the axes must not cover bars or points
            box = legend.get_window_extent(renderer)
            for artist in [*ax.patches, *ax.collections]:
                extent = artist.get_window_extent(renderer)
                assert not (extent.width and box.overlaps(extent)), "a legend over the data"
        title = ax.title
        if title.get_text():
            assert _inside(title.get_window_extent(renderer), whole)
        for axis in (ax.xaxis, ax.yaxis):
            boxes = sorted((t.get_window_extent(renderer) for t in axis.get_ticklabels()
                            if t.get_visible() and t.get_text()),
                           key=lambda b: (b.x0, b.y0))
            for a, b in itertools.pairwise(boxes):
                assert not a.overlaps(b), f"tick labels overlap: {axis.get_label_text()}"


def _fake_sweep(folder: Path, design: str) -> Path:
    """A sweep folder with a strategy factor and a scenario factor (a grid, or a Latin
    hypercube whose cells share no value)."""
    rng = np.random.default_rng(4)
    rows = []
    if design == "grid":
        points = [(a, e) for a in (2, 4) for e in (1, 3, 7)]
    else:
        points = [(int(rng.integers(1, 9)), float(rng.uniform(1, 14))) for _ in range(8)]
    for agents, every in points:
        for strategy in ("no_contact", "fixed_cadence"):
            for rep in range(2):
                cad = strategy == "fixed_cadence"
                rows.append({
                    "agents.count": agents,
                    "strategies.fixed_cadence.params.steps.2.every": every if cad else np.nan,
                    "strategy": strategy, "replication": rep, "seed": 100 + rep,
                    "recovery_rate": min(0.999, 0.9 + (0.05 / every if cad else 0)
                                         + rng.normal(0, 0.01)),
                    "churn_rate": (0.02 / every if cad else 0.0) + abs(rng.normal(0, 2e-3)),
                    "contact_cost": (500_000 / every + 10_000 * agents if cad else 0.0)
                    + abs(rng.normal(0, 5e3)),
                    "net_value": 1.2e7 + rng.normal(0, 1e5),
                    "cost_sms": 100.0 * cad, "cost_agent_call": 4000.0 / every * cad,
                })
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "kpis.csv", index=False)
    (folder / "cells").mkdir()
    resolved = {"name": f"fake-{design}", "design": design,
                "set": {"population.size": 4000},
                "strategies": [{"use": "no_contact"}, {"use": "fixed_cadence", "params": {
                    "steps": [{"channel": "sms", "days": [1]},
                              {"channel": "robocall", "days": [5]},
                              {"channel": "agent_call", "from_dpd": 10, "every": 3}]}}],
                "scenario": {"currency": "EUR", "horizon_days": 90}}
    (folder / "sweep.resolved.yaml").write_text(yaml.safe_dump(resolved), encoding="utf-8")
    return folder


@pytest.mark.parametrize("design", ["grid", "latin_hypercube"])
def test_sweep_figures_are_readable(tmp_path: Path, design: str) -> None:
    folder = open_folder(_fake_sweep(tmp_path / "sw", design))
    plan = _figure_plan(folder, 0.95)
    assert plan
    for key, title, _caption, draw in plan:
        assert "strategies.fixed_cadence.params" not in title, title
        fig = draw()
        assert_readable(fig)
        suptitle = fig._suptitle.get_text() if fig._suptitle else ""
        assert "strategies.fixed_cadence.params" not in suptitle, (key, suptitle)


def test_sweep_report_names_factors_readably(tmp_path: Path) -> None:
    folder = open_folder(_fake_sweep(tmp_path / "sw", "grid"))
    page = render_report(folder)
    table = page[page.index('<table class="kpi sweep"'):]
    head = html.unescape(table[:table.index("</thead>")])
    assert "fixed_cadence: agent-call interval in days (steps.2.every)" in head
    assert "agents (agents.count)" in head
    assert "contact cost (EUR)" in head and "net value (EUR)" in head
    assert "population.size=4000" in html.unescape(page)


def test_factor_labels() -> None:
    sweep = {"strategies": [{"use": "fixed_cadence", "params": {"steps": [
        {"channel": "sms"}, {"channel": "robocall"}, {"channel": "agent_call"}]}},
        {"use": "risk_tiered", "label": "tiers"}]}
    label = factor_label("strategies.fixed_cadence.params.steps.2.every", sweep)
    assert label == "fixed_cadence: agent-call interval in days (steps.2.every)"
    assert short_name(label) == "agent-call interval in days"
    assert factor_label("agents.count") == "agents (agents.count)"
    assert factor_label("population.score.auc") == "score AUC (population.score.auc)"
    # A field without a short name: the start of its schema description, else its name.
    assert factor_label("strategies.tiers.params.high_risk_score", sweep) == (
        "tiers: score below this is high risk (high_risk_score)")
    assert factor_label("metrics.wasted_window_days").endswith("(metrics.wasted_window_days)")


def test_latin_hypercube_is_drawn_as_points_not_lines(tmp_path: Path) -> None:
    kpis = pd.read_csv(_fake_sweep(tmp_path / "sw", "latin_hypercube") / "kpis.csv")
    factor = "strategies.fixed_cadence.params.steps.2.every"
    scatter = tradeoff_figure(kpis, factor, scatter=True)
    lines = tradeoff_figure(kpis, factor)
    for fig, joined in ((scatter, False), (lines, True)):
        data_lines = [ln for ax in fig.axes for ln in ax.get_lines()
                      if ln.get_linestyle() not in ("None", "none", "")
                      and len(ln.get_xdata()) > 1]
        assert bool(data_lines) == joined
    # The scatter colours its points by the factor, with a colour bar naming it.
    assert any(ax.get_label() == "<colorbar>" for ax in scatter.axes)
    assert math.isfinite(float(kpis[factor].max()))
