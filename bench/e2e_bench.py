"""End to end: a tenant's exports to findings, scope, report and the playbook, against a floor.

``python -m bench e2e [--events N] [--keep DIR]`` (default 10,000,000 events) writes a tenant of
N records in Microsoft's export formats (:mod:`bench.tenant_scale`: the sample tenant replicated
with varied users, ids, tokens and addresses, its one intrusion kept; writing is not timed), then
runs each stage as a responder would, each in its own process:

* import:   ``ir-toolkit import CASE FILES...``
* detect:   ``ir-toolkit detect CASE`` (the token-forgery pack)
* scope:    ``ir-toolkit scope CASE``
* report:   ``ir-toolkit report CASE``
* playbook: ``ir-toolkit run token-forgery --case CASE`` (notebooks 01-05 and the report)

For each it prints wall time, CPU time (user + system of the process and every child it waited
for: kernels, DuckDB threads) and peak memory (the largest sum of the resident sets of the
process tree, sampled every 0.2 s from /proc, or the largest single process from ``wait4``
when that is larger). The floor, measured in the same run on the same files: DuckDB reading the
exports into Parquet (``read_json``/``read_csv`` -> ``COPY TO``: what any import must at least do),
and a scan of the canonical columns of the imported store (what any analysis must at least
read). The ratios are import / read floor and every other stage / scan floor. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.tenant_scale import write_tenant

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "ir_toolkit"]

FLOOR_READ = """
import sys, duckdb
out, files = sys.argv[1], sys.argv[2:]
con = duckdb.connect()
js = [f for f in files if f.endswith(".json")]
cs = [f for f in files if f.endswith(".csv")]
for i, f in enumerate(js):
    con.execute("COPY (SELECT * FROM read_json(?, format='array', maximum_object_size=134217728)) TO '"
                + out + f"/j{i}.parquet' (FORMAT parquet)", [f])
for i, f in enumerate(cs):
    con.execute("COPY (SELECT * FROM read_csv(?, header=true, all_varchar=true, max_line_size=134217728)) TO '"
                + out + f"/c{i}.parquet' (FORMAT parquet)", [f])
"""

FLOOR_SCAN = """
import sys
from ir_toolkit.case import Case
from ir_toolkit.schema import EVENT_COLUMN_NAMES
con = Case.open(sys.argv[1]).duckdb()
have = {r[0] for r in con.execute("DESCRIBE events").fetchall()}
cols = [c for c in EVENT_COLUMN_NAMES if c in have and c not in ("raw", "evidence")]
print(con.execute("SELECT count(*), " + ", ".join(f'max(hash("{c}"))' for c in cols) + " FROM events").fetchone()[0])
"""


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and its descendants now (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is ppid (after the state)
        rss[pid] = int(fields[21]) * page  # rss in pages
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def run(label: str, cmd: list[str]) -> dict[str, float | str]:
    """Run ``cmd`` in its own process tree; wall s, CPU s, peak tree RSS bytes and the exit status."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], _tree_rss(proc.pid))

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
        code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()
    row: dict[str, float | str] = {"stage": label, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                                   "peak": max(peak[0], usage.ru_maxrss * 1024), "status": code}
    note = f"  FAILED (exit {code}): {tail[-1] if tail else ''}" if code else ""
    print(f"  {label:<10} {wall:8.1f} s wall {row['cpu']:8.1f} s CPU  peak {float(row['peak']) / 1e9:5.2f} GB"
          f"  load {' '.join(f'{x:.1f}' for x in os.getloadavg())}{note}", file=sys.stderr, flush=True)
    return row


