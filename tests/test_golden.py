"""Seeded results stay identical through engine changes (optimisations included).

The KPIs of a fixed small scenario under two rule packs are stored in
``tests/data/golden_kpis.csv``, and a digest of every output frame (row counts by kind,
sums of every numeric column) in ``tests/data/golden_frames.csv``, so that a change
that leaves the KPIs alone but moves an event, a daily count or an account's outcome is
caught too. A change that moves them is a change of the model, not an optimisation:
regenerate deliberately with ``python tests/test_golden.py --update`` and say why in the
commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.engine import Results, run
from simulator.scenario import load_scenario

DATA = Path(__file__).resolve().parent / "data"
PACKS = ("cn-2026", "us-reg-f")


def golden_runs() -> list[tuple[str, Results]]:
    runs = []
    for pack in PACKS:
        sc = load_scenario(DATA / "golden.yaml", [f"compliance.pack={pack}"])
        runs += [(pack, run(sc, spec, sc.seed)) for spec in sc.strategies]
    return runs


def golden_kpis(runs: list[tuple[str, Results]]) -> pd.DataFrame:
    return pd.DataFrame([{"pack": pack, "strategy": r.strategy, **r.kpis} for pack, r in runs])


def frame_digest(frame: pd.DataFrame) -> dict[str, float]:
    """Row count, rows per category and the sum of every numeric column of ``frame``."""
    digest: dict[str, float] = {"rows": float(len(frame))}
    for col in frame.columns:
        values = frame[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            for level, n in values.value_counts(sort=False).items():
                digest[f"{col}={level}"] = float(n)
        elif values.dtype.kind in "biuf":
            finite = values.to_numpy(float)
            digest[f"sum({col})"] = float(finite[np.isfinite(finite)].sum())
    return digest


def golden_frames(runs: list[tuple[str, Results]]) -> pd.DataFrame:
    rows = [{"pack": pack, "strategy": r.strategy, "frame": name, "statistic": key,
             "value": value}
            for pack, r in runs
            for name in ("events", "daily", "accounts")
            for key, value in frame_digest(getattr(r, name)).items()]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def runs() -> list[tuple[str, Results]]:
    return golden_runs()


def test_kpis_match_stored_golden_file(runs: list[tuple[str, Results]]) -> None:
    expected = pd.read_csv(DATA / "golden_kpis.csv")
    observed = golden_kpis(runs)
    assert list(observed.columns) == list(expected.columns)
    for col in expected.columns:
        if col in ("pack", "strategy"):
            assert observed[col].tolist() == expected[col].tolist()
            continue
        # Counts must match exactly; sums of money may differ only by the order in which
        # floating-point terms are added (relative 1e-9 is ~10^7 times that rounding).
        np.testing.assert_allclose(observed[col].to_numpy(float), expected[col].to_numpy(float),
                                   rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=col)


def test_output_frames_match_stored_digest(runs: list[tuple[str, Results]]) -> None:
    expected = pd.read_csv(DATA / "golden_frames.csv")
    observed = golden_frames(runs)
    key = ["pack", "strategy", "frame", "statistic"]
    assert observed[key].values.tolist() == expected[key].values.tolist()
    # Counts exactly; sums up to the order of floating-point terms (as for the KPIs).
    np.testing.assert_allclose(observed["value"].to_numpy(float),
                               expected["value"].to_numpy(float), rtol=1e-9, atol=1e-9,
                               err_msg="an output frame moved")


if __name__ == "__main__" and "--update" in sys.argv:
    done = golden_runs()
    golden_kpis(done).to_csv(DATA / "golden_kpis.csv", index=False, float_format="%.17g")
    golden_frames(done).to_csv(DATA / "golden_frames.csv", index=False, float_format="%.17g")
    print(f"wrote {DATA / 'golden_kpis.csv'} and {DATA / 'golden_frames.csv'}")
