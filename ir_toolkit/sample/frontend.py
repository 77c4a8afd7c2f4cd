"""The front-end-address variant: mailbox access logged with an Exchange Online front end's address.

When a client reaches a mailbox through Exchange Online's REST front ends (new mail clients, OWA
ViaProxy, some backup products) MailItemsAccessed can carry the Microsoft front end's address as
``ClientIPAddress`` instead of the user's: one address shared by many mailboxes and apps, and one that
never signs in. The addresses used lie in the Exchange Online ranges Microsoft publishes
(``data/reference/exchange_online_frontend_ranges.csv``, see data/SOURCES.md).
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
from functools import cache
from typing import Any

from ir_toolkit.paths import reference_file
from ir_toolkit.sample.story import Story

RANGES_FILE = "exchange_online_frontend_ranges.csv"
FRONTEND_IPS = ("40.97.148.5", "40.97.161.21", "52.96.40.133", "52.97.218.29", "2603:1036:302:4045::5",
                "2603:1036:4:9c::2")
BACKUP_SHARE = 86 / 256          # about a third of the backup app's records go through the front ends


@cache
def frontend_ranges() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The shipped Exchange Online ranges."""
    with reference_file(RANGES_FILE).open(newline="", encoding="utf-8") as fh:
        return tuple(ipaddress.ip_network(row["cidr"]) for row in csv.DictReader(fh))


def in_frontend_ranges(ip: str) -> bool:
    """True when ``ip`` lies in one of :func:`frontend_ranges`."""
    addr = ipaddress.ip_address(ip)
    return any(addr.version == net.version and addr in net for net in frontend_ranges())


def frontend_rewrite(story: Story, rec: dict[str, Any]) -> str | None:
    """Give a legitimate REST-style MailItemsAccessed record a front-end ``ClientIPAddress``; returns it, or None.

    Chosen by a hash of the record Id (no generator is consumed): every record of the new mail client,
    every OWA ViaProxy record and about a third of the backup app's.
    """
    if rec.get("Operation") != "MailItemsAccessed":
        return None
    app = rec.get("AppId")
    h = hashlib.blake2b(rec["Id"].encode(), digest_size=8).digest()
    if not (app == story.new_client["appId"] or str(rec.get("ClientInfoString", "")).startswith("Client=OWA")
            or app == story.backup_app["appId"] and h[0] < BACKUP_SHARE * 256):
        return None
    ip = FRONTEND_IPS[h[1] % len(FRONTEND_IPS)]
    rec["ClientIPAddress"] = ip
    return ip

