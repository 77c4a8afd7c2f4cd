"""A Microsoft Graph client that survives throttling: paging, Retry-After, jittered backoff, pacing.

One transport seam: ``GraphClient(transport=...)`` takes any ``httpx.BaseTransport`` (tests use a
real loopback server, so the default transport is what they exercise). Time is injected too
(``sleep``, ``clock``) so tests never wait real seconds.

The bearer token goes only to the root the client is bound to (``allowed_root``), over https:
:func:`link_problem` is the one guard, shared by every collector that follows server-given links
(``@odata.nextLink``). Error texts are scrubbed of the token before they are raised.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import pandas as pd

from ir_toolkit.errors import IrToolkitError
from ir_toolkit.sources.graph.endpoints import ca_bundle
from ir_toolkit.textsafe import remember_secret, scrub_text

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}

# Documented per-tenant limits (requests, seconds): Graph throttling limits, see docs/collect.md.
POLICIES: dict[str, tuple[int, float]] = {
    "reports": (5, 10.0),            # identity and access reports: 5 requests / 10 s per app per tenant
    "identity_protection": (1, 1.0),  # riskDetections: 1 request / s per tenant, no Retry-After
    "directory": (200, 10.0),         # directory objects: resource-unit buckets, far above our needs
    "audit_query": (30, 10.0),        # audit log query API: no published rate; gentle pacing of create/poll/page
    "log_analytics": (200, 30.0),     # Log Analytics query API: 200 requests / 30 s per user
    "hunting": (45, 60.0),            # advanced hunting (runHuntingQuery): 45 calls / minute per tenant
}


class TokenSource(Protocol):
    """Anything that hands out bearer tokens (TokenProvider, StaticToken)."""

    def token(self, force_refresh: bool = False) -> str: ...


class GraphError(IrToolkitError):
    """A Graph request that failed for good; carries the ids Microsoft support asks for."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 request_id: str | None = None, client_request_id: str | None = None, url: str = "") -> None:
        self.status, self.code, self.url = status, code, url
        self.request_id, self.client_request_id = request_id, client_request_id
        ids = f" (request-id {request_id}, client-request-id {client_request_id})" \
            if request_id or client_request_id else ""
        super().__init__(scrub_text(f"{message}{ids}"))  # a server may echo the token back


class ThrottleExhausted(GraphError):
    """The API kept answering 429/503 beyond the retry budget: callers may halve their window."""


class UnsafeLink(GraphError):
    """A URL (typically an ``@odata.nextLink``) outside the root the token was issued for: not followed."""


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def link_problem(url: str, root: str) -> str | None:
    """Why the bearer token for ``root`` must not be sent to ``url``; None when it may.

    ``url`` must use the root's scheme, host and port, lie under its path, carry no user info,
    and use https (plain http only when the root itself is a plain-http loopback test server).
    Both are parsed by httpx, the parser that would send the request.
    """
    try:
        u, r = httpx.URL(url), httpx.URL(root)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "not a valid URL"
    if u.scheme != "https" and not (u.scheme == r.scheme == "http" and r.host in LOOPBACK_HOSTS):
        return f"plain {u.scheme or 'scheme-less'} URL (the token travels only over https)"
    if u.scheme != r.scheme:
        return f"{u.scheme} URL for an {r.scheme} root"
    if u.userinfo:
        return "URL with user info"
    if u.host.lower() != r.host.lower() or (u.port or _DEFAULT_PORT.get(u.scheme)) != \
            (r.port or _DEFAULT_PORT.get(r.scheme)):
        return f"another host ({u.host}{':' + str(u.port) if u.port else ''})"
    base = r.path.rstrip("/")
    if base and u.path != base and not u.path.startswith(base + "/"):
        return "a path outside the root"
    return None


_DEFAULT_PORT = {"https": 443, "http": 80}


def ensure_within(url: str, root: str, what: str = "URL") -> None:
    """Raise :class:`UnsafeLink` when the token for ``root`` must not go to ``url`` (see :func:`link_problem`)."""
    problem = link_problem(url, root)
    if problem is not None:
        raise UnsafeLink(f"{what} leaves the Graph root {root}: {problem}; not followed, the token was not sent",
                         url=_short(url))


