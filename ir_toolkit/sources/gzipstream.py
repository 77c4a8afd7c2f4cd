"""Gzip evidence decompressed without ever raising on bad data: what was readable is kept.

A cut, corrupt (a failed CRC included) or over-large stream ends early instead of failing the
read: every byte decompressed before the break is returned, then end of file, and
:attr:`SafeGzip.error` says what happened and where. Several members one after the other and
zero padding are read as one stream, as ``gzip`` does.
"""

from __future__ import annotations

import io
import zlib
from typing import IO, Any

from ir_toolkit.sources import limits

__all__ = ["SafeGzip"]

_GZ_PIECE = 1 << 15  # compressed bytes per decompression step (the output of one step is bounded by it)


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
