"""The evidence profile as the report, the CLI and the notebooks show it.

The profile itself (what each source holds, its holes, what the case cannot prove) is computed by
:mod:`ir_toolkit.analysis.evidence` and stored by scoping in scope.json under ``evidence``. This
module reads it from there (or computes it when scoping has not run), turns it into tables, and
writes the executive summary's first sentence (:mod:`ir_toolkit.report.headline`). Everything in it
is JSON-ready (ISO times): times are shown in a display zone only at the edge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.report.casedata import load_scope, optional
from ir_toolkit.report.display import table
from ir_toolkit.timeutil import parse_time

log = logging.getLogger(__name__)

SOURCE_COLUMNS = ["source", "held", "first", "last", "events", "holes", "retention"]
HOLE_COLUMNS = ["source", "start", "end", "hours", "method", "why"]
PERIOD_COLUMNS = ["start", "end", "source", "reason"]


def compute_profile(case: Case, lifetime_minutes: int = 90) -> dict[str, Any] | None:
    """The case's evidence profile, computed now (JSON-ready), or None when it cannot be.

    Args:
        case: The case.
        lifetime_minutes: Token lifetime used to cluster tokens the mailbox log shows but no sign-in holds.

    Returns:
        :func:`ir_toolkit.analysis.evidence.profile_json` of the profile, or None (logged) when the
        analysis layer is not installed or fails on this case.
    """
    evidence = optional("ir_toolkit.analysis.evidence")
    engine = optional("ir_toolkit.analysis.engine")
    if evidence is None or engine is None:
        return None
    try:
        profile = evidence.evidence_profile(case, engine.DuckDBEngine(case), lifetime_minutes)
        doc: dict[str, Any] = evidence.profile_json(profile)
    except Exception as exc:  # noqa: BLE001 - the report and notebooks must still run
        log.warning("evidence profile could not be computed: %s: %s", exc.__class__.__name__, exc)
        return None
    return doc


def case_profile(case: Case, scope: dict[str, Any] | None = None, lifetime_minutes: int = 90) -> dict[str, Any] | None:
    """The evidence profile scoping stored in scope.json, else one computed now.

    Args:
        case: The case.
        scope: scope.json contents when already loaded (read from the case when None).
        lifetime_minutes: As for :func:`compute_profile` (used only when computing).
    """
    scope = scope if scope is not None else load_scope(case)
    stored = (scope or {}).get("evidence")
    if isinstance(stored, dict) and isinstance(stored.get("sources"), dict):
        return stored
    return compute_profile(case, lifetime_minutes)


def source_rows(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per source: source, description, held, first, last, events, holes (count), retention (None if absent)."""
    rows = []
    for src, entry in (profile.get("sources") or {}).items():
        held = bool(entry.get("held"))
        rows.append({"source": str(src), "description": entry.get("description", ""),
                     "held": "held" if held else "absent", "first": entry.get("first") if held else None,
                     "last": entry.get("last") if held else None, "events": entry.get("events", 0) if held else None,
                     "holes": len(entry.get("holes") or []) if held else None,
                     "retention": entry.get("retention", "")})
    return rows


def hole_rows(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Every hole of every source, by start: source, start, end, hours, method, why."""
    rows = [{"source": str(src), "start": h.get("start"), "end": h.get("end"), "hours": _hours(h),
             "method": h.get("method", ""), "why": h.get("reason", "")}
            for src, entry in (profile.get("sources") or {}).items() for h in (entry.get("holes") or [])]
    return sorted(rows, key=lambda r: (str(r["start"]), r["source"]))


def _hours(hole: dict[str, Any]) -> float | None:
    """The hole's length in hours (ledger holes carry none: computed from start and end)."""
    if hole.get("hours") is not None:
        return float(hole["hours"])
    start, end = parse_time(hole.get("start")), parse_time(hole.get("end"))
    return round((end - start) / pd.Timedelta(hours=1), 1) if start is not None and end is not None else None


def profile_frames(profile: dict[str, Any] | None, tz: str = "UTC") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sources and holes tables as DataFrames, times tz-aware in ``tz`` (for the notebooks)."""
    sources = pd.DataFrame(source_rows(profile or {}), columns=["description", *SOURCE_COLUMNS])
    holes = pd.DataFrame(hole_rows(profile or {}), columns=HOLE_COLUMNS)
    sources[["events", "holes"]] = sources[["events", "holes"]].astype("Int64")  # absent sources: <NA>
    for frame, cols in ((sources, ("first", "last")), (holes, ("start", "end"))):
        for col in cols:
            frame[col] = [_local(v, tz) for v in frame[col]]
    return sources, holes


def _local(value: Any, tz: str) -> pd.Timestamp | None:
    ts = parse_time(value)
    return ts.tz_convert(tz) if ts is not None else None


def view(profile: dict[str, Any] | None, scope: dict[str, Any] | None, tz: str,
         text: Callable[[str], str]) -> dict[str, Any]:
    """What the report's "What the evidence holds" section shows (display strings, ``text`` applied).

    Args:
        profile: The JSON-ready profile (already redacted when the report is), or None.
        scope: scope.json contents (for its unverifiable periods), or None.
        tz: Display time zone.
        text: The report's text filter (redaction, or identity).
    """
    if profile is None:
        return {"available": False}
    throttled = [text(str(t.get("upn", ""))) for t in profile.get("throttled_mailboxes") or []]
    return {
        "available": True,
        "sources": table(source_rows(profile), SOURCE_COLUMNS, tz, text),
        "holes": table(hole_rows(profile), HOLE_COLUMNS, tz, text),
        "periods": table((scope or {}).get("unverifiable_periods") or [], PERIOD_COLUMNS, tz, text),
        "cannot_prove": [text(str(s)) for s in profile.get("cannot_prove") or []],
        "throttled": throttled,
        "without_token": int(profile.get("mail_records_without_token") or 0),
    }
