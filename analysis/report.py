"""One self-contained HTML report of a run, a comparison, a sweep, a robustness or a
power folder.

The report holds the overrides the run applied (``run.yaml``), a comparison's headline
(who leads on net value, by how much, with paired intervals, and a net-value figure), the
KPI table with 95 % intervals inside each KPI's range, every figure the folder's files
allow (PNG embedded as base64 ``data:`` URIs; also as SVG or PDF files beside the report
on request) and the resolved scenario, with no external asset, so it can be mailed or
archived as one file. A figure that cannot be drawn is replaced by a note saying why,
instead of failing the whole report.
"""

from __future__ import annotations

import base64
import functools
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.calibration import (
    calibration_tables_html,
    curve_figure,
    estimates_figure,
    other_targets_figure,
)
from analysis.calibration import headline as calibration_headline
from analysis.curves import (
    balance_figure,
    cost_figure,
    cure_curve_figure,
    roll_rate_figure,
    steady_state_figure,
    utilisation_figure,
)
from analysis.differences import differences_figure, has_differences
from analysis.factors import factor_labels
from analysis.folder import ResultsFolder, open_folder
from analysis.headline import headline_html, net_value_figure, net_value_lead
from analysis.pareto import pareto_figure, pareto_flags
from analysis.plotting import png_bytes, save_figure
from analysis.power import power_figure, power_section_html, read_power
from analysis.robust import (
    influential,
    probability_best_figure,
    regret_figure,
    robust_tables_html,
    winner_map_figure,
)
from analysis.stats import summarise_by
from analysis.tradeoff import format_factor_value, order_values, tradeoff_figure
from simulator.errors import UserError
from simulator.experiments.compare import rough_note
from simulator.experiments.outputs import atomic_write
from simulator.formatting import format_interval, format_number, format_value
from simulator.kpis import TABLE_KPIS

