"""Sign-in coverage: the period in which a token's issuance would be visible in the case.

An orphan token (mail access whose token no sign-in issued) only means "forged" inside
the period the case's sign-in logs cover; outside it the same observation is
"unverifiable". Coverage is computed per sign-in source from the events themselves and,
for collected cases, from the collection ledger (``case.manifest["collection"]["ledger"]``:
complete slices define coverage, incomplete ones are gaps). Imported cases have an empty
ledger and rely on the data alone.

The case-wide coverage used by the orphan-token detection is the overlap of the user
sign-in sources present (interactive and non-interactive): a refreshed token's issuance
is a non-interactive sign-in, so without that source coverage is marked incomplete.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ir_toolkit.analysis.engine import Engine
from ir_toolkit.case import Case
from ir_toolkit.schema import SIGNIN_SOURCES
from ir_toolkit.timeutil import iso, parse_time

USER_SIGNIN_SOURCES = ("signin_interactive", "signin_noninteractive")


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


def _ledger_coverage(ledger: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in ledger:
        source = ledger_source(str(entry.get("source", "")))
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


def signin_coverage(case: Case, engine: Engine, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sign-in coverage per source and case-wide.

    Args:
        case: The case (its ledger is read from the manifest).
        engine: An engine with the ``events`` view.
        params: ``coverage_start`` / ``coverage_end`` override the computed case-wide bounds.

    Returns:
        ``{"start", "end", "judge_start", "judge_end", "sp_start", "sp_end", "complete", "method", "gaps",
        "sources": {source: {"start", "end", "events", "method"}}}``; times are tz-aware ``pd.Timestamp``
        (None when no coverage). ``judge_*`` is the user coverage used to call a token forged: None when
        non-interactive sign-ins are missing (``require_noninteractive``); ``sp_*`` covers app-only tokens.
    """
    params = params or {}
    names = ", ".join(f"'{s}'" for s in SIGNIN_SOURCES)
    data = engine.run_sql(
        f"SELECT source, min(time) AS first, max(time) AS last, count(*) AS n FROM events "
        f"WHERE source IN ({names}) GROUP BY source"
    )
    ledger = _ledger_coverage(list(case.manifest.get("collection", {}).get("ledger", []) or []))
    sources: dict[str, dict[str, Any]] = {}
    for row in data.itertuples(index=False):
        sources[str(row.source)] = {"start": row.first, "end": row.last, "events": int(str(row.n)), "method": "data"}
    gaps: list[dict[str, Any]] = []
    for source, cov in ledger.items():
        gaps += [{**g, "source": source} for g in cov["gaps"]]
        if cov["start"] is not None:
            entry = sources.setdefault(source, {"events": 0})
            entry.update(start=cov["start"], end=cov["end"], method="ledger")
    present = [s for s in USER_SIGNIN_SOURCES if s in sources]
    start = max((sources[s]["start"] for s in present), default=None)
    end = min((sources[s]["end"] for s in present), default=None)
    method = "+".join(sorted({sources[s]["method"] for s in present})) or "none"
    if params.get("coverage_start"):
        start, method = parse_time(params["coverage_start"]), "parameter"
    if params.get("coverage_end"):
        end, method = parse_time(params["coverage_end"]), "parameter"
    sp = sources.get("signin_serviceprincipal", {})
    complete = len(present) == len(USER_SIGNIN_SOURCES)
    judged = complete or not params.get("require_noninteractive", True) or method == "parameter"
    return {
        "start": start,
        "end": end,
        "judge_start": start if judged else None,
        "judge_end": end if judged else None,
        "sp_start": sp.get("start"),
        "sp_end": sp.get("end"),
        "complete": complete,
        "method": method,
        "gaps": gaps,
        "sources": sources,
    }


def coverage_json(cov: dict[str, Any]) -> dict[str, Any]:
    """The coverage dict with ISO strings instead of timestamps (for scope.json)."""
    def conv(v: Any) -> Any:
        if isinstance(v, pd.Timestamp):
            return iso(v)
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return {str(k): conv(v) for k, v in cov.items()}
