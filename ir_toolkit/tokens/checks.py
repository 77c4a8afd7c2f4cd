"""The named checks a token verdict is made of (:data:`CHECKS`, NAME -> Check).

Each check looks at the token, the catalogue keys its header names and the key that
verified the signature, and says what it found as (verdict, sentence) pairs; a pair
with verdict ``valid`` is a note that changes nothing. Adding a rule is adding one
function with the ``@check(NAME, DESCRIPTION)`` decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ir_toolkit.tokens.jwt import DecodedToken
from ir_toolkit.tokens.keys import CONSUMER_TENANT_ID, REFERENCE_FILES, SigningKey, issuer_tenant
from ir_toolkit.tokens.signature import algorithm_problem

GRAPH_AUDIENCES = {"00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com",
                   "https://graph.microsoft.com/", "https://graph.microsoft.us", "https://microsoftgraph.chinacloudapi.cn"}
V2_HOSTS = {"login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn",
            "login.chinacloudapi.cn"}
V1_HOSTS = {"sts.windows.net", "sts.chinacloudapi.cn", "login.microsoftonline.us"}
MAX_LIFETIME = timedelta(hours=28)
"""Longest access-token lifetime Entra issues (continuous-access-evaluation tokens: 24-28 h)."""

Finding = tuple[str, str]


@dataclass
class Context:
    """What every check sees.

    Attributes:
        token: The decoded token.
        candidates: Catalogue keys whose kid/x5t the header names.
        key: The candidate that verified the signature (None if none did).
        how: ``direct`` or ``graph-nonce`` when verified.
        now: The time of the analysis (for "issued in the future").
    """

    token: DecodedToken
    candidates: list[SigningKey]
    key: SigningKey | None
    how: str | None
    now: datetime

    @property
    def claims(self) -> dict[str, Any]:
        return self.token.claims

    def time(self, claim: str) -> datetime | None:
        v = self.claims.get(claim)
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        try:
            return datetime.fromtimestamp(v, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None

    def issued(self) -> datetime | None:
        """When the token says it was issued: ``iat``, else ``nbf``."""
        return self.time("iat") or self.time("nbf")

    def tenants(self) -> set[str]:
        """Tenant ids the token names (``tid`` and the issuer's tenant), lower case."""
        out = {issuer_tenant(str(self.claims.get("iss") or ""))}
        tid = self.claims.get("tid")
        if isinstance(tid, str) and tid:
            out.add(tid.lower())
        return {t for t in out if t}

    def entra(self) -> bool:
        """Does the token claim to come from Entra / MSA (so Entra's rules apply)?"""
        return (self.key is not None and self.key.kind != "custom") or _issuer_host(self.claims.get("iss")) in (
            V1_HOSTS | V2_HOSTS)


@dataclass(frozen=True)
class Check:
    """One named rule. ``run`` returns (verdict, sentence) pairs (empty: nothing found)."""

    NAME: str
    DESCRIPTION: str
    run: Callable[[Context], list[Finding]]


CHECKS: dict[str, Check] = {}


def check(name: str, description: str) -> Callable[[Callable[[Context], list[Finding]]], Callable[..., list[Finding]]]:
    """Register a function as the check ``name``."""
    def register(fn: Callable[[Context], list[Finding]]) -> Callable[[Context], list[Finding]]:
        CHECKS[name] = Check(name, description, fn)
        return fn
    return register


def _issuer_host(iss: Any) -> str:
    try:
        return (urlsplit(iss).hostname or "") if isinstance(iss, str) else ""
    except ValueError:  # e.g. an unbalanced [ in an attacker-written iss
        return ""


def _day(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t else "?"


def key_name(k: SigningKey) -> str:
    return f"{k.kind} key {k.kid or k.x5t} ({', '.join(k.sources)})"


# ----- signature -------------------------------------------------------------------------------
@check("algorithm", "The header's alg must be an asymmetric algorithm Entra uses (no none, no HMAC).")
def _algorithm(c: Context) -> list[Finding]:
    problem = algorithm_problem(c.token.alg)
    return [("invalid_signature", problem)] if problem else []


@check("known-key", "The header's kid/x5t must name a key of the catalogue or a given JWKS file.")
def _known_key(c: Context) -> list[Finding]:
    if c.candidates or algorithm_problem(c.token.alg):
        return []
    names = " / ".join(f"{n} {v}" for n, v in (("kid", c.token.kid), ("x5t", c.token.x5t)) if v) or "no kid or x5t"
    return [("unknown_key", f"the header names {names}, which no key of the catalogue or given JWKS files has; "
                            "the signature cannot be checked (add the issuer's keys with --jwks, or --online)")]


@check("signature", "The signature must verify with the key the header names.")
def _signature(c: Context) -> list[Finding]:
    if c.key is not None or not c.candidates or algorithm_problem(c.token.alg):
        return []
    if "nonce" in c.token.header:
        return [("unverifiable", "the header carries a nonce (a Microsoft Graph token): Microsoft signs these over a "
                                 "hashed nonce and third parties cannot validate them; the signature was not checked "
                                 "successfully either way")]
    names = "; ".join(key_name(k) for k in c.candidates)
    sentence = (f"the header names {names}, but the signature does not verify with it: the kid was copied "
                "(spoofed) or the token was altered after signing")
    rsa_sizes = {k.public_key.key_size // 8 for k in c.candidates if k.kty == "RSA"}
    if rsa_sizes and len(c.token.signature) not in rsa_sizes:
        sentence += (f"; the signature is {len(c.token.signature)} bytes where the key's are "
                     f"{'/'.join(map(str, sorted(rsa_sizes)))}: the token may have been cut short where it was logged")
    if any(k.compromised for k in c.candidates):
        sentence += ("; note that the compromised key's kid also appears in documentation samples and library "
                     "test files whose signatures are not valid, so this is not proof of forgery with that key")
    return [("invalid_signature", sentence)]


@check("kid-collision", "Several different keys under the token's kid: which one signed it matters.")
def _kid_collision(c: Context) -> list[Finding]:
    distinct = {k.fingerprint for k in c.candidates}
    if len(distinct) < 2:
        return []
    names = "; ".join(key_name(k) for k in c.candidates)
    if c.key is None:
        return [("valid", f"the kid names {len(distinct)} different keys ({names}); none verifies the signature")]
    microsoft = [k for k in c.candidates if k.fingerprint != c.key.fingerprint and _microsoft_listed(k)]
    sentence = (f"the kid names {len(distinct)} different keys ({names}); the signature verifies with the one from "
                f"{', '.join(c.key.sources)}")
    if microsoft and not _microsoft_listed(c.key):
        return [("suspicious", sentence + ", not with Microsoft's key of that kid: a key made to pass for Microsoft's")]
    return [("valid", sentence)]


def _microsoft_listed(k: SigningKey) -> bool:
    return any(s in REFERENCE_FILES or s.startswith("online:") for s in k.sources)


# ----- key against claims (forgery) ------------------------------------------------------------
@check("key-kind", "A consumer (MSA) key must not sign for an enterprise tenant, nor the reverse.")
def _key_kind(c: Context) -> list[Finding]:
    if c.key is None:
        return []
    tenants = c.tenants()
    enterprise = sorted(t for t in tenants if t != CONSUMER_TENANT_ID)
    if c.key.kind == "consumer" and enterprise:
        return [("forged", f"signed by the {key_name(c.key)}, a Microsoft-account (consumer) key, yet its tid/iss "
                           f"name the enterprise tenant {', '.join(enterprise)}: Entra never issues that "
                           "(the Storm-0558 technique)")]
    if c.key.kind == "enterprise" and CONSUMER_TENANT_ID in tenants:
        return [("forged", f"signed by the {key_name(c.key)}, an enterprise key, yet its tid/iss name the "
                           "Microsoft-account (consumer) tenant")]
    owner = issuer_tenant(c.key.issuer)
    if c.key.kind == "enterprise" and owner and enterprise and any(t != owner for t in enterprise):
        return [("forged", f"signed by the {key_name(c.key)}, which belongs to tenant {owner}, yet its tid/iss "
                           f"name {', '.join(enterprise)}")]
    return []


def _outside_validity(k: SigningKey, when: datetime) -> str | None:
    """``after`` when the key's certificate had expired at ``when``, ``before`` when it did not exist yet."""
    if k.not_after and when > k.not_after:
        return "after"
    if k.not_before and when < k.not_before:
        return "before"
    return None


@check("key-validity", "The signing key's certificate must be valid when the token was issued (iat).")
def _key_validity(c: Context) -> list[Finding]:
    iat = c.issued()
    side = _outside_validity(c.key, iat) if c.key is not None and iat is not None else None
    if side == "after":
        return [("forged", f"issued {_day(iat)}, after the signing key's certificate expired "
                           f"({_day(c.key.not_after if c.key else None)}): Entra does not sign with expired keys")]
    if side == "before":
        return [("forged", f"issued {_day(iat)}, before the signing key's certificate existed "
                           f"({_day(c.key.not_before if c.key else None)})")]
    return []


@check("compromised-key", "A key known to be stolen proves nothing genuine; outside its validity it proves forgery.")
def _compromised(c: Context) -> list[Finding]:
    k, iat = c.key, c.issued()
    if k is None or not k.compromised:
        return []
    window = f"valid {_day(k.not_before)} to {_day(k.not_after)}"
    if iat is not None and _outside_validity(k, iat):
        return [("forged", f"signed by the {key_name(k)}, which is known to be compromised ({window}), at "
                           f"{_day(iat)}, a time it was not valid")]
    return [("suspicious", f"signed by the {key_name(k)}, which is known to be compromised ({window}): a token "
                           "it signed cannot be told apart from a forgery by the signature")]


# ----- claims (suspicious) ---------------------------------------------------------------------
@check("issuer-format", "iss must have the form Entra uses for the token's version (ver).")
def _issuer_format(c: Context) -> list[Finding]:
    if not c.entra():
        return []
    iss, ver, tid = c.claims.get("iss"), c.claims.get("ver"), str(c.claims.get("tid") or "{tid}")
    host = _issuer_host(iss)
    if not isinstance(iss, str) or not iss:
        return [("suspicious", "no iss claim: Entra always names the issuer")]
    if ver == "2.0" and not (host in V2_HOSTS and iss.rstrip("/").endswith("/v2.0")):
        return [("suspicious", f"ver 2.0 but iss {iss!r} is not of the v2 form https://login.microsoftonline.com/"
                               f"{tid}/v2.0")]
    if ver == "1.0" and not (host in V1_HOSTS and iss.endswith("/") and "/v2.0" not in iss):
        return [("suspicious", f"ver 1.0 but iss {iss!r} is not of the v1 form https://sts.windows.net/{tid}/")]
    if ver not in ("1.0", "2.0"):
        return [("suspicious", f"ver is {ver!r}: Entra access tokens say 1.0 or 2.0")]
    return []


@check("issuer-tenant", "The tenant in iss must be the tid claim.")
def _issuer_tenant(c: Context) -> list[Finding]:
    in_iss = issuer_tenant(str(c.claims.get("iss") or ""))
    tid = c.claims.get("tid")
    if c.entra() and in_iss and isinstance(tid, str) and tid and in_iss != tid.lower():
        return [("suspicious", f"iss names tenant {in_iss} but tid is {tid}")]
    return []


@check("audience", "An access token must name its audience (aud).")
def _audience(c: Context) -> list[Finding]:
    aud = c.claims.get("aud")
    if not aud or not isinstance(aud, str | list):
        return [("suspicious", "no usable aud claim: every Entra access token names the resource it is for")]
    if c.key is not None and isinstance(aud, str) and aud.lower() in GRAPH_AUDIENCES and c.how == "direct":
        return [("suspicious", "a Microsoft Graph token whose signature verifies without Graph's nonce scheme: "
                               "Entra signs Graph tokens over a hashed nonce")]
    return []


@check("lifetime", f"iat <= nbf < exp, a lifetime of at most {MAX_LIFETIME}, not issued in the future.")
def _lifetime(c: Context) -> list[Finding]:
    iat, nbf, exp = c.time("iat"), c.time("nbf"), c.time("exp")
    out: list[Finding] = []
    if c.entra() and (iat is None or exp is None):
        out.append(("suspicious", "no iat or exp claim: Entra always sets both"))
    if iat and exp:
        if exp <= iat:
            out.append(("suspicious", f"expires ({_day(exp)}) before or when it was issued ({_day(iat)})"))
        elif exp - iat > MAX_LIFETIME:
            out.append(("suspicious", f"lifetime of {exp - iat} is longer than Entra issues ({MAX_LIFETIME})"))
    if nbf and exp and nbf >= exp:
        out.append(("suspicious", f"not valid before {_day(nbf)} but expires {_day(exp)}"))
    if iat and iat > c.now + timedelta(minutes=10):
        out.append(("suspicious", f"issued in the future ({_day(iat)})"))
    return out


@check("entra-claims", "uti, tid, the client id (appid/azp) and, for user tokens, sid are always set by Entra.")
def _entra_claims(c: Context) -> list[Finding]:
    if not c.entra():
        return []
    cl = c.claims
    missing = [n for n in ("uti", "tid") if not cl.get(n)]
    client = "azp" if cl.get("ver") == "2.0" else "appid"
    if not cl.get(client):
        missing.append(client)
    if cl.get("scp") and not cl.get("sid"):
        missing.append("sid (a delegated token: it has scp)")
    if not missing:
        return []
    return [("suspicious", f"missing {', '.join(missing)}: Entra sets {'it' if len(missing) == 1 else 'them'} "
                           "on every such token")]
