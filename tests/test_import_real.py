"""Real exports written by others (issue 15, "checked against real files"): tests/data/import/real.

OTRF Security-Datasets' GoldenSAMLADFSMailAccess (a lab tenant's Log Analytics AuditLogs and
OfficeActivity, and a Defender advanced hunting export of several tables; MIT) and Plaso's
Management Activity API test records (Apache-2.0); origins in tests/data/SOURCES.md. Each file is
auto-detected, mapped from the record (not only kept in raw) and identical on both import paths.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import TESTDATA
from test_import_fast import same_case

from ir_toolkit.case import Case

REAL = TESTDATA / "import" / "real"
OTRF = REAL / "otrf-goldensaml"
T = pd.Timestamp
ACTOR = "pgustavo@simulandlabs.com"
ACTOR_ID = "aead923d-498b-4f64-a66c-2af91447a8b6"
MAIL_RECORD = "699e0b10-1c53-403e-976f-ce0847a92b44"


def test_otrf_entra_audit_logs(case_dir: Path) -> None:
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([OTRF / "AADAuditEvents.json"])
    assert (res["format"], res["records"], res["imported"], res["duplicates"]) == ("log-analytics-json", 4, 3, 1)
    ev = case.read_events().set_index("record_id")
    cert = ev.loc["Directory_10065ffb-8199-48bc-8ff5-912cb5b8295a_AUMVX_13992832"]
    assert (cert["time"], cert["source"], cert["operation"], cert["result"], cert["user"], cert["user_id"],
            cert["target"]) == (T("2021-08-02T13:29:25.983Z"), "directory_audit",
                                "Update application – Certificates and secrets management", "success", ACTOR,
                                ACTOR_ID, "SimuLandApp")
    assert cert["user_agent"].endswith("WindowsPowerShell/5.1.17763.1971")
    grant = ev.loc["Directory_630d7f0c-acc4-4596-85ab-7e5d839b4291_9VRQI_37762000"]
    assert (grant["operation"], grant["target"]) == ("Add delegated permission grant", "Microsoft Graph")


def test_otrf_office_activity_mail_access(case_dir: Path) -> None:
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([OTRF / "OfficeActivityEvents.json"])
    assert (res["format"], res["imported"], res["quarantined"]) == ("log-analytics-json", 1, 0)
    mail = case.read_events().iloc[0]
    assert (mail["time"], mail["source"], mail["operation"], mail["user"], mail["mailbox"], mail["ip"],
            mail["user_agent"], mail["record_id"]) == (T("2021-08-02T13:32:07Z"), "mail_access", "MailItemsAccessed",
                                                       ACTOR, ACTOR, "1.2.3.4", "Client=REST;;", MAIL_RECORD)
    assert mail["mail_access_type"] == "Bind" and mail["throttled"] is not None and not mail["throttled"]
    assert len(mail["message_ids"]) == 7 and list(mail["folders"]) == ["\\Inbox"]
    assert mail["client_app_id"] == "5a95e683-08ad-424e-a441-1d1aec52c02c"  # the lab's app reading the mailbox


def test_otrf_defender_tables_whole(case_dir: Path) -> None:
    """A union of CloudAppEvents, IdentityDirectoryEvents and DeviceEvents rows (type-suffixed columns such as
    ``ReportId_long``): CloudAppEvents' RawEventData is mapped as the UAL record it is, even where Defender
    wrote its lists as PowerShell text (``@{Value=Bind; Name=MailAccessType}``); the other rows are kept."""
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([OTRF / "Microsoft365DefenderEvents.json"])
    assert (res["format"], res["records"], res["imported"], res["quarantined"]) == ("defender-hunting-json", 9, 9, 0)
    ev = case.read_events()
    mail = ev[ev["record_id"] == MAIL_RECORD].iloc[0]
    assert (mail["source"], mail["user"], mail["mailbox"], mail["ip"], mail["mail_access_type"], mail["items"]) == (
        "mail_access", ACTOR, ACTOR, "1.2.3.4", "Bind", 7)
    assert list(mail["folders"]) == ["\\Inbox"] and list(mail["message_ids"]) == []  # FolderItems=System.Object[]
    assert mail["app_id"] == "00000003-0000-0000-c000-000000000000"
    replication = ev[ev["operation"] == "Directory Services replication"]
    assert len(replication) == 2 and set(replication["ip"]) == {"192.168.2.5"} and set(replication["user"]) == {ACTOR}
    assert (ev["operation"] == "LdapSearch").sum() == 5


def test_defender_copy_never_hides_the_first_hand_record(case_dir: Path) -> None:
    """The same MailItemsAccessed record in Defender's export (message ids lost) and in OfficeActivity
    (7 message ids): imported in one call, the first-hand record is the one kept, whatever the order named."""
    case = Case.open(case_dir, writable=True)
    res = case.import_files([OTRF / "Microsoft365DefenderEvents.json", OTRF / "OfficeActivityEvents.json"])
    assert [Path(r["path"]).name for r in res] == ["Microsoft365DefenderEvents.json", "OfficeActivityEvents.json"]
    assert [(r["imported"], r["duplicates"]) for r in res] == [(8, 1), (1, 0)]
    mail = case.read_events().set_index("record_id").loc[MAIL_RECORD]
    assert len(mail["message_ids"]) == 7


def test_plaso_management_api_records(case_dir: Path) -> None:
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([REAL / "plaso" / "microsoft_audit_log.jsonl"])
    assert (res["format"], res["imported"]) == ("management-api", 4)
    ev = case.read_events().set_index("operation")
    logon = ev.loc["UserLoggedIn"]
    assert (logon["time"], logon["user"], logon["user_id"], logon["ip"], logon["result"], logon["target"]) == (
        T("2022-05-08T15:13:41Z"), "piet@sst5f.onmicrosoft.com", "55425677-a6b7-4df1-8068-709eb4162d42", "0.0.0.0",
        "success", "00000003-0000-0000-c000-000000000000")
    plan = ev.loc["Set-MailboxPlan"]
    assert plan["target"].endswith("ExchangeOnlineDeskless-96d3a052-0b63-4281-aae5-cfb3ad49523e")
    assert plan["user_id"] is None  # UserKey "NT AUTHORITY\SYSTEM (...)" is no object id


@pytest.mark.parametrize("path", sorted(p for p in REAL.rglob("*") if p.is_file()), ids=lambda p: p.name)
def test_real_files_same_both_ways(tmp_path: Path, path: Path) -> None:
    res, events = same_case(tmp_path, path)
    assert res["imported"] == len(events) > 0 and res["quarantined"] == 0


def test_msticpy_sentinel_security_alerts_are_alerts(case_dir: Path) -> None:
    """Sentinel SecurityAlert rows (a Log Analytics query API body from msticpy's test data) are alerts, never
    sign-ins (their TimeGenerated and Status once made them read as interactive sign-ins without a user)."""
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([REAL / "msticpy" / "az_mon_raw_query_securityalert.json"])
    assert (res["format"], res["imported"], res["quarantined"]) == ("log-analytics-json", 2, 0)
    ev = case.read_events().set_index("record_id")
    alert = ev.loc["c19a6ccd-40a6-9ef9-5a8b-598bcc3c53b0"]
    assert (alert["time"], alert["source"], alert["operation"], alert["result"], alert["target"]) == (
        T("2023-02-20T11:04:02.637163Z"), "tenant_snapshot", "securityAlert", "medium",
        "Linux security related process termination activity detected")
    assert not ev["source"].str.startswith("signin").any()
