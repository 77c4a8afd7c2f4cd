"""The JSON text buffer of the document reader, and how it gets past a broken value.

:class:`Stream` holds the text read so far (in chunks of ``chunk`` characters) and knows each
character's byte offset in the file. :class:`Scanner` finds where a JSON value ends without
decoding it (strings and nesting only, so control characters, lone surrogates and undecodable
bytes do not blind it). :func:`broken_value` turns a value that does not decode into one
:class:`~ir_toolkit.sources.rawtext.Broken` record and moves reading to where it can resume: the
scan's end when a separator follows there; else the next record of the file's shape (its first two
keys, :func:`learn_shape`) that decodes; a value longer than ``limits.MAX_RECORD`` is skipped in
bounded memory and kept as a reference (offset, length, sha256).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import IO, Any

from ir_toolkit.sources import limits
from ir_toolkit.sources.rawtext import Broken, cut_text, info_of

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]

__all__ = ["WS", "Scanner", "Stream", "TooBig", "broken_value", "element", "learn_shape", "why"]

WS = " \t\r\n"
DECODER = json.JSONDecoder()
_GENERIC = re.compile(r'(?:,|"value"\s*:\s*\[)\s*(?=\{\s*")')  # an object after a comma or opening a page
_STRUCT = re.compile(r'["{}\[\]]')
_STRING = re.compile(r'["\\]')
_SCALAR_END = re.compile(r"[,\]}\s]")
_MAX_TRIES = 200


def why(exc: BaseException) -> str:
    """The decoder's complaint, in short."""
    if isinstance(exc, RecursionError):
        return "nested too deep to decode"
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.split(":")[0]


class TooBig(ValueError):
    """A value longer than ``limits.MAX_RECORD``."""


class Stream:
    """A text buffer over a file, refilled on demand, for the incremental JSON reader."""

    def __init__(self, fh: IO[str], chunk: int = 1 << 22) -> None:
        self.fh, self.buf, self.pos, self.eof = fh, "", 0, False
        self.chunk = chunk
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
        chunk = self.fh.read(self.chunk)
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

    def skip(self, chars: str = WS) -> str:
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
            ValueError: the value is not valid JSON (:class:`TooBig`: longer than the limit).
            RecursionError: nested too deep for the decoder.
        """
        self.skip()
        while True:
            try:
                obj, end = DECODER.raw_decode(self.buf, self.pos)
            except ValueError:
                if len(self.buf) - self.pos < limits.MAX_RECORD and not self.eof and \
                        Scanner().feed(self.buf, self.pos) < 0 and self.fill():
                    continue  # the value runs on past the buffer
                if len(self.buf) - self.pos >= limits.MAX_RECORD:
                    raise TooBig("longer than the limit") from None
                raise
            if end >= len(self.buf) and self.fill():  # a number cut by the chunk boundary
                continue
            if end - self.pos > limits.MAX_RECORD:
                raise TooBig("longer than the limit")
            self.pos = end
            return obj

    def follows(self, end: int) -> bool:
        """True when what follows ``buf[end]`` may follow a record: a separator, a closer or the end."""
        i = end
        while i < len(self.buf) and self.buf[i] in WS:
            i += 1
        return i >= len(self.buf) or self.buf[i] in ",]}"


class Scanner:
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
            while i < n and buf[i] in WS:
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


def _shape(k1: str, first_is_text: bool, k2: str) -> str:
    """The pattern of a record's start from its first two keys (JSON literals) and first value's kind."""
    value = r'"(?:[^"\\]|\\.)*"' if first_is_text else r"-?\d+"
    return r"\{\s*" + re.escape(k1) + r"\s*:\s*" + value + r"\s*,\s*" + re.escape(k2) + r"\s*:"


_FIRST_KEYS = re.compile(r'\{\s*("(?:[^"\\]|\\.)*")\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*,\s*("(?:[^"\\]|\\.)*")\s*:')


def learn_shape(s: Stream, record: Any) -> None:
    """Remember the first record's shape: its first two keys mark where records begin."""
    if s.record_start is not None or not isinstance(record, dict) or len(record) < 2:
        return
    k1, k2 = list(record)[:2]
    if not isinstance(record[k1], str | int) or isinstance(record[k1], bool):
        s.record_start = re.compile(r"(?!)")  # no usable shape: generic resynchronisation only
        return
    start = _shape(json.dumps(k1), isinstance(record[k1], str), json.dumps(k2))
    s.record_start = re.compile(r"(?=" + start + ")")
    if _orjson is not None:
        s.boundary = re.compile(r"\}\s*,\s*(?=" + start + ")")


