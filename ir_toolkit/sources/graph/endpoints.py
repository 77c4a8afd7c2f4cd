"""One endpoint map for the Microsoft clouds: every authority, Graph root, Log Analytics root and scope.

Sources: Microsoft Graph national cloud deployments, Entra national cloud authentication and the
Azure Monitor Logs query API endpoints per cloud (see docs/collect.md). GCC (moderate) uses the
worldwide endpoints, so it is ``global`` here. Defender advanced hunting goes through Graph
(``security/runHuntingQuery``), so it has no root of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from ir_toolkit.errors import UserError

CLOUD_ENDPOINTS: dict[str, dict[str, str]] = {
    "global": {"authority_host": "https://login.microsoftonline.com", "graph": "https://graph.microsoft.com",
               "log_analytics": "https://api.loganalytics.io"},
    "usgov": {"authority_host": "https://login.microsoftonline.us", "graph": "https://graph.microsoft.us",
              "log_analytics": "https://api.loganalytics.us"},
    "usgovdod": {"authority_host": "https://login.microsoftonline.us", "graph": "https://dod-graph.microsoft.us",
                 "log_analytics": "https://api.loganalytics.us"},
    "china": {"authority_host": "https://login.partner.microsoftonline.cn",
              "graph": "https://microsoftgraph.chinacloudapi.cn", "log_analytics": "https://api.loganalytics.azure.cn"},
}
DESCRIPTION = "Entra authority, Graph root and Log Analytics query root per cloud (global, usgov, usgovdod, china)"


@dataclass(frozen=True)
class Endpoints:
    """Where to sign in and where to call Graph.

    Attributes:
        cloud: The cloud name (a key of CLOUD_ENDPOINTS).
        authority: MSAL authority URL including the tenant.
        graph_root: Graph service root without a version (``https://graph.microsoft.com``).
        scope: The ``.default`` scope of that Graph root.
        custom_authority: True when --authority-url overrode the map (skip instance discovery).
        log_analytics_root: Log Analytics query API root without a version (``https://api.loganalytics.io``).
    """

    cloud: str
    authority: str
    graph_root: str
    scope: str
    custom_authority: bool = False
    log_analytics_root: str = ""

    @property
    def log_analytics_scope(self) -> str:
        """The ``.default`` scope of the Log Analytics root (tokens for Graph are not accepted there)."""
        return f"{self.log_analytics_root}/.default"

    def url(self, version: str, path: str) -> str:
        """Absolute URL of ``path`` under ``graph_root/version``."""
        return f"{self.graph_root}/{version}/{path.lstrip('/')}"


def resolve(cloud: str, tenant: str, authority_url: str | None = None, graph_url: str | None = None,
            log_analytics_url: str | None = None) -> Endpoints:
    """Endpoints for ``cloud`` and ``tenant``, with optional overrides (test servers, private endpoints).

    Args:
        cloud: global, usgov, usgovdod or china.
        tenant: Tenant id or domain (becomes the authority path).
        authority_url: Full authority URL (``https://host[:port]/TENANT``) overriding the map.
        graph_url: Graph root (``https://host[:port]``) overriding the map; the scope follows it.
        log_analytics_url: Log Analytics root overriding the map (same rules as ``graph_url``).

    Raises:
        UserError: for an unknown cloud or a malformed override.
    """
    if cloud not in CLOUD_ENDPOINTS:
        raise UserError(f"unknown cloud {cloud!r}: choose one of {', '.join(CLOUD_ENDPOINTS)}")
    if not tenant or "/" in tenant.strip("/"):
        raise UserError(f"--tenant {tenant!r}: give a tenant id or domain")
    entry = CLOUD_ENDPOINTS[cloud]
    for name, value in (("--authority-url", authority_url), ("--graph-url", graph_url),
                        ("--log-analytics-url", log_analytics_url)):
        if value is not None and not value.startswith(("https://", "http://")):
            raise UserError(f"{name} {value!r}: must be an http(s) URL")
    for name, value in (("--graph-url", graph_url), ("--log-analytics-url", log_analytics_url)):
        if value is not None and value.startswith("http://") and \
                urlsplit(value).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise UserError(f"{name} {value!r}: plain http is only allowed on loopback (tokens would travel "
                            "in clear); use https")
    if authority_url is not None and not authority_url.startswith("https://"):
        raise UserError(f"--authority-url {authority_url!r}: MSAL requires an https authority")
    graph_root = (graph_url or entry["graph"]).rstrip("/")
    authority = (authority_url or f"{entry['authority_host']}/{tenant.strip('/')}").rstrip("/")
    la_root = (log_analytics_url or entry["log_analytics"]).rstrip("/")
    return Endpoints(cloud=cloud, authority=authority, graph_root=graph_root, scope=f"{graph_root}/.default",
                     custom_authority=authority_url is not None, log_analytics_root=la_root)


def ca_bundle() -> str | None:
    """The CA bundle from REQUESTS_CA_BUNDLE or SSL_CERT_FILE (private CAs, TLS inspection), if set."""
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value:
            return value
    return None
