"""Indicator lists: the shipped Storm-0558 indicators and user-supplied IOC files.

An indicator is one row of a frame with columns ``kind`` (ip, cidr, user_agent, app_id,
token_key), ``value`` (normalised: lower case, CIDR in canonical form), ``description``
and ``source`` (the file it came from). User lists are CSV (columns ``indicator`` or
``value``, optional ``type`` and ``description``) or STIX 2.1 bundles (``indicator``
objects with simple ``[ipv4-addr:value = '...']`` style patterns).

A match is a lead, never a verdict: 2023 VPS addresses have been reused by others since.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ir_toolkit.errors import InputFormatError
from ir_toolkit.paths import reference_file

SHIPPED = "storm0558_iocs.csv"
# Named in the body of Microsoft's 14 July 2023 blog, not in its IOC table (see data/SOURCES.md).
BLOG_EXTRA_PROXIES = ("185.158.248.93", "20.108.240.252", "146.70.135.182")
# The acquired key's kid / x5t (reference/storm-0558.md); the thumbprint is in the CSV.
STORM0558_KID = "1LTMzakihiRla_8z2BEJVXeWMqo"
COLUMNS = ["kind", "value", "description", "source"]

_TYPES = {
    "ipv4": "ip", "ipv6": "ip", "ip": "ip", "ipaddress": "ip", "cidr": "cidr", "subnet": "cidr",
    "thumbprint": "token_key", "kid": "token_key", "x5t": "token_key", "tokenkey": "token_key",
    "useragent": "user_agent", "ua": "user_agent", "appid": "app_id", "app": "app_id", "clientappid": "app_id",
}
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_STIX_TERM = re.compile(r"([a-z0-9-]+):([\w.'\- ]+?)\s*(=|ISSUBSET)\s*'((?:[^'\\]|\\.)*)'", re.I)


def _infer(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
        return "ip"
    except ValueError:
        pass
    if "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
            return "cidr"
        except ValueError:
            return None
    if _GUID.match(value):
        return "app_id"
    if re.fullmatch(r"[0-9a-fA-F]{40}", value):
        return "token_key"
    return None


def _normalise(kind: str, value: str, where: str) -> tuple[str, str]:
    value = value.strip()
    if kind in ("ip", "cidr"):
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise InputFormatError(f"{where}: {value!r} is not an IP address or CIDR") from None
        single = net.num_addresses == 1 and "/" not in value
        return ("ip", str(net.network_address)) if single else ("cidr", str(net))
    if kind == "token_key":
        return kind, value  # kids are case-sensitive base64url; thumbprints compared as given and lower
    return kind, value.lower()


def _from_csv(path: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {f.lower().strip(): f for f in (reader.fieldnames or [])}
        col = fields.get("indicator") or fields.get("value")
        if col is None:
            raise InputFormatError(f"{path}: IOC CSV needs an 'indicator' or 'value' column")
        for n, rec in enumerate(reader, start=2):
            value = (rec.get(col) or "").strip()
            if not value:
                continue
            typed = (rec.get(fields.get("type", ""), "") or "").strip().lower().replace("-", "").replace(" ", "")
            kind = _TYPES.get(typed) or _infer(value)
            if kind is None:
                if typed in ("domain", "url", "email", "sha256", "md5"):
                    continue  # kinds that never appear in sign-in or mailbox records
                raise InputFormatError(f"{path}: line {n}: cannot tell what kind of indicator {value!r} is")
            kind, value = _normalise(kind, value, f"{path}: line {n}")
            desc = (rec.get(fields.get("description", ""), "") or "").strip()
            rows.append({"kind": kind, "value": value, "description": desc, "source": path.name})
    return rows


def _stix_kind(obj: str, path: str) -> str | None:
    p = path.lower()
    if obj in ("ipv4-addr", "ipv6-addr"):
        return "ip"
    if obj == "x509-certificate" or "sha-1" in p or "thumbprint" in p:
        return "token_key"
    if "user-agent" in p:
        return "user_agent"
    if "app_id" in p or "appid" in p or obj in ("x-oauth-app", "x-entra-app", "application"):
        return "app_id"
    return None


def _from_stix(path: Path, bundle: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for i, obj in enumerate(bundle.get("objects") or []):
        if not isinstance(obj, dict) or obj.get("type") != "indicator":
            continue
        pattern = str(obj.get("pattern") or "")
        for otype, opath, _op, value in _STIX_TERM.findall(pattern):
            kind = _stix_kind(otype.lower(), opath)
            if kind is None:
                continue
            kind, value = _normalise(kind, value.replace("\\'", "'"), f"{path}: object {i}")
            rows.append({"kind": kind, "value": value, "description": str(obj.get("name") or ""),
                         "source": path.name})
    return rows


def load_iocs(path: str | Path) -> pd.DataFrame:
    """Read a user IOC list (CSV or STIX 2.1 bundle) into the indicator frame.

    Raises:
        InputFormatError: when the file is missing, unreadable or holds an indicator of unknown kind.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: IOC file not found")
    head = path.read_bytes()[:4096].lstrip()
    if head.startswith(b"{"):
        try:
            bundle = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFormatError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
            raise InputFormatError(f"{path}: JSON IOC files must be STIX 2.1 bundles (type 'bundle')")
        rows = _from_stix(path, bundle)
    else:
        rows = _from_csv(path)
    return pd.DataFrame(rows, columns=COLUMNS)


