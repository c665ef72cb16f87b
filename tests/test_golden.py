"""Seeded results stay identical through engine changes (optimisations included).

The KPIs of a fixed small scenario under two rule packs are stored in
``tests/data/golden_kpis.csv``. A change that moves them is a change of the model, not
an optimisation: regenerate deliberately with ``python tests/test_golden.py --update``
and say why in the commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.engine import run
from simulator.scenario import load_scenario

DATA = Path(__file__).resolve().parent / "data"
PACKS = ("cn-2026", "us-reg-f")


def golden_kpis() -> pd.DataFrame:
    rows = []
    for pack in PACKS:
        sc = load_scenario(DATA / "golden.yaml", [f"compliance.pack={pack}"])
        for spec in sc.strategies:
            k = run(sc, spec, sc.seed).kpis
            rows.append({"pack": pack, "strategy": spec.name, **k})
    return pd.DataFrame(rows)


def test_kpis_match_stored_golden_file() -> None:
    expected = pd.read_csv(DATA / "golden_kpis.csv")
    observed = golden_kpis()
    assert list(observed.columns) == list(expected.columns)
    for col in expected.columns:
        if col in ("pack", "strategy"):
            assert observed[col].tolist() == expected[col].tolist()
            continue
        # Counts must match exactly; sums of money may differ only by the order in which
        # floating-point terms are added (relative 1e-9 is ~10^7 times that rounding).
        np.testing.assert_allclose(observed[col].to_numpy(float), expected[col].to_numpy(float),
                                   rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=col)


if __name__ == "__main__" and "--update" in sys.argv:
    golden_kpis().to_csv(DATA / "golden_kpis.csv", index=False, float_format="%.17g")
    print(f"wrote {DATA / 'golden_kpis.csv'}")
