"""Small generated evidence files in every container, with one record damaged on request.

Each file holds ``n`` records whose ids are ``r00000`` ... in order; the record at index ``k`` may
be replaced by a damaged one (its text holds ``MARK``, swapped for the damage as bytes, so the
damage is exactly what reaches the reader). Containers: ``json`` (an array), ``page`` (one Graph
page), ``pages`` (an array of compact pages), ``jsonl``, ``jsonl-pages`` (a compact page per line),
``csv`` (a Purview audit search export) and ``<container>.gz`` for each.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from conftest import TESTDATA

IMPORT = TESTDATA / "import"
MARK = "MARK-0f3e"
SIGNIN: dict[str, Any] = json.loads((IMPORT / "graph_signins_v1.json").read_text())["value"][0]
UAL: dict[str, Any] = json.loads((IMPORT / "management_api.json").read_text())[0]
_PURVIEW = list(csv.reader(io.StringIO((IMPORT / "purview_current.csv").read_text(encoding="utf-8-sig"))))
PURVIEW_HEADER, PURVIEW_ROW = _PURVIEW[0], _PURVIEW[1]
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns"
CONTAINERS = ("json", "page", "pages", "jsonl", "jsonl-pages", "csv")
DAMAGE: dict[str, bytes] = {
    "control byte": b"a\x01b",
    "lone surrogate": b"a\\ud800b",
    "invalid UTF-8": b"Malm\xf6",
    "bad escape": b"a\\qb",
}


def rid(i: int) -> str:
    return f"r{i:05d}"


def signin(i: int, mark: bool = False) -> dict[str, Any]:
    """A Graph sign-in with its own id (and ``MARK`` in its user agent when asked)."""
    return dict(SIGNIN, id=rid(i), userAgent=MARK if mark else f"agent {i} {_noise(i)} Malmö")


def _noise(i: int) -> str:
    """Text that differs from record to record (gzip then cannot fold the whole file into a few bytes)."""
    return hashlib.sha256(str(i).encode()).hexdigest()


def ual(i: int, mark: bool = False) -> dict[str, Any]:
    """A Management API record with its own id."""
    return dict(UAL, Id=rid(i), ClientIP=f"10.0.{i // 250}.{i % 250}", UserAgent=MARK if mark else "ok")


def _purview_line(i: int, mark: bool) -> bytes:
    audit = json.loads(PURVIEW_ROW[5])
    audit.update(Id=rid(i), ClientInfoString=MARK if mark else f"Client=REST;{i};{_noise(i)};Malmö",
                 OrganizationId=UAL["OrganizationId"])  # one tenant in every generated file: a case refuses others
    row = [rid(i), *PURVIEW_ROW[1:5], json.dumps(audit, ensure_ascii=False), *PURVIEW_ROW[6:]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(row)
    return out.getvalue().encode("utf-8")


def deep(levels: int) -> bytes:
    """A JSON value nested ``levels`` deep (it replaces the quoted MARK, not just its text)."""
    return b"[" * levels + b"]" * levels


def _damaged(text: bytes, damage: bytes, quote: bytes) -> bytes:
    if damage.startswith(b"["):
        return text.replace(quote + MARK.encode() + quote, damage)
    return text.replace(MARK.encode(), damage)


def texts(n: int, k: int | None = None, damage: bytes = b"", make: Any = signin) -> list[bytes]:
    """Compact JSON texts of ``n`` records; the one at ``k`` carries ``damage`` in place of MARK."""
    out = []
    for i in range(n):
        t = json.dumps(make(i, mark=i == k), ensure_ascii=False).encode("utf-8")
        out.append(_damaged(t, damage, b'"') if i == k else t)
    return out


def build(container: str, records: list[bytes], per_page: int = 4) -> bytes:
    """The file bytes of ``records`` (JSON texts, or CSV lines for ``csv``) in ``container``."""
    if container.endswith(".gz"):
        return gzip.compress(build(container[:-3], records, per_page), mtime=0)
    ctx = json.dumps(CONTEXT).encode()

    def page(chunk: list[bytes]) -> bytes:
        return b'{"@odata.context":' + ctx + b',"value":[' + b",".join(chunk) + b"]}"

    chunks = [records[i:i + per_page] for i in range(0, len(records), per_page)]
    if container == "json":
        return b"[\n" + b",\n".join(records) + b"\n]\n"
    if container == "page":
        return page(records)
    if container == "pages":
        return b"[" + b",\n".join(page(c) for c in chunks) + b"]"
    if container == "jsonl":
        return b"\n".join(records) + b"\n"
    if container == "jsonl-pages":
        return b"\n".join(page(c) for c in chunks) + b"\n"
    raise ValueError(container)


def csv_file(n: int, k: int | None = None, damage: bytes = b"") -> bytes:
    """A Purview audit search CSV of ``n`` rows; row ``k`` carries ``damage`` in its AuditData."""
    head = io.StringIO()
    csv.writer(head, lineterminator="\r\n").writerow(PURVIEW_HEADER)
    rows = [_purview_line(i, i == k) for i in range(n)]
    if k is not None:
        rows[k] = _damaged(rows[k], damage, b'""')
    return head.getvalue().encode() + b"".join(rows)


def evidence_file(tmp: Path, container: str, n: int, k: int | None = None, damage: bytes = b"") -> Path:
    """Write a file of ``n`` records in ``container`` (record ``k`` damaged) and return its path."""
    base = container[:-3] if container.endswith(".gz") else container
    if base == "csv":
        data = csv_file(n, k, damage)
        data = gzip.compress(data, mtime=0) if container.endswith(".gz") else data
    else:
        data = build(container, texts(n, k, damage))
    suffix = {"csv": ".csv", "jsonl": ".jsonl", "jsonl-pages": ".jsonl"}.get(base, ".json")
    path = tmp / f"evidence-{container}{suffix}{'.gz' if container.endswith('.gz') else ''}"
    path.write_bytes(data)
    return path
