"""The evidence profile of a case: what each source holds, from when to when, its holes, and what
the case therefore cannot prove. Every verdict reads it (ir_toolkit.analysis.coverage).

Per log source: events, first and last event, the holes inside (from the data's own hour-of-week
rhythm, from gaps between evidence files, from the collection ledger, and, for user sign-ins,
from everyday tokens that no sign-in issued), the retention edge it starts at. Across sources:
which are absent, which mailboxes had Bind logging throttled, and one sentence per limit
(:data:`LIMITS`) that the absent or holed sources put on the conclusions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ir_toolkit.analysis.adfs import FEDERATED_RAW, issuance_terms
from ir_toolkit.analysis.coverage import ledger_coverage
from ir_toolkit.analysis.engine import Engine
from ir_toolkit.analysis.holes import file_split_holes, holes_json, merge_holes, rhythm_holes
from ir_toolkit.case import Case
from ir_toolkit.schema import SOURCES
from ir_toolkit.sqltext import literal
from ir_toolkit.timeutil import iso, parse_time

# Sources whose period and holes matter (tenant snapshots carry object creation dates, not activity).
LOG_SOURCES = ("signin_interactive", "signin_noninteractive", "signin_serviceprincipal", "signin_managedidentity",
               "directory_audit", "mail_access", "audit_other", "graph_activity", "risk_detection", "windows_event")
# Sources a token-forgery case needs; the managed-identity log is only asked for when app-only access
# by an application no service-principal sign-in knows is seen.
EXPECTED = ("signin_interactive", "signin_noninteractive", "signin_serviceprincipal", "directory_audit",
            "mail_access", "audit_other")
RETENTION_DAYS = {"signin_interactive": 30, "signin_noninteractive": 30, "signin_serviceprincipal": 30,
                  "signin_managedidentity": 30, "directory_audit": 30, "mail_access": 180, "audit_other": 180}
INFERRED_MIN_TOKENS = 3          # everyday tokens without a sign-in that make an inferred hole
INFERRED_MIN_USERS = 2

# What each missing piece of evidence makes impossible to prove: NAME -> DESCRIPTION.
LIMITS: dict[str, str] = {
    "no_user_signins": "No user sign-ins were provided: no delegated token can be checked against its issuance, so "
                       "forged tokens cannot be told from legitimate ones; addresses are judged from the mailboxes' "
                       "own access history instead.",
    "no_signin_noninteractive": "No non-interactive sign-ins were provided: refreshed tokens cannot be matched to "
                                "their issuance, so delegated mailbox access is likely at most, never confirmed "
                                "forged.",
    "no_signin_interactive": "No interactive sign-ins were provided: tokens issued at an interactive sign-in cannot "
                             "be matched, so delegated mailbox access is likely at most, never confirmed forged.",
    "no_signin_serviceprincipal": "No service-principal sign-ins were provided: app-only tokens (backup services, "
                                  "abused applications) cannot be checked against their issuance.",
    "no_mail_access": "No MailItemsAccessed records were provided: which mailboxes and messages were read cannot be "
                      "determined.",
    "no_directory_audit": "No directory audit log was provided: consent grants, credentials added to applications "
                          "and federation changes cannot be seen.",
    "no_audit_other": "No other unified audit log records were provided: inbox rules, deletions and mailbox "
                      "permission changes cannot be seen.",
    "signin_holes": "Sign-in logs have holes: a token issued inside one is unverifiable, never forged.",
    "mail_holes": "The mailbox audit log has holes: access in those periods is unknown, so the scope may be "
                  "incomplete.",
    "mail_after_others": "The mailbox audit log begins more than a day after the sign-in or directory audit logs: "
                         "mailbox access before it is unknown, so the intrusion may have begun before the window "
                         "and other mailboxes may have been read.",
    "throttled": "Bind logging was throttled for some mailboxes: more items may have been read than are counted.",
    "before_signins": "Mailbox access before the sign-in logs begin cannot be checked against sign-ins.",
    "missing_context": "Some mailbox access records carry no token id (AppAccessContext): those are matched only by "
                       "user, address and application, which never proves forgery.",
    "no_adfs_audit": "Federated sign-ins (tokens AD FS issued) are held but no AD FS audit events: a sign-in with a "
                     "forged SAML token (Golden SAML) cannot be told from an ordinary one; export the Security log of "
                     "every AD FS server.",
}


def hourly_and_files(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per log source, events per hour (source, hour, events, first, last) and per evidence file (source, file,
    first, last, events), in one scan of the store (``GROUPING SETS``: two scans before, 2026-12-08).

    A row of the hourly set has an hour (every event counted has a time); a row of the file set has none.
    """
    names = literal(list(LOG_SOURCES))
    both = engine.run_sql(
        f"SELECT source, date_trunc('hour', time) AS hour, split_part(evidence, '#', 1) AS file, count(*) AS events, "
        f"min(time) AS first, max(time) AS last FROM events WHERE source IN ({names}) AND time IS NOT NULL "
        f"GROUP BY GROUPING SETS ((source, date_trunc('hour', time)), (source, split_part(evidence, '#', 1)))")
    by_hour = both["hour"].notna()
    hourly = both.loc[by_hour, ["source", "hour", "events", "first", "last"]].reset_index(drop=True)
    files = both.loc[~by_hour, ["source", "file", "first", "last", "events"]].reset_index(drop=True)
    return hourly, files


