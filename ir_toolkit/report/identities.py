"""Who and what a case names: the identities redaction replaces and the people the report lists.

Read from the case's events (users and mailboxes, display names in sign-in and audit records,
the tenant's GUIDs), its directory snapshot (people with given name, surname, job title and
department; the organisation's name), its custody log (examiners) and case.json's
``redaction`` block (``domains``, ``names``, ``organisations``, ``internal_networks``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.report.memo import remember
from ir_toolkit.report.patterns import GUID

# Raw fields that hold a person's display name (sign-ins, mailbox audit).
PERSON_FIELDS = ("userDisplayName", "UserDisplayName", "MailboxOwnerDisplayName")
# Raw fields that hold some object's display name (redacted as a whole, never split into parts).
OBJECT_FIELDS = ("DisplayName",)
# Raw fields that hold the tenant's id.
TENANT_FIELDS = ("tenantId", "TenantId", "homeTenantId", "resourceTenantId", "resourceOwnerTenantId",
                 "organizationId", "OrganizationId", "AADTenantId", "ActorContextId", "TargetContextId")
PEOPLE_COLUMNS = ["upn", "display_name", "given_name", "surname", "job_title", "department"]


@dataclass
class Identities:
    """What a case names. Every set holds strings as found (matching is case-insensitive)."""

    domains: set[str] = field(default_factory=set)
    upns: set[str] = field(default_factory=set)
    people: list[tuple[str, str, str]] = field(default_factory=list)  # (display name, given name, surname)
    objects: set[str] = field(default_factory=set)  # display names of objects that may not be people
    orgs: set[str] = field(default_factory=set)
    tenant_ids: set[str] = field(default_factory=set)
    examiners: set[str] = field(default_factory=set)


def _extract(case: Case, fields: tuple[str, ...], like: str, user: str | None = None) -> set[str]:
    """Distinct string values of the raw JSON ``fields`` in records whose raw contains ``like``
    (and, with ``user``, whose user is that UPN)."""
    con = case.duckdb()
    pattern = '"(?:' + "|".join(fields) + r')"\s*:\s*"((?:[^"\\]|\\.)*)"'
    where, params = "raw LIKE ?", [pattern, f"%{like}%"]
    if user is not None:
        where, params = where + " AND lower(user) = ?", [*params, user.lower()]
    rows = con.execute(f"SELECT DISTINCT unnest(regexp_extract_all(raw, ?, 1)) FROM events WHERE {where}",
                       params).fetchall()
    return {json.loads(f'"{r[0]}"') for r in rows if r[0]}


def names_of(case: Case, upn: str) -> set[str]:
    """The display names a person goes by in the case: the directory's and their own sign-ins'."""
    people = directory(case)
    found = {str(n) for n in people.loc[people["upn"] == upn.lower(), "display_name"].dropna()}
    if case.events.sources():
        found |= _extract(case, PERSON_FIELDS, "isplayName", user=upn)
    return found


def directory(case: Case) -> pd.DataFrame:
    """People in the case's directory snapshot and audit targets.

    Returns:
        Columns upn (lower case), display_name, given_name, surname, job_title, department; one row
        per UPN (the fullest record wins); empty when the case holds no directory objects.
    """
    if not case.events.sources():
        return _directory_frame({})

    def people() -> pd.DataFrame:
        rows: dict[str, dict[str, Any]] = {}
        con = case.duckdb()
        for (raw,) in con.sql("SELECT raw FROM events WHERE source IN ('tenant_snapshot', 'directory_audit') "
                              "AND raw LIKE '%userPrincipalName%'").fetchall():
            try:
                _people(json.loads(raw), rows)
            except ValueError:
                continue
        return _directory_frame(rows)

    # the report and the notebooks' report each read it (every directory record's raw JSON, parsed in Python)
    return remember(case, "directory", [], people)


def _directory_frame(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows.values()), columns=PEOPLE_COLUMNS)
    return frame.sort_values("upn").reset_index(drop=True)


def _people(value: Any, rows: dict[str, dict[str, Any]]) -> None:
    if isinstance(value, dict):
        upn = value.get("userPrincipalName")
        if isinstance(upn, str) and upn:
            row = {"upn": upn.lower(), "display_name": value.get("displayName"), "given_name": value.get("givenName"),
                   "surname": value.get("surname"), "job_title": value.get("jobTitle"),
                   "department": value.get("department")}
            old = rows.get(upn.lower(), {})
            rows[upn.lower()] = {k: v if isinstance(v, str) and v else old.get(k) for k, v in row.items()}
        for v in value.values():
            _people(v, rows)
    elif isinstance(value, list):
        for v in value:
            _people(v, rows)


def collect(case: Case) -> Identities:
    """Everything the case names that redaction replaces."""
    extra = case.manifest.get("redaction", {})
    found = Identities()
    found.domains = {case.tenant.lower()} if "." in case.tenant else set()
    found.domains |= {str(d).lower() for d in extra.get("domains", [])}
    found.tenant_ids = {case.tenant.lower()} if GUID.fullmatch(case.tenant) else set()
    found.people = [(str(n), "", "") for n in extra.get("names", [])]
    found.orgs = {str(o) for o in extra.get("organisations", extra.get("organizations", []))}
    found.examiners = {str(e.get("actor")) for e in case.custody() if e.get("actor")}
    if not case.events.sources():
        return found
    con = case.duckdb()
    upns = {r[0] for r in con.sql("SELECT DISTINCT lower(u) FROM (SELECT user AS u FROM events UNION "
                                  "SELECT mailbox FROM events) WHERE u LIKE '%@%'").fetchall() if r[0]}
    people = directory(case)
    found.upns = upns | set(people["upn"])
    found.domains |= {u.split("@", 1)[1] for u in found.upns if "@" in u}
    found.people += [(str(n), "", "") for n in _extract(case, PERSON_FIELDS, "isplayName")]
    found.people += [(str(r.display_name or ""), str(r.given_name or ""), str(r.surname or ""))
                     for r in people.itertuples()]
    found.objects = _extract(case, OBJECT_FIELDS, "DisplayName")
    found.tenant_ids |= {t.lower() for t in _extract(case, TENANT_FIELDS, "-") if GUID.fullmatch(t)}
    orgs = con.sql("SELECT raw FROM events WHERE source = 'tenant_snapshot' AND raw LIKE '%verifiedDomains%'")
    for (raw,) in orgs.fetchall():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("displayName"), str):
            found.orgs.add(doc["displayName"])
    return found
