"""Shapes met in real exports written by others (session 9 of issue 15), rebuilt with our own values.

Each fixture in tests/data/import/shapes has the shape of records found in public test data of other
tools (origins in tests/data/SOURCES.md): Entra Connect Health's AD FS sign-ins as a diagnostic-settings
category, envelope times in a US locale, Defender for Identity tables streamed with AdditionalFields as
text or as an object, a CloudAppEvents row whose RawEventData is no UAL record, a SIEM's re-export of
Exchange records with lower-cased keys and an address with its port, Exchange's AttachmentAccess record.
Each is auto-detected, imported whole, mapped from the record (not only kept in raw) and identical on
the fast and the per-record path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import TESTDATA
from test_import_fast import same_case

from ir_toolkit.sources import fastpath
from ir_toolkit.sources.classtext import class_object
from ir_toolkit.timeutil import parse_time

SHAPES = TESTDATA / "import" / "shapes"
T = pd.Timestamp


def _by(events: pd.DataFrame, column: str) -> pd.DataFrame:
    return events.set_index(column)


def whole(tmp_path: Path, name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Import a shape both ways (same events, same quarantine); assert every record imported, none lost."""
    res, events = same_case(tmp_path, SHAPES / name)
    assert res["imported"] == res["records"] == len(events) > 0 and res["quarantined"] == res["duplicates"] == 0
    return res, events


def test_every_shape_has_its_test() -> None:
    """Each fixture in tests/data/import/shapes is named by a test below (so imported whole and both ways)."""
    tested = set(re.findall(r'"([\w@.-]+\.(?:json|jsonl|csv))"', Path(__file__).read_text("utf-8")))
    assert {p.name for p in SHAPES.iterdir()} <= tested


def test_adfs_signins_and_us_locale_envelope_time(tmp_path: Path) -> None:
    """ADFSSignInLogs (AD FS sign-ins sent to Entra by Connect Health) are signIn records: read as sign-ins,
    the AD FS token's id as token id; the envelope's ``time`` in a US locale never replaces createdDateTime."""
    res, events = whole(tmp_path, "diagnostic_adfs_and_us_time.json")
    assert res["format"] == "azure-diagnostic-records"
    ev = _by(events, "record_id")
    adfs = ev.loc["7d2b3e41-0c55-4f1e-8a9d-2b6c4e8f1a37"]
    assert (adfs["time"], adfs["source"], adfs["user"], adfs["user_id"], adfs["ip"], adfs["app_id"],
            adfs["token_id"], adfs["result"]) == (
        T("2025-12-12T14:56:31Z"), "signin_interactive", "meganb@contoso.com", "5e2f8a1c-3b7d-4e9f-a0c6-d4b2e8f1a359",
        "198.51.100.23", "3f0c6a2e-58b4-4c1f-9d5e-71a2b8c4d6e0", "q1Zk8rT0aUuWm3nB5vXy2A", "success")
    app = ev.loc["e8f0a2b4-6c7d-4e8f-9a0b-1c2d3e4f5a6b"]
    assert (app["time"], app["source"], app["user_id"], app["app_name"], app["token_id"]) == (
        T("2025-11-14T01:46:16.428297Z"), "signin_serviceprincipal", "b1c3d5e7-f9a0-4b2c-8d4e-6f8a0b2c4d6e",
        "Contoso Backup Agent", "Zx9Yw8Vu7Ts6Rq5Po4Nm3L")


