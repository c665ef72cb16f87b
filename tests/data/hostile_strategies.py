"""Hostile plug-in strategies: each behaves until HOSTILE_DAY, then fights back.

Copied beside the test scenarios by ``tests/test_hostile_plugins.py`` and
``tests/test_sweep.py``. When the environment names a folder in ``HOSTILE_PIDS``, every
process that runs one of them leaves an empty file named by its process id there, so
that a test can check that none of them outlives contactsim.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd

from simulator.strategies import Strategy, make_requests

HOSTILE_DAY = 3


class Behaves(Strategy):
    """Texts five open accounts a day; from HOSTILE_DAY on, ``fight`` first."""

    name = "behaves"

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        pids = os.environ.get("HOSTILE_PIDS")
        if pids:
            (Path(pids) / str(os.getpid())).touch()
        if day >= HOSTILE_DAY:
            self.fight(day)
        return make_requests(accounts.index[:5], "sms", 10)

    def fight(self, day: int) -> None:
        pass


class LeavesThread(Behaves):
    """Starts a thread that is not a daemon and sleeps for an hour."""

    def fight(self, day: int) -> None:
        if day == HOSTILE_DAY:
            threading.Thread(target=time.sleep, args=(3600,), name="left-behind").start()


class Interrupts(Behaves):
    """Raises KeyboardInterrupt, as if Ctrl-C had been pressed."""

    def fight(self, day: int) -> None:
        raise KeyboardInterrupt


class Rebellion(BaseException):
    """Not an Exception."""


class RaisesBaseException(Behaves):
    def fight(self, day: int) -> None:
        raise Rebellion("not an Exception")


class InterruptsItself(Behaves):
    """Sends SIGINT to its own process."""

    def fight(self, day: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


class CatchesEverything(Behaves):
    """Works for a minute in a loop with a bare ``except:``: no timeout gets out."""

    def fight(self, day: int) -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:  # noqa: SIM105 (a bare except is the point of this strategy)
                time.sleep(0.05)
            except:  # noqa: E722
                pass


class IgnoresAlarm(Behaves):
    """Ignores SIGALRM (the in-process timer), then sleeps for a minute."""

    def fight(self, day: int) -> None:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(60)


class Exits(Behaves):
    """Ends its process at once, without cleaning up."""

    def fight(self, day: int) -> None:
        os._exit(9)


class Slow(Behaves):
    """Takes 0.2 s over every decision (well within the limit): runs that last."""

    def fight(self, day: int) -> None:
        pass

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        time.sleep(0.2)
        return super().decide(day, accounts)


class TerminatesContactsim(Behaves):
    """Sends SIGTERM to contactsim, whose process id it reads from the file named by
    ``HOSTILE_TARGET``, then goes on."""

    def fight(self, day: int) -> None:
        if day == HOSTILE_DAY:
            target = Path(os.environ["HOSTILE_TARGET"])
            deadline = time.monotonic() + 30
            while not target.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(int(target.read_text()), signal.SIGTERM)
            time.sleep(5)
