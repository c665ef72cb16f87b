"""Supervised runs: plug-in code runs in a child process that the caller watches and kills.

A plug-in is Python code: it can start threads that never end, catch every exception
(the time limit's too), ignore signals, raise ``KeyboardInterrupt`` or call
``os._exit``. None of that may take contactsim down, so a run whose strategy is plug-in
code (``uses_plugin``) runs, engine and strategy together, in a child process of its
own: the view is built where the strategy reads it, and only the result crosses
between processes. The engine announces each call of the strategy's code (its
construction, ``view_columns()``, ``decide()``, ``learn()``) through its ``watch`` hook;
the child passes each announcement to the supervisor over a socket, and the supervisor
kills the child (its whole process group) when a call outlasts
``decision.timeout_seconds`` by more than ``GRACE_SECONDS``, whatever the code does
inside. A run stops with one line naming the strategy and the day: the limit, a child
that died (``os._exit``, a crash, a signal), a ``KeyboardInterrupt`` or any other
exception the strategy raised. A thread the strategy leaves running ends with the
child, which exits as soon as it has sent its result.

Children are forked from a *zygote*: one single-threaded helper process per
supervising process (the command line, a pool worker, a Dask worker), with contactsim
already imported, so that a child starts in milliseconds rather than the seconds a
fresh interpreter takes. The zygote is itself forked from the supervising process when
that process runs no other thread (the command line, a pool worker); otherwise (a Dask
worker, whose threads make ``fork`` unsafe, and whose daemonic process may not start
``multiprocessing`` children) it is a fresh interpreter started with ``subprocess``.
Children are session leaders: a terminal's Ctrl-C reaches contactsim, never them, so a
``KeyboardInterrupt`` in a child is always the strategy's, and the user's Ctrl-C stops
contactsim, which then stops its children. The zygote kills every child it forked
when its supervising process dies (its control socket closes), and each child is
killed by the kernel should the zygote die (``PR_SET_PDEATHSIG``, Linux).

This contains plug-in code; it does not sandbox it: the code runs as the user, with the
user's files and processes within its reach.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from simulator.engine import CONSTRUCTOR, Results, call_strategy, run
from simulator.errors import ScenarioError, StrategyError, UserError
from simulator.scenario import Scenario, StrategySpec
from simulator.strategies import build_strategy
from simulator.strategies.loader import uses_plugin

#: How long past ``decision.timeout_seconds`` the supervisor waits before it kills a
#: call: the child's own timer (``call_strategy``) stops a strategy that lets it, with
#: the same message, at the limit itself.
GRACE_SECONDS = 0.5

#: How often a supervisor with no call to time checks whether it was told to stop.
POLL_SECONDS = 0.25

#: How long a request to the zygote may take (its start included) before it is deemed
#: lost.
ZYGOTE_TIMEOUT_SECONDS = 300.0


class RunStopped(Exception):
    """A supervised run stopped because its caller asked (another run failed)."""


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class RunJob:
    """One run of the model (``engine.run``), with or without its output frames."""

    scenario: Scenario
    spec: StrategySpec
    seed: int
    replication: int
    base_dir: Path | None
    frames: bool

    @property
    def source(self) -> str:
        return f"strategy '{self.spec.name}'"

    @property
    def limit(self) -> float:
        return self.scenario.decision.timeout_seconds

    def __call__(self, watch: _ChildWatch) -> Results:
        watch.source = self.source
        results = run(self.scenario, self.spec, self.seed, self.replication, self.base_dir,
                      watch=watch)
        if not self.frames:
            empty = pd.DataFrame()
            results = replace(results, events=empty, daily=empty, accounts=empty,
                              agents_daily=empty)
        return results


@dataclass(frozen=True)
class CheckJob:
    """Build each strategy once (module, parameters, constructor), as a run would."""

    specs: tuple[StrategySpec, ...]
    base_dir: Path | None
    limit: float

    @property
    def source(self) -> str:
        return f"strategy '{self.specs[0].name}'" if self.specs else "strategy"

    def __call__(self, watch: _ChildWatch) -> None:
        for spec in self.specs:
            watch.source = f"strategy '{spec.name}'"
            call_strategy(watch.source, self.limit, 0, CONSTRUCTOR,
                          build_strategy, spec, np.random.default_rng(0), self.base_dir,
                          watch=watch)


@dataclass(frozen=True)
class _Envelope:
    """A job with the supervisor's working folder, import path and environment, which the
    child takes on (the zygote may have been started before any of them changed)."""

    job: RunJob | CheckJob
    cwd: str
    sys_path: list[str] = field(default_factory=list)
    environ: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- public API


def run_supervised(scenario: Scenario, spec: StrategySpec, seed: int, replication: int = 0,
                   base_dir: Path | None = None, *, frames: bool = True,
                   stop: threading.Event | None = None) -> Results:
    """``engine.run`` in a supervised child process (see the module's docstring).

    A fault of the strategy raises a ``StrategyError`` naming it (and the day);
    ``frames=False`` brings back the KPIs only (the frames are left empty); ``stop``,
    once set, kills the child and raises ``RunStopped``.
    """
    job = RunJob(scenario, spec, seed, replication, base_dir, frames)
    results: Results = _supervise(job, job.limit, job.source, stop)
    return results


def check_strategies(specs: Sequence[StrategySpec], base_dir: Path | None,
                     limit: float) -> None:
    """Build each strategy once, as a run would, so that an unknown reference or a bad
    parameter is an error before anything runs: the built-ins here, plug-in code in one
    supervised child (its module and constructor are held to ``limit`` too)."""
    plugins = []
    for spec in specs:
        if uses_plugin(spec):
            plugins.append(spec)
        else:
            build_strategy(spec, np.random.default_rng(0), base_dir)
    if plugins:
        job = CheckJob(tuple(plugins), base_dir, limit)
        _supervise(job, limit, job.source, None)


def exit_with_parent(parent: int) -> None:
    """The initializer of a pool worker: exit when the process that started the pool dies
    (by SIGKILL, say) rather than linger, and leave Ctrl-C and SIGTERM to it.

    The terminal's Ctrl-C reaches the whole process group; the parent stops its
    workers itself, so that they die quietly instead of each printing a traceback. A
    SIGTERM handler the parent installed is reset: a worker is ended by SIGTERM when the
    pool shuts down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    thread = threading.Thread(target=watch, name="contactsim-parent-watch", daemon=True)
    _QUIET_THREADS.add(thread)
    thread.start()


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill a process pool's workers and shut it down, without waiting for the cells they
    are running (after a failure, Ctrl-C or SIGTERM, nobody wants them any more).

    The processes are read from the executor's private ``_processes``: shutting down
    alone would wait for every running cell to finish.
    """
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- supervisor


def _supervise(job: RunJob | CheckJob, limit: float, source: str,
               stop: threading.Event | None) -> Any:
    """Run ``job`` in a child, enforce the deadline of each call, return its result."""
    zygote = _zygote()
    pid, conn = zygote.fork()
    finished = False
    try:
        call: tuple[int, str] | None = None  # the call running, as (day, what)
        last: tuple[int, str] | None = None  # the last call announced
        try:
            conn.send(_Envelope(job, os.getcwd(), list(sys.path), dict(os.environ)))
        except OSError:  # the child died at once
            finished = True
            raise StrategyError(_death(call, last, zygote.finish(pid)), source=source) from None
        deadline = 0.0
        while True:
            if stop is not None and stop.is_set():
                raise RunStopped("stopped")
            wait = POLL_SECONDS if call is None else min(
                POLL_SECONDS, max(0.0, deadline - time.monotonic()))
            if not conn.poll(wait):
                if call is not None and time.monotonic() >= deadline:
                    day, what = call
                    raise StrategyError(f"on day {day}: {what} took longer than {limit:g} s "
                                        "(decision.timeout_seconds)", source=source)
                continue
            try:
                message = conn.recv()
                kind = message[0]
            except Exception:  # the child died (EOF), or sent something unreadable
                finished = True
                status = zygote.finish(pid)
                raise StrategyError(_death(call, last, status), source=source) from None
            if kind == "call":
                call = last = (int(message[1]), str(message[2]))
                source = str(message[3])
                deadline = time.monotonic() + limit + GRACE_SECONDS
            elif kind == "done":
                call = None
            elif kind == "result":
                return message[1]
            elif kind == "error":
                raise _ERRORS.get(message[1], UserError)(str(message[2]))
            elif kind == "memory":
                raise MemoryError(str(message[1]))
            else:  # "crash": a bug of contactsim in the child
                raise RuntimeError(f"the supervised run failed in its child process:\n"
                                   f"{message[1]}")
    finally:
        if not finished:
            zygote.finish(pid)
        conn.close()


#: The user errors a child reports, by name; anything else is a ``UserError``.
_ERRORS: dict[str, type[UserError]] = {
    "StrategyError": StrategyError, "ScenarioError": ScenarioError, "UserError": UserError}


def _death(call: tuple[int, str] | None, last: tuple[int, str] | None,
           status: int | None) -> str:
    """What to say of a child that died (``status``: its exit code, negative for a
    signal, None when unknown) while running ``call``, or after ``last``."""
    if status is None:
        how = "cause unknown"
    elif status < 0:
        try:
            how = f"killed by {signal.Signals(-status).name}"
        except ValueError:
            how = f"killed by signal {-status}"
    else:
        how = f"exit code {status}"
    if call is not None:
        day, what = call
        return f"on day {day}: {what} ended its process ({how})"
    if last is not None:
        day, what = last
        return f"the process running it died ({how}) after {what} on day {day}"
    return f"the process running it died ({how}) before any of its code ran"


# --------------------------------------------------------------------------- zygote


#: Threads that may be running when the zygote is forked: they hold no lock (the pool
#: worker's parent watch sleeps), and a forked process keeps none of them.
_QUIET_THREADS: set[threading.Thread] = set()


def _fork_is_safe() -> bool:
    """Whether this process runs no other thread than the caller and quiet ones."""
    me = threading.current_thread()
    return all(t is me or t in _QUIET_THREADS for t in threading.enumerate())


class _Zygote:
    """The supervisor's end of a zygote: fork a child, finish (kill and reap) one."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0
        if _fork_is_safe():
            pid = os.fork()
            if pid == 0:  # the zygote
                ours.close()
                _zygote_serve(theirs)
            self.pid = pid
        else:
            code = ("import sys; from simulator.experiments.supervised import zygote_main; "
                    "zygote_main(int(sys.argv[1]))")
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, start_new_session=True)
            self.pid = self.process.pid
        theirs.close()
        ours.settimeout(ZYGOTE_TIMEOUT_SECONDS)
        self.ctl = ours
        self.lost = False

    def alive(self) -> bool:
        if self.lost:
            return False
        if self.process is not None:
            return self.process.poll() is None
        try:
            return os.waitpid(self.pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def _ask(self, data: bytes, fds: Sequence[int] = ()) -> int:
        """Send a request, return the zygote's answer (a number)."""
        with self.lock:
            if self.lost:
                raise EOFError("the zygote process is gone")
            try:
                socket.send_fds(self.ctl, [data], list(fds))
                reply = self.ctl.recv(64)
                if not reply:
                    raise EOFError("the zygote process ended")
                return int(reply)
            except BaseException:
                # A request without its answer (the zygote died, or Ctrl-C came between
                # the two) leaves the exchange out of step: drop this zygote, which then
                # kills its children and exits, and use a new one.
                self.lost = True
                with contextlib.suppress(OSError):
                    self.ctl.close()
                raise

    def fork(self) -> tuple[int, Connection]:
        """A new child and the supervisor's end of its channel."""
        ours, theirs = socket.socketpair()
        try:
            pid = self._ask(b"fork", [theirs.fileno()])
        except (OSError, EOFError) as exc:
            ours.close()
            raise RuntimeError(f"cannot start a process for plug-in code ({exc})") from None
        finally:
            theirs.close()
        return pid, Connection(ours.detach())

    def finish(self, pid: int) -> int | None:
        """Kill the child ``pid`` and its process group, reap it, return its exit code
        (negative: the signal that ended it; None if the zygote could not say)."""
        try:
            code = self._ask(f"finish {pid}".encode())
        except (OSError, EOFError, ValueError):
            return None
        return None if code == _UNKNOWN else code

    def close(self) -> None:
        """Close the control socket (the zygote kills its children and exits); reap it."""
        self.lost = True
        with contextlib.suppress(OSError):
            self.ctl.close()
        if self.process is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)


