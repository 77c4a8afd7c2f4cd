"""Aggregates of the canonical events computed in DuckDB, for timelines, graphs and plots.

A large case does not fit in pandas, so everything the plots and the actor graph
draw is first counted in DuckDB. Every function here takes the same *data*
argument: a :class:`~ir_toolkit.case.Case`, a DuckDB connection that has a view
``events`` with the canonical columns (``case.duckdb()``), or a pandas DataFrame of
canonical events (small cases, hand-built frames, filtered notebook frames).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.errors import UserError
from ir_toolkit.schema import EVENT_COLUMN_NAMES, to_arrow
from ir_toolkit.sqltext import identifier, literal

Data = Case | duckdb.DuckDBPyConnection | pd.DataFrame
FREQS = ("minute", "hour", "day", "week")


def connect(data: Data) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``events`` over ``data`` (see the module docstring)."""
    if isinstance(data, duckdb.DuckDBPyConnection):
        return data
    if isinstance(data, Case):
        con = data.duckdb()
    elif isinstance(data, pd.DataFrame):
        con = duckdb.connect()
        con.register("_events_frame", to_arrow(data))
        con.execute("CREATE OR REPLACE VIEW events AS SELECT * FROM _events_frame")
    else:
        raise TypeError(f"expected a Case, a DuckDB connection or a DataFrame, not {type(data).__name__}")
    con.execute("SET TimeZone='UTC'")
    return con


def check_tz(tz: str) -> str:
    """Return ``tz`` when it names an IANA time zone, else raise UserError."""
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UserError(f"unknown time zone {tz!r}: use an IANA name such as UTC or Asia/Shanghai") from None
    return tz


def check_columns(columns: Sequence[str]) -> list[str]:
    """Return ``columns`` when each is a canonical event column, else raise UserError."""
    bad = [c for c in columns if c not in EVENT_COLUMN_NAMES]
    if bad:
        raise UserError(f"not an event column: {', '.join(bad)}")
    return list(columns)


def utc(series: pd.Series) -> pd.Series:
    """A datetime Series as tz-aware UTC (DuckDB returns the connection's zone)."""
    s = pd.to_datetime(series)
    return s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")


def local(series: pd.Series, tz: str) -> pd.Series:
    """Naive wall-clock times in ``tz`` (from DuckDB's ``timezone()``) as tz-aware times in ``tz``."""
    s = pd.to_datetime(series)
    return s.dt.tz_localize(tz, ambiguous=np.zeros(len(s), dtype=bool), nonexistent="shift_forward")


def _where(where: str | None) -> str:
    return f"WHERE time IS NOT NULL AND ({where})" if where else "WHERE time IS NOT NULL"


def activity_counts(data: Data, by: Sequence[str] = ("mailbox",), freq: str = "day", tz: str = "UTC",
                    where: str | None = None) -> pd.DataFrame:
    """Events and mail items per entity per time bucket.

    Args:
        data: Case, DuckDB connection or events frame.
        by: Event columns to group by (e.g. ``("mailbox",)``, ``("ip", "mailbox")``).
        freq: Bucket size: minute, hour, day or week (wall clock in ``tz``).
        tz: IANA time zone of the buckets.
        where: Extra SQL predicate over the canonical columns.

    Returns:
        Columns ``*by``, ``bucket`` (tz-aware in ``tz``), ``events``, ``items`` (sum of ``items``),
        sorted by bucket.
    """
    cols = check_columns(by)
    if freq not in FREQS:
        raise UserError(f"unknown bucket size {freq!r}: choose one of {', '.join(FREQS)}")
    keys = ", ".join(identifier(c) for c in cols)
    sql = (f"SELECT {keys}{', ' if keys else ''}date_trunc({literal(freq)}, timezone($tz, time)) AS bucket, "
           f"count(*) AS events, coalesce(sum(items), 0) AS items FROM events {_where(where)} "
           f"GROUP BY ALL ORDER BY bucket{', ' if keys else ''}{keys}")
    frame = connect(data).execute(sql, {"tz": check_tz(tz)}).df()
    frame["bucket"] = local(frame["bucket"], tz)
    frame["events"] = frame["events"].astype("int64")
    frame["items"] = frame["items"].astype("int64")
    return frame


def hour_of_week_counts(data: Data, tz: str = "UTC", where: str | None = None) -> pd.DataFrame:
    """Events per weekday and hour of the day in ``tz``.

    Returns:
        Columns ``day`` (0 = Monday ... 6 = Sunday), ``hour`` (0-23), ``events``; all 168 cells present.
    """
    sql = (f"SELECT isodow(timezone($tz, time)) - 1 AS day, hour(timezone($tz, time)) AS hour, "
           f"count(*) AS events FROM events {_where(where)} GROUP BY ALL")
    return hour_of_week_grid(connect(data).execute(sql, {"tz": check_tz(tz)}).df())


def hour_of_week_grid(counts: pd.DataFrame) -> pd.DataFrame:
    """Counts per weekday and hour (columns day, hour, events) on the grid of all 168 cells (0 where none)."""
    grid = pd.MultiIndex.from_product([range(7), range(24)], names=["day", "hour"]).to_frame(index=False)
    out = grid.merge(counts.astype("int64"), on=["day", "hour"], how="left")
    out["events"] = out["events"].fillna(0).astype("int64")
    return out


def value_counts(data: Data, column: str, where: str | None = None) -> pd.DataFrame:
    """Each distinct value of one column with its count and first/last time.

    Returns:
        Columns ``value``, ``events``, ``first``, ``last`` (tz-aware UTC).
    """
    check_columns([column])
    extra = f" AND ({where})" if where else ""
    name = identifier(column)
    sql = (f"SELECT CAST({name} AS VARCHAR) AS value, count(*) AS events, min(time) AS first, "
           f"max(time) AS last FROM events WHERE {name} IS NOT NULL "
           f"AND CAST({name} AS VARCHAR) <> ''{extra} GROUP BY ALL ORDER BY value")
    frame = connect(data).sql(sql).df()
    for col in ("first", "last"):
        frame[col] = utc(frame[col])
    frame["events"] = frame["events"].astype("int64")
    return frame


def query(data: Data, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run any SQL over the ``events`` view of ``data`` and return a DataFrame."""
    return connect(data).execute(sql, params or {}).df()
