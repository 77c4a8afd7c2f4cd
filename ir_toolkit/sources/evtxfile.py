"""EVTX files, read with the maintained ``evtx`` parser from PyPI (pyevtx-rs), never a parser of our own.

:func:`read_evtx` yields each record flattened to one level, the way Log Analytics shows it:
``TimeCreated``, ``EventID``, ``Provider``, ``Channel``, ``Computer``, ``EventRecordID`` ... and the
``EventData`` fields by name (unnamed ``Data`` values as the list ``EventData``). A record or chunk the
parser cannot read becomes one :class:`~ir_toolkit.sources.rawtext.Broken` entry (quarantined with the
parser's reason) and the reader goes on with the next record. The records are mapped by
``maps/windows_event.yaml`` (:mod:`ir_toolkit.sources.windows`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ir_toolkit.sources.rawtext import Broken

EVTX_MAGIC = b"ElfFile\x00"


def _attrs(value: Any) -> Any:
    """An EVTX JSON value without its ``#attributes`` wrapping where it only holds text."""
    if isinstance(value, dict) and set(value) <= {"#attributes", "#text"} and "#text" in value:
        return value["#text"]
    return value


def flatten_evtx(event: dict[str, Any]) -> dict[str, Any]:
    """One EVTX record (the parser's JSON ``{"Event": {"System", "EventData" | "UserData"}}``) as one
    flat record: System fields, then EventData fields by name (unnamed Data values as the list ``EventData``)."""
    inner = event.get("Event")
    ev: dict[str, Any] = inner if isinstance(inner, dict) else event
    sys_value = ev.get("System")
    system: dict[str, Any] = sys_value if isinstance(sys_value, dict) else {}
    out: dict[str, Any] = {}
    for key, value in system.items():
        attrs = value.get("#attributes") if isinstance(value, dict) else None
        if key == "TimeCreated" and isinstance(attrs, dict):
            out["TimeCreated"] = attrs.get("SystemTime")
        elif key == "Provider" and isinstance(attrs, dict):
            out["Provider"] = attrs.get("Name") or attrs.get("EventSourceName")
            if attrs.get("EventSourceName"):
                out["EventSourceName"] = attrs["EventSourceName"]
        elif key in ("Execution", "Correlation", "Security") and isinstance(attrs, dict):
            out.update({f"{key}{k}" if key == "Execution" else k: v for k, v in attrs.items()})
        else:
            out[key] = _attrs(value)
    for section in ("EventData", "UserData"):
        data = ev.get(section)
        if isinstance(data, dict):
            for key, value in data.items():
                if key == "#attributes":
                    continue
                if key == "Data":
                    out["EventData"] = [_attrs(v) for v in value] if isinstance(value, list) else [_attrs(value)]
                elif isinstance(value, dict) and section == "UserData":
                    out.update({k: _attrs(v) for k, v in value.items() if k != "#attributes"})
                else:
                    out[key] = _attrs(value)
    return out


def read_evtx(path: Path) -> Iterator[tuple[int, Any]]:
    """The records of an EVTX file as ``(position, flat record)``; unreadable ones as :class:`Broken`.

    ``position`` counts every record the parser returned or failed on (1-based). The parser's own
    record number is kept in the record (``EventRecordID``) and in the quarantine reason.
    """
    try:
        from evtx import PyEvtxParser
    except ImportError as exc:  # pragma: no cover - a declared dependency
        yield 1, Broken(f"EVTX files need the 'evtx' package ({exc})", "", truncated=True)
        return
    try:
        records = PyEvtxParser(str(path)).records_json()
    except (OSError, RuntimeError) as exc:
        yield 1, Broken(f"not a readable EVTX file ({exc})", "", truncated=True)
        return
    pos = 0
    while True:
        try:
            rec: Any = next(records)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - damaged chunk or record: quarantine, read on
            pos += 1
            yield pos, Broken(f"EVTX record {pos} unreadable ({str(exc)[:300]})", "")
            continue
        pos += 1
        try:
            event = json.loads(rec["data"])
            flat = flatten_evtx(event) if isinstance(event, dict) else {}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            yield pos, Broken(f"EVTX record {pos} unreadable ({exc})", str(rec.get("data", ""))[:10000])
            continue
        if not flat.get("TimeCreated") and rec.get("timestamp"):
            flat["TimeCreated"] = str(rec["timestamp"]).removesuffix(" UTC")
        yield pos, flat


def is_evtx(head: bytes) -> bool:
    """True when the file starts like an EVTX file."""
    return head.startswith(EVTX_MAGIC)