#: KPIs of the sweep table (one row per cell group), with their format.
SWEEP_TABLE_KPIS: tuple[tuple[str, str, str], ...] = (
    ("recovery_rate", "recovery rate", "pct"),
    ("cure_rate", "cure rate", "pct"),
    ("churn_rate", "churn rate", "pct"),
    ("contact_cost", "contact cost", "money"),
    ("net_value", "net value", "money"),
    ("agent_utilisation", "agent utilisation", "pct"),
    ("complaints_per_1000", "complaints per 1000", "num"),
)
#: Most factors a sweep report draws a trade-off figure for.
MAX_TRADEOFF_FACTORS = 4
#: Most rows of the sweep KPI table.
MAX_SWEEP_ROWS = 300
#: Most bar groups of a sweep's cost-by-channel figure.
MAX_COST_GROUPS = 12
#: Key of the compare report's net-value figure, shown with the headline.
NET_VALUE_FIGURE = "net-value"
#: Vector formats ``contactsim report --figures`` can also write each figure in.
FIGURE_FORMATS: tuple[str, ...] = ("svg", "pdf")


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: its PNG, or why it could not be drawn."""

    key: str
    title: str
    caption: str
    png: bytes | None = None
    error: str | None = None
    files: tuple[Path, ...] = ()


# --------------------------------------------------------------------------- figures


def _figure_plan(folder: ResultsFolder,
                 confidence: float) -> list[tuple[str, str, str, Callable[[], Figure]]]:
    """(key, title, caption, draw) of every figure the folder's files allow."""
    if folder.kind == "robust":
        return _robust_figure_plan(folder)
    if folder.kind == "calibrate":
        return _calibration_figure_plan(folder)
    if folder.kind == "power":
        return _power_figure_plan(folder)
    cur = folder.currency
    kpis = folder.kpis
    sc = folder.scenario
    horizon = float(sc.get("horizon_days") or 0.0)
    plan: list[tuple[str, str, str, Callable[[], Figure]]] = []
    factors = folder.factors
    labels = factor_labels(factors, folder.scenario)
    scatter = folder.design == "latin_hypercube"
    if folder.kind == "compare" and net_value_lead(kpis, confidence) is not None:
        plan.append((
            NET_VALUE_FIGURE, "Net value",
            "Net value of each strategy with its 95 % interval over replications (left), and "
            "each strategy's paired difference to the leader on the same seeds (right): the "
            "arms' intervals overlap much more than their paired differences vary.",
            lambda: net_value_figure(kpis, cur, confidence)))
    if factors:
        for f in factors[:MAX_TRADEOFF_FACTORS]:
            name = labels[f]
            how = ("each point one sampled cell of the Latin hypercube, coloured by the "
                   "factor's value" if scatter else
                   "each line one strategy (other factors fixed)")
            plan.append((
                f"tradeoff-{f}", f"Trade-off as {name} varies",
                f"Recovery rate against churn rate and contact cost, {how} as {name} "
                "varies; 95 % interval crosses over replications.",
                functools.partial(tradeoff_figure, kpis, f, cur, confidence,
                                  labels=labels, scatter=scatter)))
    else:
        plan.append((
            "tradeoff", "Trade-off between strategies",
            "Recovery rate against churn rate and contact cost, one point per strategy "
            "with 95 % CI crosses over replications.",
            lambda: tradeoff_figure(kpis, None, cur, confidence)))
    plan.append((
        "pareto", "Pareto frontier",
        "Strategies (and factor values) that no other beats on recovery, churn and contact "
        "cost at once; dominated points faded.",
        lambda: pareto_figure(kpis, cur, confidence, labels=labels)))
    if folder.kind == "compare" and has_differences(folder.comparison):
        comparison = folder.comparison
        assert comparison is not None
        plan.append((
            "differences", "Paired differences",
            "Each strategy minus the first on the same seeds (common random numbers), with "
            "the 95 % interval of the paired difference.",
            lambda: differences_figure(comparison, currency=cur)))
    accounts, daily, events = folder.accounts, folder.daily, folder.events
    if accounts is not None and horizon > 0:
        co = (sc.get("repayment") or {}).get("charge_off_dpd")
        plan.append((
            "cure", "Cure curves",
            "Kaplan-Meier share of delinquent accounts cured by day since the due date; "
            "accounts are censored when they churn or at the horizon, and written-off "
            "accounts stay in the denominator (they can no longer cure).",
            lambda: cure_curve_figure(accounts, horizon, confidence,
                                      float(co) if co is not None else None)))
        if horizon >= 60:
            plan.append((
                "roll", "Roll rates",
                "Where accounts in each bucket are 30 days later; snapshots every 30 days, "
                "replications pooled.",
                lambda: roll_rate_figure(accounts, horizon)))
    warmup = float((sc.get("metrics") or {}).get("warmup_days") or 0.0)
    if daily is not None:
        plan.append((
            "balance", "Amount owed by bucket",
            "Amount past due in each delinquency bucket, day by day; band: 95 % CI over "
            "replications" + ("; the warm-up shaded." if warmup > 0 else "."),
            lambda: balance_figure(daily, cur, confidence, warmup)))
        agents_daily = folder.agents_daily
        plan.append((
            "steady", "Steady state: buckets and the agent floor",
            "Accounts in each delinquency bucket (top) and the agents' day (bottom: calls "
            "queued, made and dropped, and utilisation, dashed), day by day, means over "
            "replications. The warm-up (metrics.warmup_days, shaded) is left out of the "
            "flow KPIs; after it, flat lines show a steady state.",
            lambda: steady_state_figure(daily, agents_daily, warmup)))
    if events is not None and isinstance(sc.get("agents"), dict) and horizon > 0:
        agents = sc["agents"]
        plan.append((
            "utilisation", "Agent utilisation by hour",
            "Agent time on calls (ring, talk and wrap-up) over staffed agent time, by hour of "
            "day; strategies without agent calls are left out.",
            lambda: utilisation_figure(events, agents, horizon, confidence)))
    groups = kpis.groupby(["strategy", *factors], sort=False).ngroups
    if any(c.startswith("cost_") for c in kpis.columns) and groups <= MAX_COST_GROUPS:
        plan.append((
            "cost", "Cost by channel",
            "Contact cost of each channel (agent calls at their agent time and the staffed-hour "
            "rate); 95 % CI bars over replications.",
            lambda: cost_figure(kpis, cur, ("strategy", *factors), confidence,
                                labels=labels)))
    return plan


