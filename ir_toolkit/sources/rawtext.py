"""What every reader yields when a record cannot be read, and how decoded text maps back to bytes.

:class:`Broken` is a record that could not be read: why, its text (cut), and where it lies in the
file. :class:`TextInfo` turns decoded text back into the file's byte offsets and lengths. The codec
error handler :data:`ESCAPE` keeps undecodable bytes visible in the text (U+DC00 + byte), so a bad
byte costs the record that holds it, never the file.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import IO

__all__ = ["ESCAPE", "Broken", "TextInfo", "cut_text", "info_of"]

ESCAPE = "irtoolkit-escape"


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
    """``text``, cut to 10,000 characters (with the full length said)."""
    return text if len(text) <= 10_000 else text[:10_000] + f"... ({len(text)} characters)"
