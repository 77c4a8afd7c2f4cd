"""The Graph collector against a real loopback fake Graph: completeness, faults, splitting, resume."""

from __future__ import annotations

import email.utils
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.errors import UserError
from ir_toolkit.sources.graph.client import GraphError, Pacer, odata_datetime, odata_string, retry_after_seconds
from ir_toolkit.sources.graph.collector import Options
from ir_toolkit.sources.graph.endpoints import CLOUD_ENDPOINTS, resolve
from ir_toolkit.sources.graph.slicing import Slice, cut
from ir_toolkit.sources.graph.sources import DEFAULT_AUDIT_OPERATIONS, SOURCES, select
from tests.collect_helpers import RECORDS, collect, collected, fast_client
from tests.fakes.graph_server import FakeGraph
from tests.fakes.records import expected_ids

SIGNINS = "signins_interactive"


def _expected(source: str) -> set[str]:
    return expected_ids(RECORDS, source, DEFAULT_AUDIT_OPERATIONS if source == "audit_log" else None)


def _assert_exact(work: Path, source: str) -> None:
    got = collected(work, source)
    assert len(got) == len(set(got)), f"{source}: duplicates collected"
    assert set(got) == _expected(source), f"{source}: collected set differs"


# ----- endpoints, OData, retry-after, pacing ---------------------------------------------------
@pytest.mark.parametrize("cloud,graph", [("global", "https://graph.microsoft.com"),
                                         ("usgov", "https://graph.microsoft.us"),
                                         ("usgovdod", "https://dod-graph.microsoft.us"),
                                         ("china", "https://microsoftgraph.chinacloudapi.cn")])
def test_every_cloud_has_authority_graph_and_scope(cloud: str, graph: str) -> None:
    ep = resolve(cloud, "contoso.onmicrosoft.com")
    assert ep.graph_root == graph and ep.scope == f"{graph}/.default"
    assert ep.authority == f"{CLOUD_ENDPOINTS[cloud]['authority_host']}/contoso.onmicrosoft.com"
    assert ep.url("beta", "/auditLogs/signIns") == f"{graph}/beta/auditLogs/signIns"


def test_overrides_replace_authority_and_graph_and_reject_bad_urls() -> None:
    ep = resolve("usgov", "t1", authority_url="https://localhost:8443/t1", graph_url="http://127.0.0.1:9/")
    assert (ep.authority, ep.graph_root, ep.scope) == ("https://localhost:8443/t1", "http://127.0.0.1:9",
                                                       "http://127.0.0.1:9/.default")
    assert ep.custom_authority
    with pytest.raises(UserError, match="https"):
        resolve("global", "t1", authority_url="http://localhost/t1")
    with pytest.raises(UserError, match="only allowed on loopback"):
        resolve("global", "t1", graph_url="http://graph.example.com")
    with pytest.raises(UserError, match="unknown cloud"):
        resolve("mars", "t1")


def test_odata_literals() -> None:
    assert odata_string("o'brien@contoso.com") == "'o''brien@contoso.com'"
    assert odata_datetime(pd.Timestamp("2023-06-01T00:00:00Z") - pd.Timedelta(100, "ns")) == \
        "2023-05-31T23:59:59.9999999Z"


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(email.utils.format_datetime(now + timedelta(seconds=30)), now=now) == 30.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_pacer_allows_n_per_window_with_injected_clock() -> None:
    t = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s

    pacer = Pacer(5, 10.0, clock=lambda: t[0], sleep=sleep, margin=0.0)
    starts = []
    for _ in range(12):
        pacer.acquire()
        starts.append(t[0])
    assert starts[:5] == [0.0] * 5 and starts[5] == pytest.approx(10.0) and starts[10] == pytest.approx(20.0)
    for i in range(5, 12):  # never more than 5 starts in any 10 s
        assert starts[i] - starts[i - 5] >= 10.0 - 1e-9


def test_slices_meet_without_overlap_and_halve() -> None:
    slices = cut("x", pd.Timestamp("2023-06-01", tz="UTC"), pd.Timestamp("2023-06-03T12:00", tz="UTC"),
                 pd.Timedelta(days=1))
    assert [s.end - s.start for s in slices] == [pd.Timedelta(days=1)] * 2 + [pd.Timedelta(hours=12)]
    assert all(a.end == b.start for a, b in zip(slices, slices[1:], strict=False))
    halves = slices[0].halves(pd.Timedelta(hours=1))
    assert halves is not None and halves[0].end == halves[1].start == pd.Timestamp("2023-06-01T12:00", tz="UTC")
    assert Slice.from_key(slices[0].key) == slices[0]
    assert slices[2].halves(pd.Timedelta(hours=8)) is None


def test_sources_registry_and_selection() -> None:
    assert set(SOURCES) >= {"signins_interactive", "signins_noninteractive", "signins_serviceprincipal",
                            "signins_managedidentity", "directory_audits", "audit_log", "service_principals",
                            "applications", "oauth2_permission_grants", "risk_detections"}
    assert all(s.DESCRIPTION and s.permissions for s in SOURCES.values())
    assert [s.NAME for s in select("audit_log,applications")] == ["audit_log", "applications"]
    with pytest.raises(ValueError, match="unknown source 'mail'"):
        select("mail")


