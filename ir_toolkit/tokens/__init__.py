"""Token forensics: decode, verify and judge access tokens against Entra and MSA signing keys.

* :func:`inspect_token` - one token -> verdict document (the JSON of ``token inspect --json``);
* :func:`scan_text` / :func:`scan_files` - every token in logs, HAR files, scripts, judged once each;
* :func:`build_catalogue` - the signing keys (shipped reference lists, JWKS files, ``--online``);
* :data:`VERDICTS`, :data:`CHECKS` - what a verdict means and the named checks behind it.

Tokens are never logged or returned in full unless asked (``show_token``): a fingerprint
(``sha256:`` + 16 hex digits) names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ir_toolkit.tokens.checks import CHECKS
from ir_toolkit.tokens.jwt import DecodedToken, TokenFormatError, clean, decode_token, fingerprint
from ir_toolkit.tokens.keys import DISCOVERY_URLS, KeyCatalogue, SigningKey, build_catalogue
from ir_toolkit.tokens.scan import results_frame, scan_files, scan_text
from ir_toolkit.tokens.verdict import VERDICTS, judge


def inspect_token(token: str, jwks_files: Sequence[str | Path] = (), online: bool = False, *,
                  catalogue: KeyCatalogue | None = None, show_token: bool = False,
                  discovery_urls: Sequence[str] = DISCOVERY_URLS, now: datetime | None = None) -> dict[str, Any]:
    """Decode a token without trusting it, verify its signature and judge it.

    Args:
        token: The token (a ``Bearer`` prefix and quotes are tolerated).
        jwks_files: Extra JWKS files: a tenant's or an application's keys. A key's kind comes from its
            ``issuer`` field; ``"compromised": true`` marks a key known stolen.
        online: Also fetch ``discovery_urls`` (off by default).
        catalogue: A prepared catalogue (then ``jwks_files`` and ``online`` are ignored).
        show_token: Include the full token under ``token``.
        discovery_urls: Public key endpoints for ``online``.
        now: Analysis time (default: now).

    Returns:
        fingerprint, verdict (see :data:`VERDICTS`), signature (valid|invalid|unverifiable), alg,
        key {kid, x5t, issuer, kind, compromised, not_before, not_after, thumbprint, source},
        claims {iss, tid, aud, appid, azp, upn, unique_name, ..., uti, sid, iat, nbf, exp},
        reasons (sentences), checks (NAME -> verdict), header, all_claims.

    Raises:
        TokenFormatError: when the token is malformed (one line, naming it by fingerprint only).
    """
    decoded = decode_token(token)
    cat = catalogue or build_catalogue(jwks_files, online, discovery_urls)
    result = judge(decoded, cat, now)
    if show_token:
        result["token"] = clean(token)
    return result


__all__ = [
    "CHECKS", "DISCOVERY_URLS", "VERDICTS", "DecodedToken", "KeyCatalogue", "SigningKey", "TokenFormatError",
    "build_catalogue", "decode_token", "fingerprint", "inspect_token", "judge", "results_frame", "scan_files",
    "scan_text",
]
