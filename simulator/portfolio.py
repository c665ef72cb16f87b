"""A lender's portfolio data: the format, reading and validation (docs/portfolio-data.md).

A portfolio folder holds up to four tables, each a CSV or a Parquet file:

* ``accounts``: one row per account at the snapshot (its observables);
* ``statements``: one row per statement (account, due date, amount due);
* ``payments``: one row per payment received in house (account, date, amount);
* ``contacts`` (optional): one row per executed contact attempt (account, time,
  channel, outcome, and for a promise its amount and date);

and optionally ``portfolio.yaml`` with ``as_of: YYYY-MM-DD``, the first day the data do
not cover (default: the day after the latest date in the tables).

Every problem is one line naming the file, the column and the row (data rows counted
from 1), and nothing is read half-way. In memory, every date becomes a whole day counted
from ``as_of`` (day -1 is the last day the data cover), so that a simulation's output,
whose times are days, converts into the very same tables (``simulator.experiments.
targets`` holds that adapter and the one extractor of targets from these tables).

This module sits beside the model, below the experiments layer: the population reads a
lender's accounts file through ``read_accounts`` (``population.from_file``), and the
model may not import the experiments layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.errors import UserError
from simulator.scenario import CHANNELS, PRODUCTS, read_yaml

TABLES: tuple[str, ...] = ("accounts", "statements", "payments", "contacts")
OPTIONAL_TABLES: tuple[str, ...] = ("contacts",)
SUFFIXES: tuple[str, ...] = (".csv", ".parquet")

#: Outcomes of a contact as the lender records them, in the order of their codes.
OUTCOMES: tuple[str, ...] = ("undelivered", "delivered", "right_party", "promise")

#: Channels whose on-file flag a portfolio gives: the phone serves SMS, robo-calls and
#: agent calls (as in the model, docs/model.md section 2.4).
ON_FILE_COLUMNS: tuple[str, ...] = ("on_file_push", "on_file_email", "on_file_phone")
OPT_OUT_COLUMNS: tuple[str, ...] = ("opt_out_push", "opt_out_email", "opt_out_sms")

#: What a payment below half a cent short of a threshold still counts as covering.
CENT_TOLERANCE = 0.005


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, kind, whether it is required, and its default."""

    name: str
    kind: str  # id, number, nonneg, positive, count, date, datetime, bool, channel, ...
    required: bool = True
    default: Any = None


ACCOUNT_COLUMNS: tuple[Column, ...] = (
    Column("account_id", "id"),
    Column("score", "number"),
    Column("credit_line", "nonneg"),
    Column("balance", "nonneg"),
    Column("amount_due", "nonneg"),
    Column("product", "product"),
    Column("tenure_months", "nonneg"),
    Column("prior_delinquencies", "count"),
    Column("dpd", "count"),
    *(Column(c, "bool", False, True) for c in ON_FILE_COLUMNS),
    *(Column(c, "bool", False, False) for c in OPT_OUT_COLUMNS),
    Column("do_not_contact", "bool", False, False),
)
STATEMENT_COLUMNS: tuple[Column, ...] = (
    Column("account_id", "id"), Column("due_date", "date"), Column("amount_due", "nonneg"))
PAYMENT_COLUMNS: tuple[Column, ...] = (
    Column("account_id", "id"), Column("date", "date"), Column("amount", "positive"))
CONTACT_COLUMNS: tuple[Column, ...] = (
    Column("account_id", "id"), Column("time", "datetime"), Column("channel", "channel"),
    Column("outcome", "outcome"), Column("promise_amount", "nonneg", False, np.nan),
    Column("promise_date", "date", False, None))
COLUMNS: dict[str, tuple[Column, ...]] = {
    "accounts": ACCOUNT_COLUMNS, "statements": STATEMENT_COLUMNS,
    "payments": PAYMENT_COLUMNS, "contacts": CONTACT_COLUMNS}

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Portfolio:
    """A lender's portfolio (or a simulated book converted to the same tables).

    Days are whole days from ``as_of`` (negative: covered by the data). Account ids are
    kept as given; ``accounts`` holds each once.

    * ``accounts``: ``account_id``, ``score`` and, read from a file, the other columns of
      the format;
    * ``statements``: ``account_id``, ``due_day``, ``amount_due``;
    * ``payments``: ``account_id``, ``day``, ``amount``;
    * ``contacts`` (None when absent): ``account_id``, ``day``, ``channel``, ``outcome``
      (categoricals), ``promise_amount``, ``promise_day`` (NaN when not a promise or
      unknown).
    """

    accounts: pd.DataFrame
    statements: pd.DataFrame
    payments: pd.DataFrame
    contacts: pd.DataFrame | None
    as_of: pd.Timestamp | None
    source: str

    @property
    def has_contacts(self) -> bool:
        return self.contacts is not None


