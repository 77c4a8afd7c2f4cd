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
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ir_toolkit.sources import limits
from ir_toolkit.sources.jsonstream import (
    CHUNK,
    ESCAPE,
    Broken,
    TextInfo,
    cut_text,
    info_of,
    read_json,
    read_jsonl,
)

__all__ = ["READERS", "Broken", "CountingReader", "Opened", "SafeGzip", "csv_header", "open_text", "probe",
           "read_records"]

HEAD = 1 << 16
_GZ_PIECE = 1 << 15  # compressed bytes per decompression step (the output of one step is bounded by it)
_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass
class Opened:
    """How a file is to be read: container, compression and encoding."""

    container: str  # "json", "jsonl" or "csv"
    gzip: bool
    encoding: str


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


class _Ended:
    """A finished gzip member: the next bytes start another one (or are padding)."""

    eof = True
    unused_data = b""


class SafeGzip(io.RawIOBase):
    """Decompressed bytes of a gzip file (several members allowed) that never raise on bad data.

    A cut, corrupt or over-large stream ends early instead: everything decompressed before the break
    is returned, then end of file, and :attr:`error` says what happened and where.

    Args:
        fh: The compressed file.
        cap: The most bytes to decompress (see :func:`ir_toolkit.sources.limits.inflate_cap`).
    """

    def __init__(self, fh: IO[bytes], cap: int) -> None:
        self.fh, self.cap = fh, cap
        self.error: str | None = None
        self.produced = 0
        self._d: Any = zlib.decompressobj(31)
        self._pending = b""
        self._at = 0  # bytes of _pending already returned
        self._done = False
        self._input = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self._at >= len(self._pending) and not self._done:
            self._pending, self._at = b"", 0
            self._more()
        n = min(len(b), len(self._pending) - self._at)
        b[:n] = memoryview(self._pending)[self._at:self._at + n]
        self._at += n
        return n

    def _stop(self, error: str | None) -> None:
        self.error, self._done = error, True

    def _more(self) -> None:
        d = self._d
        if d.eof:  # a member ended: another may follow (zero padding is allowed)
            rest = d.unused_data + self._input + self.fh.read(1 << 16)
            self._input = b""
            while rest and not rest.strip(b"\x00"):
                rest = self.fh.read(1 << 16)
            if not rest:
                return self._stop(None)
            if rest[:2] != b"\x1f\x8b":
                return self._stop(f"bytes after gzip data at byte {self.produced} of the decompressed text are "
                                  f"not gzip")
            d = self._d = zlib.decompressobj(31)
            self._input = rest
        if not self._input:
            self._input = self.fh.read(1 << 16)
            if not self._input:
                self._take(d.flush())
                return self._stop(f"gzip stream cut short: the file ends after {self.produced} decompressed bytes, "
                                  f"before the end of the compressed data")
        piece, self._input = self._input[:_GZ_PIECE], self._input[_GZ_PIECE:]
        saved = d.copy()
        try:
            out = d.decompress(piece)
        except zlib.error as exc:  # again byte by byte, to keep every byte decompressed before the damage
            self._d = d = saved
            for i in range(len(piece)):
                try:
                    self._take(d.decompress(piece[i:i + 1]))
                except zlib.error:
                    break
            return self._stop(f"gzip data corrupt after {self.produced} decompressed bytes ({exc})")
        if d.eof:
            self._input = d.unused_data + self._input  # the next member (or padding) starts there
            self._d = _Ended()
        self._take(out)

    def _take(self, out: bytes) -> None:
        room = self.cap - self.produced
        if len(out) > room:
            out = out[:room]
            self._stop(f"gzip data expands beyond {self.cap} bytes (the limit: {limits.MAX_INFLATE} times the "
                       f"compressed size, at least {limits.MIN_INFLATE_CAP} bytes); the rest is not read")
        self._pending += out
        self.produced += len(out)

    def close(self) -> None:
        try:
            self.fh.close()
        finally:
            super().close()


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
        magic = fh.read(2)
    compressed = magic == b"\x1f\x8b"
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
    if stripped[0] == "[":
        container = "json"
    elif stripped[0] == "{":
        container = "jsonl" if any(_is_object(ln) for ln in lines[:4]) else "json"
    elif any(_is_object(ln) for ln in lines[1:5]):  # JSON lines whose first line is damaged
        container = "jsonl"
    else:
        container = "csv"
    return Opened(container, compressed, enc), stripped


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


class _Oversize(Exception):
    """A CSV row longer than the limit (already skipped; the reference is attached)."""

    def __init__(self, offset: int, length: int, digest: str) -> None:
        super().__init__(offset, length, digest)
        self.offset, self.length, self.digest = offset, length, digest


class _Lines:
    """The physical lines of a CSV file for :mod:`csv`, in bounded memory, with their byte offsets.

    Keeps the lines of the row being read (``pending``) so a broken row can be re-read line by
    line; :meth:`unread` gives lines back.
    """

    def __init__(self, fh: IO[str], info: TextInfo) -> None:
        self.fh, self.info = fh, info
        self.offset = info.start  # byte offset of the next line
        self.pending: list[tuple[int, str]] = []  # (offset, line) of the row being read
        self.size = 0
        self.back: list[tuple[int, str]] = []

    def begin(self) -> None:
        self.pending, self.size = [], 0

    def unread(self, lines: list[tuple[int, str]]) -> None:
        self.back = lines + self.back

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.back:
            off, line = self.back.pop(0)
        else:
            limit = limits.MAX_RECORD
            off = self.offset
            line = self.fh.readline(limit + 1)
            if not line:
                raise StopIteration
            if len(line) > limit and not line.endswith(("\n", "\r")):
                length, digest = self._skip(line)
                self.offset += length
                raise _Oversize(self.pending[0][0] if self.pending else off,
                                length + sum(self.info.nbytes(t) for _, t in self.pending), digest)
            self.offset += self.info.nbytes(line)
        self.pending.append((off, line))
        self.size += len(line)
        if self.size > limits.MAX_RECORD:
            first = self.pending[0][0]
            h = hashlib.sha256()
            for _, t in self.pending:
                h.update(self.info.encode(t))
            length = sum(self.info.nbytes(t) for _, t in self.pending)
            raise _Oversize(first, length, h.hexdigest())
        return line

    def _skip(self, head: str) -> tuple[int, str]:
        h = hashlib.sha256()
        for _, t in self.pending:
            h.update(self.info.encode(t))
        length = 0
        piece = head
        while piece:
            data = self.info.encode(piece)
            h.update(data)
            length += len(data)
            if piece.endswith(("\n", "\r")):
                break
            piece = self.fh.readline(1 << 20)
        return length, h.hexdigest()


def _one_row(line: str, width: int) -> bool:
    """True when ``line`` alone is a whole CSV row of ``width`` fields (a place to resume at)."""
    try:
        rows = list(csv.reader([line]))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == width


def read_csv(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file as dicts keyed by the header; a row that cannot be read is Broken.

    A broken row that swallowed several lines (a lost quote) is cut back to the lines before the
    first one that is a whole row by itself, and reading resumes there; a row longer than the
    limit is skipped and kept as a reference.
    """
    info = info_of(fh)
    lines = _Lines(fh, info)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except (csv.Error, _Oversize) as exc:
        yield 1, Broken(f"CSV header unreadable ({exc.__class__.__name__}: {exc})", "")
        return
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    width = len(header)
    n = 0
    while True:
        lines.begin()
        try:
            row = next(reader)
        except StopIteration:
            return
        except _Oversize as big:
            n += 1
            reader = csv.reader(lines)
            yield n, Broken(f"CSV row {n} is longer than the limit of {limits.MAX_RECORD} characters per record "
                            f"({big.length} bytes): kept as a reference, not copied", "", big.offset, big.length,
                            big.digest)
            continue
        except csv.Error as exc:
            n += 1
            reason = f"CSV row {n} unreadable ({exc})"
        else:
            if not row:
                continue
            n += 1
            if len(row) > width and not any(row[width:]):
                row = row[:width]
            if len(row) == width:
                yield n, dict(zip(header, row, strict=True))
                continue
            reason = f"CSV row {n} has {len(row)} fields, the header has {width}"
        pending = lines.pending
        keep = next((j for j in range(1, len(pending)) if _one_row(pending[j][1], width)), len(pending))
        if keep < len(pending):
            lines.unread(pending[keep:])
            reason += f"; it swallowed the {len(pending) - keep} line(s) after it, read again"
        reader = csv.reader(lines)
        text = "".join(t for _, t in pending[:keep]).rstrip("\r\n")
        offset = pending[0][0] if pending else None
        cut = bool(pending) and keep == len(pending) and not pending[-1][1].endswith(("\n", "\r"))
        yield n, Broken(reason, cut_text(text), offset, info.nbytes(text), truncated=cut)


def csv_header(head: str) -> list[str]:
    """The header row of a CSV file from its first characters."""
    try:
        return next(csv.reader(io.StringIO(head)))
    except (StopIteration, csv.Error):
        return []


READERS = {"json": read_json, "jsonl": read_jsonl, "csv": read_csv}


def read_records(fh: IO[str], container: str) -> Iterator[tuple[int, Any]]:
    """The records of an open file; a file that stops being readable (a cut or corrupt gzip stream,
    a disk error) ends with one Broken record saying why: everything before the break is kept.

    When the break fell inside a record, that record's Broken entry carries the reason (one entry,
    not two); otherwise one more Broken entry, with no text, records it.
    """
    n = 0
    last: tuple[int, Broken] | None = None
    try:
        for n, rec in READERS[container](fh):
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
