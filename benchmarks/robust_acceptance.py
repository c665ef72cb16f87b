"""Benchmark: the acceptance checks of ``contactsim robust`` at full size, with figures.

Usage: python benchmarks/robust_acceptance.py [--parts known sobol speed]
       [--population 2000] [--draws 64] [--grid 61] [--sobol-base 32]
       [--speed-draws 128] [--speed-population 2000] [--workers 2] [--keep DIR]

Every part runs the user's own commands (``contactsim robust``, ``contactsim sweep``) in
subprocesses and prints what it measured:

* ``known``: one uncertain parameter whose effect flips the winner. On a book where
  agent calls are the only contact and cost 70 per attempt, and accounts charge off at
  20 days past due inside the 30-day horizon with no agency, ``calls`` (a fixed cadence
  of agent calls every other day) against ``no_contact`` on net value, with the
  agent-call impulse uncertain over [0, 0.3]: calling pays for itself only through the
  write-offs it prevents, which a low impulse does not. ``P(calls beats no_contact)`` from
  ``--draws`` scrambled Sobol draws is compared with the share of a fine grid
  (``--grid`` points, ``contactsim sweep``, the same seeds) where calls wins (within
  0.05), and the bound of the first PRIM box with the grid's flip point (the threshold
  that best separates the grid's wins from its losses; within 10 % of the range).
* ``sobol``: the same book with a dummy parameter the strategies never touch (the push
  impulse: neither strategy sends pushes) and a Saltelli design of ``--sobol-base`` x
  (2D + 2) draws: the dummy's total Sobol index must be below 0.05 and the agent-call
  impulse's above 0.5.
* ``speed``: ``--speed-draws`` draws x 3 strategies x 1 replication of the default
  scenario at ``--speed-population`` accounts with scenarios/robust/uncertain.yaml on
  ``--workers`` workers: wall time and peak memory (``/usr/bin/time -v``, the command's
  own process; the workers' peak is reported by the same tool as the largest child).

Not a unit test: the speed depends on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

FLIP_BOOK = """\
name: flip
description: agent calls are the only contact, cost 70 per attempt, and pay only through
  the write-offs they prevent (charge-off at 20 days past due, no agency)
seed: 7
population: {{size: {size}, due_day: {{low: 0, high: 5}}}}
horizon_days: 30
repayment: {{charge_off_dpd: 20}}
agents: {{count: {agents}}}
promises: {{enabled: false}}
channels: {{unanswered_call_impulse: 0.0, agent_call: {{cost: 70}}}}
strategies:
  - {{use: no_contact}}
  - {{use: fixed_cadence, label: calls,
     params: {{steps: [{{channel: agent_call, hour: 9, from_dpd: 1, every: 2}}]}}}}
"""
LOW, HIGH = 0.0, 0.3
IMPULSE = "channels.agent_call.impulse"
DUMMY = "channels.push.impulse"


def contactsim(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()", *args],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"contactsim {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


def flip_point(x: np.ndarray, a_wins: np.ndarray) -> float:
    """The threshold t that best separates 'A wins iff x > t' on a grid (fewest errors;
    the middle of the best run of thresholds)."""
    order = np.argsort(x)
    xs, ws = x[order], a_wins[order].astype(int)
    cuts = np.concatenate([[xs[0]], (xs[1:] + xs[:-1]) / 2, [xs[-1]]])
    errors = np.array([np.sum(ws[xs <= t]) + np.sum(1 - ws[xs > t]) for t in cuts])
    best = np.flatnonzero(errors == errors.min())
    return float((cuts[best[0]] + cuts[best[-1]]) / 2)


def book(folder: Path, size: int) -> Path:
    path = folder / "flip.yaml"
    path.write_text(FLIP_BOOK.format(size=size, agents=max(1, round(size / 300))),
                    encoding="utf-8")
    return path


def known(folder: Path, args: argparse.Namespace) -> bool:
    scenario = book(folder, args.population)
    space = folder / "impulse.yaml"
    space.write_text(f"parameters:\n  {IMPULSE}: {{low: {LOW}, high: {HIGH}, "
                     "label: agent-call impulse}\n", encoding="utf-8")
    out = folder / "known"
    start = time.perf_counter()
    contactsim("robust", str(scenario), "--uncertain", str(space), "--draws", str(args.draws),
               "--out", str(out), "--workers", str(args.workers), "--quiet")
    robust_s = time.perf_counter() - start
    pairs = pd.read_csv(out / "pairwise.csv")
    p = float(pairs.query("strategy == 'calls' and other == 'no_contact'")["p_beats"].iloc[0])
    grid = np.linspace(LOW, HIGH, args.grid)
    sweep = folder / "grid.yaml"
    sweep.write_text(f"base: {scenario}\nfactors:\n  grid:\n    {IMPULSE}: "
                     f"[{', '.join(repr(float(g)) for g in grid)}]\nreplications: 1\n",
                     encoding="utf-8")
    start = time.perf_counter()
    contactsim("sweep", str(sweep), "--out", str(folder / "grid"), "--workers",
               str(args.workers), "--quiet")
    grid_s = time.perf_counter() - start
    kpis = pd.read_csv(folder / "grid" / "kpis.csv")
    wide = kpis.pivot(index=IMPULSE, columns="strategy", values="net_value")
    a_wins = (wide["calls"] > wide["no_contact"]).to_numpy()
    share = float(a_wins.mean())
    flip = flip_point(wide.index.to_numpy(dtype=float), a_wins)
    where = pd.read_csv(out / "where.csv")
    box = where[(where["box"] == 1) & (where["parameter"] == IMPULSE)]
    bound = float(box["high"].iloc[0]) if len(box) and box["restricted"].iloc[0] == "high" \
        else float("nan")
    tol = 0.1 * (HIGH - LOW)
    print(f"known answer at {args.population:,} accounts: robust {args.draws} draws in "
          f"{robust_s:.0f} s, grid {args.grid} points in {grid_s:.0f} s")
    print(f"  P(calls beats no_contact) = {p:.3f}; grid share where calls wins = {share:.3f};"
          f" |difference| = {abs(p - share):.3f} (tolerance 0.05)")
    print(f"  grid flip point {flip:.4f}; PRIM box 1 upper bound {bound:.4f}; |distance| = "
          f"{abs(bound - flip):.4f} (tolerance {tol:.3f}, 10 % of the range)")
    ok = abs(p - share) <= 0.05 and abs(bound - flip) <= tol
    print(f"  {'PASS' if ok else 'FAIL'}")
    return ok


def sobol(folder: Path, args: argparse.Namespace) -> bool:
    scenario = book(folder, args.population)
    space = folder / "dummy.yaml"
    space.write_text(f"parameters:\n  {IMPULSE}: {{low: {LOW}, high: {HIGH}}}\n"
                     f"  {DUMMY}: {{low: 0.0, high: 0.3}}\n", encoding="utf-8")
    n = args.sobol_base * 6
    out = folder / "sobol"
    start = time.perf_counter()
    contactsim("robust", str(scenario), "--uncertain", str(space), "--draws", str(n),
               "--sobol", "--out", str(out), "--workers", str(args.workers), "--quiet")
    sens = pd.read_csv(out / "sensitivity.csv").set_index("parameter")
    st_i, st_d = float(sens.loc[IMPULSE, "ST"]), float(sens.loc[DUMMY, "ST"])
    print(f"Sobol indices at {args.population:,} accounts, {n} Saltelli draws "
          f"({time.perf_counter() - start:.0f} s):")
    print(f"  agent-call impulse ST = {st_i:.3f} [{sens.loc[IMPULSE, 'ST_low']:.3f}, "
          f"{sens.loc[IMPULSE, 'ST_high']:.3f}] (must be > 0.5); S1 = "
          f"{sens.loc[IMPULSE, 'S1']:.3f}")
    print(f"  dummy (push impulse) ST = {st_d:.3f} [{sens.loc[DUMMY, 'ST_low']:.3f}, "
          f"{sens.loc[DUMMY, 'ST_high']:.3f}] (must be < 0.05)")
    ok = st_i > 0.5 and st_d < 0.05
    print(f"  {'PASS' if ok else 'FAIL'}")
    return ok


def speed(folder: Path, args: argparse.Namespace) -> bool:
    out = folder / "speed"
    cmd = [sys.executable, "-c", "from simulator.cli import main; main()", "robust",
           str(args.speed_scenario), "--uncertain",
           str(ROOT / "scenarios" / "robust" / "uncertain.yaml"),
           "--strategies", "no_contact,fixed_cadence,risk_tiered",
           "--draws", str(args.speed_draws), "--replications", "1",
           "--set", f"population.size={args.speed_population}",
           "--out", str(out), "--workers", str(args.workers), "--quiet"]
    timer = shutil.which("time") or "/usr/bin/time"
    measured = Path(timer).exists()
    if measured:
        cmd = [timer, "-v", *cmd]
    load = os.getloadavg()
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"robust failed:\n{r.stderr}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    cells = args.speed_draws * 3
    print(f"speed on {args.speed_scenario.name}: {args.speed_draws} draws x 3 strategies x "
          f"1 replication = {cells} cells at "
          f"{args.speed_population:,} accounts on {args.workers} workers: {wall:.0f} s "
          f"({wall / 60:.1f} min; target < 15 min), {wall / cells:.2f} s per cell")
    if peak:
        print(f"  peak RSS (largest process of the command, /usr/bin/time -v): "
              f"{int(peak[1]) / 1024:.0f} MiB")
    cpu = [re.search(rf"{kind} time \(seconds\): ([0-9.]+)", r.stderr)
           for kind in ("User", "System")]
    if all(cpu):
        seconds = sum(float(m[1]) for m in cpu if m)
        # The pool's workers are the command's children, reaped by it: their CPU counts.
        print(f"  CPU time of the command and its workers: {seconds:.0f} s "
              f"({seconds / cells:.2f} s per cell); on {args.workers} otherwise idle cores "
              f"that is about {seconds / args.workers / 60:.1f} min of wall time")
    print(f"  load average before the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"on {os.cpu_count()} cores")
    print("  " + r.stdout.strip().splitlines()[-2][:200] if r.stdout.strip() else "")
    ok = wall < 15 * 60
    print(f"  {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["known", "sobol", "speed"],
                        choices=["known", "sobol", "speed"])
    parser.add_argument("--population", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=64)
    parser.add_argument("--grid", type=int, default=61)
    parser.add_argument("--sobol-base", type=int, default=32)
    parser.add_argument("--speed-draws", type=int, default=128)
    parser.add_argument("--speed-population", type=int, default=2000)
    parser.add_argument("--speed-scenario", type=Path,
                        default=ROOT / "scenarios" / "examples" / "single_cohort.yaml",
                        help="the scenario of the speed part (the issue's is the single "
                             "cohort; scenarios/default.yaml is the living book)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the output folders here (default: a temporary folder)")
    args = parser.parse_args()
    parts = {"known": known, "sobol": sobol, "speed": speed}
    with tempfile.TemporaryDirectory(prefix="robust-acceptance-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = {name: parts[name](folder, args) for name in args.parts}
    print("summary: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in results.items()))


if __name__ == "__main__":
    main()
