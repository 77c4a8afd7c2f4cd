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
import os
import re
import secrets
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.report import identities
from ir_toolkit.report.patterns import (
    EMAIL,
    GUID,
    IPV4,
    IPV6,
    MESSAGE_ID,
    PATH,
    is_specific,
    name_variants,
    normal_name,
    word_pattern,
)

KEY_FILE = ".redaction-key"

#: Internal ranges: RFC 1918, carrier-grade NAT, loopback, link-local, unique-local IPv6.
INTERNAL_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "fc00::/7", "fe80::/10", "::1/128",
)
# First labels of domains that name a mail system, not an organisation.
_GENERIC_LABELS = {"mail", "email", "smtp", "corp", "exchange", "outlook", "office", "microsoft", "onmicrosoft",
                   "gmail", "hotmail", "live", "example", "redacted", "prod", "protection"}
# A local part that reads like a person's address (letters, dots, hyphens); message ids carry digits or symbols.
_NAME_LIKE = re.compile(r"[A-Za-z][A-Za-z._'-]{0,39}")


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


def org_variants(domains: Iterable[str], names: Iterable[str] = ()) -> set[str]:
    """The organisation's name as its domains spell it and as it writes itself.

    ``woodgrove-analytics.example`` gives woodgrove-analytics, "woodgrove analytics",
    woodgroveanalytics and woodgrove (a first part of four letters or more that is not a common
    word); ``names`` (e.g. "Woodgrove Analytics" from the directory) are taken as they are and
    split the same way.
    """
    found: set[str] = set()
    labels = {d.split(".")[0] for d in domains if d}
    for label in labels | {n.strip().lower() for n in names if n and n.strip()}:
        if label in _GENERIC_LABELS or len(label) < 3:
            continue
        parts = [p for p in re.split(r"[-_\s]+", label) if p]
        found |= {label, " ".join(parts), "".join(parts), "-".join(parts)}
        if len(parts) > 1 and len(parts[0]) >= 4 and is_specific(parts[0]) and parts[0] not in _GENERIC_LABELS:
            found.add(parts[0])
    return {f for f in found if len(f) >= 3}


