"""User-facing errors: one readable line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave us (a file, a field, an argument).

    The command line prints ``str(error)`` on one line and exits with code 2.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.detail = message
        parts = [p for p in (source, field) if p]
        super().__init__(": ".join([*parts, message]))


class ScenarioError(UserError):
    """A scenario or sweep file that cannot be read or does not validate."""


class StrategyError(UserError):
    """A strategy that cannot be loaded, or that returned invalid requests."""
