"""Fixtures shared by several test modules."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, shared by
    the session (starting one takes seconds). A test that needs to kill a worker starts
    a cluster of its own."""
    # dask[distributed] is a dev dependency: its absence is a broken install, not a skip.
    import distributed

    dask_cli = Path(sys.executable).parent / "dask"
    assert dask_cli.exists(), "the dask command line is not installed (pip install -e '.[dev]')"
    tmp = tmp_path_factory.mktemp("dask")
    info = tmp / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen([str(dask_cli), *args], cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        log.close()

    try:
        # Port 0: the scheduler picks a free port and writes its address to the file.
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
              "--no-dashboard", "--scheduler-file", str(info))
        deadline = time.monotonic() + 60
        address = None
        while address is None:  # the file may exist before it is written whole
            assert procs[0].poll() is None, (tmp / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            try:
                address = json.loads(info.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        for i in (1, 2):
            start(f"worker{i}", "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                  "--no-nanny", "--no-dashboard", "--name", f"w{i}")
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            assert len(client.scheduler_info()["workers"]) == 2
        yield address
    finally:
        # Workers first, then the scheduler: a worker whose scheduler is gone retries.
        for group in (procs[1:], procs[:1]):
            for p in group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
            for p in group:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=15)


def valid_cells(cells: Path) -> dict[str, int]:
    """The finished cells of a cells folder: key -> modification time (ns)."""
    from simulator.experiments.cells import read_cell

    return {p.stem: p.stat().st_mtime_ns for p in cells.glob("*.json")
            if read_cell(p, p.stem) is not None}


@pytest.fixture
def kill_midway() -> Callable[[list[str], Path, int], None]:
    """``kill(args, cells, wanted)``: start ``contactsim ARGS`` in a session of its own,
    wait until ``cells`` holds ``wanted`` finished cells (at most 300 s; the command must
    not end first), then SIGKILL it and its workers, as a user's kill -9 or a lost
    machine would."""

    def kill(args: list[str], cells: Path, wanted: int) -> None:
        proc = subprocess.Popen([sys.executable, "-c", "from simulator.cli import main; main()",
                                 *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while len(valid_cells(cells)) < wanted if cells.exists() else True:
                assert proc.poll() is None, "the command ended before it could be interrupted"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    return kill