def _robust_figure_plan(folder: ResultsFolder
                        ) -> list[tuple[str, str, str, Callable[[], Figure]]]:
    """The figures of a robustness folder: P(best), regret, and who wins where."""
    rank = folder.table("ranking.csv")
    objective = str(folder.scenario.get("objective", "net_value:max"))
    kpi, _, direction = objective.partition(":")
    cur = folder.currency
    params = folder.scenario.get("parameters") or {}
    paths = [str(p) for p in params] if isinstance(params, dict) else []
    labels = {p: str((params.get(p) or {}).get("label") or p) for p in paths}
    plan: list[tuple[str, str, str, Callable[[], Figure]]] = [
        ("p-best", "Probability of being best",
         f"Share of the plausible worlds (draws) in which each strategy has the best "
         f"{kpi}, ties shared; bars: 95 % bootstrap interval over draws.",
         lambda: probability_best_figure(rank)),
        ("regret", "Regret",
         f"The {kpi} lost by choosing each strategy, against the best strategy of each "
         "draw: the mean with its 95 % bootstrap interval over draws, the 95th percentile "
         "and the worst case.",
         lambda: regret_figure(rank, kpi, cur)),
    ]
    if paths and folder.has("results.csv"):
        results = folder.table("results.csv")
        sens = folder.table("sensitivity.csv") if folder.has("sensitivity.csv") else None
        where = folder.table("where.csv") if folder.has("where.csv") else None
        shown = influential(sens, paths) if sens is not None else paths[:2]
        plan.append((
            "winner-map", "Who wins where",
            "Each draw at its values of the "
            + ("two most influential parameters" if len(shown) > 1 else "uncertain parameter")
            + ", coloured by the strategy with the best objective; dashed: the bounds of the "
            "first PRIM box of the runner-up's wins on these two parameters (it may bound "
            "others too; where.csv lists them).",
            lambda: winner_map_figure(results, shown, labels, kpi, direction, where,
                                      order=rank.sort_values("rank")["strategy"].tolist())))
    return plan


def _calibration_figure_plan(folder: ResultsFolder
                             ) -> list[tuple[str, str, str, Callable[[], Figure]]]:
    """The figures of a calibration folder: observed against fitted, and the estimates."""
    fit = folder.table("fit.csv")
    estimates = folder.table("estimates.csv")
    params = folder.scenario.get("parameters") or {}
    log_scale = {str(p): bool((spec or {}).get("log")) or (spec or {}).get("distribution")
                 == "log_uniform" for p, spec in params.items()} if isinstance(params, dict) \
        else {}
    band = ("Observed: the data's targets with their 95 % band (bootstrap over accounts); "
            "fitted: the calibrated scenario re-run on fresh seeds, with its band.")
    return [
        ("cure-fit", "Cure curve: observed and fitted",
         "Share of newly delinquent statements cured before reaching each number of days "
         f"past due. {band} Dotted: a held-out target.",
         lambda: curve_figure(fit, "cure")),
        ("timing-fit", "Payment timing before the due date: observed and fitted",
         f"Share of statements paid in full at least k days before their due date (0: on "
         f"time). {band}",
         lambda: curve_figure(fit, "timing")),
        ("targets-fit", "Roll rates and contact rates: observed and fitted",
         f"Every other target with its 95 % interval. {band}",
         lambda: other_targets_figure(fit)),
        ("estimates", "Estimates within their prior range",
         "Each estimate (dot) and its 95 % parametric-bootstrap interval (bar) on its prior "
         "range; red: flagged not identified.",
         lambda: estimates_figure(estimates, log_scale)),
    ]


