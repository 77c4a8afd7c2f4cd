"""Timeline, actor graph and plot aggregates on a large synthetic case: DuckDB aggregates vs pandas.

Run: ``python -m bench timeline`` (or ``python -m bench.timeline_bench --events 1000000``).
The baseline, measured in the same run, is the naive way: read every event into pandas, then
group there. Prints times and ratios; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _events(n: int, seed: int = 558) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mailboxes = np.array([f"user{i}@contoso.com" for i in range(2000)])
    ips = np.array([f"10.{i // 250}.{i % 250}.7" for i in range(20000)])
    apps = np.array([f"app-{i:04d}" for i in range(50)])
    mb = mailboxes[rng.integers(0, len(mailboxes), n)]
    return pd.DataFrame({
        "time": pd.Timestamp("2023-05-01T00:00Z") + pd.to_timedelta(rng.integers(0, 60 * 86400, n), unit="s"),
        "source": "mail_access", "operation": "MailItemsAccessed", "user": mb, "mailbox": mb,
        "ip": ips[rng.integers(0, len(ips), n)], "app_id": apps[rng.integers(0, len(apps), n)],
        "token_id": [f"tok{i}" for i in rng.integers(0, n // 4 + 1, n)],
        "mail_access_type": np.where(rng.random(n) < 0.3, "Bind", "Sync"), "items": rng.integers(1, 20, n),
        "record_id": [f"r{i}" for i in range(n)], "raw": "{}",
    })


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str]) -> int:
    from ir_toolkit.analysis import aggregates
    from ir_toolkit.analysis.graph import EDGES, build_graph, graph_frames
    from ir_toolkit.analysis.timeline import write_timeline
    from ir_toolkit.case import Case

    parser = argparse.ArgumentParser(prog="bench.timeline_bench")
    parser.add_argument("--events", type=int, default=400_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        case = Case.init(Path(tmp) / "case", tenant="bench.onmicrosoft.com")
        frame = _events(args.events)
        for start in range(0, len(frame), 200_000):
            case.write_events(frame.iloc[start:start + 200_000], tag=f"b{start}")
        del frame
        print(f"case: {args.events} mail access events")

        def pandas_week() -> pd.DataFrame:
            ev = case.read_events()
            t = ev["time"].dt.tz_convert("Asia/Shanghai")
            return ev.groupby([t.dt.dayofweek, t.dt.hour]).size()

        base, _ = _timed(pandas_week)
        duck, _ = _timed(lambda: aggregates.hour_of_week_counts(case, tz="Asia/Shanghai"))
        print(f"hour of week: pandas {base:.2f}s, DuckDB {duck:.2f}s, ratio {base / duck:.1f}x")

        def pandas_edges() -> int:
            ev = case.read_events()
            return sum(len(ev.groupby([a, b]).size()) for a, b in
                       [("ip", "mailbox"), ("user", "ip"), ("ip", "app_id"), ("token_id", "ip"),
                        ("token_id", "mailbox"), ("mailbox", "app_id")])

        base, pairs = _timed(pandas_edges)
        duck, (nodes, edges) = _timed(lambda: graph_frames(case))
        print(f"actor graph counts: pandas (6 of {len(EDGES)} edge kinds) {base:.2f}s ({pairs} pairs); "
              f"DuckDB (all {len(EDGES)} + nodes) {duck:.2f}s ({len(edges)} edges); ratio {base / duck:.1f}x")
        secs, graph = _timed(lambda: build_graph(case))
        print(f"actor graph built (counts + networkx): {secs:.2f}s, {graph.number_of_nodes()} nodes, "
              f"{graph.number_of_edges()} edges")
        secs, rows = _timed(lambda: write_timeline(case, Path(tmp) / "tl.csv", chunk_rows=100_000))
        print(f"timeline CSV: {rows} rows in {secs:.2f}s ({rows / secs:,.0f} rows/s, chunks of 100k)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
