"""The Spark engine: the same detection SQL on Apache Spark (a data lake, or ``local[N]``).

pyspark is imported lazily, only when a Spark engine is opened, so the rest of the
toolkit works without it. The view ``events`` has exactly the canonical columns of
ir_toolkit/schema.py (EVENT_COLUMNS), in their canonical types: a lake table that lacks
some of them gets typed NULL columns, extra columns are ignored. Sessions run in UTC.

Events come from the case's Parquet store (``CASE/events/<source>/*.parquet``) or from
any Parquet URI Spark can read (``events=`` option: ``abfss://...``, ``s3a://...``,
``hdfs://...``, ``dbfs:/...``, a local folder).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ir_toolkit.analysis.engine import arrow_to_pandas
from ir_toolkit.case import Case
from ir_toolkit.errors import UserError
from ir_toolkit.schema import EVENT_COLUMNS

log = logging.getLogger(__name__)

NAME = "spark"
DESCRIPTION = "Apache Spark SQL (pyspark): a cluster or data lake session, or local[N] on this machine."

INSTALL_PYSPARK = "the spark engine needs pyspark: install it with `pip install 'ir_toolkit[spark]'` (or pyspark>=3.5)"
INSTALL_JAVA = ("the spark engine needs Java 17 or newer: install a JDK/JRE (e.g. `apt-get install "
                "openjdk-17-jre-headless`) and put `java` on PATH or set JAVA_HOME")


def spark_type(t: pa.DataType) -> str:
    """Spark SQL type name of a canonical (Arrow) column type."""
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_list(t):
        return f"ARRAY<{spark_type(t.value_type)}>"
    return "STRING"


def _java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home:
        return (Path(home) / "bin" / "java").exists()
    return shutil.which("java") is not None


def spark_session(master: str | None = None, app_name: str = "ir-toolkit") -> Any:
    """The active SparkSession (a notebook's or spark-submit's), or a new one on ``master``.

    Args:
        master: Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``...). None: the
            active session if there is one, else spark-submit's master or pyspark's ``local[*]``.
        app_name: Application name shown in the Spark UI.

    Raises:
        UserError: pyspark or Java is missing (one line naming what to install).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError(INSTALL_PYSPARK) from None
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    if not _java_available():
        raise UserError(INSTALL_JAVA)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    log.info("starting a Spark session on %s", master or "local[*]")
    builder = (SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false"))
    if master:  # else spark-submit's --master, or pyspark's default local[*]
        builder = builder.master(master)
    if master and master.startswith("local"):  # one machine: a shuffle partition per core, no web UI
        builder = (builder.config("spark.sql.shuffle.partitions", str(local_cores(master)))
                   .config("spark.ui.enabled", "false"))
    return builder.getOrCreate()


def local_cores(master: str) -> int:
    """The cores a ``local``, ``local[N]``, ``local[*]`` or ``local[N,F]`` master runs on (1 to 8).

    A local session shuffles into that many partitions: Spark's default of 200 (or a fixed 8) spends
    most of a small case's time writing and reading empty shuffle files (the 12-user test tenant's detect
    took twice as long on 8 partitions as on 2, on 2 cores).
    """
    inside = master[len("local"):].strip("[]").split(",")[0].strip()
    if inside.isdigit():
        cores = int(inside)
    elif inside == "*":
        cores = os.cpu_count() or 1
    else:  # plain "local": one thread
        cores = 1
    return max(1, min(cores, 8))


class SparkEngine:
    """Engine protocol (ir_toolkit.analysis.engine.Engine) over Spark SQL.

    Args:
        case: The case (its Parquet store is read unless ``events`` is given).
        master: Spark master URL; None uses the active session or ``local[*]``.
        events: Parquet URI of the events (a lake table path) instead of the case's store.
        session: An existing SparkSession to use (tests, notebooks).
    """

    NAME = NAME
    DESCRIPTION = DESCRIPTION
    name = NAME

    def __init__(self, case: Case, master: str | None = None, events: str | None = None,
                 session: Any = None) -> None:
        self.spark = session if session is not None else spark_session(master)
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        # The pack's views nest deeply; Spark renders every plan as text for its UI and logs, and an
        # unbounded rendering of the nested cached plans exhausts the driver's heap.
        self.spark.conf.set("spark.sql.maxPlanStringLength", "200000")
        self.events_uri = events
        self._cached: dict[str, Any] = {}
        self._define_events(case)

    def _define_events(self, case: Case) -> None:
        paths = [self.events_uri] if self.events_uri else [str(p) for p in case.events._files()]
        if not paths:
            cols = ", ".join(f"CAST(NULL AS {spark_type(c.type)}) AS `{c.name}`" for c in EVENT_COLUMNS)
            self.spark.sql(f"SELECT {cols} WHERE FALSE").createOrReplaceTempView("events")
            return
        try:
            raw = self.spark.read.option("mergeSchema", "true").parquet(*paths)
        except Exception as exc:  # AnalysisException: path missing or not Parquet
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise UserError(f"{paths[0]}: cannot read Parquet events with Spark: {first}") from None
        present = {f.name.lower(): f.name for f in raw.schema.fields}
        select = []
        for c in EVENT_COLUMNS:
            if c.name in present:
                select.append(f"CAST(`{present[c.name]}` AS {spark_type(c.type)}) AS `{c.name}`")
            else:
                select.append(f"CAST(NULL AS {spark_type(c.type)}) AS `{c.name}`")
        missing = [c.name for c in EVENT_COLUMNS if c.name not in present]
        if "time" in missing or "source" in missing:
            raise UserError(f"{paths[0]}: the events lack the canonical column(s) "
                            f"{', '.join(m for m in ('time', 'source') if m in missing)} (see docs/schema.md)")
        if missing:
            log.info("events %s lack %s: read as NULL", paths[0], ", ".join(missing))
        raw.createOrReplaceTempView("_raw_events")
        self.spark.sql(f"SELECT {', '.join(select)} FROM _raw_events").createOrReplaceTempView("events")

    def run_sql(self, sql: str) -> pd.DataFrame:
        return arrow_to_pandas(self.spark.sql(sql).toArrow())

    def create_view(self, name: str, sql: str) -> None:
        self.spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def create_table(self, name: str, sql: str) -> None:
        if name in self._cached:
            self._cached.pop(name).unpersist()
        # An eager local checkpoint computes the table once and cuts its lineage: later queries over
        # the pack's nested views plan against a leaf, not the whole chain of views again.
        frame = self.spark.sql(sql).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        self._cached[name] = frame

    def register(self, name: str, frame: pd.DataFrame) -> None:
        from pyspark.sql.types import StringType, StructField, StructType

        schema = StructType([StructField(str(c), StringType(), True) for c in frame.columns])
        rows = [tuple(None if pd.isna(v) else str(v) for v in r) for r in frame.itertuples(index=False)]
        self.spark.createDataFrame(rows, schema=schema).createOrReplaceTempView(name)
