"""Put token verdicts into a case, and write result tables safely.

Each judged token becomes one canonical event (source ``token``) whose ``token_id``
is the token's ``uti`` and ``session_id`` its ``sid``: the same columns sign-ins and
MailItemsAccessed records fill, so a forged token links to every sign-in and mail
access that used it with a plain join. ``raw`` holds the header, the claims and the
verdict, never the signature, so nothing stored can be replayed.

Forged tokens and tokens with invalid signatures become findings in
``CASE/token_findings.parquet`` (and ``.json``), with the events sharing their uti or sid.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ir_toolkit.case import Case
from ir_toolkit.case.manifest import sha256_file
from ir_toolkit.errors import UserError
from ir_toolkit.schema import FINDING_COLUMNS, conform, to_arrow
from ir_toolkit.textsafe import csv_safe_column
from ir_toolkit.timeutil import parse_time

log = logging.getLogger(__name__)

FINDINGS_FILE = "token_findings"
"""CASE/token_findings.parquet and .json (CASE/findings.* belong to ``detect``)."""

FINDING_RULES: dict[str, dict[str, str]] = {
    "forged": {"detection": "token-forged", "title": "Forged access token", "severity": "critical",
               "verdict": "confirmed"},
    "invalid_signature": {"detection": "token-invalid-signature", "title": "Token with an invalid signature",
                          "severity": "high", "verdict": "likely"},
}
"""Token verdicts that make a finding, verdict NAME -> finding fields."""
TECHNIQUES = ["T1606", "T1550.001"]  # Forge Web Credentials; Application Access Token


def _lower(v: Any) -> str | None:
    return v.lower() if isinstance(v, str) and v else None


def token_events(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Canonical events (source ``token``) for judged tokens.

    Columns filled: time (iat, else first HAR sighting), source, operation ("Token observed"), result
    (the verdict), user (upn/unique_name/preferred_username, lower), user_id (oid), app_id (appid/azp),
    resource_id (aud), ip (ipaddr claim), session_id (sid), token_id (uti), token_issued_at (iat), target
    (the signing key's kid), record_id (``token:`` + fingerprint), evidence (first location), raw.
    """
    rows = []
    for r in results:
        c = r["all_claims"]
        iat = parse_time(c.get("iat")) if isinstance(c.get("iat"), int | float) else None
        raw = {"fingerprint": r["fingerprint"], "verdict": r["verdict"], "signature": r["signature"],
               "key": r.get("key"), "reasons": r["reasons"], "checks": r.get("checks"), "header": r.get("header"),
               "claims": c, "occurrences": r.get("occurrences"), "locations": r.get("locations")}
        aud = c.get("aud")
        rows.append({
            "time": iat or parse_time(r.get("first_seen")),
            "source": "token", "operation": "Token observed", "result": r["verdict"],
            "user": _lower(c.get("upn") or c.get("unique_name") or c.get("preferred_username")),
            "user_id": c.get("oid") if isinstance(c.get("oid"), str) else None,
            "app_id": _lower(c.get("appid") or c.get("azp")),
            "resource_id": aud if isinstance(aud, str) else (",".join(map(str, aud)) if aud else None),
            "ip": c.get("ipaddr") if isinstance(c.get("ipaddr"), str) else None,
            "session_id": c.get("sid") if isinstance(c.get("sid"), str) else None,
            "token_id": c.get("uti") if isinstance(c.get("uti"), str) else None,
            "token_issued_at": iat,
            "target": (r.get("key") or {}).get("kid"),
            "record_id": f"token:{r['fingerprint']}",
            "evidence": (r.get("locations") or [None])[0],
            "raw": json.dumps(raw, default=str, sort_keys=True),
        })
    return conform(pd.DataFrame(rows))


def _linked(case: Case, token_ids: list[str], session_ids: list[str]) -> pd.DataFrame:
    """Case events (not from token scans) sharing a uti or sid with the given tokens."""
    if not token_ids and not session_ids:
        return pd.DataFrame(columns=["time", "source", "record_id", "mailbox", "token_id", "session_id"])
    con = case.duckdb()
    sql = ("SELECT time, source, record_id, mailbox, token_id, session_id FROM events WHERE source <> 'token' "
           "AND (list_contains(?, token_id) OR list_contains(?, session_id))")
    return con.execute(sql, [token_ids, session_ids]).df()


