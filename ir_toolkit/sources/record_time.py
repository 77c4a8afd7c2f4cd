"""A record's own time, when the export projected its time column away.

A KQL export (``OfficeActivity | project-away TimeGenerated``, a custom projection) can leave a
record without the column its mapper reads the time from, though the record still carries its
time in another field or in a nested object (``RawEventData.CreationTime``,
``properties.createdDateTime``). :func:`with_record_time` wraps a column mapper so that a *missing*
time is taken from there; a time that is present but unreadable is left alone (the record is
quarantined, never dated from another field).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.fields import first, sub

__all__ = ["NESTED_TIMES", "nested_time", "with_record_time"]

ColumnMapper = Callable[[list[dict[str, Any]]], dict[str, list[Any]]]
MAX_NESTED = 1 << 20  # nested JSON text longer than this is not parsed for a time
NESTED_TIMES = ("creationtime", "createddatetime", "activitydatetime", "timestamp", "detecteddatetime",
                "eventtime", "time")


def nested_time(r: dict[str, Any]) -> Any:
    """The record's own time when its mapped time column is missing (a KQL export that projected
    ``TimeGenerated`` away): the first of :data:`NESTED_TIMES` at the top level, then in each nested
    object (given as object or JSON text) one level down, in the record's key order; None if none."""
    found = first(r, *NESTED_TIMES)
    if found is not None:
        return None if isinstance(found, dict | list) else found
    for value in r.values():
        if isinstance(value, dict) or (isinstance(value, str) and value[:1] == "{" and len(value) < MAX_NESTED):
            found = first(sub(value), *NESTED_TIMES)
            if found is not None and not isinstance(found, dict | list):
                return found
    return None



def with_record_time(mapper: ColumnMapper) -> ColumnMapper:
    """``mapper``, with a missing time taken from :func:`nested_time` (a time that is present but
    unreadable is left alone: the record is quarantined rather than dated from another field)."""
    def mapped(rs: list[dict[str, Any]]) -> dict[str, list[Any]]:
        cols = mapper(rs)
        times = cols.get("time")
        if times is not None:
            for i, t in enumerate(times):
                if t is None or t == "":
                    times[i] = nested_time(rs[i])
        return cols

    mapped.__doc__ = mapper.__doc__
    return mapped
