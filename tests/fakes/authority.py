"""A fake Entra STS over HTTPS on loopback, so real MSAL flows run against it.

Serves ``/{tenant}/v2.0/.well-known/openid-configuration``, ``/{tenant}/oauth2/v2.0/devicecode`` and
``/{tenant}/oauth2/v2.0/token`` (device_code, client_credentials with a secret or a certificate
assertion, refresh_token). Responses carry ``client_info`` so MSAL creates accounts. The TLS
certificate is self-signed and made on the spot (:func:`make_tls_cert`); point MSAL/httpx at
``ca_file``. Issued access tokens are random strings kept in ``issued`` (FakeGraph checks them).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakes.loopback import LoopbackServer


def make_tls_cert(folder: Path, name: str = "localhost", *also: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (and the host names ``also``) and 127.0.0.1: (cert.pem, key.pem)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name), *map(x509.DNSName, also),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "tls-cert.pem", folder / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate from :func:`make_tls_cert`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def make_client_cert(folder: Path) -> tuple[Path, Path, str]:
    """An app credential certificate: returns (combined key+cert PEM, PFX, public cert PEM text)."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ir-toolkit-collector")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    pem = folder / "app-cred.pem"
    pem.write_text(key_pem + cert_pem)
    pfx = folder / "app-cred.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"app", key, cert, None, serialization.NoEncryption()))
    return pem, pfx, cert_pem


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeAuthority(LoopbackServer):
    """The STS. ``authority(tenant)`` gives the URL to pass as ``--authority-url``.

    Args:
        folder: Where the TLS certificate is written.
        client_id: The only client id accepted.
        secret: The client secret accepted for client_credentials (None: secrets refused).
        client_cert_pem: Public certificate whose key must sign client assertions (None: refused).
        pending_polls: Device-code polls answered ``authorization_pending`` before approval.
        expires_in: Lifetime reported for access tokens.
        public_client: False answers the device-code grant as Entra does for an app that does not allow
            public client flows (AADSTS7000218).
    """

    def __init__(self, folder: Path | None = None, client_id: str = "11111111-2222-3333-4444-555555555555",
                 secret: str | None = None, client_cert_pem: str | None = None, pending_polls: int = 1,
                 expires_in: int = 3599, public_client: bool = True) -> None:
        self.folder = Path(folder or tempfile.mkdtemp())
        self.ca_file, self._key_file = make_tls_cert(self.folder)
        self.client_id, self.secret, self.pending_polls, self.expires_in = client_id, secret, pending_polls, expires_in
        self.public_client = public_client
        self.client_key = x509.load_pem_x509_certificate(client_cert_pem.encode()).public_key() \
            if client_cert_pem else None
        self.issued: set[str] = set()
        self.scopes: dict[str, str] = {}
        self.grants: list[str] = []
        self.device_polls = 0
        self.lock = threading.Lock()

    def tls_context(self) -> ssl.SSLContext:
        """TLS with the self-signed certificate of ``ca_file``."""
        return server_context(self.ca_file, self._key_file)

    @property
    def base(self) -> str:
        """``https://localhost:PORT``."""
        return f"https://localhost:{self.port}"

    def authority(self, tenant: str = "contoso-tenant") -> str:
        """The authority URL for ``tenant``."""
        return f"{self.base}/{tenant}"

    def token_ok(self, token: str) -> bool:
        """True when ``token`` is an access token this STS issued (for FakeGraph)."""
        with self.lock:
            return token in self.issued

    def scope_of(self, token: str) -> str:
        """The scope an issued access token was asked for ("" when unknown): fakes check the audience with it."""
        with self.lock:
            return self.scopes.get(token, "")

    def new_access_token(self, scope: str = "") -> str:
        token = "at." + secrets.token_urlsafe(24)
        with self.lock:
            self.issued.add(token)
            self.scopes[token] = scope
        return token


class _StsHandler(BaseHTTPRequestHandler):
    fake: FakeAuthority

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) >= 2 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            base = f"{self.fake.base}/{parts[0]}"
            return self._json(200, {
                "issuer": f"{base}/v2.0", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"]})
        self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        sts = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        parts = urlsplit(self.path).path.strip("/").split("/")
        tenant = parts[0]
        if form.get("client_id") != sts.client_id:
            return self._json(400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown app"})
        if parts[1:] == ["oauth2", "v2.0", "devicecode"]:
            return self._json(200, {"device_code": "dc-" + secrets.token_hex(8), "user_code": "FAKE-CODE",
                                    "verification_uri": f"{sts.base}/devicelogin", "expires_in": 900, "interval": 0,
                                    "message": f"To sign in, open {sts.base}/devicelogin and enter FAKE-CODE"})
        if parts[1:] != ["oauth2", "v2.0", "token"]:
            return self._json(404, {"error": "not_found"})
        grant = form.get("grant_type", "")
        with sts.lock:
            sts.grants.append(grant)
        if grant == "client_credentials":
            if not self._client_ok(form, tenant):
                return self._json(401, {"error": "invalid_client",
                                        "error_description": "AADSTS7000215: Invalid client secret provided."})
            return self._json(200, {"token_type": "Bearer", "expires_in": sts.expires_in,
                                    "access_token": sts.new_access_token(form.get("scope", ""))})
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            if not sts.public_client:
                return self._json(401, {"error": "invalid_client", "error_description": "AADSTS7000218: The request "
                                        "body must contain the following parameter: 'client_assertion' or "
                                        "'client_secret'.\r\nTrace ID: 0\r\nCorrelation ID: 0"})
            with sts.lock:
                sts.device_polls += 1
                pending = sts.device_polls <= sts.pending_polls
            if pending:
                return self._json(400, {"error": "authorization_pending", "error_description": "pending"})
            return self._json(200, self._user_tokens(tenant, form.get("scope", "")))
        if grant == "refresh_token" and form.get("refresh_token", "").startswith("rt."):
            return self._json(200, self._user_tokens(tenant, form.get("scope", "")))
        return self._json(400, {"error": "invalid_grant", "error_description": f"unsupported grant {grant}"})

    def _client_ok(self, form: dict[str, str], tenant: str) -> bool:
        sts = self.fake
        if "client_secret" in form:
            return sts.secret is not None and secrets.compare_digest(form["client_secret"], sts.secret)
        assertion = form.get("client_assertion")
        if assertion and sts.client_key is not None:
            try:
                claims = jwt.decode(assertion, sts.client_key, algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                                    audience=f"{sts.base}/{tenant}/oauth2/v2.0/token")
            except jwt.PyJWTError:
                return False
            return bool(claims.get("iss") == sts.client_id == claims.get("sub"))
        return False

    def _user_tokens(self, tenant: str, scope: str) -> dict[str, Any]:
        sts = self.fake
        now = int(time.time())
        id_claims = {"iss": f"{sts.base}/{tenant}/v2.0", "sub": "responder-sub", "aud": sts.client_id,
                     "exp": now + 3600, "iat": now, "oid": "0000-responder", "tid": tenant,
                     "preferred_username": "responder@contoso.com"}
        return {"token_type": "Bearer", "expires_in": sts.expires_in, "access_token": sts.new_access_token(scope),
                "refresh_token": "rt." + secrets.token_urlsafe(16), "scope": "https://graph.microsoft.com/.default",
                "id_token": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(id_claims)}.sig",
                "client_info": _b64({"uid": "0000-responder", "utid": tenant})}


FakeAuthority.handler = _StsHandler
