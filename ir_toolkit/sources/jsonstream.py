"""JSON containers read incrementally: documents (arrays, Graph pages, single objects,
several documents one after the other) and JSON lines.

Readers yield ``(position, record)``: position is the 1-based record number (JSON lines: the
line number) and record is what the JSON holds, or a :class:`Broken` with the text that could
not be read and why. A Graph page (``{"@odata.context": ..., "value": [...]}``) yields its
records. Memory stays bounded: the text is read in chunks of :data:`CHUNK` characters and one
record larger than :data:`MAX_RECORD` is reported broken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ir_toolkit.sources.fields import LONG_INT, loads

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]

CHUNK = 1 << 22
MAX_RECORD = 64 << 20
_WS = " \t\r\n"
_DECODER = json.JSONDecoder()


@dataclass
class Broken:
    """A record that could not be read: the text (cut to 10 kB) and the reason."""

    reason: str
    text: str



def cut_text(text: str) -> str:
    return text if len(text) <= 10_000 else text[:10_000] + f"... ({len(text)} characters)"


def _pages(obj: Any) -> list[Any] | None:
    """The records of a page (a Graph page ``{"@odata...": ..., "value": [...]}`` or another
    envelope of :func:`envelope_key`), else None."""
    if isinstance(obj, dict):
        before: list[str] = []
        for k, v in obj.items():
            key = str(k)
            if envelope_key(key, before):
                return list(v) if isinstance(v, list) else None
            if key not in _HEAD_KEYS and not key.startswith("@odata"):  # a record's own field: no envelope
                break
            before.append(key)
        return table_rows(obj) if "tables" in obj else None
    return None


def _flatten(obj: Any) -> list[Any]:
    page = _pages(obj)
    return page if page is not None else [obj]


# ----- envelopes besides the Graph page (a small, separate addition: issue 15) -------------------
_LIST_KEYS = {"value", "records", "results", "Results"}
_HEAD_KEYS = {"schema", "Schema", "Stats", "stats", "preview", "init_offset", "messages", "fields", "highlighted",
              "post_process_count"}


def envelope_key(key: str, before: list[str]) -> bool:
    """True when ``key`` holds the records of an envelope whose earlier keys are ``before``.

    Envelopes: a Graph page (``@odata`` annotations, then ``value``), an Azure Monitor / Event Hub
    body (``records``), Defender advanced hunting API results (``Schema``, ``Results``), Graph
    runHuntingQuery (``schema``, ``results``) and a Splunk REST export (``preview``, ``fields`` ...,
    ``results``).
    """
    if key not in _LIST_KEYS:
        return False
    heads = [k for k in before if not k.startswith("@odata")]
    return all(k in _HEAD_KEYS for k in heads) and (key != "value" or not heads)


def table_rows(obj: dict[str, Any]) -> list[Any] | None:
    """The rows of a Log Analytics query API body (``{"tables": [{"columns": [{"name": ...}],
    "rows": [[...]]}]}``) as records keyed by column name, else None. A row of another width than
    its columns is kept as the list it is (quarantined as no object)."""
    tables = obj.get("tables")
    if not isinstance(tables, list) or not set(obj) <= {"tables", "statistics", "render"}:
        return None
    out: list[Any] = []
    for t in tables:
        if not isinstance(t, dict) or not isinstance(t.get("columns"), list) or not isinstance(t.get("rows"), list):
            return None
        names = [c.get("name") if isinstance(c, dict) else None for c in t["columns"]]
        if not all(isinstance(n, str) for n in names):
            return None
        out += [dict(zip(names, row, strict=True)) if isinstance(row, list) and len(row) == len(names) else row
                for row in t["rows"]]
    return out


def read_jsonl(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Records of a JSON lines file; a line that is no JSON is one Broken record."""
    for n, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except ValueError as exc:
            yield n, Broken(f"line {n} is not valid JSON ({exc.args[0].split(':')[0]})", cut_text(line.rstrip("\n")))
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
        yield count[0] + 1, Broken(f"JSON broken after record {count[0]}: {str(exc).split(':')[0]}", cut_text(s.rest()))


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
        if end - start < 4096 or LONG_INT.search(buf, start, end):
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
        if s.skip() == "[" and envelope_key(key, list(fields)):
            paged = True
            yield from _array(s, count, pages=False)
        else:
            fields[key] = s.value()
    s.pos += 1
    if not paged:
        for rec in _flatten(fields):  # a Log Analytics query body: its rows
            count[0] += 1
            yield count[0], rec
