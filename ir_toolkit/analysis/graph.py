"""The actor graph: how addresses, tokens, sessions, apps, user agents and mailboxes hang together.

Nodes are typed (``type`` attribute: mailbox, user, ip, asn, country, app, user_agent, token,
session, signing_key, finding) and named ``<type>:<value>`` (``ip:203.0.113.5``). Every node
and edge carries ``events`` (how many events), ``first`` and ``last`` (ISO 8601 UTC strings,
so GraphML and GEXF can hold them). Edges are counted in DuckDB, so the graph of a large case
is built from aggregates, not from rows. Pivot from one proven indicator with :func:`expand`;
group the actor's infrastructure with :func:`actor_groups`; export for Gephi with
:func:`export_graph`.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from ir_toolkit.analysis.aggregates import Data, connect, utc
from ir_toolkit.errors import UserError
from ir_toolkit.textsafe import xml_safe

log = logging.getLogger(__name__)

NODE_TYPES: dict[str, str] = {
    "mailbox": "Mailbox acted upon (owner UPN)",
    "user": "Acting user or service principal",
    "ip": "Client address",
    "asn": "Autonomous system of an address",
    "country": "Country of an address",
    "app": "Application (AppId or ClientAppId)",
    "user_agent": "User agent / ClientInfoString",
    "token": "Unique token identifier",
    "session": "Entra session id",
    "signing_key": "Key id that signed a token",
    "finding": "Detection finding",
}
# SQL expressions (over the canonical columns) whose values are the nodes of each type.
NODE_VALUES: dict[str, list[str]] = {
    "mailbox": ["mailbox"], "user": ["user"], "ip": ["ip"], "asn": ["CAST(asn AS VARCHAR)"],
    "country": ["country"], "app": ["app_id", "client_app_id"], "user_agent": ["user_agent"],
    "token": ["token_id"], "session": ["session_id"],
    # token scan events (source token) name the signing key's kid in target (and in raw)
    "signing_key": ["CASE WHEN source = 'token' THEN coalesce(target, json_extract_string(raw, '$.key.kid'), "
                    "json_extract_string(raw, '$.header.kid')) END"],
}
# (type a, type b, relation, extra predicate): one edge per distinct pair of values seen in one event.
EDGES: tuple[tuple[str, str, str, str], ...] = (
    ("ip", "mailbox", "accessed", ""),
    ("user", "ip", "from", ""),
    ("user", "mailbox", "accessed (not owner)", "user <> mailbox"),
    ("ip", "asn", "in", ""),
    ("ip", "country", "in", ""),
    ("ip", "app", "used", ""),
    ("ip", "user_agent", "used", ""),
    ("token", "ip", "used from", ""),
    ("token", "mailbox", "accessed", ""),
    ("token", "app", "issued to", ""),
    ("session", "token", "issued", ""),
    ("session", "ip", "from", ""),
    ("mailbox", "app", "accessed by", ""),
    ("user", "app", "used", ""),
    ("signing_key", "token", "signed", ""),
)
FINDING_LINKS: dict[str, str] = {"mailbox": "mailbox", "user": "user", "ip": "ip", "app_id": "app",
                                 "token_id": "token", "session_id": "session"}
INFRASTRUCTURE = ("ip", "asn", "app", "user_agent", "token", "session", "signing_key")
VERDICT_RANK = {"benign": 0, "unverifiable": 1, "possible": 2, "likely": 3, "confirmed": 4}


def node_id(kind: str, value: object) -> str:
    """The graph's name for an entity: ``<type>:<value>``."""
    return f"{kind}:{value}"


def _iso(ts: Any) -> str:
    t = pd.Timestamp(ts)
    return "" if pd.isna(t) else (t.tz_convert("UTC") if t.tzinfo else t).strftime("%Y-%m-%dT%H:%M:%SZ")


def _values(kind: str) -> str:
    exprs = ", ".join(f"CAST({e} AS VARCHAR)" for e in NODE_VALUES[kind])
    return f"list_filter(list_distinct([{exprs}]), lambda v: v <> '')"


_ISO_SQL = "strftime(timezone('UTC', {}), '%Y-%m-%dT%H:%M:%SZ')"


