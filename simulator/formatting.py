"""KPI numbers as text, one convention for the terminal tables and the HTML report.

A KPI's kind (the third item of ``simulator.kpis.TABLE_KPIS``) sets its format:
``pct`` a rate shown in percent with one decimal, ``money`` and ``int`` whole numbers
with thousands separators, ``ratio`` four decimals, anything else two decimals.
"""

from __future__ import annotations

import math


def format_number(value: float, kind: str, signed: bool = False) -> str:
    """``value`` in its kind's units without a unit sign (a rate 0.123 as ``12.3``), so a
    mean, a half-width and interval bounds read alike; ``signed`` always shows the sign."""
    sign = "+" if signed else ""
    if kind == "pct":
        return f"{100 * value:{sign}.1f}"
    if kind in ("money", "int"):
        return f"{value:{sign},.0f}"
    if kind == "ratio":
        return f"{value:{sign}.4f}"
    return f"{value:{sign}.2f}"


def format_value(value: float, kind: str, half: float = math.nan) -> str:
    """A KPI's value, e.g. ``12.3%``, with ``± half`` when the half-width is finite."""
    if not math.isfinite(value):
        return "-"
    text = format_number(value, kind) + ("%" if kind == "pct" else "")
    if math.isfinite(half):
        text += f" ± {format_number(half, kind)}"
    return text


def format_interval(low: float, high: float, kind: str) -> str:
    """An interval as ``[low, high]`` in the value's units; empty when a bound is unknown."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"[{format_number(low, kind)}, {format_number(high, kind)}]"
