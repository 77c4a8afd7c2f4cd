"""Where the logs are: the collection backends and their source registries (a plain dict), checked cheaply.

``graph`` (Microsoft Graph), ``log-analytics`` (a Log Analytics / Sentinel workspace) and ``defender``
(Defender XDR advanced hunting). :func:`check_backend` validates ``--from``, ``--workspace`` and
``--sources`` without importing anything heavy, so the CLI refuses a bad value before it loads the
collector, signs in or connects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ir_toolkit.arguments import guid
from ir_toolkit.errors import UserError
from ir_toolkit.sources.graph.sources import SOURCES, select
from ir_toolkit.sources.kql.sources import DEFENDER, LOG_ANALYTICS

BACKENDS: dict[str, Mapping[str, Any]] = {"graph": SOURCES, "log-analytics": LOG_ANALYTICS, "defender": DEFENDER}
DESCRIPTION = "collection backends: graph, log-analytics (needs --workspace), defender (advanced hunting)"
MIN_SLICE_HOURS, MAX_SLICE_HOURS = 0.25, 24.0 * 366  # a slice is never halved below 15 minutes
MAX_PAGE_SIZE = 1000  # Graph's largest $top (signIns)


def check_backend(backend: str, workspace: str | None, sources: str | None) -> tuple[Mapping[str, Any], str | None]:
    """The source registry of ``backend`` and the workspace id (lower-case GUID), checked (no network).

    Raises:
        UserError: unknown backend, a missing or malformed workspace, or a source the backend does not have.
    """
    if backend not in BACKENDS:
        raise UserError(f"--from {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "log-analytics" and not workspace:
        raise UserError("--from log-analytics needs --workspace ID (the workspace's GUID, Log Analytics > Overview)")
    if backend != "log-analytics" and workspace:
        raise UserError(f"--workspace only applies to --from log-analytics (not --from {backend})")
    registry = BACKENDS[backend]
    try:
        select(sources, registry)
    except ValueError as exc:
        raise UserError(f"--sources: {exc}") from None
    return registry, guid("--workspace", workspace)
