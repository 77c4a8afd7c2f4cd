"""Timing shared by the collection benches (:mod:`bench.collect_bench`, :mod:`bench.query_collect_bench`)."""

from __future__ import annotations

import time
from typing import Any

from ir_toolkit.sources.graph.collector import Collector


def timed_collection(collector: Collector, client: Any) -> tuple[list[dict[str, Any]], float]:
    """Run a collection and close its client; returns (the ledger, seconds it took)."""
    t0 = time.perf_counter()
    try:
        ledger = collector.run()
    finally:
        client.close()
    return ledger, time.perf_counter() - t0
