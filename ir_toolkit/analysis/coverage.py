"""Sign-in coverage: when a token's issuance would be visible in the case, and when it would not.

An orphan token (mail access whose token no sign-in issued) only means "forged" where every
sign-in source that could have issued it is held and gap-free around the token's issue time:
delegated tokens need the interactive and the non-interactive user sign-ins (a refreshed token
is issued at a non-interactive sign-in), app-only tokens the service-principal sign-ins (and the
managed-identity ones, unless the application is known to be a service principal). Everywhere
else the same observation is "unverifiable".

Coverage is built from the evidence profile (ir_toolkit.analysis.evidence: each source's first
and last event and the holes found inside) and, for collected cases, the collection ledger
(``case.manifest["collection"]["ledger"]``: complete slices extend coverage, incomplete ones are
holes). The result is a list of *uncovered* intervals per kind of token, rendered as a SQL
predicate over a token's possible issue period (``issue_lo`` .. ``issue_hi``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ir_toolkit.analysis.engine import sql_literal
from ir_toolkit.timeutil import iso, parse_time

USER_SIGNIN_SOURCES = ("signin_interactive", "signin_noninteractive")
APP_SIGNIN_SOURCES = ("signin_serviceprincipal", "signin_managedidentity")
Interval = tuple[pd.Timestamp | None, pd.Timestamp | None]


def ledger_source(name: str) -> str | None:
    """Map a ledger source name (``signin_interactive``, ``signIns/nonInteractive`` ...) to a canonical source."""
    n = name.lower().replace("_", "").replace("-", "").replace("/", "")
    if "signin" not in n:
        return None
    if "noninteractive" in n:
        return "signin_noninteractive"
    if "serviceprincipal" in n:
        return "signin_serviceprincipal"
    if "managedidentit" in n:
        return "signin_managedidentity"
    return "signin_interactive"


def ledger_coverage(ledger: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per canonical sign-in source: start and end of the complete slices, and the incomplete ones as gaps."""
    out: dict[str, dict[str, Any]] = {}
    for entry in ledger:
        # query sources name the canonical source their rows become; None: not imported, so no coverage
        name = str(entry.get("source", ""))
        source = entry["canonical_source"] if "canonical_source" in entry else ledger_source(name)
        if source is not None and not str(source).startswith("signin_"):
            source = None
        start, end = parse_time(entry.get("slice_start")), parse_time(entry.get("slice_end"))
        if source is None or start is None or end is None:
            continue
        cov = out.setdefault(source, {"start": None, "end": None, "gaps": []})
        if entry.get("complete", True) and not entry.get("gap"):
            cov["start"] = start if cov["start"] is None else min(cov["start"], start)
            cov["end"] = end if cov["end"] is None else max(cov["end"], end)
        else:
            cov["gaps"].append({"start": iso(start), "end": iso(end), "reason": "incomplete collection slice"})
    return out


