"""Import benchmark (issue 4): our importer against the obvious pandas route, same data, same run.

Run: ``python -m bench.import_bench [--records N] [--keep DIR] [--side-by-side]`` (default 1,000,000 records: half
Purview audit CSV rows, half Graph beta sign-ins as a JSON array).

The inputs are the sample tenant's records (data/sample-tenant: Graph beta sign-ins of all three
kinds, the Purview CSV's unified audit log records), replicated with varied ids, users, times,
addresses and message ids up to the requested count (the test suite's real-format records when
the sample tenant is missing). Each route runs in its own subprocess; wall time is measured around
it and peak memory is the child's peak RSS from ``os.wait4`` (getrusage of that child).

* ours:      ``Case.import_files([audit.csv, signins.json])`` (copy, hash, stream, canonical Parquet)
* baseline:  ``json.loads`` of the whole file (CSV: ``pd.read_csv`` then ``json.loads`` of each
             AuditData) + ``pd.json_normalize`` + ``DataFrame.to_parquet``

Ours runs twice: as ``Case.import_files`` does by default (big Graph sign-in arrays and Purview CSVs
through the DuckDB fast path, :mod:`ir_toolkit.sources.fastpath`), and with ``fast=False`` (every
record through the per-record readers and mappers: the route before the fast path);
``--side-by-side`` adds a run with the two files parsed in two worker processes. Wall time depends
on what else the machine runs (the load average is printed); CPU time (user + system of the child,
its threads and its workers) much less so.
Nothing is asserted: the figures and ratios are printed.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "import"
TENANT = ROOT / "data" / "sample-tenant"

OURS = """
import sys
from ir_toolkit.case import Case
from ir_toolkit.case.importing import import_files
case = Case.init(sys.argv[1], tenant="bench.example")
workers = int(sys.argv[2]) or None
fast = {"auto": None, "never": False}[sys.argv[3]]
res = import_files(case, sys.argv[4:], workers=workers, fast=fast)
print(sum(r["imported"] for r in res), sum(r["quarantined"] for r in res))
"""

BASELINE = """
import json, sys
import pandas as pd
out, csv_path, json_path = sys.argv[1], sys.argv[2], sys.argv[3]
rows = pd.read_csv(csv_path, encoding="utf-8-sig")
audit = pd.json_normalize([json.loads(a) for a in rows["AuditData"]])
audit = audit.astype({c: str for c in audit.columns if audit[c].dtype == object})
audit.to_parquet(out + "/audit.parquet")
with open(json_path, encoding="utf-8") as fh:
    records = json.loads(fh.read())
signins = pd.json_normalize(records)
signins = signins.astype({c: str for c in signins.columns if signins[c].dtype == object})
signins.to_parquet(out + "/signins.parquet")
print(len(audit) + len(signins), 0)
"""


def _templates() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Sign-in and audit records to replicate: the sample tenant's own, else the test inputs."""
    if (TENANT / "answer_key.json").exists():
        signins = [r for f in sorted((TENANT / "entra").glob("signins_*/page-*.json.gz"))
                   for r in json.loads(gzip.decompress(f.read_bytes()))["value"]]
        with gzip.open(TENANT / "purview" / "audit_search_export.csv.gz", "rt", encoding="utf-8-sig", newline="") as fh:
            audit = [json.loads(row["AuditData"]) for row in csv.DictReader(fh)]
        return signins, audit, "data/sample-tenant (its sign-in pages and Purview CSV rows)"
    signins = [r for n in ("graph_signins_beta.json", "graph_signins_v1.json")
               for r in json.loads((DATA / n).read_text())["value"]]
    audit = [json.loads(row["AuditData"]) for row in
             csv.DictReader((DATA / "purview_current.csv").open(encoding="utf-8-sig", newline=""))]
    audit += json.loads((DATA / "management_api.json").read_text())
    return signins, audit, "tests/data/import"


