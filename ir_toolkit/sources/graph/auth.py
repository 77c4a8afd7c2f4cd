"""Sign in to Entra ID with MSAL: device code, certificate (PEM or PFX), or a client secret from an env var.

Secrets never travel on the command line and are never written: the client secret is read from
the environment variable the responder names; the token cache is encrypted with msal-extensions
(DPAPI, Keychain, libsecret) or kept in memory only. Nothing here writes a plaintext cache.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msal
import requests
import requests.adapters

from ir_toolkit.errors import UserError
from ir_toolkit.sources.graph.endpoints import Endpoints, ca_bundle
from ir_toolkit.textsafe import remember_secret

log = logging.getLogger(__name__)

MODES = ("device_code", "certificate", "client_secret")
# What to do about the sign-in errors responders meet first (docs/quickstart.md, troubleshooting).
AADSTS_HINTS: dict[str, str] = {
    "AADSTS7000218": "allow public client flows on the app registration for --device-code (Authentication > "
                     "Allow public client flows), or sign in app-only",
    "AADSTS700016": "no such app in this tenant: check --client-id, --tenant and --cloud",
    "AADSTS65001": "permissions not consented: grant admin consent (az ad app permission admin-consent --id APP_ID)",
    "AADSTS7000215": "wrong or expired client secret",
    "AADSTS700027": "the certificate is not registered on the app (az ad app credential reset --cert @cert.pem "
                    "--append)",
}
DESCRIPTION = "MSAL sign-in: device code, certificate (PEM/PFX), client secret from an env var; AADSTS hints"


def sign_in_failure(authority: str, result: dict[str, Any]) -> str:
    """One line for a failed MSAL result: the error, the first line of its description, and what to do."""
    error = str(result.get("error") or "error")
    first = (str(result.get("error_description") or "").strip().splitlines() or [""])[0][:300]
    hint = next((h for code, h in AADSTS_HINTS.items() if f"{code}:" in first or first.startswith(code)), None)
    return f"sign-in to {authority} failed: {error}: {first}" + (f" (fix: {hint})" if hint else "")


def _default_cache_location() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ir_toolkit" / "msal_token_cache.bin"


def build_token_cache(location: Path | None = None, persist: bool = True) -> tuple[msal.TokenCache, str]:
    """An MSAL token cache: encrypted on disk when the platform allows, else memory only.

    Returns:
        ``(cache, kind)`` where kind is ``encrypted:<class>`` or ``memory``.
    """
    if persist:
        try:
            from msal_extensions import PersistedTokenCache, build_encrypted_persistence

            path = location or _default_cache_location()
            path.parent.mkdir(parents=True, exist_ok=True)
            persistence = build_encrypted_persistence(str(path))
            if not persistence.is_encrypted:  # pragma: no cover - defensive: never plaintext
                raise RuntimeError("persistence is not encrypted")
            persistence.load() if Path(str(path)).exists() else persistence.save("{}")
            return PersistedTokenCache(persistence), f"encrypted:{type(persistence).__name__}"
        except Exception as exc:  # noqa: BLE001 - no keyring on headless hosts: memory only
            log.info("token cache: encrypted persistence unavailable (%s); keeping tokens in memory only",
                     exc.__class__.__name__)
    return msal.SerializableTokenCache(), "memory"


def load_certificate(path: str | Path, passphrase_env: str | None = None) -> dict[str, Any]:
    """MSAL ``client_credential`` for a certificate: a PFX path or a PEM file with key and certificate.

    Raises:
        UserError: when the file is missing or holds no private key / certificate.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--certificate {p}: no such file")
    passphrase = os.environ.get(passphrase_env) if passphrase_env else None
    remember_secret(passphrase)
    if p.suffix.lower() in (".pfx", ".p12"):
        cred: dict[str, Any] = {"private_key_pfx_path": str(p), "public_certificate": True}
        if passphrase:
            cred["passphrase"] = passphrase
        return cred
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    text = p.read_text(encoding="utf-8", errors="replace")
    if "PRIVATE KEY-----" not in text or "BEGIN CERTIFICATE" not in text:
        raise UserError(f"--certificate {p}: a PEM file must hold both the private key and the certificate")
    cert_pem = text[text.index("-----BEGIN CERTIFICATE-----"):]
    cert_pem = cert_pem[: cert_pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise UserError(f"--certificate {p}: unreadable certificate ({exc})") from None
    cred = {"private_key": text, "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
            "public_certificate": cert_pem}
    if passphrase:
        cred["passphrase"] = passphrase
    return cred


class _Session(requests.Session):
    """A requests session whose ``verify`` is not overridden by REQUESTS_CA_BUNDLE (proxies still come from env)."""

    timeout: float = 60.0

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        settings: Any = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify
        return settings

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def _http_session(verify: bool | str) -> requests.Session:
    session = _Session()
    session.verify = verify
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class TokenProvider:
    """Access tokens for Microsoft Graph from one of the MSAL flows.

    Args:
        endpoints: Authority and scope (see :func:`ir_toolkit.sources.graph.endpoints.resolve`).
        client_id: The app registration's client id.
        mode: device_code, certificate or client_secret.
        certificate: PEM or PFX path (mode certificate).
        secret_env: Name of the environment variable holding the client secret (mode client_secret).
        cache_location: Where the encrypted cache lives (device code only; app-only tokens stay in memory).
        persist_cache: False keeps every token in memory only.
        prompt: Where the device code message goes (default: stderr).
        verify: TLS verification for the authority: True, False or a CA bundle path (default from env).
        scope: The resource's ``.default`` scope (default: Graph's; Log Analytics has its own).
    """

    def __init__(self, endpoints: Endpoints, client_id: str, mode: str, *, certificate: str | None = None,
                 secret_env: str | None = None, cache_location: Path | None = None, persist_cache: bool = True,
                 prompt: Callable[[str], None] | None = None, verify: bool | str | None = None,
                 cert_passphrase_env: str | None = None, scope: str | None = None) -> None:
        if mode not in MODES:
            raise UserError(f"unknown sign-in mode {mode!r}: choose one of {', '.join(MODES)}")
        self.endpoints = endpoints
        self.mode = mode
        self.scopes = [scope or endpoints.scope]
        self._prompt = prompt or (lambda text: (sys.stderr.write(text + "\n"), sys.stderr.flush()) and None)
        self._lock = threading.Lock()
        self._token: str | None = None
        tls = verify if verify is not None else (ca_bundle() or True)
        common: dict[str, Any] = {"authority": endpoints.authority, "http_client": _http_session(tls)}
        if endpoints.custom_authority:
            common["instance_discovery"] = False
        if mode == "device_code":
            self.cache, self.cache_kind = build_token_cache(cache_location, persist_cache)
        else:
            self.cache, self.cache_kind = msal.SerializableTokenCache(), "memory"
        common["token_cache"] = self.cache
        try:
            if mode == "device_code":
                self.app: msal.ClientApplication = msal.PublicClientApplication(client_id, **common)
            else:
                credential: Any
                if mode == "certificate":
                    if not certificate:
                        raise UserError("--certificate needs a PEM or PFX file")
                    credential = load_certificate(certificate, cert_passphrase_env)
                else:
                    if not secret_env:
                        raise UserError("--client-secret-env needs the NAME of an environment variable")
                    credential = os.environ.get(secret_env)
                    if not credential:
                        raise UserError(f"--client-secret-env {secret_env}: that environment variable is not set")
                    remember_secret(credential)  # scrubbed from any text that might echo it
                self.app = msal.ConfidentialClientApplication(client_id, client_credential=credential, **common)
        except ValueError as exc:
            raise UserError(f"sign-in setup failed for {endpoints.authority}: {exc}") from None
        except OSError as exc:
            raise UserError(f"cannot reach the authority {endpoints.authority}: {exc.__class__.__name__}") from None

    def token(self, force_refresh: bool = False) -> str:
        """A valid access token (from cache, by refresh, or by a new sign-in).

        Raises:
            UserError: when sign-in fails (wrong credentials, consent missing, flow expired).
        """
        with self._lock:
            if self._token and not force_refresh:
                return self._token
            self._token = self._fetch(self.scopes, force_refresh)
            return self._token

    def _fetch(self, scopes: list[str], force_refresh: bool) -> str:
        try:
            result = self._acquire(scopes, force_refresh)
        except (OSError, ValueError) as exc:
            raise UserError(f"sign-in to {self.endpoints.authority} failed: {exc.__class__.__name__}") from None
        if "access_token" not in result:
            raise UserError(sign_in_failure(self.endpoints.authority, result))
        token = str(result["access_token"])
        remember_secret(token)  # scrubbed from any text that might echo it
        return token

    def _acquire(self, scopes: list[str], force_refresh: bool) -> dict[str, Any]:
        if isinstance(self.app, msal.ConfidentialClientApplication):
            if force_refresh:
                self.app.remove_tokens_for_client()
            return dict(self.app.acquire_token_for_client(scopes=scopes) or {})
        assert isinstance(self.app, msal.PublicClientApplication)
        accounts = self.app.get_accounts()
        if accounts:
            silent = self.app.acquire_token_silent(scopes, account=accounts[0], force_refresh=force_refresh)
            if silent and "access_token" in silent:
                return dict(silent)
        flow = self.app.initiate_device_flow(scopes=scopes)
        if "user_code" not in flow:
            return dict(flow)
        self._prompt(str(flow.get("message") or f"Go to {flow.get('verification_uri')} and enter {flow['user_code']}"))
        return dict(self.app.acquire_token_by_device_flow(flow))


    def for_scope(self, scope: str) -> ScopedTokens:
        """Tokens for another resource from the same sign-in (one device-code prompt for Graph and Log Analytics)."""
        return ScopedTokens(self, scope)

    def acquire_for(self, scopes: list[str], force_refresh: bool = False) -> str:
        """An access token for ``scopes`` from this provider's app and cache.

        Raises:
            UserError: when sign-in fails.
        """
        with self._lock:
            return self._fetch(scopes, force_refresh)


class ScopedTokens:
    """A token source for one more resource, sharing a TokenProvider's app, cache and sign-in."""

    def __init__(self, provider: TokenProvider, scope: str) -> None:
        self.provider, self.scopes = provider, [scope]
        self._token: str | None = None

    def token(self, force_refresh: bool = False) -> str:
        """A valid access token for this resource."""
        if self._token and not force_refresh:
            return self._token
        self._token = self.provider.acquire_for(self.scopes, force_refresh)
        return self._token


class StaticToken:
    """A pre-issued bearer token (tests, benchmarks, tokens minted elsewhere); a refresh appends ``.N``."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.refreshes = 0

    def token(self, force_refresh: bool = False) -> str:
        """The token; a forced refresh counts and changes it."""
        if force_refresh:
            self.refreshes += 1
        return f"{self.value}.{self.refreshes}" if self.refreshes else self.value
