"""Collection from a Log Analytics workspace and Defender advanced hunting, against a local HTTPS fake:
completeness, faults (429 Retry-After, 503, dropped connections), row-limit splitting, table fallback,
kill -9 and resume, the ledger, and a collected case identical to importing the same rows from a file."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.coverage import ledger_coverage
from ir_toolkit.case import Case
from ir_toolkit.sources.graph.checkpoint import read_lines
from ir_toolkit.sources.graph.collector import Collector
from ir_toolkit.sources.graph.endpoints import resolve
from ir_toolkit.sources.graph.slicing import Slice
from ir_toolkit.sources.kql.rows import la_rows, partial_error, slice_query
from ir_toolkit.sources.kql.runner import QueryRunner
from ir_toolkit.sources.kql.sources import DEFENDER, LOG_ANALYTICS
from tests.collect_helpers import SINCE, UNTIL, fast_client, fast_options
from tests.conftest import ROOT, cli
from tests.fakes.authority import FakeAuthority
from tests.fakes.query_records import make_hunting_rows, make_la_rows, row_id
from tests.fakes.query_server import FakeQueryService

WS = "1a2b3c4d-0000-4000-8000-00000000abcd"
LA = make_la_rows()
HUNT = make_hunting_rows()
SECRET = "query-s3cret"


def _ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row_id(r) for r in rows}


def _collector(svc: FakeQueryService, work: Path, backend: str, sources: str | None = None,
               row_limit: int | None = None, **opts: Any) -> Collector:
    ep = resolve("global", "contoso", graph_url=svc.url, log_analytics_url=svc.la_url)
    registry = LOG_ANALYTICS if backend == "log-analytics" else DEFENDER
    runner = QueryRunner(ep, WS if backend == "log-analytics" else None)
    if row_limit is not None:
        registry = {k: replace(v, row_limit=row_limit) for k, v in registry.items()}
    return Collector(fast_client(verify=str(svc.ca_file)), ep, work, SINCE, UNTIL, sources,
                     options=fast_options(**opts), registry=registry, runner=runner)


def _run(col: Collector) -> list[dict[str, Any]]:
    try:
        return col.run()
    finally:
        col.client.close()


def _collected(work: Path, source: str) -> list[str]:
    return [row_id(r) for f in sorted((work / source).glob("*.jsonl.gz")) for r in read_lines(f)]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[FakeQueryService]:
    with FakeQueryService(LA, HUNT, workspaces=(WS,), folder=tmp_path) as s:
        yield s


# ----- pure parts --------------------------------------------------------------------------------
def test_answers_become_row_objects_and_partial_results_are_seen() -> None:
    body = {"tables": [{"name": "PrimaryResult", "columns": [{"name": "A", "type": "string"}, {"name": "B"}],
                        "rows": [["x", 1], ["y", None]]}]}
    assert la_rows(body) == [{"A": "x", "B": 1}, {"A": "y", "B": None}]
    assert partial_error(body) is None
    body["error"] = {"code": "PartialError", "details": [{"innererror": {"message": "E_QUERY_RESULT_SET_TOO_LARGE"}}]}
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in str(partial_error(body))
    sl = Slice("SigninLogs", pd.Timestamp("2023-06-01", tz="UTC"), pd.Timestamp("2023-06-02", tz="UTC"))
    assert slice_query("SigninLogs", "TimeGenerated", sl) == (
        "SigninLogs | where TimeGenerated >= datetime(2023-06-01T00:00:00.0000000Z) and "
        "TimeGenerated < datetime(2023-06-02T00:00:00.0000000Z) | order by TimeGenerated asc")


@pytest.mark.parametrize("cloud,la", [("global", "https://api.loganalytics.io"),
                                      ("usgov", "https://api.loganalytics.us"),
                                      ("usgovdod", "https://api.loganalytics.us"),
                                      ("china", "https://api.loganalytics.azure.cn")])
def test_every_cloud_has_a_log_analytics_root_and_hunting_goes_through_graph(cloud: str, la: str) -> None:
    ep = resolve(cloud, "contoso")
    assert ep.log_analytics_root == la and ep.log_analytics_scope == f"{la}/.default"
    runner = QueryRunner(ep, WS)
    assert runner.root == la and QueryRunner(ep).root == ep.graph_root
    assert runner.url(LOG_ANALYTICS["SigninLogs"]) == f"{la}/v1/workspaces/{WS}/query"
    assert runner.url(DEFENDER["CloudAppEvents"]) == f"{ep.graph_root}/v1.0/security/runHuntingQuery"


# ----- completeness and faults -------------------------------------------------------------------
def test_every_log_analytics_table_collected_exactly_with_ledger(svc: FakeQueryService, tmp_path: Path) -> None:
    ledger = _run(_collector(svc, tmp_path / "w", "log-analytics"))
    for table, rows in LA.items():
        got = _collected(tmp_path / "w", table)
        assert len(got) == len(set(got)) and set(got) == _ids(rows), table
    assert ledger and all(r["complete"] and r["gap"] is None for r in ledger)
    assert {r["source"] for r in ledger} == set(LA) and len(ledger) == 3 * len(LA)  # one slice per day
    row = next(r for r in ledger if r["source"] == "SigninLogs")
    assert row["requested"]["query"].startswith("SigninLogs | where TimeGenerated >= datetime(2023-06-01")
    assert row["requested"]["url"].endswith(f"/v1/workspaces/{WS}/query") and row["canonical_source"] == \
        "signin_interactive"
    cov = ledger_coverage(ledger)
    assert set(cov) == {"signin_interactive", "signin_noninteractive", "signin_serviceprincipal",
                        "signin_managedidentity"}  # Graph activity and audits never count as sign-in coverage


def test_throttling_503_and_dropped_connections_are_survived(svc: FakeQueryService, tmp_path: Path) -> None:
    faults = [svc.inject("429", path="/query", nth=1, times=2, retry_after=0.01),
              svc.inject("503", path="/query", nth=4), svc.inject("drop", path="/query", nth=6),
              svc.inject("truncate", path="/query", nth=8)]  # half an answer: unreadable JSON, asked again
    ledger = _run(_collector(svc, tmp_path / "w", "log-analytics", "SigninLogs,AuditLogs"))
    assert [f.fired for f in faults] == [2, 1, 1, 1]
    assert all(r["complete"] for r in ledger)
    for table in ("SigninLogs", "AuditLogs"):
        assert set(_collected(tmp_path / "w", table)) == _ids(LA[table])
    assert svc.served(status=429) == 2 and svc.served(status=503) == 1
    assert sum(r["retries"] for r in ledger) >= 4 and sum(r["throttle_wait_s"] for r in ledger) >= 0.02


def test_a_query_over_the_row_limit_splits_its_slice(tmp_path: Path) -> None:
    with FakeQueryService(LA, HUNT, workspaces=(WS,), folder=tmp_path, la_row_limit=25) as svc:
        ledger = _run(_collector(svc, tmp_path / "w", "log-analytics", "SigninLogs"))
        assert svc.served(status=200) > 3
    assert set(_collected(tmp_path / "w", "SigninLogs")) == _ids(LA["SigninLogs"])  # 40 a day, limit 25
    assert len(ledger) > 3 and all(r["complete"] and r["records"] <= 25 for r in ledger)
    assert all(a["slice_end"] == b["slice_start"] for a, b in zip(ledger, ledger[1:], strict=False))


def test_once_a_slice_was_over_the_cap_later_ones_are_halved_before_asking(tmp_path: Path) -> None:
    with FakeQueryService(LA, HUNT, workspaces=(WS,), folder=tmp_path, la_row_limit=15) as svc:
        col = _collector(svc, tmp_path / "w", "log-analytics", "SigninLogs", slice_size=pd.Timedelta(hours=12),
                         concurrency={"log_analytics": 1})
        ledger = _run(col)
        queries = svc.served("/query", status=200)
    assert set(_collected(tmp_path / "w", "SigninLogs")) == _ids(LA["SigninLogs"])
    assert all(r["complete"] and r["records"] <= 15 for r in ledger)
    assert queries == len(ledger) + 1  # one truncated answer taught the collector the size; no more wasted
    reasons = [s.get("reason", "") for s in col.ckpt.slices.values() if s["status"] == "split"]
    assert sum("halved before asking" in r for r in reasons) == len(reasons) - 1


def test_hunting_silent_row_cap_splits_and_renamed_table_falls_back(tmp_path: Path) -> None:
    with FakeQueryService(LA, HUNT, folder=tmp_path, hunting_row_limit=20,
                          missing_tables=("EntraIdSignInEvents",)) as svc:
        ledger = _run(_collector(svc, tmp_path / "w", "defender", row_limit=20))
    for table in DEFENDER:
        assert set(_collected(tmp_path / "w", table)) == _ids(HUNT[table]), table
    assert all(r["complete"] and r["records"] < 20 for r in ledger) and len(ledger) > 9
    entra = [r for r in ledger if r["source"] == "EntraIdSignInEvents"]
    assert {r["table"] for r in entra} == {"AADSignInEventsBeta"}
    assert all(r["canonical_source"] is None for r in ledger) and ledger_coverage(ledger) == {}


def test_a_hunting_result_over_the_size_limit_splits(tmp_path: Path) -> None:
    with FakeQueryService(LA, HUNT, folder=tmp_path, hunting_too_large=25) as svc:
        ledger = _run(_collector(svc, tmp_path / "w", "defender", "GraphApiAuditEvents"))
        refused = svc.served("/runHuntingQuery", status=400)
    assert refused >= 1 and set(_collected(tmp_path / "w", "GraphApiAuditEvents")) == _ids(HUNT["GraphApiAuditEvents"])
    assert all(r["complete"] and r["records"] <= 25 for r in ledger) and len(ledger) > 3


def test_no_workspace_access_is_a_named_gap(tmp_path: Path) -> None:
    with FakeQueryService(LA, HUNT, workspaces=(WS,), denied_workspaces=(WS,), folder=tmp_path) as svc:
        ledger = _run(_collector(svc, tmp_path / "w", "log-analytics", "SigninLogs"))
    assert ledger and not any(r["complete"] for r in ledger)
    assert all("InsufficientAccessError" in r["gap"] for r in ledger)


# ----- end to end through the CLI: MSAL, case, import, resume ------------------------------------
@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[FakeAuthority, FakeQueryService, dict[str, str], Path]]:
    (tmp_path / "sts").mkdir()
    with FakeAuthority(tmp_path / "sts", secret=SECRET) as sts, \
            FakeQueryService(LA, HUNT, workspaces=(WS,), token_ok=sts.token_ok, folder=tmp_path,
                             scope_of=sts.scope_of) as svc:
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(Path(sts.ca_file).read_bytes() + Path(svc.ca_file).read_bytes())
        env = {"REQUESTS_CA_BUNDLE": str(bundle), "IR_TOOLKIT_COLLECT_TIME_SCALE": "0.001", "Q_SECRET": SECRET,
               "XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
        yield sts, svc, env, tmp_path


def _args(sts: FakeAuthority, svc: FakeQueryService, case: Path, backend: str, *extra: str) -> list[Any]:
    where = ["--workspace", WS] if backend == "log-analytics" else []
    return ["collect", case, "--client-id", sts.client_id, "--client-secret-env", "Q_SECRET", "--since", SINCE,
            "--until", UNTIL, "--authority-url", sts.authority(), "--graph-url", svc.url, "--log-analytics-url",
            svc.la_url, "--from", backend, *where, "--json", "--no-progress", *extra]


def _events(case: Path) -> pd.DataFrame:
    return (Case.open(case).read_events().drop(columns=["evidence"]).sort_values(["source", "record_id"])
            .reset_index(drop=True))


def _collect_new_case(stack: Any, name: str, backend: str) -> dict[str, Any]:
    sts, svc, env, tmp = stack
    assert cli("case", "init", tmp / name, "--tenant", "contoso-tenant").returncode == 0
    r = cli(*_args(sts, svc, tmp / name, backend), env=env)
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    assert doc["complete"] and not doc["import_errors"]
    return doc


def test_log_analytics_case_equals_importing_the_same_rows_from_files(stack: Any) -> None:
    sts, svc, env, tmp = stack
    doc = _collect_new_case(stack, "collected", "log-analytics")
    # tables the importer maps are imported; the one it may not map yet is kept as evidence, never lost
    assert {k["source"] for k in doc["kept_as_evidence"]} <= {"MicrosoftGraphActivityLogs"}
    manifest = json.loads((tmp / "collected" / "case.json").read_text())
    assert all(e["imported"] is not None or e.get("import_note") for e in manifest["evidence"])
    assert manifest["collection"]["ledger"] == doc["ledger"]
    assert manifest["collection"]["runs"][-1]["from"] == "log-analytics"
    assert all(e["path"].startswith("raw/collect/") for e in manifest["evidence"])
    assert cli("verify", tmp / "collected").returncode == 0
    # the same rows as a Log Analytics JSON export, imported into another case
    assert cli("case", "init", tmp / "imported", "--tenant", "contoso-tenant").returncode == 0
    files = []
    for table, rows in LA.items():
        files.append(tmp / f"{table}.json")
        files[-1].write_text(json.dumps(rows))
    assert cli("import", tmp / "imported", *files).returncode == 0
    collected, imported = _events(tmp / "collected"), _events(tmp / "imported")
    mapped = sum(len(v) for k, v in LA.items() if k != "MicrosoftGraphActivityLogs")
    assert len(collected) in (mapped, mapped + len(LA["MicrosoftGraphActivityLogs"]))
    pd.testing.assert_frame_equal(collected, imported)
    # no secret or token on disk or in the output
    for f in (tmp / "collected").rglob("*"):
        if f.is_file() and f.suffix != ".gz":
            text = f.read_text(errors="replace")
            assert SECRET not in text and not any(t in text for t in sts.issued), f


def test_defender_rows_are_evidence_in_the_ledger_imported_or_kept(stack: Any) -> None:
    tmp = stack[3]
    doc = _collect_new_case(stack, "case", "defender")
    assert len(doc["notes"]) == 3 and "older than the 30 days the service keeps" in doc["notes"][0]
    manifest = json.loads((tmp / "case" / "case.json").read_text())
    held: dict[str, set[str]] = {}
    kept = {k["source"] for k in doc["kept_as_evidence"]}
    for e in manifest["evidence"]:
        held.setdefault(e["source"], set()).update(row_id(x) for x in read_lines(tmp / "case" / e["path"]))
        if e["source"][len("collect:"):] in kept:  # rows the importer cannot map yet: evidence only
            assert e.get("import_note", "").startswith("kept as evidence") and e["imported"] is None
        else:  # once the importer maps a table, its rows are imported like any export
            assert e["imported"] is not None
    assert held == {f"collect:{t}": _ids(HUNT[t]) for t in DEFENDER}
    assert {r["source"] for r in manifest["collection"]["ledger"]} == set(DEFENDER)


def test_killed_log_analytics_collection_resumes_to_the_same_case(stack: Any) -> None:
    sts, svc, env, tmp = stack
    for name in ("reference", "crashed"):
        assert cli("case", "init", tmp / name, "--tenant", "contoso-tenant").returncode == 0
    tuning = ["--slice-hours", "6", "--sources", "SigninLogs,AADNonInteractiveUserSignInLogs,OfficeActivity"]
    r = cli(*_args(sts, svc, tmp / "reference", "log-analytics", *tuning), env=env)
    assert r.returncode == 0, r.stderr
    total = svc.served("/query")
    svc.delay = 0.01
    argv = [sys.executable, "-m", "ir_toolkit", *map(str, _args(sts, svc, tmp / "crashed", "log-analytics", *tuning))]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    rng, kills = random.Random(3), 0
    for _ in range(5):
        at = svc.served("/query") + rng.randrange(2, max(3, total // 4))
        proc = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and svc.served("/query") < at:
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 3
    svc.delay = 0.0
    r = cli(*_args(sts, svc, tmp / "crashed", "log-analytics", *tuning), env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["complete"]
    assert cli("verify", tmp / "crashed").returncode == 0
    pd.testing.assert_frame_equal(_events(tmp / "crashed"), _events(tmp / "reference"))
    ledger = json.loads((tmp / "crashed" / "case.json").read_text())["collection"]["ledger"]
    assert len(ledger) == 3 * 12 and all(r["complete"] for r in ledger)
