"""Shared set-up for the collection tests: fast clients, collected ids, expected ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ir_toolkit.sources.graph.auth import StaticToken
from ir_toolkit.sources.graph.checkpoint import read_lines
from ir_toolkit.sources.graph.client import GraphClient
from ir_toolkit.sources.graph.collector import Collector, Options
from ir_toolkit.sources.graph.endpoints import resolve
from tests.fakes.records import make_records

FAST_POLICIES = {"reports": (5, 0.05), "identity_protection": (1, 0.005), "directory": (100, 0.05),
                 "audit_query": (50, 0.05)}
RECORDS = make_records()
SINCE, UNTIL = "2023-06-01", "2023-06-04"


def fast_client(token: str = "t", **kw: Any) -> GraphClient:
    """A client with tiny pacing windows and backoff (no real-second waits)."""
    kw.setdefault("policies", FAST_POLICIES)
    kw.setdefault("backoff_base", 0.002)
    kw.setdefault("backoff_cap", 0.02)
    return GraphClient(StaticToken(token), **kw)


def fast_options(**kw: Any) -> Options:
    """Collector options with millisecond polling."""
    kw.setdefault("poll_interval", 0.002)
    kw.setdefault("poll_cap", 0.01)
    return Options(**kw)


def collector(graph_url: str, work: Path, sources: str | None = None, client: GraphClient | None = None,
              **opts: Any) -> Collector:
    """A Collector against a fake Graph root."""
    return Collector(client or fast_client(), resolve("global", "contoso", graph_url=graph_url), work, SINCE, UNTIL,
                     sources, options=fast_options(**opts))


def collect(graph_url: str, work: Path, sources: str | None = None, client: GraphClient | None = None,
            **opts: Any) -> list[dict[str, Any]]:
    """Run a collection to its end and close the client; returns the ledger."""
    col = collector(graph_url, work, sources, client, **opts)
    try:
        return col.run()
    finally:
        col.client.close()


def collected(folder: Path, source: str) -> list[str]:
    """Every record id in the finished slice files of ``source`` under ``folder`` (with repeats)."""
    return [r["id"] for f in sorted(folder.rglob(f"*{source}_*.jsonl.gz")) for r in read_lines(f)]
