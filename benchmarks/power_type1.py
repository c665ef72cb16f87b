"""Benchmark: the type-I error of the simulated trial, its power against the closed form,
and CUPED's variance reduction, over many repetitions.

Usage: python benchmarks/power_type1.py [--repetitions 1000] [--type1-size 2000]
       [--type1-champion sms_only] [--sizes 1500 4000 8000] [--power-repetitions 150]
       [--split 0.9] [--look 60] [--book-size 20000] [--effect-repetitions 5]
       [--workers 2] [--out DIR]

On the single-cohort scenario (``scenarios/examples/single_cohort.yaml``, the default
before the living book; its population set to
``--book-size``), through the code path of ``contactsim power`` (``run_power`` on a
``LocalPool``):

1. **Type-I error.** The champion ``--type1-champion`` against itself (``--null``): by
   default an SMS-only cadence (SMS before and after the due date; ``fixed_cadence``, the
   built-in with SMS, robo-calls and agent calls, costs about twice as much per trial),
   ``--repetitions`` trials of ``--type1-size`` accounts at
   ``--split``, outcome ``paid_30`` read on day ``--look``, alpha 0.05: the share of
   trials rejecting, its Wilson interval, and whether it lies in [0.035, 0.065].
2. **Power against the closed form.** On ``scenarios/examples/power.yaml`` (the same book
   with named arms; README's example runs the same cells): ``no_contact`` against its
   ``sms_only`` arm (no agent calls in either cell, so nothing is shared but the book),
   ``--power-repetitions``
   trials at each of ``--sizes``: the simulated power of the two-proportion z-test on
   ``paid_30`` and ``NormalIndPower`` with Cohen's h of the effect (estimated from every
   account of every trial) and the split ratio, and whether they agree within 3 standard
   errors (the binomial error of the simulated power plus the effect estimate's).
3. **CUPED** on ``prior_delinquencies`` in the same trials: the correlation rho, the
   within-cell variance ratio after adjustment against 1 - rho^2 (within 0.03?), the
   across-trial variance ratio of the effect estimate, and the adjusted power against the
   closed form with the effect size divided by sqrt(1 - rho^2).

Prints one line per figure and a JSON line per part. Cells are cached in ``--out`` (a
temporary folder by default), so a rerun into the same folder reuses them. Not a unit
test: a statistical check too long for the test suite (``tests/test_power.py`` holds its
small, looser version).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from statsmodels.stats.power import NormalIndPower  # noqa: E402
from statsmodels.stats.proportion import proportion_effectsize  # noqa: E402

from simulator.experiments.backends import LocalPool  # noqa: E402
from simulator.experiments.power import PowerDesign, run_power  # noqa: E402
from simulator.scenario import StrategySpec, load_scenario  # noqa: E402

SMS_ONLY = StrategySpec(use="fixed_cadence", label="sms_only", params={"steps": [
    {"channel": "sms", "hour": 10, "days": [-3, -1, 1, 3, 7, 14, 21]}]})


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=1000, help="null trials")
    p.add_argument("--type1-size", type=int, default=2000, help="accounts of a null trial")
    p.add_argument("--type1-champion", choices=["sms_only", "fixed_cadence"],
                   default="sms_only")
    p.add_argument("--sizes", type=int, nargs="+", default=[1500, 4000, 8000])
    p.add_argument("--power-repetitions", type=int, default=150)
    p.add_argument("--split", type=float, default=0.9)
    p.add_argument("--look", type=float, default=60.0)
    p.add_argument("--book-size", type=int, default=20000)
    p.add_argument("--effect-repetitions", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="cells folder (default: temporary)")
    return p.parse_args()


def _power(design: PowerDesign, out: Path, workers: int) -> Any:
    started = time.perf_counter()
    result = run_power(design, out, LocalPool(workers))
    cells = result.cells
    print(f"  ({cells.cells} cells: computed {cells.computed}, reused {cells.reused}, "
          f"{time.perf_counter() - started:.0f} s)")
    return result


def type_one(args: argparse.Namespace, sc: Any, out: Path) -> dict[str, Any]:
    champion = SMS_ONLY if args.type1_champion == "sms_only" else StrategySpec(
        use="fixed_cadence")
    design = PowerDesign(
        scenario=sc, champion=champion, challenger=champion, split=args.split,
        sizes=(args.type1_size,), metrics=("paid_30", "collected_share"), look=args.look,
        repetitions=args.repetitions, null=True, effect_repetitions=args.effect_repetitions)
    print(f"type-I error: {champion.name} against itself, {args.repetitions} trials of "
          f"{args.type1_size:,} accounts, split {args.split:g}, look day {args.look:g}, "
          "alpha 0.05")
    result = _power(design, out / "type1", args.workers)
    row = result.table.set_index("metric").loc["paid_30"]
    rate = float(row["type1"])
    inside = 0.035 <= rate <= 0.065
    print(f"  paid_30: {int(row['rejections'])} of {int(row['repetitions'])} rejected: "
          f"type-I error {rate:.4f} (95 % Wilson [{row['low']:.4f}, {row['high']:.4f}]); "
          f"within [0.035, 0.065]: {'yes' if inside else 'NO'}")
    other = result.table.set_index("metric").loc["collected_share"]
    print(f"  collected_share (Welch's t): type-I error {float(other['type1']):.4f} "
          f"([{other['low']:.4f}, {other['high']:.4f}])")
    return {"part": "type1", "champion": champion.name, "metric": "paid_30",
            "size": args.type1_size,
            "repetitions": int(row["repetitions"]), "type1": rate,
            "low": float(row["low"]), "high": float(row["high"]), "within": inside,
            "collected_share_type1": float(other["type1"])}


def against_formula(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    sc = load_scenario(ROOT / "scenarios" / "examples" / "power.yaml",
                       [f"population.size={args.book_size}"])
    arms = {s.name: s for s in sc.strategies}
    assert arms["sms_only"] == SMS_ONLY, "the example's sms_only arm is the type-I champion"
    design = PowerDesign(
        scenario=sc, champion=arms["no_contact"], challenger=arms["sms_only"],
        split=args.split, sizes=tuple(args.sizes), metrics=("paid_30",), look=args.look,
        repetitions=args.power_repetitions, covariate="prior_delinquencies",
        effect_repetitions=args.effect_repetitions)
    print(f"power: no_contact against SMS only (no agent calls), {args.power_repetitions} "
          f"trials per size, split {args.split:g}, paid_30, two-proportion z at alpha 0.05; "
          "CUPED on prior_delinquencies")
    result = _power(design, out / "power", args.workers)
    reps = result.repetitions
    n1, n2 = float(reps["champion_n"].sum()), float(reps["challenger_n"].sum())
    p1 = float((reps["champion_mean"] * reps["champion_n"]).sum() / n1)
    p2 = float((reps["challenger_mean"] * reps["challenger_n"]).sum() / n2)
    h = float(proportion_effectsize(p2, p1))
    se_h = math.sqrt(1 / n1 + 1 / n2)
    book = result.effects["paid_30"]
    print(f"  effect from every trial account: paid_30 {p1:.4f} -> {p2:.4f} "
          f"({p2 - p1:+.4f}), Cohen's h {h:.4f} +- {se_h:.4f}; whole book within the trial "
          f"{book['within']['mean']:+.4f}, full adoption {book['full_adoption']['mean']:+.4f}")
    ratio = (1 - args.split) / args.split
    rows = []
    for row in result.table.itertuples():
        n_champion = row.size * args.split

        def closed(es: float, n: float = n_champion) -> float:
            return float(NormalIndPower().power(effect_size=es, nobs1=n, alpha=0.05,
                                                ratio=ratio))

        expected = closed(h)
        slope = (closed(h + 1e-4) - expected) / 1e-4
        reps_n = int(row.repetitions)
        se = math.sqrt(expected * (1 - expected) / reps_n + (slope * se_h) ** 2)
        simulated = float(row.power_unadjusted)
        agree = abs(simulated - expected) <= 3 * se
        rho = float(row.rho)
        ratio_in = 1 - float(row.variance_reduction)
        adjusted_expected = closed(h / math.sqrt(1 - rho**2))
        adj_slope = (closed((h + 1e-4) / math.sqrt(1 - rho**2)) - adjusted_expected) / 1e-4
        adj_se = math.sqrt(adjusted_expected * (1 - adjusted_expected) / reps_n
                           + (adj_slope * se_h) ** 2)
        adjusted = float(row.power)
        print(f"  size {row.size:>6,}: simulated power {simulated:.3f} "
              f"[{row.unadjusted_low:.3f}, {row.unadjusted_high:.3f}], NormalIndPower "
              f"{expected:.3f}, difference {simulated - expected:+.3f} = "
              f"{(simulated - expected) / se:+.2f} s.e.; within 3 s.e.: "
              f"{'yes' if agree else 'NO'}")
        print(f"               CUPED: rho {rho:+.3f}, variance ratio {ratio_in:.4f} vs "
              f"1 - rho^2 {1 - rho**2:.4f} (diff {ratio_in - (1 - rho**2):+.4f}); effect "
              f"estimate's variance ratio across trials {row.effect_variance_ratio:.3f}; "
              f"power {adjusted:.3f} vs closed form {adjusted_expected:.3f} "
              f"({(adjusted - adjusted_expected) / adj_se:+.2f} s.e.); unadjusted Welch's t "
              f"{row.power_welch:.3f}")
        rows.append({"part": "power", "size": int(row.size), "repetitions": reps_n,
                     "simulated": simulated, "formula": expected, "se": se,
                     "within_3se": agree, "rho": rho, "variance_ratio": ratio_in,
                     "one_minus_rho2": 1 - rho**2,
                     "effect_variance_ratio": float(row.effect_variance_ratio),
                     "cuped_power": adjusted, "cuped_formula": adjusted_expected,
                     "welch_power": float(row.power_welch),
                     "cuped_se": adj_se})
    return rows


def main() -> None:
    args = _args()
    sc = load_scenario(ROOT / "scenarios" / "examples" / "single_cohort.yaml",
                       [f"population.size={args.book_size}"])
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        print(json.dumps(type_one(args, sc, out)))
        for row in against_formula(args, out):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
