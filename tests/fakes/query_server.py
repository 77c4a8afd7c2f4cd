"""A fake Log Analytics query API and Defender advanced hunting (Graph runHuntingQuery) over HTTPS on loopback.

Serves the rows it is given (``FakeQueryService(la={table: rows}, hunting={table: rows})``):

* ``POST /v1/workspaces/{id}/query`` (body ``{"query", "timespan"}``): answers
  ``{"tables": [{"name": "PrimaryResult", "columns": [...], "rows": [[...]]}]}``. A result above
  ``la_row_limit`` rows is cut there and marked with a ``PartialError`` (E_QUERY_RESULT_SET_TOO_LARGE),
  as the real API does at 500,000 rows / 64 MB. Workspaces not in ``workspaces`` answer 404
  (WorkspaceNotFoundError); ``denied_workspaces`` answer 403 (InsufficientAccessError).
* ``POST /v1.0/security/runHuntingQuery`` (body ``{"Query"}``): answers ``{"schema", "results"}``.
  A result above ``hunting_row_limit`` is silently cut there (the documented "maximum of 100,000
  rows"); a table in ``missing_tables`` answers 400 "Failed to resolve table expression".
  ``hunting_allowed=False`` answers 403 (no ThreatHunting.Read.All).

Read-only Graph probes for ``preflight`` (GET, one record each): ``/v1.0/subscribedSkus`` (``skus``),
``/beta/auditLogs/signIns`` (403 Authentication_RequestFromNonPremiumTenantOrB2CTenant unless
``premium``), ``directoryAudits``, ``security/auditLog/queries``, ``servicePrincipals``, ``applications``,
``oauth2PermissionGrants``, ``identityProtection/riskDetections``; a path containing one of ``denied``
answers 403 Authorization_RequestDenied (a permission the app lacks).

Queries understood: a slice query (``T | where C >= datetime(a) and C < datetime(b) | order by C asc``)
and a readiness query (``union withsource=SourceTable isfuzzy=true T1, T2 | summarize ... by SourceTable``).
Faults as in graph_server (``inject("429", path="query", retry_after=1)``); every request is in ``log``.
"""

from __future__ import annotations

import bisect
import json
import re
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from tests.fakes.authority import make_tls_cert, server_context
from tests.fakes.graph_server import FAULTS, Fault
from tests.fakes.loopback import LoopbackServer

SLICE = re.compile(r"^(\w+) \| where (\w+) >= datetime\(([^)]+)\) and \2 < datetime\(([^)]+)\) \| order by \2 asc$")
UNION = re.compile(r"^union withsource=SourceTable isfuzzy=true ([\w, ]+) \| summarize .* by SourceTable$")


