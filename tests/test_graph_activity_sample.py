"""The ``--graph-activity`` sample tenant scoped exactly, and judged unverifiable where sign-ins cannot tell (issue 19).

Cases come from tests/graph_cases.py (one tenant and three cases per session).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import prepare
from ir_toolkit.sample.graphlog import DECOY_APP
from tests.graph_cases import (
    GraphCase,
    graph_base,
    graph_case,
    graph_case_with_hole,
    graph_case_without_signins,
    graph_tenant,
)

__all__ = ["graph_base", "graph_case", "graph_case_with_hole", "graph_case_without_signins", "graph_tenant"]
pytestmark = pytest.mark.slow
DETECTION = "orphan-graph-request"


def _graph(findings: pd.DataFrame) -> pd.DataFrame:
    return findings[findings["detection"] == DETECTION]


def test_blobs_are_diagnostic_records_one_per_line(graph_tenant: Path) -> None:
    blobs = sorted(graph_tenant.glob("azure/insights-logs-microsoftgraphactivitylogs/resourceId=/TENANTS/*/PROVIDERS/"
                                     "MICROSOFT.AADIAM/y=2023/m=*/d=*/h=*/m=00/PT1H.json"))
    assert len(blobs) > 100
    lines = blobs[0].read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[0])
    assert rec["category"] == "MicrosoftGraphActivityLogs" and "signInActivityId" in rec["properties"]
    assert all(json.loads(line)["time"] >= rec["time"] for line in lines)
    key = json.loads((graph_tenant / "answer_key.json").read_text())
    assert key["evidence_variant"]["graph_activity"] is True
    assert key["graph_activity"]["actor_requests"] > 20 and key["tenant"]["records"]["graph_activity_records"] > 500


@pytest.mark.parametrize(("section", "field"), [("compromised_mailboxes", "upn"), ("actor_ips", "ip")])
def test_recall_one_and_at_most_one_false(graph_case: GraphCase, section: str, field: str) -> None:
    truth = {m[field] for m in graph_case.key[section]}
    found = {m[field] for m in graph_case.scope[section]}
    assert truth <= found, f"{section}: missed {truth - found}"
    assert len(found - truth) <= 1, f"{section}: false {found - truth}"


def test_window_within_an_hour(graph_case: GraphCase) -> None:
    for edge in ("first_malicious", "last_malicious"):
        doc, key = pd.Timestamp(graph_case.scope["window"][edge]), pd.Timestamp(graph_case.key["window"][edge])
        assert abs(doc - key) <= pd.Timedelta(hours=1), edge


def test_graph_message_reads_counted_exactly_apart_from_items_accessed(graph_case: GraphCase) -> None:
    found = {m["upn"]: m for m in graph_case.scope["compromised_mailboxes"]}
    for m in graph_case.key["compromised_mailboxes"]:
        got = found[m["upn"]]
        assert (got.get("graph_messages_read", 0), got.get("graph_requests", 0)) == (
            m["graph_messages_read"], m["graph_requests"]), m["upn"]
        assert got["items_accessed"] == m["items_accessed"], m["upn"]  # InternetMessageIds only
    reads = graph_case.scope["actor_graph_reads"]
    assert {r["kind"] for r in reads} == {"mail", "directory"}
    assert sum(r["requests"] for r in reads) == graph_case.key["graph_activity"]["actor_requests"]


def test_forged_graph_tokens_confirmed_ordinary_traffic_verified_first_party_labelled(graph_case: GraphCase) -> None:
    g = _graph(graph_case.findings)
    confirmed = g[g["verdict"] == "confirmed"]
    actor_app = graph_case.key["actor_apps"][0]["app_id"]
    assert len(confirmed) and set(confirmed["app_id"]) == {actor_app}
    forged = {t["token_id"] for t in graph_case.key["graph_activity"]["actor_tokens"]}
    assert set(confirmed["token_id"]) <= forged
    # The tenant's own Graph traffic (tokens from logged sign-ins, some with '==' padding) raises nothing.
    assert set(g["verdict"]) == {"confirmed", "benign"}
    benign = g[g["verdict"] == "benign"]
    assert set(benign["app_id"]) == {DECOY_APP[0]} and len(benign) >= 3
    decoy_mailboxes = set(benign["mailbox"].dropna())
    assert decoy_mailboxes and not decoy_mailboxes & {m["upn"] for m in graph_case.scope["compromised_mailboxes"]}
    assert any(d["kind"] == "first_party_graph_caller" for d in graph_case.key["decoys"])


def test_without_signins_graph_reads_are_unverifiable_not_confirmed(graph_case_without_signins: GraphCase) -> None:
    g = _graph(graph_case_without_signins.findings)
    actor = g[g["app_id"] == graph_case_without_signins.key["actor_apps"][0]["app_id"]]
    assert len(actor) and set(actor["verdict"]) == {"unverifiable"}
    assert "confirmed" not in set(graph_case_without_signins.findings["verdict"])
    assert all(m["confidence"] != "confirmed" for m in graph_case_without_signins.scope["compromised_mailboxes"])


def test_hole_in_noninteractive_signins_makes_its_reads_unverifiable(graph_case_with_hole: GraphCase) -> None:
    doc = graph_case_with_hole.scope
    holes = [p for p in doc["unverifiable_periods"] if p.get("source") == "signin_noninteractive"]
    assert holes, doc["unverifiable_periods"]
    lo, hi = pd.Timestamp(holes[0]["start"]), pd.Timestamp(holes[0]["end"])
    actor_app = graph_case_with_hole.key["actor_apps"][0]["app_id"]
    rows = prepare(graph_case_with_hole.case).engine.run_sql(
        f"SELECT issue_lo, verdict FROM graph_judged WHERE app = '{actor_app}'")
    in_hole = (rows["issue_lo"] >= lo) & (rows["issue_lo"] <= hi)
    assert in_hole.any() and set(rows.loc[in_hole, "verdict"]) == {"unverifiable"}
    assert set(rows.loc[~in_hole, "verdict"]) == {"confirmed"}  # reads outside the hole stay proven
    g = _graph(graph_case_with_hole.findings)
    assert {"confirmed", "unverifiable"} <= set(g[g["app_id"] == actor_app]["verdict"])
