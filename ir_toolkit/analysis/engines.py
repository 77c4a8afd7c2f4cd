"""Registry of SQL engines that run the detection packs: ``ENGINES`` (NAME -> engine class).

Every engine class has ``NAME``, ``DESCRIPTION`` and the methods of
ir_toolkit.analysis.engine.Engine (run_sql, create_view, create_table, register), and
defines the view ``events`` with the canonical columns when opened on a case.

* ``duckdb`` (default): embedded DuckDB over the case's Parquet store.
* ``spark``: Spark SQL (pyspark imported only when opened); options ``master``,
  ``events`` (Parquet URI instead of the case's store), ``session`` (an existing SparkSession).
"""

from __future__ import annotations

from typing import Any

from ir_toolkit.analysis.engine import DuckDBEngine, Engine
from ir_toolkit.analysis.spark import SparkEngine
from ir_toolkit.case import Case
from ir_toolkit.errors import UserError

DEFAULT_ENGINE = DuckDBEngine.NAME

ENGINES: dict[str, Any] = {cls.NAME: cls for cls in (DuckDBEngine, SparkEngine)}

OPTIONS: dict[str, tuple[str, ...]] = {"duckdb": ("memory_limit",), "spark": ("master", "events", "session")}


def open_engine(name: str | None, case: Case, options: dict[str, Any] | None = None) -> Engine:
    """Open engine ``name`` on ``case`` with its options (unset options are dropped).

    Raises:
        UserError: unknown engine, an option the engine does not take, or (Spark) pyspark/Java missing.
    """
    key = (name or DEFAULT_ENGINE).lower()
    if key not in ENGINES:
        raise UserError(f"unknown engine {name!r}: choose one of {', '.join(sorted(ENGINES))}")
    given = {k: v for k, v in (options or {}).items() if v not in (None, "")}
    wrong = sorted(set(given) - set(OPTIONS[key]))
    if wrong:
        raise UserError(f"engine {key} does not take {', '.join(wrong)} "
                        f"(it takes: {', '.join(OPTIONS[key]) or 'nothing'})")
    engine: Engine = ENGINES[key](case, **given)
    return engine
