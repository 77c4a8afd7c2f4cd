"""Neutralise attacker-controlled text before it reaches a spreadsheet or an XML file.

Everything read from logs is attacker-controlled: a user agent of ``=HYPERLINK(...)``
becomes a live formula when a responder opens an exported CSV in Excel, and a
control character in a user agent makes a GraphML/GEXF file unreadable. This is
the bottom layer (like :mod:`ir_toolkit.schema`), so every other layer may use it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where a column is neutralised: refusing a bad argument loads nothing heavy
    import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def csv_safe(value: object) -> object:
    """Return ``value`` safe for a CSV cell: text starting with = + - @ tab or CR gets a leading apostrophe.

    Non-text values (numbers, None, booleans) are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def xml_safe(value: str) -> str:
    """``value`` with the characters XML 1.0 forbids (control characters, lone surrogates) removed."""
    return _XML_INVALID.sub("", value)


def csv_safe_column(values: pd.Series) -> pd.Series:
    """Vectorised :func:`csv_safe` for a whole column.

    Numeric and boolean columns pass unchanged; in a text (object) column every value is
    checked as text.
    """
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    text = values.astype(object).where(values.notna(), None)
    risky = text.astype("string").str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
    if not risky.any():
        return text
    return text.where(~risky, text[risky].map(lambda v: csv_safe(str(v))))


def mathtext_safe(value: object) -> str:
    """``value`` as text matplotlib draws literally: ``$`` escaped so no mathtext is parsed.

    An address, user agent or mailbox name with two dollar signs would otherwise be read as a
    formula (and an invalid one makes the whole figure fail to render).
    """
    return str(value).replace("$", r"\$")


# ----- secrets: one scrubber for every text that is stored or shown ------------------------------
REDACTED = "[redacted]"
#: Key names whose values are secrets, compared whole and case-insensitively (never as substrings:
#: ``orphan-token/confirmed`` is a count, not a token).
SECRET_KEYS = frozenset({
    "secret", "client_secret", "password", "passphrase", "cert_passphrase", "token", "access_token",
    "refresh_token", "id_token", "assertion", "client_assertion", "authorization", "bearer", "api_key", "apikey",
    "private_key", "pfx_password", "sas_token",
})
_RUN = re.compile(r"[A-Za-z0-9._~+/=-]*")           # a bearer value, a key's value
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")             # one base64url segment of a JWT
_JWT_TAIL = re.compile(r"[A-Za-z0-9_.-]*")           # signature (and JWE parts) after the second dot
_AZURE_SECRET = re.compile(r"[A-Za-z0-9_.~-]*")      # Entra client secrets: xxxNQ~ then 31-34 of these
# Literal names then classes disjoint from their neighbours: every attempt is bounded by its match.
_BEARER = re.compile(r"bearer[ \t]+", re.IGNORECASE)
_NAMES = ("client_secret", "access_token", "refresh_token", "id_token", "client_assertion", "password", "passphrase")
_NAMED = re.compile(f"(?:{'|'.join(_NAMES)})" r"[\"']?[ \t]*[:=][ \t]*[\"']?", re.IGNORECASE)
_known: dict[str, None] = {}  # exact secrets this process holds (tokens handed out, client secrets)
_KNOWN_MAX = 64


def remember_secret(value: str | None) -> None:
    """Have :func:`scrub_text` remove this exact value (a token or client secret this process uses).

    Values shorter than 8 characters are ignored: they are too common to be told from other text.
    """
    if value and len(value) >= 8:
        _known.pop(value, None)
        _known[value] = None
        while len(_known) > _KNOWN_MAX:
            del _known[next(iter(_known))]


def _jwts(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    while (i := text.find("eyJ", pos)) >= 0:
        end1 = _SEGMENT.match(text, i).end()  # type: ignore[union-attr]
        if end1 - i < 10 or text[end1:end1 + 1] != ".":
            pos = end1 if end1 > i + 3 else i + 3  # any later eyJ of this segment fails the same way
            continue
        end2 = _SEGMENT.match(text, end1 + 1).end()  # type: ignore[union-attr]
        if end2 == end1 + 1 or text[end2:end2 + 1] != ".":
            pos = end1 + 1
            continue
        end = _JWT_TAIL.match(text, end2 + 1).end()  # type: ignore[union-attr]
        spans.append((i, end))
        pos = end
    return spans


def _azure_secrets(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    while (i := text.find("Q~", pos)) >= 0:
        pos = i + 2
        if i < 4 or not text[i - 1].isdigit() or _AZURE_SECRET.match(text, i - 4, i - 1).end() != i - 1:  # type: ignore[union-attr]
            continue
        end = _AZURE_SECRET.match(text, i + 2).end()  # type: ignore[union-attr]
        if end - (i + 2) >= 31:
            spans.append((i - 4, end))
            pos = end
    return spans


def _after(pattern: re.Pattern[str], text: str, minimum: int) -> list[tuple[int, int]]:
    """The values after each match of ``pattern``; the search resumes after the value (each character once)."""
    spans, pos = [], 0
    while (m := pattern.search(text, pos)) is not None:
        end = _RUN.match(text, m.end()).end()  # type: ignore[union-attr]
        if end - m.end() >= minimum:
            spans.append((m.end(), end))
        pos = max(end, m.end())
    return spans


def scrub_text(text: str) -> str:
    """``text`` with every token-shaped string replaced by ``[redacted]``.

    Removed: JSON Web Tokens (``eyJ...`` with two dots), the value after ``Bearer``, Entra client
    secrets (``xxx8Q~...``), the value after ``client_secret=``/``"access_token":`` and kin, and the
    exact tokens and secrets registered with :func:`remember_secret`. Linear in the length of
    ``text``: plain searches and regular expressions whose parts cannot overlap (no backtracking on
    long attacker strings).
    """
    if not text:
        return text
    for secret in list(_known):
        if secret in text:
            text = text.replace(secret, REDACTED)
    spans = _jwts(text) if "eyJ" in text else []
    if "Q~" in text:
        spans += _azure_secrets(text)
    lowered = text.lower()  # only to decide which searches can match at all
    if "bearer" in lowered:
        spans += _after(_BEARER, text, 8)
    if any(name in lowered for name in _NAMES):
        spans += _after(_NAMED, text, 1)
    if not spans:
        return text
    out, pos = [], 0
    for start, end in sorted(spans):
        if end <= pos:
            continue
        out += [text[pos:max(start, pos)], REDACTED]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def scrub(value: Any) -> Any:
    """A copy of a JSON-like ``value`` with secrets removed: values of :data:`SECRET_KEYS` keys become
    ``[redacted]`` and every text passes through :func:`scrub_text`. Other keys are kept whatever
    their names contain."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and k.lower() in SECRET_KEYS and v not in (None, "")
                else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value
