"""Write ``kaplan_meier_reference.csv``: lifelines' Kaplan-Meier estimate on a fixed sample.

``tests/test_analysis.py`` checks ``analysis.curves.kaplan_meier`` against the stored
file, so the test suite does not need lifelines (it pins ``pandas<3``, and the suite must
run the pandas a user installs). The file was computed once with lifelines 0.30.3::

    pip install lifelines
    python tests/data/kaplan_meier_reference.py

The sample (300 exponential durations, rounded to 0.1 so that there are ties, about 70 %
observed) is stored beside it in ``kaplan_meier_sample.csv``, so that the check does not
depend on numpy's random streams staying the same across versions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

REFERENCE = Path(__file__).with_name("kaplan_meier_reference.csv")
SAMPLE = Path(__file__).with_name("kaplan_meier_sample.csv")


def reference_sample() -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Durations (ties, no time 0) and event flags of the cross-check."""
    rng = np.random.default_rng(3)
    durations = np.round(rng.exponential(10, 300), 1) + 0.1
    observed = rng.random(300) < 0.7
    return durations, observed


def main() -> None:
    import lifelines
    import pandas as pd

    durations, observed = reference_sample()
    pd.DataFrame({"duration": durations, "observed": observed}).to_csv(
        SAMPLE, index=False, float_format="%.17g")
    fit = lifelines.KaplanMeierFitter().fit(durations, observed)
    times = np.unique(durations[observed])
    ci = fit.confidence_interval_.loc[times]  # log(-log S) Greenwood interval, 95 %
    frame = pd.DataFrame({
        "time": times,
        "survival": fit.survival_function_at_times(times).to_numpy(),
        "ci_low": ci.iloc[:, 0].to_numpy(),  # NaN where S = 0 or 1 (lifelines leaves it)
        "ci_high": ci.iloc[:, 1].to_numpy(),
    })
    frame.to_csv(REFERENCE, index=False, float_format="%.17g")
    print(f"wrote {SAMPLE} and {REFERENCE} ({len(frame)} rows, lifelines {lifelines.__version__})")


if __name__ == "__main__":
    main()
