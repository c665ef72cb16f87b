"""The machine's memory, checked before runs are launched.

A run's own need is estimated model-side (``simulator.memory_estimate``); here it is
compared with the memory this process may still use: the least of the system's
``MemAvailable``, what the cgroup's ``memory.max`` leaves (v2, or v1's
``memory.limit_in_bytes``, over every enclosing group) and, per process, what
``RLIMIT_AS`` leaves of the address space. Only ``USABLE_SHARE`` of it may be planned
for. Setting ``CONTACTSIM_NO_MEMORY_CHECK=1`` skips the check (the run may then end in
an out-of-memory error, still reported in one line).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import ResourceError
from simulator.memory_estimate import IDLE_PROCESS_BYTES

#: The environment variable that turns the check off.
SKIP_VARIABLE = "CONTACTSIM_NO_MEMORY_CHECK"
#: The share of the available memory a command may plan to use (the rest is the
#: margin for what the estimate does not see: other processes, the page cache's needs).
USABLE_SHARE = 0.9

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limit:
    """Memory that may still be used, and what sets it."""

    bytes: int
    source: str
    per_process: bool = False


def _meminfo_available() -> Limit | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return Limit(int(line.split()[1]) * 1024, "MemAvailable")
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _inactive_file(stat_file: Path, key: str) -> int:
    """Reclaimable page cache counted in a cgroup's usage (0 if unknown)."""
    try:
        for line in stat_file.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _cgroup_available() -> Limit | None:
    """The least that any cgroup enclosing this process leaves (v2, else v1)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    best: Limit | None = None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2
            base, files = _CGROUP_ROOT, ("memory.max", "memory.current", "memory.stat",
                                         "inactive_file")
        elif "memory" in controllers.split(","):  # cgroup v1
            base, files = _CGROUP_ROOT / "memory", (
                "memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat",
                "total_inactive_file")
        else:
            continue
        group = base / path.lstrip("/")
        while True:
            limit = _read_int(group / files[0])
            used = _read_int(group / files[1])
            if limit is not None and used is not None and limit < 2**60:
                free = limit - used + _inactive_file(group / files[2], files[3])
                if best is None or free < best.bytes:
                    best = Limit(max(free, 0), f"the cgroup's {files[0]}")
            if group == base or base not in group.parents:
                break
            group = group.parent
    return best


def _address_space_available() -> Limit | None:
    """What ``RLIMIT_AS`` leaves of this process's address space."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    size = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                size = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return Limit(max(soft - size, 0), "RLIMIT_AS (ulimit -v)", per_process=True)


def memory_limits() -> list[Limit]:
    """Every limit found on this machine (none where nothing can be read)."""
    return [lim for lim in (_meminfo_available(), _cgroup_available(),
                            _address_space_available()) if lim is not None]


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def check_memory(per_run: int, processes: int, what: str,
                 new_processes: int | None = None) -> None:
    """Refuse, before anything runs, ``processes`` runs at once of ``per_run`` bytes each
    that the machine cannot hold; ``new_processes`` (default: all but this one, when
    more than one) are started for them and each costs ``IDLE_PROCESS_BYTES`` too.

    One line names the estimate, the limit and how to turn the check off.
    """
    if os.environ.get(SKIP_VARIABLE, "").strip() not in ("", "0"):
        return
    processes = max(1, processes)
    started = processes - 1 if new_processes is None else new_processes
    total = processes * per_run + max(started, 0) * IDLE_PROCESS_BYTES
    # Of the limits exceeded, name the tightest: the one a user must change first (which
    # of them is checked first must not decide what the line says).
    exceeded = [limit for limit in memory_limits()
                if (per_run if limit.per_process else total) > limit.bytes * USABLE_SHARE]
    if not exceeded:
        return
    limit = min(exceeded, key=lambda lim: lim.bytes)
    need = per_run if limit.per_process else total
    at_once = (f"{processes} runs at once x {_mib(per_run)}" if processes > 1
               and not limit.per_process else "")
    raise ResourceError(
        f"not enough memory for {what}: estimated {_mib(need)}"
        f"{f' ({at_once})' if at_once else ''}, but {limit.source} leaves "
        f"{_mib(limit.bytes)} ({USABLE_SHARE:.0%} usable); use a smaller "
        f"population.size or fewer workers, or set {SKIP_VARIABLE}=1 to run anyway",
        source="memory")
