"""Draw the actor graph so that it stays readable: a few hundred nodes at most, the rest aggregated."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import networkx as nx
from matplotlib import rcParams
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ir_toolkit.analysis.graph import NODE_TYPES, node_id
from ir_toolkit.textsafe import mathtext_safe

TYPE_COLOURS: dict[str, str] = {
    "mailbox": "#1f77b4", "user": "#17becf", "ip": "#ff7f0e", "asn": "#bcbd22", "country": "#c5b0d5",
    "app": "#2ca02c", "user_agent": "#8c564b", "token": "#9467bd", "session": "#e377c2",
    "signing_key": "#000000", "finding": "#d62728",
}
LABELLED = ("finding", "mailbox", "ip", "app", "signing_key")
MAX_LABELS = 45


# How the drawing budget is shared between node types once findings and kept nodes are placed.
TYPE_SHARE: dict[str, float] = {"ip": 0.3, "mailbox": 0.2, "user": 0.1, "app": 0.1, "user_agent": 0.1,
                                "token": 0.06, "session": 0.04, "asn": 0.04, "country": 0.03, "signing_key": 0.03}
MAX_DRAWN = 450  # networkx's numpy-only spring layout handles fewer than 500 nodes


def condense(graph: nx.Graph, max_nodes: int = 300, keep: Iterable[str] = ()) -> nx.Graph:
    """A graph of at most ``max_nodes`` nodes (450 at most) for drawing: the rest aggregated per type.

    Kept first: ``keep``, finding nodes and the nodes they implicate; the rest of the budget is
    shared between node types (:data:`TYPE_SHARE`: addresses and mailboxes first), each type's
    busiest nodes (by degree, then events) first. Every other node is folded into one
    ``other:<type>`` node per type (``members``: how many; ``aggregated``: True), linked to the
    nodes its members touched, with summed edge ``events``.
    """
    max_nodes = min(max_nodes, MAX_DRAWN)
    if graph.number_of_nodes() <= max_nodes:
        return graph.copy()
    budget = max(max_nodes - len(NODE_TYPES), 1)
    first = [n for n in keep if n in graph]
    first += [n for n, d in graph.nodes(data=True) if d.get("type") == "finding" or d.get("verdict")]
    chosen = list(dict.fromkeys(first))[:budget]
    by_type: dict[str, list[str]] = {}
    for n in sorted(graph.nodes, key=lambda n: (-graph.degree(n), -int(graph.nodes[n].get("events", 0)), str(n))):
        by_type.setdefault(str(graph.nodes[n].get("type")), []).append(n)
    room = budget - len(chosen)
    taken = set(chosen)
    for kind, share in TYPE_SHARE.items():
        extra = [n for n in by_type.get(kind, []) if n not in taken][: int(room * share)]
        chosen += extra
        taken.update(extra)
    # unused shares of small types go to the remaining addresses, mailboxes, users, apps, agents
    leftovers = (n for kind in list(TYPE_SHARE)[:5] for n in by_type.get(kind, []) if n not in taken)
    for n in leftovers:
        if len(chosen) >= budget:
            break
        chosen.append(n)
    kept = set(chosen)

    def home(n: str) -> str:
        return n if n in kept else node_id("other", graph.nodes[n].get("type", "node"))

    out = graph.subgraph(kept).copy()
    for n, d in graph.nodes(data=True):
        if n in kept:
            continue
        kind = d.get("type", "node")
        other = home(n)
        if other not in out:
            out.add_node(other, type=kind, members=0, events=0, first="", last="", aggregated=True)
        out.nodes[other]["members"] += 1
        out.nodes[other]["events"] += int(d.get("events", 0))
    for u, v, ed in graph.edges(data=True):
        a, b = home(u), home(v)
        if (u in kept and v in kept) or a == b:
            continue
        if out.has_edge(a, b):
            out.edges[a, b]["events"] += int(ed.get("events", 0))
        else:
            out.add_edge(a, b, relation=ed.get("relation", ""), events=int(ed.get("events", 0)))
    for _, d in out.nodes(data=True):
        if d.get("aggregated"):
            d["label"] = f"{d['members']} other {d['type']}"
    return out


def place_labels(pos: dict[str, Any], labels: dict[str, str], size: tuple[float, float],
                 fontsize: float = 7) -> dict[str, tuple[float, float, str, str]]:
    """Where to write each label so that no two overlap: ``node -> (x, y, ha, va)`` in data units.

    Labels are tried in the order given (the most important first), each right, left, above and
    below its node; a label that fits nowhere is left out (its node is still drawn, and counted in
    the legend's types). Box sizes are estimated from the figure size and the font size.
    """
    if not pos:
        return {}
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    xr, yr = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    per_x, per_y = xr / (size[0] * 0.78), yr / (size[1] * 0.85)  # data units per inch of the axes
    char_w, line_h = fontsize * 0.55 / 72 * per_x, fontsize * 1.25 / 72 * per_y
    gap = 0.06 * per_x
    placed: list[tuple[float, float, float, float]] = []
    out: dict[str, tuple[float, float, str, str]] = {}
    for node, label in labels.items():
        if node not in pos:
            continue
        x, y = float(pos[node][0]), float(pos[node][1])
        w = len(label) * char_w
        for lx, ly, ha, va, box in (
            (x + gap, y, "left", "center", (x + gap, y - line_h / 2, x + gap + w, y + line_h / 2)),
            (x - gap, y, "right", "center", (x - gap - w, y - line_h / 2, x - gap, y + line_h / 2)),
            (x, y + gap, "center", "bottom", (x - w / 2, y + gap, x + w / 2, y + gap + line_h)),
            (x, y - gap, "center", "top", (x - w / 2, y - gap - line_h, x + w / 2, y - gap)),
        ):
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                placed.append(box)
                out[node] = (lx, ly, ha, va)
                break
    return out


def _short(text: str, width: int = 28) -> str:
    return mathtext_safe(text if len(text) <= width else text[: width - 1] + "…")


def draw_edges(ax: Any, drawn: nx.Graph, pos: dict[str, Any]) -> None:
    """The edges as one LineCollection: the pixels of one ``ax.plot`` line per edge (drawn in the same order, with the
    same colour, alpha, width, caps and joins), without an artist per edge (thousands in notebook 04's graph)."""
    segments, colours, widths = [], [], []
    for u, v, d in drawn.edges(data=True):
        implicated = "finding" in (drawn.nodes[u].get("type"), drawn.nodes[v].get("type"))
        segments.append([tuple(pos[u]), tuple(pos[v])])
        colours.append(to_rgba("#d62728" if implicated else "#999999", 0.7 if implicated else 0.35))
        widths.append(0.4 + min(math.log10(1 + int(d.get("events", 1) or 1)), 3) * 0.6)
    if segments:
        ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths, zorder=1,
                                         capstyle=rcParams["lines.solid_capstyle"],
                                         joinstyle=rcParams["lines.solid_joinstyle"]), autolim=True)
        ax.autoscale_view()


