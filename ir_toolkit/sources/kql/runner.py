"""One slice of a query source = one KQL query, run through the Graph collector's machinery.

The collector (``ir_toolkit.sources.graph.collector``) plans the slices, keeps the checkpoint, halves
a slice on :class:`LimitExceeded` or repeated throttling, and writes the ledger; this runner builds the
slice's query, saves it in the checkpoint before sending it (so the ledger always says what was
asked), sends it with the client's retries and pacing (429 Retry-After, 503, dropped connections),
and hands the rows back with :meth:`Collector.finish_slice`. A query either finishes or is sent again
after a crash: there is no half-read result to resume.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ir_toolkit.sources.graph.audit import LimitExceeded
from ir_toolkit.sources.graph.client import GraphError, Stats
from ir_toolkit.sources.graph.endpoints import Endpoints
from ir_toolkit.sources.graph.slicing import Slice
from ir_toolkit.sources.kql.rows import (
    hunting_rows,
    is_limit,
    la_rows,
    partial_error,
    slice_query,
    timespan,
    unknown_table,
)
from ir_toolkit.sources.kql.sources import QuerySource

if TYPE_CHECKING:
    from ir_toolkit.sources.graph.collector import Collector

log = logging.getLogger(__name__)

WAIT_HEADER = {"Prefer": "wait=600"}  # the query API's longest server-side timeout (default 3 minutes)


class QueryRunner:
    """Runs slices of Log Analytics or advanced hunting sources.

    Args:
        endpoints: Where the APIs are (Log Analytics root; Graph root for advanced hunting).
        workspace: The Log Analytics workspace id (GUID); None for advanced hunting.
    """

    def __init__(self, endpoints: Endpoints, workspace: str | None = None) -> None:
        self.endpoints, self.workspace = endpoints, workspace
        self._tables: dict[str, str] = {}  # source -> the table name this tenant answers to
        self._lock = threading.Lock()

    @property
    def root(self) -> str:
        """The API root of this runner's service (the workspace's Log Analytics root, or Graph for hunting): the
        one root a transport guard lets the client send the token to."""
        return self.endpoints.log_analytics_root if self.workspace else self.endpoints.graph_root

    def url(self, src: QuerySource) -> str:
        """The query endpoint of ``src``'s service."""
        if src.kind == "log_analytics":
            if not self.workspace:
                raise GraphError("a Log Analytics source needs a workspace id")
            return f"{self.endpoints.log_analytics_root}/v1/workspaces/{self.workspace}/query"
        return self.endpoints.url("v1.0", "security/runHuntingQuery")

    def body(self, src: QuerySource, table: str, sl: Slice) -> dict[str, Any]:
        """The request body of one slice."""
        query = slice_query(table, src.time_field, sl)
        if src.kind == "log_analytics":
            return {"query": query, "timespan": timespan(sl)}
        return {"Query": query}

    def run(self, col: Collector, sl: Slice, src: QuerySource, stats: Stats) -> None:
        """Collect one slice (the collector catches LimitExceeded and halves it)."""
        with self._lock:
            known = self._tables.get(src.NAME)
        candidates = [known] if known else list(src.tables)
        for i, table in enumerate(candidates):
            body = self.body(src, table, sl)
            col.ckpt.update(sl.key, requested={"url": self.url(src), **body}, table=table)
            try:
                answer = col.client.request("POST", self.url(src), body=body, policy=src.policy, stats=stats,
                                            headers=WAIT_HEADER if src.kind == "log_analytics" else None)
            except GraphError as exc:
                text = str(exc)
                if exc.status == 400 and is_limit(text):
                    raise LimitExceeded(f"{table}: result over the size limit ({text[:200]})") from None
                if exc.status == 400 and unknown_table(text) and i + 1 < len(candidates):
                    log.info("%s: table %s unknown here; trying %s", src.NAME, table, candidates[i + 1])
                    continue
                raise
            rows = self._rows(src, table, answer)
            with self._lock:
                self._tables[src.NAME] = table
            col.finish_slice(sl, rows, stats, table=table)
            return

    def _rows(self, src: QuerySource, table: str, answer: dict[str, Any]) -> list[dict[str, Any]]:
        partial = partial_error(answer) if src.kind == "log_analytics" else None
        if partial is not None:
            if is_limit(partial):
                raise LimitExceeded(f"{table}: partial result ({partial[:200]})")
            raise GraphError(f"{table}: the query answered with an error: {partial}")
        try:
            rows = la_rows(answer) if src.kind == "log_analytics" else hunting_rows(answer)
        except ValueError as exc:
            raise GraphError(f"{table}: unreadable query answer: {exc}") from None
        if len(rows) >= src.row_limit:
            raise LimitExceeded(f"{table}: {len(rows)} rows reached the {src.row_limit}-row limit")
        return rows
