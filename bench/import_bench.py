"""Import benchmark (issue 4): our importer against the obvious pandas route, same data, same run.

Run: ``python -m bench.import_bench [--records N] [--repeat N] [--keep DIR] [--per-record]
[--side-by-side] [--before DIR]`` (default 1,000,000 records: half Purview audit CSV rows, half Graph beta
sign-ins as a JSON array).

The inputs are the sample tenant's records (data/sample-tenant: Graph beta sign-ins of all three
kinds, the Purview CSV's unified audit log records), replicated with varied ids, users, times,
addresses and message ids up to the requested count (the test suite's real-format records when
the sample tenant is missing). Each route runs in its own subprocess; wall time is measured around
it and peak memory is the child's peak RSS from ``os.wait4`` (getrusage of that child).

* ours:      ``Case.import_files([audit.csv, signins.json])`` (copy, hash, stream, canonical Parquet)
* baseline:  ``json.loads`` of the whole file (CSV: ``pd.read_csv`` then ``json.loads`` of each
             AuditData) + ``pd.json_normalize`` + ``DataFrame.to_parquet``
* floor:     a bare DuckDB read of the same files into Parquet (``read_csv`` / ``read_json`` with
             their own type detection, ``write_parquet``, zstd): what reading and writing the bytes
             costs, without evidence, mapping or de-duplication (the goal: ours within 2x of it)

Ours runs as ``Case.import_files`` does by default (big Graph sign-in arrays and Purview CSVs
through the DuckDB fast path, :mod:`ir_toolkit.sources.fastpath`); ``--per-record`` adds a run with
``fast=False`` (every record through the per-record readers and mappers: the route before the fast
path), ``--side-by-side`` one with the two files parsed in two worker processes. Each route runs
``--repeat`` times (default 3), the routes taking turns (``--before DIR``: ours from that checkout's
ir_toolkit too, e.g. a ``git archive`` of the commit before a change: before and after in one run), and
the medians are compared: wall time
depends on what else the machine runs (one run of the same code varied by 20% on the project's
shared 2-CPU machines); CPU time (user + system of the child, its threads and its workers) less so.
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
import statistics
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

FLOOR = """
import sys
import duckdb
out, csv_path, json_path = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.read_csv(csv_path).write_parquet(out + "/audit.parquet", compression="zstd")
con.read_json(json_path, format="array").write_parquet(out + "/signins.parquet", compression="zstd")
print(con.execute("SELECT count(*) FROM read_parquet(?)", [[out + "/audit.parquet", out + "/signins.parquet"]]
                  ).fetchall()[0][0], 0)
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


def make_inputs(folder: Path, n: int, seed: int = 4, signins_too: bool = True) -> tuple[Path, Path]:
    """Write ``n // 2`` audit CSV rows and ``n - n // 2`` sign-ins (none unless ``signins_too``); returns
    (csv, json) paths."""
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
        for i in range(n - n // 2 if signins_too else 0):
            r = copy.deepcopy(signins[i % len(signins)])
            r.update(id=str(uuid.UUID(int=rnd.getrandbits(128))), userPrincipalName=rnd.choice(users),
                     createdDateTime=f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                     ipAddress=f"198.51.{i % 250}.{i % 200}", uniqueTokenIdentifier=f"tok{i}_{rnd.getrandbits(40):x}")
            fh.write(("," if i else "") + json.dumps(r))
        fh.write("]")
    return csv_path, json_path


BEFORE = "ours before (--before DIR, import_files)"
_LIB: list[str] = []  # set by compiled(): where the children import ir_toolkit from


def compiled(folder: Path, source: Path = ROOT) -> Path:
    """Copy ir_toolkit to ``folder`` with its bytecode compiled; the timed children import that copy.

    An installed package has its bytecode written at install time (as pandas, pyarrow and DuckDB have in
    site-packages); the project's checkouts run with ``PYTHONDONTWRITEBYTECODE`` set, so each child
    compiled every ir_toolkit module it imports again (about 0.1 s of start-up CPU). A copy leaves the
    worktree untouched (``PYTHONPYCACHEPREFIX`` would, but it moves every library's bytecode too, and the
    children then compiled pandas and DuckDB from source).
    """
    lib = folder / "lib"
    shutil.rmtree(lib, ignore_errors=True)
    shutil.copytree(source / "ir_toolkit", lib / "ir_toolkit", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(lib)], check=True, stdout=subprocess.DEVNULL)
    if source == ROOT:
        _LIB[:] = [str(lib)]
    return lib


