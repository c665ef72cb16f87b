"""Count the bad-input cases of ``tests/test_bad_input.py`` and the failures among them.

Run from the repository root::

    python tests/bad_input_report.py               # in-process cases (a few seconds)
    python tests/bad_input_report.py --processes   # also the real command-line subset

A case fails when the input is accepted, or refused otherwise than by one line naming
the file (and the field) with exit code 2 and no traceback. Known failures in code the
suite does not own are counted apart ("known"); the tests mark them xfail.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_bad_input as suite

C = TypeVar("C")


def tally(name: str, cases: Iterable[C], check: Callable[[C, Path], suite.Outcome],
          case_id: Callable[[C], str], category: Callable[[C], str],
          known: Callable[[C], bool], show: int) -> tuple[int, int, int]:
    """Run ``check`` on every case; print one line per category and the failures."""
    tried: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    known_failed: Counter[str] = Counter()
    failures: list[str] = []
    for case in cases:
        with tempfile.TemporaryDirectory() as folder:
            outcome = check(case, Path(folder))
        cat = category(case)
        tried[cat] += 1
        if not outcome.passed:
            if known(case):
                known_failed[cat] += 1
            else:
                failed[cat] += 1
                failures.append(f"    {case_id(case)}: {outcome.detail[:160]}")
    print(f"{name}: {sum(tried.values())} cases, {sum(failed.values())} failing, "
          f"{sum(known_failed.values())} known failures (xfail)")
    for cat in sorted(tried, key=lambda c: -tried[c]):
        print(f"  {cat:32s} {tried[cat]:5d} tried {failed[cat]:4d} failing "
              f"{known_failed[cat]:4d} known")
    for line in failures[:show]:
        print(line)
    if len(failures) > show:
        print(f"    ... and {len(failures) - show} more")
    return sum(tried.values()), sum(failed.values()), sum(known_failed.values())


def _process_category(case: suite.ProcessCase) -> str:
    if case.id.startswith("args:"):
        return "command-line arguments"
    return "sweep file" if case.id.startswith("sweep") else "scenario file"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", action="store_true",
                        help="also run the subset through python -m simulator")
    parser.add_argument("--show", type=int, default=20, help="failures to list per group")
    args = parser.parse_args()
    totals = [
        tally("scenario files", suite.scenario_cases(), suite.check_scenario_case,
              lambda c: c.id, lambda c: c.category, lambda c: c.id in suite.KNOWN_GAPS,
              args.show),
        tally("sweep files", [*suite.sweep_cases(), *suite.generated_sweep_cases()],
              suite.check_sweep_case, lambda c: c.id,
              lambda c: "hand-made" if c.id.startswith("sweep:") else "mutated",
              lambda c: c.id in suite.KNOWN_SWEEP_GAPS, args.show),
        tally("command lines (in-process)", suite.arg_cases(), suite.check_arg_case,
              lambda c: c.id, lambda c: c.category, lambda c: c.xfail is not None,
              args.show),
    ]
    if args.processes:
        with tempfile.TemporaryDirectory() as folder:
            cases = suite.subprocess_cases(Path(folder))

            def check(case: suite.ProcessCase, _: Path) -> suite.Outcome:
                r = suite.contactsim(case.args, cwd=Path(folder))
                return suite.check_cli_result(r.returncode, r.stderr, case.fragments)

            totals.append(tally("real command lines (python -m simulator)", cases, check,
                                lambda c: c.id, _process_category,
                                lambda c: c.xfail is not None, args.show))
    tried, failing, known = (sum(t[i] for t in totals) for i in range(3))
    print(f"total: {tried} cases tried, {failing} failing, {known} known failures (xfail)")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
