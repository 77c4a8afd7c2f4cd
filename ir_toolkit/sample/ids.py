"""Deterministic identifiers and time formats in Microsoft's own shapes.

Everything random in the sample tenant comes from :class:`random.Random` objects seeded with
strings (``Random("558|2023-06-01|user|7")``): string seeds are hashed with SHA-512 by the
standard library, so the same seed gives the same bytes on every machine and Python run.
"""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import UTC, date, datetime, timedelta


def rng_for(*parts: object) -> random.Random:
    """A random generator seeded by the joined ``parts`` (stable across runs and machines)."""
    return random.Random("|".join(str(p) for p in parts))


def guid(rng: random.Random) -> str:
    """A random version-4 GUID in lower case, as Entra and Exchange write them."""
    n = rng.getrandbits(128)
    n = (n & ~(0xC000 << 48) | 0x8000 << 48) & ~(0xF000 << 64) | 4 << 76     # what uuid.UUID(version=4) sets
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def token_id(rng: random.Random) -> str:
    """A ``uniqueTokenIdentifier`` / ``uti``: 16 random bytes, base64url without padding (22 chars)."""
    return base64.urlsafe_b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode().rstrip("=")


def hexid(rng: random.Random, n: int) -> str:
    """``n`` upper-case hex digits."""
    return f"{rng.getrandbits(4 * n):0{n}X}"


def message_id(rng: random.Random) -> str:
    """An Exchange Online ``InternetMessageId`` (``<...@XXXXPRNNMB....prod.outlook.com>``)."""
    region = rng.choice(("namprd", "eurprd", "apcprd"))
    site = rng.choice(("BN", "CH", "DM", "SA", "PH", "MW"))
    server = f"{site}{rng.randint(0, 9)}PR{rng.randint(10, 19)}MB{rng.randint(1000, 9999)}"
    return f"<{server}{hexid(rng, 16)}@{server}.{region}{rng.randint(1, 19):02d}.prod.outlook.com>"


def sid(rng: random.Random) -> str:
    """A Windows security identifier as Exchange writes for mailbox owners."""
    parts = [str(rng.randint(10**9, 4 * 10**9)) for _ in range(3)]
    return f"S-1-5-21-{'-'.join(parts)}-{rng.randint(10**6, 9 * 10**6)}"


def utc(day: date, seconds: float) -> datetime:
    """``day`` at ``seconds`` after midnight UTC (whole seconds)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=int(seconds))


def graph_time(t: datetime) -> str:
    """Graph sign-in style: ``2023-06-01T13:05:22Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_time7(t: datetime, rng: random.Random) -> str:
    """Graph directory-audit style with 7 fraction digits: ``2023-06-01T13:05:22.1234567Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{rng.randint(0, 9_999_999):07d}Z"


def ual_time(t: datetime) -> str:
    """Unified audit log ``CreationTime`` style: ``2023-06-01T13:05:22`` (UTC, no zone)."""
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def csv_time(t: datetime) -> str:
    """Purview CSV ``CreationDate`` style: ``2023-06-01T13:05:22.0000000Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".0000000Z"


def iso(t: datetime) -> str:
    """The answer key's time format: ISO 8601 UTC with ``Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pooled_message_id(seed: int, mailbox: int, n: int) -> str:
    """Message ``n`` of mailbox ``mailbox``: the same id every time it is read (fast: one hash)."""
    h = hashlib.blake2b(f"{seed}|{mailbox}|{n}".encode(), digest_size=16).digest()
    site = ("BN", "CH", "DM", "SA", "PH", "MW")[h[0] % 6]
    server = f"{site}{h[1] % 10}PR{10 + h[2] % 10}MB{1000 + int.from_bytes(h[3:5], 'big') % 9000}"
    return f"<{server}{h[5:13].hex().upper()}@{server}.namprd{1 + h[13] % 19:02d}.prod.outlook.com>"
