"""Import benchmark of the issue-15 bulk formats: ours (fast path / per record) against pandas, same run.

Run: ``python -m bench.formats_bench [--records N] [--repeat N] [--keep DIR]`` (default 100,000 records
per file).

Inputs, replicated from tests/data/import with varied ids, users, times and addresses:

* ``graph_activity.csv``: a Log Analytics CSV export of MicrosoftGraphActivityLogs (the fast path
  generated from the graph_activity field map applies);
* ``graph_activity.json``: the same rows as a Log Analytics JSON export (an array of objects);
* ``PT1H.json``: diagnostic-settings lines of the MicrosoftGraphActivityLogs category (per record);
* ``eventhub.json``: the same records as Event Hub bodies (``{"records": [...]}`` of 500 records, one
  body per line, as an Event Hub consumer writes them);
* ``cloudappevents.json``: a Defender advanced hunting API body (``{"Stats", "Schema", "Results"}``) of
  CloudAppEvents rows whose RawEventData are the sample tenant's unified audit log records in turn (82%
  MailItemsAccessed, then FileAccessed, Send, UserLoggedIn ...; mapped in SQL through the UAL map since
  session 7, the shapes it does not map per record);
* ``emailevents.json``: a Defender advanced hunting API body of EmailEvents rows (the generated fast
  path of the email_event map, session 7);
* ``signins_PT1H.json``: diagnostic-settings lines of the five sign-in categories in turn (the generated
  fast path of maps/signin.yaml since session 7);
* ``audits_PT1H.json``: diagnostic-settings lines of the AuditLogs category, four in five initiated by a
  user (its User-Agent in additionalDetails), one by an application (the generated fast path of
  maps/directory_audit.yaml since session 8);
* ``directory_audit_pages.json``: the same AuditLogs records as Graph directoryAudit pages of 1,000, one page
  per line (the generated fast path reads Graph pages since session 9).

Routes, each in its own subprocess (wall time around it, CPU = user + system of the child):
``ours`` (``import_files`` as by default), ``ours per record`` (``fast=False``), and the pandas
baseline (``pd.read_csv`` / ``json.loads`` + ``pd.json_normalize``, then ``to_parquet``). Nothing is
asserted: the figures and ratios are printed.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gzip
import json
import random
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.import_bench import DATA, TENANT, measure

SAMPLE_UAL = TENANT / "purview" / "audit_search_export.csv.gz"

OURS = """
import sys
from ir_toolkit.case import Case
from ir_toolkit.case.importing import import_files
case = Case.init(sys.argv[1], tenant="bench.example")
res = import_files(case, [sys.argv[3]], fast={"auto": None, "never": False}[sys.argv[2]], progress=False)
print(sum(r["imported"] for r in res), sum(r["quarantined"] for r in res))
"""

BASELINE = """
import json, sys
import pandas as pd
out, path = sys.argv[1], sys.argv[2]
if path.endswith(".csv"):
    frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
else:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    records = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x]
    records = [r for d in records for r in (d.get("records") or d.get("Results") or d.get("value") or []
                                            if isinstance(d, dict) and ("records" in d or "Results" in d or
                                                                        "value" in d) else [d])]
    frame = pd.json_normalize(records)
frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
frame.to_parquet(out + "/out.parquet")
print(len(frame), 0)
"""


def make_inputs(folder: Path, n: int, seed: int = 15) -> list[Path]:
    """Write the ten inputs of ``n`` records each; returns their paths."""
    rnd = random.Random(seed)
    users = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(500)]
    text = (DATA / "graph_activity_log_analytics.csv").read_text("utf-8-sig")
    header, *rows = list(csv.reader(text.splitlines()))
    la = folder / "graph_activity.csv"
    with open(la, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n):
            r = list(rows[i % len(rows)])
            r[header.index("RequestId")] = str(uuid.UUID(int=rnd.getrandbits(128)))
            r[header.index("TimeGenerated [UTC]")] = f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.123Z"
            r[header.index("IPAddress")] = f"198.51.{i % 250}.{i % 200}"
            if r[header.index("UserId")]:
                r[header.index("UserId")] = rnd.choice(users)
            w.writerow(r)
    la_json = folder / "graph_activity.json"  # the same rows as a Log Analytics JSON export (an array)
    keys = [h.removesuffix(" [UTC]") for h in header]
    with open(la, encoding="utf-8", newline="") as src, open(la_json, "w", encoding="utf-8") as fh:
        fh.write("[")
        for i, r in enumerate(list(csv.reader(src))[1:]):
            rec: dict[str, object] = dict(zip(keys, r, strict=True))
            rec["ResponseStatusCode"] = int(r[header.index("ResponseStatusCode")] or 0)
            fh.write(("," if i else "") + json.dumps(rec))
        fh.write("]")
    diag = [json.loads(line) for line in (DATA / "diagnostic_entra_PT1H.json").read_text().splitlines()]
    graph = next(d for d in diag if d["category"] == "MicrosoftGraphActivityLogs")
    pt1h = folder / "PT1H.json"
    with open(pt1h, "w", encoding="utf-8") as fh:
        for i in range(n):
            d = copy.deepcopy(graph)
            d["properties"].update(requestId=str(uuid.UUID(int=rnd.getrandbits(128))), userId=rnd.choice(users),
                                   ipAddress=f"203.0.{i % 250}.{i % 200}",
                                   timeGenerated=f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z")
            fh.write(json.dumps(d, separators=(",", ":")) + "\n")
    eventhub = folder / "eventhub.json"
    with open(pt1h, encoding="utf-8") as src, open(eventhub, "w", encoding="utf-8") as fh:
        lines = src.read().splitlines()
        for i in range(0, len(lines), 500):
            fh.write('{"records":[' + ",".join(lines[i:i + 500]) + "]}\n")
    signins = [d for d in diag if d["category"].endswith("SignInLogs")]
    signin_pt1h = folder / "signins_PT1H.json"
    with open(signin_pt1h, "w", encoding="utf-8") as fh:
        for i in range(n):
            d = copy.deepcopy(signins[i % len(signins)])
            d["properties"].update(id=str(uuid.UUID(int=rnd.getrandbits(128))), ipAddress=f"203.0.{i % 250}.{i % 200}",
                                   createdDateTime=f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z")
            fh.write(json.dumps(d, separators=(",", ":")) + "\n")
    audits = _audit_input(folder, n, rnd)
    return [la, la_json, pt1h, eventhub, *_hunting_inputs(folder, n, rnd), signin_pt1h, audits,
            _audit_pages(folder, audits)]


def _audit_pages(folder: Path, lines: Path) -> Path:
    """The AuditLogs records of ``lines`` as Graph directoryAudit pages of 1,000, one per line (each response
    of a paged collection as a collector saves it, ``@odata.nextLink`` after ``value``)."""
    path = folder / "directory_audit_pages.json"
    with open(lines, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as fh:
        records = [json.loads(line)["properties"] for line in src]
        for i in range(0, len(records), 1000):
            fh.write(json.dumps({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits",
                                 "value": records[i:i + 1000],
                                 "@odata.nextLink": f"https://graph.microsoft.com/v1.0/auditLogs/directoryAudits"
                                                    f"?$skiptoken={i}"}, separators=(",", ":")) + "\n")
    return path


def _audit_input(folder: Path, n: int, rnd: random.Random) -> Path:
    """``n`` AuditLogs diagnostic-settings lines: users with their User-Agent, every fifth an application."""
    diag = [json.loads(line) for line in (DATA / "diagnostic_entra_PT1H.json").read_text().splitlines()]
    audit = next(d for d in diag if d["category"] == "AuditLogs")
    ops = ["Consent to application", "Add member to role", "Update user", "Add service principal credentials",
           "Reset password (by admin)"]
    path = folder / "audits_PT1H.json"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            d = copy.deepcopy(audit)
            props = d["properties"]
            props.update(id=f"Directory_{uuid.UUID(int=rnd.getrandbits(128))}", activityDisplayName=ops[i % len(ops)],
                         activityDateTime=f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.123Z")
            if i % 5 == 4:
                props["initiatedBy"] = {"app": {"appId": str(uuid.UUID(int=rnd.getrandbits(128))),
                                                "displayName": "Sync Agent", "servicePrincipalId": str(
                                                    uuid.UUID(int=rnd.getrandbits(128))), "servicePrincipalName": None}}
                props["additionalDetails"] = []
            else:
                user = props["initiatedBy"]["user"]
                user.update(id=str(uuid.UUID(int=rnd.getrandbits(128))), userPrincipalName=f"user{i % 500}@contoso.com",
                            ipAddress=f"203.0.{i % 250}.{i % 200}")
                agent = f"Mozilla/5.0 (Windows NT 10.0) r{i % 97}"
                props["additionalDetails"] = [{"key": "User-Agent", "value": agent},
                                              {"key": "RequestId", "value": str(i)}]
            props["targetResources"][0]["id"] = str(uuid.UUID(int=rnd.getrandbits(128)))
            fh.write(json.dumps(d, separators=(",", ":")) + "\n")
    return path


def _hunting_body(path: Path, rows: Iterator[dict[str, Any]]) -> Path:
    """Write a Defender advanced hunting API body of ``rows`` (one line, as the API returns it)."""
    first = next(rows)
    with open(path, "w", encoding="utf-8") as fh:
        schema = [{"Name": k, "Type": "String"} for k in first]
        fh.write('{"Stats":{"ExecutionTime":1.0},"Schema":' + json.dumps(schema) + ',"Results":[' + json.dumps(first))
        for r in rows:
            fh.write("," + json.dumps(r))
        fh.write("]}")
    return path


def _hunting_inputs(folder: Path, n: int, rnd: random.Random) -> list[Path]:
    """CloudAppEvents around the sample tenant's UAL records, and EmailEvents, as advanced hunting API bodies."""
    outer = json.loads((DATA / "defender_hunting_api.json").read_text())["Results"][0]
    with gzip.open(SAMPLE_UAL, "rt", encoding="utf-8-sig", newline="") as src:
        audit = [r["AuditData"] for r in csv.DictReader(src)]

    def events() -> Iterator[dict[str, Any]]:
        for i in range(n):
            inner = json.loads(audit[i % len(audit)])
            inner["Id"] = str(uuid.UUID(int=rnd.getrandbits(128)))
            inner["CreationTime"] = f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00"
            yield {**outer, "ActionType": inner["Operation"], "ReportId": inner["Id"],
                   "IPAddress": f"192.0.{i % 250}.{i % 200}", "RawEventData": inner}

    emails = list(csv.DictReader((DATA / "defender_email_events.csv").read_text("utf-8-sig").splitlines()))

    def messages() -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {**emails[i % len(emails)], "NetworkMessageId": str(uuid.UUID(int=rnd.getrandbits(128))),
                   "Timestamp": f"2023-06-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"}

    return [_hunting_body(folder / "cloudappevents.json", events()),
            _hunting_body(folder / "emailevents.json", messages())]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.formats_bench")
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--keep", metavar="DIR", help="write inputs and outputs here (default: a temp folder)")
    p.add_argument("--inputs", default="csv,json,pt1h,eventhub,cloudappevents,emailevents,signins,audits,pages",
                   help="which inputs to time (comma-separated: csv, json, pt1h, eventhub, cloudappevents, "
                        "emailevents, signins, audits, pages)")
    args = p.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="formats-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        wanted = {"csv": "graph_activity.csv", "json": "graph_activity.json", "pt1h": "PT1H.json",
                  "eventhub": "eventhub.json", "cloudappevents": "cloudappevents.json",
                  "emailevents": "emailevents.json", "signins": "signins_PT1H.json",
                  "audits": "audits_PT1H.json", "pages": "directory_audit_pages.json"}
        names = {wanted[w.strip()] for w in args.inputs.split(",")}
        inputs = [p for p in make_inputs(folder, args.records) if p.name in names]
        for path in inputs:
            print(f"\n{path.name}: {args.records:,} records, {path.stat().st_size / 1e6:.1f} MB", flush=True)
            medians: dict[str, tuple[float, float]] = {}
            runs: dict[str, list[tuple[float, float, int, str]]] = {"baseline": [], "ours": [], "ours per record": []}
            for k in range(args.repeat):
                for label in runs:
                    out = folder / f"out-{path.stem}-{label.replace(' ', '-')}-{k}"
                    shutil.rmtree(out, ignore_errors=True)
                    if label == "baseline":
                        out.mkdir()
                        runs[label].append(measure(BASELINE, [str(out), str(path)]))
                    else:
                        runs[label].append(measure(OURS, [str(out), "auto" if label == "ours" else "never",
                                                          str(path)]))
                    shutil.rmtree(out, ignore_errors=True)
            for label, rs in runs.items():
                wall, cpu = statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)
                medians[label] = (wall, cpu)
                print(f"  {label:<16} {wall:6.1f} s wall {cpu:6.1f} s CPU  peak {max(r[2] for r in rs) / 1e9:4.2f} GB"
                      f"  (rows/quarantined: {rs[-1][3]})", flush=True)
            b = medians["baseline"]
            for label in ("ours", "ours per record"):
                w, c = medians[label]
                print(f"  {label}: {b[0] / w:.2f}x the baseline's wall time, {b[1] / c:.2f}x its CPU", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
