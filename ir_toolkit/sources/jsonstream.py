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

import codecs
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ir_toolkit.sources import limits
from ir_toolkit.sources.fields import LONG_INT, loads

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]

CHUNK = 1 << 22
MAX_RECORD = limits.MAX_RECORD  # the default; readers consult ``limits.MAX_RECORD`` at run time
ESCAPE = "irtoolkit-escape"
_WS = " \t\r\n"
_DECODER = json.JSONDecoder()
_PAGE = re.compile(r'\{\s*"(?:@odata[^"\\]*|value)"\s*:')
_GENERIC = re.compile(r',\s*(?=\{\s*")')
_STRUCT = re.compile(r'["{}\[\]]')
_STRING = re.compile(r'["\\]')
_SCALAR_END = re.compile(r"[,\]}\s]")
_MAX_TRIES = 200


def _escape(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Codec error handler: undecodable bytes become U+DC00+byte (as ``surrogateescape`` does, for
    every byte, so UTF-16 and lone surrogates never stop a read); encoding maps them back."""
    if isinstance(exc, UnicodeDecodeError):
        return "".join(chr(0xDC00 + b) for b in exc.object[exc.start:exc.end]), exc.end
    if isinstance(exc, UnicodeEncodeError):
        out = bytes(ord(c) - 0xDC00 if 0xDC00 <= ord(c) <= 0xDCFF else 0x3F for c in exc.object[exc.start:exc.end])
        if exc.encoding.replace("_", "-").startswith("utf-16") and len(out) % 2:
            out += b"\x00"  # UTF-16 encoders take whole code units only
        return out, exc.end
    raise exc


codecs.register_error(ESCAPE, _escape)


@dataclass
class TextInfo:
    """How the decoded text maps back to the file's bytes (decompressed bytes for gzip).

    Attributes:
        encoding: The encoding that gives a text's size in bytes (UTF-16 without its BOM).
        start: Bytes before the first character (a byte order mark).
    """

    encoding: str = "utf-8"
    start: int = 0

    def nbytes(self, text: str) -> int:
        """The size of ``text`` in the file, in bytes."""
        if text.isascii() and self.encoding in ("utf-8", "cp1252"):
            return len(text)
        return len(text.encode(self.encoding, ESCAPE))

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding, ESCAPE)


def info_of(fh: IO[str]) -> TextInfo:
    """The :class:`TextInfo` that :func:`ir_toolkit.sources.reader.open_text` attached (else UTF-8)."""
    info = getattr(fh, "text_info", None)
    return info if isinstance(info, TextInfo) else TextInfo()


@dataclass
class Broken:
    """A record that could not be read.

    Attributes:
        reason: Why, in words.
        text: Its text, cut to 10 kB (empty when too big to copy: see the reference).
        offset: Where it starts in the file, in bytes (decompressed bytes for gzip), when known.
        length: Its length in bytes, when known.
        sha256: The sha256 of those bytes (records too big to copy).
        truncated: The file (or its readable part) ended inside it.
    """

    reason: str
    text: str
    offset: int | None = None
    length: int | None = None
    sha256: str | None = None
    truncated: bool = False


def cut_text(text: str) -> str:
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


def pages_of(obj: Any) -> list[Any] | None:
    """The records of a Graph page, else None (see :func:`_pages`)."""
    return _pages(obj)


def _flatten(obj: Any) -> list[Any]:
    page = _pages(obj)
    return page if page is not None else [obj]


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deep to decode"
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.split(":")[0]


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
            if _PAGE.match(text.lstrip()):  # a compact Graph page: its other records are still good
                for _, rec in read_json(_Line(text, TextInfo(info.encoding, start))):
                    n += 1
                    if isinstance(rec, Broken):
                        rec.reason = f"line {line_no}: {rec.reason}"
                    yield n, rec
                continue
            n += 1
            yield n, Broken(f"line {line_no} is not valid JSON ({_why(exc)})", cut_text(text), start,
                            info.nbytes(text), truncated=not line.endswith("\n"))
            continue
        for rec in _flatten(obj):
            n += 1
            yield n, rec


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
class _TooBig(ValueError):
    """A value longer than ``limits.MAX_RECORD``."""


class _Stream:
    """A text buffer over a file, refilled on demand, for the incremental JSON reader."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh, self.buf, self.pos, self.eof = fh, "", 0, False
        self.fills = 0
        self.no_runs = -1
        self.info = info_of(fh)
        self.base = self.info.start  # byte offset of buf[0]
        self.boundary: re.Pattern[str] | None = None  # between two records of the first record's shape
        self.record_start: re.Pattern[str] | None = None  # where such a record starts
        self.truncated = False  # a Broken record already says the file ends inside it
        self.shift = 0  # characters dropped from the buffer's front so far

    def mark(self) -> int:
        """The reading position, as a character count from the start of the text."""
        return self.shift + self.pos

    def reset(self, mark: int) -> None:
        """Move back to ``mark`` (or to the buffer's start, when that text is no longer held)."""
        self.pos = max(mark - self.shift, 0)

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        if self.pos:
            self.base += self.info.nbytes(self.buf[:self.pos])
            self.shift += self.pos
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        self.fills += 1
        return True

    def offset(self, i: int) -> int:
        """Byte offset in the file of ``buf[i]``."""
        return self.base + self.info.nbytes(self.buf[:i])

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

    def ensure(self, n: int) -> None:
        """Have at least ``n`` characters from ``pos`` in the buffer (fewer at end of file)."""
        while len(self.buf) - self.pos < n and self.fill():
            pass

    def value(self) -> Any:
        """Decode the next JSON value, reading more as needed.

        Raises:
            ValueError: the value is not valid JSON (:class:`_TooBig`: longer than the limit).
            RecursionError: nested too deep for the decoder.
        """
        self.skip()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except ValueError:
                if len(self.buf) - self.pos < limits.MAX_RECORD and not self.eof and \
                        _Scanner().feed(self.buf, self.pos) < 0 and self.fill():
                    continue  # the value runs on past the buffer
                if len(self.buf) - self.pos >= limits.MAX_RECORD:
                    raise _TooBig("longer than the limit") from None
                raise
            if end >= len(self.buf) and self.fill():  # a number cut by the chunk boundary
                continue
            if end - self.pos > limits.MAX_RECORD:
                raise _TooBig("longer than the limit")
            self.pos = end
            return obj

    def follows(self, end: int) -> bool:
        """True when what follows ``buf[end]`` may follow a record: a separator, a closer or the end."""
        i = end
        while i < len(self.buf) and self.buf[i] in _WS:
            i += 1
        return i >= len(self.buf) or self.buf[i] in ",]}"


class _Scanner:
    """Finds where a JSON value ends without decoding it: strings and nesting, nothing else."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.started = False

    def feed(self, buf: str, i: int) -> int:
        """Scan ``buf`` from ``i``: the index just past the value, or -1 when ``buf`` ends first."""
        n = len(buf)
        if not self.started:
            while i < n and buf[i] in _WS:
                i += 1
            if i >= n:
                return -1
            self.started = True
            if buf[i] not in '{["':
                m = _SCALAR_END.search(buf, i + 1)
                return m.start() if m else -1
        while i < n:
            if self.escaped:
                self.escaped = False
                i += 1
                continue
            if self.in_string:
                m = _STRING.search(buf, i)
                if m is None:
                    return -1
                j = m.start()
                if buf[j] == "\\":
                    self.escaped = True
                    i = j + 1
                    continue
                self.in_string = False
                i = j + 1
                if self.depth == 0:
                    return i
                continue
            m = _STRUCT.search(buf, i)
            if m is None:
                return -1
            j = m.start()
            c = buf[j]
            if c == '"':
                self.in_string = True
            elif c in "{[":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:
                    return j + 1
            i = j + 1
        return -1


def _learn_shape(s: _Stream, record: Any) -> None:
    """Remember the first record's shape: its first two keys mark where records begin."""
    if s.record_start is not None or not isinstance(record, dict) or len(record) < 2:
        return
    k1, k2 = list(record)[:2]
    if not isinstance(record[k1], str | int) or isinstance(record[k1], bool):
        s.record_start = re.compile(r"(?!)")  # no usable shape: generic resynchronisation only
        return
    value = r'"(?:[^"\\]|\\.)*"' if isinstance(record[k1], str) else r"-?\d+"
    start = (r"\{\s*" + re.escape(json.dumps(k1)) + r"\s*:\s*" + value + r"\s*,\s*"
             + re.escape(json.dumps(k2)) + r"\s*:")
    s.record_start = re.compile(r"(?=" + start + ")")
    if _orjson is not None:
        s.boundary = re.compile(r"\}\s*,\s*(?=" + start + ")")


def _candidate(s: _Stream, i: int, shape_only: bool = False, before: int | None = None) -> int | None:
    """Where the next whole record starts after ``i`` (and before ``before``) in the buffer, or None.

    It must decode to an object followed by a separator. Records of the file's shape (its first
    two keys) are looked for first; then, unless ``shape_only``, any object after a comma.
    """
    patterns = ((s.record_start, False),) if shape_only else ((s.record_start, False), (_GENERIC, True))
    for pattern, whole in patterns:
        if pattern is None:
            continue
        found = pattern.finditer(s.buf, i) if before is None else pattern.finditer(s.buf, i, before)
        for tries, m in enumerate(found):
            if tries >= _MAX_TRIES:
                break
            p = m.end() if whole else m.start()
            try:
                obj, end = _DECODER.raw_decode(s.buf, p)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict) and s.follows(end):
                return p
    return None


