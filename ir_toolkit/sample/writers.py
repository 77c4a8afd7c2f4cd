"""Writers for the raw files: Graph pages (one file per page) and the Purview CSV export.

Streaming: a :class:`PageWriter` holds at most two pages in memory, so any number of records can
be written. Output is byte-for-byte deterministic: compact JSON in insertion order, gzip with
mtime 0 and no file name, pages numbered from 1, ``@odata.nextLink`` skiptokens derived from
the seed. Every page but the last carries ``@odata.nextLink``, as Graph returns them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ir_toolkit.sample.ual import CSV_HEADER, csv_row


class PageWriter:
    """Write records as Graph list pages ``{"@odata.context", "@odata.nextLink", "value"}``, one file each.

    Args:
        folder: Directory for ``page-00001.json`` (``.json.gz`` with ``gz``).
        context: The ``@odata.context`` URL.
        next_base: The request URL the nextLink repeats (a ``$skiptoken`` is appended).
        salt: Makes skiptokens differ per tenant and source.
        page_size: Records per page (Graph's sign-in maximum is 1,000).
        gz: Gzip each page.
    """

    def __init__(self, folder: Path, context: str, next_base: str, salt: str, page_size: int = 1000,
                 gz: bool = False) -> None:
        self.folder, self.context, self.next_base, self.salt = folder, context, next_base, salt
        self.page_size, self.gz = page_size, gz
        self.pending: list[str] = []
        self.full: list[str] | None = None
        self.pages = 0
        self.records = 0
        self.files: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, rec: dict[str, Any]) -> None:
        """Append one record (pages are flushed as they fill)."""
        self.add_json(compact(rec))

    def add_json(self, text: str) -> None:
        """Append one record already serialised with :func:`compact`."""
        self.pending.append(text)
        self.records += 1
        if len(self.pending) == self.page_size:
            if self.full is not None:
                self._flush(self.full, last=False)
            self.full, self.pending = self.pending, []

    def close(self) -> list[Path]:
        """Write what is left (the last page has no nextLink); returns every page file written."""
        if self.full is not None:
            self._flush(self.full, last=not self.pending)
        if self.pending or not self.pages:
            self._flush(self.pending, last=True)
        return self.files

    def _flush(self, value: list[str], last: bool) -> None:
        self.pages += 1
        head = '{"@odata.context":' + compact(self.context)
        if not last:
            token = hashlib.sha256(f"{self.salt}|{self.pages}".encode()).hexdigest()[:40]
            sep = "&" if "?" in self.next_base else "?"
            head += ',"@odata.nextLink":' + compact(f"{self.next_base}{sep}$skiptoken={token}_{self.pages}")
        path = self.folder / f"page-{self.pages:05d}.json{'.gz' if self.gz else ''}"
        data = (head + ',"value":[' + ",".join(value) + "]}").encode("utf-8")
        path.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if self.gz else data)
        self.files.append(path)


class CsvWriter:
    """The Purview portal's audit search export: header, then one row per record (``AuditData`` as JSON).

    With ``gz`` the file is ``NAME.csv.gz`` (deterministic gzip).
    """

    def __init__(self, path: Path, gz: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path.with_name(path.name + ".gz") if gz else path
        self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._zip = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6) if gz else None
        self._fh = io.TextIOWrapper(self._zip or self._raw, encoding="utf-8", newline="")
        self._w = csv.writer(self._fh, lineterminator="\r\n")
        self._w.writerow(CSV_HEADER)
        self.records = 0

    def add(self, rec: dict[str, Any], audit_json: str | None = None) -> None:
        """Append one AuditData record (``audit_json``: the record already serialised with :func:`compact`)."""
        self._w.writerow(csv_row(rec, audit_json))
        self.records += 1

    def close(self) -> list[Path]:
        """Finish the file; returns it."""
        self._fh.flush()
        if self._zip is not None:
            self._zip.close()
        self._raw.close()
        return [self.path]


def compact(obj: Any) -> str:
    """JSON as Graph sends it: no spaces, keys in insertion order, UTF-8 text."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def filter_url(base: str, flt: str, top: int) -> str:
    """``base?$filter=...&$top=N`` with the filter percent-encoded as Graph clients send it."""
    return f"{base}?$filter={quote(flt, safe='()/:')}&$top={top}"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
