"""Nothing the record carries is left in raw only (issue 15, Deliver 2): logons, audit user agents, nested times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import TESTDATA

from ir_toolkit.case import Case

IMPORT = TESTDATA / "import"
SESSION = "0bd6ac7f-2e5c-4a3b-9f0e-6f6a3b1c9d11"


def _import(case_dir: Path, path: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([path])
    return res, case.read_events(), case.quarantined()


def test_logon_and_the_inbox_rule_it_made_share_the_session(case_dir: Path, tmp_path: Path) -> None:
    """UserLoggedIn names the Entra session in DeviceProperties; the rule names it in AppAccessContext."""
    logon = {
        "CreationTime": "2023-06-16T02:51:00", "Id": "5b2e8c71-0000-4000-8000-000000000001",
        "Operation": "UserLoggedIn",
        "OrganizationId": "4b2462a4-bbee-495a-a0e1-f23ae524cc9c", "RecordType": 15, "ResultStatus": "Success",
        "UserKey": "1b5ba0d3-9a65-4c57-8c6d-6d1b36e8b7c1", "UserType": 0, "Version": 1,
        "Workload": "AzureActiveDirectory", "ClientIP": "203.0.113.9", "UserId": "Dana@Contoso.com",
        "ObjectId": "00000002-0000-0ff1-ce00-000000000000", "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": [{"Name": "ResultStatusDetail", "Value": "Redirect"},
                               {"Name": "UserAgent", "Value": "python-requests/2.31.0"},
                               {"Name": "RequestType", "Value": "OAuth2:Token"}],
        "ModifiedProperties": [], "Actor": [{"ID": "dana@contoso.com", "Type": 5}],
        "ActorIpAddress": "203.0.113.9", "Target": [{"ID": "00000002-0000-0ff1-ce00-000000000000", "Type": 0}],
        "ApplicationId": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "DeviceProperties": [{"Name": "OS", "Value": "Linux"}, {"Name": "SessionId", "Value": SESSION.upper()}],
        "ErrorNumber": "0",
    }
    failed = dict(logon, Id="5b2e8c71-0000-4000-8000-000000000002", Operation="UserLoginFailed",
                  ResultStatus="Failed", ErrorNumber="50126", DeviceProperties=json.dumps(logon["DeviceProperties"]))
    rule = {
        "CreationTime": "2023-06-16T02:53:10", "Id": "5b2e8c71-0000-4000-8000-000000000003",
        "Operation": "New-InboxRule", "OrganizationId": "4b2462a4-bbee-495a-a0e1-f23ae524cc9c", "RecordType": 1,
        "ResultStatus": "True", "UserKey": "1b5ba0d3-9a65-4c57-8c6d-6d1b36e8b7c1", "Workload": "Exchange",
        "ClientIP": "203.0.113.9:41234", "UserId": "dana@contoso.com", "ObjectId": "dana\\.rss",
        "AppAccessContext": {"AADSessionId": SESSION, "UniqueTokenId": "uti-rule"},
        "Parameters": [{"Name": "Name", "Value": ".rss"}, {"Name": "MoveToFolder", "Value": "RSS Feeds"}],
    }
    f = tmp_path / "ual.json"
    f.write_text(json.dumps([logon, failed, rule]))
    res, ev, _ = _import(case_dir, f)
    assert (res["format"], res["imported"]) == ("management-api", 3)
    ev = ev.set_index("operation")
    assert ev.loc["UserLoggedIn", "app_id"] == "d3590ed6-52b3-4102-aeff-aad2292ab01c"
    assert ev.loc["UserLoggedIn", "user_agent"] == "python-requests/2.31.0"
    assert ev.loc["UserLoginFailed", "user_agent"] == "python-requests/2.31.0"
    assert ev.loc["UserLoggedIn", "session_id"] == ev.loc["UserLoginFailed", "session_id"] == \
        ev.loc["New-InboxRule", "session_id"] == SESSION
    assert ev.loc["New-InboxRule", "target"] == ".rss"


def test_directory_audit_user_agent_from_additional_details(case_dir: Path, tmp_path: Path) -> None:
    page = json.loads((IMPORT / "graph_directory_audits.json").read_text())
    rec = page["value"][0]
    rec["additionalDetails"] = [{"key": "User-Agent", "value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
                                {"key": "Additional Detail Name", "value": "x"}]
    la = {"TimeGenerated": "2023-06-16T03:00:00Z", "Type": "AuditLogs", "Id": "Directory_la-1",
          "OperationName": "Add service principal credentials",
          "ActivityDisplayName": "Add service principal credentials",
          "ActivityDateTime": "2023-06-16T02:59:58Z", "Result": "success",
          "InitiatedBy": json.dumps({"user": {"userPrincipalName": "admin@contoso.com", "ipAddress": "198.51.100.4"}}),
          "AdditionalDetails": json.dumps([{"key": "User-Agent", "value": "AADInternals"}])}
    f, g = tmp_path / "audits.json", tmp_path / "la_audits.json"
    f.write_text(json.dumps(page))
    g.write_text(json.dumps([la]))
    _, ev, _ = _import(case_dir, f)
    assert ev["user_agent"].tolist() == ["Mozilla/5.0 (Windows NT 10.0; Win64; x64)"]
    res, ev, _ = _import(case_dir, g)
    assert res["format"] == "log-analytics-json" and "AADInternals" in set(ev["user_agent"])


def test_kql_export_without_time_generated_takes_the_records_own_time(case_dir: Path, tmp_path: Path) -> None:
    """``OfficeActivity | project-away TimeGenerated``: the time comes from the record itself when it has one."""
    base = {"Type": "OfficeActivity", "OfficeWorkload": "Exchange", "UserId": "dana@contoso.com",
            "ClientIP": "203.0.113.9", "OrganizationId": "4b2462a4-bbee-495a-a0e1-f23ae524cc9c"}
    records = [
        dict(base, Operation="MailItemsAccessed", OfficeId="oa-1",
             RawEventData=json.dumps({"CreationTime": "2023-06-16T03:10:00", "Operation": "MailItemsAccessed"})),
        dict(base, Operation="Send", OfficeId="oa-2", CreationTime="2023-06-16T03:11:00"),
        dict(base, Operation="Send", OfficeId="oa-3"),  # no time anywhere: quarantined
        dict(base, Operation="Send", OfficeId="oa-4", TimeGenerated="never",
             RawEventData={"CreationTime": "2023-06-16T03:12:00"}),  # unreadable time: not replaced
    ]
    f = tmp_path / "officeactivity.json"
    f.write_text(json.dumps(records))
    res, ev, q = _import(case_dir, f)
    assert (res["records"], res["imported"], res["quarantined"]) == (4, 2, 2)
    times = dict(zip(ev["record_id"], ev["time"], strict=True))
    assert times == {"oa-1": pd.Timestamp("2023-06-16T03:10:00Z"), "oa-2": pd.Timestamp("2023-06-16T03:11:00Z")}
    assert q["reason"].str.contains("no readable time").all()


def test_kql_csv_without_time_generated_and_type_is_still_read(case_dir: Path, tmp_path: Path) -> None:
    """``SigninLogs | project CreatedDateTime, UserPrincipalName, IPAddress, ResultType, Id``, as CSV."""
    f = tmp_path / "query_data.csv"
    f.write_text("CreatedDateTime [UTC],UserPrincipalName,IPAddress,ResultType,Id,AppId\n"
                 "2023-06-16T03:20:00Z,Dana@Contoso.com,203.0.113.9,0,kql-1,d3590ed6-52b3-4102-aeff-aad2292ab01c\n"
                 "2023-06-16T03:21:00Z,dana@contoso.com,203.0.113.9,50126,kql-2,d3590ed6-52b3-4102-aeff-aad2292ab01c\n")
    res, ev, _ = _import(case_dir, f)
    assert (res["format"], res["imported"]) == ("log-analytics-csv", 2)
    ev = ev.sort_values("record_id")
    assert ev["time"].tolist() == [pd.Timestamp("2023-06-16T03:20:00Z"), pd.Timestamp("2023-06-16T03:21:00Z")]
    assert ev["user"].tolist() == ["dana@contoso.com"] * 2 and ev["result"].tolist() == ["success", "failure"]
    assert ev["source"].tolist() == ["signin_interactive"] * 2