# ----- completeness ----------------------------------------------------------------------------
def test_every_source_collected_exactly(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        ledger = collect(g.url, tmp_path, page_size=40)
    for name in SOURCES:
        _assert_exact(tmp_path, name)
    assert ledger and all(row["complete"] and row["gap"] is None for row in ledger)
    signin_rows = [r for r in ledger if r["source"] == SIGNINS]
    assert len(signin_rows) == 3 and sum(r["records"] for r in signin_rows) == len(_expected(SIGNINS))
    assert all(r["pages"] >= 1 and "signInEventTypes" in r["requested"]["url"] for r in signin_rows)
    audit = [r for r in ledger if r["source"] == "audit_log"]
    assert all(r["query_id"] and r["requested"]["operationFilters"] for r in audit)
    # the fake audit search treats the window end as inclusive: boundary records are dropped by one slice
    assert sum(r["outside_window"] for r in audit) > 0


def test_pages_follow_nextlink_and_filter_is_sent(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        collect(g.url, tmp_path, sources=SIGNINS, page_size=10)
        paths = [p for _, p, _ in g.log]
        assert g.prefer and set(g.prefer) == {"include-unknown-enum-members"}
    assert any("%24skiptoken=" in p or "$skiptoken=" in p for p in paths)
    assert all("createdDateTime%20ge%202023-06-0" in p and "le%202023-06-0" in p and "T23%3A59%3A59.9999999Z" in p
               for p in paths)


# ----- fault injection -------------------------------------------------------------------------
FAULT_CASES = [
    ("429", 0.01), ("429", None), ("503", 0.01), ("503", None), ("500", None), ("drop", None), ("truncate", None),
    ("duplicate", None), ("expire", None),
]


@pytest.mark.parametrize("kind,retry_after", FAULT_CASES)
def test_fault_ends_complete(tmp_path: Path, kind: str, retry_after: float | None) -> None:
    with FakeGraph(RECORDS) as g:
        if kind == "duplicate":  # a later page repeats the previous one
            fault = g.inject(kind, path="skiptoken", nth=2)
        else:
            fault = g.inject(kind, path="auditLogs/signIns", nth=3, times=2, retry_after=retry_after)
        ledger = collect(g.url, tmp_path, sources=SIGNINS, page_size=10)
    assert fault.fired >= 1
    _assert_exact(tmp_path, SIGNINS)
    assert all(r["complete"] for r in ledger)
    if kind == "duplicate":
        assert sum(r["duplicates_dropped"] for r in ledger) == 10
    else:
        assert sum(r["retries"] for r in ledger) >= fault.fired
    if kind in ("429", "503"):
        assert sum(r["throttle_wait_s"] for r in ledger) > 0


def test_expired_token_is_refreshed(tmp_path: Path) -> None:
    client = fast_client("tok")
    with FakeGraph(RECORDS) as g:
        g.inject("expire", path="auditLogs/directoryAudits", nth=2)
        collect(g.url, tmp_path, sources="directory_audits", client=client, page_size=20)
    assert client.token_source.refreshes == 1  # type: ignore[attr-defined]
    _assert_exact(tmp_path, "directory_audits")


def test_persistent_failure_is_a_named_gap_and_rerun_closes_it(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        g.inject("500", path="auditLogs/signIns", nth=1, times=1000)
        ledger = collect(g.url, tmp_path, sources=SIGNINS, client=fast_client(max_attempts=3))
        gaps = [r for r in ledger if not r["complete"]]
        assert len(gaps) == 3 and all("HTTP 500" in r["gap"] and "request-id" in r["gap"] for r in gaps)
        g.faults.clear()
        ledger = collect(g.url, tmp_path, sources=SIGNINS)
    assert all(r["complete"] and r["gap"] is None for r in ledger)
    _assert_exact(tmp_path, SIGNINS)


def test_forbidden_is_a_gap_with_request_ids(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        ledger = collect(g.url.replace("/v1.0", ""), tmp_path, sources="risk_detections")
        assert ledger[0]["complete"]
    with FakeGraph({}) as g:
        client = fast_client()
        with pytest.raises(GraphError, match="HTTP 404 Request_ResourceNotFound.*request-id"):
            client.get(f"{g.url}/v1.0/nothing")
        client.close()


def test_repeated_throttling_halves_the_slice(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        g.inject("429", path="auditLogs/signIns", nth=1, times=3, retry_after=0.001)
        ledger = collect(g.url, tmp_path, sources=SIGNINS, client=fast_client(max_throttled=2),
                         concurrency={"reports": 1})
    assert len(ledger) == 4  # the first day was split in two
    assert all(r["complete"] for r in ledger)
    _assert_exact(tmp_path, SIGNINS)


def test_server_policy_is_honoured_when_the_client_paces_too_fast(tmp_path: Path) -> None:
    policies = {"reports": (50, 0.01), "identity_protection": (50, 0.01), "directory": (50, 0.01),
                "audit_query": (50, 0.01)}
    for retry_after in (True, False):
        work = tmp_path / str(retry_after)
        with FakeGraph(RECORDS, limits={"auditLogs/": (2, 0.2)}, retry_after=retry_after) as g:
            ledger = collect(g.url, work, sources="signins_noninteractive,directory_audits", page_size=10,
                               client=fast_client(policies=policies, max_throttled=50))
            assert g.served(status=429) > 0
        assert all(r["complete"] for r in ledger) and sum(r["throttle_wait_s"] for r in ledger) > 0
        _assert_exact(work, "signins_noninteractive")
        _assert_exact(work, "directory_audits")


# ----- audit log queries -----------------------------------------------------------------------
def test_failed_audit_query_is_created_again(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        g.inject("query_failed", path="security/auditLog/queries/", method="GET", nth=1)
        ledger = collect(g.url, tmp_path, sources="audit_log")
        posts = g.served("security/auditLog/queries", method="POST")
    assert posts == 4 and all(r["complete"] for r in ledger)
    _assert_exact(tmp_path, "audit_log")


def test_audit_query_failing_every_time_is_a_gap(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        g.inject("query_failed", path="security/auditLog/queries/", method="GET", nth=1, times=1000)
        ledger = collect(g.url, tmp_path, sources="audit_log", query_attempts=2)
    assert all(not r["complete"] and "ended 'failed' 2 times" in r["gap"] for r in ledger)


def test_record_limit_splits_until_queries_fit(tmp_path: Path) -> None:
    per_day = max(len(_expected("audit_log")) // 3, 1)
    with FakeGraph(RECORDS, audit_record_limit=per_day // 3) as g:
        ledger = collect(g.url, tmp_path, sources="audit_log")
    assert len(ledger) > 3 and all(r["complete"] for r in ledger)
    _assert_exact(tmp_path, "audit_log")


def test_record_limit_at_minimum_slice_is_a_named_gap(tmp_path: Path) -> None:
    with FakeGraph(RECORDS, audit_record_limit=0) as g:
        ledger = collect(g.url, tmp_path, sources="audit_log", min_slice=pd.Timedelta(hours=6))
    gaps = [r for r in ledger if not r["complete"]]
    assert gaps and all("exceeded its record limit" in r["gap"] and "minimum size" in r["gap"] for r in gaps)


def test_audit_query_id_is_saved_before_polling_and_reused(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        g.inject("500", path="security/auditLog/queries/", method="GET", nth=1, times=1000)
        ledger = collect(g.url, tmp_path, sources="audit_log", client=fast_client(max_attempts=2))
        assert all(not r["complete"] and r["query_id"] for r in ledger)
        state = json.loads((tmp_path / ".checkpoint.json").read_text())
        assert all(s["query_id"] for s in state["slices"].values())
        g.faults.clear()
        ledger = collect(g.url, tmp_path, sources="audit_log")
        posts = g.served("security/auditLog/queries", method="POST")
    assert posts == 3 and all(r["complete"] for r in ledger)
    _assert_exact(tmp_path, "audit_log")


# ----- resume ----------------------------------------------------------------------------------
def test_resume_requires_the_same_window_until_finished(tmp_path: Path) -> None:
    from ir_toolkit.sources.graph.collector import Collector

    with FakeGraph(RECORDS) as g:
        g.inject("500", path="applications", times=1000)
        collect(g.url, tmp_path, sources="applications", client=fast_client(max_attempts=1))
        with pytest.raises(UserError, match="unfinished collection"):
            Collector(fast_client(), resolve("global", "c", graph_url=g.url), tmp_path, "2023-05-01", "2023-06-04",
                      "applications", options=Options()).client.close()
        g.faults.clear()
        collect(g.url, tmp_path, sources="applications")
        other = Collector(fast_client(), resolve("global", "c", graph_url=g.url), tmp_path, "2023-06-02",
                          "2023-06-03", "directory_audits", options=Options(poll_interval=0.001))
        ledger = other.run()
        other.client.close()
    assert [r["source"] for r in ledger] == ["directory_audits"] and ledger[0]["complete"]
    assert list((tmp_path / "history").glob("checkpoint-*.json"))


def test_second_run_of_a_finished_collection_asks_nothing(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        first = collect(g.url, tmp_path, sources=SIGNINS)
        before = len(g.log)
        second = collect(g.url, tmp_path, sources=SIGNINS)
        assert len(g.log) == before
    assert first == second


def test_timeouts_are_retried(tmp_path: Path) -> None:
    with FakeGraph(RECORDS) as g:
        fault = g.inject("stall", path="auditLogs/directoryAudits", nth=2, stall_s=0.6)
        ledger = collect(g.url, tmp_path, sources="directory_audits", client=fast_client(timeout=0.2))
    assert fault.fired == 1 and all(r["complete"] for r in ledger)
    assert sum(r["retries"] for r in ledger) >= 1
    _assert_exact(tmp_path, "directory_audits")