def _source_spans(profile: dict[str, Any], ledger: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spans: dict[str, dict[str, Any]] = {}
    for src in (*USER_SIGNIN_SOURCES, *APP_SIGNIN_SOURCES):
        entry = profile["sources"].get(src) or {}
        led = ledger.get(src) or {}
        if not entry.get("held") and led.get("start") is None:
            continue
        start, end, method = entry.get("first"), entry.get("last"), "data"
        if led.get("start") is not None:
            start = led["start"] if start is None else min(start, led["start"])
            end = led["end"] if end is None else max(end, led["end"])
            method = "ledger" if not entry.get("held") else "data+ledger"
        spans[src] = {"start": start, "end": end, "events": int(entry.get("events") or 0), "method": method,
                      "holes": list(entry.get("holes") or [])}
    return spans


def uncovered(spans: dict[str, dict[str, Any]], required: tuple[str, ...], skew: pd.Timedelta,
              start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> list[Interval]:
    """Intervals in which a token needing every ``required`` source cannot be checked.

    Args:
        spans: Per source: start, end, holes (from :func:`signin_coverage`).
        required: Sources that could have issued the token.
        skew: Clock skew allowed at the edges of coverage and of each hole.
        start: Overrides every source's start (a responder's ``coverage_start``).
        end: Overrides every source's end.
    """
    if not required or any(s not in spans for s in required):
        return [(None, None)]
    out: list[Interval] = []
    for src in required:
        s, e = start or spans[src]["start"], end or spans[src]["end"]
        out += [(None, s + skew), (e, None)]
        out += [(h["start"] - skew, h["end"] + skew) for h in spans[src]["holes"]]
    return out


def covered_sql(intervals: list[Interval], lo: str = "issue_lo", hi: str = "issue_hi") -> str:
    """SQL predicate: the issue period ``lo`` .. ``hi`` touches none of the uncovered ``intervals``."""
    if any(a is None and b is None for a, b in intervals):
        return "FALSE"
    terms = []
    for a, b in intervals:
        if a is None:
            terms.append(f"{lo} < {sql_literal(b)}")
        elif b is None:
            terms.append(f"{hi} > {sql_literal(a)}")
        else:
            terms.append(f"({hi} > {sql_literal(a)} AND {lo} < {sql_literal(b)})")
    return "NOT (" + " OR ".join(terms) + ")" if terms else "TRUE"


def signin_coverage(case: Any, profile: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sign-in coverage per source and per kind of token.

    Args:
        case: The case (its ledger is read from the manifest).
        profile: The evidence profile (ir_toolkit.analysis.evidence.evidence_profile).
        params: Pack parameters: ``coverage_start`` / ``coverage_end`` override the bounds,
            ``require_noninteractive`` (default True), ``issued_at_skew_minutes``.

    Returns:
        ``{"start", "end", "complete", "method", "judged", "gaps", "sources": {source: {"start", "end",
        "events", "method", "holes"}}, "uncovered": {"delegated", "app_only", "app_only_unknown": [(lo, hi)]},
        "sp_start", "sp_end"}``; ``start``/``end`` is the overlap of the user sign-in sources held.
    """
    params = params or {}
    ledger = ledger_coverage(list(case.manifest.get("collection", {}).get("ledger", []) or []))
    spans = _source_spans(profile, ledger)
    present = [s for s in USER_SIGNIN_SOURCES if s in spans]
    start = max((spans[s]["start"] for s in present), default=None)
    end = min((spans[s]["end"] for s in present), default=None)
    method = "+".join(sorted({spans[s]["method"] for s in present})) or "none"
    o_start, o_end = parse_time(params.get("coverage_start")), parse_time(params.get("coverage_end"))
    if o_start is not None or o_end is not None:
        start, end, method = o_start or start, o_end or end, "parameter"
    complete = len(present) == len(USER_SIGNIN_SOURCES)
    asserted = not params.get("require_noninteractive", True) or method == "parameter"
    delegated: tuple[str, ...] = USER_SIGNIN_SOURCES if complete or not asserted else tuple(present)
    skew = pd.Timedelta(minutes=int(params.get("issued_at_skew_minutes") or 5))
    gaps = [{**h, "source": s} for s in spans for h in spans[s]["holes"]]
    return {
        "start": start, "end": end, "complete": complete, "method": method,
        "judged": bool(present) and (complete or asserted),
        "gaps": sorted(gaps, key=lambda g: (g["start"], g["source"])),
        "sources": spans,
        "uncovered": {
            "delegated": uncovered(spans, delegated, skew, o_start, o_end),
            "app_only": uncovered(spans, ("signin_serviceprincipal",), skew),
            "app_only_unknown": uncovered(spans, APP_SIGNIN_SOURCES, skew),
        },
        "sp_start": spans.get("signin_serviceprincipal", {}).get("start"),
        "sp_end": spans.get("signin_serviceprincipal", {}).get("end"),
    }


def coverage_json(cov: dict[str, Any]) -> dict[str, Any]:
    """The coverage dict with ISO strings instead of timestamps (for scope.json); intervals as pairs."""
    def conv(v: Any) -> Any:
        if isinstance(v, pd.Timestamp):
            return iso(v)
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        return v

    return {str(k): conv(v) for k, v in cov.items()}