def _broken(s: _Stream, reason: str, resync_first: bool = False) -> Broken:
    """The broken value at ``s.pos`` as one Broken record; ``s.pos`` moves to where reading resumes.

    The value ends where a string- and nesting-aware scan says it does, when a separator follows
    there; otherwise (a lost quote or bracket) reading resumes where the next record that decodes
    starts; a value longer than the limit is skipped in bounded memory and kept as a reference.
    With ``resync_first`` (damage outside any record) only the next record's start is looked for.
    """
    start = s.pos
    end = -1
    if not resync_first:
        scan, i = _Scanner(), start
        while True:
            end = scan.feed(s.buf, i)
            if end >= 0 or s.eof or len(s.buf) - s.pos >= limits.MAX_RECORD:
                break
            done = len(s.buf) - s.pos
            if not s.fill():
                break
            start, i = s.pos, s.pos + done
        swallowed = _candidate(s, start + 1, shape_only=True, before=end) if end >= 0 else None
        if end >= 0 and s.follows(end) and swallowed is None:
            return _span(s, start, max(end, start + 1), reason)
    end_rel = end - start if end >= 0 else -1
    i = start + 1
    while True:
        cand = _candidate(s, i)
        if cand is not None:
            stop = cand
            while stop > start + 1 and s.buf[stop - 1] in _WS + ",":
                stop -= 1
            return _span(s, start, stop, reason, resume=cand)
        if s.eof or len(s.buf) - s.pos >= limits.MAX_RECORD:
            break
        done = len(s.buf) - s.pos
        if not s.fill():
            break
        start, i = s.pos, max(s.pos + 1, s.pos + done - 4096)  # patterns cut by the old buffer's end
    if end_rel >= 0 and end_rel <= limits.MAX_RECORD:  # damaged past repair: the scan's end is the best there is
        return _span(s, start, start + max(end_rel, 1), reason)
    if s.eof:
        return _span(s, start, len(s.buf), f"truncated JSON: the file ends inside this record ({reason})",
                     truncated=True)
    return _skip_big(s, start, reason, scan_to_end=not resync_first)


