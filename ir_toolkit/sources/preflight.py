"""Logging readiness: what this app can read in a tenant, how far back, and what expires when.

Read-only probes, one per source, that change nothing in the tenant: ``$top=1`` GETs for the Graph
sources (listing the Purview audit queries instead of creating one), one summarising KQL query for
the Log Analytics tables of a workspace and one for the advanced hunting tables, and the tenant's
licences (``subscribedSkus``). Each source gets available true/false with the reason (a missing
permission, no Entra ID P1/P2 with Microsoft's error code, no workspace access, a table the
workspace does not hold), its retention and the date the start of the period you need is deleted.
The result's JSON schema is documented in docs/preflight.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from ir_toolkit.sources.graph.client import GraphClient, GraphError
from ir_toolkit.sources.graph.endpoints import Endpoints
from ir_toolkit.sources.graph.sources import SOURCES, Source
from ir_toolkit.sources.kql.rows import la_rows
from ir_toolkit.sources.kql.sources import DEFENDER, LOG_ANALYTICS, QuerySource
from ir_toolkit.timeutil import iso, now_utc, parse_time

log = logging.getLogger(__name__)

NON_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
DENIED = ("Authorization_RequestDenied", "Forbidden", "AccessDenied", "InsufficientAccessError")
LICENCE_PERMISSION = "Organization.Read.All"
# Entra ID retention of sign-ins and directory audits by licence (Entra "data retention" reference).
ENTRA_RETENTION = {"Free": 7, "P1": 30, "P2": 30}
RISK_RETENTION = {"Free": 7, "P1": 30, "P2": 90}
PURVIEW_RETENTION = {"standard": 180, "premium": 365}  # Audit (Standard) / Audit (Premium)
P1_PLANS, P2_PLANS, AUDIT_PREMIUM_PLANS = {"AAD_PREMIUM"}, {"AAD_PREMIUM_P2"}, {"M365_ADVANCED_AUDITING"}
SCHEMA_VERSION = 1
# Graph sources whose time field supports $orderby (signIns: createdDateTime, directoryAudits: activityDateTime)
OLDEST_FIRST = ("signins_interactive", "signins_noninteractive", "signins_serviceprincipal",
                "signins_managedidentity", "directory_audits")


def licences(skus: list[dict[str, Any]]) -> dict[str, Any]:
    """The licences seen and what they mean for logging (pure).

    Returns:
        ``{"skus": [{"sku", "sku_id", "enabled", "consumed"}], "entra_tier": Free|P1|P2, "audit": standard|premium}``.
    """
    plans = {str(p.get("servicePlanName")) for s in skus for p in s.get("servicePlans") or []
             if str(p.get("provisioningStatus", "Success")) == "Success"}
    tier = "P2" if plans & P2_PLANS else "P1" if plans & P1_PLANS else "Free"
    return {"skus": [{"sku": s.get("skuPartNumber"), "sku_id": s.get("skuId"),
                      "enabled": (s.get("prepaidUnits") or {}).get("enabled"), "consumed": s.get("consumedUnits")}
                     for s in skus],
            "entra_tier": tier, "audit": "premium" if plans & AUDIT_PREMIUM_PLANS else "standard"}


def why_not(exc: GraphError) -> tuple[str, str]:
    """``(kind, reason)`` of a failed probe: kind is licence, permission, workspace or error (pure)."""
    code, text = str(exc.code or ""), str(exc)
    if NON_PREMIUM in text or code == NON_PREMIUM:
        return "licence", (f"no Entra ID P1/P2 licence ({NON_PREMIUM}): sign-ins over Graph need P1 or P2; a "
                           "Free tenant keeps 7 days, readable only as a portal download")
    if exc.status == 404 and "workspace" in text.lower():
        return "workspace", "workspace not found (check the workspace id and the cloud)"
    if exc.status == 403 and "InsufficientAccessError" in text:
        return "workspace", "no workspace access (InsufficientAccessError): give the app Log Analytics Reader"
    if exc.status == 403 and "licen" in text.lower():
        return "licence", f"not licensed: {text[:200]}"
    if exc.status in (401, 403) or code in DENIED:
        return "permission", f"missing permission (HTTP {exc.status} {code})"
    return "error", text[:300]


def retention(name: str, lic: dict[str, Any] | None) -> tuple[int | None, str]:
    """Days a source is kept and why (pure); None when the tenant's own setting decides or it is a snapshot."""
    tier = (lic or {}).get("entra_tier")
    if name in LOG_ANALYTICS:
        return None, "workspace retention setting (not readable through the query API): the oldest record goes first"
    if name in DEFENDER:
        return 30, "advanced hunting keeps 30 days"
    src = SOURCES.get(name)
    if src is None or src.time_field is None:
        return None, "current state (snapshot)"
    if name == "audit_log":
        kind = (lic or {}).get("audit", "standard")
        return PURVIEW_RETENTION[kind], f"Purview Audit ({kind.capitalize()})"
    table = RISK_RETENTION if name == "risk_detections" else ENTRA_RETENTION
    if tier is None:
        return table["P1"], "assumed Entra ID P1/P2 (licences not readable)"
    return table[tier], f"Entra ID {tier}"