def graph_frames(events: Data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The actor graph's nodes and edges as tables, counted in DuckDB.

    Args:
        events: Case, DuckDB connection with an ``events`` view, or a canonical events frame.

    Returns:
        ``(nodes, edges)``: nodes with columns ``id``, ``type``, ``label``, ``events``, ``first``,
        ``last``; edges with ``u``, ``v``, ``relation``, ``events``, ``first``, ``last`` (times as
        ISO 8601 UTC strings).
    """
    con = connect(events)
    first, last = _ISO_SQL.format("min(time)"), _ISO_SQL.format("max(time)")
    # one query for every type of node and one for every kind of edge (25 queries, 0.1-0.2 s of fixed cost, before),
    # each part's rows in its own order (part, then value): the frames the parts asked one by one concatenate to
    nodes = []
    for part, kind in enumerate(NODE_VALUES):
        label = "'AS' || a" if kind == "asn" else "a"
        nodes.append(
            f"SELECT {part} AS _part, a AS _a, '{kind}:' || a AS id, '{kind}' AS type, {label} AS label, "
            f"count(*) AS events, {first} AS first, {last} AS last FROM (SELECT time, unnest({_values(kind)}) AS a "
            "FROM events) GROUP BY a")
    edges = []
    for part, (a, b, relation, pred) in enumerate(EDGES):
        where = f"WHERE {pred}" if pred else ""
        edges.append(
            f"SELECT {part} AS _part, a AS _a, b AS _b, '{a}:' || a AS u, '{b}:' || b AS v, '{relation}' AS relation, "
            f"count(*) AS events, {first} AS first, {last} AS last FROM (SELECT time, a, unnest(lb) AS b FROM "
            f"(SELECT time, unnest({_values(a)}) AS a, {_values(b)} AS lb FROM events {where})) GROUP BY a, b")
    node_frame = con.sql(" UNION ALL ".join(nodes) + " ORDER BY _part, _a").df().drop(columns=["_part", "_a"])
    edge_frame = con.sql(" UNION ALL ".join(edges) + " ORDER BY _part, _a, _b").df().drop(columns=["_part", "_a", "_b"])
    return _plain(node_frame), _plain(edge_frame)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text columns as Python objects (as the parts asked one by one concatenated to)."""
    return frame.astype({c: "object" for c in frame.columns if c != "events"})


def build_graph(events: Data, findings: pd.DataFrame | None = None) -> nx.Graph:
    """Build the actor graph from events (aggregated in DuckDB) and, optionally, findings.

    Args:
        events: Case, DuckDB connection with an ``events`` view, or a canonical events frame.
        findings: Findings (FINDING_COLUMNS). Each becomes a ``finding`` node linked to the
            mailbox, user, address, app, token and session it names; those nodes get
            ``findings`` (count) and ``verdict`` (the strongest verdict) attributes.

    Returns:
        An undirected :class:`networkx.Graph` (see the module docstring for attributes).
    """
    nodes, edges = graph_frames(events)
    g = nx.Graph()
    attrs = nodes.drop(columns="id").astype({"events": "int64"}).to_dict("records")
    g.add_nodes_from(zip(nodes["id"], attrs, strict=True))
    attrs = edges.drop(columns=["u", "v"]).astype({"events": "int64"}).to_dict("records")
    g.add_edges_from(zip(edges["u"], edges["v"], attrs, strict=True))
    if findings is not None and not findings.empty:
        add_findings(g, findings)
    log.info("actor graph: %d nodes, %d edges", g.number_of_nodes(), g.number_of_edges())
    return g


def add_findings(g: nx.Graph, findings: pd.DataFrame) -> nx.Graph:
    """Add finding nodes to ``g`` and mark the entities they implicate (in place; returns ``g``)."""
    f = findings.reset_index(drop=True)
    firsts, lasts = list(utc(f["first"])), list(utc(f["last"]))  # Timestamps (NaT), not a Series lookup a finding
    # the columns read below only: the rows of every finding's evidence list are never boxed (3,696 findings at a
    # million events: 0.1 s)
    used = [c for c in ("finding_id", "verdict", "title", "detection", "severity", "explanation", "events",
                        *FINDING_LINKS) if c in f.columns]
    for i, row in enumerate(f[used].to_dict("records")):
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


def resolve(graph: nx.Graph, seeds: Iterable[str]) -> list[str]:
    """Node ids for ``seeds`` given as node ids (``ip:1.2.3.4``) or bare values (``1.2.3.4``).

    Raises:
        UserError: when a seed names no node of the graph.
    """
    by_label: dict[str, list[str]] = {}
    for n, d in graph.nodes(data=True):
        by_label.setdefault(str(d.get("label", n)), []).append(n)
        by_label.setdefault(str(n).split(":", 1)[-1], []).append(n)
    out: list[str] = []
    for s in seeds:
        found = [s] if s in graph else sorted(set(by_label.get(s, [])))
        if not found:
            raise UserError(f"{s!r} is not in the actor graph")
        out += [n for n in found if n not in out]
    return out


def _edge_ok(d: dict[str, Any], filters: dict[str, Any]) -> bool:
    if d.get("events", 0) < filters.get("min_events", 0):
        return False
    since, until = filters.get("since"), filters.get("until")
    if since and d.get("last") and d["last"] < _iso(since):
        return False
    return not (until and d.get("first") and d["first"] > _iso(until))


def expand(graph: nx.Graph, seeds: Iterable[str], hops: int = 2, filters: dict[str, Any] | None = None) -> nx.Graph:
    """Pivot from indicators: the part of the graph within ``hops`` of the seeds.

    Args:
        graph: From :func:`build_graph`.
        seeds: Node ids or bare values (an address, a token id, a mailbox UPN).
        hops: How many edges away from a seed to go.
        filters: Optional limits: ``types`` (node types to include), ``through`` (node types the walk
            may pass through; default all), ``exclude`` (node ids never entered), ``min_events``
            (skip edges seen fewer times), ``since`` / ``until`` (skip edges outside the window).

    Returns:
        The induced subgraph (a copy); each node has ``hop`` (its distance from the nearest seed).
    """
    filters = filters or {}
    types = set(filters.get("types") or NODE_TYPES)
    through = set(filters.get("through") or NODE_TYPES)
    exclude = set(filters.get("exclude") or ())
    start = resolve(graph, seeds)
    hop = dict.fromkeys(start, 0)
    queue = deque(start)
    while queue:
        node = queue.popleft()
        if hop[node] >= hops or (hop[node] > 0 and graph.nodes[node].get("type") not in through):
            continue
        for nb in graph.neighbors(node):
            if nb in hop or nb in exclude or graph.nodes[nb].get("type") not in types:
                continue
            if not _edge_ok(graph.edges[node, nb], filters):
                continue
            hop[nb] = hop[node] + 1
            queue.append(nb)
    sub = graph.subgraph(hop).copy()
    nx.set_node_attributes(sub, hop, "hop")
    return sub


def actor_groups(graph: nx.Graph, seeds: Iterable[str] | None = None,
                 via: tuple[str, ...] = ("token", "session", "app", "user_agent", "signing_key", "asn"),
                 min_verdict: str = "likely") -> list[set[str]]:
    """Connected groups of actor infrastructure.

    Args:
        graph: From :func:`build_graph` (with findings, unless ``seeds`` is given).
        seeds: Known actor nodes (ids or bare values). Default: infrastructure nodes that a
            finding of at least ``min_verdict`` implicates.
        via: Node types through which two actor nodes are joined (shared token, session, app ...).
        min_verdict: Weakest finding verdict that makes a node an actor node (when ``seeds`` is None).

    Returns:
        Groups (sets of node ids: the actor nodes and the shared nodes joining them), largest first.
    """
    if seeds is None:
        floor = VERDICT_RANK[min_verdict]
        actor = [n for n, d in graph.nodes(data=True)
                 if d.get("type") in INFRASTRUCTURE and VERDICT_RANK.get(str(d.get("verdict", "")), -1) >= floor]
    else:
        actor = resolve(graph, seeds)
    joined = nx.Graph()
    joined.add_nodes_from(actor)
    actor_set = set(actor)
    for n in actor:
        for nb in graph.neighbors(n):
            if nb in actor_set:
                joined.add_edge(n, nb)
            elif graph.nodes[nb].get("type") in via:
                others = [m for m in graph.neighbors(nb) if m in actor_set and m != n]
                for m in others:
                    joined.add_edge(n, nb)
                    joined.add_edge(nb, m)
    groups = [set(c) for c in nx.connected_components(joined)]
    return sorted(groups, key=lambda c: (-len(c), sorted(c)))


# ----- export -------------------------------------------------------------------------------------
GRAPH_FORMATS: dict[str, str] = {".graphml": "GraphML (Gephi, yEd, Cytoscape)", ".gexf": "GEXF (Gephi)",
                                 ".json": "node-link JSON (networkx, d3)"}


def _missing(value: Any) -> bool:
    """None, NaN, NaT, pd.NA or an infinite number: nothing an export can hold (strict JSON has no NaN)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return bool(pd.api.types.is_float(value)) and not math.isfinite(float(value))


def _scalar(value: Any, xml: bool) -> Any:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, pd.Timestamp):
        return _iso(value)
    text = str(value)
    return xml_safe(text) if xml else text


def _exportable(graph: nx.Graph, xml: bool) -> nx.Graph:
    """A copy with only scalar, non-missing attributes (and XML-safe text for GraphML/GEXF)."""
    out = nx.Graph()
    name = (lambda n: xml_safe(str(n))) if xml else str
    for n, d in graph.nodes(data=True):
        out.add_node(name(n), **{k: _scalar(v, xml) for k, v in d.items() if not _missing(v)})
    for u, v, d in graph.edges(data=True):
        out.add_edge(name(u), name(v), **{k: _scalar(x, xml) for k, x in d.items() if not _missing(x)})
    return out


def export_graph(graph: nx.Graph, path: str | Path) -> Path:
    """Write the graph as .graphml, .gexf or node-link .json (chosen by the extension).

    Raises:
        UserError: for another extension, or when the file cannot be written.
    """
    out = Path(path)
    ext = out.suffix.lower()
    if ext not in GRAPH_FORMATS:
        raise UserError(f"{out}: graph must be written to a .graphml, .gexf or .json file")
    try:
        if ext == ".graphml":
            nx.write_graphml(_exportable(graph, xml=True), out)
        elif ext == ".gexf":
            nx.write_gexf(_exportable(graph, xml=True), out)
        else:
            data = nx.node_link_data(_exportable(graph, xml=False), edges="edges")
            out.write_text(json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{out}: cannot write graph ({exc.strerror or exc})") from None
    return out

