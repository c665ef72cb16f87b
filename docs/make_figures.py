"""Regenerate the README's figures in ``docs/img/``.

    python docs/make_figures.py              # docs/img/tradeoff.png, ~30 s of CPU
    python docs/make_figures.py --workers 1 --out /tmp/img

``tradeoff.png``: a sweep of the fixed cadence's agent-call interval (a call every 1, 2,
3, 5, 7 or 14 days from 10 days past due) on the single-cohort scenario
(scenarios/examples/single_cohort.yaml, the default before the living book) with 4,000
accounts, 6 agents and 3 replications, no contact and the risk-tiered cadence beside it,
drawn by ``analysis.tradeoff.tradeoff_figure`` as ``contactsim report`` draws it. The
sweep's cells go to a temporary folder (``--cells DIR`` keeps them, and a rerun reuses
them). The script prints the figures the README quotes, so that its text can be checked
against the picture. """

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from analysis.factors import factor_labels
from analysis.plotting import save_figure
from analysis.tradeoff import tradeoff_figure, tradeoff_points
from simulator.experiments.backends import LocalPool
from simulator.experiments.sweep import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parent.parent
FACTOR = "strategies.fixed_cadence.params.steps.2.every"
INTERVALS = (1, 2, 3, 5, 7, 14)


def tradeoff_sweep(accounts: int, replications: int) -> dict[str, object]:
    """The sweep behind ``tradeoff.png`` (as a sweep file's content)."""
    return {
        "name": "readme-tradeoff",
        "description": "fixed-cadence agent-call interval, no contact and risk-tiered beside it",
        "base": str(ROOT / "scenarios" / "examples" / "single_cohort.yaml"),
        "set": {"population.size": accounts, "agents.count": 6},
        "factors": {"grid": {FACTOR: list(INTERVALS)}},
        "strategies": [
            {"use": "no_contact"},
            {"use": "fixed_cadence", "params": {"steps": [
                {"channel": "sms", "hour": 10, "days": [1, 3, 7, 14, 21, 28, 45, 60]},
                {"channel": "robocall", "hour": 11, "days": [5, 12, 19]},
                {"channel": "agent_call", "hour": 9, "from_dpd": 10, "to_dpd": 120,
                 "every": 3}]}},
            {"use": "risk_tiered"},
        ],
        "replications": replications,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/make_figures.py",
                                     description="Regenerate docs/img/*.png.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                        help="folder of the images (default: docs/img)")
    parser.add_argument("--workers", "-w", type=int, default=2, help="worker processes")
    parser.add_argument("--accounts", type=int, default=4000, help="book size")
    parser.add_argument("--replications", type=int, default=3, help="replications")
    parser.add_argument("--cells", type=Path, help="keep the sweep's folder (its cells/ and "
                                                   "kpis.csv) here; a rerun reuses them")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="contactsim-docs-") as tmp:
        sweep_file = Path(tmp) / "tradeoff.yaml"
        spec = tradeoff_sweep(args.accounts, args.replications)
        sweep_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        plan = load_sweep(sweep_file)
        folder = args.cells or Path(tmp) / "sweep"
        report = run_sweep(plan, folder, LocalPool(args.workers))
        if report.failed or report.kpis is None:
            print(f"{report.failed} cell(s) failed; see {folder}/cells", file=sys.stderr)
            return 1
        kpis = report.kpis
        labels = factor_labels(plan.factors, {"strategies": spec["strategies"]})
        fig = tradeoff_figure(kpis, FACTOR, "CNY", labels=labels, title=(
            "Recovery against churn and contact cost as the fixed cadence calls every "
            f"{', '.join(map(str, INTERVALS[:-1]))} or {INTERVALS[-1]} days\n"
            f"({args.accounts:,} accounts, 180 days, 6 agents; mean of {args.replications} "
            "replications with 95 % interval bars; labels: days between calls)"))
        print(save_figure(fig, args.out / "tradeoff.png", dpi=110))

    pts = tradeoff_points(kpis, [FACTOR])
    shown = pts[["strategy", FACTOR, "recovery_rate", "churn_rate", "contact_cost"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