def figure_path(report: Path, key: str, fmt: str) -> Path:
    """Where ``--figures FMT`` writes the figure ``key``: beside the report,
    ``<report stem>-<key>.<fmt>`` (a factor's dots become underscores)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
    return report.with_name(f"{report.stem}-{safe}.{fmt}")


def report_figures(folder: ResultsFolder, confidence: float = 0.95,
                   formats: Sequence[str] = (), report: Path | None = None
                   ) -> list[ReportFigure]:
    """Draw every figure the folder allows, as PNG; with ``formats`` (``FIGURE_FORMATS``)
    also write each one beside ``report`` in those formats (``figure_path``)."""
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown:
        raise UserError(f"unknown figure format '{unknown[0]}' (expected one of "
                        f"{', '.join(FIGURE_FORMATS)})", source="--figures")
    if formats and report is None:
        raise ValueError("writing figure files needs the report's path")
    out = []
    for key, title, caption, draw in _figure_plan(folder, confidence):
        try:
            fig = draw()
            png = png_bytes(fig)
        except Exception as exc:  # one bad figure must not cost the whole report
            out.append(ReportFigure(key, title, caption,
                                    error=f"{type(exc).__name__}: {exc}"))
            continue
        files = []
        for fmt in formats:
            assert report is not None
            target = figure_path(report, key, fmt)
            try:
                files.append(save_figure(fig, target))
            except OSError as exc:
                raise UserError(f"cannot write ({exc.strerror})", source=str(target)) from None
        out.append(ReportFigure(key, title, caption, png=png, files=tuple(files)))
    return out


# --------------------------------------------------------------------------- tables


def _fmt_diff(d: float, low: float, high: float, kind: str) -> str:
    if not math.isfinite(d):
        return ""
    unit = " pp" if kind == "pct" else ""  # a difference of rates is in percentage points
    text = f"Δ {format_number(d, kind, signed=True)}{unit}"
    if math.isfinite(low) and math.isfinite(high):
        text += (f" [{format_number(low, kind, signed=True)}, "
                 f"{format_number(high, kind, signed=True)}]")
    return text


def _cell(mean: float, low: float, high: float, kind: str, extra: str = "",
          css: str = "") -> str:
    interval = format_interval(low, high, kind)
    parts = [f'<span class="v">{html.escape(format_value(mean, kind))}</span>']
    if interval:
        parts.append(f'<span class="ci">{html.escape(interval)}</span>')
    if extra:
        parts.append(f'<span class="d{css}">{html.escape(extra)}</span>')
    return "<td>" + "<br>".join(parts) + "</td>"


def _strategy_summary(folder: ResultsFolder, confidence: float) -> pd.DataFrame:
    """Mean and interval per strategy and KPI (long), from comparison.csv when present."""
    kpis = folder.kpis
    cols = [k for k, _, _ in TABLE_KPIS if k in kpis.columns]
    wide = summarise_by(kpis, ["strategy"], cols, confidence)
    rows = [{"strategy": r["strategy"], "kpi": k, "mean": r[k], "ci_low": r[f"{k}_low"],
             "ci_high": r[f"{k}_high"]} for _, r in wide.iterrows() for k in cols]
    long = pd.DataFrame(rows)
    comp = folder.comparison
    if comp is not None and {"strategy", "kpi", "mean", "ci_low", "ci_high"} <= set(comp):
        comp = comp.assign(strategy=comp["strategy"].astype(str))
        extra = [c for c in ("diff", "diff_low", "diff_high") if c in comp.columns]
        long = long[["strategy", "kpi"]].merge(
            comp[["strategy", "kpi", "mean", "ci_low", "ci_high", *extra]],
            on=["strategy", "kpi"], how="left").combine_first(long)
    return long


def kpi_table_html(folder: ResultsFolder, confidence: float = 0.95) -> str:
    """The KPI table: strategies as columns (run, compare) or cells as rows (sweep)."""
    if folder.factors:
        return _sweep_table_html(folder, confidence)
    summary = _strategy_summary(folder, confidence).set_index(["strategy", "kpi"])
    strategies = list(dict.fromkeys(folder.kpis["strategy"]))
    reps = int(folder.kpis.groupby("strategy").size().max())
    diffs = "diff" in summary.columns
    head = "".join(f"<th>{html.escape(s)}</th>" for s in strategies)
    body = []
    for key, label, kind in TABLE_KPIS:
        if not any((s, key) in summary.index for s in strategies):
            continue
        cells = []
        for i, s in enumerate(strategies):
            if (s, key) not in summary.index:
                cells.append("<td>-</td>")
                continue
            r = summary.loc[(s, key)]
            extra, css = "", ""
            if diffs and i > 0:
                extra = _fmt_diff(float(r["diff"]), float(r["diff_low"]),
                                  float(r["diff_high"]), kind)
                lo, hi = float(r["diff_low"]), float(r["diff_high"])
                css = " ns" if not (lo > 0 or hi < 0) else ""
            cells.append(_cell(float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]),
                               kind, extra, css))
        name = label.strip() + (f" ({folder.currency})" if kind == "money" else "")
        body.append(f'<tr><th scope="row">{html.escape(name)}</th>{"".join(cells)}</tr>')
    note = (f"Mean over {reps} replications and its {confidence:.0%} interval in brackets: "
            "the t-interval, kept inside what the KPI can take (a rate in [0, 100] %, a "
            "count or an amount at or above 0)." if reps > 1 else "One replication: no interval.")
    rough = rough_note(reps) if reps > 1 else ""
    if rough:
        note += f" <b>{html.escape(rough)}</b>"
    if diffs:
        note += (f" Δ: paired difference against {html.escape(strategies[0])} on the same "
                 "seeds, with its own interval; grey when the interval contains zero.")
    return (f'<table class="kpi"><thead><tr><th>KPI</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table><p class="note">{note}</p>'
            f"{_paid_before_start_html(folder.kpis, strategies)}")


def _paid_before_start_html(kpis: pd.DataFrame, strategies: list[str]) -> str:
    """One line: what was paid before day 0, left out of every money KPI."""
    if "paid_before_start" not in kpis.columns:
        return ""
    means = kpis.groupby("strategy", sort=False)["paid_before_start"].mean()
    values = ", ".join(f"{s} {format_value(float(means[s]), 'money')}"
                       for s in strategies if s in means.index)
    return ('<p class="note" id="paid-before-start">Paid before day 0 (statements issued '
            "before the run starts), not counted in cash collected nor in any money KPI: "
            f"{html.escape(values)} (mean per replication).</p>")


def _sweep_table_html(folder: ResultsFolder, confidence: float) -> str:
    kpis, factors = folder.kpis, folder.factors
    shown = [(k, lab, kind) for k, lab, kind in SWEEP_TABLE_KPIS if k in kpis.columns]
    pts = summarise_by(kpis, [*factors, "strategy"], [k for k, _, _ in shown], confidence)
    keys = pd.DataFrame({f"_f{i}": order_values(pts[f]) for i, f in enumerate(factors)})
    keys["_s"] = pd.factorize(pts["strategy"])[0]
    pts = pts.loc[keys.sort_values(list(keys.columns), kind="stable").index]
    objectives = {"recovery_rate", "churn_rate", "contact_cost"}
    frontier = (pareto_flags(pts) if objectives <= set(pts.columns)
                else [False] * len(pts))
    labels = factor_labels(factors, folder.scenario)
    head = "".join(f'<th title="{html.escape(f)}">{html.escape(labels[f])}</th>'
                   for f in factors)
    head += "<th>strategy</th><th>n</th>" + "".join(
        f"<th>{html.escape(lab)}{f' ({html.escape(folder.currency)})' if kind == 'money' else ''}"
        "</th>" for _, lab, kind in shown)
    body = []
    for (_, r), star in list(zip(pts.iterrows(), frontier, strict=True))[:MAX_SWEEP_ROWS]:
        cells = "".join(f"<td>{html.escape(format_factor_value(r[f]))}</td>" for f in factors)
        mark = ' <span class="star" title="on the Pareto frontier">★</span>' if star else ""
        cells += f"<td>{html.escape(str(r['strategy']))}{mark}</td><td>{int(r['n'])}</td>"
        cells += "".join(_cell(float(r[k]), float(r[f"{k}_low"]), float(r[f"{k}_high"]), kind)
                         for k, _, kind in shown)
        body.append(f"<tr>{cells}</tr>")
    note = (f"One row per factor values and strategy: mean over its replications (n) and the "
            f"{confidence:.0%} t-interval, kept inside what the KPI can take. ★: on the Pareto "
            "frontier (max recovery, min churn, min contact cost).")
    reps = int(pts["n"].min()) if len(pts) else 0
    rough = rough_note(reps) if reps > 1 else ""
    if rough:
        note += f" <b>{html.escape(rough)}</b>"
    if len(pts) > MAX_SWEEP_ROWS:
        note += f" First {MAX_SWEEP_ROWS} of {len(pts)} rows shown (all are in kpis.csv)."
    return (f'<table class="kpi sweep"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table><p class="note">{note}</p>')


# --------------------------------------------------------------------------- page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1240px;padding:1.5rem 2rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem}.meta{color:#555;margin-top:0}nav a{margin-right:1rem}
table.kpi{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
table.kpi th,table.kpi td{border:1px solid #ddd;padding:.25rem .55rem;text-align:right;
vertical-align:top}table.kpi th[scope=row],table.kpi thead th:first-child{text-align:left}
table.kpi thead th{background:#f4f6f8;max-width:11rem;overflow-wrap:anywhere}
table.kpi td{white-space:nowrap}table.kpi tbody tr:nth-child(even){background:#fafafa}
.ci{color:#666;font-size:.78rem}.d{color:#1f5f99;font-size:.78rem}.d.ns{color:#999}
.star{color:#c77700}.note{color:#555;font-size:.85rem}
.headline{font-size:1.05rem;background:#f4f8fc;border-left:4px solid #1f5f99;
padding:.6rem .9rem}.overrides{background:#fff8e5;border-left:4px solid #e0a800;
padding:.4rem .8rem;font-size:.9rem}code{font-size:.85em}
figure{margin:1.5rem 0;padding:0}figure img{max-width:100%;height:auto;
border:1px solid #eee}figcaption{color:#444;font-size:.88rem;margin-top:.3rem}
.headline{font-size:1.1rem}
.missing{background:#fff4e5;border:1px solid #f0c36d;padding:.6rem;font-size:.9rem}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:.8rem;overflow:auto;
font-size:.78rem;max-height:40rem}
"""