def draw_graph(graph: nx.Graph, max_nodes: int = 300, keep: Iterable[str] = (), title: str | None = None,
               size: tuple[float, float] = (12, 9)) -> Figure:
    """Draw the actor graph, coloured by node type, with findings and actor nodes emphasised.

    Args:
        graph: From :func:`ir_toolkit.analysis.graph.build_graph` (or a part from ``expand``).
        max_nodes: Larger graphs are condensed (see :func:`condense`).
        keep: Node ids that must be drawn individually.
        title: Figure title (default "Actor graph (N nodes, M edges)").
        size: Figure size in inches.

    Returns:
        The matplotlib Figure (one axes, no ticks).
    """
    drawn = condense(graph, max_nodes, keep)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    folded = graph.number_of_nodes() - sum(1 for _, d in drawn.nodes(data=True) if not d.get("aggregated"))
    ax.set_title(title or (f"Actor graph ({graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges"
                           + (f"; {folded} aggregated" if folded else "") + ")"))
    if drawn.number_of_nodes() == 0:
        ax.text(0.5, 0.5, "no nodes", ha="center", va="center", transform=ax.transAxes)
        return fig
    k = 1.5 / math.sqrt(drawn.number_of_nodes())
    pos = nx.spring_layout(drawn, seed=558, k=k, iterations=80)
    keep_set = set(keep)
    important = [n for n, d in drawn.nodes(data=True)
                 if n in keep_set or d.get("type") == "finding" or d.get("verdict") or d.get("aggregated")]
    busy = sorted((n for n, d in drawn.nodes(data=True) if d.get("type") in LABELLED and n not in important),
                  key=lambda n: (-drawn.degree(n), str(n)))
    wanted = [*important, *busy[: max(MAX_LABELS - len(important), 0)]]
    draw_edges(ax, drawn, pos)
    for n, d in drawn.nodes(data=True):
        x, y = pos[n]
        kind = str(d.get("type", ""))
        actor = bool(d.get("verdict")) and kind != "finding"
        ax.scatter([x], [y], s=(80 if n in keep_set else 30) + 25 * math.log10(1 + int(d.get("events", 0) or 0)),
                   c=TYPE_COLOURS.get(kind, "#7f7f7f"), marker="s" if d.get("aggregated") else "o",
                   edgecolors="#d62728" if actor else "white", linewidths=2 if actor else 0.5, zorder=2)
    for n, (x, y, ha, va) in place_labels(pos, {n: _short(str(drawn.nodes[n].get("label", n))) for n in wanted},
                                          size).items():
        ax.annotate(_short(str(drawn.nodes[n].get("label", n))), (pos[n][0], pos[n][1]), xytext=(x, y),
                    textcoords="data", fontsize=7, ha=ha, va=va, zorder=3)
    present = sorted({str(d.get("type")) for _, d in drawn.nodes(data=True)})
    handles = [Line2D([], [], marker="o", linestyle="", color=TYPE_COLOURS.get(t, "#7f7f7f"), label=t)
               for t in present]
    if any(d.get("verdict") and d.get("type") != "finding" for _, d in drawn.nodes(data=True)):
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="#d62728",
                              markeredgewidth=2, label="implicated by a finding"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig
