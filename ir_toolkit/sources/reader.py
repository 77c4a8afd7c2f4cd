"""Open an evidence file and stream its records, whatever the container.

Containers: gzip or plain; UTF-8 (with or without BOM), UTF-16 (with or without BOM),
or Windows-1252 when the start of the file is not valid UTF-8; then JSON (one document:
a Graph page ``{"value": [...]}`` or an array, read incrementally), JSON lines (each line a
record or a page), or CSV (multi-line quoted fields allowed).

Readers yield ``(position, record)`` where position is the 1-based record number (CSV: data
row number; JSON lines: line number) and record is a dict, or a :class:`Broken` holding the
text that could not be read and why. Memory stays bounded: JSON is read in chunks, one
record at a time, and a single record larger than :data:`MAX_RECORD` is reported broken.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ir_toolkit.sources.fields import loads

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]

CHUNK = 1 << 22
MAX_RECORD = 64 << 20
HEAD = 1 << 16
_WS = " \t\r\n"
_DECODER = json.JSONDecoder()
csv.field_size_limit(MAX_RECORD)


@dataclass
class Broken:
    """A record that could not be read: the text (cut to 10 kB) and the reason."""

    reason: str
    text: str


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
    stripped = text.lstrip(_WS)
    if not stripped:
        raise ValueError("file is empty")
    if stripped[0] == "[":
        container = "json"
    elif stripped[0] == "{":
        lines = [ln for ln in stripped.splitlines()[:3] if ln.strip()]
        container = "jsonl" if any(_is_object(ln) for ln in lines[:2]) else "json"
    else:
        container = "csv"
    return Opened(container, compressed, enc), stripped


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _cut(text: str) -> str:
    return text if len(text) <= 10_000 else text[:10_000] + f"... ({len(text)} characters)"


def _pages(obj: Any) -> list[Any] | None:
    """The records of a Graph page (``{"@odata...": ..., "value": [...]}``), else None.

    An object is a page when ``value`` is a list and every key before it is an ``@odata`` annotation.
    """
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "value":
                return list(v) if isinstance(v, list) else None
            if not str(k).startswith("@odata"):
                return None
    return None


def _flatten(obj: Any) -> list[Any]:
    page = _pages(obj)
    return page if page is not None else [obj]


def read_jsonl(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Records of a JSON lines file; a line that is no JSON is one Broken record."""
    for n, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except ValueError as exc:
            yield n, Broken(f"line {n} is not valid JSON ({exc.args[0].split(':')[0]})", _cut(line.rstrip("\n")))
            continue
        for rec in _flatten(obj):
            yield n, rec


class _Stream:
    """A text buffer over a file, refilled on demand, for the incremental JSON reader."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh, self.buf, self.pos, self.eof = fh, "", 0, False
        self.fills = 0
        self.no_runs = -1

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        self.fills += 1
        return True

    def skip(self, chars: str = _WS) -> str:
        """Skip ``chars``; return the next character ('' at end of file)."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in chars:
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self.fill():
                return ""

    def value(self) -> Any:
        """Decode the next JSON value, reading more as needed. Raises ValueError when broken."""
        self.skip()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except ValueError:
                if len(self.buf) - self.pos < MAX_RECORD and self.fill():
                    continue
                raise
            if end >= len(self.buf) and self.fill():  # a number cut by the chunk boundary
                continue
            self.pos = end
            return obj

    def rest(self) -> str:
        rest = self.buf[self.pos:]
        while len(rest) < 10_000 and self.fill():
            rest = self.buf[self.pos:]
        return rest


def read_json(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Records of JSON documents: arrays, Graph pages, arrays of pages, single objects.

    Documents are read incrementally, one after the other (concatenated documents are
    allowed). A syntax error or truncation ends the file: what follows is one Broken record
    (its text cut), everything before it is kept.
    """
    s = _Stream(fh)
    count = [0]
    try:
        while (c := s.skip(_WS + "\ufeff")) != "":
            if c == "[":
                yield from _array(s, count)
            elif c == "{":
                yield from _object(s, count)
            else:
                for rec in _flatten(s.value()):
                    count[0] += 1
                    yield count[0], rec
    except ValueError as exc:
        yield count[0] + 1, Broken(f"JSON broken after record {count[0]}: {str(exc).split(':')[0]}", _cut(s.rest()))


def _array(s: _Stream, count: list[int], pages: bool = True) -> Iterator[tuple[int, Any]]:
    """Elements of an array; with ``pages`` an element that is a Graph page yields its records.

    Runs of whole elements are decoded in one orjson call where the records' first two keys
    mark where one element ends and the next begins (see :func:`_run`); everything else, and any
    run that does not decode, goes element by element through the stdlib decoder.
    """
    s.pos += 1
    boundary: re.Pattern[str] | None = None
    while (c := s.skip(_WS + ",")) != "]":
        if c == "":
            raise ValueError("unexpected end of file inside an array (truncated JSON)")
        run = _run(s, boundary) if boundary is not None else None
        values = run if run is not None else [s.value()]
        if boundary is None and _orjson is not None and isinstance(values[0], dict) and len(values[0]) > 1:
            boundary = _boundary(values[0])
        for value in values:
            for rec in _flatten(value) if pages else (value,):
                count[0] += 1
                yield count[0], rec
    s.pos += 1


def _boundary(first: dict[str, Any]) -> re.Pattern[str] | None:
    """A pattern for the gap between two records shaped like ``first`` (its first two keys)."""
    k1, k2 = list(first)[:2]
    if not isinstance(first[k1], str | int) or isinstance(first[k1], bool):
        return None
    value = r'"(?:[^"\\]|\\.)*"' if isinstance(first[k1], str) else r"-?\d+"
    return re.compile(r"\}\s*,\s*(?=\{\s*" + re.escape(json.dumps(k1)) + r"\s*:\s*" + value + r"\s*,\s*"
                      + re.escape(json.dumps(k2)) + r"\s*:)")


def _run(s: _Stream, boundary: re.Pattern[str]) -> list[Any] | None:
    """Decode the whole elements in the buffer from ``s.pos`` up to the last boundary, if any.

    A boundary found inside a string or a nested value leaves the text unbalanced, which no
    JSON decoder accepts; then None is returned and the caller decodes one element instead.
    """
    if s.no_runs == s.fills:  # this buffer already failed: element by element until the next read
        return None
    buf, start = s.buf, s.pos
    ends = [m.start() + 1 for m in boundary.finditer(buf, start)]
    for end in ends[:-4:-1]:  # the last three candidates, latest first
        if end - start < 4096:
            break
        try:
            values = _orjson.loads("[" + buf[start:end] + "]")
        except ValueError:
            continue
        if values and all(isinstance(v, dict) for v in values):
            s.pos = end
            return list(values)
        break
    s.no_runs = s.fills
    return None


def _object(s: _Stream, count: list[int]) -> Iterator[tuple[int, Any]]:
    """A top-level object: a Graph page (its ``value`` streamed) or one record."""
    s.pos += 1
    fields: dict[str, Any] = {}
    paged = False
    while (c := s.skip(_WS + ",")) != "}":
        if c != '"':
            raise ValueError("expected a property name" if c else "unexpected end of file (truncated JSON)")
        key = s.value()
        if s.skip() != ":":
            raise ValueError("expected ':' after a property name")
        s.pos += 1
        if key == "value" and s.skip() == "[" and all(k.startswith("@odata") for k in fields):
            paged = True
            yield from _array(s, count, pages=False)
        else:
            fields[key] = s.value()
    s.pos += 1
    if not paged:
        count[0] += 1
        yield count[0], fields


def read_csv(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file as dicts keyed by the header; a row of the wrong width is Broken."""
    reader = csv.reader(fh)
    try:
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
                yield n, Broken(f"CSV row {n} has {len(row)} fields, the header has {width}", _cut(",".join(row)))
                continue
        yield n, dict(zip(header, row, strict=True))


def csv_header(head: str) -> list[str]:
    """The header row of a CSV file from its first characters."""
    try:
        return next(csv.reader(io.StringIO(head)))
    except (StopIteration, csv.Error):
        return []


READERS = {"json": read_json, "jsonl": read_jsonl, "csv": read_csv}
