"""The actor graph built and drawn with fewer queries and artists is the graph and the picture it was (session 10).

``graph_frames`` asks DuckDB once for every type of node and once for every kind of edge (it asked 25 queries),
``add_findings`` reads only the columns it uses, and ``draw_edges`` draws the edges as one LineCollection (one
``ax.plot`` line each before). Each is compared here with the way it was done before, kept in this file as the
reference, on events reaching every node type and edge kind (a token scan event names a signing key), findings
with and without times, and nothing at all.
"""

from __future__ import annotations

import json
import math

import networkx as nx
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ir_toolkit.analysis.aggregates import connect, utc
from ir_toolkit.analysis.graph import (
    EDGES,
    FINDING_LINKS,
    NODE_VALUES,
    VERDICT_RANK,
    build_graph,
    graph_frames,
    node_id,
)
from ir_toolkit.report.display import png_bytes
from ir_toolkit.report.graphdraw import draw_edges
from tests.timeline_events import ACTOR_APP, events, findings

ISO = "strftime(timezone('UTC', {}), '%Y-%m-%dT%H:%M:%SZ')"
KID = "1LTMzakihiRla_8z2BEJVXeWMqo"


def _values(kind: str) -> str:
    exprs = ", ".join(f"CAST({e} AS VARCHAR)" for e in NODE_VALUES[kind])
    return f"list_filter(list_distinct([{exprs}]), lambda v: v <> '')"


