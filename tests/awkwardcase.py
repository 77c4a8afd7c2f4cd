"""A case built of the names, addresses and paths redaction finds hardest (issue 17).

Tenant named by its GUID; a CJK name of two characters; O’Brien with a curly apostrophe
(and O'Brien straight); "Last, First"; first and last names alone; DOMAIN\\user; bare local
parts; a URL-encoded UPN; the organisation's name with a space; private addresses followed
by punctuation; the tenant's office address (many sign-ins, also named by a finding that is not
the actor's); message ids; absolute local paths and the examiner's user@host in the custody log.
Built with the real Case API plus findings.json and scope.json written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ir_toolkit.case import Case
from ir_toolkit.case.manifest import actor
from ir_toolkit.schema import FINDING_COLUMNS, conform, to_arrow

TENANT_ID = "5f2b8c1e-4d3a-4b2c-9e8f-7a6b5c4d3e2f"
DOMAIN = "fabrikam-legal.example"
ORG = "Fabrikam Legal"
WEI = f"wei.wang@{DOMAIN}"  # 王伟
SIOBHAN = f"siobhan.obrien@{DOMAIN}"  # Siobhán O’Brien
THI = f"thi.nguyen@{DOMAIN}"  # Thi Nguyen
OFFICE_IP = "198.51.100.23"
ACTOR_IP = "203.0.113.66"
ACTOR_APP = "Mail Sync Helper"  # the actor's app keeps its name
MESSAGE_LOCAL = "CAF3xk9QzT7=secretLocal"
PATH_POSIX = "/home/jane.examiner/cases/fabrikam/export-signins.json"
PATH_WINDOWS = "C:\\Users\\jdoe\\Desktop\\Fabrikam signins.csv"

#: Every string that must not reach a redacted report (compared case-insensitively).
SECRETS = (
    TENANT_ID, DOMAIN, "fabrikam", "Fabrikam Legal", "王伟", "Siobhán", "O’Brien", "O'Brien", "Obrien", "Thi Nguyen",
    "Nguyen", "thi.nguyen", "siobhan.obrien", "wei.wang", "tnguyen", "siobhan.obrien%40", OFFICE_IP, "10.9.8.7",
    "192.168.1.20", "172.16.5.4", "fd12::9", MESSAGE_LOCAL, "jane.examiner", "jdoe", "/home/", "C:\\Users",
    actor(), "Senior Counsel",
)


def _t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _people() -> list[dict[str, object]]:
    return [
        {"id": "u1", "displayName": "王伟", "givenName": "伟", "surname": "王", "userPrincipalName": WEI,
         "jobTitle": "Partner", "department": "Litigation"},
        {"id": "u2", "displayName": "Siobhán O’Brien", "givenName": "Siobhán", "surname": "O’Brien",
         "userPrincipalName": SIOBHAN, "jobTitle": "Senior Counsel", "department": "Legal"},
        {"id": "u3", "displayName": "Thi Nguyen", "givenName": "Thi", "surname": "Nguyen", "userPrincipalName": THI,
         "jobTitle": "Paralegal", "department": "Legal"},
        {"id": "org", "displayName": ORG, "verifiedDomains": [{"name": DOMAIN}], "tenantId": TENANT_ID},
    ]


def build(root: Path) -> Case:
    """Create the awkward case at ``root`` and return it."""
    case = Case.init(root, tenant=TENANT_ID, case_id="awkward")
    rows: list[dict[str, object]] = []
    for i, person in enumerate(_people()):
        rows.append({"time": _t("2023-06-01T00:00:00"), "source": "tenant_snapshot", "operation": "snapshot",
                     "record_id": f"dir-{i}", "raw": json.dumps(person), "evidence": "raw/imports/directory.json#1"})
    for i in range(30):  # the office: many users sign in from it every day
        upn = (WEI, SIOBHAN, THI)[i % 3]
        rows.append({"time": _t("2023-06-01T08:00:00") + pd.Timedelta(hours=i), "source": "signin_interactive",
                     "operation": "Sign-in", "result": "success", "user": upn, "ip": OFFICE_IP,
                     "user_agent": "Mozilla/5.0", "session_id": f"s{i}", "token_id": f"tok-{i}",
                     "record_id": f"si-{i}", "evidence": f"raw/imports/signins.json#{i}",
                     "raw": json.dumps({"userDisplayName": ("王伟", "Siobhán O’Brien", "Thi Nguyen")[i % 3],
                                        "homeTenantId": TENANT_ID, "ipAddress": OFFICE_IP})})
    rows.append({"time": _t("2023-06-02T09:00:00"), "source": "signin_interactive", "operation": "Sign-in",
                 "result": "success", "user": THI, "ip": "10.9.8.7", "record_id": "si-int",
                 "user_agent": f"Outlook; FABRIKAM\\tnguyen; https://o.example/owa/{SIOBHAN.replace('@', '%40')}/",
                 "raw": "{}", "evidence": "raw/imports/signins.json#99"})
    messages = ((f"<{MESSAGE_LOCAL}@mail.{DOMAIN}>", SIOBHAN), ("<PH3PR10MB1@x.outlook.com>", WEI))
    for i, (mid, box) in enumerate(messages):
        rows.append({"time": _t("2023-06-05T02:00:00") + pd.Timedelta(minutes=i), "source": "mail_access",
                     "operation": "MailItemsAccessed", "result": "success", "user": box, "mailbox": box,
                     "ip": ACTOR_IP, "app_name": ACTOR_APP, "user_agent": "python-requests/2.31",
                     "token_id": "tok-forged", "mail_access_type": "Bind", "items": 1, "message_ids": [mid],
                     "folders": ["\\Inbox\\Thi Nguyen matters"], "record_id": f"ma-{i}", "raw": "{}",
                     "evidence": f"raw/imports/ual.csv#{i}"})
    case.write_events(pd.DataFrame(rows))
    base = {"severity": "high", "user": None, "app_id": None, "session_id": None, "techniques": ["T1606.002"]}
    findings = [
        {**base, "finding_id": "f1", "detection": "orphan-token", "title": "Mail read with a token never issued",
         "verdict": "confirmed", "first": "2023-06-05T02:00:00Z", "last": "2023-06-05T02:01:00Z", "mailbox": SIOBHAN,
         "ip": ACTOR_IP, "token_id": "tok-forged", "events": 2, "evidence": ["ma-0", "ma-1"],
         "explanation": (f"O'Brien's mailbox (Siobhán alone; Nguyen, Thi; 王伟) read from {ACTOR_IP}; internal hops "
                         "10.9.8.7. and (192.168.1.20), 172.16.5.4; fd12::9, owner thi.nguyen of Fabrikam Legal "
                         f"({TENANT_ID}); message <{MESSAGE_LOCAL}@mail.{DOMAIN}>")},
        {**base, "finding_id": "f2", "detection": "new-address", "title": "Mailbox access from a new address",
         "verdict": "possible", "severity": "low", "first": "2023-06-01T08:00:00Z", "last": "2023-06-02T13:00:00Z",
         "mailbox": THI, "ip": OFFICE_IP, "token_id": None, "events": 30, "evidence": ["si-1"],
         "explanation": f"Thi Nguyen signed in from {OFFICE_IP}, not seen before"},
    ]
    frame = conform(pd.DataFrame(findings), FINDING_COLUMNS)
    pq.write_table(to_arrow(frame, FINDING_COLUMNS), root / "findings.parquet")
    scope = {
        "case": "awkward", "generated_at": "2023-06-16T00:00:00Z",
        "window": {"first_malicious": "2023-06-05T02:00:00Z", "last_malicious": "2023-06-05T02:01:00Z"},
        "signin_coverage": {"start": "2023-06-01T08:00:00Z", "end": "2023-06-02T13:00:00Z"},
        "compromised_mailboxes": [{"upn": SIOBHAN, "first": "2023-06-05T02:00:00Z", "last": "2023-06-05T02:00:00Z",
                                   "events": 1, "items_accessed": 1, "confidence": "confirmed",
                                   "reasons": ["orphan token"]},
                                  {"upn": WEI, "first": "2023-06-05T02:01:00Z", "last": "2023-06-05T02:01:00Z",
                                   "events": 1, "items_accessed": 1, "confidence": "confirmed",
                                   "reasons": ["orphan token"]}],
        "actor_ips": [{"ip": ACTOR_IP, "first": "2023-06-05T02:00:00Z", "last": "2023-06-05T02:01:00Z",
                       "events": 2, "reasons": ["orphan token"]}],
        "actor_apps": [{"app_id": "9e4a5442-a5c9-4f6f-b03f-5b9fcaaf24b1", "name": ACTOR_APP}],
        "actor_user_agents": ["python-requests/2.31"],
        "findings_by_detection": {"orphan-token": 1, "new-address": 1},
    }
    (root / "scope.json").write_text(json.dumps(scope), encoding="utf-8")
    case.log_action("evidence.copy", source=PATH_POSIX, also=PATH_WINDOWS, note="copied for Siobhán O’Brien")
    return case
