"""The actor graph: typed nodes and counted edges, findings, expand, actor groups, export round trips."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from ir_toolkit.analysis.graph import actor_groups, build_graph, expand, export_graph
from ir_toolkit.errors import UserError
from tests.conftest import cli
from tests.timeline_events import ACTOR_APP, ACTOR_IPS, EVIL_UA, events, findings, make_case


def test_nodes_are_typed_and_edges_counted_with_first_and_last() -> None:
    g = build_graph(events())
    types = nx.get_node_attributes(g, "type")
    assert types["ip:203.0.113.5"] == "ip" and types["mailbox:bob@contoso.com"] == "mailbox"
    assert types["token:F1"] == "token" and types["session:S1"] == "session" and types["asn:7018"] == "asn"
    assert types[f"app:{ACTOR_APP}"] == "app" and types[f"user_agent:{EVIL_UA}"] == "user_agent"
    assert g.nodes["asn:7018"]["label"] == "AS7018"
    edge = g.edges["ip:203.0.113.5", "mailbox:bob@contoso.com"]
    assert edge == {"relation": "accessed", "events": 1, "first": "2023-06-17T02:00:00Z",
                    "last": "2023-06-17T02:00:00Z"}
    token = g.edges["token:F1", "mailbox:alice@contoso.com"]
    assert token["events"] == 1
    assert g.edges["ip:198.51.100.10", "user:alice@contoso.com"]["events"] == 3
    assert g.nodes["ip:203.0.113.5"]["events"] == 2
    assert g.nodes["ip:203.0.113.5"]["first"] == "2023-06-16T01:00:00Z"
    # the actor addresses reach exactly the two mailboxes they read
    for ip in ACTOR_IPS:
        mailboxes = {n for n in g.neighbors(f"ip:{ip}") if g.nodes[n]["type"] == "mailbox"}
        assert mailboxes <= {"mailbox:alice@contoso.com", "mailbox:bob@contoso.com"}
    assert {n for n in g.neighbors("ip:203.0.113.5") if n.startswith("mailbox:")} == {
        "mailbox:alice@contoso.com", "mailbox:bob@contoso.com"}
    # an owner reading their own mailbox is no user->mailbox edge; only delegated access is
    assert not g.has_edge("user:alice@contoso.com", "mailbox:alice@contoso.com")


def test_findings_are_nodes_and_mark_what_they_implicate() -> None:
    g = build_graph(events(), findings())
    f = g.nodes["finding:orphan-token:1"]
    assert f["type"] == "finding" and f["verdict"] == "confirmed" and f["severity"] == "high"
    assert set(g.neighbors("finding:orphan-token:1")) == {"ip:203.0.113.5", "token:F1",
                                                          "mailbox:alice@contoso.com"}
    assert g.nodes["ip:203.0.113.5"]["verdict"] == "confirmed"
    assert g.nodes["ip:203.0.113.6"]["verdict"] == "likely"
    assert "verdict" not in g.nodes["ip:198.51.100.10"]


def test_expand_from_one_actor_address_reaches_the_others_within_two_hops() -> None:
    g = build_graph(events())
    for ip in ACTOR_IPS:
        sub = expand(g, [ip], hops=2)
        reached = {n for n in sub if n.startswith("ip:")}
        assert {f"ip:{a}" for a in ACTOR_IPS} <= reached
        assert sub.nodes[f"ip:{ip}"]["hop"] == 0
    # only through the shared token: 203.0.113.5 -> token F1 -> 203.0.113.6
    via_token = expand(g, ["ip:203.0.113.5"], hops=2, filters={"types": ["ip", "token"]})
    assert set(via_token) == {"ip:203.0.113.5", "ip:203.0.113.6", "token:F1", "token:F2"}
    assert via_token.nodes["ip:203.0.113.6"]["hop"] == 2
    # one hop is not enough to reach the other address
    assert "ip:203.0.113.6" not in expand(g, ["203.0.113.5"], hops=1)
    # the walk may not pass through mailboxes or tokens: then 203.0.113.6 is out of reach via them
    walled = expand(g, ["203.0.113.5"], hops=2, filters={"through": ["ip"], "types": ["ip", "mailbox", "token"]})
    assert "ip:203.0.113.6" not in walled
    # edges outside the time window are not walked
    late = expand(g, ["203.0.113.5"], hops=1, filters={"since": pd.Timestamp("2023-06-17T00:00Z")})
    assert "mailbox:bob@contoso.com" in late and "mailbox:alice@contoso.com" not in late
    with pytest.raises(UserError, match="not in the actor graph"):
        expand(g, ["10.9.9.9"])


def test_actor_groups_join_addresses_sharing_tokens_and_apps() -> None:
    g = build_graph(events(), findings())
    groups = actor_groups(g)
    assert len(groups) == 1
    assert {"ip:203.0.113.5", "ip:203.0.113.6", "token:F1", f"app:{ACTOR_APP}"} <= groups[0]
    assert not any(n.startswith(("mailbox:", "ip:198.", "finding:")) for n in groups[0])
    # explicit seeds without findings: unrelated addresses stay in separate groups
    separate = actor_groups(build_graph(events()), seeds=["203.0.113.5", "192.0.2.1"], via=("token",))
    assert [len(s) for s in separate] == [1, 1]


@pytest.mark.parametrize("ext", ["graphml", "gexf"])
def test_graphml_and_gexf_read_back_with_the_same_nodes_and_edges(tmp_path: Path, ext: str) -> None:
    g = build_graph(events(), findings())
    path = export_graph(g, tmp_path / f"g.{ext}")
    back = nx.read_graphml(path) if ext == "graphml" else nx.read_gexf(path)
    assert set(back.nodes) == set(g.nodes)
    assert {frozenset(e) for e in back.edges} == {frozenset(e) for e in g.edges}
    assert back.nodes["ip:203.0.113.5"]["type"] == "ip"
    assert back.nodes["ip:203.0.113.5"]["first"] == "2023-06-16T01:00:00Z"
    assert int(back.edges["ip:203.0.113.5", "mailbox:bob@contoso.com"]["events"]) == 1


def test_control_characters_do_not_break_xml_exports(tmp_path: Path) -> None:
    ev = events()
    ev.loc[ev["record_id"] == "ma-2", "user_agent"] = "evil\x00agent\x1b[31m"
    path = export_graph(build_graph(ev), tmp_path / "g.graphml")
    back = nx.read_graphml(path)
    assert "user_agent:evilagent[31m" in back


def test_cli_graph_exports_json_node_link_and_rejects_other_extensions(tmp_path: Path) -> None:
    case = make_case(tmp_path / "c", with_findings=True)
    out = tmp_path / "g.json"
    r = cli("graph", case.root, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    data = json.loads(out.read_text())
    back = nx.node_link_graph(data, edges="edges")
    assert doc["nodes"] == back.number_of_nodes() and doc["edges"] == back.number_of_edges()
    assert "finding:orphan-token:1" in back
    assert back.nodes["finding:orphan-token:1"]["verdict"] == "confirmed"
    bad = cli("graph", case.root, "--out", tmp_path / "g.png")
    assert bad.returncode == 2 and ".graphml, .gexf or .json" in bad.stderr and "Traceback" not in bad.stderr
    gexf = tmp_path / "g.gexf"
    assert cli("graph", case.root, "--out", gexf).returncode == 0
    assert set(nx.read_gexf(gexf).nodes) == set(back.nodes)


def test_token_scan_events_link_signing_keys_to_tokens() -> None:
    from ir_toolkit.analysis.timeline import build_timeline

    kid = "1LTMzakihiRla_8z2BEJVXeWMqo"
    token = pd.DataFrame([{
        "time": pd.Timestamp("2023-06-16T00:55:00Z"), "source": "token", "operation": "Token observed",
        "result": "forged", "user": "alice@contoso.com", "app_id": ACTOR_APP, "token_id": "F1", "target": kid,
        "record_id": "token:abc", "raw": json.dumps({"key": {"kid": kid}, "verdict": "forged"}),
    }])
    ev = pd.concat([events(), token], ignore_index=True)
    g = build_graph(ev)
    assert g.nodes[f"signing_key:{kid}"]["type"] == "signing_key"
    assert g.edges[f"signing_key:{kid}", "token:F1"]["relation"] == "signed"
    # the key now leads from one actor address to the token and on to the other address
    assert "ip:203.0.113.6" in expand(g, [f"signing_key:{kid}"], hops=2)
    row = build_timeline(ev).query("record_id == 'token:abc'").iloc[0]
    assert row["message"] == f"alice@contoso.com: token F1 observed, signed by key {kid} for app {ACTOR_APP} [forged]"
    assert row["timestamp_desc"] == "Token issued"


def test_json_export_is_strict_json_without_nan_or_infinity(tmp_path: Path) -> None:
    import math

    import numpy as np

    g = nx.Graph()
    g.add_node("ip:203.0.113.9", kind="ip", events=3, lat=float("nan"), lon=np.float32("nan"), first=pd.NaT)
    g.add_node("user:a@contoso.com", kind="user", score=float("inf"))
    g.add_edge("ip:203.0.113.9", "user:a@contoso.com", weight=np.float64("nan"), events=2)

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    for path in (export_graph(g, tmp_path / "g.json"), export_graph(g, tmp_path / "g.graphml")):
        text = path.read_text(encoding="utf-8")
        assert "NaN" not in text and "Infinity" not in text and "NaT" not in text
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"), parse_constant=refuse)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["ip:203.0.113.9"]["events"] == 3 and "lat" not in nodes["ip:203.0.113.9"]
    assert "score" not in nodes["user:a@contoso.com"] and data["edges"][0]["events"] == 2
    assert not any(isinstance(v, float) and not math.isfinite(v) for n in data["nodes"] for v in n.values())