def child_env(lib: Path | None = None) -> dict[str, str]:
    """The timed children's environment: ir_toolkit from ``lib`` or :func:`compiled`'s copy when made (the
    children run in that folder, so that it comes first), else the checkout."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib)] if lib else [*_LIB, str(ROOT)])}


def measure(code: str, args: list[str], lib: Path | None = None) -> tuple[float, float, int, str]:
    """Run ``python -c code args`` as a child (ir_toolkit from ``lib``, a :func:`compiled` copy, when given);
    returns (wall s, CPU s, peak RSS bytes, stdout)."""
    env = child_env(lib)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, env=env,
                            cwd=lib or (_LIB[0] if _LIB else ROOT))
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        out = f"FAILED (exit {proc.returncode})"
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.strip()


def _summary(label: str, runs: list[tuple[float, float, int, str]]) -> tuple[float, float, int]:
    """Print one route's runs; returns its median wall, median CPU and largest peak."""
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    rss = max(r[2] for r in runs)
    each = ", ".join(f"{r[0]:.1f}" for r in runs)
    print(f"{label:<51} {wall:7.1f} s wall {cpu:7.1f} s CPU  peak {rss / 1e9:5.2f} GB  (median of {len(runs)}; "
          f"wall each: {each}; rows/quarantined: {runs[-1][3]})", flush=True)
    return wall, cpu, rss


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.import_bench")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3, help="runs of each route, alternating (the medians are compared)")
    p.add_argument("--keep", metavar="DIR", help="write inputs and outputs here and reuse inputs made before "
                   "(default: a temp folder)")
    p.add_argument("--side-by-side", action="store_true", help="also time the two files parsed in two worker "
                   "processes")
    p.add_argument("--per-record", action="store_true", help="also time ours with the fast path off")
    p.add_argument("--before", metavar="DIR", help="also time ours from the ir_toolkit of this checkout (e.g. "
                   "a `git archive` of the commit before a change), taking turns with the others")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp).resolve()
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
              f"{time.perf_counter() - t:.1f}s; load average {os.getloadavg()[0]:.1f} (1 min) before the runs",
              flush=True)
        base_dir = work / "baseline"
        base_dir.mkdir(exist_ok=True)
        compiled(work / "code")
        before = compiled(work / "before", Path(args.before).resolve()) if args.before else None
        routes = [("baseline", 0, ""), ("floor", 0, ""), ("ours, one process (import_files)", 1, "auto")]
        if before:
            routes.append((BEFORE, 1, "auto"))
        if args.per_record:
            routes.append(("ours, per-record path only (import_files)", 1, "never"))
        if args.side_by_side:
            routes.append(("ours, files side by side (import_files)", 2, "auto"))
        runs: dict[str, list[tuple[float, float, int, str]]] = {label: [] for label, _, _ in routes}
        for i in range(args.repeat):  # alternate the routes, so a change in the machine's load hits all of them
            for label, workers, fast in routes:
                if not workers:
                    run = measure(BASELINE if label == "baseline" else FLOOR,
                                  [str(base_dir), str(csv_path), str(json_path)])
                else:
                    shutil.rmtree(work / "case", ignore_errors=True)
                    run = measure(OURS, [str(work / "case"), str(workers), fast, str(csv_path), str(json_path)],
                                  before if label == BEFORE else None)
                runs[label].append(run)
                print(f"  run {i + 1}: {label:<45} {run[0]:7.1f} s wall {run[1]:7.1f} s CPU  "
                      f"peak {run[2] / 1e9:5.2f} GB", flush=True)
        b_s, b_cpu, b_rss = _summary("baseline (json.loads + json_normalize + to_parquet)", runs["baseline"])
        f_s, f_cpu, _ = _summary("floor (bare DuckDB read_csv/read_json -> Parquet)", runs["floor"])
        for label, _, _ in routes[2:]:
            o_s, o_cpu, o_rss = _summary(label, runs[label])
            print(f"  speed-up: {b_s / o_s:.2f}x wall, {b_cpu / o_cpu:.2f}x CPU (goal >= 3x in both)   peak memory: "
                  f"{o_rss / b_rss:.2f} of the baseline's (goal < 1)", flush=True)
            print(f"  against the floor: {o_s / f_s:.2f}x its wall, {o_cpu / f_cpu:.2f}x its CPU (goal <= 2x)",
                  flush=True)
        if before:
            mine, theirs = (statistics.median(r[1] for r in runs[k]) for k in (routes[2][0], BEFORE))
            print(f"ours against before: {mine / theirs:.3f}x its CPU (median of each)", flush=True)
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (1 min) at the end, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU = user + system time of the child and "
              "its workers; peak = largest resident set of one process")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
