"""Open an evidence file and stream its records, whatever the container.

Containers: gzip or plain; UTF-8 (with or without BOM), UTF-16 (with or without BOM),
or Windows-1252 when the start of the file is not valid UTF-8; then JSON (one document:
a Graph page ``{"value": [...]}`` or an array, read incrementally), JSON lines (each line a
record or a page), or CSV (multi-line quoted fields allowed).

Readers yield ``(position, record)`` where position is the 1-based record number (CSV: data
row number; JSON lines: line number) and record is a dict, or a :class:`Broken` holding the
text that could not be read and why. The JSON readers live in
:mod:`ir_toolkit.sources.jsonstream`; memory stays bounded for every container.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ir_toolkit.sources.excel import csv_delimiter, is_sep_line
from ir_toolkit.sources.jsonstream import CHUNK, MAX_RECORD, Broken, cut_text, read_json, read_jsonl

__all__ = ["READERS", "Broken", "CountingReader", "Opened", "csv_header", "open_text", "probe", "read_records"]

HEAD = 1 << 16
csv.field_size_limit(MAX_RECORD)


@dataclass
class Opened:
    """How a file is to be read: container, compression and encoding."""

    container: str  # "json", "jsonl" or "csv"
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
        return "cp1252"
    return "utf-8"


class _Gzip(gzip.GzipFile):
    """A GzipFile that also closes the file it reads from."""

    def close(self) -> None:
        inner: Any = self.fileobj
        try:
            super().close()
        finally:
            if inner is not None:
                inner.close()


def _raw(path: Path, compressed: bool) -> IO[bytes]:
    fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    return cast(IO[bytes], _Gzip(fileobj=fh, mode="rb")) if compressed else fh


def open_text(path: Path, opened: Opened, counter: CountingReader | None = None) -> IO[str]:
    """The file as decoded text (surrogate escapes keep undecodable bytes visible).

    ``counter`` (optional) counts the bytes read from the file itself (compressed bytes for gzip).
    """
    fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed with the returned wrapper
    if counter is not None:
        counter.fh = fh
        fh = io.BufferedReader(counter, CHUNK)
    raw = cast(IO[bytes], _Gzip(fileobj=fh, mode="rb")) if opened.gzip else fh
    return io.TextIOWrapper(raw, encoding=opened.encoding, errors="surrogateescape", newline="")


def probe(path: Path) -> tuple[Opened, str]:
    """Decide container, compression and encoding from the first bytes; returns the head text.

    Raises:
        OSError: when the file cannot be read (gzip errors included).
        ValueError: when the file is empty or holds only whitespace.
    """
    with open(path, "rb") as fh:
        magic = fh.read(2)
    compressed = magic == b"\x1f\x8b"
    with _raw(path, compressed) as raw:
        head = raw.read(HEAD)
    enc = _encoding(head)
    text = codecs.getincrementaldecoder(enc)(errors="replace").decode(head, final=False).lstrip("\ufeff")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise ValueError("file is empty")
    if stripped[0] == "[":
        container = "json"
    elif stripped[0] == "{":
        lines = [ln for ln in stripped.splitlines()[:3] if ln.strip()]
        container = "jsonl" if any(_is_object(ln) for ln in lines[:2]) else "json"
    else:
        return Opened("csv", compressed, enc, csv_delimiter(stripped)), stripped
    return Opened(container, compressed, enc), stripped


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def read_csv(fh: IO[str], delimiter: str = ",") -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file as dicts keyed by the header; a row of the wrong width is Broken.

    An Excel ``sep=X`` first line is skipped."""
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        header = next(reader)
        if is_sep_line(header):
            header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, Broken(f"CSV header unreadable ({exc})", "")
        return
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    width = len(header)
    n = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            n += 1
            yield n, Broken(f"CSV row {n} unreadable ({exc})", "")
            continue
        if not row:
            continue
        n += 1
        if len(row) != width:
            if len(row) > width and not any(row[width:]):
                row = row[:width]
            else:
                yield n, Broken(f"CSV row {n} has {len(row)} fields, the header has {width}", cut_text(",".join(row)))
                continue
        yield n, dict(zip(header, row, strict=True))


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
    """The records of an open file; a file that stops being readable (a cut gzip stream, a disk
    error) ends with one Broken record instead of an exception: what came before is kept."""
    n = 0
    try:
        for n, rec in read_csv(fh, delimiter) if container == "csv" else READERS[container](fh):
            yield n, rec
    except (EOFError, OSError) as exc:
        yield n + 1, Broken(f"file unreadable after record {n} ({exc.__class__.__name__}: {exc})", "")
