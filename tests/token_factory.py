"""Make real keys, certificates, JWKS files and signed tokens for the token tests.

Everything is generated in the test run: no private key is stored anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

CONSUMER = "9188040d-6c67-4c5b-b112-36a304b66dad"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"
V2_TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
CONSUMER_ISSUER = f"https://login.microsoftonline.com/{CONSUMER}/v2.0"
ISSUED = datetime(2023, 6, 15, 1, 30, tzinfo=UTC)


@cache
def rsa_key(n: int = 0) -> rsa.RSAPrivateKey:
    """The n-th RSA test key (cached: key generation is the slow part)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key(n: int = 0) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate(key: Any, not_before: datetime, not_after: datetime, cn: str = "Test STS Signing Key") -> bytes:
    """A self-signed certificate (DER) for ``key`` with the given validity."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def jwk(key: Any, kid: str, issuer: str | None = None, valid: tuple[datetime, datetime] | None = None,
        compromised: bool = False, x5t: str | None = None) -> dict[str, Any]:
    """A public JWK as Microsoft lists them (kid, x5t, issuer, x5c)."""
    if isinstance(key, rsa.RSAPrivateKey):
        out: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        out = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    out.update({"use": "sig", "kid": kid})
    if valid:
        der = certificate(key, *valid)
        out["x5c"] = [base64.b64encode(der).decode()]
        out["x5t"] = x5t or base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")
    elif x5t:
        out["x5t"] = x5t
    if issuer:
        out["issuer"] = issuer
    if compromised:
        out["compromised"] = True
    return out


def write_jwks(path: Path, *keys: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"keys": list(keys)}), encoding="utf-8")
    return path


def claims(tid: str = TENANT, ver: str = "2.0", issued: datetime = ISSUED, **over: Any) -> dict[str, Any]:
    """Claims of an ordinary delegated Exchange Online access token."""
    iat = int(issued.timestamp())
    base: dict[str, Any] = {
        "aud": "00000002-0000-0ff1-ce00-000000000000",
        "iss": f"https://login.microsoftonline.com/{tid}/v2.0" if ver == "2.0" else f"https://sts.windows.net/{tid}/",
        "iat": iat, "nbf": iat, "exp": iat + 3900, "tid": tid, "ver": ver,
        "oid": "0b5c5a3e-1111-4c9b-9c61-8a4c4c1e2f00", "scp": "Mail.Read",
        "sid": "00d1c2f3-aaaa-bbbb-cccc-0123456789ab", "uti": "AbCdEfGhIjKlMnOpQrStUv",
        "upn": "Adele.Vance@contoso.com", "ipaddr": "203.0.113.7",
    }
    base["azp" if ver == "2.0" else "appid"] = "D3590ED6-52B3-4102-AEFF-AAD2292AB01C"
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any, kid: str | None = "test-kid", alg: str = "RS256",
         **headers: Any) -> str:
    """A token signed by ``key`` with ``kid`` (or other header fields) in its header."""
    head = {k: v for k, v in {"kid": kid, **headers}.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers=head)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    """A token with alg none and an empty signature."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."


def hmac_signed(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token (built by hand: PyJWT rightly refuses a PEM public key as HMAC secret)."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(payload).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def graph_token(payload: dict[str, Any], key: rsa.RSAPrivateKey, kid: str, nonce: str = "abc123nonce") -> str:
    """A token signed the way Microsoft signs Graph tokens: over a header holding SHA-256(nonce)."""
    hashed = hashlib.sha256(nonce.encode()).hexdigest()
    header_signed = json.dumps({"typ": "JWT", "nonce": hashed, "alg": "RS256", "kid": kid}, separators=(",", ":"))
    body = b64(json.dumps(payload).encode())
    signing_input = f"{b64(header_signed.encode())}.{body}".encode()
    sig = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input, key)
    header_sent = header_signed.replace(hashed, nonce)
    return f"{b64(header_sent.encode())}.{body}.{b64(sig)}"


def years(a: int, b: int) -> tuple[datetime, datetime]:
    return datetime(a, 4, 5, tzinfo=UTC), datetime(b, 4, 4, tzinfo=UTC)


LONG_AGO = (ISSUED - timedelta(days=400), ISSUED + timedelta(days=1500))
