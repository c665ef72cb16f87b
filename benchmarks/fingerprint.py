"""Fingerprints of every output frame of 48 seeded runs: proof that a change of the
engine leaves seeded results bit for bit the same.

The runs: the 8 built-in strategies on the single-cohort scenario
(scenarios/examples/single_cohort.yaml, the bundled default until the living book) at
2,000 and 20,000 accounts
(horizon 120 days), and the golden scenario's two arms (tests/data/golden.yaml) under
the 4 rule packs, both ``agents.unmade_calls`` modes and decision epochs of 1 and 3
days. Each run's events, daily and accounts frames and its KPIs are hashed
(``pandas.util.hash_pandas_object``, values and column names); the hashes are stored in
``benchmarks/fingerprints.csv``.

    python benchmarks/fingerprint.py            # compare with the stored hashes
    python benchmarks/fingerprint.py --update   # store this code's hashes
    python benchmarks/fingerprint.py --spilled  # the runs streaming their event log

``--spilled`` makes every run as ``contactsim run`` does, its event log spilled to a
file during the run (docs/model.md section 4.6) and read back for the hash: the
streaming run must give the stored hashes too.

A change that moves any number is a change of the model: bump the simulator version,
regenerate the golden file and these fingerprints, and say why in the commit. Exit code
1 when a hash differs, naming the run and frame.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.engine import Results  # noqa: E402
from simulator.engine import run as engine_run  # noqa: E402
from simulator.scenario import Scenario, StrategySpec, load_scenario  # noqa: E402
from simulator.strategies import BUILTINS  # noqa: E402

STORED = Path(__file__).resolve().parent / "fingerprints.csv"
PACKS = ("cn-2026", "us-reg-f", "au-accc", "none")


def _dtype_name(dtype: object) -> str:
    """A dtype's name, text columns named alike under pandas 2 (``object``) and pandas 3
    (its default ``str`` dtype), whose values hash the same: the fingerprint is of the
    numbers, not of the pandas version."""
    return "object" if isinstance(dtype, pd.StringDtype) else str(dtype)


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and every value, row by row."""
    h = hashlib.sha256()
    h.update(repr([(c, _dtype_name(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def kpi_hash(kpis: dict[str, float]) -> str:
    values = np.array([kpis[k] for k in sorted(kpis)], dtype=np.float64)
    return hashlib.sha256(repr(sorted(kpis)).encode() + values.tobytes()).hexdigest()[:16]


def spilled_run(scenario: Scenario, spec: StrategySpec | str, seed: int) -> Results:
    """``run`` with its event log spilled to a temporary file, read back as the events."""
    with tempfile.TemporaryDirectory(prefix="contactsim-fingerprint-") as tmp:
        r = engine_run(scenario, spec, seed, spill_events=Path(tmp) / "events.tmp")
        assert r.event_log is not None
        r.events = r.event_log.frame()
        r.event_log.remove()
        r.event_log = None
    return r


def runs(spilled: bool = False) -> list[tuple[str, Results]]:
    """The 48 runs, each with a name (``spilled``: their event logs spilled)."""
    run = spilled_run if spilled else engine_run
    out: list[tuple[str, Results]] = []
    for size in (2000, 20000):
        sc = load_scenario(ROOT / "scenarios" / "examples" / "single_cohort.yaml",
                           [f"population.size={size}", "horizon_days=120"])
        for name in BUILTINS:
            out.append((f"default/{size}/{name}", run(sc, name, sc.seed)))
    golden = ROOT / "tests" / "data" / "golden.yaml"
    for pack in PACKS:
        for mode in ("drop", "carry_over"):
            for every in (1, 3):
                sc = load_scenario(golden, [f"compliance.pack={pack}",
                                            f"agents.unmade_calls={mode}",
                                            f"decision.every_days={every}"])
                for spec in sc.strategies:
                    out.append((f"golden/{pack}/{mode}/every{every}/{spec.name}",
                                run(sc, spec, sc.seed)))
    return out


def fingerprints(spilled: bool = False) -> pd.DataFrame:
    rows = []
    for name, r in runs(spilled):
        for frame in ("events", "daily", "accounts"):
            rows.append({"run": name, "frame": frame, "hash": frame_hash(getattr(r, frame))})
        rows.append({"run": name, "frame": "kpis", "hash": kpi_hash(r.kpis)})
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="store this code's hashes")
    parser.add_argument("--spilled", action="store_true",
                        help="spill each run's event log to a file (as contactsim run does)")
    args = parser.parse_args()
    if args.update and args.spilled:
        parser.error("--update stores the in-memory runs' hashes: not with --spilled")
    start = time.perf_counter()
    observed = fingerprints(args.spilled)
    took = time.perf_counter() - start
    runs_done = observed["run"].nunique()
    if args.update:
        observed.to_csv(STORED, index=False)
        print(f"stored {len(observed)} hashes of {runs_done} runs in {STORED} ({took:.0f} s)")
        return 0
    expected = pd.read_csv(STORED)
    merged = expected.merge(observed, on=["run", "frame"], how="outer",
                            suffixes=("_stored", "_now"), indicator=True)
    differ = merged[(merged["_merge"] != "both") | (merged["hash_stored"] != merged["hash_now"])]
    for row in differ.itertuples():
        print(f"DIFFERS {row.run} {row.frame}: stored {row.hash_stored}, now {row.hash_now}")
    same = len(merged) - len(differ)
    print(f"{same} of {len(merged)} frame hashes of {runs_done} runs as stored ({took:.0f} s)")
    return 1 if len(differ) else 0


if __name__ == "__main__":
    sys.exit(main())