def table(rows: list[dict[str, float | str]], floors: dict[str, float]) -> str:
    """The per-stage table (Markdown) with each stage's ratio to its floor."""
    lines = ["| stage | wall s | CPU s | peak GB | floor | x floor (wall) | x floor (CPU) |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        name = str(r["stage"])
        floor = "" if name.startswith("floor") else "read" if name == "import" else "scan"
        floor = floor if floor in floors else ""  # an import without its read floor
        wall = f"{float(r['wall']) / floors[floor]:.1f}x" if floor else ""
        cpu = f"{float(r['cpu']) / floors[floor + ' cpu']:.1f}x" if floor else ""
        failed = f" (FAILED, exit {r['status']})" if r["status"] else ""
        lines.append(f"| {name}{failed} | {float(r['wall']):.1f} | {float(r['cpu']):.1f} | "
                     f"{float(r['peak']) / 1e9:.2f} | {floor} | {wall} | {cpu} |")
    stages = [r for r in rows if not str(r["stage"]).startswith("floor")]
    lines.append(f"| **total** | **{sum(float(r['wall']) for r in stages):.1f}** | "
                 f"{sum(float(r['cpu']) for r in stages):.1f} | {max(float(r['peak']) for r in stages) / 1e9:.2f} "
                 "| | | |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench e2e", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000, help="records in the tenant (default 10 million)")
    ap.add_argument("--keep", metavar="DIR", help="write the tenant and the case here and keep them (a tenant "
                    "written before for the same --events is reused)")
    ap.add_argument("--stages", default="import,detect,scope,report,playbook",
                    help="comma-separated stages to run (default all; later stages need the earlier ones' case)")
    ap.add_argument("--no-read-floor", dest="read_floor", action="store_false",
                    help="import without the read floor before it (the import then has no ratio)")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="e2e-bench-"))
    try:
        return _run(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, args: argparse.Namespace) -> int:
    tenant, case = work / "tenant", work / "case"
    marker = work / f"tenant-{args.events}.json"
    t = time.perf_counter()
    if marker.exists() and tenant.exists():
        info = json.loads(marker.read_text())
        files = [tenant / f for f in info.pop("names")]
    else:
        shutil.rmtree(tenant, ignore_errors=True)
        files, info = write_tenant(tenant, args.events, progress=args.progress)
        marker.write_text(json.dumps({**info, "names": [f.name for f in files]}))
    print(f"tenant: {info['records']:,} records ({info['users']:,} users, {info['copies']} copies of the sample "
          f"tenant), {info['files']} files, {info['bytes'] / 1e9:.1f} GB, ready in {time.perf_counter() - t:.0f} s",
          file=sys.stderr, flush=True)
    stages = args.stages.split(",")
    rows: list[dict[str, float | str]] = []
    if "import" in stages:  # the read floor is the import's: a run of the later stages alone skips it
        if args.read_floor:
            out = work / "floor"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            rows.append(run("floor read", [sys.executable, "-c", FLOOR_READ, str(out), *map(str, files)]))
            shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(case, ignore_errors=True)
        subprocess.run([*CLI, "case", "init", str(case), "--tenant", "woodgrove-analytics.example"], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        rows.append(run("import", [*CLI, "import", str(case), *map(str, files), "--no-progress"]))
    rows.append(run("floor scan", [sys.executable, "-c", FLOOR_SCAN, str(case)]))
    commands = {"detect": [*CLI, "detect", str(case), "--no-progress"],
                "scope": [*CLI, "scope", str(case)],
                "report": [*CLI, "report", str(case)],
                "playbook": [*CLI, "run", "token-forgery", "--case", str(case)]}
    if "detect" in stages:  # a cold detect: nothing kept from a run before (a new import has the same effect)
        shutil.rmtree(case / "cache", ignore_errors=True)
        for name in ("findings.parquet", "findings.json", "scope.json"):
            (case / name).unlink(missing_ok=True)
    for name, cmd in commands.items():
        if name in stages:
            rows.append(run(name, cmd))
    scan = next(r for r in rows if r["stage"] == "floor scan")
    read = next((r for r in rows if r["stage"] == "floor read"), None)
    floors = {"scan": float(scan["wall"]), "scan cpu": float(scan["cpu"])}
    if read is not None:
        floors.update({"read": float(read["wall"]), "read cpu": float(read["cpu"])})
    print(f"\n{info['records']:,} events, {platform.machine()} {os.cpu_count()} CPUs, "
          f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end\n")
    print(table(rows, floors))
    if (case / "scope.json").exists():
        scope = json.loads((case / "scope.json").read_text())
        print(f"\nscope: {len(scope.get('compromised_mailboxes', []))} compromised mailbox(es), "
              f"{len(scope.get('actor_ips', []))} actor address(es)")
    return 1 if any(r["status"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
