"""Acceptance on the sample tenant: the actor graph ties each actor address to exactly its mailboxes.

The expected address -> mailbox pairs are read independently of the importer and the graph, from
the raw Purview audit search export (AuditData JSON), and checked against the answer key.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from ir_toolkit.analysis.graph import actor_groups, build_graph, expand
from ir_toolkit.analysis.timeline import write_timeline
from ir_toolkit.case import Case
from tests.conftest import DATA

SAMPLE = DATA / "sample-tenant"
_PORT = re.compile(r"^\[?(?P<ip>[0-9a-fA-F:.]+?)\]?(?::\d+)?$")


@pytest.fixture(scope="module")
def key() -> dict:
    return json.loads((SAMPLE / "answer_key.json").read_text())


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    case = Case.init(tmp_path_factory.mktemp("sample") / "case", tenant="woodgrove-analytics.example")
    # everything a responder holds: both forms of the audit log (they de-duplicate), snapshot included
    files = sorted(p for p in SAMPLE.rglob("*") if p.is_file() and p.name not in ("answer_key.json", "README.md"))
    reports = case.import_files(files)
    assert sum(r["quarantined"] for r in reports) == 0
    return case


@pytest.fixture(scope="module")
def graph(case: Case) -> nx.Graph:
    return build_graph(case)


def _raw_address_mailboxes(addresses: set[str]) -> dict[str, set[str]]:
    """address -> mailboxes its MailItemsAccessed records name, straight from the raw CSV export."""
    seen: dict[str, set[str]] = {a: set() for a in addresses}
    with gzip.open(SAMPLE / "purview" / "audit_search_export.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Operation"] != "MailItemsAccessed":
                continue
            audit = json.loads(row["AuditData"])
            m = _PORT.match(str(audit.get("ClientIPAddress") or ""))
            if m and m["ip"] in seen:
                seen[m["ip"]].add(str(audit["MailboxOwnerUPN"]).lower())
    return seen


def test_graph_connects_each_actor_address_to_exactly_its_compromised_mailboxes(graph: nx.Graph, key: dict) -> None:
    compromised = {m["upn"] for m in key["compromised_mailboxes"]}
    actor = {a["ip"]: a for a in key["actor_ips"]}
    expected = _raw_address_mailboxes(set(actor))
    union: set[str] = set()
    for ip, truth in actor.items():
        node = f"ip:{ip}"
        mailboxes = {graph.nodes[n]["label"] for n in graph.neighbors(node) if graph.nodes[n]["type"] == "mailbox"}
        assert mailboxes == expected[ip], ip
        assert mailboxes and mailboxes <= compromised, ip
        # the node counts every record from the address: the actor's mail reads and its cover-up records
        cover = [c["time"] for c in key["cover_up"] if c["ip"] == ip]
        assert graph.nodes[node]["events"] == truth["events"] + len(cover)
        assert graph.nodes[node]["first"] == min([truth["first"], *cover])
        assert graph.nodes[node]["last"] == max([truth["last"], *cover])
        union |= mailboxes
    assert union == compromised


def test_expand_from_one_actor_address_reaches_the_others(graph: nx.Graph, key: dict) -> None:
    ips = {f"ip:{a['ip']}" for a in key["actor_ips"]}
    for ip in ips:
        sub = expand(graph, [ip], hops=2, filters={"types": ["ip", "mailbox", "token"]})
        assert ips <= set(sub), ip
        assert all(sub.nodes[n]["hop"] == 2 for n in ips - {ip})


def test_actor_groups_from_the_answer_key_addresses_form_one_group(graph: nx.Graph, key: dict) -> None:
    groups = actor_groups(graph, seeds=[a["ip"] for a in key["actor_ips"]], via=("token", "app"))
    assert len(groups) == 1
    tokens = {n.split(":", 1)[1] for n in groups[0] if n.startswith("token:")}
    assert tokens == set(key["actor_token_ids"])
    assert {f"app:{a['app_id']}" for a in key["actor_apps"]} <= groups[0]


def test_timeline_of_the_sample_tenant_has_every_event_in_order(case: Case, key: dict, tmp_path: Path) -> None:
    out = tmp_path / "timeline.csv"
    rows = write_timeline(case, out, chunk_rows=5000)
    timed = case.duckdb().sql("SELECT count(*) FROM events WHERE time IS NOT NULL").fetchall()[0][0]
    assert rows == timed  # directory objects without a creation time have no place on a timeline
    assert sum(case.events.count().values()) - timed < 10
    with open(out, newline="", encoding="utf-8") as fh:
        times = [pd.Timestamp(r["datetime"]) for r in csv.DictReader(fh)]
    assert len(times) == rows and times == sorted(times)
    window = key["window"]
    assert {pd.Timestamp(window["first_malicious"]), pd.Timestamp(window["last_malicious"])} <= set(times)
    assert times[-1] <= pd.Timestamp(key["tenant"]["collected_at"])


def test_findings_of_the_detection_pack_group_exactly_the_actor_addresses(case: Case, key: dict) -> None:
    from ir_toolkit.analysis.detect import detect

    findings = detect(case, write=False)
    g = build_graph(case, findings)
    groups = actor_groups(g)  # seeds: nodes implicated by findings of verdict likely or stronger
    assert groups
    actor_ips = {f"ip:{a['ip']}" for a in key["actor_ips"]}
    assert {n for n in groups[0] if n.startswith("ip:")} == actor_ips
    assert not any(n.startswith("ip:") for group in groups[1:] for n in group)
    assert all(g.nodes[f"mailbox:{m['upn']}"].get("verdict") for m in key["compromised_mailboxes"])
