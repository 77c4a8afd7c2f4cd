"""Purview audit log queries for one slice: create, save the id, poll, then page the records.

``POST security/auditLog/queries`` returns the query id, which is written to the checkpoint before
any polling so a restarted collection keeps polling the same query. A query that fails or is
cancelled is created again (``Options.query_attempts``); one that reports
``isRecordCountLimitExceeded`` raises :class:`LimitExceeded` so the collector halves the slice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ir_toolkit.sources.graph.client import GraphError, Stats
from ir_toolkit.sources.graph.slicing import Slice, iso_z
from ir_toolkit.sources.graph.sources import Source

if TYPE_CHECKING:
    from ir_toolkit.sources.graph.collector import Collector, Options

log = logging.getLogger(__name__)


class LimitExceeded(Exception):
    """An audit query reported isRecordCountLimitExceeded."""


def audit_body(sl: Slice, options: Options) -> dict[str, Any]:
    """The auditLogQuery body of a slice (window, operation and record type filters)."""
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.security.auditLogQuery",
        "displayName": f"ir_toolkit {sl.source} {iso_z(sl.start)}..{iso_z(sl.end)}",
        "filterStartDateTime": iso_z(sl.start), "filterEndDateTime": iso_z(sl.end),
    }
    if options.audit_operations:
        body["operationFilters"] = list(options.audit_operations)
    if options.audit_record_types:
        body["recordTypeFilters"] = list(options.audit_record_types)
    return body


def run_audit(col: Collector, sl: Slice, src: Source, stats: Stats) -> None:
    """Collect one audit-log slice (resuming its saved query or page, if any)."""
    key = sl.key
    state = col.ckpt.slices[key]
    queries = col.endpoints.url(src.version, src.path)
    while not state.get("exhausted") and state["next_link"] is None and state["pages"] == 0:
        if not state.get("query_id"):
            body = audit_body(sl, col.options)
            created = col.client.post(queries, body, policy=src.policy, stats=stats)
            col.ckpt.update(key, query_id=str(created["id"]), requested=body,
                            query_attempts=state["query_attempts"] + 1)
        status = _poll(col, f"{queries}/{state['query_id']}", src, stats)
        if status.get("status") == "succeeded":
            if status.get("isRecordCountLimitExceeded"):
                raise LimitExceeded(f"audit query {state['query_id']} exceeded its record limit "
                                    f"(about {status.get('approximateReturnedRecordCount')} records)")
            top = col.options.page_size or src.page_size
            col.ckpt.update(key, next_link=f"{queries}/{state['query_id']}/records?%24top={top}")
            break
        if state["query_attempts"] >= col.options.query_attempts:
            raise GraphError(f"audit query {state['query_id']} ended {status.get('status')!r} "
                             f"{state['query_attempts']} times")
        log.info("audit query %s ended %s; creating it again", state["query_id"], status.get("status"))
        col.ckpt.update(key, query_id=None)
    col.page_through(sl, src, stats, state["next_link"], window_filter=True)


def _poll(col: Collector, url: str, src: Source, stats: Stats) -> dict[str, Any]:
    """Poll a query until it ends, waiting poll_interval, doubling up to poll_cap."""
    delay = col.options.poll_interval
    while True:
        status = col.client.get(url, policy=src.policy, stats=stats)
        if status.get("status") in ("succeeded", "failed", "cancelled"):
            return status
        col.client.sleep(delay)
        delay = min(delay * 2, col.options.poll_cap)