def _version() -> str:
    try:
        return version("contactsim")
    except PackageNotFoundError:  # a source tree that was not installed
        return "(not installed)"


_KIND_TEXT = {"run": "a run", "compare": "a comparison", "sweep": "a sweep",
              "robust": "a robustness analysis", "power": "a power analysis",
              "calibrate": "a calibration"}


def _robust_meta(folder: ResultsFolder) -> str:
    r = folder.scenario
    sc = r.get("scenario") if isinstance(r.get("scenario"), dict) else {}
    design = r.get("design") if isinstance(r.get("design"), dict) else {}
    parts = [f"Report of {_KIND_TEXT['robust']}", f"folder {folder.path.resolve()}",
             f"objective {r.get('objective', '?')}",
             f"{len(r.get('strategies') or [])} strategies",
             f"{design.get('draws', '?')} draws ({design.get('kind', '?')})",
             f"{r.get('replications', '?')} replication(s) per draw on common seeds"]
    pop = sc.get("population") if isinstance(sc, dict) else None
    if isinstance(pop, dict) and "size" in pop:
        parts.append(f"{int(pop['size']):,} accounts")
    if isinstance(sc, dict) and "horizon_days" in sc:
        parts.append(f"{float(sc['horizon_days']):g} days")
    parts.append(f"contactsim {_version()}")
    return " · ".join(html.escape(p) for p in parts)


