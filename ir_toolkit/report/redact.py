"""Consistent pseudonyms for sharing a report outside the organisation.

UPNs and other e-mail addresses, the tenant's own domains, people's display names and
internal addresses (private ranges plus the networks a case declares as its own) are
replaced by pseudonyms derived with a keyed HMAC: the same input gives the same
pseudonym throughout a case, so a reader can still follow "user-3f9a..." across tables
and figures, but cannot reverse it without the key. The key is random per case and
kept in ``CASE/.redaction-key`` (mode 0600); it never appears in a report.

External addresses (the actor's infrastructure) and application names stay readable:
they are what a recipient needs to act on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ir_toolkit.case import Case

KEY_FILE = ".redaction-key"

#: Internal ranges: RFC 1918, carrier-grade NAT, loopback, link-local, unique-local IPv6.
INTERNAL_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "fc00::/7", "fe80::/10", "::1/128",
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+'!#$&*/=?^`{|}~-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
# Fields of Microsoft records that carry a person's display name.
_NAME_FIELDS = ("userDisplayName", "UserDisplayName", "MailboxOwnerDisplayName", "DisplayName")
_NAME_SQL = "|".join(_NAME_FIELDS)
# First labels of domains that name a mail system, not an organisation.
_GENERIC_LABELS = {"mail", "email", "smtp", "corp", "exchange", "outlook", "office", "microsoft", "onmicrosoft",
                   "gmail", "hotmail", "live", "example", "redacted"}


def case_key(case: Case) -> bytes:
    """The case's redaction key, created (random, 32 bytes, mode 0600) on first use."""
    path = case.root / KEY_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            case.log_action("redaction.key.create", path=KEY_FILE)
    return bytes.fromhex(path.read_text().strip())


