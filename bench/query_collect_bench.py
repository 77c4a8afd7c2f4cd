"""Collection speed from a Log Analytics workspace and Defender advanced hunting against the fake's limits.

``python -m bench query`` (or ``python -m bench.query_collect_bench [--scale S]``) collects a few days
of rows from the local HTTPS fake, which enforces each service's documented limits, scaled down:

* Log Analytics: 200 queries per 30 s per user and a row cap per result (500,000 in the service; a
  small cap here, so slices must split);
* advanced hunting: 45 queries per minute per tenant and a row cap (100,000 in the service).

It prints rows per second and the ratio to the ceiling those limits allow (queries per second x rows
per query), and how many queries the limit hits cost (a slice over the cap is asked again as halves).
Every period is multiplied by the scale; the row caps and volumes are small by default.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.timing import timed_collection
from ir_toolkit.case.collect import scaled_client, scaled_options
from ir_toolkit.sources.graph.auth import StaticToken
from ir_toolkit.sources.graph.collector import Collector
from ir_toolkit.sources.graph.endpoints import resolve
from ir_toolkit.sources.kql.runner import QueryRunner
from ir_toolkit.sources.kql.sources import DEFENDER, LOG_ANALYTICS
from tests.fakes.query_server import FakeQueryService

WS = "1a2b3c4d-0000-4000-8000-00000000abcd"
START = pd.Timestamp("2024-03-01", tz="UTC")
LIMITS = {"log-analytics": (200, 30.0), "defender": (45, 60.0)}  # queries per seconds (documented)


def _rows(column: str, days: int, per_day: int, table: str | None) -> list[dict[str, Any]]:
    rows = []
    for d in range(days):
        for i in range(per_day):
            ts = START + pd.Timedelta(days=d) + pd.Timedelta(seconds=i * 86400 / per_day)
            row = {column: ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "Id": f"r-{d}-{i}", "UserPrincipalName":
                   f"user{i % 50}@contoso.com", "IPAddress": "198.51.100.7", "ResultType": "0"}
            if table:
                row["Type"] = table
            rows.append(row)
    return rows


def bench(backend: str, scale: float, days: int, per_day: int, cap: int) -> float:
    table = "SigninLogs" if backend == "log-analytics" else "CloudAppEvents"
    column = "TimeGenerated" if backend == "log-analytics" else "Timestamp"
    rows = {table: _rows(column, days, per_day, table if backend == "log-analytics" else None)}
    n, period = LIMITS[backend]
    kwargs: dict[str, Any] = {"la": rows, "workspaces": (WS,), "la_row_limit": cap} if backend == "log-analytics" \
        else {"hunting": rows, "hunting_row_limit": cap}
    with FakeQueryService(rate=(n, period * scale), folder=Path(tempfile.mkdtemp()), **kwargs) as svc:
        ep = resolve("global", "bench", graph_url=svc.url, log_analytics_url=svc.la_url)
        registry = LOG_ANALYTICS if backend == "log-analytics" else DEFENDER
        registry = {table: replace(registry[table], row_limit=cap)}
        client = scaled_client(StaticToken("bench"), scale, verify=str(svc.ca_file))
        col = Collector(client, ep, Path(tempfile.mkdtemp(prefix="query-bench-")), START,
                        START + pd.Timedelta(days=days), table, options=scaled_options(scale),
                        registry=registry, runner=QueryRunner(ep, WS if backend == "log-analytics" else None))
        ledger, elapsed = timed_collection(col, client)
        queries, throttled = svc.served(status=200), svc.served(status=429)
    got = sum(r["records"] for r in ledger)
    assert got == days * per_day and all(r["complete"] for r in ledger), "bench collection incomplete"
    ceiling = n / (period * scale) * cap
    rate = got / elapsed
    print(f"{backend}: {got} rows in {elapsed:.2f}s = {rate:.0f} rows/s; ceiling {ceiling:.0f} rows/s "
          f"({n} queries per {period * scale:.2f}s x {cap} rows); {queries} answered queries for {len(ledger)} "
          f"slices ({queries - len(ledger)} spent on results over the cap), {throttled} answered 429")
    ratio = rate / ceiling
    print(f"  ratio of the limits' ceiling: {ratio:.2f}")
    return ratio


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.query_collect_bench")
    p.add_argument("--scale", type=float, default=0.05, help="multiplier of the rate-limit periods (default 0.05)")
    p.add_argument("--days", type=int, default=6)
    p.add_argument("--per-day", type=int, default=3000, help="rows per day (default 3000)")
    p.add_argument("--cap", type=int, default=1000, help="row cap per query result (default 1000)")
    args = p.parse_args(argv)
    for backend in ("log-analytics", "defender"):
        bench(backend, args.scale, args.days, args.per_day, args.cap)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
