"""Microsoft Graph activity in the scope: first-party callers, and what orphan-token requests read.

The pack's views (packs/family/graph-activity.yaml) parse each Graph request's URI into the kind of data
it touched (``mail``, ``files``, ``directory``, ``other``; ``refused`` for a failed request), its target
(the mailbox, drive owner or user; the caller for ``/me``; object ids resolved to UPNs where the case's
sign-ins or tenant snapshot know them) and the message a ``/messages/{id}`` request names. This module:

* loads the Microsoft first-party callers the detection labels instead of alarming
  (``data/reference/graph_first_party_callers.csv``, expanded through microsoft_first_party_apps.csv);
* gives scope the mailbox of each Graph mail read (``mailbox`` of a graph_activity event is empty in the
  store), and the per-mailbox and per-target counts of scope.json.

Graph message ids are Exchange item ids (``AAMkAG...``), not InternetMessageIds: they are counted apart
(``graph_messages_read``), never added to ``items_accessed``.
"""

from __future__ import annotations

import csv
import logging
from functools import cache
from typing import Any

import pandas as pd

from ir_toolkit.analysis.engine import Engine
from ir_toolkit.paths import reference_file
from ir_toolkit.timeutil import iso

log = logging.getLogger(__name__)

CALLERS_FILE = "graph_first_party_callers.csv"
CATALOGUE_FILE = "microsoft_first_party_apps.csv"
CATALOGUE_SOURCES = ("Graph", "GitHub")     # rows of the catalogue that name real applications
GRAPH_COLUMNS = ("graph_kind", "graph_target", "graph_message_id")


@cache
def _callers() -> tuple[tuple[str, str, str], ...]:
    path = reference_file(CALLERS_FILE)
    if not path.exists():
        log.warning("%s is missing: Microsoft first-party Graph callers will be judged like any caller", path)
        return ()
    with open(path, newline="", encoding="utf-8") as fh:
        rules = [r for r in csv.DictReader(fh) if r.get("value")]
    owners = {r["value"].strip().lower(): r["requests"].strip() for r in rules if r.get("kind") == "owner_tenant"}
    out: dict[str, tuple[str, str, str]] = {}
    catalogue = reference_file(CATALOGUE_FILE)
    if owners and catalogue.exists():
        with open(catalogue, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                owner = (row.get("AppOwnerOrganizationId") or "").lower()
                if owner in owners and row.get("Source") in CATALOGUE_SOURCES and row.get("AppId"):
                    app = row["AppId"].strip().lower()
                    out[app] = (app, (row.get("AppDisplayName") or "").strip(), owners[owner])
    for r in rules:
        if r.get("kind") == "app_id":
            app = r["value"].strip().lower()
            out[app] = (app, (r.get("name") or "").strip(), r.get("requests", "app-only").strip())
    return tuple(sorted(out.values()))


def first_party_callers() -> pd.DataFrame:
    """Microsoft first-party Graph callers: app_id (lower case), name, requests (``app-only`` or ``any``)."""
    rows = _callers()
    return pd.DataFrame({"app_id": pd.Series([r[0] for r in rows], dtype="str"),
                         "name": pd.Series([r[1] for r in rows], dtype="str"),
                         "requests": pd.Series([r[2] for r in rows], dtype="str")})


def with_graph_targets(engine: Engine, events: pd.DataFrame) -> pd.DataFrame:
    """``events`` with graph_kind, graph_target, graph_message_id, and ``mailbox`` set for Graph mail reads.

    Args:
        engine: A prepared engine (the view ``graph_access`` exists when the pack includes graph-activity).
        events: Events with ``record_id`` and ``source`` (scope's actor or likely events).
    """
    out = events.copy()
    for col in GRAPH_COLUMNS:
        out[col] = pd.Series([None] * len(out), dtype="object", index=out.index)
    ids = sorted(set(out.loc[out["source"] == "graph_activity", "record_id"].astype(str)))
    if not ids:
        return out
    engine.register("scope_graph_ids", pd.DataFrame({"record_id": pd.Series(ids, dtype="str")}))
    rows = engine.run_sql("SELECT g.record_id, g.kind, g.target, g.message_id FROM graph_access g "
                          "JOIN scope_graph_ids s ON s.record_id = g.record_id")
    found = {str(r): (k, t, m) for r, k, t, m in zip(rows["record_id"], rows["kind"], rows["target"],
                                                      rows["message_id"], strict=True)}
    graph = out["source"] == "graph_activity"
    for col, i in zip(GRAPH_COLUMNS, range(3), strict=True):
        out.loc[graph, col] = [found.get(str(r), (None, None, None))[i] for r in out.loc[graph, "record_id"]]
    mail = graph & (out["graph_kind"] == "mail") & out["graph_target"].notna()
    out.loc[mail, "mailbox"] = out.loc[mail, "graph_target"].astype(str).str.lower()
    return out


def mail_reads(group: pd.DataFrame) -> pd.Series:
    """Rows of ``group`` that read mail: MailItemsAccessed records and Graph mail requests."""
    kind = group["graph_kind"] if "graph_kind" in group else pd.Series(None, index=group.index, dtype="object")
    return (group["source"] == "mail_access") | (kind == "mail")


def mailbox_graph_counts(group: pd.DataFrame) -> dict[str, Any]:
    """scope.json fields of one mailbox's Graph mail reads (empty when it has none).

    ``graph_requests``: Graph mail requests; ``graph_messages_read``: distinct Graph message ids the request URIs
    name (Exchange item ids, not InternetMessageIds: not part of ``items_accessed``); ``graph_listings``: requests
    that listed messages without naming them (their count is unknown, so the number is a lower bound).
    """
    if "graph_kind" not in group:
        return {}
    reads = group[group["graph_kind"] == "mail"]
    if reads.empty:
        return {}
    named = reads["graph_message_id"].dropna()
    return {"graph_requests": len(reads), "graph_messages_read": int(named.nunique()),
            "graph_listings": int(reads["graph_message_id"].isna().sum())}


def graph_reads(events: pd.DataFrame, confidence: str) -> list[dict[str, Any]]:
    """Per kind and target, what the actor's Graph requests touched (scope.json ``actor_graph_reads``)."""
    if "graph_kind" not in events:
        return []
    g = events[(events["source"] == "graph_activity") & events["graph_kind"].notna()]
    out = []
    for (kind, target), group in g.groupby([g["graph_kind"], g["graph_target"].fillna("-")]):
        out.append({"kind": str(kind), "target": str(target), "first": iso(group["time"].min()),
                    "last": iso(group["time"].max()), "requests": len(group),
                    "messages_named": int(group["graph_message_id"].dropna().nunique()), "confidence": confidence})
    return sorted(out, key=lambda r: (r["kind"], r["target"]))
