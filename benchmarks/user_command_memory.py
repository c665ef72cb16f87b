"""Benchmark: wall time and peak memory of the user's own command, ``contactsim run``
with its outputs written, measured by ``/usr/bin/time -v``.

Usage: python benchmarks/user_command_memory.py [--sizes 100000 1000000]
       [--strategy fixed_cadence] [--scenario scenarios/default.yaml] [--repeat 1]
       [--workers 1] [--no-events]

Runs, per size, ``contactsim run SCENARIO --strategy S --set population.size=N --out
TMP -q`` under ``/usr/bin/time -v`` (a fresh process each time, outputs written to a
temporary folder removed afterwards) and prints its wall time, its CPU time (user +
system: what the run costs whatever else the machine runs, while the wall time grows
with the load, printed as the one-minute load average at the end of the run), its peak
resident memory ("Maximum resident set size") and the size of the files written.
With ``--repeat`` the best wall and CPU times and the largest peak are kept. ``time
-v`` reports the peak of the largest single process: with ``--workers`` above 1 the
pool's processes add up.
Not a unit test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME = Path("/usr/bin/time")


def _seconds(text: str) -> float:
    """``h:mm:ss`` or ``m:ss.ss`` as seconds."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def measure(scenario: Path, size: int, strategy: str, workers: int, events: bool,
            extra: list[str]) -> dict[str, object]:
    """One ``contactsim run`` under ``/usr/bin/time -v``."""
    contactsim = Path(sys.executable).parent / "contactsim"
    with tempfile.TemporaryDirectory(prefix="contactsim-user-command-") as tmp:
        out = Path(tmp) / "out"
        cmd = [str(contactsim), "run", str(scenario), "--strategy", strategy,
               "--set", f"population.size={size}", "--out", str(out), "-q",
               "--workers", str(workers), *extra]
        if not events:
            cmd.append("--no-events")
        r = subprocess.run([str(TIME), "-v", *cmd], capture_output=True, text=True,
                           cwd=ROOT)
        if r.returncode != 0:
            raise SystemExit(f"contactsim run failed ({r.returncode}):\n{r.stderr}")
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
        wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)",
                         r.stderr)
        user = re.search(r"User time \(seconds\): ([\d.]+)", r.stderr)
        system = re.search(r"System time \(seconds\): ([\d.]+)", r.stderr)
        if not peak or not wall or not user or not system:
            raise SystemExit(f"no figures from /usr/bin/time:\n{r.stderr}")
        written = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
        shutil.rmtree(out)
    return {"size": size, "strategy": strategy, "workers": workers, "events": events,
            "wall": _seconds(wall[1]), "cpu": float(user[1]) + float(system[1]),
            "load": os.getloadavg()[0], "peak_kib": int(peak[1]), "written_bytes": written,
            "command": " ".join(["contactsim", *cmd[1:]])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--strategy", default="fixed_cadence")
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "default.yaml")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-events", action="store_true", help="run with --no-events")
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        help="another --set KEY=VALUE for the command (repeatable)")
    args = parser.parse_args()
    if not TIME.exists():
        print("/usr/bin/time is not installed (GNU time: apt-get install time)",
              file=sys.stderr)
        return 1
    extra = [x for kv in args.extra for x in ("--set", kv)]
    print(f"{'borrowers':>10} {'wall s':>8} {'cpu s':>7} {'load':>5} {'peak MiB':>9} "
          f"{'peak GiB':>9} {'written MB':>10}")
    for size in args.sizes:
        runs = [measure(args.scenario.resolve(), size, args.strategy, args.workers,
                        not args.no_events, extra) for _ in range(max(1, args.repeat))]
        best = {**runs[0], "wall": min(float(r["wall"]) for r in runs),  # type: ignore[arg-type]
                "walls": [r["wall"] for r in runs],
                "cpu": min(float(r["cpu"]) for r in runs),  # type: ignore[arg-type]
                "peak_kib": max(int(r["peak_kib"]) for r in runs)}  # type: ignore[call-overload]
        print(f"{size:>10,} {best['wall']:>8.1f} {best['cpu']:>7.1f} {best['load']:>5.1f} "
              f"{best['peak_kib'] / 1024:>9.0f} "
              f"{best['peak_kib'] / 2**20:>9.2f} {int(best['written_bytes']) / 1e6:>10.0f}",
              flush=True)
        print(json.dumps(best), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
