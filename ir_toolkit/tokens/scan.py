"""Find tokens in any text (logs, HAR files, scripts) and judge each one once.

A HAR file is read as HAR, so each token is placed in its request (method, URL
without query, which header or cookie) with the request's time; anything else is
scanned line by line. The same token seen many times is judged once and counted.
Results never hold the token itself unless ``show_token`` is asked for: the
fingerprint (``sha256:`` prefix) names it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from tqdm.auto import tqdm

from ir_toolkit.errors import InputFormatError
from ir_toolkit.timeutil import parse_time
from ir_toolkit.tokens.jwt import JWT_PATTERN, TokenFormatError, decode_token
from ir_toolkit.tokens.keys import DISCOVERY_URLS, KeyCatalogue, build_catalogue
from ir_toolkit.tokens.verdict import judge

log = logging.getLogger(__name__)

MAX_LOCATIONS = 20
"""Locations kept per token (the count of occurrences is always complete)."""


@dataclass
class Sighting:
    """Where one token was seen: locations (``file:line`` or HAR request) and HAR times."""

    locations: list[str] = field(default_factory=list)
    count: int = 0
    times: list[pd.Timestamp] = field(default_factory=list)

    def add(self, where: str, time: pd.Timestamp | None) -> None:
        self.count += 1
        if len(self.locations) < MAX_LOCATIONS:
            self.locations.append(where)
        if time is not None:
            self.times.append(time)


def find_tokens(text: str) -> Iterator[str]:
    """Every JWT-shaped string in ``text``, in order (repeats included)."""
    for m in JWT_PATTERN.finditer(text):
        yield m.group(0)


def _scan_lines(lines: Iterable[str], name: str, seen: dict[str, Sighting]) -> None:
    findall = JWT_PATTERN.findall
    for number, line in enumerate(lines, 1):
        if "eyJ" not in line:
            continue
        for token in findall(line):
            sighting = seen.get(token)
            if sighting is None:
                sighting = seen[token] = Sighting()
            if sighting.count < MAX_LOCATIONS:
                sighting.add(f"{name}:{number}", None)
            else:
                sighting.count += 1


def _har_parts(entry: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(part name, text) of a HAR entry where tokens live."""
    for side in ("request", "response"):
        msg = entry.get(side)
        if not isinstance(msg, dict):
            continue
        if side == "request":
            yield "url", str(msg.get("url") or "")
        for kind in ("headers", "cookies", "queryString"):
            items = msg.get(kind)
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    yield f"{side} {kind[:-1] if kind != 'queryString' else 'query'} {item.get('name')}", \
                        str(item.get("value") or "")
        post = msg.get("postData") or {}
        if isinstance(post, dict) and post.get("text"):
            yield f"{side} body", str(post["text"])
        content = msg.get("content") or {}
        if isinstance(content, dict) and content.get("text"):
            text = str(content["text"])
            if content.get("encoding") == "base64":
                try:
                    text = base64.b64decode(text).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    pass
            yield f"{side} body", text


def _scan_har(doc: dict[str, Any], name: str, seen: dict[str, Sighting]) -> None:
    entries = doc["log"].get("entries") or []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        req = entry.get("request")
        request: dict[str, Any] = req if isinstance(req, dict) else {}
        try:
            url = urlsplit(str(request.get("url") or ""))
            what = f"{request.get('method', '?')} {url.scheme}://{url.netloc}{url.path}"
        except ValueError:
            what = f"{request.get('method', '?')} (unparsable URL)"
        time = parse_time(entry.get("startedDateTime"))
        for part, text in _har_parts(entry):
            for token in find_tokens(text):
                seen.setdefault(token, Sighting()).add(f"{name} entry {i} ({what}) {part}", time)


def _as_har(path: Path) -> dict[str, Any] | None:
    """The HAR document in ``path``, or None when it is not a HAR file."""
    with open(path, "rb") as fh:
        start = fh.read(512).lstrip()
    if not start.startswith(b"{") or b'"log"' not in start:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("log"), dict) and isinstance(doc["log"].get("entries"), list):
        return doc
    return None


def _judge_all(seen: dict[str, Sighting], catalogue: KeyCatalogue, show_token: bool,
               progress: bool) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    skipped = 0
    for token, sighting in tqdm(seen.items(), desc="judging tokens", unit="token", disable=not progress):
        try:
            decoded = decode_token(token)
        except TokenFormatError as exc:
            skipped += 1
            log.info("skipped a token-like string at %s: %s", sighting.locations[0], exc)
            continue
        result = judge(decoded, catalogue)
        result["occurrences"] = sighting.count
        result["locations"] = sighting.locations
        result["first_seen"] = min(sighting.times).isoformat() if sighting.times else None
        result["last_seen"] = max(sighting.times).isoformat() if sighting.times else None
        if show_token:
            result["token"] = token
        results.append(result)
    if skipped:
        log.warning("%d token-like string(s) could not be decoded (truncated or not JWTs) and were skipped", skipped)
    return results