@dataclass
class Stats:
    """What one unit of work cost: requests, retries and time spent waiting on throttling."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    throttle_wait_s: float = 0.0
    errors: list[str] = field(default_factory=list)


class Pacer:
    """A sliding-window limiter: at most ``limit`` request starts in any ``period`` seconds.

    Thread-safe; ``clock`` and ``sleep`` are injectable.
    """

    def __init__(self, limit: int, period: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, margin: float | None = None) -> None:
        self.limit, self.period = limit, period
        self.margin = period * 0.01 if margin is None else margin  # 100 ms on a 10 s window
        self._clock, self._sleep = clock, sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may start; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.period + self.margin:
                    self._starts.popleft()
                if len(self._starts) < self.limit:
                    self._starts.append(now)
                    return waited
                delay = self._starts[0] + self.period + self.margin - now
            self._sleep(max(delay, 0.001))
            waited += max(delay, 0.001)

    def penalise(self, seconds: float) -> None:
        """After a 429, push every slot back so the whole client honours the server's wait."""
        with self._lock:
            now = self._clock()
            self._starts = deque([now + seconds - self.period] * self.limit)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    reference = now or datetime.now(when.tzinfo)
    return max((when - reference).total_seconds(), 0.0)


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled, wrapped in quotes (``O'Brien`` -> ``'O''Brien'``)."""
    return "'" + str(value).replace("'", "''") + "'"


def odata_datetime(ts: datetime | pd.Timestamp) -> str:
    """An unquoted OData DateTimeOffset literal in UTC with Graph's 7 fractional digits (100 ns)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond * 10 + t.nanosecond // 100:07d}Z"


class GraphClient:
    """GET/POST against Graph with retries, backoff, pacing and token refresh.

    Args:
        token_source: Hands out bearer tokens; asked again with ``force_refresh=True`` after a 401.
        transport: The httpx transport (the one seam for tests); default: real network.
        sleep, clock: Injected time (tests pass fast fakes).
        max_attempts: Attempts per request before giving up (dropped connections, 5xx, bad pages).
        max_throttled: Consecutive 429/503 answers tolerated before :class:`ThrottleExhausted`.
        backoff_base, backoff_cap: Jittered exponential backoff when no Retry-After is given.
        policies: Pacing per policy name: (requests, seconds); defaults to :data:`POLICIES`.
        timeout: Per-request timeout in seconds.
        verify: TLS verification: True, False or a CA bundle path (default: REQUESTS_CA_BUNDLE / SSL_CERT_FILE).
        allowed_root: When given, the only root the token is sent to (see :func:`link_problem`): every
            request elsewhere raises :class:`UnsafeLink` before the token is read. (The Graph collector
            checks each ``@odata.nextLink`` against its Graph root itself, so a client whose token is
            for another API, such as Log Analytics, can serve it too.)
    """

    def __init__(self, token_source: TokenSource, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 max_attempts: int = 8, max_throttled: int = 12, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0, policies: dict[str, tuple[int, float]] | None = None,
                 timeout: float = 120.0, verify: bool | str | None = None, rng: random.Random | None = None,
                 max_connections: int = 32, allowed_root: str | None = None) -> None:
        self.token_source = token_source
        self.allowed_root = allowed_root
        self._refresh_lock = threading.Lock()
        self.sleep, self.clock = sleep, clock
        self.max_attempts, self.max_throttled = max_attempts, max_throttled
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.rng = rng or random.Random()
        self.pacers = {name: Pacer(n, s, clock=clock, sleep=sleep) for name, (n, s) in (policies or POLICIES).items()}
        tls: bool | ssl.SSLContext
        bundle = verify if isinstance(verify, str) else (ca_bundle() if verify is None else None)
        tls = ssl.create_default_context(cafile=bundle) if bundle else (verify if isinstance(verify, bool) else True)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(transport=transport, verify=tls, timeout=timeout, limits=limits,
                                  headers={"Accept": "application/json", "User-Agent": "ir_toolkit-collector"})

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for ``attempt`` (1-based)."""
        return self.rng.uniform(self.backoff_base / 2, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    def get(self, url: str, params: dict[str, str] | None = None, *, policy: str | None = None,
            stats: Stats | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON object (a page, a query status)."""
        return self.request("GET", url, params=params, policy=policy, stats=stats, headers=headers)

    def post(self, url: str, body: dict[str, Any], *, policy: str | None = None,
             stats: Stats | None = None) -> dict[str, Any]:
        """POST a JSON body and return the JSON answer."""
        return self.request("POST", url, body=body, policy=policy, stats=stats)

    def iter_pages(self, url: str, params: dict[str, str] | None = None, *, policy: str | None = None,
                   stats: Stats | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following ``@odata.nextLink`` verbatim while it stays under the root.

        Raises:
            UnsafeLink: a nextLink outside ``allowed_root`` (or plain http); the token is not sent.
        """
        page = self.get(url, params, policy=policy, stats=stats)
        yield page
        while page.get("@odata.nextLink"):
            page = self.get(str(page["@odata.nextLink"]), policy=policy, stats=stats)
            yield page

    def request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None, policy: str | None = None, stats: Stats | None = None,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
        """One logical request with every retry it needs.

        Raises:
            UnsafeLink: ``url`` is outside ``allowed_root`` (nothing is sent).
            ThrottleExhausted: after ``max_throttled`` consecutive 429/503 answers.
            GraphError: on a non-retryable answer or when ``max_attempts`` is spent.
        """
        if self.allowed_root is not None:
            ensure_within(url, self.allowed_root)
        st = stats if stats is not None else Stats()
        pacer = self.pacers.get(policy) if policy else None
        attempt = throttled = 0
        refreshes = 0
        while True:
            attempt += 1
            if pacer is not None:
                pacer.acquire()
            client_request_id = str(uuid.uuid4())
            used = self.token_source.token()
            remember_secret(used)  # scrubbed from every text, should a server echo it
            hdrs = {"Authorization": f"Bearer {used}", "client-request-id": client_request_id,
                    "return-client-request-id": "true", **(headers or {})}
            st.requests += 1
            problem: str
            wait: float | None = None
            try:
                resp = self._http.request(method, url, params=params, json=body, headers=hdrs)
            except httpx.TransportError as exc:  # dropped connection, timeout, reset
                problem = f"{exc.__class__.__name__} on {method} {_short(url)}"
                resp = None
            if resp is not None:
                request_id = resp.headers.get("request-id")
                if resp.status_code == 401 and refreshes < 2:
                    refreshes += 1
                    with self._refresh_lock:  # one refresh for every thread that saw the same token expire
                        if self.token_source.token() == used:
                            self.token_source.token(force_refresh=True)
                    st.retries += 1
                    attempt -= 1
                    continue
                if resp.status_code in (429, 503):
                    throttled += 1
                    st.throttled += 1
                    wait = retry_after_seconds(resp.headers.get("Retry-After"))
                    if wait is None:
                        wait = self.backoff(throttled)
                    if pacer is not None and resp.status_code == 429:
                        pacer.penalise(wait)
                    if throttled > self.max_throttled:
                        raise ThrottleExhausted(f"{method} {_short(url)}: still throttled after {throttled} answers",
                                                status=resp.status_code, request_id=request_id,
                                                client_request_id=client_request_id, url=url)
                    st.retries += 1
                    st.throttle_wait_s += wait
                    attempt -= 1  # throttling has its own budget
                    log.info("throttled (%s) on %s; waiting %.2fs", resp.status_code, _short(url), wait)
                    self.sleep(wait)
                    continue
                if resp.status_code < 400:
                    try:
                        data = resp.json() if resp.content else {}
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        data = None
                    if isinstance(data, dict):
                        return data
                    problem = f"unreadable JSON ({len(resp.content)} bytes) from {method} {_short(url)}"
                elif resp.status_code in RETRY_STATUSES:
                    problem = f"HTTP {resp.status_code} on {method} {_short(url)}"
                else:
                    code, message = _error_of(resp)
                    raise GraphError(f"{method} {_short(url)}: HTTP {resp.status_code} {code}: {message}",
                                     status=resp.status_code, code=code, request_id=request_id,
                                     client_request_id=client_request_id, url=url)
                if attempt >= self.max_attempts:
                    raise GraphError(f"{problem}; gave up after {attempt} attempts", status=resp.status_code,
                                     request_id=request_id, client_request_id=client_request_id, url=url)
            elif attempt >= self.max_attempts:
                raise GraphError(f"{problem}; gave up after {attempt} attempts",
                                 client_request_id=client_request_id, url=url)
            st.retries += 1
            st.errors.append(problem)
            delay = self.backoff(attempt)
            log.info("%s; retrying in %.2fs", problem, delay)
            self.sleep(delay)


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def _error_of(resp: httpx.Response) -> tuple[str, str]:
    """Code and message of an error answer, scrubbed before they are cut short (a cut token keeps no shape)."""
    try:
        err = resp.json().get("error", {})
        return scrub_text(str(err.get("code", "error")))[:100], scrub_text(str(err.get("message", "")))[:300]
    except (ValueError, AttributeError):
        return "error", scrub_text(resp.text[:100_000])[:200]
