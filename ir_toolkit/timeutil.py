"""Lenient parsing of Microsoft's timestamp variants into tz-aware UTC.

Microsoft logs write the same instant many ways: ``2023-06-15T01:02:03.1234567Z``
(7-digit fractions), ``2023-06-15T01:02:03`` (no zone, meaning UTC),
``2023-06-15 01:02:03 `` (trailing spaces), and the portal exports' browser-locale
forms ``9/20/2023 4:05:03 AM`` or ``4/28/2021, 3:05:26.000 PM``. All are UTC unless
they carry an offset (``1/9/2007 10:41:00 AM +01:00`` is 09:41 UTC). Parsers here are pure and never
raise on bad input: they return ``None`` (scalar) or ``NaT`` (vectorised) and the caller decides.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd

_FRACTION = re.compile(r"(\.\d{6})\d+")
_DIGIT = re.compile(r"\d")
# Windows PowerShell's ConvertTo-Json writes a DateTime as "\/Date(1686787140000)\/" (ms since 1970, UTC;
# an offset suffix such as +0200 only says which zone the value was shown in): Hawk's JSON files
_MS_DATE = re.compile(r"^/Date\((-?\d{1,15})(?:[+-]\d{4})?\)/$")
_LOCALE = re.compile(
    r"^(?P<m>\d{1,2})(?P<sep>[/.-])(?P<d>\d{1,2})(?P=sep)(?P<y>\d{4}),?\s+(?P<H>\d{1,2}):(?P<M>\d{2})"
    r"(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?\s*(?P<ampm>[AaPp][Mm])?"
    r"(?:\s*(?P<z>[Zz]|UTC|GMT)|\s*(?:UTC|GMT)?(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}))?$"
)


def ambiguous_date(value: object) -> bool:
    """True for a locale time whose day and month could be either way round (``5/6/2023 1:02 PM``; not dotted)."""
    m = _LOCALE.match(str(value).strip().strip('"').strip()) if isinstance(value, str) else None
    return m is not None and m["sep"] != "." and int(m["m"]) != int(m["d"]) and int(m["m"]) <= 12 and int(m["d"]) <= 12


def _from_locale(text: str, dayfirst: bool | None) -> datetime | None:
    m = _LOCALE.match(text)
    if not m:
        return None
    month, day = int(m["m"]), int(m["d"])
    if m["sep"] == ".":  # 28.05.2023: no locale writes month.day.year
        dayfirst = True
    elif dayfirst is None:  # the file did not tell: only dates that read one way are read
        if month > 12 >= day:
            dayfirst = True
        elif day > 12 >= month or month == day:
            dayfirst = False
        else:
            return None
    if dayfirst:
        month, day = day, month
    hour = int(m["H"])
    ampm = (m["ampm"] or "").upper()
    if ampm == "PM" and hour < 12:
        hour += 12
    elif ampm == "AM" and hour == 12:
        hour = 0
    micro = int((m["f"] or "0")[:6].ljust(6, "0"))
    try:
        local = datetime(int(m["y"]), month, day, hour, int(m["M"]), int(m["S"] or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if m["sign"] is None:
        return local
    # "1/9/2007 10:41:00 AM +01:00" (.NET's "G zzz", a Sentinel / Azure Monitor envelope): local time and its offset
    offset = int(m["oh"]) * 60 + int(m["om"])
    if offset > 14 * 60 or int(m["om"]) > 59:
        return None
    return local - timedelta(minutes=offset if m["sign"] == "+" else -offset)


def parse_time(value: object, dayfirst: bool | None = False) -> pd.Timestamp | None:
    """Parse one timestamp leniently into a tz-aware UTC ``pd.Timestamp``.

    Args:
        value: A string, datetime, epoch number or None.
        dayfirst: Read ``a/b/yyyy`` (also ``a.b.yyyy``, ``a-b-yyyy``) locale dates as day/month
            (default month/day, en-US); None: read only the dates that can be read one way
            (a day above 12, or day and month equal), None for the others.

    Returns:
        The UTC timestamp, or None when the value is empty or cannot be read.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if isinstance(value, int | float):
        if value != value:  # NaN
            return None
        unit = "ms" if abs(value) > 1e11 else "s"
        try:
            return pd.Timestamp(value, unit=unit, tz="UTC")
        except (ValueError, OverflowError):
            return None
    text = str(value).strip().strip('"').strip()
    if not _DIGIT.search(text):  # also keeps pandas from reading "now" / "today" as the current time
        return None
    ms_date = _MS_DATE.match(text)
    if ms_date:
        try:
            return pd.Timestamp(int(ms_date.group(1)), unit="ms", tz="UTC")
        except (ValueError, OverflowError):
            return None
    if "/" in text[:6] or _LOCALE.match(text):
        dt = _from_locale(text, dayfirst)
        return pd.Timestamp(dt) if dt else None
    text = _FRACTION.sub(r"\1", text)
    try:
        ts = pd.Timestamp(text)
    except (ValueError, OverflowError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_times(values: pd.Series, dayfirst: bool | None = False) -> pd.Series:
    """Vectorised :func:`parse_time`: a ``datetime64[us, UTC]`` Series, NaT where unreadable.

    The common ISO form is parsed in one pass; only the leftovers go through the
    lenient scalar path.
    """
    # patterns as text, not compiled: pandas then runs them in Arrow instead of once per value in Python
    text = values.astype("string").str.strip().str.replace(_FRACTION.pattern, r"\1", regex=True)
    text = text.where(text.str.contains(_DIGIT.pattern, regex=True).fillna(False).astype(bool))  # never "now"/"today"
    fast = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    missing = fast.isna() & text.notna() & (text != "")
    if missing.any():
        slow = values[missing].map(lambda v: parse_time(v, dayfirst))
        fast = fast.astype("datetime64[us, UTC]")
        fast[missing] = pd.to_datetime(slow, utc=True).astype("datetime64[us, UTC]")
    return fast.astype("datetime64[us, UTC]")


# What the analysis can represent: every verb computes with these times (windows, token lifetimes,
# nanosecond engines), so an event outside this range is quarantined at import (its secondary times,
# such as token_issued_at, are cleared instead; the record's raw text keeps the original).
TIME_MIN = pd.Timestamp("1900-01-01", tz="UTC")
TIME_MAX = pd.Timestamp("2200-01-01", tz="UTC")  # exclusive


def in_range(times: pd.Series) -> pd.Series:
    """True where a UTC time lies in ``[TIME_MIN, TIME_MAX)`` (False for NaT)."""
    return ((times >= TIME_MIN) & (times < TIME_MAX)).fillna(False).astype(bool)


def iso(ts: object) -> str | None:
    """Format a timestamp as ISO 8601 UTC with a ``Z`` suffix (None for missing)."""
    if type(ts) is pd.Timestamp and ts.tzinfo is not None and not ts.utcoffset():  # UTC already: no conversion
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")  # (detect formats 30,000 at 1 million)
    t = parse_time(ts)
    if t is None:
        return None
    return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def now_utc() -> pd.Timestamp:
    """The current time, tz-aware UTC."""
    return pd.Timestamp.now(tz="UTC")
