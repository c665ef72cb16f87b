"""Curves and matrices of one run or comparison folder.

* cure curves: share of delinquent accounts cured by day since the due date, a
  Kaplan-Meier estimate with accounts censored by churn or by the horizon;
* the roll-rate matrix between buckets, 30 days apart;
* amount owed by bucket over time (``daily.parquet``);
* the steady state of a living book: accounts by bucket and the agent floor's day
  (utilisation, calls queued, made and dropped; ``agents_daily.parquet``), day by day,
  with the warm-up marked;
* agent utilisation by hour of day (agent-call events over staffed agent time);
* contact cost by channel (the ``cost_<channel>`` KPIs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from analysis.factors import short_name
from analysis.plotting import (
    money_axis,
    new_figure,
    percent_axis,
    strategy_colours,
    style_axes,
)
from analysis.stats import mean_ci, summarise_by
from analysis.tradeoff import format_factor_value
from simulator.kpis import NON_NEGATIVE

# --------------------------------------------------------------------------- Kaplan-Meier


def kaplan_meier(durations: ArrayLike, observed: ArrayLike,
                 confidence: float = 0.95) -> pd.DataFrame:
    """The product-limit estimate of the survival function S(t) = P(T > t).

    Returns one row per distinct event time, after a first row at time 0: ``time``,
    ``at_risk`` (durations >= time), ``events``, ``survival``, and a pointwise
    interval ``ci_low``/``ci_high`` from Greenwood's variance on the log(-log S) scale
    (the default of ``lifelines``), which stays inside [0, 1]. An account censored at
    the time of an event is still at risk at that time.
    """
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if d.shape != e.shape or d.ndim != 1:
        raise ValueError("durations and observed must be 1-d arrays of the same length")
    if not np.isfinite(d).all():
        raise ValueError("durations must be finite (censor at the end of observation)")
    times = np.unique(d[e])
    ordered = np.sort(d)
    at_risk = (d.size - np.searchsorted(ordered, times, side="left")).astype(float)
    events = np.searchsorted(np.sort(d[e]), times, side="right") - np.searchsorted(
        np.sort(d[e]), times, side="left")
    surv = np.cumprod(1.0 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        log_s = np.log(surv)
        z = stats.norm.ppf(0.5 + confidence / 2)
        se = np.sqrt(greenwood) / np.abs(log_s)
        theta = np.log(-log_s)
        low = np.exp(-np.exp(theta + z * se))
        high = np.exp(-np.exp(theta - z * se))
    low = np.where(surv >= 1.0, 1.0, np.where(surv <= 0.0, 0.0, low))
    high = np.where(surv >= 1.0, 1.0, np.where(surv <= 0.0, 0.0, high))
    return pd.DataFrame({
        "time": np.concatenate([[0.0], times]),
        "at_risk": np.concatenate([[float(d.size)], at_risk]),
        "events": np.concatenate([[0], events]).astype(np.int64),
        "survival": np.concatenate([[1.0], surv]),
        "ci_low": np.concatenate([[1.0], low]),
        "ci_high": np.concatenate([[1.0], high]),
    })


def survival_at(km: pd.DataFrame, t: ArrayLike) -> NDArray[np.float64]:
    """S(t) read off a ``kaplan_meier`` table (right-continuous step function)."""
    pos = np.searchsorted(km["time"].to_numpy(), np.asarray(t, dtype=float), side="right") - 1
    return km["survival"].to_numpy()[np.maximum(pos, 0)]


def cure_durations(accounts: pd.DataFrame, horizon: float,
                   censor_at_churn: bool = True) -> pd.DataFrame:
    """Days from the due date to cure, per delinquent account, with censoring.

    The clock starts on the due date (``due_day``; the account is delinquent from the
    day after). A cure is the event. An account still delinquent at the horizon is
    censored there; with ``censor_at_churn``, one that churned before curing is censored
    at its churn. A written-off account cannot cure any more: it stays in the risk set
    until the horizon, so 1 - S(t) is the share of accounts cured by day t rather than
    the share among those not yet written off.
    """
    a = accounts[np.isfinite(accounts["t_delinquent"].to_numpy())]
    due = a["due_day"].to_numpy(dtype=float)
    t_paid = a["t_paid"].to_numpy(dtype=float)
    cured = (a["final_state"].astype(str).to_numpy() == "cured") & np.isfinite(t_paid)
    end = np.where(cured, t_paid, horizon)
    if censor_at_churn:
        t_churn = a["t_churn"].to_numpy(dtype=float)
        churned_first = a["churned"].to_numpy(dtype=bool) & (t_churn < end)
        end = np.where(churned_first, t_churn, end)
        cured &= ~churned_first
    return pd.DataFrame({
        "strategy": a["strategy"].to_numpy(),
        "replication": a["replication"].to_numpy(),
        "duration": np.maximum(end - due, 0.0),
        "cured": cured,
    })


def cure_curves(accounts: pd.DataFrame, horizon: float, confidence: float = 0.95,
                censor_at_churn: bool = True) -> pd.DataFrame:
    """Kaplan-Meier share cured (``1 - S``) by day since due, per strategy.

    Replications are pooled: their borrowers are independent draws of the same book.
    """
    dur = cure_durations(accounts, horizon, censor_at_churn)
    frames = []
    for strategy, g in dur.groupby("strategy", sort=False):
        km = kaplan_meier(g["duration"].to_numpy(), g["cured"].to_numpy(), confidence)
        frames.append(pd.DataFrame({
            "strategy": strategy, "day": km["time"], "at_risk": km["at_risk"],
            "cured": 1.0 - km["survival"], "ci_low": 1.0 - km["ci_high"],
            "ci_high": 1.0 - km["ci_low"]}))
    cols = ["strategy", "day", "at_risk", "cured", "ci_low", "ci_high"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def cure_curve_figure(accounts: pd.DataFrame, horizon: float, confidence: float = 0.95,
                      charge_off_dpd: float | None = None) -> Figure:
    """Share of delinquent accounts cured by day since the due date, per strategy."""
    curves = cure_curves(accounts, horizon, confidence)
    colours = strategy_colours(curves["strategy"])
    fig = new_figure(10, 5.2)
    ax = fig.subplots()
    for strategy, c in curves.groupby("strategy", sort=False):
        col = colours[str(strategy)]
        ax.step(c["day"], c["cured"], where="post", color=col, label=str(strategy))
        ax.fill_between(c["day"], c["ci_low"], c["ci_high"], step="post", color=col,
                        alpha=0.2, linewidth=0)
    if charge_off_dpd is not None and charge_off_dpd < horizon:
        ax.axvline(charge_off_dpd, color="0.4", linestyle=":", linewidth=1,
                   label=f"charge-off at {charge_off_dpd:g} days past due")
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 1)
    percent_axis(ax, "y")
    ax.set_xlabel("days since the due date")
    ax.set_ylabel("cured (% of delinquent accounts)")
    style_axes(ax)
    ax.legend(loc="lower right", title=f"strategy ({confidence:.0%} band)")
    ax.set_title("Cure curves: Kaplan-Meier share of delinquent accounts cured\n"
                 "(censored at churn and at the horizon; written-off accounts never cure)",
                 fontsize=12)
    return fig


# --------------------------------------------------------------------------- roll rates

#: Account states of ``daily.parquet``, in its order.
STATES: tuple[str, ...] = ("M0", "M1", "M2", "M3", "M4", "paid_on_time", "cured",
                           "charged_off")
STATE_LABELS: tuple[str, ...] = ("M0 not due", "M1 1-30", "M2 31-60", "M3 61-90", "M4 91+",
                                 "paid on time", "cured", "charged off")
OPEN_STATES: tuple[str, ...] = STATES[:5]


def account_states(accounts: pd.DataFrame, day: float) -> NDArray[np.int64]:
    """Each account's state on ``day`` (an index into ``STATES``), as ``daily.parquet``
    counts them: buckets by days past due, terminal states once reached."""
    due = accounts["due_day"].to_numpy(dtype=float)
    t_del = accounts["t_delinquent"].to_numpy(dtype=float)
    t_paid = accounts["t_paid"].to_numpy(dtype=float)
    t_co = accounts["t_charged_off"].to_numpy(dtype=float)
    dpd = np.floor(day - due)
    bucket = np.select([dpd >= 91, dpd >= 61, dpd >= 31], [4, 3, 2], default=1)
    delinquent = t_del <= day
    code = np.where(delinquent, bucket, 0)
    code = np.where(~delinquent & (t_paid <= day), 5, code)
    code = np.where(delinquent & (t_co <= day), 7, code)
    code = np.where(delinquent & (t_paid <= day), 6, code)
    return code.astype(np.int64)


def roll_rate_counts(accounts: pd.DataFrame, horizon: float, step: int = 30) -> pd.DataFrame:
    """Counts of accounts going from each open state to each state ``step`` days later.

    Snapshots on days 0, step, 2 step, ... (pairs inside the horizon), summed over
    snapshot pairs and replications. One row per (strategy, from state), one column per
    state of ``STATES``.
    """
    days = np.arange(0, math.floor(horizon) - step + 1, step)
    rows = []
    for strategy, g in accounts.groupby("strategy", sort=False):
        counts = np.zeros((len(OPEN_STATES), len(STATES)), dtype=np.int64)
        for d in days:
            a, b = account_states(g, float(d)), account_states(g, float(d + step))
            sel = a < len(OPEN_STATES)
            np.add.at(counts, (a[sel], b[sel]), 1)
        for i, s in enumerate(OPEN_STATES):
            rows.append({"strategy": strategy, "from": s,
                         **dict(zip(STATES, counts[i].tolist(), strict=True))})
    return pd.DataFrame(rows, columns=["strategy", "from", *STATES])


def roll_rate_matrix(accounts: pd.DataFrame, horizon: float,
                     step: int = 30) -> dict[str, pd.DataFrame]:
    """Row-normalised roll rates per strategy: from state (rows) to state ``step`` days
    later (columns); a row without accounts is NaN."""
    counts = roll_rate_counts(accounts, horizon, step)
    out = {}
    for strategy, g in counts.groupby("strategy", sort=False):
        m = g.set_index("from")[list(STATES)].astype(float)
        total = m.sum(axis=1)
        out[str(strategy)] = m.div(total.where(total > 0), axis=0)
    return out


def roll_rate_figure(accounts: pd.DataFrame, horizon: float, step: int = 30) -> Figure:
    """Heat maps of the roll-rate matrix, one per strategy."""
    counts = roll_rate_counts(accounts, horizon, step)
    strategies = list(dict.fromkeys(counts["strategy"]))
    # Origins no strategy ever had (e.g. M3 within a 60-day horizon) are left out.
    seen = counts.groupby("from", sort=False)[list(STATES)].sum().sum(axis=1)
    origins = [s for s in OPEN_STATES if seen.get(s, 0) > 0]
    ncols = min(len(strategies), 2)
    nrows = math.ceil(len(strategies) / ncols)
    fig = new_figure(5.8 * ncols + 1.0, (1.6 + 0.6 * len(origins)) * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    image = None
    for ax, strategy in zip(axes, strategies, strict=False):
        m = counts[counts["strategy"] == strategy].set_index("from").loc[origins, list(STATES)]
        n = m.sum(axis=1).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = m.to_numpy(dtype=float) / n[:, None]
        image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        for i in range(rates.shape[0]):
            for j in range(rates.shape[1]):
                if np.isfinite(rates[i, j]) and rates[i, j] >= 0.0005:
                    ax.text(j, i, f"{100 * rates[i, j]:.1f}", ha="center", va="center",
                            fontsize=8, color="white" if rates[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(STATES)), STATE_LABELS, rotation=40, ha="right", fontsize=9)
        ax.set_yticks(range(len(origins)),
                      [f"{STATE_LABELS[STATES.index(s)]}\n(n={int(k):,})"
                       for s, k in zip(origins, n, strict=True)], fontsize=9)
        ax.set_xlabel(f"state {step} days later")
        ax.set_ylabel("state on the snapshot day")
        ax.set_title(str(strategy), fontsize=11)
    for ax in axes[len(strategies):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(strategies)]), shrink=0.8,
                     label="share of the row (%)", format=lambda v, _p: f"{100 * v:.0f}")
    fig.suptitle(f"Roll rates between buckets over {step} days (% of each row; snapshots "
                 f"every {step} days, replications pooled)", fontsize=12)
    return fig


# --------------------------------------------------------------------------- balances


def balance_by_bucket(daily: pd.DataFrame, states: Sequence[str] = OPEN_STATES[1:],
                      confidence: float = 0.95) -> pd.DataFrame:
    """Mean amount owed per strategy, state and day, with its interval over replications."""
    d = daily[daily["state"].astype(str).isin(states)].copy()
    d["state"] = d["state"].astype(str)
    return summarise_by(d, ["strategy", "state", "day"], ["amount_owed"], confidence,
                        ranges={"amount_owed": NON_NEGATIVE})


def balance_figure(daily: pd.DataFrame, currency: str = "money",
                   confidence: float = 0.95, warmup: float = 0.0) -> Figure:
    """Amount owed in each delinquency bucket over time, one panel per strategy (the
    warm-up, if any, shaded)."""
    bal = balance_by_bucket(daily, confidence=confidence)
    strategies = list(dict.fromkeys(bal["strategy"]))
    reps = int(bal["n"].max()) if len(bal) else 0
    ncols = min(len(strategies), 3)
    nrows = math.ceil(len(strategies) / ncols)
    fig = new_figure(5 * ncols, 3.8 * nrows + 0.9)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    colours = dict(zip(OPEN_STATES[1:], ("#f2b134", "#ed7d31", "#c0392b", "#6c1f1f"),
                       strict=True))
    for ax, strategy in zip(axes, strategies, strict=False):
        mark_warmup(ax, warmup)
        for state in OPEN_STATES[1:]:
            s = bal[(bal["strategy"] == strategy) & (bal["state"] == state)]
            if s.empty:
                continue
            i = OPEN_STATES.index(state)
            ax.plot(s["day"], s["amount_owed"], color=colours[state], label=STATE_LABELS[i])
            if reps > 1:
                ax.fill_between(s["day"], s["amount_owed_low"], s["amount_owed_high"],
                                color=colours[state], alpha=0.25, linewidth=0)
        ax.set_title(str(strategy), fontsize=10)
        ax.set_xlabel("day of the run")
        ax.set_ylabel(f"amount owed ({currency})")
        money_axis(ax, "y")
        style_axes(ax)
    for ax in axes[len(strategies):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, frameon=False,
               title="bucket (days past due)")
    band = (f"mean of {reps} replications, {confidence:.0%} band" if reps > 1
            else "one replication")
    fig.suptitle(f"Amount owed by delinquency bucket over time ({band})", fontsize=12)
    return fig


# --------------------------------------------------------------------------- steady state


def mark_warmup(ax: Any, warmup: float) -> None:
    """Shade the warm-up (``metrics.warmup_days``): days left out of the flow KPIs."""
    if warmup > 0:
        ax.axvspan(0, warmup, color="#bbbbbb", alpha=0.3, linewidth=0, label="warm-up")


def steady_state_figure(daily: pd.DataFrame, agents_daily: pd.DataFrame | None,
                        warmup: float = 0.0) -> Figure:
    """Day by day, per strategy: accounts in each bucket M1-M4 (top) and the agent floor
    (bottom: utilisation, and calls queued, made and dropped), means over replications,
    with the warm-up shaded. A steady state shows as flat lines after the warm-up."""
    d = daily[daily["state"].astype(str).isin(OPEN_STATES[1:])].copy()
    d["state"] = d["state"].astype(str)
    counts = d.groupby(["strategy", "state", "day"], sort=False)["accounts"].mean()
    strategies = list(dict.fromkeys(d["strategy"]))
    floor = None
    if agents_daily is not None and len(agents_daily):
        floor = agents_daily.groupby(["strategy", "day"], sort=False)[
            ["utilisation", "calls_queued", "calls_made", "calls_dropped"]].mean()
    nrows = 2 if floor is not None else 1
    ncols = max(len(strategies), 1)
    fig = new_figure(4.6 * ncols, 3.4 * nrows + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    colours = dict(zip(OPEN_STATES[1:], ("#f2b134", "#ed7d31", "#c0392b", "#6c1f1f"),
                       strict=True))
    for col, strategy in enumerate(strategies):
        ax = axes[0, col]
        mark_warmup(ax, warmup)
        mine = counts.xs(strategy, level="strategy")
        for state in OPEN_STATES[1:]:
            if state in mine.index.get_level_values("state"):
                series = mine.xs(state, level="state")
                ax.plot(series.index, series.to_numpy(), color=colours[state],
                        label=STATE_LABELS[OPEN_STATES.index(state)])
        ax.set_title(str(strategy), fontsize=10)
        ax.set_ylabel("accounts")
        style_axes(ax)
        if floor is not None:
            ax2 = axes[1, col]
            mark_warmup(ax2, warmup)
            if strategy in floor.index.get_level_values(0):
                f = floor.xs(strategy, level="strategy")
                ax2.plot(f.index, f["calls_queued"], color="#4472c4", label="calls queued")
                ax2.plot(f.index, f["calls_made"], color="#70ad47", label="calls made")
                ax2.plot(f.index, f["calls_dropped"], color="#c0392b", label="calls dropped")
                util = ax2.twinx()
                util.plot(f.index, f["utilisation"], color="#555555", linestyle="--",
                          label="utilisation")
                util.set_ylim(0, 1.05)
                percent_axis(util, "y")
                util.set_ylabel("agent utilisation")
            ax2.set_ylabel("agent calls a day")
            ax2.set_xlabel("day of the run")
            style_axes(ax2)
        else:
            ax.set_xlabel("day of the run")
    handles, labels = [], []
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
               frameon=False)
    fig.suptitle("Accounts by bucket and the agent floor, day by day"
                 + (f" (warm-up: the first {warmup:g} days, shaded)" if warmup > 0 else ""),
                 fontsize=12)
    return fig


# --------------------------------------------------------------------------- agents


def staffed_minutes_by_hour(agents: Mapping[str, Any], horizon: float) -> NDArray[np.float64]:
    """Staffed agent-minutes in each hour of the day (0-23), summed over the horizon.

    Follows the engine's agent pool: ``round(count x fraction)`` agents per shift, on
    the ``work_days`` (day mod 7), shifts cut at the horizon.
    """
    count = int(agents.get("count", 0))
    work_days = set(agents.get("work_days", range(7)))
    out = np.zeros(24)
    for shift in agents.get("shifts", ()):
        n = round(count * float(shift["fraction"]))
        for day in range(math.ceil(horizon)):
            if day % 7 not in work_days:
                continue
            start = day + float(shift["start"]) / 24
            end = min(day + float(shift["end"]) / 24, horizon)
            if start >= horizon or n == 0:
                continue
            out += n * _spread(np.array([start]), np.array([end - start]))
    return out


def _spread(start: NDArray[np.float64], length: NDArray[np.float64],
            weights: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Minutes of the intervals [start, start + length) (days) falling in each hour of
    the day, summed (optionally weighted per interval)."""
    out = np.zeros(24)
    if start.size == 0:
        return out
    w = np.ones(start.size) if weights is None else weights
    hours0 = np.floor(start * 24)
    end = start + length
    spans = int(np.ceil(float(np.max(length)) * 24)) + 1
    for k in range(spans + 1):
        h = hours0 + k
        overlap = np.minimum(end, (h + 1) / 24) - np.maximum(start, h / 24)
        # Round-off at hour boundaries leaves slivers of 1e-16 days: not real time.
        overlap = np.where(overlap > 1e-9, overlap, 0.0) * 1440.0
        out += np.bincount((h % 24).astype(np.int64), weights=overlap * w, minlength=24)
    return out


