"""Figure plumbing shared by the analysis modules: no pyplot, no global state.

Figures are plain ``matplotlib.figure.Figure`` objects drawn on an Agg canvas, so
building them never touches pyplot's global figure registry or the backend setting.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator

from simulator.kpis import KPI_RANGES, SHARE

#: KPI -> axis label, with units (``{currency}`` is filled in).
KPI_LABELS: dict[str, str] = {
    "recovery_rate": "recovery rate (% of amount delinquent)",
    "churn_rate": "churn rate (% of accounts)",
    "contact_cost": "contact cost ({currency}, whole book over the horizon)",
    "net_value": "net value ({currency})",
    "cure_rate": "cure rate (% of delinquent accounts)",
    "agent_utilisation": "agent utilisation (% of staffed time)",
    "complaints_per_1000": "complaints per 1000 accounts",
}

#: KPIs that are shares, shown in percent: those whose range is [0, 1].
SHARE_KPIS = frozenset(k for k, r in KPI_RANGES.items() if r == SHARE)


def kpi_label(kpi: str, currency: str = "money") -> str:
    """Axis label of ``kpi`` with its unit."""
    return KPI_LABELS.get(kpi, kpi.replace("_", " ")).format(currency=currency)


def new_figure(width: float, height: float) -> Figure:
    """A figure (inches) on its own Agg canvas, laid out without overlaps."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def strategy_colours(names: Iterable[str]) -> dict[str, tuple[float, float, float, float]]:
    """A stable colour per name, in order of first appearance (tab10, then tab20)."""
    unique = list(dict.fromkeys(names))
    cmap = mpl.colormaps["tab10" if len(unique) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(unique)}


def style_axes(ax: Axes) -> None:
    """Light grid behind the data."""
    ax.grid(True, color="0.88", linewidth=0.8)
    ax.set_axisbelow(True)


class _Percent(Formatter):
    """Fractions as percentages, with as many decimals as the tick spacing needs."""

    def __init__(self) -> None:
        self._decimals = 0

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        steps = np.diff(np.sort(np.asarray(locs, dtype=float))) * 100
        steps = steps[steps > 0]
        step = float(steps.min()) if steps.size else 1.0
        self._decimals = max(0, -math.floor(math.log10(step) + 1e-9))

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{100 * x:.{self._decimals}f}%"


def percent_axis(ax: Axes, axis: str = "y") -> None:
    """Show fractions in [0, 1] as percentages on ``axis`` ('x' or 'y')."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(_Percent())


def money_axis(ax: Axes, axis: str = "y") -> None:
    """Thousands separators on ``axis``; on x, few enough ticks that amounts in the
    millions do not run into each other."""
    fmt = FuncFormatter(lambda v, _pos: f"{v:,.0f}")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(fmt)
    if axis == "x":
        target.set_major_locator(MaxNLocator(nbins=5))


def kpi_axis(ax: Axes, kpi: str, axis: str, currency: str = "money") -> None:
    """Label ``axis`` for ``kpi`` and format its ticks (percent or money)."""
    (ax.set_ylabel if axis == "y" else ax.set_xlabel)(kpi_label(kpi, currency))
    if kpi in SHARE_KPIS:
        percent_axis(ax, axis)
    elif "{currency}" in KPI_LABELS.get(kpi, "") or kpi.startswith("cost_"):
        money_axis(ax, axis)


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def save_figure(fig: Figure, path: Path, dpi: int = 150) -> Path:
    """Write the figure (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path