def shipped_indicators() -> pd.DataFrame:
    """The shipped Storm-0558 indicators, the blog's three extra proxies and the key's kid."""
    frame = load_iocs(reference_file(SHIPPED))
    extra = [{"kind": "ip", "value": ip, "description": "SoftEther proxy (blog body)", "source": SHIPPED}
             for ip in BLOG_EXTRA_PROXIES]
    extra.append({"kind": "token_key", "value": STORM0558_KID, "description": "kid of the acquired MSA key",
                  "source": "reference/storm-0558.md"})
    frame["description"] = "Storm-0558 " + frame["description"]
    return pd.concat([frame, pd.DataFrame(extra, columns=COLUMNS)], ignore_index=True).drop_duplicates(
        ["kind", "value"])


def indicators(extra_files: list[str] | str | None = None, shipped: bool = True) -> pd.DataFrame:
    """The indicator frame: shipped indicators (unless ``shipped`` is False) plus user files."""
    files = [extra_files] if isinstance(extra_files, str) else list(extra_files or [])
    frames = [shipped_indicators()] if shipped else []
    frames += [load_iocs(f) for f in files if f]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True).drop_duplicates(["kind", "value"]).reset_index(drop=True)


def match_addresses(ips: pd.Series, iocs: pd.DataFrame) -> pd.DataFrame:
    """Which of ``ips`` match an IP or CIDR indicator.

    Args:
        ips: Distinct addresses seen in the case.
        iocs: The indicator frame.

    Returns:
        Frame with columns ip, indicator, description, source (one row per address and indicator).
    """
    exact = {r.value: r for r in iocs[iocs["kind"] == "ip"].itertuples(index=False)}
    nets = [(ipaddress.ip_network(str(r.value)), r) for r in iocs[iocs["kind"] == "cidr"].itertuples(index=False)]
    rows = []
    for ip in ips.dropna().unique():
        try:
            addr = ipaddress.ip_address(str(ip))
        except ValueError:
            continue
        hit = exact.get(str(addr))
        if hit is not None:
            rows.append({"ip": ip, "indicator": hit.value, "description": hit.description, "source": hit.source})
        for net, r in nets:
            if addr.version == net.version and addr in net:
                rows.append({"ip": ip, "indicator": r.value, "description": r.description, "source": r.source})
    return pd.DataFrame(rows, columns=["ip", "indicator", "description", "source"])