class Redactor:
    """Replace identities in text, frames and JSON-like objects with keyed pseudonyms.

    Args:
        key: The HMAC key (see :func:`case_key`).
        domains: The tenant's own DNS domains (replaced wherever they appear).
        names: People's display names; every variant of :func:`ir_toolkit.report.patterns.name_variants`
            is replaced (case-insensitively, whatever apostrophe or hyphen is used).
        networks: Extra internal networks (CIDR) beyond :data:`INTERNAL_NETWORKS`.
        addresses: Single addresses that are the tenant's own (its users' sign-in addresses).
        keep_ips: When given, every IP address *not* in it is pseudonymised (the actor's addresses
            are the only ones left readable); when None, only internal ones (networks, addresses).
        people: Extra ``(display name, given name, surname)`` triples from the directory.
        objects: Display names of objects that may not be people: replaced whole, never split.
        local_parts: UPNs whose bare local part (``dana.thornton``) is replaced where it stands alone,
            by the UPN's pseudonym without its domain (``user-3f9a1b2c``).
        orgs: The organisation's names as it writes them ("Woodgrove Analytics").
        tenant_ids: The tenant's GUIDs.
        examiners: The examiners' ``user@host`` names of the custody log.
        case_root: The case folder: absolute paths inside it are shown as ``CASE/...``.
        keep: Exact strings left as they are (the actor's applications and user agents).
        spare: Addresses and names left readable wherever they appear (the mailbox under review in a
            single-mailbox report and its owner's name: they are the subject), their domain included.
    """

    def __init__(self, key: bytes, domains: Iterable[str] = (), names: Iterable[str] = (),
                 networks: Iterable[str] = (), addresses: Iterable[str] = (), *,
                 keep_ips: Iterable[str] | None = None, people: Iterable[tuple[str, str, str]] = (),
                 objects: Iterable[str] = (),
                 local_parts: Iterable[str] = (), orgs: Iterable[str] = (), tenant_ids: Iterable[str] = (),
                 examiners: Iterable[str] = (), case_root: str | None = None, keep: Iterable[str] = (),
                 spare: Iterable[str] = ()) -> None:
        self._key = key
        self._addresses = {self._normal_ip(a) for a in addresses if a}
        self._keep_ips = None if keep_ips is None else {self._normal_ip(a) for a in keep_ips if a}
        self._networks = [ipaddress.ip_network(n, strict=False) for n in (*INTERNAL_NETWORKS, *networks)]
        self.domains = sorted({d.lower().strip(".") for d in domains if d and "." in d}, key=len, reverse=True)
        variants: set[str] = set()
        for n in names:
            variants |= name_variants(str(n))
        for display, given, surname in people:
            variants |= name_variants(str(display or ""), str(given or ""), str(surname or ""))
        variants |= {" ".join(o.split()) for o in objects if o and len(o.strip()) >= 3}
        self.names = sorted(variants, key=len, reverse=True)
        self.orgs = sorted(org_variants(self.domains, orgs), key=len, reverse=True)
        self._domain_re = word_pattern(self.domains, r"(?<![\w-])", r"(?![\w-])")
        self._org_re = word_pattern(self.orgs, r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])")
        self._name_re = word_pattern(self.names)
        self._locals = {u.lower().split("@")[0]: u.lower() for u in sorted(local_parts) if u and "@" in u}
        self._locals = {k: v for k, v in self._locals.items() if is_specific(k) or "." in k}
        self._local_re = word_pattern(self._locals, r"(?<![\w.%+-])", r"(?![\w-])")
        self._tenants = {t.lower() for t in tenant_ids if t}
        self._examiner_re = word_pattern({e for e in examiners if e}, r"(?<![\w.-])", r"(?![\w-])")
        netbios = sorted({o.replace(" ", "").replace("-", "") for o in self.orgs}
                         | {o.split(" ")[0] for o in self.orgs})
        self._account_re = (re.compile(r"(?<![\w\\])(?:" + "|".join(re.escape(n) for n in netbios if n)
                                       + r")\\[A-Za-z0-9._$-]{1,64}", re.IGNORECASE) if netbios else None)
        self._root = case_root.rstrip("/\\") if case_root else None
        self._keep = {k for k in keep if k}
        spared = sorted({a.lower() for a in spare if a and len(a) >= 3}, key=len, reverse=True)
        self._spare_re = re.compile("|".join(re.escape(a) for a in spared), re.IGNORECASE) if spared else None
        self._spare_mark = f"\x00spared-{self._digest('spare', 'mark')}-"
        self._spare_back = re.compile(re.escape(self._spare_mark) + r"(\d{1,4})\x00")
        for address in spared:
            if "@" in address:
                self._locals.pop(address.split("@")[0], None)
        self._local_re = word_pattern(self._locals, r"(?<![\w.%+-])", r"(?![\w-])")

    # ----- pseudonyms ---------------------------------------------------------------------
    def _digest(self, kind: str, value: str, size: int = 8) -> str:
        return hmac.new(self._key, f"{kind}\0{value.lower()}".encode(), hashlib.sha256).hexdigest()[:size]

    def address(self, value: str) -> str:
        """Pseudonym of an e-mail address or UPN (URL-encoded forms give the same pseudonym)."""
        value = re.sub(r"%(?:25)?40", "@", value, flags=re.IGNORECASE)
        return f"user-{self._digest('upn', value)}@redacted.invalid"

    def domain(self, value: str) -> str:
        """Pseudonym of one of the tenant's domains."""
        return f"domain-{self._digest('domain', value)}.invalid"

    def org(self, value: str) -> str:
        """Pseudonym of the organisation's name."""
        return f"org-{self._digest('org', value)}"

    def name(self, value: str) -> str:
        """Pseudonym of a display name (or a part of one)."""
        return f"Person-{self._digest('name', normal_name(value))}"

    def ip(self, value: str) -> str:
        """Pseudonym of an address (``internal-`` for private ranges, ``ip-`` for the others)."""
        kind = "internal" if self._in_networks(value) else "ip"
        return f"{kind}-{self._digest('ip', self._normal_ip(value))}"

    def message_id(self, value: str) -> str:
        """Pseudonym of an InternetMessageId: the local part replaced, the domain kept (its shape)."""
        m = MESSAGE_ID.fullmatch(value.strip())
        if m is None:
            return f"<msg-{self._digest('msg', value.strip(), 12)}@redacted.invalid>"
        return f"<msg-{self._digest('msg', m.group(0), 12)}@{m.group(2)}>"

    @staticmethod
    def _normal_ip(value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return value.strip().lower()

    def _in_networks(self, value: str) -> bool:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in self._networks)

    def is_internal(self, value: str) -> bool:
        """True when ``value`` is an address redaction replaces (see ``keep_ips``)."""
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return False
        if self._keep_ips is not None:
            return str(addr) not in self._keep_ips
        return str(addr) in self._addresses or self._in_networks(value)

    # ----- applying -----------------------------------------------------------------------
    def _message_sub(self, m: re.Match[str]) -> str:
        local = m.group(1)
        if local.startswith("msg-") or m.group(2).lower() == "redacted.invalid":
            return m.group(0)  # idempotent
        if len(local) <= 40 and _NAME_LIKE.fullmatch(local):
            return "<" + self.address(local + "@" + m.group(2)) + ">"  # "Name <first.last@domain>": an address
        return self.message_id(m.group(0))

    def _email_sub(self, m: re.Match[str]) -> str:
        found = m.group(0)
        if m.group(2).lower() == "redacted.invalid" or found.lower().startswith("msg-"):
            return found  # idempotent: a pseudonym already
        return self.address(found)

    def _ip_sub(self, m: re.Match[str]) -> str:
        return self.ip(m.group(0)) if self.is_internal(m.group(0)) else m.group(0)

    def _path_sub(self, m: re.Match[str]) -> str:
        path = m.group(0)
        if self._root and path.startswith(self._root) and path[len(self._root):][:1] in ("", "/", "\\"):
            return "CASE" + path[len(self._root):]
        return f"path-{self._digest('path', path)}"

    def _local_sub(self, m: re.Match[str]) -> str:
        upn = self._locals.get(m.group(0).lower(), m.group(0))
        return self.address(upn).split("@")[0]

    def text(self, value: str) -> str:
        """Redact every identity found in a string (idempotent: pseudonyms are left as they are)."""
        if not value or value in self._keep:
            return value
        if self._spare_re is not None:  # set the subject aside, redact the rest, put it back as it was
            found: list[str] = []

            def aside(m: re.Match[str]) -> str:
                found.append(m.group(0))
                return f"{self._spare_mark}{len(found) - 1}\x00"

            held = self._redact(self._spare_re.sub(aside, value))
            return self._spare_back.sub(lambda m: found[int(m.group(1))], held)
        return self._redact(value)

    def _redact(self, value: str) -> str:
        out = MESSAGE_ID.sub(self._message_sub, value) if "@" in value else value
        out = EMAIL.sub(self._email_sub, out) if ("@" in out or "%" in out) else out
        if self._account_re is not None and "\\" in out:
            out = self._account_re.sub(lambda m: f"account-{self._digest('account', m.group(0))}", out)
        if self._tenants and "-" in out:
            out = GUID.sub(lambda m: f"tenant-{self._digest('tenant', m.group(0))}"
                           if m.group(0).lower() in self._tenants else m.group(0), out)
        if self._examiner_re is not None:
            out = self._examiner_re.sub(lambda m: f"examiner-{self._digest('examiner', m.group(0))}", out)
        if "/" in out or "\\" in out:
            out = PATH.sub(self._path_sub, out)
        if self._local_re is not None:
            out = self._local_re.sub(self._local_sub, out)
        for pattern, pseudonym in ((self._name_re, self.name), (self._domain_re, self.domain),
                                   (self._org_re, self.org)):
            if pattern is not None:
                out = pattern.sub(lambda m, p=pseudonym: p(m.group(0)), out)  # type: ignore[misc]
        if "." in out:
            out = IPV4.sub(self._ip_sub, out)
        if ":" in out:
            out = IPV6.sub(self._ip_sub, out)
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


