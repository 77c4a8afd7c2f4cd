"""The query sources: NAME -> which table, which time column, under which limits and permissions.

Two registries with the same entry shape, one per service:

* ``LOG_ANALYTICS``: Azure Monitor Logs query API (``POST {root}/v1/workspaces/{id}/query``). Limits
  (Azure Monitor service limits): 500,000 rows and about 64 MB per result (a larger result comes back
  truncated, marked by a ``PartialError``), 200 requests per 30 s per user, at most 10 minutes per
  query (``Prefer: wait=600``). Needs the Azure role Log Analytics Reader (or Reader) on the workspace
  and, for a delegated (device code) sign-in, the permission ``Data.Read`` of "Log Analytics API" (the
  signed-in responder needs the role too). Retention is the workspace's own
  (90 days free for Sentinel-enabled workspaces, often longer).
* ``DEFENDER``: Defender XDR advanced hunting through Graph (``POST {graph}/v1.0/security/runHuntingQuery``).
  Limits: 100,000 rows and 124 MB per result (HTTP 400 beyond), 45 calls per minute, 10 minutes of
  running time per hour, 200 s per request; data of the last 30 days. Needs ``ThreatHunting.Read.All``.

``canonical`` is the canonical event source the rows become when imported (schema.py), None when
the importer has no mapping for the table yet: such rows are kept as evidence and in the ledger,
but never count as coverage of a canonical source.
"""

from __future__ import annotations

from dataclasses import dataclass

LA_PERMISSIONS = ("Azure role Log Analytics Reader on the workspace", "Log Analytics API Data.Read (device code)")
HUNTING_PERMISSIONS = ("ThreatHunting.Read.All",)
LA_ROW_LIMIT = 500_000
HUNTING_ROW_LIMIT = 100_000


@dataclass(frozen=True)
class QuerySource:
    """One table the collector can pull with KQL.

    Attributes:
        NAME: Registry key (``--sources`` value): the table's name.
        DESCRIPTION: One line for people.
        kind: ``log_analytics`` or ``hunting``.
        tables: Table names to try in order (a renamed table's old name follows its new one).
        time_field: The time column each slice filters on (``TimeGenerated``, ``Timestamp``).
        permissions: What the app needs.
        policy: Pacing policy (a key of graph.client.POLICIES).
        canonical: Canonical event source of the imported rows, or None (kept as evidence only).
        row_limit: Rows at which a result is taken as truncated and the slice is halved.
        retention_days: How far back the service keeps the table by default (None: the workspace decides).
    """

    NAME: str
    DESCRIPTION: str
    kind: str
    tables: tuple[str, ...]
    time_field: str
    permissions: tuple[str, ...]
    policy: str
    canonical: str | None
    row_limit: int
    retention_days: int | None = None


def _la(table: str, canonical: str | None, what: str) -> QuerySource:
    return QuerySource(table, f"Log Analytics {table}: {what}", "log_analytics", (table,), "TimeGenerated",
                       LA_PERMISSIONS, "log_analytics", canonical, LA_ROW_LIMIT)


def _hunting(table: str, canonical: str | None, what: str, *older: str) -> QuerySource:
    return QuerySource(table, f"Defender XDR advanced hunting {table}: {what}", "hunting", (table, *older),
                       "Timestamp", HUNTING_PERMISSIONS, "hunting", canonical, HUNTING_ROW_LIMIT, 30)


LOG_ANALYTICS: dict[str, QuerySource] = {s.NAME: s for s in (
    _la("SigninLogs", "signin_interactive", "interactive user sign-ins"),
    _la("AADNonInteractiveUserSignInLogs", "signin_noninteractive", "non-interactive user sign-ins"),
    _la("AADServicePrincipalSignInLogs", "signin_serviceprincipal", "service principal sign-ins"),
    _la("AADManagedIdentitySignInLogs", "signin_managedidentity", "managed identity sign-ins"),
    _la("AuditLogs", "directory_audit", "Entra directory audit log"),
    _la("OfficeActivity", "mail_access", "unified audit log (MailItemsAccessed, inbox rules ...)"),
    _la("MicrosoftGraphActivityLogs", None, "Graph requests with the token's SignInActivityId"),
)}

DEFENDER: dict[str, QuerySource] = {s.NAME: s for s in (
    _hunting("CloudAppEvents", None, "cloud app activity incl. MailItemsAccessed (30 days)"),
    _hunting("GraphApiAuditEvents", None, "Graph requests (30 days, a copy of the Graph activity log)"),
    _hunting("EntraIdSignInEvents", None, "interactive and non-interactive sign-ins (30 days)",
             "AADSignInEventsBeta"),
)}

BACKENDS: dict[str, dict[str, QuerySource]] = {"log-analytics": LOG_ANALYTICS, "defender": DEFENDER}
DESCRIPTION = "KQL query sources per backend: log-analytics (a workspace) and defender (advanced hunting)"