def _guess_shape(s: Stream, start: int) -> re.Pattern[str] | None:
    """Before any record decoded: the shape of the broken one, read from its own first two keys."""
    m = _FIRST_KEYS.match(s.buf, start)
    if m is None:
        return None
    return re.compile(r"(?=" + _shape(m[1], m[2].startswith('"'), m[3]) + ")")


def candidate(s: Stream, i: int, shape_only: bool = False, before: int | None = None,
              origin: int | None = None) -> int | None:
    """Where the next whole record starts after ``i`` (and before ``before``) in the buffer, or None.

    It must decode to an object followed by a separator. Records of the file's shape (its first
    two keys) are looked for first; then, unless ``shape_only``, any object after a comma or opening a page's ``value``.
    """
    shape = s.record_start if s.record_start is not None else _guess_shape(s, i - 1 if origin is None else origin)
    patterns = ((shape, False),) if shape_only else ((shape, False), (_GENERIC, True))
    for pattern, whole in patterns:
        if pattern is None:
            continue
        found = pattern.finditer(s.buf, i) if before is None else pattern.finditer(s.buf, i, before)
        for tries, m in enumerate(found):
            if tries >= _MAX_TRIES:
                break
            p = m.end() if whole else m.start()
            try:
                obj, end = DECODER.raw_decode(s.buf, p)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict) and s.follows(end):
                return p
    return None


def broken_value(s: Stream, reason: str, resync_first: bool = False) -> Broken:
    """The broken value at ``s.pos`` as one Broken record; ``s.pos`` moves to where reading resumes.

    The value ends where a string- and nesting-aware scan says it does, when a separator follows
    there; otherwise (a lost quote or bracket) reading resumes where the next record that decodes
    starts; a value longer than the limit is skipped in bounded memory and kept as a reference.
    With ``resync_first`` (damage outside any record) only the next record's start is looked for.
    """
    start = s.pos
    end = -1
    if not resync_first:
        scan, i = Scanner(), start
        while True:
            end = scan.feed(s.buf, i)
            if end >= 0 or s.eof or len(s.buf) - s.pos >= limits.MAX_RECORD:
                break
            done = len(s.buf) - s.pos
            if not s.fill():
                break
            start, i = s.pos, s.pos + done
        swallowed = candidate(s, start + 1, shape_only=True, before=end) if end >= 0 else None
        if end >= 0 and s.follows(end) and swallowed is None:
            return _span(s, start, max(end, start + 1), reason)
    end_rel = end - start if end >= 0 else -1
    i = start + 1
    while True:
        cand = candidate(s, i, origin=start)
        if cand is not None:
            stop = cand
            while stop > start + 1 and s.buf[stop - 1] in WS + ",":
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


def _span(s: Stream, start: int, end: int, reason: str, resume: int | None = None,
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


def _skip_big(s: Stream, start: int, reason: str, scan_to_end: bool) -> Broken:
    """Skip a value longer than the limit (to where a scan says it ends, or to the end of the file),
    hashing it chunk by chunk: never more than the limit and a chunk in memory."""
    offset = s.offset(start)
    h = hashlib.sha256()
    length = 0
    scan = Scanner() if scan_to_end else None
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


def element(s: Stream) -> tuple[Any, bool]:
    """Decode the value at ``s.pos``: ``(value, True)``, or ``(Broken, False)`` with reading moved on."""
    start = s.mark()
    try:
        return s.value(), True
    except TooBig:
        reason = "record too big"
    except RecursionError:
        reason = "record nested too deep to decode"
    except ValueError as exc:
        reason = f"not valid JSON ({why(exc)})"
    s.reset(start)
    return broken_value(s, reason), False