# --------------------------------------------------------------------------- reading


def table_path(folder: Path, table: str) -> Path | None:
    """The file of ``table`` in ``folder`` (CSV or Parquet), None when absent; both
    present is refused."""
    found = [folder / f"{table}{s}" for s in SUFFIXES if (folder / f"{table}{s}").is_file()]
    if len(found) > 1:
        raise UserError(f"both {found[0].name} and {found[1].name}: keep one",
                        source=str(folder))
    return found[0] if found else None


def _read_raw(path: Path) -> pd.DataFrame:
    """The table as read, CSV cells as text (so that every cell is checked here)."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read a table ({' '.join(str(exc).split())})",
                        source=str(path)) from None
    except Exception as exc:  # pyarrow's own errors for a damaged Parquet file
        raise UserError(f"cannot read a table ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())})", source=str(path)) from None


def _bad(path: Path, column: str, rows: np.ndarray, values: pd.Series, expected: str) -> None:
    i = int(np.flatnonzero(rows)[0])
    shown = str(values.iloc[i])
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    # The row of the file (the table's own index, from 0), also for a subset of its rows.
    label = values.index[i]
    row = int(label) + 1 if isinstance(label, int | np.integer) else i + 1
    raise UserError(f"column '{column}', row {row}: expected {expected}, got '{shown}'",
                    source=str(path))


def _blank(values: pd.Series) -> np.ndarray:
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.astype(str).str.strip()
        return (values.isna() | text.isin(["", "nan", "NaN", "None", "<NA>"])).to_numpy()
    return values.isna().to_numpy()


_EXPECTED = {"number": "a number", "nonneg": "a number >= 0", "positive": "a number > 0",
             "count": "a whole number >= 0"}


def _numbers(path: Path, col: Column, values: pd.Series) -> pd.Series:
    expected = _EXPECTED[col.kind]
    if pd.api.types.is_bool_dtype(values):
        _bad(path, col.name, np.ones(len(values), dtype=bool), values, expected)
    out = pd.to_numeric(values, errors="coerce").astype(float)
    arr = out.to_numpy()
    bad = ~np.isfinite(arr)
    if col.kind == "nonneg":
        bad |= arr < 0
    elif col.kind == "positive":
        bad |= arr <= 0
    elif col.kind == "count":
        bad |= (arr < 0) | (arr != np.floor(arr))
    if bad.any():
        _bad(path, col.name, bad, values, expected)
    return out


def _dates(path: Path, col: Column, values: pd.Series, with_time: bool) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.Series(values)
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
    else:
        text = values.astype(str).str.strip()
        out = pd.to_datetime(text, errors="coerce", format="ISO8601")
    bad = out.isna().to_numpy()
    if bad.any():
        _bad(path, col.name, bad, values,
             "a date-time (YYYY-MM-DD HH:MM)" if with_time else "a date (YYYY-MM-DD)")
    return out.astype("datetime64[ns]")


def _bools(path: Path, col: Column, values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    text = values.astype(str).str.strip().str.lower()
    good = text.isin(_TRUE | _FALSE).to_numpy()
    if not good.all():
        _bad(path, col.name, ~good, values, "true or false")
    return text.isin(_TRUE)


def _choice(path: Path, col: Column, values: pd.Series, allowed: tuple[str, ...]) -> pd.Series:
    text = values.astype(str).str.strip()
    good = text.isin(allowed).to_numpy()
    if not good.all():
        _bad(path, col.name, ~good, values, f"one of {', '.join(allowed)}")
    return pd.Series(pd.Categorical(text, categories=list(allowed)), index=values.index)


def _ids(path: Path, col: Column, values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        arr = values.to_numpy(dtype=float)
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            _bad(path, col.name, bad, values, "an account id (text or a whole number)")
        return pd.Series(arr.astype(np.int64).astype(str), index=values.index)
    text = values.astype(str).str.strip()
    return text


def read_table(path: Path, table: str) -> pd.DataFrame:
    """Read and validate one table of the format: every required column present, every
    cell of the kind its column takes, optional columns filled with their default."""
    raw = _read_raw(path)
    raw.columns = [str(c).strip() for c in raw.columns]
    spec = COLUMNS[table]
    missing = [c.name for c in spec if c.required and c.name not in raw.columns]
    if missing:
        raise UserError(f"missing column(s) {', '.join(missing)} (see docs/portfolio-data.md)",
                        source=str(path))
    out: dict[str, pd.Series] = {}
    for col in spec:
        if col.name not in raw.columns:
            if col.kind == "date":
                out[col.name] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
            else:
                out[col.name] = pd.Series(col.default, index=raw.index)
            continue
        values = raw[col.name]
        # An optional date or amount may be left empty (a contact that is not a promise).
        may_be_blank = not col.required and col.kind in ("date", "nonneg")
        blank = _blank(values)
        if blank.any() and not may_be_blank:
            _bad(path, col.name, blank, values, "a value (the cell is empty)")
        if may_be_blank and blank.any():
            keep = ~blank
            series: pd.Series
            if col.kind == "date":
                series = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
                series[keep] = _dates(path, col, values[keep], False)
            else:
                series = pd.Series(np.nan, index=raw.index, dtype=float)
                series[keep] = _numbers(path, col, values[keep])
            out[col.name] = series
            continue
        if col.kind == "id":
            out[col.name] = _ids(path, col, values)
        elif col.kind in ("number", "nonneg", "positive", "count"):
            out[col.name] = _numbers(path, col, values)
        elif col.kind in ("date", "datetime"):
            out[col.name] = _dates(path, col, values, col.kind == "datetime")
        elif col.kind == "bool":
            out[col.name] = _bools(path, col, values)
        elif col.kind == "product":
            out[col.name] = _choice(path, col, values, PRODUCTS)
        elif col.kind == "channel":
            out[col.name] = _choice(path, col, values, CHANNELS)
        elif col.kind == "outcome":
            out[col.name] = _choice(path, col, values, OUTCOMES)
        else:  # pragma: no cover - a kind added to COLUMNS without a reader
            raise AssertionError(col.kind)
    frame = pd.DataFrame(out)
    if "prior_delinquencies" in frame:
        frame["prior_delinquencies"] = frame["prior_delinquencies"].astype(np.int64)
    if "dpd" in frame:
        frame["dpd"] = frame["dpd"].astype(np.int64)
    return frame


def read_accounts(path: str | Path) -> pd.DataFrame:
    """The validated accounts table of a portfolio: ``path`` is the accounts file itself
    or a portfolio folder holding one (``population.from_file``)."""
    p = Path(path)
    if p.is_dir():
        found = table_path(p, "accounts")
        if found is None:
            raise UserError("no accounts.csv or accounts.parquet", source=str(p))
        p = found
    elif not p.is_file():
        raise UserError("no such file or folder", source=str(p))
    elif p.suffix not in SUFFIXES:
        raise UserError("expected a .csv or .parquet file of accounts", source=str(p))
    accounts = read_table(p, "accounts")
    if accounts.empty:
        raise UserError("no accounts (the table has no rows)", source=str(p))
    duplicated = accounts["account_id"].duplicated().to_numpy()
    if duplicated.any():
        _bad(p, "account_id", duplicated, accounts["account_id"], "a unique account id "
             "(this one is listed twice)")
    return accounts


def _as_of(folder: Path) -> pd.Timestamp | None:
    """``as_of`` from ``portfolio.yaml``, if the folder has one."""
    path = folder / "portfolio.yaml"
    if not path.is_file():
        return None
    data = read_yaml(path)
    unknown = sorted(set(data) - {"as_of", "description"})
    if unknown:
        raise UserError("unknown field (expected as_of and an optional description)",
                        source=str(path), field=unknown[0])
    if "as_of" not in data:
        raise UserError("missing (the first day the data do not cover, YYYY-MM-DD)",
                        source=str(path), field="as_of")
    found = pd.to_datetime(str(data["as_of"]), errors="coerce", format="ISO8601")
    if pd.isna(found):
        raise UserError(f"expected a date (YYYY-MM-DD), got '{data['as_of']}'",
                        source=str(path), field="as_of")
    return pd.Timestamp(found).normalize()


def _known(path: Path, ids: pd.Series, accounts: pd.Index) -> None:
    unknown = ~ids.isin(accounts).to_numpy()
    if unknown.any():
        _bad(path, "account_id", unknown, ids, "an account of the accounts table")


def _after(path: Path, column: str, dates: pd.Series, as_of: pd.Timestamp) -> None:
    late = (dates.dt.normalize() >= as_of).to_numpy()
    if late.any():
        _bad(path, column, late, dates.dt.strftime("%Y-%m-%d"),
             f"a date before as_of {as_of:%Y-%m-%d} (portfolio.yaml)")


def _days(dates: pd.Series, as_of: pd.Timestamp, whole: bool = True) -> np.ndarray:
    """Days from ``as_of``: whole days of a date, or with the fraction of the day of a
    date-time (``whole=False``); NaN for a missing date."""
    stamps = dates.dt.normalize() if whole else dates
    delta = (stamps - as_of) / pd.Timedelta(days=1)
    return delta.to_numpy(dtype=float)


def read_portfolio(folder: str | Path) -> Portfolio:
    """Read and validate a portfolio folder (docs/portfolio-data.md)."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError("no such folder (expected a portfolio folder: accounts, statements, "
                        "payments and optionally contacts, as CSV or Parquet)", source=str(root))
    paths: dict[str, Path | None] = {t: table_path(root, t) for t in TABLES}
    for table in TABLES:
        if paths[table] is None and table not in OPTIONAL_TABLES:
            raise UserError(f"no {table}.csv or {table}.parquet (see docs/portfolio-data.md)",
                            source=str(root))
    accounts_path = paths["accounts"]
    assert accounts_path is not None
    accounts = read_accounts(accounts_path)
    tables: dict[str, pd.DataFrame] = {}
    for table in ("statements", "payments", "contacts"):
        path = paths[table]
        if path is None:
            continue
        frame = read_table(path, table)
        _known(path, frame["account_id"], pd.Index(accounts["account_id"]))
        tables[table] = frame
    statements, payments = tables["statements"], tables["payments"]
    contacts = tables.get("contacts")
    if statements.empty:
        raise UserError("no statements (the table has no rows)",
                        source=str(paths["statements"]))
    if contacts is not None:
        cpath = paths["contacts"]
        assert cpath is not None
        promise = (contacts["outcome"] == "promise").to_numpy()
        amount = contacts["promise_amount"].to_numpy(dtype=float)
        missing = promise & ~np.isfinite(amount)
        if missing.any():
            _bad(cpath, "promise_amount", missing, contacts["promise_amount"],
                 "the amount promised (outcome is promise)")
        early = (contacts["promise_date"].notna()
                 & (contacts["promise_date"] < contacts["time"].dt.normalize())).to_numpy()
        if early.any():
            _bad(cpath, "promise_date", early, contacts["promise_date"].dt.strftime("%Y-%m-%d"),
                 "a date on or after the contact's (dates out of order)")
    stated = _as_of(root)
    latest = max(statements["due_date"].max(), payments["date"].max() if len(payments)
                 else statements["due_date"].max(),
                 contacts["time"].max() if contacts is not None and len(contacts)
                 else statements["due_date"].max())
    as_of = stated if stated is not None else pd.Timestamp(latest).normalize() + pd.Timedelta(
        days=1)
    assert paths["statements"] is not None and paths["payments"] is not None
    _after(paths["statements"], "due_date", statements["due_date"], as_of)
    _after(paths["payments"], "date", payments["date"], as_of)
    if contacts is not None:
        assert paths["contacts"] is not None
        _after(paths["contacts"], "time", contacts["time"], as_of)
    return Portfolio(
        accounts=accounts.reset_index(drop=True),
        statements=pd.DataFrame({"account_id": statements["account_id"],
                                 "due_day": _days(statements["due_date"], as_of),
                                 "amount_due": statements["amount_due"].astype(float)}),
        payments=pd.DataFrame({"account_id": payments["account_id"],
                               "day": _days(payments["date"], as_of),
                               "amount": payments["amount"].astype(float)}),
        contacts=None if contacts is None else pd.DataFrame({
            "account_id": contacts["account_id"],
            "day": _days(contacts["time"], as_of, whole=False),
            "channel": contacts["channel"], "outcome": contacts["outcome"],
            "promise_amount": contacts["promise_amount"].astype(float),
            "promise_day": _days(contacts["promise_date"], as_of)}),
        as_of=as_of, source=str(root))


