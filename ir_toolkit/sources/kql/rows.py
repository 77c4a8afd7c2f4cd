"""Pure helpers of the query collectors: the KQL of a slice, API answers to row objects, limit signals.

The Log Analytics query API answers ``{"tables": [{"name", "columns": [{"name", "type"}], "rows":
[[...]]}]}`` (and an ``error`` object next to ``tables`` when the result is partial, e.g. truncated
at the row or size limit); advanced hunting answers ``{"schema": [...], "results": [{...}]}``. Both
become one list of row objects (column name -> value), the shape the importer reads as
``log-analytics-json``. Values are kept as the API sent them (dynamic columns stay JSON text).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ir_toolkit.sources.graph.slicing import Slice

LIMIT_MARKERS = ("e_query_result_set_too_large", "exceeded the allowed result size", "result set has exceeded",
                 "partialerror", "query result set has exceeded")


def kql_datetime(ts: pd.Timestamp) -> str:
    """A KQL ``datetime()`` literal in UTC with 100 ns precision."""
    t = ts.tz_convert("UTC")
    return f"datetime({t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond * 10 + t.nanosecond // 100:07d}Z)"


def slice_query(table: str, time_field: str, sl: Slice) -> str:
    """The KQL of one slice: ``[start, end)`` on the time column, oldest first.

    ``table`` and ``time_field`` come from the registry, never from the user; the times are ours.
    """
    return (f"{table} | where {time_field} >= {kql_datetime(sl.start)} and {time_field} < {kql_datetime(sl.end)}"
            f" | order by {time_field} asc")


def timespan(sl: Slice) -> str:
    """The ISO 8601 interval of a slice (``start/end``) for the query API's ``timespan``."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return f"{sl.start.tz_convert('UTC').strftime(fmt)}/{sl.end.tz_convert('UTC').strftime(fmt)}"


def la_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the first (primary) table of a Log Analytics answer as row objects.

    Raises:
        ValueError: when the answer has no table with columns and rows.
    """
    tables = body.get("tables")
    if not isinstance(tables, list) or not tables:
        raise ValueError("answer without 'tables'")
    first = tables[0]
    columns, rows = first.get("columns"), first.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise ValueError("table without 'columns' and 'rows'")
    names = [str(c.get("name")) if isinstance(c, dict) else str(c) for c in columns]
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(names):
            raise ValueError(f"a row of {len(row) if isinstance(row, list) else '?'} values for {len(names)} columns")
        out.append(dict(zip(names, row, strict=True)))
    return out


def hunting_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The row objects of an advanced hunting answer (``results``).

    Raises:
        ValueError: when ``results`` is not a list of objects.
    """
    results = body.get("results", body.get("Results"))
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ValueError("answer without a 'results' list of rows")
    return list(results)


def partial_error(body: dict[str, Any]) -> str | None:
    """The message of a Log Analytics partial-result error (a truncated answer), or None."""
    err = body.get("error")
    if not isinstance(err, dict):
        return None
    parts = [str(err.get("code", "")), str(err.get("message", ""))]
    for detail in err.get("details") or []:
        if isinstance(detail, dict):
            parts += [str(detail.get("code", "")), str(detail.get("message", ""))]
            inner = detail.get("innererror")
            if isinstance(inner, dict):
                parts += [str(inner.get("code", "")), str(inner.get("message", ""))]
    return "; ".join(p for p in parts if p)[:500]


def is_limit(message: str) -> bool:
    """True when an error text says the result was cut at a row or size limit."""
    low = message.lower()
    return any(m in low for m in LIMIT_MARKERS)


def unknown_table(message: str) -> bool:
    """True when an error text says the table does not exist (renamed or not in this tenant)."""
    low = message.lower()
    return "resolve table" in low or ("table" in low and ("could not be resolved" in low or "not found" in low))