def utilisation_by_hour(events: pd.DataFrame, agents: Mapping[str, Any], horizon: float,
                        confidence: float = 0.95) -> pd.DataFrame:
    """Agent utilisation per strategy and hour of day, mean and interval over replications.

    Busy time is each executed agent call's ``agent_minutes`` from its start (spread
    over the hours it spans); staffed time comes from the scenario's shifts. Hours
    without staff are NaN (a call running past a shift's end is busy time there).
    """
    staffed = staffed_minutes_by_hour(agents, horizon)
    calls = events[(events["event"].astype(str) == "contact")
                   & (events["channel"].astype(str) == "agent_call")]
    rows: list[dict[str, Any]] = []
    for strategy, rep in events[["strategy", "replication"]].drop_duplicates().itertuples(
            index=False):
        c = calls[(calls["strategy"] == strategy) & (calls["replication"] == rep)]
        busy = _spread(c["t"].to_numpy(dtype=float),
                       c["agent_minutes"].to_numpy(dtype=float) / 1440.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(staffed > 0, busy / staffed, np.nan)
        rows.extend({"strategy": strategy, "replication": rep, "hour": h,
                     "busy_minutes": busy[h], "staffed_minutes": staffed[h],
                     "utilisation": util[h]} for h in range(24))
    per_rep = pd.DataFrame(rows)
    out = []
    for (strategy, h), g in per_rep.groupby(["strategy", "hour"], sort=False):
        # Not capped at 1: a call running past a shift's end is busy time in an hour
        # that may have fewer staffed minutes than that.
        m, lo, hi = mean_ci(g["utilisation"].to_numpy(), confidence, NON_NEGATIVE)
        out.append({"strategy": strategy, "hour": h, "utilisation": m, "ci_low": lo,
                    "ci_high": hi, "busy_minutes": g["busy_minutes"].mean(),
                    "staffed_minutes": staffed[h], "n": len(g)})
    return pd.DataFrame(out)


def utilisation_figure(events: pd.DataFrame, agents: Mapping[str, Any], horizon: float,
                       confidence: float = 0.95) -> Figure:
    """Agent utilisation by hour of day per strategy (strategies without calls left out)."""
    util = utilisation_by_hour(events, agents, horizon, confidence)
    busy = util.groupby("strategy", sort=False)["busy_minutes"].sum()
    shown = [s for s in busy.index if busy[s] > 0]
    colours = strategy_colours(util["strategy"])
    fig = new_figure(10, 5)
    ax = fig.subplots()
    staffed_hours = util.loc[util["staffed_minutes"] > 0, "hour"].unique()
    for h in staffed_hours:
        ax.axvspan(h, h + 1, color="0.94", linewidth=0)
    for strategy in shown:
        u = util[util["strategy"] == strategy].sort_values("hour")
        x = u["hour"] + 0.5
        ax.plot(x, u["utilisation"], "-o", markersize=4, color=colours[strategy],
                label=strategy)
        if u["ci_low"].notna().any():
            ax.fill_between(x, u["ci_low"], u["ci_high"],
                            color=colours[strategy], alpha=0.2, linewidth=0)
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 2))
    ax.set_ylim(bottom=0)
    percent_axis(ax, "y")
    ax.set_xlabel("hour of day (shaded: staffed hours)")
    ax.set_ylabel("agent utilisation (% of staffed agent time)")
    style_axes(ax)
    if shown:
        ax.legend(title=f"strategy ({confidence:.0%} band)", loc="upper right")
    else:
        ax.text(0.5, 0.5, "no agent calls in any strategy", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
    ax.set_title("Agent utilisation by hour of day (time on calls / staffed agent time)",
                 fontsize=12)
    return fig


# --------------------------------------------------------------------------- costs


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cost_columns(kpis: pd.DataFrame) -> list[str]:
    """The ``cost_<channel>`` KPI columns."""
    return [c for c in kpis.columns if c.startswith("cost_") and c != "cost_per_collected"]


def cost_by_channel(kpis: pd.DataFrame, by: Sequence[str] = ("strategy",),
                    confidence: float = 0.95) -> pd.DataFrame:
    """Mean contact cost per group and channel, with its interval (long format)."""
    cols = cost_columns(kpis)
    s = summarise_by(kpis, list(by), cols, confidence)
    rows = []
    for _, r in s.iterrows():
        for c in cols:
            rows.append({**{b: r[b] for b in by}, "channel": c.removeprefix("cost_"),
                         "cost": r[c], "ci_low": r[f"{c}_low"], "ci_high": r[f"{c}_high"],
                         "n": r["n"]})
    return pd.DataFrame(rows)


def cost_figure(kpis: pd.DataFrame, currency: str = "money", by: Sequence[str] = ("strategy",),
                confidence: float = 0.95, labels: Mapping[str, str] | None = None) -> Figure:
    """Grouped bars: contact cost of each channel per strategy (or strategy x factors).

    Channels no strategy used and strategies without any cost are left out. The legend
    sits below the axes, never over the bars; ``labels`` names factors readably.
    """
    cost = cost_by_channel(kpis, by, confidence)
    cost["group"] = [", ".join(format_factor_value(v) for v in vals if not _missing(v))
                     for vals in cost[list(by)].itertuples(index=False)]
    totals = cost.groupby("group", sort=False)["cost"].sum()
    groups = [g for g in totals.index if totals[g] > 0]
    used = cost.groupby("channel", sort=False)["cost"].sum()
    channels = [c for c in used.index if used[c] > 0]
    colours = strategy_colours(cost["group"])
    legend_rows = math.ceil(len(groups) / 3) if groups else 0
    fig = new_figure(max(8.0, 1.6 * len(channels) + 4), 5 + 0.25 * legend_rows)
    ax = fig.subplots()
    width = 0.8 / max(len(groups), 1)
    reps = int(cost["n"].max()) if len(cost) else 0
    for i, g in enumerate(groups):
        c = cost[cost["group"] == g].set_index("channel").loc[channels]
        err = None
        if reps > 1:
            err = np.vstack([np.nan_to_num((c["cost"] - c["ci_low"]).to_numpy(dtype=float)),
                             np.nan_to_num((c["ci_high"] - c["cost"]).to_numpy(dtype=float))])
        ax.bar(np.arange(len(channels)) + (i - (len(groups) - 1) / 2) * width, c["cost"],
               width, yerr=err, capsize=3, color=colours[g], label=g)
    ax.set_xticks(range(len(channels)), [c.replace("_", " ") for c in channels])
    ax.set_xlabel("channel")
    ax.set_ylabel(f"contact cost ({currency}, whole book over the horizon)")
    money_axis(ax, "y")
    style_axes(ax)
    if groups:
        names = [b if b == "strategy" else short_name((labels or {}).get(b, b)) for b in by]
        fig.legend(loc="outside lower center", ncols=min(len(groups), 3), frameon=False,
                   title=", ".join(names))
    else:
        ax.text(0.5, 0.5, "no contact cost in any strategy", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
    band = f"mean of {reps} replications, {confidence:.0%} CI bars" if reps > 1 else \
        "one replication"
    ax.set_title(f"Contact cost by channel ({band})", fontsize=12)
    return fig