def token_findings(case: Case, results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Findings (FINDING_COLUMNS) for forged and invalid-signature tokens, linked to case events."""
    bad = [r for r in results if r["verdict"] in FINDING_RULES]
    utis = [u for r in bad if isinstance(u := r["all_claims"].get("uti"), str)]
    sids = [s for r in bad if isinstance(s := r["all_claims"].get("sid"), str)]
    linked = _linked(case, utis, sids)
    rows = []
    for r in bad:
        rule, c = FINDING_RULES[r["verdict"]], r["all_claims"]
        mine = linked[(linked["token_id"] == c.get("uti")) | (linked["session_id"] == c.get("sid"))] \
            if not linked.empty else linked
        iat = parse_time(c.get("iat")) if isinstance(c.get("iat"), int | float) else None
        times = [t for t in [iat, *pd.to_datetime(mine["time"], utc=True).tolist()] if t is not None and t == t]
        mailboxes = sorted({m for m in mine["mailbox"].dropna()}) if not mine.empty else []
        explanation = (f"token {r['fingerprint']} is {r['verdict'].replace('_', ' ')}: {r['summary']}"
                       f"; seen {r.get('occurrences', 1)} time(s), first at {(r.get('locations') or ['?'])[0]}; "
                       f"{len(mine)} case event(s) share its uti/sid")
        rows.append({
            "finding_id": f"{rule['detection']}:{hashlib.sha1(r['fingerprint'].encode()).hexdigest()[:16]}",
            **{k: rule[k] for k in ("detection", "title", "severity", "verdict")},
            "first": min(times) if times else None, "last": max(times) if times else None,
            "mailbox": ", ".join(mailboxes) or None,
            "user": _lower(c.get("upn") or c.get("unique_name") or c.get("preferred_username")),
            "ip": c.get("ipaddr") if isinstance(c.get("ipaddr"), str) else None,
            "app_id": _lower(c.get("appid") or c.get("azp")),
            "token_id": c.get("uti") if isinstance(c.get("uti"), str) else None,
            "session_id": c.get("sid") if isinstance(c.get("sid"), str) else None,
            "events": len(mine), "explanation": explanation, "techniques": TECHNIQUES,
            "evidence": [f"token:{r['fingerprint']}", *mine["record_id"].astype(str).tolist()],
        })
    return conform(pd.DataFrame(rows), FINDING_COLUMNS) if rows else conform(pd.DataFrame(), FINDING_COLUMNS)


def record_in_case(case: Case, results: Sequence[dict[str, Any]], files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Store token events and findings in ``case`` and log the scan in the custody log.

    The scanned files are hashed into the custody log but not copied into the case: they hold
    live tokens, which the case must not store.

    Returns:
        {"events_stored", "events_duplicate", "findings", "findings_file"}.
    """
    stored, dup = case.write_events(token_events(results), tag="tokens")
    new = token_findings(case, results)
    path = case.root / f"{FINDINGS_FILE}.parquet"
    if path.exists():
        old = pd.read_parquet(path)
        new = pd.concat([old[~old["finding_id"].isin(new["finding_id"])], new], ignore_index=True)
    new = conform(new, FINDING_COLUMNS)
    verdicts = pd.Series([r["verdict"] for r in results], dtype=object).value_counts().to_dict()
    with case.recording("token.scan", files=[{"path": str(f), "sha256": sha256_file(Path(f))} for f in files],
                        judged=len(results), verdicts=verdicts, events_stored=stored, findings=len(new)) as w:
        pq.write_table(to_arrow(new, FINDING_COLUMNS), w.path(path))
        w.path(case.root / f"{FINDINGS_FILE}.json").write_text(
            new.to_json(orient="records", date_format="iso", indent=2), encoding="utf-8")
    return {"events_stored": stored, "events_duplicate": dup, "findings": len(new), "findings_file": str(path)}


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a results table as .csv (formula-safe), .jsonl or .json.

    Raises:
        UserError: for another extension or an unwritable path.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            frame.apply(csv_safe_column).to_csv(p, index=False)
        elif suffix == ".jsonl":
            frame.to_json(p, orient="records", lines=True)
        elif suffix == ".json":
            frame.to_json(p, orient="records", indent=2)
        else:
            raise UserError(f"{p}: write results as .csv, .jsonl or .json")
    except OSError as exc:
        raise UserError(f"{p}: cannot write ({exc.strerror})") from None
    return p
