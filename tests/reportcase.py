"""A small hand-built case for the report, playbook and browser tests.

Built with the real Case API (Case.init + write_events) plus a findings.json and a
scope.json written here, so these tests do not depend on the importer, detections or
scoping. Log-derived strings carry script and HTML payloads: each payload, if it ever ran,
would set ``window.pwned`` or ``document.title``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ir_toolkit.case import Case
from ir_toolkit.schema import FINDING_COLUMNS, conform, to_arrow

TENANT = "contoso.onmicrosoft.com"
UPN = "adele.vance@contoso.onmicrosoft.com"
UPN2 = "megan.bowen@contoso.onmicrosoft.com"
DISPLAY_NAMES = ("Adele Vance", "Megan Bowen")
INTERNAL_IPS = ("10.20.30.40", "192.168.7.8", "fd00::1234")
TENANT_EGRESS = "198.51.100.23"  # the tenant's own (public) address: users sign in from it
ACTOR_IP = "203.0.113.66"
PAYLOAD_UA = "<script>document.title='pwned';window.pwned=1</script>"
PAYLOAD_FOLDER = "\\Inbox\\<img src=x onerror=\"window.pwned=2\">"
PAYLOAD_NAME = "<svg onload=\"window.pwned=3\">Ops</svg>"
PAYLOAD_EXPLANATION = "forged token read mail <script>window.pwned=4</script>"
TITLE = "Incident report: breach-test (contoso.onmicrosoft.com)"


def _t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def build(root: Path) -> Case:
    """Create the case at ``root`` and return it."""
    case = Case.init(root, tenant=TENANT, case_id="breach-test")
    signin_raw = json.dumps({"userDisplayName": "Adele Vance", "userPrincipalName": UPN})
    rows = [
        {"time": _t("2023-06-01T08:00:00"), "source": "signin_interactive", "operation": "Sign-in",
         "result": "success", "error_code": 0, "user": UPN, "ip": INTERNAL_IPS[0], "user_agent": "Mozilla/5.0",
         "session_id": "sess-a", "token_id": "tok-issued-1", "record_id": "si-1", "raw": signin_raw,
         "evidence": "raw/imports/signins.json#1"},
        {"time": _t("2023-06-01T09:00:00"), "source": "signin_noninteractive", "operation": "Sign-in",
         "result": "success", "error_code": 0, "user": UPN2, "ip": TENANT_EGRESS, "user_agent": PAYLOAD_UA,
         "session_id": "sess-b", "token_id": "tok-issued-2", "record_id": "si-2",
         "raw": json.dumps({"userDisplayName": "Megan Bowen", "ipAddress": TENANT_EGRESS}),
         "evidence": "raw/imports/signins.json#2"},
        {"time": _t("2023-06-02T10:00:00"), "source": "mail_access", "operation": "MailItemsAccessed",
         "result": "success", "user": UPN, "mailbox": UPN, "ip": INTERNAL_IPS[1], "user_agent": "Outlook",
         "session_id": "sess-a", "token_id": "tok-issued-1", "mail_access_type": "Sync", "items": 1,
         "folders": ["\\Inbox"], "record_id": "ma-0", "raw": "{}", "evidence": "raw/imports/ual.csv#1"},
        {"time": _t("2023-06-05T02:00:00"), "source": "mail_access", "operation": "MailItemsAccessed",
         "result": "success", "user": UPN, "mailbox": UPN, "app_id": "00000002-0000-0ff1-ce00-000000000000",
         "app_name": "<b>Exchange</b>", "ip": ACTOR_IP, "user_agent": PAYLOAD_UA, "token_id": "tok-forged-1",
         "mail_access_type": "Bind", "items": 2, "message_ids": [f"<m1@{TENANT}>", "<m2@example.org>"],
         "folders": [PAYLOAD_FOLDER], "record_id": "ma-1",
         "raw": json.dumps({"MailboxOwnerUPN": UPN, "UserId": UPN}), "evidence": "raw/imports/ual.csv#2"},
        {"time": _t("2023-06-05T02:02:00"), "source": "mail_access", "operation": "MailItemsAccessed",
         "result": "success", "user": UPN, "mailbox": UPN, "ip": ACTOR_IP, "user_agent": PAYLOAD_UA,
         "token_id": "tok-forged-1", "mail_access_type": "Bind", "items": 1, "message_ids": ["<m3@example.org>"],
         "folders": [PAYLOAD_FOLDER], "record_id": "ma-2", "raw": "{}", "evidence": "raw/imports/ual.csv#3"},
        {"time": _t("2023-06-06T11:00:00"), "source": "directory_audit", "operation": "Add member to group",
         "result": "success", "user": UPN2, "target": PAYLOAD_NAME, "record_id": "da-1",
         "raw": json.dumps({"targetResources": [{"displayName": "Megan Bowen", "userPrincipalName": UPN2}]}),
         "evidence": "raw/imports/audits.json#1"},
        {"time": _t("2023-06-06T12:00:00"), "source": "signin_interactive", "operation": "Sign-in",
         "result": "success", "error_code": 0, "user": UPN2, "ip": INTERNAL_IPS[2], "record_id": "si-3",
         "raw": "{}", "evidence": "raw/imports/signins.json#3"},
    ]
    case.write_events(pd.DataFrame(rows))
    finding = {
        "finding_id": "orphan-token-1", "detection": "orphan-token", "title": "Mail read with a token never issued",
        "severity": "high", "verdict": "confirmed", "first": "2023-06-05T02:00:00Z", "last": "2023-06-05T02:02:00Z",
        "mailbox": UPN, "user": UPN, "ip": ACTOR_IP, "app_id": None, "token_id": "tok-forged-1", "session_id": None,
        "events": 2, "explanation": f"{PAYLOAD_EXPLANATION}: Adele Vance's mailbox {UPN}, 2 records from {ACTOR_IP}",
        "techniques": ["T1606.002"], "evidence": ["ma-1", "ma-2"],
    }
    # as detections write them: Parquet (list columns come back as arrays) and JSON
    frame = conform(pd.DataFrame([finding]), FINDING_COLUMNS)
    pq.write_table(to_arrow(frame, FINDING_COLUMNS), root / "findings.parquet")
    (root / "findings.json").write_text(json.dumps([finding]), encoding="utf-8")
    scope = {
        "case": "breach-test", "generated_at": "2023-06-16T00:00:00Z",
        "window": {"first_malicious": "2023-06-05T02:00:00Z", "last_malicious": "2023-06-05T02:02:00Z"},
        "signin_coverage": {"start": "2023-06-01T08:00:00Z", "end": "2023-06-06T12:00:00Z"},
        "compromised_mailboxes": [{"upn": UPN, "first": "2023-06-05T02:00:00Z", "last": "2023-06-05T02:02:00Z",
                                   "events": 2, "items_accessed": 3, "confidence": "confirmed",
                                   "reasons": ["orphan token tok-forged-1", f"display name {PAYLOAD_NAME}"]}],
        "actor_ips": [{"ip": ACTOR_IP, "first": "2023-06-05T02:00:00Z", "last": "2023-06-05T02:02:00Z",
                       "events": 2, "reasons": ["orphan token"]}],
        "actor_apps": [{"app_id": "00000002-0000-0ff1-ce00-000000000000", "name": "<b>Exchange</b>"}],
        "findings_by_detection": {"orphan-token": 1},
    }
    (root / "scope.json").write_text(json.dumps(scope), encoding="utf-8")
    case.log_action("test.note", note=f"prepared for {UPN} by Adele Vance from {INTERNAL_IPS[0]}")
    return case
