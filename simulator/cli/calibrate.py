"""``contactsim calibrate``: fit behavioural parameters to a lender's targets."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from simulator.cli.helpers import (
    DaskScheduler,
    PoolWorkers,
    check_arms,
    check_output_folder,
    console,
    err_console,
    guarded,
    progress_bar,
    specs_from_option,
    with_arms,
)
from simulator.errors import UserError
from simulator.experiments.backends import Backend, DaskCluster, LocalPool
from simulator.experiments.calibrate import (
    JACOBIAN_REPLICATIONS,
    JACOBIAN_STEP,
    contact_only,
    plan_calibration,
    run_calibration,
)
from simulator.experiments.space import ParameterSpace
from simulator.experiments.targets import load_targets
from simulator.scenario import load_scenario


def _num(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.4g}"


@guarded
def calibrate_command(
    scenario: Annotated[Path, typer.Argument(
        help="scenario YAML file with one strategy: the lender's current policy")],
    targets: Annotated[Path, typer.Option(help="targets file of contactsim targets")],
    params: Annotated[Path, typer.Option(
        help="parameter-space file: the parameters to fit and their prior box")],
    budget: Annotated[int, typer.Option(min=1, help="trials of the point estimate")],
    out: Annotated[Path, typer.Option(
        help="calibration folder; rerunning into it resumes (finished trials are reused)")],
    refits: Annotated[int, typer.Option(
        min=0, help="parametric bootstrap refits behind the intervals and draws.csv "
                    "(0: none); each is a Gauss-Newton solution from the estimate")] = 100,
    refit_budget: Annotated[int, typer.Option(
        "--refit-budget", min=0, help="chord iterations of each refit: runs re-measuring "
                                      "its targets (0: the linearised solution alone)")] = 1,
    replications: Annotated[int, typer.Option(
        "--replications", "-r", min=1, help="seeds per trial (the same for every trial)")
    ] = 1,
    check_replications: Annotated[int, typer.Option(
        "--check-replications", min=1, help="fresh seeds on which the estimate is re-run "
                                            "for fit.csv")] = 2,
    weighting: Annotated[str, typer.Option(
        help="how the distance weighs the targets: diagonal (each by its standard error) "
             "or full (by the inverse of their error covariance, from the targets file's "
             "bootstrap correlation)")] = "diagonal",
    jacobian_step: Annotated[float, typer.Option(
        "--jacobian-step", help="the Jacobian's central differences: this share of each "
                                "prior range either side of the estimate")] = JACOBIAN_STEP,
    jacobian_replications: Annotated[int, typer.Option(
        "--jacobian-replications", help="sets of seeds the Jacobian is averaged over (the "
                                        "fit's, then fresh ones): more sets, less noise in "
                                        "the slopes on a small book")
    ] = JACOBIAN_REPLICATIONS,
    hold_out: Annotated[str | None, typer.Option(
        "--hold-out", help="comma-separated targets left out of the fit, to check it "
                           "(e.g. roll_m2_m3,promise_rate)")] = None,
    strategy: Annotated[str | None, typer.Option(
        help="the scenario's arm (or a strategy) to calibrate under, when it has several")
    ] = None,
    workers: PoolWorkers = None,
    scheduler: DaskScheduler = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a field of the scenario, e.g. --set population.size=10000 "
                      "(repeatable)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Fit the parameters of PARAMS to the targets by the simulated method of moments
    (optuna CMA-ES, common seeds for every trial), with bootstrap intervals.

    Writes OUT/calibrated.yaml (the scenario with the estimates), estimates.csv, fit.csv,
    draws.csv (for contactsim robust --draws-from), cells/ and study.db; contactsim
    report OUT draws the fit.
    """
    if scheduler is not None and workers is not None:
        raise UserError("--workers sets the local pool; a Dask cluster has the workers "
                        "started for it", source="--workers")
    sc = load_scenario(scenario, list(set_ or []))
    if strategy is not None:
        specs = specs_from_option(sc, strategy)
        sc = with_arms(sc, specs, "--strategy", str(scenario))
    base_dir = scenario.parent.resolve()
    check_arms(sc.strategies, base_dir, str(scenario) if strategy is None else "--strategy",
               sc.decision.timeout_seconds)
    found = load_targets(targets)
    space = ParameterSpace.load(params)
    held = tuple(t.strip() for t in (hold_out or "").split(",") if t.strip())
    plan = plan_calibration(sc, str(scenario), space, found, str(targets), budget=budget,
                            refits=refits, refit_budget=refit_budget, replications=replications,
                            check_replications=check_replications, held_out=held,
                            base_dir=str(base_dir), weighting=weighting,
                            jacobian_step=jacobian_step,
                            jacobian_replications=jacobian_replications)
    check_output_folder(out)
    for path in plan.space.paths:
        if contact_only(path) and not found.has_contacts:
            err_console.print(Text.assemble(
                ("warning:", "yellow"), f" {path}: only contacts data identify it, and "
                f"{targets} has none: its estimate is flagged not identified"),
                highlight=False, soft_wrap=True)
    backend: Backend = DaskCluster(scheduler) if scheduler else LocalPool(workers or 1)
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers or 1} local worker(s)"
    show = not quiet and sys.stderr.isatty()
    with progress_bar(plan.budget, show) as bar:
        fit_task = bar.add_task(f"{plan.name} fit", total=plan.budget)
        boot_task = bar.add_task("bootstrap refits", total=max(plan.refits, 1))

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(fit_task if stage == "fit" else boot_task, completed=done)

        result = run_calibration(plan, out, backend, on_trial=progress)
    console.print(f"calibrate {plan.name}: {result.trials} trials x {len(plan.seeds)} seed(s) "
                  f"on {where}: computed {result.computed} cells, reused {result.reused}; "
                  f"point estimate {result.seconds_point:.0f} s, {plan.refits} bootstrap "
                  f"refits {result.seconds_bootstrap:.0f} s", markup=False, highlight=False,
                  soft_wrap=True)
    table = Table(title=f"{plan.name}: estimates (distance {result.distance:.3g} over "
                        f"{len(plan.fitted)} targets; the search's best trial "
                        f"{result.search_distance:.3g} before the Gauss-Newton polish)",
                  caption="interval: 2.5-97.5 percentiles of the bootstrap refits")
    for col in ("parameter", "estimate", "interval", "prior", "identified"):
        table.add_column(col, justify="left" if col == "parameter" else "right")
    for r in result.estimates.itertuples():
        table.add_row(Text(str(r.param)), _num(float(r.estimate)),
                      f"{_num(float(r.low))} - {_num(float(r.high))}",
                      f"{_num(float(r.prior_low))} - {_num(float(r.prior_high))}",
                      "yes" if r.identified else "no")
    console.print(table)
    fit = result.fit
    worst = fit.loc[fit["z"].abs().idxmax()] if fit["z"].notna().any() else None
    if worst is not None:
        console.print(f"fit on fresh seeds: largest |z| {abs(float(worst['z'])):.2f} "
                      f"({worst['target']}); held out: "
                      + (", ".join(f"{r.target} z={float(r.z):+.2f}"
                                   for r in fit[fit['held_out']].itertuples()) or "none"),
                      markup=False, highlight=False, soft_wrap=True)
    if result.unidentified:
        err_console.print(Text.assemble(("not identified:", "yellow"), " "
                                        + ", ".join(result.unidentified)
                                        + " (see the note column of estimates.csv)"),
                          highlight=False, soft_wrap=True)
    console.print(f"results in {out} (calibrated.yaml, estimates.csv, fit.csv, draws.csv); "
                  f"figures: contactsim report {out}", markup=False, highlight=False,
                  soft_wrap=True)