def _calibration_meta(folder: ResultsFolder) -> str:
    r = folder.scenario
    found = r.get("strategy")
    strategy: dict[str, object] = found if isinstance(found, dict) else {}
    parts = [f"Report of {_KIND_TEXT['calibrate']}", f"folder {folder.path.resolve()}",
             f"targets {r.get('targets_file', '?')}",
             f"policy {strategy.get('label') or strategy.get('use', '?')}",
             f"{len(r.get('parameters') or {})} parameters",
             f"{r.get('budget', '?')} trials, {r.get('refits', '?')} bootstrap refits",
             f"{len(r.get('seeds') or [])} seed(s) per trial", f"contactsim {_version()}"]
    return " · ".join(html.escape(str(p)) for p in parts)


def _power_meta(folder: ResultsFolder) -> str:
    _, summary = read_power(folder.path)
    design = summary["design"]
    parts = [f"Report of {_KIND_TEXT['power']}", f"folder {folder.path.resolve()}",
             f"whole book {int(design['book_size']):,} accounts",
             f"sizes {', '.join(f'{int(s):,}' for s in design['sizes'])}",
             f"contactsim {_version()}"]
    return " · ".join(html.escape(p) for p in parts)


def _meta(folder: ResultsFolder) -> str:
    if folder.kind == "robust":
        return _robust_meta(folder)
    if folder.kind == "calibrate":
        return _calibration_meta(folder)
    if folder.kind == "power":
        return _power_meta(folder)
    kpis = folder.kpis
    sc = folder.scenario.get("scenario", folder.scenario) if folder.kind == "sweep" \
        else folder.scenario
    if not isinstance(sc, dict):
        sc = {}
    parts = [f"Report of {_KIND_TEXT[folder.kind]}", f"folder {folder.path.resolve()}"]
    strategies = list(dict.fromkeys(kpis["strategy"]))
    parts.append(f"{len(strategies)} strateg{'y' if len(strategies) == 1 else 'ies'}")
    if folder.factors:
        labels = factor_labels(folder.factors, folder.scenario)
        parts.append(f"factors {'; '.join(labels[f] for f in folder.factors)}")
        if folder.design != "none":
            parts.append(f"design {folder.design.replace('_', ' ')}")
    reps = kpis.groupby(["strategy", *folder.factors]).size()
    parts.append(f"{int(reps.max())} replication{'s' if reps.max() > 1 else ''}")
    pop = sc.get("population")
    if isinstance(pop, dict) and "size" in pop:
        parts.append(f"{int(pop['size']):,} accounts")
    if "horizon_days" in sc:
        parts.append(f"{float(sc['horizon_days']):g} days")
    comp = sc.get("compliance")
    if isinstance(comp, dict) and comp.get("pack"):
        parts.append(f"pack {comp['pack']}")
    parts.append(f"contactsim {_version()}")
    return " · ".join(html.escape(p) for p in parts)


