"""Collection speed against the fake Graph with realistic delays, scaled down, and the policy enforced.

``python -m bench collect`` (or ``python -m bench.collect_bench [--scale S]``) prints:

* sign-ins: records per second as a ratio of the ceiling the reports policy allows
  (5 requests per 10 s per tenant x 1,000 records per page); goal >= 0.9. Sign-in pages take
  about 1.5 s each, the fake server answers 429 beyond the policy.
* audit log: a 30-day Purview pull (one query per day, each needing a simulated search time
  before its records can be paged), our concurrent slices against one query at a time (what peer
  tools do), both measured in this run; goal >= 5x.

Every delay (page time, search time, policy window, backoff, polling) is multiplied by the scale.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bench.timing import timed_collection
from ir_toolkit.case.collect import scaled_client, scaled_options
from ir_toolkit.sources.graph.auth import StaticToken
from ir_toolkit.sources.graph.collector import Collector
from ir_toolkit.sources.graph.endpoints import resolve
from tests.fakes.graph_server import FakeGraph

PAGE = 1000
POLICY = (5, 10.0)        # reports: requests per seconds, per tenant
SIGNIN_PAGE_S = 1.5       # seconds to serve a page of 1,000 sign-ins
AUDIT_SEARCH_S = 120.0    # seconds an audit query searches before records can be paged
START = pd.Timestamp("2024-03-01", tz="UTC")


def _signins(days: int, per_day: int) -> list[dict[str, Any]]:
    rows = []
    for d in range(days):
        for i in range(per_day):
            ts = START + pd.Timedelta(days=d) + pd.Timedelta(seconds=i * 86400 / per_day)
            et = "interactiveUser" if i % 2 == 0 else "nonInteractiveUser"
            rows.append({"id": f"s-{d}-{i}", "createdDateTime": ts.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
                         "userPrincipalName": f"user{i % 500}@contoso.com", "signInEventTypes": [et],
                         "ipAddress": "198.51.100.7", "status": {"errorCode": 0}})
    return rows


def _audit(days: int, per_day: int) -> list[dict[str, Any]]:
    rows = []
    for d in range(days):
        for i in range(per_day):
            ts = START + pd.Timedelta(days=d) + pd.Timedelta(seconds=1 + i * 86000 // per_day)
            rows.append({"id": f"a-{d}-{i}", "createdDateTime": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "operation": "MailItemsAccessed", "auditLogRecordType": "exchangeItem",
                         "auditData": {"Operation": "MailItemsAccessed"}})
    return rows


def _run(graph: FakeGraph, sources: str, days: int, scale: float, **opts: Any) -> tuple[float, int, list[Any]]:
    client = scaled_client(StaticToken("bench"), scale)
    work = Path(tempfile.mkdtemp(prefix="collect-bench-"))
    col = Collector(client, resolve("global", "bench", graph_url=graph.url), work, START,
                    START + pd.Timedelta(days=days), sources, options=scaled_options(scale, page_size=PAGE, **opts))
    ledger, elapsed = timed_collection(col, client)
    assert all(r["complete"] for r in ledger), "bench collection left gaps"
    return elapsed, sum(r["records"] for r in ledger), ledger


def bench_signins(scale: float, days: int) -> float:
    per_day = 4 * PAGE  # two event types x two full pages per day slice
    records = {"signins": _signins(days, per_day)}
    n, period = POLICY
    with FakeGraph(records, page_delay=SIGNIN_PAGE_S * scale, limits={"auditLogs/": (n, period * scale)}) as g:
        elapsed, got, ledger = _run(g, "signins_interactive,signins_noninteractive", days, scale)
        throttled = g.served(status=429)
    ceiling = n / (period * scale) * PAGE
    rate = got / elapsed
    print(f"sign-ins: {got} records in {elapsed:.2f}s ({rate:.0f}/s scaled); ceiling {ceiling:.0f}/s; "
          f"server 429s {throttled}; waits {sum(r['throttle_wait_s'] for r in ledger):.2f}s")
    ratio = rate / ceiling
    print(f"  ratio of policy ceiling: {ratio:.2f} (goal >= 0.90)")
    return ratio


def bench_audit(scale: float, days: int) -> float:
    records = {"audit_log": _audit(days, 2 * PAGE)}
    with FakeGraph(records, page_delay=SIGNIN_PAGE_S * scale, audit_search_time=AUDIT_SEARCH_S * scale) as g:
        t_one, n_one, _ = _run(g, "audit_log", days, scale, concurrency={"audit_query": 1},
                               audit_operations=("MailItemsAccessed",))
    with FakeGraph(records, page_delay=SIGNIN_PAGE_S * scale, audit_search_time=AUDIT_SEARCH_S * scale) as g:
        t_ours, n_ours, _ = _run(g, "audit_log", days, scale, audit_operations=("MailItemsAccessed",))
    assert n_one == n_ours == len(records["audit_log"])
    speedup = t_one / t_ours
    print(f"audit log ({days} days, {n_ours} records): one query at a time {t_one:.2f}s, "
          f"concurrent slices {t_ours:.2f}s")
    print(f"  speed-up: {speedup:.1f}x (goal >= 5x)")
    return speedup


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.collect_bench")
    p.add_argument("--scale", type=float, default=0.1, help="delay multiplier for sign-ins (default 0.1)")
    p.add_argument("--audit-scale", type=float, default=0.02, help="delay multiplier for the audit log (0.02)")
    p.add_argument("--signin-days", type=int, default=12)
    p.add_argument("--audit-days", type=int, default=30)
    args = p.parse_args(argv)
    print(f"sign-ins at time scale {args.scale}: page {SIGNIN_PAGE_S * args.scale:.3f}s, policy {POLICY[0]} "
          f"requests per {POLICY[1] * args.scale:.2f}s")
    ratio = bench_signins(args.scale, args.signin_days)
    print(f"audit log at time scale {args.audit_scale}: search {AUDIT_SEARCH_S * args.audit_scale:.2f}s per query")
    speedup = bench_audit(args.audit_scale, args.audit_days)
    print(f"collect: sign-in ratio {ratio:.2f} (goal 0.90), audit speed-up {speedup:.1f}x (goal 5x)")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