#: The exit code the zygote reports for a child it does not know.
_UNKNOWN = -(2**31)

_ZYGOTE: _Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def _zygote() -> _Zygote:
    """This process's zygote, started on first use (again if it died)."""
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or _ZYGOTE.owner != os.getpid() or not _ZYGOTE.alive():
            if _ZYGOTE is not None and _ZYGOTE.owner == os.getpid():
                _ZYGOTE.close()
            _ZYGOTE = _Zygote()
        return _ZYGOTE


def _forget_zygote() -> None:
    """In a forked process: drop the parent's zygote (and close our copy of its control
    socket, so that the zygote still sees the parent's death)."""
    global _ZYGOTE, _ZYGOTE_LOCK
    _ZYGOTE_LOCK = threading.Lock()  # another thread may have held it at the fork
    if _ZYGOTE is not None:
        with contextlib.suppress(OSError):
            _ZYGOTE.ctl.close()
        _ZYGOTE = None


os.register_at_fork(after_in_child=_forget_zygote)


def zygote_main(fd: int) -> NoReturn:
    """Entry point of a zygote started as a fresh interpreter (``subprocess``)."""
    _zygote_serve(socket.socket(fileno=fd))


def _zygote_serve(ctl: socket.socket) -> NoReturn:
    """The zygote: fork a child per ``fork`` request (receiving its channel), kill and
    reap one per ``finish`` request; when the control socket closes (the supervising
    process is gone), kill every child left and exit."""
    children: set[int] = set()
    zygote = os.getpid()
    try:
        with contextlib.suppress(OSError):
            os.setsid()  # out of the terminal's process group: no Ctrl-C reaches it
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        ctl.settimeout(None)
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(ctl, 64, 1)
            except OSError:
                break
            if not data:
                break
            if data == b"fork" and fds:
                pid = os.fork()
                if pid == 0:
                    _child_main(ctl, fds[0], zygote)
                os.close(fds[0])
                children.add(pid)
                ctl.send(str(pid).encode())
            elif data.startswith(b"finish "):
                pid = int(data.split()[1])
                code = _UNKNOWN
                if pid in children:
                    children.discard(pid)
                    _kill_group(pid)
                    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
                ctl.send(str(code).encode())
            else:
                for fd in fds:
                    os.close(fd)
                ctl.send(str(_UNKNOWN).encode())
    finally:
        for pid in children:
            _kill_group(pid)
        os._exit(0)