def reference_frames(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nodes and edges as graph_frames asked them before: one query per node type and per edge kind."""
    con = connect(data)
    first, last = ISO.format("min(time)"), ISO.format("max(time)")
    nodes = []
    for kind in NODE_VALUES:
        label = "'AS' || a" if kind == "asn" else "a"
        nodes.append(con.sql(
            f"SELECT '{kind}:' || a AS id, '{kind}' AS type, {label} AS label, count(*) AS events, "
            f"{first} AS first, {last} AS last FROM (SELECT time, unnest({_values(kind)}) AS a FROM events) "
            f"GROUP BY a ORDER BY a").df())
    edges = []
    for a, b, relation, pred in EDGES:
        where = f"WHERE {pred}" if pred else ""
        edges.append(con.sql(
            f"SELECT '{a}:' || a AS u, '{b}:' || b AS v, '{relation}' AS relation, count(*) AS events, "
            f"{first} AS first, {last} AS last FROM (SELECT time, a, unnest(lb) AS b FROM "
            f"(SELECT time, unnest({_values(a)}) AS a, {_values(b)} AS lb FROM events {where})) "
            f"GROUP BY a, b ORDER BY a, b").df())
    return pd.concat(nodes, ignore_index=True), pd.concat(edges, ignore_index=True)


def _iso(ts: object) -> str:
    t = pd.Timestamp(ts)
    return "" if pd.isna(t) else (t.tz_convert("UTC") if t.tzinfo else t).strftime("%Y-%m-%dT%H:%M:%SZ")


def reference_graph(data: pd.DataFrame, found: pd.DataFrame | None) -> nx.Graph:
    """build_graph as it was: the reference frames, then every finding read from its whole row."""
    nodes, edges = reference_frames(data)
    g = nx.Graph()
    g.add_nodes_from(zip(nodes["id"], nodes.drop(columns="id").astype({"events": "int64"}).to_dict("records"),
                         strict=True))
    g.add_edges_from(zip(edges["u"], edges["v"],
                         edges.drop(columns=["u", "v"]).astype({"events": "int64"}).to_dict("records"), strict=True))
    if found is None or found.empty:
        return g
    f = found.reset_index(drop=True)
    firsts, lasts = utc(f["first"]), utc(f["last"])
    for i, row in enumerate(f.to_dict("records")):
        fid = node_id("finding", row["finding_id"])
        verdict = str(row.get("verdict") or "")
        g.add_node(fid, type="finding", label=str(row.get("title") or row["finding_id"]),
                   detection=str(row.get("detection") or ""), severity=str(row.get("severity") or ""),
                   verdict=verdict, explanation=str(row.get("explanation") or ""),
                   events=int(row["events"]) if pd.notna(row.get("events")) else 0,
                   first=_iso(firsts[i]), last=_iso(lasts[i]))
        for col, kind in FINDING_LINKS.items():
            value = row.get(col)
            if value is None or pd.isna(value) or str(value) == "":
                continue
            target = node_id(kind, value)
            if target not in g:
                g.add_node(target, type=kind, label=str(value), events=0, first="", last="")
            node = g.nodes[target]
            node["findings"] = int(node.get("findings", 0)) + 1
            if VERDICT_RANK.get(verdict, -1) > VERDICT_RANK.get(str(node.get("verdict", "")), -1):
                node["verdict"] = verdict
            g.add_edge(fid, target, relation="implicates", events=g.nodes[fid]["events"],
                       first=g.nodes[fid]["first"], last=g.nodes[fid]["last"])
    return g


def every_kind() -> pd.DataFrame:
    """The timeline's events, a token scan event naming its signing key and a delegated mailbox read."""
    token = pd.DataFrame([{
        "time": pd.Timestamp("2023-06-16T00:55:00Z"), "source": "token", "operation": "Token observed",
        "result": "forged", "user": "alice@contoso.com", "app_id": ACTOR_APP, "token_id": "F1", "target": None,
        "record_id": "token:abc", "raw": json.dumps({"key": {"kid": KID}, "verdict": "forged"}),
    }, {
        "time": pd.Timestamp("2023-06-16T03:00:00Z"), "source": "mail_access", "operation": "MailItemsAccessed",
        "user": "bob@contoso.com", "mailbox": "alice@contoso.com", "ip": "198.51.100.11", "record_id": "delegated:1",
    }])
    return pd.concat([events(), token], ignore_index=True)


def loose_findings() -> pd.DataFrame:
    """The timeline's findings plus one without times, events or a title, naming only a user."""
    f = findings()
    extra = f.iloc[[0]].copy()
    extra[["finding_id", "first", "last", "events", "title", "mailbox", "ip", "token_id"]] = (
        "loose:1", pd.NaT, pd.NaT, None, None, None, None, None)
    extra["user"] = "carol@contoso.com"
    return pd.concat([f, extra], ignore_index=True)


def _listed(g: nx.Graph) -> str:
    """Every node and edge with its attributes, in the graph's order (what drawing and exports iterate)."""
    return repr((list(g.nodes(data=True)), list(g.edges(data=True))))


@pytest.mark.parametrize("which", ["events", "with findings", "loose findings", "no events", "no findings"])
def test_build_graph_is_the_graph_of_one_query_per_part(which: str) -> None:
    data = every_kind()
    found = {"events": None, "with findings": findings(), "loose findings": loose_findings(),
             "no events": findings(), "no findings": findings().iloc[0:0]}[which]
    if which == "no events":
        data = data.iloc[0:0]
    made, reference = build_graph(data, found), reference_graph(data, found)
    assert _listed(made) == _listed(reference)
    if which == "events":
        assert f"signing_key:{KID}" in made and made.number_of_edges() > 20
    nodes, edges = reference_frames(data)
    for frame, reference_frame in zip(graph_frames(data), (nodes, edges), strict=True):  # rows in the same order
        # text columns as objects (the parts concatenated to str only when none of them was empty)
        pd.testing.assert_frame_equal(frame, reference_frame.astype({c: "object" for c in frame if c != "events"}))
    if len(data):  # every node type and edge kind is there to be compared
        assert set(nodes["type"]) == set(NODE_VALUES) and set(edges["relation"]) == {r for _, _, r, _ in EDGES}


def _plotted(graph: nx.Graph, pos: dict[str, tuple[float, float]], one_collection: bool) -> bytes:
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    if one_collection:
        draw_edges(ax, graph, pos)
    else:  # as draw_graph drew them before: one line per edge
        for u, v, d in graph.edges(data=True):
            (x1, y1), (x2, y2) = pos[u], pos[v]
            implicated = "finding" in (graph.nodes[u].get("type"), graph.nodes[v].get("type"))
            ax.plot([x1, x2], [y1, y2], color="#d62728" if implicated else "#999999",
                    linewidth=0.4 + min(math.log10(1 + int(d.get("events", 1) or 1)), 3) * 0.6,
                    alpha=0.7 if implicated else 0.35, zorder=1)
    ax.scatter([p[0] for p in pos.values()], [p[1] for p in pos.values()], s=30, zorder=2)
    return png_bytes(fig)


@pytest.mark.parametrize("which", ["with findings", "events only", "one edge", "no edge"])
def test_edges_drawn_as_one_collection_are_the_same_pixels(which: str) -> None:
    g = build_graph(every_kind(), findings() if which == "with findings" else None)
    if which == "one edge":
        g = g.edge_subgraph([next(iter(g.edges))]).copy()
    elif which == "no edge":
        bare = nx.Graph()
        bare.add_nodes_from(list(g.nodes(data=True))[:3])
        g = bare
    pos = {n: (float(x), float(y)) for n, (x, y) in nx.spring_layout(g, seed=558).items()}
    assert _plotted(g, pos, True) == _plotted(g, pos, False)
    if which == "with findings":
        assert any("finding" in (g.nodes[u]["type"], g.nodes[v]["type"]) for u, v in g.edges)