# --------------------------------------------------------------------------- writing


def portfolio_frames(p: Portfolio, as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The tables of ``p`` in the file format (days back to dates from ``as_of``)."""

    def stamps(days: pd.Series) -> pd.Series:
        return pd.Series(as_of + pd.to_timedelta(days.to_numpy(dtype=float), unit="D"),
                         index=days.index)

    def dates(days: pd.Series) -> pd.Series:
        return stamps(days).dt.strftime("%Y-%m-%d").fillna("")

    def when(days: pd.Series) -> pd.Series:
        return stamps(days).dt.strftime("%Y-%m-%d %H:%M")

    frames = {
        "accounts": p.accounts.copy(),
        "statements": pd.DataFrame({"account_id": p.statements["account_id"],
                                    "due_date": dates(p.statements["due_day"]),
                                    "amount_due": p.statements["amount_due"]}),
        "payments": pd.DataFrame({"account_id": p.payments["account_id"],
                                  "date": dates(p.payments["day"]),
                                  "amount": p.payments["amount"]}),
    }
    if p.contacts is not None:
        c = p.contacts
        promise_day = c["promise_day"]
        frames["contacts"] = pd.DataFrame({
            "account_id": c["account_id"], "time": when(c["day"]),
            "channel": c["channel"].astype(str), "outcome": c["outcome"].astype(str),
            "promise_amount": c["promise_amount"],
            "promise_date": dates(promise_day)})
    return frames