class Redactor:
    """Replace identities in text, frames and JSON-like objects with keyed pseudonyms.

    Args:
        key: The HMAC key (see :func:`case_key`).
        domains: The tenant's own DNS domains (replaced wherever they appear).
        names: People's display names (replaced wherever they appear, case-insensitively).
        networks: Extra internal networks (CIDR) beyond :data:`INTERNAL_NETWORKS`.
        addresses: Single addresses that are the tenant's own (its users' sign-in addresses).
    """

    def __init__(self, key: bytes, domains: Iterable[str] = (), names: Iterable[str] = (),
                 networks: Iterable[str] = (), addresses: Iterable[str] = ()) -> None:
        self._key = key
        self._addresses = {self._normal_ip(a) for a in addresses if a}
        self._networks = [ipaddress.ip_network(n, strict=False) for n in (*INTERNAL_NETWORKS, *networks)]
        self.domains = sorted({d.lower().strip(".") for d in domains if d and "." in d}, key=len, reverse=True)
        self.names = sorted({n.strip() for n in names if n and len(n.strip()) >= 3}, key=len, reverse=True)
        self._domain_re = self._alternation(self.domains, r"(?<![\w-])", r"(?![\w-])")
        # The organisation's name as its domains spell it (contoso in contoso.onmicrosoft.com).
        self.orgs = sorted({d.split(".")[0] for d in self.domains if len(d.split(".")[0]) >= 4}
                           - _GENERIC_LABELS, key=len, reverse=True)
        self._org_re = self._alternation(self.orgs, r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])")
        self._name_re = self._alternation(self.names, r"(?<!\w)", r"(?!\w)")

    @staticmethod
    def _alternation(words: list[str], before: str, after: str) -> re.Pattern[str] | None:
        if not words:
            return None
        return re.compile(before + "(?:" + "|".join(re.escape(w) for w in words) + ")" + after, re.IGNORECASE)

    # ----- pseudonyms ---------------------------------------------------------------------
    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\0{value.lower()}".encode(), hashlib.sha256).hexdigest()[:8]

    def address(self, value: str) -> str:
        """Pseudonym of an e-mail address or UPN."""
        return f"user-{self._digest('upn', value)}@redacted.invalid"

    def domain(self, value: str) -> str:
        """Pseudonym of one of the tenant's domains."""
        return f"domain-{self._digest('domain', value)}.invalid"

    def org(self, value: str) -> str:
        """Pseudonym of the organisation's name."""
        return f"org-{self._digest('org', value)}"

    def name(self, value: str) -> str:
        """Pseudonym of a display name."""
        return f"Person-{self._digest('name', value)}"

    def ip(self, value: str) -> str:
        """Pseudonym of an internal address."""
        return f"internal-{self._digest('ip', value)}"

    @staticmethod
    def _normal_ip(value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return value.strip().lower()

    def is_internal(self, value: str) -> bool:
        """True when ``value`` is an address of the tenant's own or in an internal network."""
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return False
        if str(addr) in self._addresses:
            return True
        return any(addr.version == n.version and addr in n for n in self._networks)

    # ----- applying -----------------------------------------------------------------------
    def _email_sub(self, m: re.Match[str]) -> str:
        found = m.group(0)
        return found if found.endswith("@redacted.invalid") else self.address(found)  # idempotent

    def _ip_sub(self, m: re.Match[str]) -> str:
        return self.ip(m.group(0)) if self.is_internal(m.group(0)) else m.group(0)

    def text(self, value: str) -> str:
        """Redact every identity found in a string (idempotent: pseudonyms are left as they are)."""
        if not value:
            return value
        out = _EMAIL.sub(self._email_sub, value)
        if self._name_re is not None:
            out = self._name_re.sub(lambda m: self.name(m.group(0)), out)
        if self._domain_re is not None:
            out = self._domain_re.sub(lambda m: self.domain(m.group(0)), out)
        if self._org_re is not None:
            out = self._org_re.sub(lambda m: self.org(m.group(0)), out)
        out = _IPV4.sub(self._ip_sub, out)
        if ":" in out:
            out = _IPV6.sub(self._ip_sub, out)
        return out

    def obj(self, value: Any) -> Any:
        """Redact strings anywhere inside dicts, lists and tuples (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.obj(k): self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.obj(v) for v in value)
        return value

    def cell(self, value: Any) -> Any:
        """Redact one DataFrame cell: strings, lists/arrays of strings, dicts; others unchanged."""
        if isinstance(value, str | list | tuple | dict):
            return self.obj(value)
        if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:
            return self.obj(value.tolist())
        return value

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``frame`` with every text and list cell redacted (times and numbers unchanged).

        Each distinct string is redacted once, so a large frame with repeated values stays fast.
        """
        out = frame.copy()
        for col in out.columns:
            s = out[col]
            if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
                continue
            if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
                codes, uniques = pd.factorize(s)
                if not len(uniques):
                    continue
                red = np.array([self.text(str(u)) for u in uniques] + [None], dtype=object)
                out[col] = pd.Series(red[codes], index=s.index, dtype=s.dtype)  # code -1 (missing) -> None
            else:
                out[col] = s.map(self.cell)
        return out


def _tenant_domains(case: Case) -> set[str]:
    domains = {case.tenant.lower()} if "." in case.tenant else set()
    domains |= {d.lower() for d in case.manifest.get("redaction", {}).get("domains", [])}
    if case.events.sources():
        con = case.duckdb()
        rows = con.sql("SELECT DISTINCT lower(split_part(u, '@', 2)) FROM (SELECT user AS u FROM events "
                       "UNION SELECT mailbox FROM events) WHERE u LIKE '%@%'").fetchall()
        domains |= {r[0] for r in rows if r[0]}
    return domains


def _display_names(case: Case) -> set[str]:
    names = set(case.manifest.get("redaction", {}).get("names", []))
    if not case.events.sources():
        return names
    con = case.duckdb()
    pattern = '"(?:' + _NAME_SQL + r')"\s*:\s*"((?:[^"\\]|\\.)*)"'
    rows = con.sql(f"SELECT DISTINCT unnest(regexp_extract_all(raw, '{pattern}', 1)) FROM events "
                   "WHERE raw LIKE '%isplayName%'").fetchall()
    names |= {json.loads(f'"{r[0]}"') for r in rows if r[0]}
    # Directory objects and audit targets: displayName of objects that are people.
    for (raw,) in con.sql("SELECT raw FROM events WHERE source IN ('tenant_snapshot', 'directory_audit') "
                          "AND raw LIKE '%userPrincipalName%'").fetchall():
        names |= _people_names(json.loads(raw))
    return names


def _people_names(value: Any) -> set[str]:
    """displayName of every nested object that has a userPrincipalName (a person)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if value.get("userPrincipalName") and isinstance(value.get("displayName"), str):
            found.add(value["displayName"])
        for v in value.values():
            found |= _people_names(v)
    elif isinstance(value, list):
        for v in value:
            found |= _people_names(v)
    return found


def _tenant_addresses(case: Case, actor_ips: Iterable[str]) -> set[str]:
    """The tenant's own addresses: those its users signed in from successfully, minus the actor's."""
    if not case.events.sources():
        return set()
    con = case.duckdb()
    rows = con.sql("SELECT DISTINCT ip FROM events WHERE source LIKE 'signin_%' AND result = 'success' "
                   "AND ip IS NOT NULL").fetchall()
    return {r[0] for r in rows} - set(actor_ips)


def for_case(case: Case, networks: Iterable[str] = (), actor_ips: Iterable[str] = ()) -> Redactor:
    """A Redactor for ``case``: its key, domains, people's names and internal addresses.

    Internal addresses are the private ranges, the tenant's own addresses (every address its
    users signed in from successfully, except ``actor_ips``) and any networks the case lists.
    The case may list extra items in case.json under ``redaction``: ``domains``, ``names``
    and ``internal_networks`` (CIDR strings, e.g. the organisation's egress ranges).
    """
    extra = case.manifest.get("redaction", {}).get("internal_networks", [])
    return Redactor(case_key(case), domains=_tenant_domains(case), names=_display_names(case),
                    networks=[*extra, *networks], addresses=_tenant_addresses(case, actor_ips))
