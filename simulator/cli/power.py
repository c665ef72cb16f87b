"""``contactsim power``: the power of a champion/challenger trial, by simulation."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from simulator.cli.helpers import (
    DaskScheduler,
    PoolWorkers,
    check_arms,
    check_output_folder,
    command_line_reference,
    console,
    default_out_dir,
    err_console,
    guarded,
    progress_bar,
    terminal_text,
)
from simulator.errors import UserError
from simulator.experiments.backends import Backend, DaskCluster, LocalPool
from simulator.experiments.outputs import OutputFolder
from simulator.experiments.power import (
    TARGET_POWER,
    PowerDesign,
    PowerRun,
    known_outcomes,
    parse_sizes,
    run_power,
    write_power_outputs,
)
from simulator.scenario import Scenario, StrategySpec, load_scenario


def _spec(sc: Scenario, name: str) -> StrategySpec:
    """A strategy named on the command line: one of the scenario's arms (by its name,
    keeping its params) or a reference (built-in, module:Class, file.py:Class)."""
    own = {s.name: s for s in sc.strategies}
    name = name.strip()
    return own.get(name, StrategySpec(use=command_line_reference(name)))


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.1f}"


def _power_table(result: PowerRun, metric: str) -> Table:
    design = result.design
    rows = result.table[result.table["metric"] == metric]
    what = "type-I error" if design.null else "power"
    adjusted = f", CUPED on {design.covariate}" if design.covariate else ""
    table = Table(title=Text(f"{metric}: {what} (%) at alpha {design.alpha:g}, split "
                             f"{design.split:g}, look day {design.look:g}{adjusted}",
                             style="italic"),
                  caption=f"share of {design.repetitions} repetitions rejecting [95 % Wilson "
                          "interval]; closed form: NormalIndPower with the whole-book effect")
    table.add_column("size", justify="right")
    table.add_column("agents", justify="right")
    table.add_column(what, justify="right", no_wrap=True)
    if design.covariate:
        table.add_column("raw", justify="right")
        table.add_column("raw Welch", justify="right")
        table.add_column("var. cut", justify="right")
    table.add_column("closed form", justify="right")
    table.add_column("effect", justify="right")
    for r in rows.itertuples():
        cells = [f"{int(r.size):,}", str(int(r.agents)),
                 f"{_pct(float(r.power))} [{_pct(float(r.low))}, {_pct(float(r.high))}]"]
        if design.covariate:
            cells += [_pct(float(r.power_unadjusted)), _pct(float(r.power_welch)),
                      _pct(float(r.variance_reduction))]
        cells += [_pct(float(r.formula_power)), f"{float(r.effect_at_size):+.4f}"]
        table.add_row(*cells)
    return table


def _interval_text(d: dict[str, float]) -> str:
    mean, low, high = d["mean"], d["low"], d["high"]
    if not math.isfinite(mean):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:+.4g}"
    return f"{mean:+.4g} [{low:+.4g}, {high:+.4g}]"


def _print_summary(result: PowerRun) -> None:
    design = result.design
    for metric in design.metrics:
        console.print(_power_table(result, metric))
        info = result.summary["metrics"][metric]
        say = lambda text: console.print(text, markup=False, highlight=False,  # noqa: E731
                                         soft_wrap=True)
        if design.null:
            say(f"{metric}: type-I error at alpha {design.alpha:g} (the champion against "
                "itself); see the table")
        else:
            smallest = info["smallest_size"]
            formula = info["formula_size"]
            formula_text = (f"; the closed form asks for {formula:,.0f}"
                            if formula is not None and math.isfinite(formula) else "")
            if smallest is None:
                say(f"{metric}: no simulated size reaches {TARGET_POWER:.0%} power"
                    f"{formula_text}")
            else:
                say(f"{metric}: smallest size reaching {TARGET_POWER:.0%} power: "
                    f"{smallest:,} accounts{formula_text}")
        say(f"  effect (challenger - champion) on the whole book of {design.book_size:,} "
            f"accounts, {info['repetitions']} seeds: within the trial "
            f"{_interval_text(info['within'])}, full adoption "
            f"{_interval_text(info['full_adoption'])}")
        say(f"  interference: {info['interference']}")


@guarded
def power_command(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file (the whole book)")],
    champion: Annotated[str, typer.Option(
        help="the strategy in place: a built-in name, module:Class, file.py:Class or the "
             "name of one of the scenario's arms")],
    sizes: Annotated[str, typer.Option(
        help="trial sizes, accounts in both cells together, comma-separated "
             "(e.g. 2000,5000,20000)")],
    challenger: Annotated[str | None, typer.Option(
        help="the strategy tried (as --champion); not needed with --null")] = None,
    split: Annotated[float, typer.Option(
        help="the champion's share of the trial's accounts, strictly between 0 and 1")
    ] = 0.9,
    metric: Annotated[str, typer.Option(
        help="outcome(s) per account, comma-separated, the first is the headline: paid_30, "
             "collected_share, churned, charged_off or a numeric column of accounts.parquet")
    ] = "paid_30",
    look: Annotated[float, typer.Option(
        help="the day the outcome is read: each trial runs to it")] = 60.0,
    alpha: Annotated[float, typer.Option(help="the test's two-sided level")] = 0.05,
    repetitions: Annotated[int, typer.Option(
        "--repetitions", "-r", min=1, help="simulated trials per size")] = 400,
    out: Annotated[Path | None, typer.Option(
        help="results folder (default: out/<scenario name>-power); rerunning into it "
             "computes only the missing repetitions")] = None,
    cuped: Annotated[str | None, typer.Option(
        help="adjust the outcome by a pre-period covariate: score, prior_delinquencies, "
             "amount_due, balance, credit_line, tenure_months, clv_estimate, due_day")
    ] = None,
    null: Annotated[bool, typer.Option(
        "--null", help="the champion against itself: the type-I error")] = False,
    effect_repetitions: Annotated[int, typer.Option(
        "--effect-repetitions", min=1,
        help="seeds of the whole-book runs that estimate the effects and the interference")
    ] = 5,
    queue: Annotated[Literal["fair", "shared"], typer.Option(
        help="agent calls: 'fair' interleaves the cells' calls in proportion to their "
             "shares; 'shared' leaves one queue ordered by the strategies' own priorities")
    ] = "fair",
    workers: PoolWorkers = None,
    scheduler: DaskScheduler = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a field, e.g. --set agents.count=40 (repeatable)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Simulate a champion/challenger trial at each size: its power (or, with --null, its
    type-I error) with Wilson intervals, the effects and the interference between cells.

    Writes OUT/power.csv, OUT/power.json, OUT/repetitions.csv, OUT/power.png and every
    repetition to OUT/cells/<key>.json.
    """
    if scheduler is not None and workers is not None:
        raise UserError("--workers sets the local pool; a Dask cluster has the workers "
                        "started for it", source="--workers")
    sc = load_scenario(scenario, list(set_ or []))
    if challenger is None and not null:
        raise UserError("name the challenger (or give --null to try the champion against "
                        "itself)", source="--challenger")
    champion_spec = _spec(sc, champion)
    challenger_spec = _spec(sc, challenger) if challenger is not None else champion_spec
    metrics = tuple(m.strip() for m in metric.split(",") if m.strip())
    repeated = sorted({m for m in metrics if metrics.count(m) > 1})
    if repeated:
        raise UserError(f"outcome given more than once: {', '.join(repeated)}",
                        source="--metric")
    base_dir = scenario.parent.resolve()
    design = PowerDesign(
        scenario=sc, champion=champion_spec, challenger=challenger_spec, split=split,
        sizes=parse_sizes(sizes), metrics=metrics, look=look, alpha=alpha,
        repetitions=repetitions, covariate=cuped, null=null,
        effect_repetitions=effect_repetitions, fair_queue=queue == "fair",
        base_dir=str(base_dir), known_metrics=tuple(known_outcomes(sc)))
    check_arms([champion_spec, challenger_spec, design.trial_spec()], base_dir,
               "--champion/--challenger", sc.decision.timeout_seconds)
    out_dir = out or default_out_dir(f"{sc.name}-power")
    check_output_folder(out_dir)
    window = sc.population.due_day.high + 30.0
    if "paid_30" in metrics and look < window:
        err_console.print(f"note: the look (day {look:g}) comes before the end of the 30-day "
                          f"window of accounts due late (day {window:g}): their paid_30 "
                          "counts payments by the look", markup=False, highlight=False,
                          soft_wrap=True)
    backend: Backend = DaskCluster(scheduler) if scheduler else LocalPool(workers or 1)
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers or 1} local worker(s)"
    total = len(design.sizes) * repetitions + 3 * effect_repetitions
    show = not quiet and sys.stderr.isatty()
    # The folder is locked while the trials run and its files are put in place together.
    with OutputFolder(out_dir) as folder, progress_bar(total, show) as bar:
        task = bar.add_task(terminal_text(f"{sc.name} power"), total=total)
        result = run_power(design, out_dir, backend,
                           on_progress=lambda done, _t: bar.update(task, completed=done))
        paths = write_power_outputs(result, folder)
    cells = result.cells
    console.print(f"power {sc.name}: {cells.cells} cells on {where}: computed "
                  f"{cells.computed}, reused {cells.reused}, failed {cells.failed}",
                  markup=False, highlight=False, soft_wrap=True)
    _print_summary(result)
    figure = _draw_figure(out_dir)
    names = [p.name for p in paths.values()] + ([figure.name] if figure else [])
    console.print(f"results in {terminal_text(out_dir)} ({', '.join(names)}, cells/)",
                  markup=False, highlight=False, soft_wrap=True)


def _analysis_power() -> ModuleType:
    """``analysis.power``, imported lazily (matplotlib is slow to import); when the
    package was installed without ``analysis``, the source tree is put on the path."""
    try:
        return importlib.import_module("analysis.power")
    except ModuleNotFoundError as exc:
        root = Path(__file__).resolve().parents[2]
        if exc.name != "analysis" or not (root / "analysis" / "__init__.py").is_file():
            raise
        sys.path.insert(0, str(root))
        return importlib.import_module("analysis.power")


def _draw_figure(out_dir: Path) -> Path | None:
    """OUT/power.png; a figure that cannot be drawn is a warning, not a lost analysis."""
    try:
        path: Path = _analysis_power().write_power_figure(out_dir)
        return path
    except Exception as exc:
        err_console.print(Text.assemble(("warning:", "yellow"),
                                        f" power.png not drawn: {type(exc).__name__}: {exc}"),
                          highlight=False, soft_wrap=True)
        return None
