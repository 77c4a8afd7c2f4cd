"""detect + scope with the DuckDB and the Spark engine on the same large case, side by side.

``python -m bench spark`` (or ``python -m bench.spark_bench [--events N] [--keep DIR]
[--master local[2]] [--driver-memory 4g]``) builds the synthetic case of bench/detect_bench.py
(default 10 million events), then runs detect + scope once per engine, each in its own process.
Peak memory is the largest resident set of the whole process tree (Spark's JVM is a child of
the Python driver), sampled every 0.2 s. It prints wall time and peak memory of both engines,
the Spark/DuckDB ratios, and whether both found the same mailboxes, addresses and findings.
Spark on one small machine is expected to be slower: the bench shows its cost. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.detect_bench import ensure_case


def _tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(stat[1])
            rss[int(entry.name)] = int((entry / "statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        kids = [pid for pid, ppid in parents.items() if ppid in frontier and pid not in tree]
        tree.update(kids)
        frontier = kids
    return sum(rss.get(pid, 0) for pid in tree)


def _child(engine: str, case_path: str, master: str) -> None:
    """Run detect + scope with one engine in this (child) process; print the result as JSON."""
    from ir_toolkit.analysis.detect import detect
    from ir_toolkit.analysis.scope import scope

    start = time.perf_counter()
    options = {"master": master} if engine == "spark" else {}
    findings = detect(case_path, engine=engine, engine_options=options, write=False)
    doc = scope(case_path, findings=findings, engine=engine, engine_options=options, write=False)
    result = {"seconds": time.perf_counter() - start, "findings": len(findings),
              "by_verdict": doc["findings_by_verdict"], "window": doc["window"],
              "mailboxes": sorted((m["upn"], m["events"], m["items_accessed"]) for m in doc["compromised_mailboxes"]),
              "actor_ips": sorted((i["ip"], i["events"]) for i in doc["actor_ips"])}
    print(json.dumps(result))


def _measure(engine: str, case_path: Path, master: str, driver_memory: str) -> dict[str, Any]:
    env = {**os.environ, "PYSPARK_SUBMIT_ARGS": f"--driver-memory {driver_memory} pyspark-shell"}
    cmd = [sys.executable, "-m", "bench.spark_bench", "--child", engine, str(case_path), "--master", master]
    peak = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(proc.pid))
                done.wait(0.2)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        out, err = proc.communicate()
        done.set()
        watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed: {err.strip().splitlines()[-3:]}")
    result = dict(json.loads(out.strip().splitlines()[-1]))
    result["peak_mb"] = peak / 2**20
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spark_bench")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", metavar="DIR", help="build (or reuse) the case here instead of a temp folder")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--driver-memory", default="6g", help="Spark driver memory (local mode: all of Spark)")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], args.master)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        case_path = ensure_case(Path(args.keep) if args.keep else Path(tmp) / "case", args.events)
        runs = {e: _measure(e, case_path, args.master, args.driver_memory) for e in ("duckdb", "spark")}
        print(f"{'engine':<8} {'wall s':>8} {'peak MB':>9}  findings")
        for name, r in runs.items():
            print(f"{name:<8} {r['seconds']:>8.1f} {r['peak_mb']:>9.0f}  {r['findings']} {r['by_verdict']}")
        duck, spark = runs["duckdb"], runs["spark"]
        print(f"spark / duckdb: time x{spark['seconds'] / max(duck['seconds'], 1e-9):.1f}, "
              f"memory x{spark['peak_mb'] / max(duck['peak_mb'], 1e-9):.1f}  (master {args.master})")
        keys = ("findings", "by_verdict", "window", "mailboxes", "actor_ips")
        same = all(duck[k] == spark[k] for k in keys)
        print(f"same findings, window, mailboxes and actor addresses: {'yes' if same else 'NO'}"
              + ("" if same else f" (differ: {[k for k in keys if duck[k] != spark[k]]})"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