def _span(s: _Stream, start: int, end: int, reason: str, resume: int | None = None,
          truncated: bool = False) -> Broken:
    text = s.buf[start:end]
    if len(text) > limits.MAX_RECORD:
        reason = f"{reason}: longer than the limit of {limits.MAX_RECORD} characters per record " \
                 f"({s.info.nbytes(text)} bytes), kept as a reference, not copied"
    b = Broken(reason, cut_text(text) if len(text) <= limits.MAX_RECORD else "", s.offset(start),
               s.info.nbytes(text), truncated=truncated)
    if len(text) > 10_000:
        b.sha256 = hashlib.sha256(s.info.encode(text)).hexdigest()
    s.pos = end if resume is None else resume
    s.truncated = s.truncated or truncated
    return b


def _skip_big(s: _Stream, start: int, reason: str, scan_to_end: bool) -> Broken:
    """Skip a value longer than the limit (to where a scan says it ends, or to the end of the file),
    hashing it chunk by chunk: never more than the limit and a chunk in memory."""
    offset = s.offset(start)
    h = hashlib.sha256()
    length = 0
    scan = _Scanner() if scan_to_end else None
    end = scan.feed(s.buf, start) if scan is not None else -1
    while True:
        piece = s.buf[start:end] if end >= 0 else s.buf[start:]
        data = s.info.encode(piece)
        h.update(data)
        length += len(data)
        if end >= 0:
            s.pos = end
            break
        s.pos = len(s.buf)
        if not s.fill():
            break
        start = 0
        end = scan.feed(s.buf, 0) if scan is not None else -1
    limit = limits.MAX_RECORD
    tail = "" if end >= 0 else "; it runs to the end of the file"
    s.truncated = s.truncated or end < 0
    return Broken(f"{reason}: longer than the limit of {limit} characters per record ({length} bytes), kept as a "
                  f"reference, not copied{tail}", "", offset, length, h.hexdigest(), truncated=end < 0)


