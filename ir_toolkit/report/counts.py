"""The tenant's counts the report draws and tabulates, from one pass over the store.

The report and notebooks 01 and 03 count the whole tenant three ways: events per source with the first and last
time (the coverage table), per UTC day and source (the coverage figure) and per hour of week in the display zone
(the rhythm figure). Asked of the store one by one, each is a scan with a date function over every event (at a
million events about 0.3 s CPU for the three, most of it ``date_trunc`` and ``timezone``). Here one scan counts
the events per source and quarter of an hour (an integer division of the epoch: a few thousand groups a month)
with the first and last time of each, and the three answers are counted from those groups in DuckDB with the
same SQL functions as before, so they are the same frames. A quarter of an hour falls into one UTC day, and
into one local hour and weekday wherever the zone's offset is a whole number of quarters and does not change
inside the quarter (every zone today); where a quarter is not one local hour (a historical local mean time, an
offset change inside it) the hour-of-week counts are asked of the store directly, as before.

Each answer is kept for the next reader under the question it answers (:mod:`ir_toolkit.report.memo`).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ir_toolkit.analysis import aggregates
from ir_toolkit.analysis.aggregates import check_tz, hour_of_week_grid, utc
from ir_toolkit.case import Case
from ir_toolkit.report.memo import keep, recall
from ir_toolkit.sqltext import literal

#: Sources that are snapshots of the directory (object creation dates, not a log's period): never drawn.
SNAPSHOT_SOURCES = ("tenant_snapshot",)
QUARTER_US = 900_000_000  # a quarter of an hour in microseconds
#: The quarter of an hour of each event (floor division: an event before 1970 falls in the quarter that holds it).
QUARTER = f"(epoch_us(time) - ((epoch_us(time) % {QUARTER_US}) + {QUARTER_US}) % {QUARTER_US}) // {QUARTER_US}"
# The start of a group's quarter, as the events' own type (TIMESTAMPTZ).
START = "to_timestamp(q * 900)"


def _and(*parts: str | None) -> str:
    return " AND ".join(f"({p})" for p in parts if p)


def questions(where: str | None, tz: str) -> dict[str, tuple[str, list[str | None]]]:
    """The memo questions the counts answer (the names and arguments the single questions are kept under)."""
    daily = _and("time IS NOT NULL", f"source NOT IN ({literal(list(SNAPSHOT_SOURCES))})", where)
    return {"coverage": ("coverage", []), "daily": ("daily_source_counts", [daily]),
            "week": ("hour_of_week_counts", [tz, where])}


def tenant_counts(case: Case, where: str | None = None, tz: str = "UTC") -> dict[str, pd.DataFrame]:
    """The coverage, daily and hour-of-week counts of a case with events, kept ones read, the rest in one pass.

    Args:
        case: A case whose store holds events.
        where: SQL predicate over the canonical columns the daily and hour-of-week counts are limited to (the
            coverage counts every event).
        tz: IANA zone of the hour-of-week counts.

    Returns:
        ``coverage`` (source, events, first, last: per source, every event), ``daily`` (day, source, events:
        :func:`ir_toolkit.report.casequery.daily_source_counts`) and ``week`` (day, hour, events:
        :func:`ir_toolkit.analysis.aggregates.hour_of_week_counts`).
    """
    asked = questions(where, check_tz(tz))
    out = {name: recall(case, what, args) for name, (what, args) in asked.items()}
    if all(frame is not None for frame in out.values()):
        return {name: frame for name, frame in out.items() if frame is not None}
    con = case.duckdb()
    con.execute("SET TimeZone='UTC'")
    selected = f"count(*) FILTER (WHERE {where})" if where else "count(*)"
    quarters = con.sql(f"SELECT source, {QUARTER} AS q, count(*) AS n, {selected} AS selected, min(time) AS first, "
                       "max(time) AS last FROM events GROUP BY ALL").to_arrow_table()
    con.register("tenant_quarters", quarters)
    computed = {"coverage": _coverage(con), "daily": _daily(con), "week": _week(case, con, tz, where)}
    for name, frame in computed.items():
        if out[name] is None:
            what, args = asked[name]
            keep(case, what, args, frame)
            out[name] = frame
    return {name: frame for name, frame in out.items() if frame is not None}


def _coverage(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Events per source with the first and last time (every event, a missing time included)."""
    return con.sql("SELECT source, CAST(sum(n) AS BIGINT) AS events, min(first) AS first, max(last) AS last "
                   "FROM tenant_quarters GROUP BY source ORDER BY source").df()


def _daily(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Events per UTC day and source of the selected events with a time, directory snapshots left out."""
    frame: pd.DataFrame = con.sql(
        f"SELECT date_trunc('day', {START}) AS day, source, CAST(sum(selected) AS BIGINT) AS events "
        f"FROM tenant_quarters WHERE q IS NOT NULL AND selected > 0 "
        f"AND source NOT IN ({literal(list(SNAPSHOT_SOURCES))}) GROUP BY ALL ORDER BY day, source").df()
    frame["day"] = utc(frame["day"])
    frame["events"] = frame["events"].astype("int64")
    return frame[["day", "source", "events"]]


def _week(case: Case, con: duckdb.DuckDBPyConnection, tz: str, where: str | None) -> pd.DataFrame:
    """Events per weekday and hour in ``tz`` of the selected events (the store asked again where a quarter of an
    hour is not one local hour: see the module docstring)."""
    offset = "epoch_us(timezone($tz, {t})) - epoch_us({t})"
    start, end = START, f"{START} + INTERVAL {QUARTER_US - 1} MICROSECOND"
    split = con.execute(
        f"SELECT count(*) FROM tenant_quarters WHERE q IS NOT NULL AND selected > 0 AND "
        f"(({offset.format(t=start)}) % {QUARTER_US} <> 0 OR {offset.format(t=start)} <> {offset.format(t=end)})",
        {"tz": tz}).fetchone()
    if split is None or split[0]:
        return aggregates.hour_of_week_counts(case, tz=tz, where=where)
    counts = con.execute(
        f"SELECT isodow(timezone($tz, {START})) - 1 AS day, hour(timezone($tz, {START})) AS hour, "
        f"CAST(sum(selected) AS BIGINT) AS events FROM tenant_quarters WHERE q IS NOT NULL AND selected > 0 "
        "GROUP BY ALL", {"tz": tz}).df()
    return hour_of_week_grid(counts)
