"""The token-forgery pack's SQL is portable: Spark SQL gives the same findings as DuckDB.

A minimal engine over a local SparkSession (issue 10 ships the real one) runs the same
prepare/run_pack path as DuckDB on the breach scenario of test_scope.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import prepare, run_pack
from ir_toolkit.case import Case
from tests.detect_events import frame, token_event
from tests.test_scope import build

pytestmark = pytest.mark.spark


class _SparkEngine:
    """Engine protocol over Spark SQL (test-only)."""

    def __init__(self, spark: Any, case: Case) -> None:
        self.spark = spark
        spark.read.parquet(*[str(p) for p in sorted(case.events.root.glob("*/*.parquet"))]) \
            .createOrReplaceTempView("events")

    def run_sql(self, sql: str) -> pd.DataFrame:
        from pyspark.sql.types import TimestampType

        df = self.spark.sql(sql)
        frame = pd.DataFrame([r.asDict() for r in df.collect()], columns=df.columns)
        for f in df.schema.fields:
            if isinstance(f.dataType, TimestampType):  # naive datetimes in the session zone (UTC)
                frame[f.name] = pd.to_datetime(frame[f.name]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        return frame

    def create_view(self, name: str, sql: str) -> None:
        self.spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def create_table(self, name: str, sql: str) -> None:
        self.spark.sql(sql).cache().createOrReplaceTempView(name)

    def register(self, name: str, frame: pd.DataFrame) -> None:
        from pyspark.sql.types import StringType, StructField, StructType

        schema = StructType([StructField(str(c), StringType(), True) for c in frame.columns])
        rows = [tuple(None if pd.isna(v) else str(v) for v in r) for r in frame.itertuples(index=False)]
        self.spark.createDataFrame(rows, schema=schema).createOrReplaceTempView(name)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pyspark_sql = pytest.importorskip("pyspark.sql")
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)  # type: ignore[attr-defined]
    session = (pyspark_sql.SparkSession.builder.master("local[1]").appName("ir-toolkit-portability")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    yield session
    session.stop()


def _key(findings: pd.DataFrame) -> list[tuple[str, str, str, str, int, tuple[str, ...]]]:
    return sorted((str(r.detection), str(r.verdict), str(r.mailbox), str(r.ip), int(r.events),
                   tuple(sorted(r.evidence))) for r in findings.itertuples(index=False))


def test_spark_and_duckdb_give_the_same_findings(case_dir: Path, spark: Any) -> None:
    case, _ = build(case_dir)
    case.write_events(frame(token_event("forged-a1", "ses-x", "forged")))  # exercise forged-token too
    duck = run_pack(prepare(case))
    sprk = run_pack(prepare(case, engine=_SparkEngine(spark, case)))
    assert len(duck) > 20 and "forged-token" in set(duck["detection"])
    assert _key(sprk) == _key(duck)
