"""JSON containers read incrementally: documents (arrays, Graph pages, arrays of pages, single
objects, several documents one after the other) and JSON lines.

Readers yield ``(position, record)``: position is the record's 1-based number in the file (every
record of a page, every JSON line, every broken span counts one) and record is what the JSON holds,
or a :class:`Broken` with the text that could not be read, why, and where it lies in the file.

A bad record never ends the file: the reader finds where it ends (a string- and nesting-aware scan
that ignores what makes it invalid: control characters, lone surrogates, undecodable bytes) or, when
the damage hides that (a lost quote), where the next record of the same shape starts, and carries on
there. Memory stays bounded: text is read in chunks of :data:`CHUNK` characters, and a record longer
than ``limits.MAX_RECORD`` is skipped in bounded memory and reported as a reference (byte offset,
length, sha256), not copied.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from typing import IO, Any

from ir_toolkit.sources import limits
from ir_toolkit.sources.fields import LONG_INT, loads
from ir_toolkit.sources.jsontext import WS, Stream, broken_value, element, learn_shape, why
from ir_toolkit.sources.rawtext import ESCAPE, Broken, TextInfo, cut_text, info_of

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]

__all__ = ["CHUNK", "ESCAPE", "MAX_RECORD", "Broken", "TextInfo", "cut_text", "info_of", "pages_of", "read_json",
           "read_jsonl"]

CHUNK = 1 << 22  # characters per read of the document reader
MAX_RECORD = limits.MAX_RECORD  # the default; readers consult ``limits.MAX_RECORD`` at run time
_PAGE = re.compile(r'\{\s*"(?:@odata[^"\\]*|value)"\s*:')


def _pages(obj: Any) -> list[Any] | None:
    """The records of a page (a Graph page ``{"@odata...": ..., "value": [...]}`` or another
    envelope of :func:`envelope_key`), else None."""
    if isinstance(obj, dict):
        before: list[str] = []
        for k, v in obj.items():
            key = str(k)
            if envelope_key(key, before):
                return list(v) if isinstance(v, list) else None
            if key not in HEAD_KEYS and not key.startswith("@odata"):  # a record's own field: no envelope
                break
            before.append(key)
        return table_rows(obj) if "tables" in obj else None
    return None


def pages_of(obj: Any) -> list[Any] | None:
    """The records of a Graph page, else None (see :func:`_pages`)."""
    return _pages(obj)


def _records(value: Any, pages: bool) -> list[Any]:
    """The records of one array element: a nested array's items (a stray ``[`` must not hide them
    all behind one non-record), a page's records (with ``pages``), else the element itself."""
    if isinstance(value, list) and value:  # (an empty one stays one record, quarantined: nothing vanishes)
        return [rec for item in value for rec in _flatten(item)]
    return _flatten(value) if pages else [value]


def _flatten(obj: Any) -> list[Any]:
    page = _pages(obj)
    return page if page is not None else [obj]


