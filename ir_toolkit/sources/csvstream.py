"""CSV rows read in bounded memory, resynchronising after a broken row.

Rows are dicts keyed by the header, with their 1-based data row number. A row of the wrong width
or that :mod:`csv` cannot read is one :class:`~ir_toolkit.sources.rawtext.Broken` record with its
byte offset; when it swallowed the lines after it (a lost quote), it is cut back to the lines
before the first one that is a whole row by itself, and those are read again. A row longer than
``limits.MAX_RECORD`` is skipped and kept as a reference (offset, length, sha256).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from typing import IO, Any

from ir_toolkit.sources import limits
from ir_toolkit.sources.excel import is_sep_line
from ir_toolkit.sources.rawtext import Broken, TextInfo, cut_text, info_of

__all__ = ["read_csv"]


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


def _one_row(line: str, width: int, delimiter: str = ",") -> bool:
    """True when ``line`` alone is a whole CSV row of ``width`` fields (a place to resume at)."""
    try:
        rows = list(csv.reader([line], delimiter=delimiter))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == width


def read_csv(fh: IO[str], delimiter: str = ",") -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file as dicts keyed by the header; a row that cannot be read is Broken.

    A broken row that swallowed several lines (a lost quote) is cut back to the lines before the
    first one that is a whole row by itself, and reading resumes there; a row longer than the
    limit is skipped and kept as a reference.
    """
    csv.field_size_limit(max(limits.MAX_RECORD, 1 << 17))  # rows are bounded as a whole by _Lines
    info = info_of(fh)
    lines = _Lines(fh, info)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
        if is_sep_line(header):
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
            reader = csv.reader(lines, delimiter=delimiter)
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
        keep = next((j for j in range(1, len(pending)) if _one_row(pending[j][1], width, delimiter)), len(pending))
        if keep < len(pending):
            lines.unread(pending[keep:])
            reason += f"; it swallowed the {len(pending) - keep} line(s) after it, read again"
        reader = csv.reader(lines, delimiter=delimiter)
        text = "".join(t for _, t in pending[:keep]).rstrip("\r\n")
        offset = pending[0][0] if pending else None
        cut = bool(pending) and keep == len(pending) and not pending[-1][1].endswith(("\n", "\r"))
        yield n, Broken(reason, cut_text(text), offset, info.nbytes(text), truncated=cut)
