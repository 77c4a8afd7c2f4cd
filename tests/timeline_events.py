"""A small hand-built intrusion as canonical events, shared by the timeline, graph and plot tests.

Story: alice works normally from 198.51.100.10 (sign-in session S1, token T1). An actor reads
alice's and bob's mailboxes with a forged token F1 from 203.0.113.5 and 203.0.113.6, and with a
second forged token F2 from 203.0.113.5; its user agent is a formula-injection payload. Carol gets
an inbox rule; an admin adds an app; dave's old export has no ids at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ir_toolkit.case import Case

EVIL_UA = '=HYPERLINK("http://evil.example/x","click")'
ACTOR_IPS = {"203.0.113.5", "203.0.113.6"}
ACTOR_APP = "bbbbbbbb-0000-0000-0000-00000000f0f0"
OUTLOOK = "00000002-0000-0ff1-ce00-000000000000"


def _ev(time: str, source: str, record_id: str, **cols: Any) -> dict[str, Any]:
    row = {"time": pd.Timestamp(time, tz="UTC"), "source": source, "record_id": record_id, **cols}
    row["raw"] = json.dumps({k: str(v) for k, v in row.items()})
    return row


def events() -> pd.DataFrame:
    rows = [
        _ev("2023-06-15T08:00:00Z", "signin_interactive", "si-1", operation="Sign-in", result="success",
            error_code=0, user="alice@contoso.com", app_id=OUTLOOK, app_name="Outlook", ip="198.51.100.10",
            country="US", asn=7018, user_agent="Mozilla/5.0 Outlook", session_id="S1", token_id="T1"),
        _ev("2023-06-15T07:59:00Z", "signin_interactive", "si-0", operation="Sign-in", result="failure",
            error_code=50126, user="alice@contoso.com", app_id=OUTLOOK, app_name="Outlook", ip="198.51.100.10",
            country="US", asn=7018, session_id="S0"),
        _ev("2023-06-15T08:05:00Z", "mail_access", "ma-1", operation="MailItemsAccessed", result="success",
            user="alice@contoso.com", mailbox="alice@contoso.com", app_id=OUTLOOK, client_app_id=OUTLOOK,
            ip="198.51.100.10", user_agent="Outlook-iOS/2.0", session_id="S1", token_id="T1",
            exchange_session_id="X1", mail_access_type="Sync", items=40, folders=["Inbox"]),
        _ev("2023-06-16T01:00:00Z", "mail_access", "ma-2", operation="MailItemsAccessed", result="success",
            user="alice@contoso.com", mailbox="alice@contoso.com", app_id=ACTOR_APP, client_app_id=ACTOR_APP,
            ip="203.0.113.5", user_agent=EVIL_UA, token_id="F1", exchange_session_id="X2",
            mail_access_type="Bind", items=3, message_ids=["<a1@contoso.com>", "<a2@contoso.com>", "<a3@x>"]),
        _ev("2023-06-16T01:30:00Z", "mail_access", "ma-3", operation="MailItemsAccessed", result="success",
            user="bob@contoso.com", mailbox="bob@contoso.com", app_id=ACTOR_APP, client_app_id=ACTOR_APP,
            ip="203.0.113.6", user_agent=EVIL_UA, token_id="F1", exchange_session_id="X3",
            mail_access_type="Bind", items=2, message_ids=["<b1@contoso.com>", "<b2@contoso.com>"]),
        _ev("2023-06-17T02:00:00Z", "mail_access", "ma-4", operation="MailItemsAccessed", result="success",
            user="bob@contoso.com", mailbox="bob@contoso.com", app_id=ACTOR_APP, client_app_id=ACTOR_APP,
            ip="203.0.113.5", user_agent="+cmd|' /C calc'!A0", token_id="F2", exchange_session_id="X4",
            mail_access_type="Bind", items=5, message_ids=["<b3@contoso.com>"]),
        _ev("2023-06-16T09:00:00Z", "audit_other", "ao-1", operation="New-InboxRule", result="success",
            user="carol@contoso.com", mailbox="carol@contoso.com", target="@forward-all", ip="192.0.2.1"),
        _ev("2023-06-16T10:00:00Z", "directory_audit", "da-1", operation="Add service principal",
            result="success", user="admin@contoso.com", target="Evil App"),
        _ev("2023-06-18T10:00:00Z", "mail_access", "ma-5", operation="MailItemsAccessed", user="dave@contoso.com",
            mailbox="dave@contoso.com", app_id=OUTLOOK, ip="192.0.2.50", mail_access_type="Sync", items=1),
        _ev("2023-06-18T10:10:00Z", "mail_access", "ma-6", operation="MailItemsAccessed", user="dave@contoso.com",
            mailbox="dave@contoso.com", app_id=OUTLOOK, ip="192.0.2.50", mail_access_type="Sync", items=1),
        _ev("2023-06-18T11:30:00Z", "mail_access", "ma-7", operation="MailItemsAccessed", user="dave@contoso.com",
            mailbox="dave@contoso.com", app_id=OUTLOOK, ip="192.0.2.50", mail_access_type="Sync", items=1),
    ]
    return pd.DataFrame(rows)


def findings() -> pd.DataFrame:
    from ir_toolkit.schema import FINDING_COLUMNS, conform

    rows = [
        {"finding_id": "orphan-token:1", "detection": "orphan-token", "title": "Token without sign-in",
         "severity": "high", "verdict": "confirmed", "first": pd.Timestamp("2023-06-16T01:00:00Z"),
         "last": pd.Timestamp("2023-06-16T01:30:00Z"), "ip": "203.0.113.5", "token_id": "F1",
         "mailbox": "alice@contoso.com", "events": 2,
         "explanation": "2 mailbox accesses used token F1 that no sign-in issued.", "evidence": ["ma-2", "ma-3"]},
        {"finding_id": "first-seen-app:1", "detection": "first-seen-app", "title": "App never seen on mailbox",
         "severity": "medium", "verdict": "likely", "first": pd.Timestamp("2023-06-17T02:00:00Z"),
         "last": pd.Timestamp("2023-06-17T02:00:00Z"), "ip": "203.0.113.6", "app_id": ACTOR_APP,
         "mailbox": "bob@contoso.com", "events": 1, "explanation": "=1+1 first use of the app.",
         "evidence": ["ma-4"]},
    ]
    return conform(pd.DataFrame(rows), FINDING_COLUMNS)


def make_case(path: Path, with_findings: bool = False) -> Case:
    case = Case.init(path, tenant="contoso.onmicrosoft.com")
    case.write_events(events())
    if with_findings:
        findings().to_parquet(path / "findings.parquet")
    return case