def for_case(case: Case, networks: Iterable[str] = (), actor_ips: Iterable[str] = (),
             keep: Iterable[str] = (), spare: Iterable[str] = ()) -> Redactor:
    """A Redactor for ``case``: its key and everything it names (:func:`ir_toolkit.report.identities.collect`).

    Every IP address except ``actor_ips`` (the scope's actor addresses: what a recipient acts on)
    is pseudonymised: private ranges, the tenant's offices, its users' homes and phones. The
    case may list extra items in case.json under ``redaction``: ``domains``, ``names``,
    ``organisations`` and ``internal_networks`` (CIDR strings, shown as ``internal-...``).
    ``keep`` are exact strings left readable (the actor's applications and user agents); ``spare`` are
    addresses left readable wherever they appear (the mailbox a single-mailbox report is about).
    """
    extra = case.manifest.get("redaction", {}).get("internal_networks", [])
    ids = identities.collect(case)
    return Redactor(case_key(case), domains=ids.domains, names=(), networks=[*extra, *networks],
                    keep_ips=actor_ips, people=ids.people, objects=ids.objects, local_parts=ids.upns, orgs=ids.orgs,
                    tenant_ids=ids.tenant_ids, examiners=ids.examiners, case_root=str(case.root.resolve()),
                    keep=keep, spare=spare)
