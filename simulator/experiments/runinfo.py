"""``run.yaml``: what the command line changed in the scenario file of a results folder.

``scenario.resolved.yaml`` holds every parameter a run used, but not which of them the
command line set: a report that quotes the scenario's description ("20,000 accounts")
after ``--set population.size=3000`` would contradict the run. ``contactsim run`` and
``compare`` write the scenario file's path, the overrides applied (``--set``, and
``--seed``/``--replications`` as the overrides they are) and the arms given on the
command line, so the report can show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from simulator.experiments.cells import simulator_version

#: File name of the run information in a results folder.
RUN_INFO = "run.yaml"


def run_info_text(*, command: str, scenario_file: Path, overrides: Sequence[str],
                  strategies: Sequence[str] = ()) -> str:
    """The content of ``run.yaml`` (staged in the output folder with the run's files)."""
    info: dict[str, Any] = {
        "command": command,
        "scenario_file": str(scenario_file),
        "overrides": list(overrides),
        "strategies_from_command_line": list(strategies),
        "simulator_version": simulator_version(),
    }
    return ("# What the command line changed in the scenario file (written by contactsim).\n"
            + yaml.safe_dump(info, sort_keys=False, allow_unicode=True))