def make_inputs(folder: Path, n: int, seed: int = 4) -> tuple[Path, Path]:
    """Write ``n // 2`` audit CSV rows and ``n - n // 2`` sign-ins; returns (csv, json) paths."""
    rnd = random.Random(seed)
    signins, audit, origin = _templates()
    print(f"templates: {len(signins):,} sign-ins and {len(audit):,} audit records from {origin}", flush=True)
    users = [f"user{i:04d}@contoso.com" for i in range(2000)]
    csv_path, json_path = folder / "audit.csv", folder / "signins.json"
    with open(csv_path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData",
                    "AssociatedAdminUnits", "AssociatedAdminUnitsNames"])
        for i in range(n // 2):
            r = copy.deepcopy(audit[i % len(audit)])
            user = rnd.choice(users)
            when = f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}"
            r.update(Id=str(uuid.UUID(int=rnd.getrandbits(128))), CreationTime=when, UserId=user)
            if r.get("Operation") == "MailItemsAccessed":
                r["MailboxOwnerUPN"] = user
                r["ClientIPAddress"] = f"203.0.{i % 250}.{i % 200}:{1024 + i % 5000}"
                for folder_ in r.get("Folders", []):
                    for item in folder_.get("FolderItems", []):
                        item["InternetMessageId"] = f"<m{i}.{rnd.getrandbits(32)}@contoso.com>"
            w.writerow([r["Id"], when + ".0000000Z ", r.get("RecordType", 50), r["Operation"], user,
                        json.dumps(r), "", ""])
    with open(json_path, "w", encoding="utf-8") as fh:
        fh.write("[")
        for i in range(n - n // 2):
            r = copy.deepcopy(signins[i % len(signins)])
            r.update(id=str(uuid.UUID(int=rnd.getrandbits(128))), userPrincipalName=rnd.choice(users),
                     createdDateTime=f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                     ipAddress=f"198.51.{i % 250}.{i % 200}", uniqueTokenIdentifier=f"tok{i}_{rnd.getrandbits(40):x}")
            fh.write(("," if i else "") + json.dumps(r))
        fh.write("]")
    return csv_path, json_path


def measure(code: str, args: list[str]) -> tuple[float, float, int, str]:
    """Run ``python -c code args`` as a child; returns (wall s, CPU s, peak RSS bytes, stdout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        out = f"FAILED (exit {proc.returncode})"
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.strip()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.import_bench")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--keep", metavar="DIR", help="write inputs and outputs here and reuse inputs made before "
                   "(default: a temp folder)")
    p.add_argument("--side-by-side", action="store_true", help="also time the two files parsed in two worker "
                   "processes")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        csv_path, json_path = work / "audit.csv", work / "signins.json"
        marker = work / f"inputs-{args.records}"
        if not (args.keep and marker.exists() and csv_path.exists() and json_path.exists()):
            csv_path, json_path = make_inputs(work, args.records)
            marker.touch()
        size = (csv_path.stat().st_size + json_path.stat().st_size) / 1e6
        print(f"inputs: {args.records:,} records ({args.records // 2:,} audit CSV rows, "
              f"{args.records - args.records // 2:,} sign-ins JSON), {size:,.0f} MB, made in "
              f"{time.perf_counter() - t:.1f}s", flush=True)
        base_dir = work / "baseline"
        base_dir.mkdir(exist_ok=True)
        shutil.rmtree(work / "case", ignore_errors=True)
        b_s, b_cpu, b_rss, b_out = measure(BASELINE, [str(base_dir), str(csv_path), str(json_path)])
        print(f"baseline (json.loads + json_normalize + to_parquet): {b_s:7.1f} s wall {b_cpu:7.1f} s CPU  "
              f"peak {b_rss / 1e9:5.2f} GB  rows/quarantined: {b_out}", flush=True)
        runs = [(1, "auto", "ours, one process"), (1, "never", "ours, per-record path only")]
        if args.side_by_side:
            runs.append((2, "auto", "ours, files side by side"))
        for workers, fast, label in runs:
            shutil.rmtree(work / "case", ignore_errors=True)
            o_s, o_cpu, o_rss, o_out = measure(OURS, [str(work / "case"), str(workers), fast, str(csv_path),
                                                      str(json_path)])
            print(f"{label + ' (import_files)':<51} {o_s:7.1f} s wall {o_cpu:7.1f} s CPU  "
                  f"peak {o_rss / 1e9:5.2f} GB  imported/quarantined: {o_out}", flush=True)
            print(f"  speed-up: {b_s / o_s:.2f}x wall, {b_cpu / o_cpu:.2f}x CPU (goal >= 3x)   peak memory: "
                  f"{o_rss / b_rss:.2f} of the baseline's (goal < 1)   load average: {os.getloadavg()[0]:.1f}",
                  flush=True)
        print(f"machine: {os.cpu_count()} CPUs; CPU = user + system time of the child and its workers; "
              "peak = largest resident set of one process")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
