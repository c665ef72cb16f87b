"""Where cells run: a local process pool or a Dask distributed cluster, behind one
small interface (``Backend``), and ``run_tasks`` that streams results back as cells finish.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any, Protocol

from simulator.errors import UserError
from simulator.experiments.cells import CellTask, cell_record, run_cell
from simulator.experiments.supervised import exit_with_parent, stop_workers


class Backend(Protocol):
    """Where cells run: submit one, wait for any, shut down."""

    slots: int

    def submit(self, fn: Callable[[CellTask], dict[str, Any]], task: CellTask) -> Any: ...

    def wait_any(self, futures: Sequence[Any]) -> set[Any]: ...

    def close(self, cancel: bool) -> None: ...


def worker_death(exit_code: int | None) -> str:
    """How a worker process died, for the record of the cell that killed it."""
    if exit_code is None:
        return "worker process died"
    if exit_code < 0:
        try:
            return f"worker process died (killed by {signal.Signals(-exit_code).name})"
        except ValueError:
            pass
    return f"worker process died (exit code {exit_code})"


class LocalPool:
    """A local ``ProcessPoolExecutor`` with ``workers`` processes."""

    def __init__(self, workers: int):
        self.slots = max(1, workers)
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # Workers exit when this process dies, and leave Ctrl-C and SIGTERM to it.
        return ProcessPoolExecutor(max_workers=self.slots, initializer=exit_with_parent,
                                   initargs=(os.getpid(),))

    def submit(self, fn: Callable[[CellTask], dict[str, Any]], task: CellTask) -> Any:
        return self._pool.submit(fn, task)

    def restart(self) -> str:
        """Replace a pool that broke because a worker died; say how the worker died.

        When one worker dies, the executor fails every task in flight and terminates its
        other workers (SIGTERM), so the dead one is the one that did not end that way.
        The processes are read from the executor's private ``_processes`` (only for
        this message: without it the message has no exit code).
        """
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()
        codes = [p.exitcode for p in processes if p.exitcode is not None]
        unusual = [c for c in codes if c != -signal.SIGTERM]
        return worker_death((unusual or codes or [None])[0])

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        done, _ = wait_futures(futures, return_when=FIRST_COMPLETED)
        return set(done)

    def close(self, cancel: bool) -> None:
        if cancel:  # the cells running are not wanted: do not wait for them
            stop_workers(self._pool)
        else:
            self._pool.shutdown(wait=True)


#: Address schemes of a Dask scheduler reachable from another process.
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")


def check_scheduler_address(address: str) -> str:
    """``address`` if it is a Dask scheduler address (``[scheme://]host:port``), else a
    one-line ``UserError``: checked before connecting, so that a typo is reported at
    once rather than after the client's connection attempts time out."""
    expected = ("expected SCHEME://HOST:PORT with SCHEME one of "
                f"{', '.join(SCHEDULER_SCHEMES)}, e.g. tcp://10.0.0.5:8786")
    scheme, sep, location = address.strip().partition("://")
    if not sep:
        scheme, location = "tcp", address.strip()
    if scheme not in SCHEDULER_SCHEMES:
        raise UserError(f"{address!r} is not a Dask scheduler address: unknown scheme "
                        f"{scheme!r}; {expected}", source="--scheduler")
    host, colon, port = location.rpartition(":")
    if not colon or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{address!r} is not a Dask scheduler address; {expected}",
                        source="--scheduler")
    return f"{scheme}://{host}:{int(port)}"


class DaskCluster:
    """A Dask distributed scheduler at ``address`` (``pip install 'contactsim[dask]'``)."""

    def __init__(self, address: str, connect_timeout: float = 10.0,
                 worker_timeout: float = 60.0):
        address = check_scheduler_address(address)
        try:
            from distributed import Client
        except ImportError:
            raise UserError("a Dask scheduler needs the dask extra: "
                            "pip install 'contactsim[dask]'", source="--scheduler") from None
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except Exception as exc:
            raise UserError(f"cannot connect to the Dask scheduler at {address} "
                            f"({type(exc).__name__}: {exc})", source="--scheduler") from None
        try:
            self.client.wait_for_workers(1, timeout=worker_timeout)
        except Exception:
            self.client.close()
            raise UserError(f"no Dask worker joined the scheduler at {address} within "
                            f"{worker_timeout:g} s", source="--scheduler") from None
        threads = sum(self.client.nthreads().values())
        # Dask balances better when it sees more than one task per thread.
        self.slots = max(64, 4 * threads)
        from distributed import as_completed

        self._completed = as_completed(loop=self.client.loop)

    def submit(self, fn: Callable[[CellTask], dict[str, Any]], task: CellTask) -> Any:
        future = self.client.submit(fn, task, pure=False)
        self._completed.add(future)
        return future

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        # Every future in flight was added to ``_completed`` by ``submit``.
        return {next(self._completed)}

    def close(self, cancel: bool) -> None:
        self.client.close()


def _outcome(future: Any) -> dict[str, Any] | BaseException:
    try:
        result: dict[str, Any] = future.result()
    except Exception as exc:  # the worker died or the task was cancelled
        return exc
    return result


def run_tasks(backend: Backend, tasks: Iterable[CellTask], window: int | None = None
              ) -> Generator[tuple[CellTask, dict[str, Any] | BaseException], None, None]:
    """Run ``run_cell`` on each task, yielding (task, record or error) as each completes.

    At most ``window`` tasks (default ``2 x backend.slots``) are in flight, so a large
    sweep is not pickled all at once.

    A cell that kills its worker process (``os._exit``, a crash in native code, the
    out-of-memory killer) breaks a local pool, and every task in flight fails with it;
    which of them killed the worker cannot be told. The pool is restarted and those
    tasks are rerun one at a time: a task that breaks the pool while alone is the
    culprit, and is yielded as a failed record saying how its worker died.
    """
    limit = window or 2 * backend.slots
    # Only a local pool can be restarted; Dask replaces dead workers itself.
    restart: Callable[[], str] | None = getattr(backend, "restart", None)
    todo = iter(tasks)
    pending: dict[Any, CellTask] = {}
    suspects: list[CellTask] = []  # in flight when the pool broke, not yet rerun alone
    exhausted = False
    while True:
        if suspects:
            if not pending:
                suspect = suspects.pop(0)
                pending[backend.submit(run_cell, suspect)] = suspect
        else:
            while not exhausted and len(pending) < limit:
                task = next(todo, None)
                if task is None:
                    exhausted = True
                else:
                    pending[backend.submit(run_cell, task)] = task
        if not pending:
            return
        done = backend.wait_any(list(pending))
        casualties: list[CellTask] = []
        while done:
            # Yield in submission order among those done, for a stable progress log.
            for fut in [f for f in pending if f in done]:
                task = pending.pop(fut)
                outcome = _outcome(fut)
                if isinstance(outcome, BrokenExecutor) and restart is not None:
                    casualties.append(task)
                else:
                    yield task, outcome
            # A broken pool fails every task in flight: collect them all before restarting.
            done = backend.wait_any(list(pending)) if casualties and pending else set()
        if not casualties or restart is None:
            continue
        death = restart()
        if len(casualties) == 1:
            yield casualties[0], cell_record(casualties[0], "failed", death)
        else:
            suspects.extend(casualties)
