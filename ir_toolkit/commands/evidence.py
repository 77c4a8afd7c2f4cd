"""`ir-toolkit evidence`: what the case holds, its holes, and what it cannot prove (issue 14).

``--json`` prints :func:`ir_toolkit.analysis.evidence.profile_json` of the profile; without it a
readable summary: one line per source, one per hole, then the sentences of what the case cannot prove.
"""

from __future__ import annotations

import argparse
from typing import Any

from ir_toolkit.commands.common import emit


def _when(value: Any) -> str:
    from ir_toolkit.report.display import fmt

    return fmt(value, "UTC").replace(" UTC", "Z") or "?"


def summary_text(case_id: str, profile: dict[str, Any]) -> str:
    """The readable summary of a JSON-ready profile (times in UTC)."""
    from ir_toolkit.report.evidence import hole_rows, source_rows

    rows = source_rows(profile)
    width = max((len(r["source"]) for r in rows), default=10)
    lines = [f"case {case_id}: evidence profile (times UTC)"]
    for r in rows:
        if r["held"] != "held":
            lines.append(f"  {r['source']:<{width}}  absent")
            continue
        line = (f"  {r['source']:<{width}}  held    {r['events']:>9} events  {_when(r['first'])} .. "
                f"{_when(r['last'])}  {r['holes']} hole(s)")
        lines.append(line + (f"  [{r['retention']}]" if r["retention"] else ""))
    holes = hole_rows(profile)
    lines.append(f"holes: {len(holes)}" if holes else "holes: none found")
    lines += [f"  {h['source']}  {_when(h['start'])} .. {_when(h['end'])}  {float(h['hours'] or 0):.1f} h  "
              f"{h['method']}: {h['why']}" for h in holes]
    throttled = [str(t.get("upn")) for t in profile.get("throttled_mailboxes") or []]
    if throttled:
        lines.append(f"Bind logging throttled: {', '.join(throttled)}")
    sentences = list(profile.get("cannot_prove") or [])
    lines.append("This case cannot prove:" if sentences else
                 "This case cannot prove: nothing the toolkit checks for is missing")
    lines += [f"  - {s}" for s in sentences]
    return "\n".join(lines)


def cmd_evidence(args: argparse.Namespace) -> int:
    from ir_toolkit.arguments import number_in

    number_in("--token-lifetime-minutes", args.lifetime_minutes, 1, 1440)  # as the pack's token_lifetime_minutes
    from ir_toolkit.analysis.engine import DuckDBEngine
    from ir_toolkit.analysis.evidence import evidence_profile, profile_json
    from ir_toolkit.case import Case

    case = Case.open(args.case)
    doc = profile_json(evidence_profile(case, DuckDBEngine(case), args.lifetime_minutes))
    emit(args, doc, summary_text(str(case.manifest.get("case")), doc))
    return 0


def add_parser(sub: Any) -> None:
    """Register the ``evidence`` verb."""
    ev = sub.add_parser("evidence", help="what the case holds, its holes, and what it cannot prove")
    ev.add_argument("case", metavar="CASE")
    ev.add_argument("--token-lifetime-minutes", dest="lifetime_minutes", type=int, default=90, metavar="N",
                    help="token lifetime for holes inferred from the mailbox log (default 90)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_evidence)
