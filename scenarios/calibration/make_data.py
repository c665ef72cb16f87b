"""Make the synthetic lender of the worked example: ``data/`` in the portfolio format.

A lender whose borrowers behave unlike the defaults (the values in ``TRUTH``) is
simulated for 180 days under its current policy, the fixed cadence; its accounts at the
start, its statements, its payments and its contacts are written as CSV files as a
lender would export them (docs/portfolio-data.md). ``contactsim calibrate`` should find
``TRUTH`` again from these files (README: "Fitting the model to your portfolio").

    python scenarios/calibration/make_data.py          # rewrites scenarios/calibration/data
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from simulator.engine import Simulation  # noqa: E402
from simulator.experiments.space import ParameterSpace  # noqa: E402
from simulator.experiments.targets import billing_cycle, portfolio_from_run  # noqa: E402
from simulator.portfolio import ON_FILE_COLUMNS, OPT_OUT_COLUMNS, portfolio_frames  # noqa: E402
from simulator.scenario import PRODUCTS, load_scenario, scenario_from_dict  # noqa: E402

#: The lender's true behaviour: not the defaults (those are in brackets).
TRUTH = {
    "population.segments.self_curer.share": 0.16,  # (0.12)
    "population.segments.cash_flow.lambda_inf": 0.012,  # (0.008)
    "population.segments.self_curer.kappa": 0.45,  # (0.3)
    "channels.sms.impulse": 0.12,  # (0.08)
    "population.segments.cash_flow.promise_keep_prob": 0.75,  # (0.6)
}
ACCOUNTS = 4000
SEED = 31337
DAY_0 = pd.Timestamp("2026-01-05")  # the first day of the export (simulated day 0)


def main() -> None:
    base = load_scenario(HERE / "lender.yaml").to_dict()
    base["population"]["from_file"] = None
    base["population"]["size"] = ACCOUNTS
    space = ParameterSpace.from_mapping(
        {"parameters": {path: {"low": value, "high": value} for path, value in TRUTH.items()}})
    truth = scenario_from_dict(space.apply(base, TRUTH), source="the synthetic lender")
    sim = Simulation(truth, truth.strategies[0], SEED)
    results = sim.run()
    portfolio = portfolio_from_run(results.accounts, results.events, truth.horizon_days,
                                   cycle_days=billing_cycle(truth.population.billing))
    o = sim.book.observable
    accounts = pd.DataFrame({
        "account_id": results.accounts["account_id"],
        "score": o.score.astype(int), "credit_line": o.credit_line.round(2),
        "balance": o.balance.round(2), "amount_due": o.amount_due.round(2),
        "product": [PRODUCTS[k] for k in o.product],
        "tenure_months": o.tenure_months, "prior_delinquencies": o.prior_delinquencies,
        "dpd": 0})
    for column, channel in zip(ON_FILE_COLUMNS, (0, 1, 2), strict=True):
        accounts[column] = o.on_file[:, channel]
    for column in OPT_OUT_COLUMNS:
        accounts[column] = False
    accounts["do_not_contact"] = o.do_not_contact
    as_of = DAY_0 + pd.Timedelta(days=int(truth.horizon_days))
    frames = portfolio_frames(portfolio, as_of)
    frames["accounts"] = accounts
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    (out / "portfolio.yaml").write_text(
        f"# The first day the export does not cover.\nas_of: {as_of:%Y-%m-%d}\n"
        "description: a synthetic lender made by scenarios/calibration/make_data.py\n",
        encoding="utf-8")
    print(f"wrote {out}: {len(accounts)} accounts, {len(frames['statements'])} statements, "
          f"{len(frames['payments'])} payments, {len(frames['contacts'])} contacts")


if __name__ == "__main__":
    main()
