"""AD FS audit coverage: when the absence of an AD FS issuance means something (Golden SAML).

No identifier is shared by an AD FS audit event and the Entra sign-in its token led to, so a
federated sign-in is matched to its issuance by user, time and address only, and "no issuance found"
proves something only where the case holds the AD FS audit log for that moment: between the first
and the last AD FS issuance audit (1200/1202, or 299/412 of AD FS 2012 R2) held, outside the holes the
evidence profile found in the ``windows_event`` source (its hour-of-week rhythm, gaps between files).
Everywhere else the same sign-in is "unverifiable". Which users AD FS serves is judged in the pack
(family/golden-saml.yaml): a user AD FS issued a token to, or one of a domain whose users it did.

Not visible here and so written into every explanation: a farm of several AD FS servers whose
logs were not all exported, and an audit level of None, leave issuances out that did happen.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ir_toolkit.analysis.coverage import covered_sql, uncovered
from ir_toolkit.analysis.engine import Engine

# operation prefixes (ir_toolkit.sources.windows names AD FS audits "<EventID> - AD FS ...")
ISSUANCE_PREFIXES = ("1200 - AD FS", "1202 - AD FS", "299 - AD FS", "412 - AD FS")


# a sign-in with a token AD FS issued, in the spellings of Graph and Log Analytics (family/golden-saml.yaml reads more)
FEDERATED_RAW = ("(raw LIKE '%\"tokenIssuerType\":\"ADFederationServices\"%' "
                 "OR raw LIKE '%\"TokenIssuerType\":\"ADFederationServices\"%')")


def issuance_terms() -> str:
    """SQL predicate over a windows_event row's ``operation``: an AD FS audit of a token issued."""
    return "(" + " OR ".join(f"operation LIKE '{p}%'" for p in ISSUANCE_PREFIXES) + ")"


def issuance_sql() -> str:
    """SQL predicate over ``events``: an AD FS audit of a token issued."""
    return f"source = 'windows_event' AND {issuance_terms()}"


def adfs_coverage(engine: Engine, profile: dict[str, Any], match_minutes: int) -> dict[str, Any]:
    """The period the AD FS issuance audits cover and the holes in it.

    Args:
        engine: An engine with the ``events`` view.
        profile: The evidence profile (its ``windows_event`` holes are the holes of this coverage).
        match_minutes: How far from a sign-in its issuance may lie (the margin at the edges and holes).

    Returns:
        ``{"start", "end", "events", "holes", "uncovered": [(lo, hi)]}``; start and end None
        when the case holds no AD FS issuance audit (then everything is uncovered).
    """
    row = engine.run_sql(f"SELECT min(time) AS first, max(time) AS last, count(*) AS n FROM events "
                         f"WHERE {issuance_sql()}").iloc[0]
    held = int(row["n"] or 0) > 0
    holes = list((profile.get("sources", {}).get("windows_event") or {}).get("holes") or [])
    spans = {"adfs": {"start": row["first"], "end": row["last"], "holes": holes}} if held else {}
    skew = pd.Timedelta(minutes=match_minutes)
    return {"start": row["first"] if held else None, "end": row["last"] if held else None,
            "events": int(row["n"] or 0), "holes": holes, "uncovered": uncovered(spans, ("adfs",), skew)}


def adfs_covered_sql(coverage: dict[str, Any], column: str) -> str:
    """SQL predicate: the time ``column`` lies inside AD FS audit coverage (FALSE when none is held)."""
    return covered_sql(coverage["uncovered"], column, column)
