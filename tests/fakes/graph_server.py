"""A fake Microsoft Graph on loopback: the collector's endpoints, paging, policies and fault injection.

Serves the records it is given (``FakeGraph(records)``, keys are collector source names; sign-ins
of every event type go under ``signins``):

* ``GET /{beta,v1.0}/auditLogs/signIns`` with ``$filter`` on createdDateTime (ge/le) and
  ``signInEventTypes/any(t: t eq '...')``, ``$top`` paging with ``@odata.nextLink``/``$skiptoken``
* ``GET .../auditLogs/directoryAudits`` (activityDateTime), ``servicePrincipals``, ``applications``,
  ``oauth2PermissionGrants``, ``identityProtection/riskDetections`` (detectedDateTime)
* ``POST .../security/auditLog/queries``, ``GET .../queries/{id}`` (status after ``audit_search_time``),
  ``GET .../queries/{id}/records`` (operation/record type filters, inclusive window)

Policies: ``limits={"auditLogs/": (5, 10.0)}`` answers 429 (with Retry-After unless
``retry_after=False``) beyond N requests per window. Faults: :meth:`FakeGraph.inject`.
``tls=(cert, key)`` serves HTTPS; ``next_link_root`` makes every ``@odata.nextLink`` point to another
root (a foreign host, plain http) as a hostile or broken server would.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pandas as pd

from tests.fakes.loopback import LoopbackServer

ROUTES = {  # path suffix -> (records key, time field)
    "auditLogs/signIns": ("signins", "createdDateTime"),
    "auditLogs/directoryAudits": ("directory_audits", "activityDateTime"),
    "servicePrincipals": ("service_principals", None),
    "applications": ("applications", None),
    "oauth2PermissionGrants": ("oauth2_permission_grants", None),
    "identityProtection/riskDetections": ("risk_detections", "detectedDateTime"),
}
FAULTS = ("429", "503", "500", "drop", "truncate", "duplicate", "expire", "query_failed", "stall", "echo_token")


@dataclass
class Fault:
    """Apply ``kind`` to the ``nth`` .. ``nth+times-1`` requests whose path contains ``path``."""

    kind: str
    path: str = ""
    nth: int = 1
    times: int = 1
    retry_after: float | None = None
    seen: int = 0
    fired: int = 0
    method: str | None = None
    stall_s: float = 30.0


def _ts(value: Any) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class FakeGraph(LoopbackServer):
    """The server. Use as a context manager; ``url`` is the Graph root to pass as ``--graph-url``.

    Args:
        records: Source name -> records (``signins`` holds all four sign-in event types).
        page_delay: Seconds each collection page takes to serve.
        audit_search_time: Seconds an audit query runs before it succeeds.
        limits: Path substring -> (requests, seconds): 429 beyond that.
        retry_after: Send Retry-After with policy 429s.
        audit_record_limit: Queries matching more records report isRecordCountLimitExceeded.
        token_ok: Decides whether a bearer token is valid (default: any non-expired token).
        tls: (certificate, key) PEM files: serve HTTPS (see tests.fakes.authority.make_tls_cert).
        next_link_root: Root (``scheme://host:port``) put into every ``@odata.nextLink`` instead of this server's.
    """

    def __init__(self, records: dict[str, list[dict[str, Any]]], *, page_delay: float = 0.0,
                 audit_search_time: float = 0.0, limits: dict[str, tuple[int, float]] | None = None,
                 retry_after: bool = True, audit_record_limit: int | None = None,
                 token_ok: Callable[[str], bool] | None = None, tls: tuple[Path, Path] | None = None,
                 next_link_root: str | None = None) -> None:
        self.tls, self.next_link_root = tls, next_link_root
        self.records = {k: list(v) for k, v in records.items()}
        self.page_delay, self.audit_search_time = page_delay, audit_search_time
        self.limits = limits or {}
        self.retry_after, self.audit_record_limit = retry_after, audit_record_limit
        self.token_ok = token_ok or (lambda t: bool(t))
        self.faults: list[Fault] = []
        self.expired: set[str] = set()
        self.queries: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str, int]] = []
        self.tokens_seen: set[str] = set()
        self.prefer: list[str] = []
        self.lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {k: deque() for k in self.limits}
        self._times: dict[int, pd.Timestamp] = {}
        self._selected: dict[tuple[str, str], list[dict[str, Any]]] = {}

    @property
    def url(self) -> str:
        """The Graph root (``http://127.0.0.1:PORT``, https with ``tls``)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """TLS with the ``tls`` certificate, when given."""
        if self.tls is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*self.tls)
        return ctx

    def inject(self, kind: str, path: str = "", nth: int = 1, times: int = 1, retry_after: float | None = None,
               method: str | None = None, stall_s: float = 30.0) -> Fault:
        """Add a fault (see FAULTS) hitting the nth matching request (1-based) ``times`` times."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        fault = Fault(kind, path, nth, times, retry_after, method=method, stall_s=stall_s)
        self.faults.append(fault)
        return fault

    def served(self, path: str = "", status: int | None = None, method: str | None = None) -> int:
        """How many requests whose path contains ``path`` (with ``status``, ``method``) were answered."""
        with self.lock:
            return sum(1 for m, p, s in self.log
                       if path in p and (status is None or s == status) and (method is None or m == method))

    # ----- helpers for the handler ------------------------------------------------------------
    def fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            hit = None
            for f in self.faults:
                if f.path in path and (f.method is None or f.method == method):
                    f.seen += 1
                    if hit is None and f.nth <= f.seen < f.nth + f.times:
                        f.fired += 1
                        hit = f
            return hit

    def over_limit(self, path: str) -> float | None:
        """Seconds until the policy allows this request, or None when it is allowed (and counted)."""
        with self.lock:
            now = time.monotonic()
            for key, (n, period) in self.limits.items():
                if key not in path:
                    continue
                win = self._windows[key]
                while win and now - win[0] >= period:
                    win.popleft()
                if len(win) >= n:
                    return period - (now - win[0])
                win.append(now)
            return None

    def time_of(self, record: dict[str, Any], field: str) -> pd.Timestamp:
        key = id(record)
        if key not in self._times:
            self._times[key] = _ts(record[field])
        return self._times[key]

    def select(self, key: str, field: str | None, flt: str) -> list[dict[str, Any]]:
        with self.lock:
            cached = self._selected.get((key, flt))
        if cached is None:
            cached = self._select(key, field, flt)
            with self.lock:
                self._selected[(key, flt)] = cached
        return cached

    def _select(self, key: str, field: str | None, flt: str) -> list[dict[str, Any]]:
        rows = self.records.get(key, [])
        if field:
            ge = re.search(rf"{field} ge ([0-9T:.\-Z+]+)", flt)
            le = re.search(rf"{field} le ([0-9T:.\-Z+]+)", flt)
            lo, hi = (_ts(ge.group(1)) if ge else None), (_ts(le.group(1)) if le else None)
            rows = [r for r in rows if (lo is None or self.time_of(r, field) >= lo)
                    and (hi is None or self.time_of(r, field) <= hi)]
            rows.sort(key=lambda r: (self.time_of(r, field), str(r.get("id"))), reverse=True)
        etype = re.search(r"signInEventTypes/any\(t: t eq '(\w+)'\)", flt)
        if key == "signins":
            wanted = etype.group(1) if etype else "interactiveUser"  # Graph's beta default
            rows = [r for r in rows if wanted in r.get("signInEventTypes", [])]
        return rows

    def audit_matches(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        if "_rows" not in q:
            q["_rows"] = self._audit_matches(q)
        return q["_rows"]  # type: ignore[no-any-return]

    def _audit_matches(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        lo, hi = _ts(q["filterStartDateTime"]), _ts(q["filterEndDateTime"])
        ops, types = set(q.get("operationFilters") or []), set(q.get("recordTypeFilters") or [])
        rows = [r for r in self.records.get("audit_log", [])
                if lo <= self.time_of(r, "createdDateTime") <= hi  # inclusive: the collector must cope
                and (not ops or r.get("operation") in ops) and (not types or r.get("auditLogRecordType") in types)]
        rows.sort(key=lambda r: (self.time_of(r, "createdDateTime"), str(r.get("id"))))
        return rows


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeGraph

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default logging
        return

    # ----- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, fault: Fault | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        fake = self.fake
        with fake.lock:
            fake.log.append((self.command, self.path, status))
        if fault is not None and fault.kind == "truncate":
            data = data[: max(1, len(data) // 2)]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("request-id", str(uuid.uuid4()))
        client_req = self.headers.get("client-request-id")
        if client_req:
            self.send_header("client-request-id", client_req)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault is not None and fault.kind == "drop":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"code": code, "message": message}}, headers)

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with fake.lock:
            fake.tokens_seen.add(token)
            if self.headers.get("Prefer"):
                fake.prefer.append(self.headers["Prefer"])
        fault = fake.fault_for(self.command, self.path)
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.stall_s)
        if fault is not None and fault.kind == "expire":
            with fake.lock:
                fake.expired.add(token)
        if not token or token in fake.expired or not fake.token_ok(token):
            return self._error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
        if fault is not None and fault.kind == "echo_token":  # a server that quotes the credential back
            return self._error(400, "InvalidAuthenticationToken", f"Access token validation failure: {token}; "
                               f"header was Authorization: {auth}")
        if fault is not None and fault.kind in ("429", "503", "500"):
            hdrs = {"Retry-After": _num(fault.retry_after)} if fault.retry_after is not None else {}
            return self._error(int(fault.kind), "TooManyRequests" if fault.kind == "429" else "ServiceUnavailable",
                               "injected fault", hdrs)
        wait = fake.over_limit(path)
        if wait is not None:
            hdrs = {"Retry-After": _num(wait)} if fake.retry_after else {}
            return self._error(429, "TooManyRequests", "Too many requests", hdrs)
        m = re.match(r"^/(beta|v1\.0)/(.*)$", path)
        if not m:
            return self._error(404, "NotFound", "unknown version")
        rest = m.group(2)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if rest.startswith("security/auditLog/queries"):
            return self._audit(rest, params, payload, fault)
        if rest in ROUTES and self.command == "GET":
            key, field = ROUTES[rest]
            rows = fake.select(key, field, params.get("$filter", ""))
            return self._page(rows, params, fault, fake.page_delay)
        return self._error(404, "Request_ResourceNotFound", f"no route {rest}")

    def _page(self, rows: list[dict[str, Any]], params: dict[str, str], fault: Fault | None, delay: float) -> None:
        fake = self.fake
        top = int(params.get("$top", "100"))
        offset = int(params.get("$skiptoken", "0") or 0)
        if delay:
            time.sleep(delay)
        serve_at = max(0, offset - top) if fault is not None and fault.kind == "duplicate" else offset
        body: dict[str, Any] = {"value": rows[serve_at: serve_at + top]}
        nxt = offset + top if serve_at == offset else offset
        if nxt < len(rows):
            query = {k: v for k, v in params.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(nxt)
            root = fake.next_link_root or f"{'https' if fake.tls else 'http'}://{self.headers.get('Host')}"
            base = f"{root}{urlsplit(self.path).path}"
            body["@odata.nextLink"] = f"{base}?{urlencode(query, quote_via=quote, safe='$')}"
        self._send(200, body, fault=fault)

    def _audit(self, rest: str, params: dict[str, str], payload: bytes, fault: Fault | None) -> None:
        fake = self.fake
        parts = rest.split("/")
        if len(parts) == 3 and self.command == "POST":
            try:
                body = json.loads(payload)
                _ts(body["filterStartDateTime"]), _ts(body["filterEndDateTime"])
            except (ValueError, KeyError, TypeError):
                return self._error(400, "BadRequest", "invalid auditLogQuery")
            qid = str(uuid.uuid4())
            with fake.lock:
                fake.queries[qid] = {**body, "id": qid, "status": "notStarted", "_created": time.monotonic()}
            return self._send(201, {k: v for k, v in fake.queries[qid].items() if not k.startswith("_")},
                              fault=fault)
        if len(parts) < 4 or parts[3] not in fake.queries:
            return self._error(404, "NotFound", "no such query")
        q = fake.queries[parts[3]]
        if len(parts) == 4:
            if fault is not None and fault.kind == "query_failed":
                q["_failed"] = True
            if q.get("_failed"):
                q["status"] = "failed"
            elif time.monotonic() - q["_created"] >= fake.audit_search_time:
                q["status"] = "succeeded"
                n = len(fake.audit_matches(q))
                limit = fake.audit_record_limit
                q["recordCountLimit"] = limit if limit is not None else 1_000_000
                q["isRecordCountLimitExceeded"] = limit is not None and n > limit
                q["approximateReturnedRecordCount"] = n
            else:
                q["status"] = "running"
            return self._send(200, {k: v for k, v in q.items() if not k.startswith("_")}, fault=fault)
        if parts[4] == "records" and q.get("status") == "succeeded":
            return self._page(fake.audit_matches(q), params, fault, fake.page_delay)
        return self._error(400, "BadRequest", "query not finished")


def _num(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"




FakeGraph.handler = _Handler
