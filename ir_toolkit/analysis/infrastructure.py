"""Microsoft's own service addresses: infrastructure, not clients.

MailItemsAccessed records of access that goes through Exchange Online's front end (REST, some
OWA and service traffic) can carry a Microsoft address as ClientIPAddress. Such an address is
shared by countless mailboxes and applications: it says nothing about who the client was, so
it is never a "new address" and never an actor address to pivot on. The ranges are Microsoft's
published Exchange Online ranges (data/reference/exchange_online_frontend_ranges.csv, see
data/SOURCES.md).
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
import logging
from functools import cache

import pandas as pd

from ir_toolkit.paths import reference_file

log = logging.getLogger(__name__)

RANGES_FILE = "exchange_online_frontend_ranges.csv"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _ranges() -> dict[int, tuple[list[int], list[int], list[str]]]:
    """Per IP version: sorted, disjoint range starts, their ends and CIDR texts (nested CIDRs folded)."""
    path = reference_file(RANGES_FILE)
    nets: list[Network] = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    nets.append(ipaddress.ip_network((row.get("cidr") or "").strip(), strict=False))
                except ValueError:
                    log.warning("%s: not a network: %r", path.name, row.get("cidr"))
    else:
        log.warning("%s is missing: Microsoft front-end addresses will not be recognised", path)
    out: dict[int, tuple[list[int], list[int], list[str]]] = {}
    for version in (4, 6):
        kept: list[Network] = []
        for n in sorted((n for n in nets if n.version == version), key=lambda n: (int(n.network_address),
                                                                                   -n.num_addresses)):
            if kept and int(n.broadcast_address) <= int(kept[-1].broadcast_address):
                continue  # two CIDRs either nest or are disjoint: this one lies inside the last kept
            kept.append(n)
        out[version] = ([int(n.network_address) for n in kept], [int(n.broadcast_address) for n in kept],
                        [str(n) for n in kept])
    return out


def infrastructure_range(ip: str) -> str | None:
    """The Microsoft range (CIDR) holding ``ip``, or None."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    starts, ends, names = _ranges()[addr.version]
    value = int(addr)
    i = bisect.bisect_right(starts, value) - 1
    return names[i] if i >= 0 and value <= ends[i] else None


def infrastructure_addresses(ips: pd.Series) -> pd.DataFrame:
    """Which of ``ips`` are Microsoft service addresses: columns ip, network."""
    rows = [{"ip": str(ip), "network": net} for ip in pd.Series(ips).dropna().unique()
            if (net := infrastructure_range(str(ip))) is not None]
    return pd.DataFrame(rows, columns=["ip", "network"])