def _overrides_html(folder: ResultsFolder, described: bool) -> str:
    """The overrides applied to the scenario file, shown under its description."""
    given = folder.overrides
    if not given:
        return ""
    what = ("Set in every variant of the sweep" if folder.kind == "sweep"
            else "Overrides applied to the scenario file")
    source = folder.run_info.get("scenario_file")
    if source and folder.kind != "sweep":
        what += f" {html.escape(str(source))}"
    items = ", ".join(f"<code>{html.escape(o)}</code>" for o in given)
    caveat = (" The description above is the file's own text: where it disagrees with these, "
              "the run followed these (the resolved scenario below has every value used)."
              if described else "")
    return f'<p class="overrides">{what}: {items}.{caveat}</p>'


def _figure_html(fig: ReportFigure) -> str:
    title = html.escape(fig.title)
    if fig.png is None:
        return (f'<figure id="fig-{fig.key}"><div class="missing">{title}: not drawn '
                f"({html.escape(fig.error or 'unknown error')})</div></figure>")
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="fig-{fig.key}"><img src="data:image/png;base64,{data}" '
            f'alt="{title}"><figcaption><b>{title}.</b> {html.escape(fig.caption)}'
            "</figcaption></figure>")


def render_report(folder: ResultsFolder, figures: Sequence[ReportFigure] | None = None,
                  confidence: float = 0.95) -> str:
    """The report of ``folder`` as one HTML page."""
    figs = report_figures(folder, confidence) if figures is None else list(figures)
    title = f"contactsim: {folder.title}"
    scenario_name = folder.scenario_file.name if folder.scenario_file else "none"
    scenario = (f"<pre>{html.escape(folder.scenario_text)}</pre>" if folder.scenario_text
                else '<p class="note">No resolved scenario in the folder.</p>')
    description = folder.scenario.get("description")
    desc = f"<p>{html.escape(str(description))}</p>" if description else ""
    desc += _overrides_html(folder, bool(description))
    lead = net_value_lead(folder.kpis, confidence) if folder.kind == "compare" else None
    # The net-value figure opens the report with the headline, not among the figures.
    top = [f for f in figs if f.key == NET_VALUE_FIGURE]
    figs = [f for f in figs if f.key != NET_VALUE_FIGURE]
    headline = (f'<section id="headline"><h2>Headline</h2>'
                f"{headline_html(lead, folder.currency, confidence)}"
                f"{''.join(_figure_html(f) for f in top)}</section>"
                if lead is not None else "")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><p class=\"meta\">{_meta(folder)}</p>{desc}",
        '<nav>' + ('<a href="#headline">Headline</a>' if headline else "")
        + '<a href="#kpis">KPIs</a><a href="#figures">Figures</a>'
        '<a href="#scenario">Scenario</a></nav></header>',
        headline,
        _first_section(folder, confidence),
        '<section id="figures"><h2>Figures</h2>',
        *(_figure_html(f) for f in figs),
        "</section>",
        f'<section id="scenario"><h2>Resolved scenario ({html.escape(scenario_name)})</h2>'
        f"{scenario}</section>",
        "</body></html>",
    ])