def expiry(days: int | None, since: pd.Timestamp | None, oldest: pd.Timestamp | None,
           now: pd.Timestamp) -> dict[str, Any]:
    """When the start of the needed period (``since``; else the oldest data kept) is deleted (pure)."""
    if days is None:
        return {"oldest_available": iso(oldest), "expires_on": None, "days_left": None}
    kept_from = now - pd.Timedelta(days=days)
    start = since if since is not None else max(kept_from, oldest) if oldest is not None else kept_from
    ends = start + pd.Timedelta(days=days)
    return {"oldest_available": iso(max(kept_from, oldest) if oldest is not None else kept_from),
            "expires_on": iso(ends), "days_left": round((ends - now) / pd.Timedelta(days=1), 1)}


def _graph_probe(src: Source) -> tuple[str, dict[str, str]]:
    if src.kind == "audit_query":
        return src.path, {"$top": "1"}  # list the queries: creating one would change the tenant
    params = {"$top": "1"}
    if src.event_type:
        params["$filter"] = f"signInEventTypes/any(t: t eq '{src.event_type}')"
    if src.NAME in OLDEST_FIRST:  # the oldest record kept: how far back the tenant really reaches
        params["$orderby"] = f"{src.time_field} asc"
    return src.path, params


def union_query(tables: list[str], time_field: str) -> str:
    """One KQL query giving oldest, newest and row count per table (missing tables are skipped)."""
    return (f"union withsource=SourceTable isfuzzy=true {', '.join(tables)} | summarize "
            f"oldest=min({time_field}), newest=max({time_field}), rows=count() by SourceTable")