def inferred_signin_holes(engine: Engine, lifetime_minutes: int = 90, since: pd.Timestamp | None = None,
                          until: pd.Timestamp | None = None) -> list[dict[str, Any]]:
    """Holes in the user sign-in logs shown by the mailbox log: everyday tokens no sign-in issued.

    A delegated token used by the mailbox's owner, with an application and from an address that the
    same user's issued tokens also use, looks like the user's ordinary client. When several such
    tokens (``INFERRED_MIN_TOKENS``, from ``INFERRED_MIN_USERS`` users) were issued close together and
    no sign-in issued any of them, the sign-in export is missing that period: a hole, not a forgery.
    Only tokens issued between ``since`` and ``until`` (the sign-in logs' own period) count.
    """
    signins = literal(["signin_interactive", "signin_noninteractive"])
    rows = engine.run_sql(f"""
        WITH issued AS (SELECT DISTINCT token_id FROM events WHERE source IN ({signins}) AND token_id IS NOT NULL),
        acc AS (SELECT a.user, lower(coalesce(a.client_app_id, a.app_id)) AS app, a.ip, a.token_id,
                       coalesce(a.token_issued_at, a.time) AS issued_at,
                       CASE WHEN i.token_id IS NULL THEN 0 ELSE 1 END AS matched
                FROM events a LEFT JOIN issued i ON i.token_id = a.token_id
                WHERE a.source = 'mail_access' AND a.token_id IS NOT NULL AND a.user LIKE '%@%'),
        fam_app AS (SELECT DISTINCT user, app FROM acc WHERE matched = 1),
        fam_ip AS (SELECT DISTINCT user, ip FROM acc WHERE matched = 1)
        SELECT acc.token_id, min(acc.user) AS user, min(acc.issued_at) AS issued_at
        FROM acc JOIN fam_app fa ON fa.user = acc.user AND fa.app = acc.app
                 JOIN fam_ip fi ON fi.user = acc.user AND fi.ip = acc.ip
        WHERE acc.matched = 0 GROUP BY acc.token_id""")
    if since is not None:
        rows = rows[rows["issued_at"] > since]
    if until is not None:
        rows = rows[rows["issued_at"] < until]
    if rows.empty:
        return []
    rows = rows.sort_values("issued_at")
    gap = pd.Timedelta(minutes=lifetime_minutes)
    clusters: list[list[Any]] = []
    for rec in rows.itertuples(index=False):
        if clusters and rec.issued_at - clusters[-1][-1].issued_at <= gap:
            clusters[-1].append(rec)
        else:
            clusters.append([rec])
    holes = []
    for c in clusters:
        users = {r.user for r in c}
        if len(c) >= INFERRED_MIN_TOKENS and len(users) >= INFERRED_MIN_USERS:
            start, end = c[0].issued_at - gap, c[-1].issued_at + gap
            holes.append({"start": start, "end": end, "hours": round((end - start) / pd.Timedelta(hours=1), 1),
                          "expected": float(len(c)), "observed": 0, "method": "mailbox_tokens",
                          "reason": f"{len(c)} everyday token(s) of {len(users)} user(s), used with their usual "
                                    "application and address, were issued here and no sign-in holds them"})
    return holes


