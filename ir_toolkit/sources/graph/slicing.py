"""Time slices of a collection window: cut, halve, name.

A slice is ``[start, end)``: start included, end excluded. Graph filters only offer ``ge``/``le`` on
createdDateTime, so the end is sent as ``end - 100 ns`` (Graph's time resolution), which makes
adjacent slices meet without overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

TICK = pd.Timedelta(100, unit="ns")


@dataclass(frozen=True, order=True)
class Slice:
    """One window of one source.

    Attributes:
        source: Source name (a key of SOURCES).
        start: Inclusive start, tz-aware UTC.
        end: Exclusive end, tz-aware UTC.
    """

    source: str
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def key(self) -> str:
        """A stable name: ``source|start|end`` (ISO, UTC)."""
        return f"{self.source}|{iso_z(self.start)}|{iso_z(self.end)}"

    @property
    def file_stem(self) -> str:
        """A file-system-safe name for the slice."""
        return f"{self.source}_{self.start.strftime('%Y%m%dT%H%M%SZ')}_{self.end.strftime('%Y%m%dT%H%M%SZ')}"

    @property
    def last_tick(self) -> pd.Timestamp:
        """The last instant inside the slice at Graph's 100 ns resolution."""
        return self.end - TICK

    def halves(self, minimum: pd.Timedelta) -> tuple[Slice, Slice] | None:
        """The two halves (cut at a whole second), or None when a half would be shorter than ``minimum``."""
        span = self.end - self.start
        if span / 2 < minimum:
            return None
        mid = (self.start + span / 2).floor("s")
        if mid <= self.start or mid >= self.end:
            return None
        return Slice(self.source, self.start, mid), Slice(self.source, mid, self.end)

    def contains(self, ts: pd.Timestamp | None) -> bool:
        """True when ``ts`` falls in ``[start, end)``."""
        return ts is not None and self.start <= ts < self.end

    @classmethod
    def from_key(cls, key: str) -> Slice:
        """Inverse of :attr:`key`."""
        source, start, end = key.split("|")
        return cls(source, pd.Timestamp(start), pd.Timestamp(end))


def iso_z(ts: pd.Timestamp) -> str:
    """ISO-8601 UTC with a Z and only as many fractional digits as needed."""
    t = ts.tz_convert("UTC")
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond or t.nanosecond:
        text += f".{t.microsecond * 10 + t.nanosecond // 100:07d}".rstrip("0")
    return text + "Z"


def cut(source: str, since: pd.Timestamp, until: pd.Timestamp, size: pd.Timedelta) -> list[Slice]:
    """``[since, until)`` cut into consecutive slices of ``size`` (the last one may be shorter)."""
    if until <= since:
        return []
    out: list[Slice] = []
    start = since
    while start < until:
        end = min(start + size, until)
        out.append(Slice(source, start, end))
        start = end
    return out