def test_streamed_identity_tables_and_a_cloud_app_event_without_ual(tmp_path: Path) -> None:
    """A CloudAppEvents row whose RawEventData is no UAL record takes its user id from AccountObjectId; another
    table's row (CloudAuditEvents) its user agent."""
    res, events = whole(tmp_path, "defender_streaming_identity.json")
    assert res["format"] == "defender-streaming"
    ev = _by(events, "operation")
    logon = ev.loc["LogonSuccess"]
    assert (logon["time"], logon["user"], logon["ip"], logon["app_name"], logon["target"]) == (
        T("2025-03-04T06:19:37Z"), "svc-backup", "203.0.113.9", "Office 365", "ws-042")
    query = ev.loc["SAMR query"]
    assert (query["ip"], query["app_name"], query["target"]) == ("10.20.30.40", "Active Directory",
                                                                 "ws-042.corp.contoso.com")
    azure = ev.loc["Write Deployments"]
    assert (azure["time"], azure["ip"], azure["user_id"]) == (
        T("2025-03-05T12:48:45.833Z"), "198.51.100.61", "6c9e2b4d-8f1a-4c3e-b5d7-9f1b3d5f7a9c")
    info = events[events["operation"].isna()].iloc[0]
    assert (info["user"], info["user_id"]) == ("adelev@contoso.com", "6c9e2b4d-8f1a-4c3e-b5d7-9f1b3d5f7a9c")
    audit = ev.loc["Update"]  # CloudAuditEvents: kept as a Defender event, its user agent in the column
    assert (audit["ip"], audit["user_agent"]) == ("198.51.100.61",
                                                  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36")


def test_siem_reexport_with_lower_case_keys(tmp_path: Path) -> None:
    """Exchange admin records as a SIEM data lake keeps them: keys lower-cased, ``creationtime`` with a space and
    nanoseconds, ``clientip`` with the client's port."""
    res, events = whole(tmp_path, "panther_exchange.jsonl")
    assert res["format"] == "management-api"
    ev = _by(events, "operation")
    rule = ev.loc["New-InboxRule"]
    assert (rule["time"], rule["user"], rule["ip"], rule["target"]) == (
        T("2025-07-07T09:11:11Z"), "adelev@contoso.com", "198.51.100.14", "Move invoices")
    assert ev.loc["Set-Mailbox", "time"] == T("2025-02-12T22:19:00Z")


def test_attachment_access_keeps_its_token_and_client_app(tmp_path: Path) -> None:
    """Exchange's AttachmentAccess (RecordType 50, the address in ClientIPAddress): mailbox, token id, token issue
    time and client app mapped from the record."""
    res, events = whole(tmp_path, "management_api_attachment_access.json")
    assert res["format"] == "management-api"
    rec = events.iloc[0]
    assert (rec["time"], rec["operation"], rec["user"], rec["mailbox"], rec["ip"], rec["token_id"],
            rec["client_app_id"], rec["user_id"]) == (
        T("2025-09-29T01:01:01Z"), "AttachmentAccess", "adelev@contoso.com", "adelev@contoso.com", "203.0.113.5",
        "Qk3x9sVd1EaP7mZb2nLw0A", "d3590ed6-52b3-4102-aeff-aad2292ab01c", "6c9e2b4d-8f1a-4c3e-b5d7-9f1b3d5f7a9c")
    assert rec["token_issued_at"] == T("2025-09-29T00:58:12Z")
    # a read of the message's attachments: mail access as MailItemsAccessed is (session 10; was audit_other)
    assert (rec["source"], rec["mail_access_type"], rec["items"]) == ("mail_access", "Bind", 3)


def test_attachment_access_is_mail_access_on_both_purview_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """AttachmentAccess and MessageBind in a Purview CSV are mail access (access type from AttachmentAccessType,
    count from OperationCount) on the hand-written Purview SQL as per record, and the SQL maps them itself."""
    mapped: list[int] = []  # rows the Purview SQL mapped (fast run), and rows it handed to the per-record path
    real_frame, real_merge = fastpath.frame_from_arrow, fastpath.merge_refused

    def frame(cols: Any, positions: list[int], *args: Any) -> Any:
        mapped.append(len(positions))
        return real_frame(cols, positions, *args)

    def merge(frame: Any, keep: Any, *args: Any, **kwargs: Any) -> Any:
        mapped.append(-int((~keep).sum()))
        return real_merge(frame, keep, *args, **kwargs)

    monkeypatch.setattr(fastpath, "frame_from_arrow", frame)
    monkeypatch.setattr(fastpath, "merge_refused", merge)
    res, events = whole(tmp_path, "purview_attachment_access.csv")
    assert res["format"] == "purview-csv" and mapped == [4]  # the SQL mapped all four, none went per record
    ev = events.set_index("record_id")
    assert set(ev["source"]) == {"mail_access"}
    att = ev.loc["5c7e9b1d-3f5a-4c7e-9b1d-3f5a7c9e1b3d"]
    assert (att["operation"], att["mailbox"], att["mail_access_type"], att["items"], att["token_id"], att["ip"]) == (
        "AttachmentAccess", "adelev@contoso.com", "Bind", 3, "Qk3x9sVd1EaP7mZb2nLw0A", "203.0.113.5")
    assert list(att["message_ids"]) == []  # Exchange item ids, no InternetMessageId: kept in raw
    bind = ev.loc["0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]
    assert (bind["operation"], bind["mailbox"], bind["ip"]) == ("MessageBind", "adelev@contoso.com", "198.51.100.23")


def test_sentinel_security_alert_portal_csv(tmp_path: Path) -> None:
    """Sentinel's SecurityAlert exported from the portal (``[UTC]`` columns, portal dates, BOM) is a Log Analytics
    export of alerts, not a Microsoft-Extractor-Suite SecurityAlerts file, and no sign-in."""
    res, events = whole(tmp_path, "sentinel_securityalert_portal.csv")
    assert res["format"] == "log-analytics-csv"
    alert = events.iloc[0]
    assert (alert["time"], alert["source"], alert["operation"], alert["result"], alert["user"], alert["target"],
            alert["record_id"]) == (T("2023-02-20T11:04:02.637Z"), "tenant_snapshot", "securityAlert", "high",
                                    "adelev@contoso.com", "Mass download", "c19a6ccd-40a6-9ef9-5a8b-598bcc3c53b0")


@pytest.mark.parametrize("name", ["defender_streaming_email.json", "defender_hunting_email_union.csv"])
def test_email_attachment_rows_never_hide_the_message(tmp_path: Path, name: str) -> None:
    """EmailAttachmentInfo rows (one per attachment) share the message and recipient of the EmailEvents row: each
    is its own record, and the message's row (sender address, subject, delivery) is never counted their duplicate."""
    res, events = whole(tmp_path, name)
    assert (res["imported"], res["duplicates"]) == (3, 0)
    mail = events[events["target"] == "Invoice overdue"].iloc[0]
    assert (mail["time"], mail["source"], mail["operation"], mail["result"], mail["user"], mail["mailbox"],
            mail["ip"]) == (T("2025-03-06T08:15:02Z"), "mail_flow", "Inbound", "delivered", "payroll@fabrikam.example",
                            "adelev@contoso.com", "203.0.113.80")
    assert list(mail["message_ids"]) == ["<20250306081500.1A2B3C@mail.fabrikam.example>"]
    assert set(events["target"]) == {"Invoice overdue", "invoice.pdf", "logo.png"}


def test_log_analytics_rows_of_other_tables_kept_not_sign_ins(tmp_path: Path) -> None:
    """IntuneAuditLogs, SecurityIncident and AzureActivity rows (no map of their own): kept whole as audit_other with
    time, operation, result, caller and address; a TimeGenerated beside a Status or ResultType once made them
    interactive sign-ins without a user, and AzureActivity was quarantined."""
    res, events = whole(tmp_path, "log_analytics_other_tables.json")
    assert (res["format"], res["imported"], res["quarantined"]) == ("log-analytics-json", 3, 0)
    assert set(events["source"]) == {"audit_other"}
    ev = _by(events, "operation")
    vault = ev.loc["MICROSOFT.KEYVAULT/VAULTS/SECRETS/READ"]
    assert (vault["time"], vault["result"], vault["user"], vault["ip"]) == (
        T("2025-03-01T12:00:00Z"), "success", "adelev@contoso.com", "198.51.100.7")
    assert ev.loc["Delete IntuneDevice", "user"] == "adelev@contoso.com"
    assert ev.loc["Mass download", "result"] == "new"


def test_app_initiated_audit_keeps_the_callers_address(tmp_path: Path) -> None:
    """An application's directory change (diagnostic-settings AuditLogs) names no initiator address in properties:
    the envelope's callerIpAddress is its address (it was kept in raw only); a user's change keeps the user's."""
    res, events = whole(tmp_path, "diagnostic_auditlogs_app_and_risk.json")
    assert (res["format"], res["imported"]) == ("azure-diagnostic-records", 3)
    ev = _by(events, "operation")
    creds = ev.loc["Add service principal credentials"]
    assert (creds["user"], creds["user_id"], creds["ip"], creds["user_agent"], creds["target"]) == (
        "Contoso Sync", "b1c3d5e7-f9a0-4b2c-8d4e-6f8a0b2c4d6e", "203.0.113.201", "python-requests/2.31.0",
        "Contoso Payroll")
    assert ev.loc["Update application – Certificates and secrets management", "ip"] == "198.51.100.23"
    risk = ev.loc["anonymizedIPAddress"]
    assert (risk["time"], risk["user"], risk["ip"]) == (T("2025-03-07T02:05:06.133Z"), "meganb@contoso.com",
                                                        "198.51.100.99")


def test_extractor_mail_items_accessed_outputs(tmp_path: Path) -> None:
    """Microsoft-Extractor-Suite's Get-Sessions and Get-MessageIDs CSVs (unknown, exit 2, before): read as
    audit_other rows of MailItemsAccessed with user, address, Exchange session id, item count or message id (not
    mail_access: they repeat the audit log's records without their id); a locale time read by the date rule."""
    res, events = whole(tmp_path, "extractor_Sessions-AdeleV@contoso.com.csv")
    assert (res["format"], res["imported"]) == ("extractor-suite-csv", 2)
    first = events.sort_values("time").iloc[0]
    assert (first["time"], first["source"], first["operation"], first["user"], first["ip"],
            first["exchange_session_id"], first["items"]) == (
        T("2025-03-16T08:15:02Z"), "audit_other", "MailItemsAccessed", "adelev@contoso.com", "203.0.113.5",
        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", 3)
    res, events = whole(tmp_path / "ids", "extractor_20250316091502-MessageIDs.csv")
    assert (res["format"], res["imported"], res["quarantined"]) == ("extractor-suite-csv", 3, 0)
    assert set(events["time"]) == {T("2025-03-16T08:15:02Z"), T("2025-03-16T08:15:40Z")}
    assert sorted(m for ids in events["message_ids"] for m in ids) == [
        "<20250306081500.1A2B3C@mail.fabrikam.example>", "<PR3P195MB0754A1@PR3P195MB0754.EURP195.PROD.OUTLOOK.COM>",
        "<PR3P195MB0754B2@PR3P195MB0754.EURP195.PROD.OUTLOOK.COM>"]
    assert set(events["exchange_session_id"]) == {"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}


def test_provisioning_records_with_pascal_case_objects(tmp_path: Path) -> None:
    """Diagnostic-settings ProvisioningLogs name their objects' fields Id and Name (Graph: id, displayName): the
    initiator, the application and the identity provisioned were lost to raw."""
    res, events = whole(tmp_path, "diagnostic_provisioning_pascal.json")
    assert (res["format"], res["imported"]) == ("azure-diagnostic-records", 2)
    ev = _by(events, "operation")
    skipped = ev.loc["create"]
    assert (skipped["time"], skipped["result"], skipped["user"], skipped["app_name"], skipped["target"]) == (
        T("2025-03-08T13:36:50.353893Z"), "skipped", "Azure AD Provisioning Service", "Contoso Travel", "Megan Bowen")
    assert (ev.loc["update", "result"], ev.loc["update", "target"]) == ("success", "meganb")


@pytest.mark.parametrize(("name", "count"), [("dfir-o365rc_UnifiedAuditLog_contoso.com_2025-03-06_08-00-00.json", 3),
                                             ("dfir-o365rc_purview_pages.json", 3),
                                             ("dfir-o365rc_purview_trailing_comma.json", 2)])
def test_dfir_o365rc_unified_audit_log_files(tmp_path: Path, name: str, count: int) -> None:
    """ANSSI DFIR-O365RC's UAL files: AuditData lines (Search-UnifiedAuditLog), and the Graph audit query dump -
    ``[`` then each page's auditData as ConvertTo-Json writes it (an array, or one object for a one-record page)
    with ``,`` between pages, then ``]``, a comma left before it when the last page came back empty."""
    res, events = whole(tmp_path, name)
    assert (res["format"], res["imported"]) == ("management-api", count)
    assert set(events["source"]) == {"mail_access"} and set(events["mailbox"]) == {"adelev@contoso.com"}
    assert events["token_id"].str.startswith("Qk3x9sVd1EaP7mZb2nLw0").all()
    assert set(events["session_id"]) == {"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}
    assert all(len(ids) == 1 for ids in events["message_ids"]) and set(events["mail_access_type"]) == {"Bind"}


def test_us_locale_times_with_an_offset(tmp_path: Path) -> None:
    """``1/9/2025 10:41:00 AM +01:00`` (.NET's general date and time with its offset, as Export-Csv writes a
    DateTimeOffset in en-US, and as elastic's Azure test data writes an envelope time) is the local time at that
    offset: read to its UTC instant in a CSV on both paths (was quarantined: no readable time)."""
    res, events = whole(tmp_path, "message_trace_us_offset.csv")
    assert res["format"] == "message-trace"
    assert events["time"].tolist() == [T("2025-01-09T09:41:00Z"), T("2025-01-09T09:41:00Z"),
                                       T("2025-01-12T18:45:30Z")]
    assert parse_time("1/9/2007 10:41:00 AM +01:00") == T("2007-01-09T09:41:00Z")
    assert parse_time("13/1/2007 10:41 -0130", dayfirst=None) == T("2007-01-13T12:11:00Z")
    assert parse_time("1/9/2007 10:41:00 AM +15:00") is None  # no such offset: unreadable, never guessed


def test_legacy_mailbox_audit_log_export(tmp_path: Path) -> None:
    """Search-MailboxAuditLog -ShowDetails | Export-Csv (its 55 columns as real exports write them; Microsoft-Extractor-
    Suite's Get-MailboxAuditLog): a message read (MessageBind) is mail access with the message id, folder, address,
    client and Exchange session; FolderBind and SoftDelete are kept (was: unknown format, exit 2)."""
    res, events = whole(tmp_path, "mailboxAuditLog-AdeleV@contoso.com.csv")
    assert res["format"] == "mailbox-audit-log"
    ev = _by(events, "operation")
    bind = ev.loc["MessageBind"]
    assert (bind["time"], bind["source"], bind["result"], bind["user"], bind["mailbox"], bind["ip"], bind["user_agent"],
            bind["exchange_session_id"], bind["target"]) == (
        T("2023-06-15T03:04:05Z"), "mail_access", "succeeded", "mallory attacker", "adelev@contoso.com", "203.0.113.77",
        "Client=OWA;Action=ViaProxy", "5e7a9c1b-3d5f-4b7d-9f1a-3c5e7a9c1b3d", "Q2 wire instructions")
    assert list(bind["message_ids"]) == ["<AM0PR01MB9876.5A6B@AM0PR01MB9876.eurprd01.prod.outlook.com>"]
    assert list(bind["folders"]) == ["\\Inbox"]
    assert ev.loc["FolderBind", "source"] == ev.loc["SoftDelete", "source"] == "audit_other"
    assert (ev.loc["SoftDelete", "ip"], ev.loc["SoftDelete", "time"]) == ("2001:db8::17", T("2023-06-16T23:20:45Z"))


def test_wazuh_office365_and_graph_records(tmp_path: Path) -> None:
    """Wazuh's Office 365 module lines ({"integration": "office365", "office365": UAL record}), an alerts.json line
    holding one in "data", and its Microsoft Graph module's alerts_v2 line: each mapped as the record inside (were:
    unknown format, exit 2)."""
    res, events = whole(tmp_path, "wazuh_office365_msgraph.jsonl")
    assert res["format"] == "wazuh-json"
    ev = _by(events, "operation")
    mail = ev.loc["MailItemsAccessed"]
    assert (mail["time"], mail["source"], mail["mailbox"], mail["ip"], mail["token_id"], mail["session_id"],
            mail["mail_access_type"]) == (T("2025-03-06T08:14:02Z"), "mail_access", "adelev@contoso.com",
                                          "203.0.113.80", "Zx8_wQ3sVkq9mLp2nRt5AA",
                                          "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "Bind")
    assert list(mail["message_ids"]) == ["<20250306081500.1A2B3C@mail.fabrikam.example>"]
    logon = ev.loc["UserLoggedIn"]
    assert (logon["time"], logon["user"], logon["app_id"], logon["session_id"], logon["user_agent"][:11]) == (
        T("2025-03-06T08:00:58Z"), "adelev@contoso.com", "4765445b-32c6-49b0-83e6-1d93765276ca",
        "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "Mozilla/5.0")
    alert = ev.loc["securityAlert"]
    assert (alert["time"], alert["result"], alert["target"], alert["record_id"]) == (
        T("2025-03-06T08:16:00Z"), "high", "Suspicious email forwarding activity", "da638771234567890123_-1234567890")


def test_message_trace_details_and_graph_message_traces(tmp_path: Path) -> None:
    """Get-MessageTraceDetail output (Date, Event, Action, Detail, Data: was recognised as message trace, then every
    row quarantined for want of a time) and Graph's beta exchangeMessageTrace and exchangeMessageTraceDetail pages
    (were: unknown format, exit 2)."""
    res, events = whole(tmp_path / "cmdlet", "message_trace_detail_cmdlet.csv")
    assert res["format"] == "message-trace"
    assert [(e.time, e.operation, e.user, e.mailbox, e.target[:16]) for e in events.itertuples()] == [
        (T("2023-06-15T03:00:01Z"), "Receive", "boss@evil.example", "victim@contoso.com", "Message received"),
        (T("2023-06-15T03:00:03Z"), "Deliver", "boss@evil.example", "victim@contoso.com", "The message was ")]
    assert set(events["source"]) == {"mail_flow"} and list(events["message_ids"][0]) == ["<phish1@evil.example>"]
    res, events = whole(tmp_path / "graph", "graph_message_traces.json")
    assert res["format"] == "message-trace"
    trace = events.iloc[0]
    assert (trace["time"], trace["operation"], trace["result"], trace["user"], trace["mailbox"], trace["ip"],
            trace["target"]) == (T("2025-03-06T08:15:00Z"), "Message", "delivered", "payroll@fabrikam.example",
                                 "adelev@contoso.com", "203.0.113.80", "Invoice overdue")
    assert events["operation"].tolist()[1:] == ["Receive", "Deliver"]
    assert events["time"].tolist()[1:] == [T("2025-03-06T08:15:01Z"), T("2025-03-06T08:15:03Z")]


def test_azuread_module_exports(tmp_path: Path) -> None:
    """Get-AzureADAuditSignInLogs / Get-AzureADAuditDirectoryLogs | Export-Csv write nested objects as their text
    (``class SignInStatus {`` ``ErrorCode: 50126`` ... ``}``): read as objects, so a failed sign-in is a failure with
    its error code and country (was: no result, the whole location text as country) and an audit's initiator is its
    user and address (were: none)."""
    res, events = whole(tmp_path / "signins", "azuread_module_signins.csv")
    assert [(e.result, e.error_code, e.country, e.ip) for e in events.itertuples()] == [
        ("success", 0, "NL", "203.0.113.9"), ("failure", 50126, "NL", "198.51.100.4")]
    res, events = whole(tmp_path / "audit", "azuread_module_audit.csv")
    audit = events.iloc[0]
    assert (audit["source"], audit["operation"], audit["user"], audit["user_id"], audit["ip"]) == (
        "directory_audit", "Consent to application", "adelev@contoso.com", "6c9e2b4d-8f1a-4c3e-b5d7-9f1b3d5f7a9c",
        "203.0.113.9")


@pytest.mark.parametrize("text", [
    "class SignInStatus {\n  ErrorCode: 1\n",  # never closed
    "class A {\n  K: v\n}\n}\n",  # closed twice
    "class A {\n  not a key line\n}",
    "class A {\n" + "  K: class B {\n" * 20 + "}\n" * 21,  # nested beyond the limit
    "classic {\n}",
])
def test_odd_class_text_is_no_object(text: str) -> None:
    assert class_object(text) is None


def test_class_text_nested_and_continued() -> None:
    assert class_object("class S {\n  ErrorCode: 0\n  FailureReason: line one\nline two\n  Geo: class G {\n"
                        "  Latitude: 52.37\n}\n\n}\n") == {
        "ErrorCode": "0", "FailureReason": "line one\nline two", "Geo": {"Latitude": "52.37"}}


def test_hawk1_simple_admin_audit_log(tmp_path: Path) -> None:
    """Hawk 1.x's Simple_*.csv (Get-SimpleAdminAuditLog over Search-AdminAuditLog: Caller, Cmdlet, FullCommand,
    RunDate(UTC), ObjectModified): the inbox rule and forwarding cmdlets of a BEC, time, caller and rule name in
    columns (was: unknown format, exit 2)."""
    res, events = whole(tmp_path, "hawk1_Simple_New_InboxRule.csv")
    assert res["format"] == "exchange-admin-audit"
    assert [(e.time, e.source, e.operation, e.user, e.target) for e in events.itertuples()] == [
        (T("2023-06-15T03:10:12Z"), "audit_other", "New-InboxRule", "adelev", "."),
        (T("2023-06-15T03:12:40Z"), "audit_other", "Set-Mailbox", "***", "AdeleV")]
    assert "ForwardingSmtpAddress smtp:drop@evil.example" in events["raw"][1]


def test_cribl_capture_of_graph_sign_ins_and_legacy_alerts(tmp_path: Path) -> None:
    """A Cribl pack's capture (events with _raw, host, source, _time, cribl_breaker) of Graph sign-ins and legacy
    security/alerts: read through _raw; the alert (createdDateTime beside status) was read as an interactive
    sign-in without a user, now a security alert with its user and logon address."""
    res, events = whole(tmp_path, "cribl_graph_capture.json")
    assert res["format"] == "splunk-json"
    sign_in, alert = events.iloc[0], events.iloc[1]
    assert (sign_in["source"], sign_in["user"], sign_in["ip"], sign_in["country"], sign_in["result"]) == (
        "signin_interactive", "adelev@contoso.com", "203.0.113.80", "NL", "success")
    assert (alert["time"], alert["source"], alert["operation"], alert["result"], alert["user"], alert["ip"],
            alert["target"]) == (T("2025-03-06T08:00:57Z"), "tenant_snapshot", "securityAlert", "medium",
                                 "adelev@contoso.com", "203.0.113.80", "Sign-in from a new address")


def test_graph_security_alert_pages(tmp_path: Path) -> None:
    """A Graph page of security/alerts_v2 objects (was: unknown format, exit 2): tenant-state security alerts, time
    the first activity, user from the first evidence's user account."""
    res, events = whole(tmp_path, "graph_security_alerts.json")
    assert res["format"] == "graph-security-alerts"
    assert [(e.time, e.operation, e.result, e.user, e.target) for e in events.itertuples()] == [
        (T("2025-03-06T08:16:00Z"), "securityAlert", "high", None, "Suspicious email forwarding activity"),
        (T("2025-03-06T08:10:12Z"), "securityAlert", "medium", "adelev@contoso.com",
         "Suspicious inbox manipulation rule")]


def test_defender_alert_info_and_evidence_streamed(tmp_path: Path) -> None:
    """Streaming API AlertInfo and AlertEvidence rows (SEKOIA-IO intake-formats' test records: no ReportId, no
    ActionType) were read as the envelope: operation "Publish", the envelope's time, no user or address. Now an
    alert is a security alert (time its Timestamp, severity, title) and each evidence row keeps its entity's
    account and address; the evidence rows of one alert share AlertId and Timestamp and stay three events."""
    res, events = whole(tmp_path, "defender_streaming_alerts.json")
    assert res["format"] == "defender-streaming"
    alert = events[events["source"] == "tenant_snapshot"].iloc[0]
    assert (alert["time"], alert["operation"], alert["result"], alert["target"], alert["record_id"]) == (
        T("2025-11-20T08:14:02.553123Z"), "securityAlert", "medium", "Suspicious inbox forwarding rule",
        "da638712345678901234_-1122334455")
    evidence = events[events["source"] == "audit_other"].sort_values("record_id")
    assert len(evidence) == 3 and set(evidence["time"]) == {T("2025-11-20T08:14:02.553123Z")}
    assert set(evidence["operation"]) == {"Suspicious inbox forwarding rule"}
    assert [(e.user, e.user_id, e.ip) for e in evidence.itertuples()] == [
        (None, None, "203.0.113.77"), (None, None, None),
        ("meganb@contoso.com", "5e2f8a1c-3b7d-4e9f-a0c6-d4b2e8f1a359", None)]


def test_defender_alert_info_hunting_export(tmp_path: Path) -> None:
    """An advanced hunting export of AlertInfo (was: unknown format, exit 2): security alerts, time the Timestamp."""
    res, events = whole(tmp_path, "defender_hunting_alertinfo.csv")
    assert res["format"] == "defender-hunting-csv"
    assert [(e.time, e.source, e.operation, e.result, e.target, e.record_id) for e in events.itertuples()] == [
        (T("2025-11-21T10:02:11Z"), "tenant_snapshot", "securityAlert", "high", "Unfamiliar sign-in properties",
         "da638712999988887777_123456789"),
        (T("2025-11-21T10:05:43.12Z"), "tenant_snapshot", "securityAlert", "medium",
         "Suspicious inbox manipulation rule", "fa1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901")]


def test_ual_null_client_ip_is_no_address(tmp_path: Path) -> None:
    """Entra's unified audit records write ``"ClientIP": "<null>"`` where they have no address (SEKOIA-IO
    intake-formats' AzureActiveDirectory test records): it was kept as the address text ``<null>``; now none."""
    res, events = whole(tmp_path, "ual_null_client_ip.json")
    assert res["format"] == "management-api"
    ev = _by(events, "operation")
    assert ev.loc["Update user.", "ip"] is None and ev.loc["Update user.", "user"] == "meganb@contoso.com"
    assert (ev.loc["UserLoggedIn", "ip"], ev.loc["UserLoggedIn", "session_id"]) == (
        "203.0.113.80", "5c1e7a93-2b4d-4f60-8e1a-9d3c5b7f0a26")


def test_intune_diagnostic_auditlogs(tmp_path: Path) -> None:
    """Intune's diagnostic-settings AuditLogs share the category name of Entra's (SEKOIA-IO intake-formats' Intune
    test records): they were read as directory audits with no user, application, target or record id (a hash);
    now the actor (or its application), the target's display name and AuditEventId."""
    res, events = whole(tmp_path, "diagnostic_intune_auditlogs.json")
    assert res["format"] == "azure-diagnostic-records"
    assert [(e.time, e.source, e.operation, e.user, e.user_id, e.app_name, e.target, e.record_id)
            for e in events.sort_values("time").itertuples()] == [
        (T("2025-03-06T08:21:40.5512Z"), "directory_audit", "Wipe ManagedDevice", "meganb@contoso.com",
         "5e2f8a1c-3b7d-4e9f-a0c6-d4b2e8f1a359", "Microsoft Intune portal extension", "DESKTOP-ADELEV",
         "c4d2e7a1-9b3f-4e58-a6d0-1f2e3c4b5a69"),
        (T("2025-03-06T08:25:02.11Z"), "directory_audit", "Delete MobileAppAssignment", "Device cleanup automation",
         "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "Device cleanup automation", "Install-Agent.ps1",
         "2b3c4d5e-6f70-4a81-92a3-b4c5d6e7f809")]


def test_defender_teams_message_and_url_rows(tmp_path: Path) -> None:
    """Streamed MessageEvents (Teams), MessageUrlInfo and EmailUrlInfo rows (SEKOIA-IO intake-formats' test records):
    the Teams message's sender was raw only, and the URL rows had no target; now the sender is the user and the
    Url the target."""
    res, events = whole(tmp_path, "defender_streaming_teams_urls.json")
    assert res["format"] == "defender-streaming"
    assert [(e.time, e.source, e.user, e.target) for e in events.sort_values(["time", "record_id"]).itertuples()] == [
        (T("2025-03-06T08:15:02Z"), "audit_other", None, "https://invoices.fabrikam.example/pay?id=884"),
        (T("2025-03-06T08:30:02.118Z"), "audit_other", "meganb@contoso.com", None),
        (T("2025-03-06T08:30:02.118Z"), "audit_other", None, "https://login.contoso-verify.example/session")]
