"""The signing-key catalogue: which keys exist, whose they are, and which are compromised.

Built from the reference data shipped in ``data/reference/`` (see data/SOURCES.md):

* ``entra_common_signing_keys.json`` - keys Microsoft published at
  ``login.microsoftonline.com/common/discovery/v2.0/keys`` in 2024;
* ``storm0558_msa_key.jwks.json`` - the 2016 Microsoft-account key of the Storm-0558
  intrusion, marked compromised; its validity comes from its certificate.

plus any JWKS file the responder gives (a tenant's own keys, an application's custom
signing keys) and, when asked, the public discovery endpoints fetched live.

A key's *kind* comes from its ``issuer`` field, as in Microsoft's own key lists:
the consumer tenant id -> ``consumer``; a ``{tenantid}`` template or any other tenant
-> ``enterprise``; no issuer -> ``custom``. A JWKS key may carry the ir_toolkit
extension ``"compromised": true``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from ir_toolkit.errors import InputFormatError, UserError
from ir_toolkit.paths import reference_file

log = logging.getLogger(__name__)

CONSUMER_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
"""The Microsoft-account (personal, MSA) tenant: ``consumers`` is a nickname for it."""
STORM0558_THUMBPRINT = "d4b4cccda9228624656bff33d8110955779632aa"
"""SHA-1 thumbprint of the 2016 MSA key's certificate, as Microsoft published it (July 2023)."""

KINDS: dict[str, str] = {
    "enterprise": "An Entra ID (work or school) signing key: issuer is a {tenantid} template or a tenant id.",
    "consumer": "A Microsoft-account (MSA, personal) signing key: issuer is the consumer tenant.",
    "custom": "A key whose list names no issuer (an application's or a service's own key).",
}

REFERENCE_FILES: dict[str, dict[str, Any]] = {
    "entra-common-2024": {"file": "entra_common_signing_keys.json", "compromised": False},
    "storm-0558-msa-2016": {"file": "storm0558_msa_key.jwks.json", "compromised": True},
}
"""Shipped key lists, NAME -> file and whether every key in it is known compromised."""

DISCOVERY_URLS: tuple[str, ...] = ("https://login.microsoftonline.com/common/discovery/v2.0/keys",)
"""Public endpoints ``--online`` refreshes from (every key there carries its issuer)."""

_DER = Encoding.DER
_SPKI = PublicFormat.SubjectPublicKeyInfo
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def kind_from_issuer(issuer: str | None) -> str:
    """``consumer``, ``enterprise`` or ``custom`` from a JWKS key's ``issuer`` field."""
    if not issuer:
        return "custom"
    if CONSUMER_TENANT_ID in issuer.lower():
        return "consumer"
    return "enterprise"


def issuer_tenant(issuer: str | None) -> str | None:
    """The tenant GUID an issuer names, lower case; ``{tenantid}`` templates and others -> None."""
    m = _GUID.search(issuer or "")
    return m.group(0).lower() if m else None


@dataclass(frozen=True)
class SigningKey:
    """One public signing key with what the toolkit knows about it.

    Attributes:
        kid: Key id (``kid``) as listed.
        x5t: Certificate thumbprint id (``x5t``) as listed, else computed from the certificate.
        kty: RSA or EC.
        issuer: The list's ``issuer`` field (None when absent).
        kind: enterprise, consumer or custom (see :data:`KINDS`).
        compromised: True for keys known to have been stolen.
        not_before / not_after: Certificate validity (tz-aware UTC), None without a certificate.
        thumbprint: SHA-1 of the certificate (hex), None without one.
        sources: Where the key was listed (reference list name, JWKS file, URL).
        public_key: The key object (cryptography) used to verify signatures.
        fingerprint: SHA-256 of the public key (DER), to tell different keys under one kid apart.
    """

    kid: str | None
    x5t: str | None
    kty: str
    issuer: str | None
    kind: str
    compromised: bool
    not_before: datetime | None
    not_after: datetime | None
    thumbprint: str | None
    sources: tuple[str, ...]
    public_key: Any = field(repr=False, compare=False)
    fingerprint: str = ""

    def describe(self) -> dict[str, Any]:
        """The ``key`` object of ``token inspect --json``."""
        return {
            "kid": self.kid, "x5t": self.x5t, "issuer": self.issuer, "kind": self.kind,
            "compromised": self.compromised,
            "not_before": self.not_before.isoformat().replace("+00:00", "Z") if self.not_before else None,
            "not_after": self.not_after.isoformat().replace("+00:00", "Z") if self.not_after else None,
            "thumbprint": self.thumbprint, "source": ", ".join(self.sources),
        }


