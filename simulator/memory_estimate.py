"""How much memory one run needs, estimated from the scenario before it starts.

The estimate is a fit to measurements (``python benchmarks/memory_fit.py``): the peak
resident memory of ``run()`` minus that of the idle process before it (imports and
scenario loaded), each size in a fresh process, on the default (single-cohort)
scenario. Measured on fixed_cadence at 100,000, 300,000 and 1,000,000 borrowers and
horizons of 90, 180 and 360 days, the need is close to linear in the book:

    need = FIXED_BYTES + n x (PER_BORROWER_BYTES + PER_BORROWER_DAY_BYTES x horizon_days)

Least squares gave 16 MiB + n x (724 + 0.06 x horizon_days) bytes (a run of the
single-cohort book records most of its events in the first months, so the horizon
barely matters: 707 MiB at 90 days, 724 MiB at 360 days for a million borrowers). The
strategy matters more: at 300,000 borrowers over 180 days the built-ins need from 148
MiB (no_contact) to 253 MiB (champion_challenger, 10 % above fixed_cadence's 230 MiB);
at a million borrowers champion_challenger needs 834 MiB, risk_tiered 757 MiB. The
constants below are the fit raised to cover the heaviest built-in with a margin: the
largest measured need (champion_challenger at a million) is 0.92 of the estimate, the
smallest (no_contact) 0.5, fixed_cadence 0.69-0.80.
Everything a run holds is included: the book, the no-contact twin, the event recorder
(events are always recorded; ``--no-events`` only skips writing them), the daily
snapshots, the result frames and the KPIs.

A plug-in strategy's own memory cannot be known in advance and is not included. The
fit is of the single-cohort book; a living book's accounts opening over the horizon are
counted as accounts of the book. Its events keep accruing through the horizon, but
``contactsim run`` streams them to the output folder (docs/model.md section 4.6): the
living default at a million accounts (1.76 million with its inflow) peaked at about 1.22 GiB
above the idle process, against an estimate of 1.55 GiB (the benchmark prints the stored
estimate beside each measurement).
"""

from __future__ import annotations

from simulator.scenario import Scenario

#: A run's fixed cost beyond the idle process (bytes).
FIXED_BYTES = 32 * 2**20
#: Bytes per borrower, whatever the horizon.
PER_BORROWER_BYTES = 900.0
#: Bytes per borrower and day of the horizon.
PER_BORROWER_DAY_BYTES = 0.1
#: Resident memory of an idle worker process (Python, numpy, pandas and the simulator
#: imported), counted for every process a command starts.
IDLE_PROCESS_BYTES = 135 * 2**20


def run_memory_bytes(scenario: Scenario) -> int:
    """The estimated peak memory of one run of ``scenario`` above an idle process: the
    fit's cost per account, for the day-0 book and the accounts expected to open over
    the horizon (``population.inflow``: a Poisson count of mean rate x size x horizon)."""
    pop = scenario.population
    n = pop.size * (1.0 + pop.inflow.rate_per_day * scenario.horizon_days)
    per_borrower = PER_BORROWER_BYTES + PER_BORROWER_DAY_BYTES * scenario.horizon_days
    return int(FIXED_BYTES + n * per_borrower)
