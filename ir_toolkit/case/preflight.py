"""``ir-toolkit preflight``: sign in once, run the read-only readiness probes, keep the result in the case.

The probes live in :mod:`ir_toolkit.sources.preflight`; here the arguments are checked (before any
connection), the tokens are obtained (Graph, and Log Analytics when a workspace is named, from the
same sign-in), and with a case the document goes to ``case.json`` under ``manifest["preflight"]``
(the report's method section reads it) and into the custody log.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ir_toolkit.arguments import guid, iso_time
from ir_toolkit.case.case import Case
from ir_toolkit.case.collect import CERT_PASSPHRASE_ENV, scaled_client, time_scale
from ir_toolkit.errors import UserError
from ir_toolkit.sources.graph.auth import TokenProvider
from ir_toolkit.sources.graph.endpoints import resolve
from ir_toolkit.sources.preflight import Preflight


def run_preflight(*, client_id: str, mode: str, tenant: str | None = None, cloud: str | None = None,
                  workspace: str | None = None, case: Case | None = None, since: str | None = None,
                  certificate: str | None = None, secret_env: str | None = None, authority_url: str | None = None,
                  graph_url: str | None = None, log_analytics_url: str | None = None) -> dict[str, Any]:
    """Check what this app can read, and how far back; record it in ``case`` when given.

    Args:
        client_id: App registration id.
        mode: device_code, certificate or client_secret.
        tenant: Tenant id or domain (default: the case's).
        cloud: global, usgov, usgovdod, china (default: the case's, else global).
        workspace: Log Analytics workspace id (GUID) to check.
        case: A writable case to record the result in.
        since: Start of the period the investigation needs (default: the case's collection window start).
        certificate, secret_env, authority_url, graph_url, log_analytics_url: As for ``collect``.

    Raises:
        UserError: bad arguments (before any connection) or a failed sign-in.
    """
    ws = guid("--workspace", workspace)
    if since is None and case is not None:
        since = (case.manifest.get("collection") or {}).get("window", {}).get("since")
    start = pd.Timestamp(iso_time("--since", since)) if since else None
    tenant = tenant or (case.tenant if case is not None else None)
    if not tenant:
        raise UserError("--tenant is needed (or --case of a case that names its tenant)")
    endpoints = resolve(cloud or (case.cloud if case is not None else "global"), tenant, authority_url, graph_url,
                        log_analytics_url)
    tokens = TokenProvider(endpoints, client_id, mode, certificate=certificate, secret_env=secret_env,
                           cert_passphrase_env=CERT_PASSPHRASE_ENV)
    scale = time_scale()
    graph = scaled_client(tokens, scale, max_attempts=3, max_throttled=4, allowed_root=endpoints.graph_root)
    la = scaled_client(tokens.for_scope(endpoints.log_analytics_scope), scale, max_attempts=3, max_throttled=4,
                       allowed_root=endpoints.log_analytics_root) if ws else None
    try:
        doc = Preflight(endpoints, graph, la, ws, start, delegated=mode == "device_code").run()
    finally:
        graph.close()
        if la is not None:
            la.close()
    doc.update(tenant=tenant, client_id=client_id, auth=mode)
    if case is not None:
        case.manifest["preflight"] = doc
        case.save()
        case.log_action("preflight", tenant=tenant, client_id=client_id, auth=mode, workspace=ws,
                        available=[r["name"] for r in doc["sources"] if r["available"]],
                        unavailable=[r["name"] for r in doc["sources"] if not r["available"]],
                        permissions_to_add=doc["permissions_to_add"])
    return doc