def _power_figure_plan(folder: ResultsFolder
                       ) -> list[tuple[str, str, str, Callable[[], Figure]]]:
    """The power curve of every outcome of a power folder."""
    table, summary = read_power(folder.path)
    caption = ("Share of simulated trials rejecting at alpha, with its 95 % Wilson "
               "interval, at each trial size; dashed: the closed form (NormalIndPower) "
               "with the whole-book within-trial effect; dotted: the 80 % line (with "
               "--null: alpha).")
    return [(f"power-{metric}", f"Power curve: {metric}", caption,
             lambda metric=metric: power_figure(table, summary, metric))
            for metric in summary["metrics"]]


def _first_section(folder: ResultsFolder, confidence: float) -> str:
    """The KPI table; for a robustness folder its answer tables, for a power folder the
    power of the trial, for a calibration its estimates and fit."""
    if folder.kind == "calibrate":
        estimates, fit = folder.table("estimates.csv"), folder.table("fit.csv")
        tables = calibration_tables_html(estimates, fit, calibration_headline(estimates, fit))
        return f'<section id="kpis"><h2>Estimates and fit</h2>{tables}</section>'
    if folder.kind == "power":
        table, summary = read_power(folder.path)
        return (f'<section id="kpis"><h2>Power of the trial</h2>'
                f"{power_section_html(table, summary)}</section>")
    if folder.kind != "robust":
        return (f'<section id="kpis"><h2>KPIs</h2>{kpi_table_html(folder, confidence)}'
                "</section>")
    where = folder.table("where.csv") if folder.has("where.csv") else pd.DataFrame(
        columns=["box"])
    tables = robust_tables_html(
        folder.table("ranking.csv"), folder.table("pairwise.csv"),
        folder.table("sensitivity.csv"), where,
        str(folder.scenario.get("objective", "")))
    return f'<section id="kpis"><h2>Does the ranking survive?</h2>{tables}</section>'


def write_report(folder_path: Path, out: Path | None = None, confidence: float = 0.95,
                 formats: Sequence[str] = ()) -> tuple[Path, list[ReportFigure]]:
    """Write the report of the folder (default ``<folder>/report.html``), and each figure
    in ``formats`` (``svg``, ``pdf``) beside it.

    Returns the path written and the figures (those with ``error`` were not drawn).
    """
    folder = open_folder(folder_path)
    target = out if out is not None else folder_path / "report.html"
    if not target.parent.is_dir():
        raise UserError("the folder of the report does not exist", source=str(target))
    figures = report_figures(folder, confidence, formats, target)
    page = render_report(folder, figures, confidence)
    # A unique temporary file, then a rename: two reports never share a temporary file.
    atomic_write(target, lambda p: p.write_text(page, encoding="utf-8"))
    return target, figures