class Preflight:
    """Run every probe. ``graph`` and ``log_analytics`` are clients (tokens for each resource).

    Args:
        endpoints: The cloud's endpoints (one map).
        graph: Client with Graph tokens.
        log_analytics: Client with Log Analytics tokens (None: no workspace to check).
        workspace: The workspace id.
        since: Start of the period the investigation needs (for expiry dates).
        now: The clock (tests).
        delegated: Signed in as a responder (device code): a refusal may be a missing directory role too.
    """

    def __init__(self, endpoints: Endpoints, graph: GraphClient, log_analytics: GraphClient | None = None,
                 workspace: str | None = None, since: pd.Timestamp | None = None,
                 now: Callable[[], pd.Timestamp] = now_utc, delegated: bool = False) -> None:
        self.endpoints, self.graph, self.la, self.workspace = endpoints, graph, log_analytics, workspace
        self.since, self.now, self.delegated = since, now(), delegated

    def _why_not(self, exc: GraphError) -> tuple[str, str]:
        why, reason = why_not(exc)
        if why == "permission" and self.delegated:
            reason += (" or a directory role of the signed-in responder (Global Reader, Security Reader, Reports "
                       "Reader; Purview Audit Reader for audit_log)")
        return why, reason

    def run(self) -> dict[str, Any]:
        """The readiness document (docs/preflight.md)."""
        lic, lic_reason = self._licences()
        rows = [self._graph_source(src, lic) for src in SOURCES.values()]
        if self.workspace and self.la is not None:
            rows += self._tables(list(LOG_ANALYTICS.values()), "log-analytics", lic)
        rows += self._tables(list(DEFENDER.values()), "defender", lic)
        add = sorted({p for r in rows if r["why"] in ("permission", "workspace") for p in r["permissions"]}
                     | ({LICENCE_PERMISSION} if lic is None and lic_reason.startswith("missing permission") else set()))
        for r in rows:
            del r["why"]
        return {"schema_version": SCHEMA_VERSION, "checked_at": iso(self.now), "cloud": self.endpoints.cloud,
                "authority": self.endpoints.authority, "graph": self.endpoints.graph_root,
                "workspace": self.workspace, "since": iso(self.since),
                "licences": lic if lic is not None else {"skus": None, "entra_tier": None, "audit": None,
                                                         "reason": lic_reason},
                "sources": rows, "permissions_to_add": add,
                "summary": {"available": sum(r["available"] for r in rows),
                            "unavailable": sum(not r["available"] for r in rows)}}

    def _licences(self) -> tuple[dict[str, Any] | None, str]:
        try:
            page = self.graph.get(self.endpoints.url("v1.0", "subscribedSkus"), policy="directory")
        except GraphError as exc:
            return None, self._why_not(exc)[1]
        return licences([s for s in page.get("value") or [] if isinstance(s, dict)]), ""

    def _row(self, name: str, backend: str, description: str, permissions: tuple[str, ...],
             lic: dict[str, Any] | None) -> dict[str, Any]:
        days, basis = retention(name, lic)
        return {"name": name, "backend": backend, "description": description, "available": False,
                "reason": None, "why": None, "permissions": list(permissions), "retention_days": days,
                "retention_basis": basis, "oldest_record": None, "newest_record": None, "rows": None}

    def _graph_source(self, src: Source, lic: dict[str, Any] | None) -> dict[str, Any]:
        row = self._row(src.NAME, "graph", src.DESCRIPTION, src.permissions, lic)
        path, params = _graph_probe(src)
        oldest = None
        try:
            page = self.graph.get(self.endpoints.url(src.version, path), params, policy=src.policy,
                                  headers=src.headers or None)
            row["available"] = True
            first = (page.get("value") or [None])[0]
            if src.NAME in OLDEST_FIRST and isinstance(first, dict) and src.time_field:
                oldest = parse_time(first.get(src.time_field))
                row["oldest_record"] = iso(oldest)
        except GraphError as exc:
            row["why"], row["reason"] = self._why_not(exc)
            if row["why"] == "licence" and src.NAME.startswith("signins_"):
                row["retention_days"], row["retention_basis"] = 7, "Entra ID Free (portal download only)"
        row.update(expiry(row["retention_days"], self.since, oldest, self.now))
        return row

    def _tables(self, sources: list[QuerySource], backend: str, lic: dict[str, Any] | None) -> list[dict[str, Any]]:
        rows = {s.NAME: self._row(s.NAME, backend, s.DESCRIPTION, s.permissions, lic) for s in sources}
        tables = [t for s in sources for t in s.tables]
        query = union_query(tables, sources[0].time_field)
        try:
            if backend == "log-analytics":
                assert self.la is not None
                answer = self.la.post(f"{self.endpoints.log_analytics_root}/v1/workspaces/{self.workspace}/query",
                                      {"query": query}, policy="log_analytics")
                found = la_rows(answer)
            else:
                answer = self.graph.post(self.endpoints.url("v1.0", "security/runHuntingQuery"), {"Query": query},
                                         policy="hunting")
                found = [r for r in answer.get("results") or [] if isinstance(r, dict)]
        except (GraphError, ValueError) as exc:
            why, reason = self._why_not(exc) if isinstance(exc, GraphError) else ("error", str(exc))
            for row in rows.values():
                row["why"], row["reason"] = why, reason
                row.update(expiry(row["retention_days"], self.since, None, self.now))
            return list(rows.values())
        by_table = {str(r.get("SourceTable")): r for r in found}
        for src in sources:
            row = rows[src.NAME]
            hit = next((by_table[t] for t in src.tables if t in by_table), None)
            if hit is None:
                row["reason"] = ("no rows: the table is not sent to this workspace (diagnostic settings) or is empty"
                                 if backend == "log-analytics" else "no rows: the table is empty or not in this tenant")
            else:
                row.update(available=True, oldest_record=iso(hit.get("oldest")), newest_record=iso(hit.get("newest")),
                           rows=hit.get("rows"))
            row.update(expiry(row["retention_days"], self.since, parse_time(hit.get("oldest")) if hit else None,
                              self.now))
        return list(rows.values())