def _certificate(jwk: dict[str, Any], where: str) -> x509.Certificate | None:
    chain = jwk.get("x5c")
    if not chain:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode(str(chain[0]), validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise InputFormatError(f"{where}: x5c certificate cannot be read ({exc})") from None


def _public_key(jwk: dict[str, Any], cert: x509.Certificate | None, where: str) -> Any:
    if jwk.get("kty") in ("RSA", "EC") and ("n" in jwk or "x" in jwk):
        material = {k: v for k, v in jwk.items() if k in ("kty", "n", "e", "crv", "x", "y")}
        try:
            return PyJWK(material, algorithm="RS256" if jwk["kty"] == "RSA" else None).key
        except (PyJWKError, ValueError, TypeError, KeyError) as exc:
            raise InputFormatError(f"{where}: not a usable public key ({exc})") from None
    if cert is not None:
        return cert.public_key()
    raise InputFormatError(f"{where}: key has neither n/e, x/y nor an x5c certificate")


def key_from_jwk(jwk: dict[str, Any], source: str, compromised: bool = False) -> SigningKey:
    """Build a :class:`SigningKey` from one JWK of a key list.

    Args:
        jwk: The JWK (kty, kid, x5t, n/e or crv/x/y, x5c, issuer, optional ``compromised``).
        source: Where it came from (shown in verdicts).
        compromised: Mark it compromised regardless of the JWK's own field.

    Raises:
        InputFormatError: when the key or its certificate cannot be read.
    """
    where = f"{source}: key {jwk.get('kid') or jwk.get('x5t') or '?'}"
    if not isinstance(jwk, dict):
        raise InputFormatError(f"{source}: a key of 'keys' is not a JSON object")
    cert = _certificate(jwk, where)
    public_key = _public_key(jwk, cert, where)
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise InputFormatError(f"{where}: only RSA and EC public keys can verify Entra tokens")
    thumb = hashlib.sha1(cert.public_bytes(_DER)).hexdigest() if cert is not None else None
    x5t = jwk.get("x5t") or (base64.urlsafe_b64encode(bytes.fromhex(thumb)).decode().rstrip("=") if thumb else None)
    spki = public_key.public_bytes(_DER, _SPKI)
    issuer = jwk.get("issuer") if isinstance(jwk.get("issuer"), str) else None
    return SigningKey(
        kid=str(jwk["kid"]) if jwk.get("kid") is not None else None,
        x5t=str(x5t) if x5t else None,
        kty="RSA" if isinstance(public_key, rsa.RSAPublicKey) else "EC",
        issuer=issuer,
        kind=kind_from_issuer(issuer),
        compromised=compromised or jwk.get("compromised") is True,
        not_before=cert.not_valid_before_utc if cert is not None else None,
        not_after=cert.not_valid_after_utc if cert is not None else None,
        thumbprint=thumb,
        sources=(source,),
        public_key=public_key,
        fingerprint=hashlib.sha256(spki).hexdigest(),
    )


def parse_jwks(document: Any, source: str, compromised: bool = False) -> list[SigningKey]:
    """Every key of a JWKS document (``{"keys": [...]}``; a bare key list is accepted too)."""
    keys = document.get("keys") if isinstance(document, dict) else document
    if not isinstance(keys, list):
        raise InputFormatError(f"{source}: not a JWKS document (expected an object with a 'keys' list)")
    return [key_from_jwk(k, source, compromised) for k in keys if not (isinstance(k, dict) and k.get("use") == "enc")]


def read_jwks_file(path: str | Path, compromised: bool = False) -> list[SigningKey]:
    """Read a JWKS file.

    Raises:
        InputFormatError: when the file is missing, not JSON, or holds no usable key.
    """
    p = Path(path)
    try:
        document = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFormatError(f"{p}: JWKS file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFormatError(f"{p}: not a readable JSON key set ({exc.__class__.__name__})") from None
    return parse_jwks(document, str(p), compromised)


def fetch_jwks(url: str, timeout: float = 10.0) -> list[SigningKey]:
    """Fetch a public key list (a discovery ``keys`` endpoint) over HTTP(S).

    Raises:
        UserError: when the endpoint cannot be reached or does not answer a key set.
    """
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise UserError(f"{url}: could not fetch signing keys ({exc.__class__.__name__}: {exc})") from None
    if response.status_code != 200:
        raise UserError(f"{url}: could not fetch signing keys (HTTP {response.status_code})")
    try:
        document = response.json()
    except ValueError:
        raise UserError(f"{url}: could not fetch signing keys (the answer is not JSON)") from None
    return parse_jwks(document, f"online:{url}")


class KeyCatalogue:
    """Signing keys, looked up by ``kid`` / ``x5t``.

    The same key listed by several sources is kept once (its sources merged, compromised
    if any source says so); different keys under the same kid are all kept: verification
    tries each and reports the collision.
    """

    def __init__(self, keys: Iterable[SigningKey] = ()) -> None:
        self.keys: list[SigningKey] = []
        self.add(keys)

    def add(self, keys: Iterable[SigningKey]) -> None:
        """Add keys, merging exact duplicates (same kid and same public key)."""
        for k in keys:
            for i, old in enumerate(self.keys):
                if old.fingerprint == k.fingerprint and old.kid == k.kid:
                    self.keys[i] = replace(
                        old, sources=old.sources + tuple(s for s in k.sources if s not in old.sources),
                        compromised=old.compromised or k.compromised,
                        issuer=old.issuer or k.issuer, kind=old.kind if old.issuer else k.kind,
                        not_before=old.not_before or k.not_before, not_after=old.not_after or k.not_after,
                        thumbprint=old.thumbprint or k.thumbprint)
                    break
            else:
                self.keys.append(k)

    def candidates(self, kid: str | None, x5t: str | None) -> list[SigningKey]:
        """Keys whose kid or x5t equals the token header's kid or x5t."""
        names = {n for n in (kid, x5t) if n}
        return [k for k in self.keys if names & {k.kid, k.x5t}]

    def __len__(self) -> int:
        return len(self.keys)

    def describe(self) -> list[dict[str, Any]]:
        """Every key as the ``key`` object of a verdict (for listing the catalogue)."""
        return [k.describe() for k in self.keys]


def reference_keys() -> list[SigningKey]:
    """The keys of the shipped reference lists (:data:`REFERENCE_FILES`)."""
    out: list[SigningKey] = []
    for name, spec in REFERENCE_FILES.items():
        path = reference_file(spec["file"])
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputFormatError(f"{path}: shipped key list unreadable ({exc.__class__.__name__})") from None
        out += parse_jwks(document, name, compromised=spec["compromised"])
    return out


def build_catalogue(jwks_files: Sequence[str | Path] = (), online: bool = False,
                    discovery_urls: Sequence[str] = DISCOVERY_URLS, reference: bool = True) -> KeyCatalogue:
    """The catalogue a verdict is judged against.

    Args:
        jwks_files: Extra JWKS files (a tenant's or an application's keys).
        online: Also fetch ``discovery_urls`` (off by default: nothing leaves the machine).
        discovery_urls: Endpoints to fetch when ``online``.
        reference: Include the shipped reference lists.
    """
    cat = KeyCatalogue(reference_keys() if reference else ())
    for f in jwks_files:
        cat.add(read_jwks_file(f))
    if online:
        for url in discovery_urls:
            fetched = fetch_jwks(url)
            log.info("fetched %d signing keys from %s", len(fetched), url)
            cat.add(fetched)
    return cat
