"""Verify a token's signature with one catalogue key, refusing algorithm confusion.

Only asymmetric algorithms are accepted, and only with a key of the matching type
(and curve): ``none`` and the HMAC family (``HS256`` with a public key used as the
secret, the classic confusion attack) never verify, whatever the key.

Microsoft Graph access tokens carry a ``nonce`` in their header and are signed over
the header with that nonce replaced by its SHA-256: they verify only that way, and
Microsoft says third parties should not validate them at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import get_default_algorithms

from ir_toolkit.tokens.jwt import DecodedToken
from ir_toolkit.tokens.keys import SigningKey

ALGORITHMS: dict[str, str] = {
    "RS256": "RSASSA-PKCS1-v1_5 with SHA-256 (what Entra and MSA use)",
    "RS384": "RSASSA-PKCS1-v1_5 with SHA-384",
    "RS512": "RSASSA-PKCS1-v1_5 with SHA-512",
    "PS256": "RSASSA-PSS with SHA-256",
    "PS384": "RSASSA-PSS with SHA-384",
    "PS512": "RSASSA-PSS with SHA-512",
    "ES256": "ECDSA P-256 with SHA-256",
    "ES384": "ECDSA P-384 with SHA-384",
    "ES512": "ECDSA P-521 with SHA-512",
}
"""Algorithms a signature may verify with, NAME -> DESCRIPTION."""

_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_IMPLEMENTATIONS: dict[str, Any] = {name: alg for name, alg in get_default_algorithms().items() if name in ALGORITHMS}


def algorithm_problem(alg: str) -> str | None:
    """Why a header's ``alg`` can never be accepted, or None when it is an allowed one."""
    if alg.lower() == "none":
        return "the header says alg 'none': the token is unsigned, which Entra never issues"
    if alg.upper().startswith("HS"):
        return (f"the header says alg '{alg}' (a shared-secret HMAC): Entra signs with asymmetric keys only, "
                "so this is algorithm confusion (a public key used as the HMAC secret) and is rejected")
    if alg not in ALGORITHMS:
        return f"the header says alg '{alg}', which no Entra or Microsoft-account key signs with"
    return None


def key_matches_algorithm(key: SigningKey, alg: str) -> bool:
    """True when the key's type (and curve) fits the algorithm."""
    if alg[:2] in ("RS", "PS"):
        return isinstance(key.public_key, rsa.RSAPublicKey)
    if alg in _CURVES:
        return isinstance(key.public_key, ec.EllipticCurvePublicKey) and key.public_key.curve.name == _CURVES[alg]
    return False


def _graph_signing_input(token: DecodedToken) -> bytes | None:
    """The signing input of a Graph token: the header's nonce replaced by its SHA-256 (hex)."""
    nonce = token.header.get("nonce")
    if not isinstance(nonce, str):
        return None
    hashed = hashlib.sha256(nonce.encode("utf-8")).hexdigest()
    encoded_nonce = json.dumps(nonce)[1:-1]
    if encoded_nonce not in token.header_json:
        return None
    header = token.header_json.replace(encoded_nonce, hashed, 1)
    head_b64 = base64.urlsafe_b64encode(header.encode("utf-8")).decode("ascii").rstrip("=")
    claims_b64 = token.signing_input.split(b".", 1)[1]
    return head_b64.encode("ascii") + b"." + claims_b64


def verify(token: DecodedToken, key: SigningKey) -> str | None:
    """Check the token's signature with ``key``.

    Returns:
        ``"direct"`` when the signature verifies over the token as it is, ``"graph-nonce"``
        when it verifies only with Graph's hashed-nonce header, None when it does not verify
        (or the algorithm or key type is not acceptable).
    """
    alg = token.alg
    if algorithm_problem(alg) or not key_matches_algorithm(key, alg):
        return None
    impl = _IMPLEMENTATIONS[alg]
    if impl.verify(token.signing_input, key.public_key, token.signature):
        return "direct"
    graph_input = _graph_signing_input(token)
    if graph_input is not None and impl.verify(graph_input, key.public_key, token.signature):
        return "graph-nonce"
    return None