# ----- envelopes besides the Graph page (a small, separate addition: issue 15) -------------------
_LIST_KEYS = {"value", "records", "results", "Results"}
HEAD_KEYS = {"schema", "Schema", "Stats", "stats", "preview", "init_offset", "messages", "fields", "highlighted",
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
    return all(k in HEAD_KEYS for k in heads) and (key != "value" or not heads)


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


# ----- JSON lines -------------------------------------------------------------------------------
def read_jsonl(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Records of a JSON lines file; a line that is no JSON (or too long) is one Broken record.

    A line that is a Graph page yields each of its records, each with its own position.
    """
    info = info_of(fh)
    offset = info.start
    n = line_no = 0
    while True:
        limit = limits.MAX_RECORD
        line = fh.readline(limit + 1)
        if not line:
            return
        line_no += 1
        start = offset
        if len(line) > limit and not line.endswith("\n"):
            length, digest = _skip_line(fh, line, info)
            offset += length
            n += 1
            yield n, Broken(f"line {line_no} is longer than the limit of {limit} characters per record "
                            f"({length} bytes): kept as a reference, not copied", "", start, length, digest)
            continue
        offset += info.nbytes(line)
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except (ValueError, RecursionError) as exc:
            text = line.rstrip("\r\n")
            if "{" in text:  # a page, records run together, or a record cut by a line break: the good ones count
                for _, rec in read_json(_Line(text, TextInfo(info.encoding, start))):
                    n += 1
                    if isinstance(rec, Broken):
                        rec.reason = f"line {line_no}: {rec.reason}"
                        rec.truncated = rec.truncated and not line.endswith("\n")
                    yield n, rec
                continue
            n += 1
            yield n, Broken(f"line {line_no} is not valid JSON ({why(exc)})", cut_text(text), start,
                            info.nbytes(text), truncated=not line.endswith("\n"))
            continue
        for rec in line_records(obj):
            n += 1
            yield n, rec


OWNER_MARKER = "userPrincipalName"


def line_records(obj: Any) -> list[Any]:
    """The records of one JSON line: a page's records, else the line itself.

    Untitled Goose Tool writes a mailbox's Graph inbox rules as one line holding the page's rules
    followed by ``{"userPrincipalName": owner}``: that marker names the owner of the rules before it
    and is added to each of them (the file keeps it as written), not read as a record of its own.
    """
    if isinstance(obj, list) and len(obj) > 1:
        last = obj[-1]
        if isinstance(last, dict) and list(last) == [OWNER_MARKER] and all(
                isinstance(r, dict) and OWNER_MARKER not in r for r in obj[:-1]):
            return [{**r, OWNER_MARKER: last[OWNER_MARKER]} for r in obj[:-1]]
    return _flatten(obj)  # any other array is one record (quarantined: no object), as a line always was


class _Line(io.StringIO):
    """One line's text as a stream, with the byte offset it starts at in the file."""

    def __init__(self, text: str, info: TextInfo) -> None:
        super().__init__(text)
        self.text_info = info


def _skip_line(fh: IO[str], head: str, info: TextInfo) -> tuple[int, str]:
    """Read on to the end of an over-long line in bounded memory: its byte length and sha256."""
    h = hashlib.sha256()
    length = 0
    piece = head
    while piece:
        data = info.encode(piece)
        h.update(data)
        length += len(data)
        if piece.endswith("\n"):
            break
        piece = fh.readline(1 << 20)
    return length, h.hexdigest()


# ----- JSON documents ---------------------------------------------------------------------------


# ----- JSON documents ---------------------------------------------------------------------------
def read_json(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Records of JSON documents: arrays, Graph pages, arrays of pages, single objects.

    Documents are read incrementally, one after the other (concatenated documents are allowed).
    A broken record is one Broken record and reading carries on after it; damage outside any
    record (a page's own fields) is one Broken span up to the next record that decodes.
    """
    s = Stream(fh, CHUNK)
    count = [0]
    while (c := s.skip(WS + "\ufeff,]}")) != "":
        start, before = s.mark(), count[0]
        try:
            if c == "[":
                yield from _array(s, count)
            elif c == "{":
                yield from _object(s, count)
            else:  # a scalar document, or text that is no JSON: up to the next record is one Broken
                for rec in _flatten(s.value()):
                    count[0] += 1
                    yield count[0], rec
        except (ValueError, RecursionError) as exc:
            if count[0] == before:
                s.reset(start)
            if s.truncated and s.skip() == "":
                return
            count[0] += 1
            yield count[0], broken_value(s, f"JSON broken after record {before}: {why(exc)}", resync_first=True)


def _array(s: Stream, count: list[int], pages: bool = True) -> Iterator[tuple[int, Any]]:
    """Elements of an array; with ``pages`` an element that is a Graph page yields its records.

    Runs of whole elements are decoded in one orjson call where the records' first two keys
    mark where one element ends and the next begins (see :func:`_run`); everything else, and any
    run that does not decode, goes element by element through the stdlib decoder. A broken
    element is one Broken record; reading resumes after it.
    """
    s.pos += 1
    while (c := s.skip(WS + ",")) != "]":
        if c == "":
            if not s.truncated:
                s.truncated = True
                count[0] += 1
                yield count[0], Broken("the file ends inside an array (truncated JSON)", "", s.offset(s.pos), 0,
                                       truncated=True)
            return
        if pages and c == "{":
            s.ensure(4096)
            if _PAGE.match(s.buf, s.pos):
                start, before = s.mark(), count[0]
                try:
                    yield from _object(s, count)
                except (ValueError, RecursionError) as exc:
                    if count[0] == before:
                        s.reset(start)
                    count[0] += 1
                    yield count[0], broken_value(s, f"Graph page broken after record {before}: {why(exc)}",
                                            resync_first=True)
                continue
        run = _run(s) if s.boundary is not None else None
        if run is not None:
            values, ok = run, True
        else:
            value, ok = element(s)
            values = [value]
        if ok and s.record_start is None:
            learn_shape(s, values[0])
        for value in values:
            for rec in _records(value, pages) if ok else (value,):
                count[0] += 1
                yield count[0], rec
    s.pos += 1


def _run(s: Stream) -> list[Any] | None:
    """Decode the whole elements in the buffer from ``s.pos`` up to the last boundary, if any.

    A boundary found inside a string or a nested value leaves the text unbalanced, which no
    JSON decoder accepts; then None is returned and the caller decodes one element instead.
    """
    if s.no_runs == s.fills or s.boundary is None:  # this buffer already failed: one by one until the next read
        return None
    buf, start = s.buf, s.pos
    ends = [m.start() + 1 for m in s.boundary.finditer(buf, start)]
    if any(b - a > limits.MAX_RECORD for a, b in zip([start, *ends], ends, strict=False)):
        ends = []  # a record over the size bound: element by element, where it is measured
    for end in ends[:-4:-1]:  # the last three candidates, latest first
        if end - start < 4096 or LONG_INT.search(buf, start, end):
            break
        try:
            values = _orjson.loads("[" + buf[start:end] + "]")
        except ValueError:
            continue
        if values and all(isinstance(v, dict) and _pages(v) is None for v in values):
            s.pos = end
            return list(values)
        break
    s.no_runs = s.fills
    return None


def _object(s: Stream, count: list[int]) -> Iterator[tuple[int, Any]]:
    """A top-level object: a Graph page (its ``value`` streamed) or one record.

    Raises:
        ValueError: the object's own text is broken (its records so far are yielded).
    """
    s.pos += 1
    fields: dict[str, Any] = {}
    paged = False
    while (c := s.skip(WS + ",")) != "}":
        if c == "" and s.truncated:
            return
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
