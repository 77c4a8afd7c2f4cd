"""Judge a decoded token: which key signed it, and is it what it claims to be?

The verdict is the gravest outcome of the named checks of :mod:`ir_toolkit.tokens.checks`
(:data:`CHECKS`). Verdicts, gravest first (:data:`VERDICTS`): forged, invalid_signature,
unverifiable, unknown_key, suspicious, valid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ir_toolkit.tokens.checks import CHECKS, Context, key_name
from ir_toolkit.tokens.jwt import DecodedToken
from ir_toolkit.tokens.keys import KeyCatalogue
from ir_toolkit.tokens.signature import algorithm_problem, verify

__all__ = ["CHECKS", "VERDICTS", "claims_of_interest", "judge"]

VERDICTS: dict[str, str] = {
    "forged": "A real key signed it, but it could not have been issued genuinely (wrong key kind for the tenant, "
              "a key expired or not yet valid at issue time, a compromised key outside its validity).",
    "invalid_signature": "The signature does not verify with the key the header names (spoofed kid, tampering), "
                         "or the algorithm is not acceptable (none, HMAC confusion).",
    "unverifiable": "The signature cannot be checked by a third party (Microsoft Graph's nonce-signed tokens).",
    "unknown_key": "No key in the catalogue or the given JWKS files matches the header's kid/x5t.",
    "suspicious": "The signature verifies, but the claims are not what Entra issues.",
    "valid": "Nothing wrong found.",
}


# ----- judging ---------------------------------------------------------------------------------
def claims_of_interest(claims: dict[str, Any]) -> dict[str, Any]:
    """The claims a responder reads first; times as ISO 8601 UTC."""
    out: dict[str, Any] = {}
    for name in ("iss", "tid", "aud", "appid", "azp", "upn", "unique_name", "preferred_username", "oid", "uti",
                 "sid", "ver", "scp", "roles", "idtyp", "ipaddr"):
        out[name] = claims.get(name)
    for name in ("iat", "nbf", "exp"):
        v = claims.get(name)
        try:
            out[name] = (datetime.fromtimestamp(v, tz=UTC).isoformat().replace("+00:00", "Z")
                         if isinstance(v, int | float) and not isinstance(v, bool) else v)
        except (OverflowError, OSError, ValueError):
            out[name] = v
    return out


def _unknown_key(token: DecodedToken) -> dict[str, Any]:
    """The ``key`` object when no catalogue key has the header's kid/x5t: what the header names, nothing else."""
    return {"kid": token.kid, "x5t": token.x5t, "issuer": None, "kind": None, "compromised": False,
            "not_before": None, "not_after": None, "thumbprint": None, "source": None}


def judge(token: DecodedToken, catalogue: KeyCatalogue, now: datetime | None = None) -> dict[str, Any]:
    """Verify ``token`` against ``catalogue`` and run every check.

    Returns:
        The verdict document: fingerprint, verdict, signature (valid|invalid|unverifiable), alg,
        key (the key that verified, else the first one named, else the header's kid/x5t with the rest None),
        claims (of interest),
        reasons (sentences, the signature first), summary (the gravest reason), checks (NAME -> gravest
        verdict of each check that spoke), header (the JOSE header), all_claims (every claim; never the signature).
    """
    candidates = catalogue.candidates(token.kid, token.x5t)
    key, how = None, None
    if not algorithm_problem(token.alg):
        for k in candidates:
            how = verify(token, k)
            if how:
                key = k
                break
    ctx = Context(token, candidates, key, how, now or datetime.now(UTC))
    found: list[tuple[str, str, str]] = []
    for name, chk in CHECKS.items():
        found += [(name, verdict, sentence) for verdict, sentence in chk.run(ctx)]
    order = list(VERDICTS)
    verdict = min((v for _, v, _ in found), key=order.index, default="valid")
    if key is not None:
        signature = "valid"
        lead = f"the signature verifies ({token.alg}) with the {key_name(key)}"
        if how == "graph-nonce":
            lead += " using Microsoft Graph's hashed-nonce header"
    elif algorithm_problem(token.alg) or (candidates and "nonce" not in token.header):
        signature, lead = "invalid", ""
    else:
        signature, lead = "unverifiable", ""
    ranked = [s for _, _, s in sorted(found, key=lambda f: order.index(f[1]))]
    if verdict == "valid":
        ranked.append("no check found anything wrong")
    reasons = ([lead] if lead else []) + ranked
    shown = key or (candidates[0] if candidates else None)
    return {
        "fingerprint": token.fingerprint,
        "verdict": verdict,
        "signature": signature,
        "alg": token.alg,
        "key": shown.describe() if shown else _unknown_key(token),
        "claims": claims_of_interest(token.claims),
        "reasons": reasons,
        "summary": ranked[0],
        "checks": _gravest_per_check(found, order),
        "header": dict(token.header),
        "all_claims": dict(token.claims),
    }


def _gravest_per_check(found: list[tuple[str, str, str]], order: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, verdict, _ in found:
        if name not in out or order.index(verdict) < order.index(out[name]):
            out[name] = verdict
    return out
