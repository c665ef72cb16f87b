"""User-facing errors: one readable line, no traceback."""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, for one-line errors."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class UserError(Exception):
    """A mistake in what the user gave us (a file, a field, an argument).

    The command line prints ``str(error)`` and exits with code 2. The text is one line
    whatever the parts hold: file names, fields and values are the user's own text.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.detail = message
        parts = [p for p in (source, field) if p]
        super().__init__(one_line(": ".join([*parts, message])))


class ScenarioError(UserError):
    """A scenario or sweep file that cannot be read or does not validate."""


class StrategyError(UserError):
    """A strategy that cannot be loaded, or that returned invalid requests."""


class ResourceError(UserError):
    """What was asked needs more of the machine (memory, cells) than it has or allows."""