def _element(s: _Stream) -> tuple[Any, bool]:
    """Decode the value at ``s.pos``: ``(value, True)``, or ``(Broken, False)`` with reading moved on."""
    start = s.mark()
    try:
        return s.value(), True
    except _TooBig:
        reason = "record too big"
    except RecursionError:
        reason = "record nested too deep to decode"
    except ValueError as exc:
        reason = f"not valid JSON ({_why(exc)})"
    s.reset(start)
    return _broken(s, reason), False


def read_json(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    """Records of JSON documents: arrays, Graph pages, arrays of pages, single objects.

    Documents are read incrementally, one after the other (concatenated documents are allowed).
    A broken record is one Broken record and reading carries on after it; damage outside any
    record (a page's own fields) is one Broken span up to the next record that decodes.
    """
    s = _Stream(fh)
    count = [0]
    while (c := s.skip(_WS + "\ufeff,]}")) != "":
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
            yield count[0], _broken(s, f"JSON broken after record {before}: {_why(exc)}", resync_first=True)


def _array(s: _Stream, count: list[int], pages: bool = True) -> Iterator[tuple[int, Any]]:
    """Elements of an array; with ``pages`` an element that is a Graph page yields its records.

    Runs of whole elements are decoded in one orjson call where the records' first two keys
    mark where one element ends and the next begins (see :func:`_run`); everything else, and any
    run that does not decode, goes element by element through the stdlib decoder. A broken
    element is one Broken record; reading resumes after it.
    """
    s.pos += 1
    while (c := s.skip(_WS + ",")) != "]":
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
                    yield count[0], _broken(s, f"Graph page broken after record {before}: {_why(exc)}",
                                            resync_first=True)
                continue
        run = _run(s) if s.boundary is not None else None
        if run is not None:
            values, ok = run, True
        else:
            value, ok = _element(s)
            values = [value]
        if ok and s.record_start is None:
            _learn_shape(s, values[0])
        for value in values:
            for rec in _flatten(value) if pages and ok else (value,):
                count[0] += 1
                yield count[0], rec
    s.pos += 1


def _run(s: _Stream) -> list[Any] | None:
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


def _object(s: _Stream, count: list[int]) -> Iterator[tuple[int, Any]]:
    """A top-level object: a Graph page (its ``value`` streamed) or one record.

    Raises:
        ValueError: the object's own text is broken (its records so far are yielded).
    """
    s.pos += 1
    fields: dict[str, Any] = {}
    paged = False
    while (c := s.skip(_WS + ",")) != "}":
        if c == "" and s.truncated:
            return
        if c != '"':
            raise ValueError("expected a property name" if c else "unexpected end of file (truncated JSON)")
        key = s.value()
        if s.skip() != ":":
            raise ValueError("expected ':' after a property name")
        s.pos += 1
        if key == "value" and s.skip() == "[" and all(str(k).startswith("@odata") for k in fields):
            paged = True
            yield from _array(s, count, pages=False)
        else:
            fields[key] = s.value()
    s.pos += 1
    if not paged:
        count[0] += 1
        yield count[0], fields