def _kill_group(pid: int) -> None:
    """SIGKILL the child ``pid`` and its process group (processes it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent (the zygote) dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


# --------------------------------------------------------------------------- child


class _ChildWatch:
    """The engine's ``watch`` in a child: announce each call of strategy code."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.source = "strategy"  # set by the job: the strategy whose code is called
        self.last: tuple[int, str] | None = None
        self.escaped: tuple[int, str] | None = None  # the call a KeyboardInterrupt left

    @contextlib.contextmanager
    def __call__(self, day: int, what: str) -> Iterator[None]:
        self.last = (day, what)
        self.send(("call", day, what, self.source))
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.escaped = (day, what)
            raise
        finally:
            self.send(("done",))

    def send(self, message: tuple[Any, ...]) -> None:
        """Send ``message`` whole: no signal's handler may cut it in the middle."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGALRM})
        try:
            self.conn.send(message)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def interrupted(self, exc: BaseException) -> str:
        """The one-line error for a ``KeyboardInterrupt`` that ended the run."""
        name = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        if self.escaped is not None:
            day, what = self.escaped
            detail = f"on day {day}: {what} raised {name}"
        elif self.last is not None:
            day, what = self.last
            detail = f"after {what} on day {day}, code it left running raised {name}"
        else:
            detail = f"{name} raised before any of its code ran"
        return str(StrategyError(detail, source=self.source))


def _child_main(ctl: socket.socket, fd: int, zygote: int) -> NoReturn:
    """A child of the zygote: run the job it is sent, send the outcome, exit at once (so
    that no thread the strategy left running can keep it alive)."""
    try:
        ctl.close()
        os.setsid()
        _die_with_parent()
        if os.getppid() != zygote:  # the zygote died before the kernel could be told
            os._exit(1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        conn = Connection(fd)
        envelope: _Envelope = conn.recv()
        os.chdir(envelope.cwd)
        sys.path[:] = envelope.sys_path
        os.environ.clear()
        os.environ.update(envelope.environ)
        job = envelope.job
        watch = _ChildWatch(conn)
        outcome: tuple[Any, ...]
        try:
            outcome = ("result", job(watch))
        except UserError as exc:
            outcome = ("error", type(exc).__name__, str(exc))
        except KeyboardInterrupt as exc:
            outcome = ("error", "StrategyError", watch.interrupted(exc))
        except MemoryError as exc:
            outcome = ("memory", str(exc))
        except BaseException:
            outcome = ("crash", traceback.format_exc())
        watch.send(outcome)
    finally:
        os._exit(0)