def _ts(value: Any) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class FakeQueryService(LoopbackServer):
    """Both query APIs on one HTTPS port; ``url`` is the root for --log-analytics-url and --graph-url.

    Args:
        la: Log Analytics table -> rows (each with TimeGenerated and Type).
        hunting: Advanced hunting table -> rows (each with Timestamp).
        workspaces: Workspace ids that exist.
        denied_workspaces: Workspace ids that answer 403.
        la_row_limit, hunting_row_limit: Row limits (the real ones: 500,000 and 100,000).
        missing_tables: Hunting tables this tenant does not have (400).
        hunting_allowed: False answers 403 to every hunting query.
        token_ok: Decides whether a bearer token is valid.
        folder: Where the TLS certificate is written (``ca_file``).
        delay: Seconds each query takes.
        rate: (requests, seconds): 429 with Retry-After beyond that many queries per window (the documented
            limits: Log Analytics 200 per 30 s per user, advanced hunting 45 per minute per tenant).
        skus: subscribedSkus entries (None: 403, the app cannot read licences).
        premium: False answers sign-in probes with Microsoft's no-P1/P2 error.
        denied: Path substrings answered 403 Authorization_RequestDenied.
        oldest: Time of the oldest sign-in / directory audit (answers ``$orderby=... asc&$top=1``).
        scope_of: The scope a token was issued for (FakeAuthority.scope_of): a Log Analytics call needs a token
            for ``la_url/.default``, a Graph call one for ``url/.default`` (401 InvalidAudience otherwise).
        hunting_too_large: A hunting result of more rows answers 400 "exceeded the allowed result size" (the
            service's 124 MB limit, in rows).
    """

    def __init__(self, la: dict[str, list[dict[str, Any]]] | None = None,
                 hunting: dict[str, list[dict[str, Any]]] | None = None, *, workspaces: tuple[str, ...] = (),
                 denied_workspaces: tuple[str, ...] = (), la_row_limit: int = 500_000,
                 hunting_row_limit: int = 100_000, missing_tables: tuple[str, ...] = (),
                 hunting_allowed: bool = True, token_ok: Callable[[str], bool] | None = None,
                 folder: Path | None = None, delay: float = 0.0, rate: tuple[int, float] | None = None,
                 skus: list[dict[str, Any]] | None = None, premium: bool = True, denied: tuple[str, ...] = (),
                 oldest: str = "2023-06-01T00:00:05.0000000Z", hunting_too_large: int | None = None,
                 scope_of: Callable[[str], str] | None = None) -> None:
        self.la, self.hunting = la or {}, hunting or {}
        self.workspaces, self.denied_workspaces = set(workspaces), set(denied_workspaces)
        self.la_row_limit, self.hunting_row_limit = la_row_limit, hunting_row_limit
        self.missing_tables, self.hunting_allowed = set(missing_tables), hunting_allowed
        self.token_ok = token_ok or (lambda t: bool(t))
        self.delay, self.rate = delay, rate
        self.skus, self.premium, self.denied, self.oldest = skus, premium, denied, oldest
        self.hunting_too_large, self.scope_of = hunting_too_large, scope_of
        self._starts: deque[float] = deque()
        self._sorted: dict[int, tuple[list[int], list[dict[str, Any]]]] = {}
        self.folder = Path(folder or tempfile.mkdtemp())
        # its own subject name: a CA bundle holding this and the fake authority's certificate must tell them apart
        self.ca_file, self._key_file = make_tls_cert(self.folder, "fake-query-service", "localhost")
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int, str]] = []  # method, path, status, query
        self.lock = threading.Lock()

    def tls_context(self) -> ssl.SSLContext:
        """TLS with the self-signed certificate of ``ca_file``."""
        return server_context(self.ca_file, self._key_file)

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``: the Graph root (``--graph-url``)."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def la_url(self) -> str:
        """``https://localhost:PORT``: the Log Analytics root (``--log-analytics-url``), another host than the
        Graph root, as in every real cloud, so a client that sent a Graph token there (or the reverse) shows."""
        return f"https://localhost:{self.port}"

    def inject(self, kind: str, path: str = "", nth: int = 1, times: int = 1,
               retry_after: float | None = None) -> Fault:
        """Add a fault (graph_server.FAULTS: 429, 503, 500, drop, truncate) to the nth matching request."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        fault = Fault(kind, path, nth, times, retry_after)
        self.faults.append(fault)
        return fault

    def served(self, path: str = "", status: int | None = None) -> int:
        """Requests whose path contains ``path`` (and answered ``status``)."""
        with self.lock:
            return sum(1 for _, p, s, _ in self.log if path in p and (status is None or s == status))

    def audience_ok(self, token: str, path: str) -> bool:
        """A token issued for this API's root (always true without ``scope_of``)."""
        if self.scope_of is None:
            return True
        root = self.la_url if path.startswith("/v1/workspaces/") else self.url
        return self.scope_of(token).split()[0:1] == [f"{root}/.default"]

    def fault_for(self, path: str) -> Fault | None:
        with self.lock:
            hit = None
            for f in self.faults:
                if f.path in path:
                    f.seen += 1
                    if hit is None and f.nth <= f.seen < f.nth + f.times:
                        f.fired += 1
                        hit = f
            return hit

    def over_rate(self) -> float | None:
        """Seconds until the rate allows a query, or None when it is allowed (and counted)."""
        if self.rate is None:
            return None
        n, period = self.rate
        with self.lock:
            now = time.monotonic()
            while self._starts and now - self._starts[0] >= period:
                self._starts.popleft()
            if len(self._starts) >= n:
                return period - (now - self._starts[0])
            self._starts.append(now)
            return None

    def rows_between(self, rows: list[dict[str, Any]], column: str, lo: str, hi: str) -> list[dict[str, Any]]:
        """Rows with ``lo <= column < hi``, oldest first (tables are sorted once, then bisected)."""
        with self.lock:
            index = self._sorted.get(id(rows))
            if index is None:
                pairs = sorted(((_ts(r[column]).value, i) for i, r in enumerate(rows)))
                index = self._sorted[id(rows)] = ([p[0] for p in pairs], [rows[p[1]] for p in pairs])
        keys, ordered = index
        return ordered[bisect.bisect_left(keys, _ts(lo).value): bisect.bisect_left(keys, _ts(hi).value)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeQueryService

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _send(self, status: int, body: Any, query: str = "", headers: dict[str, str] | None = None,
              fault: Fault | None = None) -> None:
        data = json.dumps(body).encode()
        with self.fake.lock:
            self.fake.log.append((self.command, self.path, status, query))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault is not None and fault.kind in ("drop", "truncate"):
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            if fault.kind == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, query: str = "",
               headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"code": code, "message": message}}, query, headers)

    def do_GET(self) -> None:  # noqa: N802
        fake = self.fake
        path = urlsplit(self.path).path
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not fake.token_ok(auth[7:]):
            return self._error(401, "InvalidAuthenticationToken", "token not accepted")
        if not fake.audience_ok(auth[7:], path):
            return self._error(401, "InvalidAudience", "token issued for another resource")
        if any(d in path for d in fake.denied) or (path.endswith("/subscribedSkus") and fake.skus is None):
            return self._error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        if path.endswith("/subscribedSkus"):
            return self._send(200, {"value": fake.skus})
        if path.endswith("/auditLogs/signIns") and not fake.premium:
            return self._error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                               "Neither tenant is B2C or tenant doesn't have premium license")
        if re.match(r"^/(beta|v1\.0)/(auditLogs/(signIns|directoryAudits)|security/auditLog/queries|servicePrincipals|"
                    r"applications|oauth2PermissionGrants|identityProtection/riskDetections)$", path):
            record: dict[str, Any] = {"id": str(uuid.uuid4())}
            if "$orderby" in parse_qs(urlsplit(self.path).query):  # the oldest record the fake tenant keeps
                record["createdDateTime"] = record["activityDateTime"] = fake.oldest
            return self._send(200, {"value": [record]})
        return self._error(404, "Request_ResourceNotFound", f"no route {path}")

    def do_POST(self) -> None:  # noqa: N802
        fake = self.fake
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        path = urlsplit(self.path).path
        query = str(body.get("query") or body.get("Query") or "")
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not fake.token_ok(auth[7:]):
            return self._error(401, "InvalidAuthenticationToken", "token not accepted", query)
        if not fake.audience_ok(auth[7:], path):
            return self._error(401, "InvalidAudience", "token issued for another resource", query)
        fault = fake.fault_for(path)
        if fault is not None and fault.kind in ("429", "503", "500"):
            hdrs = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return self._error(int(fault.kind), "TooManyRequests" if fault.kind == "429" else "ServiceUnavailable",
                               "injected fault", query, hdrs)
        wait = fake.over_rate()
        if wait is not None:
            return self._error(429, "TooManyRequests", "rate limit", query, {"Retry-After": f"{wait:.3f}"})
        if fake.delay:
            time.sleep(fake.delay)
        la = re.match(r"^/v1/workspaces/([^/]+)/query$", path)
        if la:
            return self._la(la.group(1), query, fault)
        if path == "/v1.0/security/runHuntingQuery":
            return self._hunting(query, fault)
        return self._error(404, "NotFound", f"no route {path}", query)

    def _la(self, workspace: str, query: str, fault: Fault | None) -> None:
        fake = self.fake
        if workspace in fake.denied_workspaces:
            return self._error(403, "InsufficientAccessError", "The provided credentials have insufficient access "
                               "to perform the requested operation", query)
        if workspace not in fake.workspaces:
            return self._error(404, "WorkspaceNotFoundError", f"Workspace {workspace} not found", query)
        union = UNION.match(query)
        if union:
            rows = []
            for table in (t.strip() for t in union.group(1).split(",")):
                if fake.la.get(table):
                    times = [_ts(r["TimeGenerated"]) for r in fake.la[table]]
                    rows.append([table, _iso(min(times)), _iso(max(times)), len(times)])
            return self._send(200, {"tables": [{"name": "PrimaryResult", "columns": _columns(
                ["SourceTable", "oldest", "newest", "rows"]), "rows": rows}]}, query, fault=fault)
        m = SLICE.match(query)
        if not m:
            return self._error(400, "BadArgumentError", "query not understood by the fake", query)
        table, column, lo, hi = m.groups()
        if table not in fake.la:
            return self._error(400, "BadArgumentError", f"Failed to resolve table expression named '{table}'", query)
        rows = fake.rows_between(fake.la[table], column, lo, hi)
        names: list[str] = []
        for r in rows:
            names += [k for k in r if k not in names]
        answer: dict[str, Any] = {"tables": [{"name": "PrimaryResult", "columns": _columns(names),
                                              "rows": [[r.get(n) for n in names] for r in rows[:fake.la_row_limit]]}]}
        if len(rows) > fake.la_row_limit:
            answer["error"] = {"code": "PartialError", "message": "There were some errors when processing your query.",
                               "details": [{"code": "EngineError", "message": "Something went wrong processing your "
                                            "query on the server.", "innererror": {
                                                "code": "-2133196797", "message": "Query result set has exceeded the "
                                                f"internal record count limit {fake.la_row_limit} "
                                                "(E_QUERY_RESULT_SET_TOO_LARGE)"}}]}
        self._send(200, answer, query, fault=fault)

    def _hunting(self, query: str, fault: Fault | None) -> None:
        fake = self.fake
        if not fake.hunting_allowed:
            return self._error(403, "Forbidden", "Missing application roles. API required roles: "
                               "ThreatHunting.Read.All", query)
        union = UNION.match(query)
        if union:
            results = []
            for table in (t.strip() for t in union.group(1).split(",")):
                if table in fake.hunting and table not in fake.missing_tables and fake.hunting[table]:
                    times = [_ts(r["Timestamp"]) for r in fake.hunting[table]]
                    results.append({"SourceTable": table, "oldest": _iso(min(times)), "newest": _iso(max(times)),
                                    "rows": len(times)})
            return self._send(200, {"schema": [], "results": results}, query, fault=fault)
        m = SLICE.match(query)
        if not m:
            return self._error(400, "BadRequest", "query not understood by the fake", query)
        table, column, lo, hi = m.groups()
        if table in fake.missing_tables or table not in fake.hunting:
            return self._error(400, "BadRequest", f"Failed to resolve table expression named '{table}'", query)
        rows = fake.rows_between(fake.hunting[table], column, lo, hi)
        if fake.hunting_too_large is not None and len(rows) > fake.hunting_too_large:
            return self._error(400, "BadRequest", "Query execution has exceeded the allowed result size. Optimize "
                               "your query by taking fewer results and try again.", query)
        rows = rows[: fake.hunting_row_limit]
        schema = [{"name": k, "type": "String"} for k in (rows[0] if rows else {})]
        self._send(200, {"@odata.context": "https://graph/$metadata#microsoft.graph.security.huntingQueryResults",
                         "schema": schema, "results": rows}, query, fault=fault)


def _columns(names: list[str]) -> list[dict[str, str]]:
    return [{"name": n, "type": "datetime" if n in ("TimeGenerated", "oldest", "newest") else "string"}
            for n in names]


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


FakeQueryService.handler = _Handler
