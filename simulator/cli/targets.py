"""``contactsim targets DATA_DIR --out targets.yaml``: the portfolio aggregates a
calibration fits, from a lender's data or a simulation's output folder (same code)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from simulator.cli.helpers import check_output_folder, console, guarded
from simulator.errors import UserError
from simulator.experiments.targets import (
    BAND_TARGETS,
    CURE_DAYS,
    PAYMENT_DAYS,
    RESAMPLES,
    Definition,
    extract,
    is_run_folder,
    read_any,
    write_targets,
)


def _days(text: str | None, default: tuple[int, ...], option: str) -> tuple[int, ...]:
    if text is None:
        return default
    try:
        days = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"expected whole days such as 2,5,10,30, got '{text}'",
                        source=option) from None
    if not days or list(days) != sorted(set(days)) or days[0] < 1:
        raise UserError("days must be whole, increasing and at least 1", source=option)
    return days


def _bands(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        cuts = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"expected score cut points such as 600,700, got '{text}'",
                        source="--score-bands") from None
    if list(cuts) != sorted(set(cuts)) or not all(math.isfinite(c) for c in cuts):
        raise UserError("cut points must be finite and increasing", source="--score-bands")
    return cuts


def _band_targets(text: str | None, cure_days: tuple[int, ...],
                  payment_days: tuple[int, ...]) -> tuple[str, ...]:
    if text is None:
        return BAND_TARGETS
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    known = Definition(cure_days=cure_days, payment_days=payment_days).target_names(
        contacts=True)
    for name in names:
        if name not in known:
            raise UserError(f"'{name}' is not a target (expected some of "
                            f"{', '.join(known)})", source="--band-targets")
    return names


@guarded
def targets_command(
    data: Annotated[Path, typer.Argument(
        help="a portfolio folder (docs/portfolio-data.md) or the output folder of "
             "contactsim run")],
    out: Annotated[Path, typer.Option(help="targets file to write (YAML)")],
    score_bands: Annotated[str | None, typer.Option(
        "--score-bands", help="score cut points, e.g. 600,700: delinquency and 30-day cure "
                              "rates by band too")] = None,
    band_targets: Annotated[str | None, typer.Option(
        "--band-targets", help="the targets also computed by score band (default "
                               "delinquency_rate,cure_30), e.g. "
                               "delinquency_rate,cure_3,cure_7,cure_30,cure_90")] = None,
    cure_days: Annotated[str | None, typer.Option(
        "--cure-days", help="days past due of the cure curve (default 2,3,5,7,10,15,30,60,90)")
    ] = None,
    payment_days: Annotated[str | None, typer.Option(
        "--payment-days", help="days past due of any_payment, the share of delinquent "
                               "statements with a payment, whole or part (default 10,30,60)")
    ] = None,
    resamples: Annotated[int, typer.Option(
        min=2, help="bootstrap resamples of accounts behind each standard error")
    ] = RESAMPLES,
    seed: Annotated[int, typer.Option(min=0, help="seed of the bootstrap")] = 0,
    strategy: Annotated[str | None, typer.Option(
        help="the arm of a simulation folder with several")] = None,
    replication: Annotated[int | None, typer.Option(
        min=0, help="the replication of a simulation folder (default: the first)")] = None,
) -> None:
    """Compute the targets of a portfolio: cure curve, roll rates, delinquency rate,
    pre-due payment timing and (with contacts) right-party contacts and promises, each
    with its count and a bootstrap standard error over accounts."""
    days = _days(cure_days, CURE_DAYS, "--cure-days")
    paid = _days(payment_days, PAYMENT_DAYS, "--payment-days")
    definition = Definition(cure_days=days, payment_days=paid,
                            score_bands=_bands(score_bands),
                            band_targets=_band_targets(band_targets, days, paid))
    if out.is_dir():
        raise UserError("is a folder; give the targets file to write", source=str(out))
    check_output_folder(out.parent)
    portfolio = read_any(data, strategy, replication)
    found = extract(portfolio, definition, resamples, seed)
    if not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    write_targets(out, found)
    kind = "simulation" if is_run_folder(data) else "portfolio"
    table = Table(title=f"targets of {portfolio.source} ({kind}, {found.accounts:,} accounts)")
    for col in ("target", "value", "se", "count"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for name in found.names:
        v, s = found.values[name], found.se[name]
        table.add_row(name, "-" if not math.isfinite(v) else f"{v:.4f}",
                      "-" if not math.isfinite(s) else f"{s:.4f}", f"{found.counts[name]:,.0f}")
    console.print(table)
    if not found.has_contacts:
        console.print("no contacts table: right-party, promise and promise-kept targets are "
                      "not computed, and contact parameters cannot be identified",
                      markup=False, highlight=False)
    console.print(f"targets in {out}", markup=False, highlight=False, soft_wrap=True)