def ledger_holes(case: Case) -> dict[str, list[dict[str, Any]]]:
    """Incomplete collection slices of the ledger, per canonical source."""
    ledger = list(case.manifest.get("collection", {}).get("ledger", []) or [])
    return {src: [{"start": parse_time(g["start"]), "end": parse_time(g["end"]), "hours": None, "expected": None,
                   "observed": None, "method": "ledger", "reason": g["reason"]} for g in cov["gaps"]]
            for src, cov in ledger_coverage(ledger).items()}


def source_profiles(case: Case, engine: Engine, lifetime_minutes: int = 90) -> dict[str, dict[str, Any]]:
    """Per held source: events, first, last (tz-aware), holes (merged, tz-aware), files."""
    hourly, files = hourly_and_files(engine)
    ledger = ledger_holes(case)
    out: dict[str, dict[str, Any]] = {}
    for source, group in hourly.groupby("source"):
        src = str(source)
        fl = files[files["source"] == src]
        holes = rhythm_holes(group) + file_split_holes(group, fl)
        holes += ledger.get(src, [])
        out[src] = {"events": int(group["events"].sum()), "first": group["first"].min(), "last": group["last"].max(),
                    "files": int(len(fl)), "holes": holes}
    users = [out[s] for s in ("signin_interactive", "signin_noninteractive") if s in out]
    if users:
        since, until = max(u["first"] for u in users), min(u["last"] for u in users)
        _attribute(out, inferred_signin_holes(engine, lifetime_minutes, since, until))
    for prof in out.values():
        prof["holes"] = merge_holes(prof["holes"])
    return out


def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["start"] <= b["end"] and b["start"] <= a["end"])


def _attribute(held: dict[str, dict[str, Any]], inferred: list[dict[str, Any]]) -> None:
    """Add holes inferred from the mailbox log to the user sign-in sources.

    Only inside a source's own period (before or after it, nothing is expected anyway); to the
    source whose own holes it overlaps, or, when neither shows one, to both (which lost it is unknown).
    """
    users = [s for s in ("signin_interactive", "signin_noninteractive") if s in held]
    for hole in inferred:
        inside = [s for s in users if hole["start"] < held[s]["last"] and hole["end"] > held[s]["first"]]
        known = [s for s in inside if any(_overlaps(hole, h) for h in held[s]["holes"])]
        for src in known or inside:
            clipped = {**hole, "start": max(hole["start"], held[src]["first"]),
                       "end": min(hole["end"], held[src]["last"])}
            held[src]["holes"] = held[src]["holes"] + [clipped]


def _facts(engine: Engine) -> dict[str, Any]:
    mail = engine.run_sql(
        "SELECT count(*) AS n, sum(CASE WHEN token_id IS NULL THEN 1 ELSE 0 END) AS no_token FROM events "
        "WHERE source = 'mail_access'")
    throttled = engine.run_sql(
        "SELECT mailbox, min(time) AS first FROM events WHERE source = 'mail_access' AND throttled "
        "AND mailbox IS NOT NULL GROUP BY mailbox ORDER BY mailbox")
    adfs = engine.run_sql(  # AD FS issuance audits and federated interactive sign-ins
        f"SELECT sum(CASE WHEN source = 'windows_event' AND {issuance_terms()} THEN 1 ELSE 0 END) AS audits, "
        f"sum(CASE WHEN source = 'signin_interactive' AND {FEDERATED_RAW} THEN 1 ELSE 0 END) AS federated "
        "FROM events WHERE source IN ('windows_event', 'signin_interactive')")
    return {"mail": int(mail["n"].iloc[0] or 0), "no_token": int(mail["no_token"].iloc[0] or 0),
            "throttled": [{"upn": str(r.mailbox), "first": iso(r.first)} for r in throttled.itertuples(index=False)],
            "adfs_audits": int(adfs["audits"].iloc[0] or 0), "federated_signins": int(adfs["federated"].iloc[0] or 0)}


def _limits(held: dict[str, dict[str, Any]], facts: dict[str, Any]) -> list[str]:
    names: list[str] = []
    users = [s for s in ("signin_interactive", "signin_noninteractive") if s in held]
    if not users:
        names.append("no_user_signins")
    else:
        names += [f"no_{s}" for s in ("signin_noninteractive", "signin_interactive") if s not in held]
    names += [f"no_{s}" for s in ("signin_serviceprincipal", "mail_access", "directory_audit", "audit_other")
              if s not in held]
    if any(held[s]["holes"] for s in held if s.startswith("signin_")):
        names.append("signin_holes")
    if "mail_access" in held and held["mail_access"]["holes"]:
        names.append("mail_holes")
    others = [held[s]["first"] for s in (*users, "directory_audit") if s in held]
    if "mail_access" in held and others and held["mail_access"]["first"] > min(others) + pd.Timedelta(days=1):
        names.append("mail_after_others")
    if facts["throttled"]:
        names.append("throttled")
    if users and "mail_access" in held and held["mail_access"]["first"] < max(held[s]["first"] for s in users):
        names.append("before_signins")
    if facts["no_token"]:
        names.append("missing_context")
    if facts["federated_signins"] and not facts["adfs_audits"]:
        names.append("no_adfs_audit")
    return names


def evidence_profile(case: Case, engine: Engine, lifetime_minutes: int = 90) -> dict[str, Any]:
    """What the case holds and what it cannot prove (times tz-aware; see :func:`profile_json`).

    Returns:
        ``{"sources": {source: {"description", "held", "events", "first", "last", "files", "holes",
        "retention"}}, "absent": [...], "throttled_mailboxes": [...], "limits": [NAME...],
        "cannot_prove": [sentence...], "mail_records_without_token": n}``.
    """
    held = source_profiles(case, engine, lifetime_minutes)
    facts = _facts(engine)
    newest = max((p["last"] for p in held.values()), default=None)
    sources: dict[str, dict[str, Any]] = {}
    for src in dict.fromkeys([*EXPECTED, *held]):
        prof = held.get(src)
        entry: dict[str, Any] = {"description": SOURCES.get(src, src), "held": prof is not None}
        if prof is not None:
            entry.update(prof)
            days = RETENTION_DAYS.get(src)
            span = (newest - prof["first"]) / pd.Timedelta(days=1) if newest is not None else 0
            if days and span >= days - 1:
                entry["retention"] = (f"starts {span:.0f} days before the newest event: Microsoft keeps about {days} "
                                      "days of it, so earlier records may be gone")
        sources[src] = entry
    names = _limits(held, facts)
    return {"sources": sources, "absent": [s for s in EXPECTED if s not in held],
            "throttled_mailboxes": facts["throttled"], "limits": names,
            "cannot_prove": [LIMITS[n] for n in names],
            "mail_records_without_token": facts["no_token"], "mail_records": facts["mail"]}


def profile_json(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile with ISO times (scope.json ``evidence``, ``ir-toolkit evidence --json``)."""
    sources = {}
    for src, entry in profile["sources"].items():
        e = dict(entry)
        if e.get("held"):
            e["first"], e["last"] = iso(e["first"]), iso(e["last"])
            e["holes"] = holes_json(e["holes"])
        sources[src] = e
    return {**profile, "sources": sources}
