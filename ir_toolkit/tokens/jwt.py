"""Split and decode a JSON Web Token without trusting anything in it.

A token found in a proxy log or a HAR file is attacker-controlled text. This
module only takes it apart: three base64url segments, a JSON header, JSON
claims, the signature bytes. Nothing is verified here (see ``signature`` and
``verdict``). Every problem raises :class:`TokenFormatError`, one line that never
contains the token itself, only its fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ir_toolkit.errors import InputFormatError

MAX_TOKEN_CHARS = 100_000
"""Longer text is not a token Entra would issue (real ones are 1-10 kB even with many groups)."""
MAX_HEADER_BYTES = 4_096
"""A JOSE header holds a handful of fields; a larger one is an attack on the parser, not a token."""

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
"""A JWS in compact form inside any text: both JSON segments start with ``{"`` (``eyJ``)."""


class TokenFormatError(InputFormatError):
    """The text is not a well-formed JWS compact token."""


@dataclass(frozen=True)
class DecodedToken:
    """A token taken apart, nothing verified.

    Attributes:
        header: The JOSE header (alg, kid, x5t, typ, nonce ...).
        claims: The payload claims.
        header_json: The header exactly as encoded (needed for Graph's nonce scheme).
        signing_input: ``header_b64.claims_b64`` as bytes: what the signature covers.
        signature: The raw signature bytes (empty for ``alg: none``).
        fingerprint: ``sha256:`` and the first 16 hex digits of the SHA-256 of the whole token.
    """

    header: dict[str, Any]
    claims: dict[str, Any]
    header_json: str
    signing_input: bytes
    signature: bytes
    fingerprint: str

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def kid(self) -> str | None:
        v = self.header.get("kid")
        return str(v) if v is not None else None

    @property
    def x5t(self) -> str | None:
        v = self.header.get("x5t")
        return str(v) if v is not None else None


def fingerprint(token: str) -> str:
    """The token's display name: ``sha256:`` + 16 hex digits; safe to log, print and store."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def clean(text: str) -> str:
    """Strip whitespace, quotes and a leading ``Bearer`` from a pasted token."""
    t = text.strip().strip("\"'").strip()
    if t[:7].lower() == "bearer ":
        t = t[7:].strip()
    return t


def b64url_decode(segment: str) -> bytes:
    """Decode one base64url segment (padding optional).

    Raises:
        ValueError: when the segment holds other characters or a bad length.
    """
    if not _B64URL.match(segment):
        raise ValueError("characters outside the base64url alphabet")
    if len(segment) % 4 == 1:
        raise ValueError("impossible base64 length")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None


def _json_object(segment: str, what: str, fp: str) -> tuple[dict[str, Any], str]:
    try:
        raw = b64url_decode(segment)
    except ValueError as exc:
        raise TokenFormatError(f"token {fp}: {what} segment is not base64url ({exc})") from None
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise TokenFormatError(f"token {fp}: {what} segment is not JSON") from None
    if not isinstance(value, dict):
        raise TokenFormatError(f"token {fp}: {what} is JSON but not an object")
    return value, text


def decode_token(token: str) -> DecodedToken:
    """Split a compact JWS and decode its header and claims, trusting nothing.

    Args:
        token: The token text (``Bearer`` prefix and surrounding quotes are tolerated).

    Returns:
        The decoded token.

    Raises:
        TokenFormatError: on a wrong number of segments, bad base64url, non-JSON parts,
            an oversized header or token. The message names the token by fingerprint only.
    """
    token = clean(token)
    fp = fingerprint(token)
    if not token:
        raise TokenFormatError("empty token")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenFormatError(f"token {fp}: {len(token)} characters, more than any real token "
                               f"({MAX_TOKEN_CHARS}); refusing to parse it")
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenFormatError(f"token {fp}: 5 segments: an encrypted token (JWE) cannot be inspected "
                               "without the recipient's private key")
    if len(parts) != 3:
        raise TokenFormatError(f"token {fp}: {len(parts)} segment(s); a signed token (JWS) has 3: "
                               "header.claims.signature")
    head_b64, claims_b64, sig_b64 = parts
    if len(head_b64) > (MAX_HEADER_BYTES * 4) // 3 + 4:
        raise TokenFormatError(f"token {fp}: header segment of {len(head_b64)} characters is larger "
                               f"than any JOSE header ({MAX_HEADER_BYTES} bytes); refusing to parse it")
    header, header_json = _json_object(head_b64, "header", fp)
    claims, _ = _json_object(claims_b64, "claims", fp)
    try:
        signature = b64url_decode(sig_b64)
    except ValueError as exc:
        raise TokenFormatError(f"token {fp}: signature segment is not base64url ({exc})") from None
    if not isinstance(header.get("alg"), str):
        raise TokenFormatError(f"token {fp}: header has no 'alg'")
    return DecodedToken(header=header, claims=claims, header_json=header_json,
                        signing_input=f"{head_b64}.{claims_b64}".encode("ascii"),
                        signature=signature, fingerprint=fp)
