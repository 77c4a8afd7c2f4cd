"""detect and scope on a large case, beside a bare DuckDB scan of the same Parquet store (the floor).

``python -m bench detect`` (or ``python -m bench.detect_bench [--events N] [--keep DIR] [--json]``)
writes a synthetic case of N canonical events (default 10 million: sign-ins of every type,
MailItemsAccessed with issued tokens, audit records, and a forged-token actor whose orphan tokens
fall inside sign-in coverage, so scope pivots), then runs each stage in its own process so its
wall time, CPU time and peak resident memory are measured alone:

* floor: DuckDB reading every column the detections read (one aggregate per column);
* detect: the token-forgery pack (``ir-toolkit detect``);
* scope: the scoping in a fresh process after detect, reading CASE/findings.parquet (``ir-toolkit scope``);
* detect+scope: both in one process, as a notebook runs them.

It prints the figures and their ratios to the floor. Goals (issues 7 and 14): scope costs no more
than detect, detect + scope under 60 s and under 4 GB on a 2-core machine. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ir_toolkit.schema import EVENT_SCHEMA

CHUNK = 1_000_000
USERS = 3000
DAYS = 60
T0 = np.datetime64("2023-05-01T00:00:00", "us")
COLUMNS = ("time", "source", "result", "user", "mailbox", "app_id", "client_app_id", "ip", "country", "asn",
           "user_agent", "session_id", "token_id", "token_issued_at", "mail_access_type", "message_ids",
           "throttled", "operation", "target", "record_id")


def _strings(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), pa.array(numbers).cast(pa.string()), "")


def _chunk(seq: int, n: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """One chunk of events: per source tables with the canonical schema."""
    base = seq * n
    kinds = rng.choice(5, size=n, p=[0.14, 0.36, 0.01, 0.45, 0.04])
    users = rng.integers(0, USERS, size=n)
    secs = rng.integers(0, DAYS * 86400, size=n)
    times = T0 + secs.astype("timedelta64[s]")
    # Tokens: sign-in k issues t{k}; mail access uses a token of a sign-in of the same chunk.
    user_signins = np.flatnonzero(kinds < 2)
    token_no = base + np.where(kinds == 3, rng.choice(user_signins, size=n), np.arange(n))
    ip_no = users % 250
    out: dict[str, pa.Table] = {}
    names = ["signin_interactive", "signin_noninteractive", "signin_serviceprincipal", "mail_access", "audit_other"]
    for k, source in enumerate(names):
        idx = np.flatnonzero(kinds == k)
        m = len(idx)
        u = users[idx]
        upn = _strings("user", u)
        upn = pc.binary_join_element_wise(upn, pa.scalar("@contoso.com"), "")
        ip = pc.binary_join_element_wise(pa.scalar("10.1."), _strings("", ip_no[idx]),
                                         pa.scalar("."), _strings("", u // 250), "")
        cols: dict[str, pa.Array] = {
            "time": pa.array(times[idx]).cast(pa.timestamp("us", tz="UTC")),
            "source": pa.array([source] * m, pa.string()),
            "result": pa.array(["success"] * m, pa.string()),
            "user": upn, "ip": ip,
            "app_id": pa.array(np.where(rng.random(m) < 0.8, "app-outlook", "app-teams"), pa.string()),
            "user_agent": pa.array(["Mozilla/5.0 (Windows NT 10.0) Outlook"] * m, pa.string()),
            "record_id": _strings(f"r{k}-", base + idx),
        }
        if k < 3:
            cols["operation"] = pa.array(["Sign-in"] * m, pa.string())
            cols["token_id"] = _strings("t", token_no[idx])
            cols["session_id"] = _strings("s", token_no[idx] // 4)
        if k == 2:
            cols["user"] = pa.array(["backupsvc"] * m, pa.string())
            cols["app_id"] = pa.array(["app-backup"] * m, pa.string())
            cols["ip"] = pa.array(["192.0.2.50"] * m, pa.string())
        if k == 3:
            with_ids = rng.random(m) < 0.98
            cols["operation"] = pa.array(["MailItemsAccessed"] * m, pa.string())
            cols["mailbox"] = upn
            cols["token_id"] = pc.if_else(pa.array(with_ids), _strings("t", token_no[idx]), pa.nulls(m, pa.string()))
            bind = rng.random(m) < 0.7
            cols["mail_access_type"] = pa.array(np.where(bind, "Bind", "Sync"), pa.string())
            offsets = np.concatenate([[0], np.cumsum(np.where(bind, 2, 0))]).astype(np.int32)
            values = _strings("<m", np.repeat(base + idx, np.where(bind, 2, 0)) * 2 + np.tile([0, 1], int(bind.sum())))
            cols["message_ids"] = pa.ListArray.from_arrays(pa.array(offsets), values)
            cols["throttled"] = pa.array(np.zeros(m, dtype=bool))
        if k == 4:
            cols["operation"] = pa.array(np.where(rng.random(m) < 0.999, "Send", "New-InboxRule"), pa.string())
            cols["target"] = pa.array(["rule"] * m, pa.string())
        cols["raw"] = pa.array(["{}"] * m, pa.string())
        table = pa.table({f.name: cols.get(f.name, pa.nulls(m, f.type)) for f in EVENT_SCHEMA}, schema=EVENT_SCHEMA)
        out[source] = table
    return out


def _actor(n: int) -> pa.Table:
    """The forged-token actor: n mail accesses with tokens no sign-in issued, from two proxies."""
    i = np.arange(n)
    upn = pc.binary_join_element_wise(_strings("user", i % 7), pa.scalar("@contoso.com"), "")
    times = np.datetime64("2023-06-10T01:00:00", "us") + (i * 600).astype("timedelta64[s]")
    cols = {
        "time": pa.array(times).cast(pa.timestamp("us", tz="UTC")),
        "source": pa.array(["mail_access"] * n), "operation": pa.array(["MailItemsAccessed"] * n),
        "result": pa.array(["success"] * n),
        "user": upn, "mailbox": upn,
        "app_id": pa.array(["app-actor"] * n), "ip": pa.array(np.where(i % 2, "203.0.113.9", "203.0.113.10")),
        "user_agent": pa.array(["Client=REST;Client=RESTSystem;;"] * n), "token_id": _strings("forged", i // 10),
        "mail_access_type": pa.array(["Bind"] * n),
        "message_ids": pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), _strings("<a", i)),
        "record_id": _strings("actor-", i), "raw": pa.array(["{}"] * n),
    }
    return pa.table({f.name: cols.get(f.name, pa.nulls(n, f.type)) for f in EVENT_SCHEMA}, schema=EVENT_SCHEMA)


def build_case(path: Path, events: int) -> None:
    """Write a synthetic case of about ``events`` events straight into the Parquet store."""
    from ir_toolkit.case import Case

    case = Case.init(path, tenant="bench.onmicrosoft.com")
    rng = np.random.default_rng(558)
    for seq in range(max(1, events // CHUNK)):
        for source, table in _chunk(seq, min(CHUNK, events), rng).items():
            folder = case.events.root / source
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"part-{seq:05d}.parquet", compression="zstd")
    pq.write_table(_actor(2000), case.events.root / "mail_access" / "part-actor.parquet", compression="zstd")


def ensure_case(case_path: Path, events: int) -> Path:
    """Build the synthetic case at ``case_path`` unless a case is already there (``--keep`` reuse)."""
    if not (case_path / "case.json").exists():
        t = time.perf_counter()
        build_case(case_path, events)
        print(f"built {events:,} events in {time.perf_counter() - t:.1f} s at {case_path}")
    return case_path


STAGES = ("floor", "detect", "scope", "detect+scope")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(mode: str, case_path: str) -> None:
    """Run one measured stage in this (child) process and print its result as JSON.

    ``scope`` runs as ``ir-toolkit scope`` does after ``ir-toolkit detect``: a fresh process that reads
    CASE/findings.parquet (so ``detect`` must have run); ``detect+scope`` runs both in one process.
    """
    start, cpu = time.perf_counter(), _cpu()
    result: dict[str, Any] = {}
    if mode == "floor":
        import duckdb

        con = duckdb.connect()
        glob = str(Path(case_path) / "events" / "*" / "*.parquet")
        aggs = ", ".join(f"count({c})" for c in COLUMNS)
        con.sql(f"SELECT {aggs} FROM read_parquet('{glob}', union_by_name=true)").fetchall()
    else:
        from ir_toolkit.analysis.detect import detect
        from ir_toolkit.analysis.scope import scope

        findings = detect(case_path) if mode in ("detect", "detect+scope") else None
        if mode != "detect":
            doc = scope(case_path, findings=findings)
            result = {"findings": sum(doc["findings_by_verdict"].values()), "by_verdict": doc["findings_by_verdict"],
                      "mailboxes": len(doc["compromised_mailboxes"]),
                      "actor_ips": [i["ip"] for i in doc["actor_ips"]], "pivots": len(doc["pivots"]),
                      "events_confirmed": doc["events_confirmed"]}
    result["seconds"] = time.perf_counter() - start
    result["cpu"] = _cpu() - cpu
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


def _measure(mode: str, case_path: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.detect_bench", "--child", mode, str(case_path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM, load {os.getloadavg()[0]:.1f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detect_bench")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", metavar="DIR", help="build (or reuse) the case here instead of a temp folder")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        case_path = ensure_case(Path(args.keep) if args.keep else Path(tmp) / "case", args.events)
        machine = _machine()
        runs = {stage: _measure(stage, case_path) for stage in STAGES}
    if args.json:
        print(json.dumps({"events": args.events, "machine": machine, "stages": runs}))
        return 0
    floor, detect, scope, both = (runs[s] for s in STAGES)
    print(f"machine: {machine}")
    print(f"{'stage (own process)':<22}{'wall s':>8}{'cpu s':>8}{'peak MB':>9}{'wall/floor':>12}{'peak/floor':>12}")
    for stage, run in runs.items():
        label = "floor (bare scan)" if stage == "floor" else stage
        wall_x, peak_x = run["seconds"] / max(floor["seconds"], 1e-9), run["peak_mb"] / max(floor["peak_mb"], 1e-9)
        print(f"{label:<22}{run['seconds']:>8.1f}{run['cpu']:>8.1f}{run['peak_mb']:>9.0f}{wall_x:>12.1f}{peak_x:>12.1f}")
    print(f"floor: DuckDB count() of {len(COLUMNS)} columns the detections read, over the same Parquet store")
    print(f"result: {both['findings']} findings {both['by_verdict']}, {both['mailboxes']} mailboxes, "
          f"{both['events_confirmed']} confirmed events, {both['pivots']} pivots, actor ips {both['actor_ips']}")
    print(f"scope / detect: wall x{scope['seconds'] / max(detect['seconds'], 1e-9):.2f}, "
          f"cpu x{scope['cpu'] / max(detect['cpu'], 1e-9):.2f}  (goal: <= 1)")
    print(f"detect + scope: {both['seconds']:.1f} s, peak {both['peak_mb']:.0f} MB  (goal: < 60 s, < 4096 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
