"""The collector sources: NAME -> what to ask Graph, under which limits, with which permission.

Permissions are the least-privileged application permissions (delegated device-code sign-in needs
the same scopes plus a directory role: Global Reader or Security Reader; Purview audit queries need
the Audit Reader role group). See docs/collect.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_AUDIT_OPERATIONS = (
    "MailItemsAccessed", "Send", "New-InboxRule", "Set-InboxRule", "UpdateInboxRules",
    "Add-MailboxPermission", "Consent to application.", "Add service principal credentials.",
)


@dataclass(frozen=True)
class Source:
    """One thing the collector can pull.

    Attributes:
        NAME: Registry key (``--sources`` value).
        DESCRIPTION: One line for people.
        kind: ``list`` (a paged collection) or ``audit_query`` (Purview create/poll/page).
        version: Graph version (``beta`` where v1.0 lacks the fields IR needs).
        path: Path under the version root.
        time_field: Property filtered with ge/le per slice; None for snapshots (not time-sliced).
        event_type: ``signInEventTypes`` value for sign-in sources.
        permissions: Least-privileged application permissions.
        policy: Pacing policy (a key of client.POLICIES).
        concurrency: Slices of this source's policy run at once.
        page_size: ``$top``.
        extra_params: More query parameters.
        headers: Request headers the source needs.
        import_format: The import format (``ir_toolkit.sources.formats.FORMATS``) of the raw files.
    """

    NAME: str
    DESCRIPTION: str
    kind: str
    version: str
    path: str
    time_field: str | None
    permissions: tuple[str, ...]
    policy: str
    event_type: str | None = None
    page_size: int = 1000
    extra_params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    import_format: str = "auto"


def _signins(name: str, event_type: str, what: str) -> Source:
    return Source(name, f"Entra sign-ins: {what} (beta, signInEventTypes filter)", "list", "beta",
                  "auditLogs/signIns", "createdDateTime", ("AuditLog.Read.All", "Directory.Read.All"),
                  "reports", event_type=event_type,
                  headers={"Prefer": "include-unknown-enum-members"},  # newer enum values (token types ...)
                  import_format="graph-signins")


_ALL: list[Source] = [
    _signins("signins_interactive", "interactiveUser", "interactive user"),
    _signins("signins_noninteractive", "nonInteractiveUser", "non-interactive user (refresh/token redemption)"),
    _signins("signins_serviceprincipal", "servicePrincipal", "service principal (app-only)"),
    _signins("signins_managedidentity", "managedIdentity", "managed identity"),
    Source("directory_audits", "Entra directory audit log (consents, credentials, role changes)", "list", "v1.0",
           "auditLogs/directoryAudits", "activityDateTime", ("AuditLog.Read.All", "Directory.Read.All"), "reports",
           import_format="graph-directory-audits"),
    Source("audit_log", "Purview unified audit log via audit log queries (MailItemsAccessed, inbox rules ...)",
           "audit_query", "beta", "security/auditLog/queries", "createdDateTime", ("AuditLogsQuery.Read.All",),
           "audit_query", import_format="graph-audit-records"),
    Source("service_principals", "Service principals with their credentials (snapshot)", "list", "v1.0",
           "servicePrincipals", None, ("Application.Read.All",), "directory", page_size=999,
           import_format="graph-directory-objects"),
    Source("applications", "App registrations with their credentials (snapshot)", "list", "v1.0",
           "applications", None, ("Application.Read.All",), "directory", page_size=999,
           import_format="graph-directory-objects"),
    Source("oauth2_permission_grants", "Delegated permission grants (consents, snapshot)", "list", "v1.0",
           "oauth2PermissionGrants", None, ("DelegatedPermissionGrant.Read.All",), "directory", page_size=999,
           import_format="graph-directory-objects"),
    Source("risk_detections", "Identity Protection risk detections (P2; 1 request/s per tenant)", "list", "v1.0",
           "identityProtection/riskDetections", "detectedDateTime", ("IdentityRiskEvent.Read.All",),
           "identity_protection", page_size=500, import_format="graph-risk-detections"),
]

SOURCES: dict[str, Source] = {s.NAME: s for s in _ALL}


def permissions_help() -> str:
    """One line per source with its least-privileged permissions (for --help and docs)."""
    width = max(map(len, SOURCES))
    return "\n".join(f"  {s.NAME:<{width}}  {', '.join(s.permissions)}" for s in SOURCES.values())


def select(names: str | list[str] | None, registry: Mapping[str, Any] | None = None) -> list[Any]:
    """Sources named in a comma list (None or ``all``: every source), registry order.

    Args:
        names: Comma list or list of names.
        registry: The registry to choose from (default: the Graph sources).

    Raises:
        ValueError: naming the unknown source.
    """
    reg: Mapping[str, Any] = SOURCES if registry is None else registry
    if names is None or names == "all" or names == ["all"]:
        return list(reg.values())
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in wanted if n not in reg]
    if unknown:
        raise ValueError(f"unknown source {unknown[0]!r}: choose from {', '.join(reg)}")
    return [s for s in reg.values() if s.NAME in wanted]
