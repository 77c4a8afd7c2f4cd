"""Open an evidence file and stream its records, whatever the container.

Containers: gzip or plain; UTF-8 (with or without BOM), UTF-16 (with or without BOM), or
Windows-1252 when the start of the file holds bytes that are not UTF-8 and no UTF-8 multi-byte
character at all; then JSON (documents: Graph pages, arrays, arrays of pages, read incrementally),
JSON lines (each line a record or a page), or CSV (multi-line quoted fields allowed).

Readers yield ``(position, record)`` where position is the record's 1-based number in the file
(CSV: data row; every record of a page its own) and record is a dict, or a :class:`Broken`
holding the text that could not be read, why, and where it lies. Bad input is handled per record:
bytes the encoding cannot decode stay visible as escapes in that record only (which is then
quarantined), a broken record is followed by the next one, a cut or corrupt gzip stream keeps
everything read before the break. Memory stays bounded for every container (see
:mod:`ir_toolkit.sources.limits`). The JSON readers live in :mod:`ir_toolkit.sources.jsonstream`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ir_toolkit.sources import limits
from ir_toolkit.sources.csvstream import read_csv
from ir_toolkit.sources.evtxfile import is_evtx
from ir_toolkit.sources.excel import csv_delimiter, is_sep_line
from ir_toolkit.sources.gzipstream import SafeGzip
from ir_toolkit.sources.jsonstream import CHUNK, OWNER_MARKER, read_json, read_jsonl
from ir_toolkit.sources.rawtext import ESCAPE, Broken, TextInfo

__all__ = ["READERS", "Broken", "CountingReader", "Opened", "SafeGzip", "csv_header", "open_text", "probe",
           "read_records"]

HEAD = 1 << 16
_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass
class Opened:
    """How a file is to be read: container, compression and encoding."""

    container: str  # "json", "jsonl", "csv" or "evtx" (binary: read by ir_toolkit.sources.windows)
    gzip: bool
    encoding: str
    delimiter: str = ","  # CSV field separator (Excel re-saves: ";" or tab, see ir_toolkit.sources.excel)


class CountingReader(io.RawIOBase):
    """A binary reader that counts the bytes read from the file (for progress bars)."""

    def __init__(self, fh: IO[bytes] | None = None) -> None:
        self.fh: IO[bytes] | None = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        assert self.fh is not None
        data = self.fh.read(len(b))
        n = len(data)
        b[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        super().close()


def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > len(odd) * 0.4 and even.count(0) < len(even) * 0.1:
            return "utf-16-le"
        if even.count(0) > len(even) * 0.4 and odd.count(0) < len(odd) * 0.1:
            return "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        # Not UTF-8 throughout. A file with UTF-8 characters in it is UTF-8 with some bad bytes (those
        # records are quarantined); one without any is a single-byte Windows export.
        return "utf-8" if _MULTIBYTE.search(head) else "cp1252"
    return "utf-8"


def _raw(path: Path, compressed: bool, counter: CountingReader | None = None) -> IO[bytes]:
    fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if counter is not None:
        counter.fh = fh
        fh = io.BufferedReader(counter, CHUNK)
    if not compressed:
        return fh
    return io.BufferedReader(SafeGzip(fh, limits.inflate_cap(path.stat().st_size)), 1 << 20)  # type: ignore[return-value]


def _text_info(encoding: str, head: bytes) -> TextInfo:
    if encoding == "utf-8-sig":
        return TextInfo("utf-8", len(codecs.BOM_UTF8))
    if encoding == "utf-16":
        return TextInfo("utf-16-be" if head.startswith(codecs.BOM_UTF16_BE) else "utf-16-le", 2)
    return TextInfo(encoding, 0)


def open_text(path: Path, opened: Opened, counter: CountingReader | None = None) -> IO[str]:
    """The file as decoded text; bytes the encoding cannot decode stay visible as escapes
    (U+DC00 + byte), so only the records holding them are quarantined.

    The returned stream carries ``text_info`` (byte offsets of text) and ``gzip`` (the
    :class:`SafeGzip`, whose ``error`` tells why a gzip file ended early). JSON lines split at
    ``\n`` only; CSV and JSON documents see every line break as written.

    ``counter`` (optional) counts the bytes read from the file itself (compressed bytes for gzip).
    """
    raw = _raw(path, opened.gzip, counter)
    head = raw.peek(4) if isinstance(raw, io.BufferedReader) else b""
    text = io.TextIOWrapper(raw, encoding=opened.encoding, errors=ESCAPE,
                            newline="\n" if opened.container == "jsonl" else "")
    text.text_info = _text_info(opened.encoding, head[:4])  # type: ignore[attr-defined]
    inner = raw.raw if isinstance(raw, io.BufferedReader) else None
    text.gzip = inner if isinstance(inner, SafeGzip) else None  # type: ignore[attr-defined]
    return text


def probe(path: Path) -> tuple[Opened, str]:
    """Decide container, compression and encoding from the first bytes; returns the head text.

    Raises:
        OSError: when the file cannot be read (gzip errors included).
        ValueError: when the file is empty or holds only whitespace.
    """
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if is_evtx(magic):
        return Opened("evtx", False, "binary"), ""
    compressed = magic[:2] == b"\x1f\x8b"
    with _raw(path, compressed) as raw:
        head = raw.read(HEAD)
    if not head and compressed:
        raise OSError("gzip data holds no readable bytes (corrupt or cut before any data)")
    enc = _encoding(head)
    text = codecs.getincrementaldecoder(enc)(errors="replace").decode(head, final=False).lstrip("\ufeff")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise ValueError("file is empty")
    lines = [ln for ln in stripped.splitlines()[:6] if ln.strip()]
    if stripped[0] == "[":  # JSON, or Untitled Goose Tool's inbox-rule lines (an array per mailbox)
        container = "jsonl" if _owner_lines(lines[:1]) else "json"
    elif stripped[0] == "{":
        container = "jsonl" if any(_is_object(ln) for ln in lines[:4]) else "json"
    elif any(_is_object(ln) for ln in lines[1:5]):  # JSON lines whose first line is damaged
        container = "jsonl"
    else:
        return Opened("csv", compressed, enc, csv_delimiter(stripped)), stripped
    return Opened(container, compressed, enc), stripped


def _owner_lines(lines: list[str]) -> bool:
    """True when each line is a JSON array ending in ``{"userPrincipalName": owner}`` (see
    :func:`ir_toolkit.sources.jsonstream.line_records`)."""
    for line in lines:
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            return False
        last = value[-1] if isinstance(value, list) and value else None
        if not (isinstance(last, dict) and list(last) == [OWNER_MARKER]):
            return False
    return bool(lines)


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def csv_header(head: str, delimiter: str = ",") -> list[str]:
    """The header row of a CSV file from its first characters (after an Excel ``sep=X`` line)."""
    try:
        rows = csv.reader(io.StringIO(head), delimiter=delimiter)
        header = next(rows)
        return next(rows) if is_sep_line(header) else header
    except (StopIteration, csv.Error):
        return []


READERS = {"json": read_json, "jsonl": read_jsonl, "csv": read_csv}


def read_records(fh: IO[str], container: str, delimiter: str = ",") -> Iterator[tuple[int, Any]]:
    """The records of an open file; a file that stops being readable (a cut or corrupt gzip stream,
    a disk error) ends with one Broken record saying why: everything before the break is kept.

    When the break fell inside a record, that record's Broken entry carries the reason (one entry,
    not two); otherwise one more Broken entry, with no text, records it.
    """
    n = 0
    last: tuple[int, Broken] | None = None
    try:
        for n, rec in read_csv(fh, delimiter) if container == "csv" else READERS[container](fh):
            if last is not None:
                yield last
                last = None
            if isinstance(rec, Broken) and rec.truncated:
                last = (n, rec)  # held back: the stream's own error may explain it
                continue
            yield n, rec
    except (EOFError, OSError) as exc:
        error: str | None = f"file unreadable after record {n} ({exc.__class__.__name__}: {exc})"
    else:
        stream = getattr(fh, "gzip", None)
        error = stream.error if isinstance(stream, SafeGzip) else None
    if last is not None:
        if error:
            last[1].reason = f"{error}; the record cut there: {last[1].reason}"
        yield last
    elif error:
        yield n + 1, Broken(error, "", truncated=True)
