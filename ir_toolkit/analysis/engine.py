"""The engine seam: run portable SQL over a case's events and get pandas back.

Detections are SQL over a view ``events`` with the canonical columns (see
ir_toolkit/schema.py) and the helper views of ``packs/views.sql``. Everything the
analysis layer asks of an engine is in :class:`Engine`: run a query, define a view,
register a small pandas table. DuckDB (embedded, over the case's Parquet store) is
the default; the Spark engine (ir_toolkit/analysis/spark.py) implements the same methods.
The registry of engines is ir_toolkit/analysis/engines.py.

Rules that keep the SQL portable to Spark SQL: standard SQL only, ``INTERVAL 'N' MINUTE``
literals, ``CAST('...' AS TIMESTAMP)`` for time literals (sessions run in UTC),
``array_agg`` as the only list function, ``date_trunc('hour', t)``, LEFT JOIN instead of
correlated subqueries with range predicates, and no engine-only functions.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from ir_toolkit.case import Case
from ir_toolkit.sqltext import literal

log = logging.getLogger(__name__)

NAME = "duckdb"
DESCRIPTION = "DuckDB over the case's Parquet event store (embedded, single machine)."


class Engine(Protocol):
    """What detections need from a SQL engine."""

    def run_sql(self, sql: str) -> pd.DataFrame:
        """Run one query and return its result as pandas."""
        ...

    def create_view(self, name: str, sql: str) -> None:
        """Define (or replace) a named view."""
        ...

    def create_table(self, name: str, sql: str) -> None:
        """Materialise a query once (a helper view several detections read)."""
        ...

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """Make a small pandas table queryable under ``name``."""
        ...


class DuckDBEngine:
    """DuckDB connection with the view ``events`` over a case's store, in UTC.

    Args:
        case: The case whose ``CASE/events`` Parquet files are scanned.
        memory_limit: DuckDB memory limit (e.g. ``"3GB"``), None for :func:`default_memory_limit`.
    """

    NAME = NAME
    DESCRIPTION = DESCRIPTION
    name = NAME

    def __init__(self, case: Case, memory_limit: str | None = None) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone='UTC'")
        self.con.execute(f"SET memory_limit={literal(memory_limit or default_memory_limit())}")
        case.events.connect(self.con)

    def run_sql(self, sql: str) -> pd.DataFrame:
        table = self.con.sql(sql).to_arrow_table()
        return arrow_to_pandas(table)

    def create_view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")

    def create_table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(name, pa.Table.from_pandas(frame, preserve_index=False))


def default_memory_limit() -> str:
    """DuckDB's memory limit when none is given: 40% of the machine's memory, at most 5 GB.

    DuckDB's own default (80%) let detect peak at 8.4 GB on a 24 GB machine at ten million events; at 5 GB it
    peaked at 6.5 GB in the same time (docs/performance.md).
    """
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): DuckDB's own default
        return "80%"
    return f"{max(1, min(5000, int(total * 0.4) // 1_000_000))}MB"


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with tz-aware UTC times and plain Python lists for list columns."""
    frame = table.to_pandas()
    for field in table.schema:
        if pa.types.is_timestamp(field.type):
            frame[field.name] = pd.to_datetime(frame[field.name], utc=True).astype("datetime64[us, UTC]")
    return frame


def sql_literal(value: Any) -> str:
    """Render a Python value as a portable SQL literal (see :func:`ir_toolkit.sqltext.literal`).

    Timestamps become ``CAST('YYYY-MM-DD HH:MM:SS' AS TIMESTAMP)`` (UTC sessions).
    """
    return literal(value)