def scan_text(text: str, jwks_files: Sequence[str | Path] = (), online: bool = False, *,
              catalogue: KeyCatalogue | None = None, name: str = "<text>", show_token: bool = False,
              discovery_urls: Sequence[str] = DISCOVERY_URLS) -> list[dict[str, Any]]:
    """Find and judge every token in ``text``.

    Args:
        text: Any text (log lines, a script, a pasted HAR).
        jwks_files: Extra JWKS files for the catalogue.
        online: Refresh keys from ``discovery_urls`` (off by default).
        catalogue: A catalogue to use instead of building one.
        name: What to call the text in locations.
        show_token: Include the full token under ``token`` (otherwise only its fingerprint).

    Returns:
        One verdict document per distinct token (see :func:`ir_toolkit.tokens.verdict.judge`) plus
        occurrences, locations (``name:line``), first_seen / last_seen (HAR times, else None).
    """
    catalogue = catalogue or build_catalogue(jwks_files, online, discovery_urls)
    seen: dict[str, Sighting] = {}
    _scan_lines(text.splitlines(), name, seen)
    return _judge_all(seen, catalogue, show_token, progress=False)


def scan_files(paths: Sequence[str | Path], jwks_files: Sequence[str | Path] = (), online: bool = False, *,
               catalogue: KeyCatalogue | None = None, show_token: bool = False, progress: bool = False,
               discovery_urls: Sequence[str] = DISCOVERY_URLS) -> list[dict[str, Any]]:
    """Find and judge every token in files (HAR files by request, anything else by line).

    Raises:
        InputFormatError: when a file is missing or unreadable.
    """
    catalogue = catalogue or build_catalogue(jwks_files, online, discovery_urls)
    seen: dict[str, Sighting] = {}
    for p in tqdm([Path(p) for p in paths], desc="scanning files", unit="file", disable=not progress):
        if not p.is_file():
            raise InputFormatError(f"{p}: no such file")
        try:
            har = _as_har(p)
            if har is not None:
                _scan_har(har, str(p), seen)
            else:
                with open(p, encoding="utf-8", errors="replace") as fh:
                    _scan_lines(fh, str(p), seen)
        except OSError as exc:
            raise InputFormatError(f"{p}: cannot be read ({exc.strerror})") from None
    return _judge_all(seen, catalogue, show_token, progress)


TABLE_COLUMNS = ("fingerprint", "verdict", "signature", "alg", "kid", "key_kind", "key_source", "compromised_key",
                 "iss", "tid", "aud", "app_id", "user", "uti", "sid", "iat", "exp", "occurrences", "first_seen",
                 "location", "reasons")


def results_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The scan results as a table.

    Columns: fingerprint, verdict, signature, alg, kid, key_kind, key_source, compromised_key, iss, tid, aud,
    app_id (appid or azp), user (upn, unique_name or preferred_username), uti, sid, iat, exp (ISO UTC),
    occurrences, first_seen (HAR time), location (first place seen), reasons (joined with `` | ``), and
    token when the results hold it.
    """
    rows = []
    for r in results:
        c, k = r["claims"], r.get("key") or {}
        row = {
            "fingerprint": r["fingerprint"], "verdict": r["verdict"], "signature": r["signature"], "alg": r["alg"],
            "kid": k.get("kid") or r.get("header", {}).get("kid"), "key_kind": k.get("kind"),
            "key_source": k.get("source"), "compromised_key": k.get("compromised"),
            "iss": c.get("iss"), "tid": c.get("tid"), "aud": _text(c.get("aud")),
            "app_id": c.get("appid") or c.get("azp"),
            "user": c.get("upn") or c.get("unique_name") or c.get("preferred_username"),
            "uti": c.get("uti"), "sid": c.get("sid"), "iat": c.get("iat"), "exp": c.get("exp"),
            "occurrences": r.get("occurrences", 1), "first_seen": r.get("first_seen"),
            "location": (r.get("locations") or [None])[0], "reasons": " | ".join(r["reasons"]),
        }
        if "token" in r:
            row["token"] = r["token"]
        rows.append(row)
    columns = list(TABLE_COLUMNS) + (["token"] if any("token" in r for r in results) else [])
    return pd.DataFrame(rows, columns=columns)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)
