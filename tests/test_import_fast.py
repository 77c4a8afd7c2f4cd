"""The DuckDB fast import path gives the same case as the per-record path (issue 4 performance).

Each test imports the same file twice, once with ``fast=True`` and once with ``fast=False``, and
compares counts, events (every column; ``raw`` as the JSON value it holds) and quarantine entries.
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import DATA, TESTDATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir_toolkit.case import Case
from ir_toolkit.case.importing import import_files
from ir_toolkit.sources import fastdocs, fastrows
from ir_toolkit.sources.reader import Opened

TENANT = DATA / "sample-tenant"
IMPORT = TESTDATA / "import"
FASTLOG = "ir_toolkit.sources.fastpath"


def _signins() -> list[dict[str, Any]]:
    return [r for f in sorted((TENANT / "entra").glob("signins_*/page-*.json.gz"))
            for r in json.loads(gzip.decompress(f.read_bytes()))["value"]]


def _purview_rows() -> list[list[str]]:
    with gzip.open(TENANT / "purview" / "audit_search_export.csv.gz", "rt", encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _normal(v: Any) -> Any:
    if isinstance(v, list | tuple) or hasattr(v, "tolist"):
        return [_normal(x) for x in list(v)]
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def _case(root: Path, path: Path, fast: bool, batch_size: int) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    case = Case.init(root, tenant="contoso.com")
    [res] = import_files(case, [path], fast=fast, batch_size=batch_size)
    events = case.read_events().sort_values(["evidence"], key=lambda s: s.map(lambda e: int(e.rsplit("#", 1)[1])))
    return res, events.reset_index(drop=True), case.quarantined()


def same_case(tmp_path: Path, path: Path, batch_size: int = 50_000) -> tuple[dict[str, Any], pd.DataFrame]:
    """Import ``path`` both ways; assert the same counts, events and quarantine; return counts and events."""
    res_f, ev_f, q_f = _case(tmp_path / "fast", path, True, batch_size)
    res_s, ev_s, q_s = _case(tmp_path / "slow", path, False, batch_size)
    assert res_f == res_s
    assert res_f["records"] == res_f["imported"] + res_f["duplicates"] + res_f["quarantined"]
    assert list(ev_f.columns) == list(ev_s.columns) and len(ev_f) == len(ev_s)
    for col in ev_s.columns:
        fast, slow = ev_f[col].tolist(), ev_s[col].tolist()
        if col == "raw":
            fast, slow = [json.loads(r) for r in fast], [json.loads(r) for r in slow]
        else:
            fast, slow = [_normal(v) for v in fast], [_normal(v) for v in slow]
        diff = [i for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b]
        assert not diff, f"{col}: row {diff[0]}: fast {fast[diff[0]]!r}, per record {slow[diff[0]]!r}"
    assert [{k: _normal(v) for k, v in r.items()} for r in q_f.to_dict("records")] == \
        [{k: _normal(v) for k, v in r.items()} for r in q_s.to_dict("records")]
    return res_f, ev_f


def test_sample_tenant_signins_as_array_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "signins.json"
    path.write_text(json.dumps(_signins()), "utf-8")
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, events = same_case(tmp_path, path, batch_size=2000)
    assert not [r for r in caplog.records if r.name == FASTLOG]  # DuckDB read the whole file
    assert res["format"] == "graph-signins" and res["imported"] == len(_signins())
    assert set(events["source"]) == {"signin_interactive", "signin_noninteractive", "signin_serviceprincipal"}


def test_sample_tenant_purview_csv_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.csv.gz"
    path.write_bytes((TENANT / "purview" / "audit_search_export.csv.gz").read_bytes())
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, events = same_case(tmp_path, path, batch_size=5000)
    assert not [r for r in caplog.records if r.name == FASTLOG]
    assert res["format"] == "purview-csv" and res["quarantined"] == 0
    mail = events[events["source"] == "mail_access"]
    assert len(mail) > 10_000 and mail["message_ids"].map(len).sum() > 0 and mail["token_id"].notna().sum() > 1000
    assert events["target"].notna().any()


def _odd_signins() -> list[Any]:
    base = _signins()[:40]
    odd: list[Any] = [copy.deepcopy(r) for r in base]
    odd[1]["UserPrincipalName"] = odd[1].pop("userPrincipalName")  # another spelling: per record
    odd[2]["status"]["errorCode"] = "50126"  # text where a number is expected
    odd[3]["createdDateTime"] = "9/20/2023 4:05:03 AM"  # locale time
    odd[4]["createdDateTime"] = "never"  # no readable time: quarantined
    odd[5]["location"] = "Redmond, Washington, US"
    odd[6]["ipAddress"] = "[2001:db8::1]:443"
    odd[7]["autonomousSystemNumber"] = 123456789012345678901234  # beyond 64 bits
    odd[8]["signInEventTypes"] = ["servicePrincipal"]
    odd[8]["userPrincipalName"] = ""
    odd[9]["managedServiceIdentity"] = {"msiType": "systemAssigned"}
    odd[10]["id"] = odd[11]["id"]  # a duplicate record id
    odd[12]["status"] = None
    odd[13]["userAgent"] = "  padded\t"
    odd[14]["activityDisplayName"] = "Add user"  # a directory audit, not a sign-in
    odd[15]["signInEventTypes"] = ["interactiveUser", 5]  # a number among the event types
    odd[16]["signInEventTypes"] = [None]
    return [*odd[:20], 5, "text", [1], *odd[20:], {"no": "idea"}]


def test_odd_signins_same_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(_odd_signins()), "utf-8")
    res, events = same_case(tmp_path, path, batch_size=7)
    # never, 5, "text", [1], {"no"}; the audit without an activity time is dated by its own createdDateTime
    assert res["quarantined"] == 5 and res["duplicates"] == 1
    assert "2001:db8::1" in set(events["ip"])


def test_page_inside_array_and_truncation_fall_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = _signins()[:30]
    page = {"@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns", "value": records[20:25]}
    path = tmp_path / "paged.json"
    path.write_text(json.dumps([*records[:20], page, *records[25:]]), "utf-8")
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, _ = same_case(tmp_path / "a", path, batch_size=8)
    assert res["records"] == 30 and res["imported"] == 30
    assert [r for r in caplog.records if "per-record import from record 17" in r.getMessage()]
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(records)[:-900], "utf-8")
    res, _ = same_case(tmp_path / "b", cut, batch_size=8)
    assert res["quarantined"] == 1 and res["imported"] == 29


def test_odd_purview_rows_same_both_ways(tmp_path: Path) -> None:
    rows = _purview_rows()[:60]
    header = rows[0]
    audit = header.index("AuditData")

    def edit(i: int, change: Any) -> None:
        data = json.loads(rows[i][audit])
        change(data)
        rows[i][audit] = json.dumps(data)

    rows[1][audit] = '{"CreationTime": "2023-06-16T15:58:37", "Id": '  # broken AuditData
    rows[2][audit] = "[1, 2]"  # not an object
    edit(3, lambda d: d.pop("UserId"))  # filled from the CSV column
    edit(4, lambda d: d.update(Operation="New-InboxRule", Parameters=[{"Name": "Name", "Value": "x"}]))
    edit(5, lambda d: d.update(ClientIPAddress="[2001:db8::5]:1234"))
    edit(6, lambda d: d.update(AppAccessContext='{"UniqueTokenId": "abc"}'))  # nested object as text
    edit(7, lambda d: d.update(OperationCount="4"))
    edit(8, lambda d: d.update(userId=d.pop("UserId")))
    edit(9, lambda d: d.update(CreationTime=""))  # the CSV's CreationDate decides
    edit(10, lambda d: d.update(Folders=[{"Path": "\\Inbox", "FolderItems": [{"InternetMessageId": ""}]}]))
    edit(11, lambda d: d.update(OperationProperties=[{"Name": "IsThrottled", "Value": "True"}]))
    edit(12, lambda d: d.update(UserKey="1B5BA0D3-9A65-4C57-8C6D-6D1B36E8B7C1"))
    edit(14, lambda d: d.update(Operation="UserLoggedIn", Target=[{"ID": "123", "Type": 0}, {"ID": "app-1"}],
                                ActorIpAddress="203.0.113.9", ClientIPAddress=""))
    edit(15, lambda d: d.update(Operation="UserLoggedIn", Target=[{"Id": "app-2"}]))  # another spelling
    edit(16, lambda d: d.update(Operation="UserLoggedIn", Target=[{"ID": " 42 "}, {"ID": "x"}]))  # blanks
    edit(17, lambda d: d.update(OperationProperties=[{"Name": 5, "Value": "x"}, "loose"]))  # a number, a text
    edit(18, lambda d: d.update(Folders=[{"Path": "\\Inbox", "FolderItems": "none"}]))  # items not a list
    edit(19, lambda d: d.update(Folders=[{"Path": "\\Inbox", "FolderItems": [None, {"InternetMessageId": 7}]}]))
    edit(20, lambda d: d.update(Operation="UserLoggedIn", Target=[{"ID": None}, {"ID": "a b"}]))
    rows[13][1] = "9/20/2023 4:05:03 AM"
    edit(13, lambda d: d.update(CreationTime=None))
    path = tmp_path / "odd.csv"
    path.write_bytes(_csv(rows))
    res, events = same_case(tmp_path, path, batch_size=9)
    assert res["quarantined"] == 2 and res["records"] == 59
    assert {"app-1", "app-2", "x"} <= set(events["target"]) and "203.0.113.9" in set(events["ip"])


def test_purview_row_of_wrong_width_falls_back_after_what_was_read(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    rows = _purview_rows()[:80]
    rows[70] = rows[70][:3]
    path = tmp_path / "short.csv"
    path.write_bytes(_csv(rows))
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, _ = same_case(tmp_path, path, batch_size=10)
    assert res["quarantined"] == 1 and res["records"] == 79
    assert [r for r in caplog.records if r.name == FASTLOG and "per-record import" in r.getMessage()]


@pytest.mark.parametrize("tail, quarantined", [("\n" + "[]", 0), (" trailing garbage", 1), ('\n{"a": 1}', 1)])
def test_what_follows_the_array_is_read_as_per_record(tmp_path: Path, tail: str, quarantined: int) -> None:
    records = _signins()[:6]
    path = tmp_path / "tail.json"
    path.write_text(json.dumps(records[:3]) + "\n" + json.dumps(records[3:]) + tail, "utf-8")
    res, _ = same_case(tmp_path, path, batch_size=4)
    assert (res["imported"], res["quarantined"]) == (6, quarantined)


def test_purview_multiline_audit_data_and_crlf_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = _purview_rows()[:40]
    audit = rows[0].index("AuditData")
    for i in (3, 17, 30):  # pretty-printed AuditData: quoted line breaks inside the field
        rows[i][audit] = json.dumps(json.loads(rows[i][audit]), indent=2)
    path = tmp_path / "multiline.csv"
    path.write_bytes(_csv(rows).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, events = same_case(tmp_path, path, batch_size=7)
    assert not [r for r in caplog.records if r.name == FASTLOG]  # the fast reader read it all
    assert res["records"] == 39 and res["imported"] == 39


def test_purview_invalid_utf8_falls_back_and_matches(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = _purview_rows()[:80]
    data = _csv(rows)
    cut = data.index(rows[60][0].encode())  # the record id that starts row 60
    path = tmp_path / "latin1.csv"
    path.write_bytes(data[:cut] + b"\xe9" + data[cut:])
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, _ = same_case(tmp_path, path, batch_size=10)
    assert res["records"] == 79 and res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
    assert [r for r in caplog.records if r.name == FASTLOG and "per-record import" in r.getMessage()]


def test_purview_blank_lines_and_no_final_newline_same_both_ways(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    rows = _purview_rows()[:30]
    lines = _csv(rows).decode("utf-8-sig").splitlines(keepends=True)
    text = "".join(lines[:10]) + "\r\n\r\n" + "".join(lines[10:20]) + "\n" + "".join(lines[20:]).rstrip("\r\n")
    path = tmp_path / "blanks.csv"
    path.write_bytes(text.encode("utf-8-sig"))
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, _ = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == FASTLOG]  # blank lines are skipped, not a reason to stop
    assert res["records"] == 29 and res["imported"] == 29


def _item_group(op: str, n: int, **extra: Any) -> dict[str, Any]:
    """An ExchangeItemGroup record (RecordType 3): ``op`` on ``n`` items of dana's Inbox."""
    return {"CreationTime": f"2023-06-16T03:0{n}:00", "Id": f"7e57c0de-0000-4000-8000-00000000{n:04d}",
            "Operation": op, "OrganizationId": "4b2462a4-bbee-495a-a0e1-f23ae524cc9c", "RecordType": 3,
            "ResultStatus": "Succeeded", "UserKey": "10032002A1B2C3D4", "UserType": 0, "Version": 1,
            "Workload": "Exchange", "ClientIP": "203.0.113.9", "UserId": "dana@contoso.com",
            "ClientIPAddress": "203.0.113.9", "ClientInfoString": "Client=OWA;Mozilla/5.0",
            "SessionId": "b1d2c3e4-0000-4000-8000-000000000001", "AppId": "app-owa", "ClientAppId": "",
            "MailboxGuid": "5f5f5f5f-0000-4000-8000-000000000001", "MailboxOwnerUPN": "dana@contoso.com",
            "LogonType": 0, "ExternalAccess": False, "CrossMailboxOperation": False,
            "AppAccessContext": {"UniqueTokenId": f"tok-{n}", "AADSessionId": "ses-1"},
            "Folder": {"Id": "LgAAAAB", "Path": "\\Inbox"},
            "AffectedItems": [{"Id": f"RgAAAA{i}", "InternetMessageId": f"<alert-{n}-{i}@contoso.com>",
                               "ParentFolder": {"Id": "LgAAAAB", "Path": "\\Inbox"},
                               "Subject": f"Unusual sign-in activity {i}", "Attachments": ""} for i in range(n)],
            **extra}


def _group_id(i: int) -> str:
    return f"7e57c0de-0000-4000-8000-{i:012d}"


def _item_group_rows() -> list[list[str]]:
    """Purview rows: deletes and moves, well formed and malformed, among sample rows."""
    rows = _purview_rows()[:30]
    audit = rows[0].index("AuditData")
    dest = {"DestFolder": {"Id": "LgAAAAC", "Path": "\\Deleted Items"}}
    records = [
        _item_group("SoftDelete", 3), _item_group("HardDelete", 2, Folder={"Id": "x", "Path": "\\Deleted Items"}),
        _item_group("MoveToDeletedItems", 1, **dest),
        _item_group("Move", 2, DestFolder={"Id": "LgAAAAD", "Path": "\\RSS Subscriptions"}),
        _item_group("SoftDelete", 1, AffectedItems="not a list"),
        _item_group("SoftDelete", 2, AffectedItems=[5, {"Id": "RgA", "Subject": "no message id"}]),
        _item_group("HardDelete", 1, AffectedItems=[{"InternetMessageId": 7, "ParentFolder": "\\Inbox"}]),
        _item_group("SoftDelete", 2, AffectedItems=json.dumps([{"InternetMessageId": "<t@x>"}])),  # list as text
        _item_group("SoftDelete", 1, AffectedItems=[], Folder=None),
        _item_group("MoveToDeletedItems", 1, Folder="\\Inbox", DestFolder={"path": "\\Deleted Items"}),
        _item_group("SoftDelete", 2, AffectedItems=[{"internetMessageId": "<lower@x>",
                                                     "ParentFolder": {"Path": "\\Sent Items"}}]),
        _item_group("Move", 1, DestFolder={"Id": "d", "Path": ""}, ObjectId=""),
    ]
    for i, rec in enumerate(records):
        rec["Id"] = f"7e57c0de-0000-4000-8000-{i:012d}"
        row = list(rows[1 + i])
        row[audit] = json.dumps(rec)
        row[0], row[3], row[2] = rec["Id"], rec["Operation"], "3"
        rows.append(row)
    return rows


def test_item_group_records_same_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "deletes.csv"
    path.write_bytes(_csv(_item_group_rows()))
    res, events = same_case(tmp_path, path, batch_size=8)
    assert res["quarantined"] == 0 and res["imported"] == res["records"]
    ev = events.set_index("record_id")
    soft = ev.loc[_group_id(0)]
    assert soft["source"] == "audit_other" and soft["items"] == 3 and soft["mailbox"] == "dana@contoso.com"
    assert list(soft["message_ids"]) == [f"<alert-3-{i}@contoso.com>" for i in range(3)]
    assert list(soft["folders"]) == ["\\Inbox"] and soft["exchange_session_id"].startswith("b1d2c3e4")
    move = ev[ev["operation"] == "Move"].iloc[0]
    assert list(move["folders"]) == ["\\Inbox", "\\RSS Subscriptions", ] and move["target"] == "\\RSS Subscriptions"
    assert ev[ev["operation"] == "MoveToDeletedItems"]["target"].tolist()[0] == "\\Deleted Items"
    malformed = ev[(ev["operation"] == "SoftDelete") & (ev["items"].isna())]
    assert len(malformed) == 1 and "not a list" in malformed["raw"].iloc[0]
    assert list(malformed["message_ids"].iloc[0]) == []


def test_item_group_records_fast_sql_maps_well_formed_ones(tmp_path: Path) -> None:
    """The well-formed deletes are mapped by the SQL itself (``ok``), not sent down the per-record path."""
    import duckdb

    from ir_toolkit.sources import fastsql

    rows = _item_group_rows()
    con = duckdb.connect()
    table = pd.DataFrame(rows[1:], columns=rows[0])
    con.register("rows", table)
    out = con.sql(fastsql.purview_stage2(f"({fastsql.purview_stage1('rows')})")).df()
    ok = dict(zip(out["record_id"], out["ok"], strict=True))
    assert all(ok[_group_id(i)] for i in (0, 1, 2, 3, 8, 11))
    assert not any(ok[_group_id(i)] for i in (4, 5, 6, 7, 9))  # malformed: per record
    assert list(out.set_index("record_id").loc[_group_id(11), "group_folders"]) == ["\\Inbox"]


SAMPLE_TENANT_ID = "8597fcb4-6155-4c8f-a52d-3049c93417c4"  # the sample tenant's (its rows come first)


def _logon(n: int, **extra: Any) -> dict[str, Any]:
    """An Entra logon seen by the unified audit log (UserLoggedIn, RecordType 15), as the Management API writes it."""
    return {"CreationTime": f"2023-06-16T02:5{n}:00", "Id": f"10900000-0000-4000-8000-{n:012d}",
            "Operation": "UserLoggedIn", "OrganizationId": SAMPLE_TENANT_ID, "RecordType": 15,
            "ResultStatus": "Success", "UserKey": "1b5ba0d3-9a65-4c57-8c6d-6d1b36e8b7c1", "UserType": 0,
            "Version": 1, "Workload": "AzureActiveDirectory", "ClientIP": "203.0.113.9",
            "ObjectId": "00000002-0000-0ff1-ce00-000000000000", "UserId": "dana@contoso.com",
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [{"Name": "ResultStatusDetail", "Value": "Redirect"},
                                   {"Name": "UserAgent", "Value": f"Mozilla/5.0 (X11; Linux x86_64) agent-{n}"},
                                   {"Name": "RequestType", "Value": "OAuth2:Authorize"}],
            "ModifiedProperties": [], "Actor": [{"ID": "1b5ba0d3-9a65-4c57-8c6d-6d1b36e8b7c1", "Type": 0}],
            "ActorIpAddress": "203.0.113.9", "InterSystemsId": "d2c6c1f0-0000-4000-8000-000000000001",
            "Target": [{"ID": "00000002-0000-0ff1-ce00-000000000000", "Type": 0}],
            "ApplicationId": "89BEE1F7-5E6E-4D8A-9F3D-ECD601259DA7",
            "DeviceProperties": [{"Name": "OS", "Value": "Linux"}, {"Name": "BrowserType", "Value": "Firefox"},
                                 {"Name": "SessionId", "Value": f"F6C2B5F0-0000-4000-8000-00000000000{n}"}],
            "ErrorNumber": "0", **extra}


def test_entra_logon_fields_same_both_ways(tmp_path: Path) -> None:
    """UserLoggedIn / UserLoginFailed: ApplicationId, the User-Agent and the Entra session are columns, not raw only."""
    rows = _purview_rows()[:20]
    audit = rows[0].index("AuditData")
    records = [
        _logon(1), _logon(2, Operation="UserLoginFailed", ResultStatus="Failed", ErrorNumber="50126"),
        _logon(3, ExtendedProperties=json.dumps(_logon(3)["ExtendedProperties"])),  # list as text: per record
        _logon(4, DeviceProperties=[{"name": "SessionId", "value": "lower-spelling"}]),  # another spelling
        _logon(5, DeviceProperties=[{"Name": "SessionId", "Value": 5}]),  # a number
        _logon(6, ExtendedProperties=[]),
        _logon(7, ClientInfoString="Client=OWA"),  # the record's own agent wins
        _logon(8, AppAccessContext={"AADSessionId": "ctx-session"}),  # the token's session wins
        _logon(9, ApplicationId="", AppId="app-9"),
    ]
    for i, rec in enumerate(records):
        row = list(rows[1 + i])
        row[audit] = json.dumps(rec)
        row[0], row[3], row[2] = rec["Id"], rec["Operation"], "15"
        rows.append(row)
    path = tmp_path / "logons.csv"
    path.write_bytes(_csv(rows))
    res, events = same_case(tmp_path, path, batch_size=8)
    assert res["quarantined"] == 0 and res["imported"] == res["records"]
    ev = events.set_index("record_id")

    def row(n: int) -> Any:
        return ev.loc[f"10900000-0000-4000-8000-{n:012d}"]

    assert row(1)["app_id"] == "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7"
    assert row(1)["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64) agent-1"
    assert row(1)["session_id"] == "f6c2b5f0-0000-4000-8000-000000000001"
    assert row(2)["operation"] == "UserLoginFailed" and row(2)["session_id"].endswith("2")
    assert row(3)["user_agent"].endswith("agent-3")
    assert row(4)["session_id"] == "lower-spelling" and row(5)["session_id"] == "5"
    assert pd.isna(row(6)["user_agent"]) and row(7)["user_agent"] == "Client=OWA"
    assert row(8)["session_id"] == "ctx-session" and row(9)["app_id"] == "app-9"


def test_entra_logon_fields_fast_sql_maps_well_formed_ones() -> None:
    import duckdb

    from ir_toolkit.sources import fastsql

    rows = [list(fastsql.PURVIEW_HEADER)]
    for rec in [_logon(1), _logon(2, DeviceProperties="[]"), _logon(3, ExtendedProperties=[7])]:
        rows.append([rec["Id"], rec["CreationTime"], "15", rec["Operation"], rec["UserId"], json.dumps(rec), "", ""])
    con = duckdb.connect()
    con.register("rows", pd.DataFrame(rows[1:], columns=rows[0]))
    out = con.sql(fastsql.purview_stage2(f"({fastsql.purview_stage1('rows')})")).df().set_index("record_id")
    assert out["ok"].tolist() == [True, False, False]
    first = out.iloc[0]
    assert first["user_agent"].endswith("agent-1") and first["session_id"].startswith("F6C2B5F0")
    assert first["app_id"] == "89BEE1F7-5E6E-4D8A-9F3D-ECD601259DA7"


def test_excel_resaved_purview_csv_goes_per_record_with_the_same_events(tmp_path: Path) -> None:
    """A `;` re-save is not the fast path's CSV dialect: both settings give the per-record result."""
    from ir_toolkit.sources import fastpath
    from ir_toolkit.sources.reader import probe

    rows = _purview_rows()[:25]
    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows(rows)
    path = tmp_path / "excel.csv"
    path.write_bytes(out.getvalue().encode("utf-8-sig"))
    opened, head = probe(path)
    assert opened.delimiter == ";" and fastpath.kind("purview-csv", path, opened, head) is None
    res, events = same_case(tmp_path, path, batch_size=8)
    assert (res["format"], res["imported"]) == ("purview-csv", 24)


def test_purview_audit_data_with_blanks_around_it_is_mapped_by_the_sql_and_same_both_ways(tmp_path: Path) -> None:
    """AuditData is tested as a JSON object where it stands (blanks around it, as a re-saved export may
    have) without a cast: those rows are mapped in SQL, a non-object or broken one is not."""
    import duckdb

    from ir_toolkit.sources import fastsql

    rows = _purview_rows()[:8]
    audit = rows[0].index("AuditData")
    rows[1][audit] = " \n\t" + rows[1][audit]
    rows[2][audit] = rows[2][audit] + " \r\n"
    rows[3][audit] = "  [" + rows[3][audit] + "]"  # an array holding the record: no object
    rows[4][audit] = "x" + rows[4][audit]  # not JSON
    con = duckdb.connect()
    con.register("rows", pd.DataFrame(rows[1:], columns=list(fastsql.PURVIEW_HEADER)))
    out = con.sql(fastsql.purview_stage2(f"({fastsql.purview_stage1('rows')})")).df()
    assert [bool(v) if pd.notna(v) else None for v in out["ok"]][:4] == [True, True, None, None]  # NULL: no object
    assert out["time"].notna().all() and out["user"].iloc[0] == rows[1][rows[0].index("UserId")]
    path = tmp_path / "blanks.csv"
    path.write_bytes(_csv(rows))
    res, events = same_case(tmp_path, path, batch_size=3)
    assert res["records"] == 7 and res["quarantined"] == 2  # the array and the text: no record object
    assert len(events) == 5


def test_purview_audit_data_with_a_trailing_comma_is_quarantined_both_ways(tmp_path: Path) -> None:
    """DuckDB reads ``{"a": 1,}``; the per-record decoder refuses it: the row must not be mapped by the
    SQL even when a well-formed record of the same keys came first (the shape check samples that one)."""
    rows = _purview_rows()[:4]
    audit, rid = rows[0].index("AuditData"), rows[0].index("RecordId")
    for n, (old, new) in enumerate([("}", ",}"), ("}]", "},\n]")]):  # the first record again, a comma added
        row = list(rows[1])
        data = json.loads(row[audit])
        row[rid] = data["Id"] = f"00000000-0000-4000-8000-00000000000{n}"
        text = json.dumps(data)
        row[audit] = text[:-1] + ",}" if old == "}" else text.replace(old, new, 1)
        rows.append(row)
    path = tmp_path / "commas.csv"
    path.write_bytes(_csv(rows))
    res, events = same_case(tmp_path, path, batch_size=50)
    assert res["records"] == 5 and res["quarantined"] == 2 and len(events) == 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([b",", b" ", b"\t", b"\r\n", b"}", b"]", b"{", b'"a"', b"1", b",}", b", ]"]),
                max_size=40), st.integers(1, 9))
def test_trailing_comma_scan_finds_what_the_pattern_finds(tmp_path: Path, parts: list[bytes], block: int) -> None:
    """The numpy scan answers as ``,[ \\t\\r\\n]*[}\\]]`` searched over the whole file, across block ends."""
    text = b"".join(parts)
    path = tmp_path / "scan.json"
    path.write_bytes(text)
    opened = Opened(container="json", encoding="utf-8", delimiter=",", gzip=False)
    assert fastdocs.trailing_comma(path, opened, block=block) == bool(re.search(rb",[ \t\r\n]*[}\]]", text))


def test_a_trailing_comma_in_a_signin_array_is_quarantined_both_ways(tmp_path: Path) -> None:
    records = _signins()[:40]
    text = json.dumps(records)
    cut = text.index(json.dumps(records[25])) + len(json.dumps(records[25])) - 1
    path = tmp_path / "signins.json"
    path.write_text(text[:cut] + "," + text[cut:], "utf-8")  # record 26: {..., "x": 1,}
    res, events = same_case(tmp_path, path, batch_size=8)
    assert res["quarantined"] == 1 and len(events) == res["imported"] == 39 - res["duplicates"]


def test_purview_row_bigger_than_a_csv_block_stays_on_the_fast_path(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Arrow's reader stops at a row bigger than its block: the file is read again in big blocks, the rows
    already returned skipped (blank lines before the big row too), and nothing goes per record."""
    rows = _purview_rows()[:60]
    audit = rows[0].index("AuditData")
    big = json.loads(rows[40][audit])
    big["ItemName"] = "x" * (fastrows.CSV_BLOCK + 4096)  # bigger than a block, smaller than a big one
    rows[40][audit] = json.dumps(big)
    lines = _csv(rows).decode("utf-8-sig").splitlines(keepends=True)
    text = "".join(lines[:30]) + "\r\n\r\n" + "".join(lines[30:])
    path = tmp_path / "big-row.csv"
    path.write_bytes(text.encode("utf-8-sig"))
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, events = same_case(tmp_path, path, batch_size=9)
    assert not [r for r in caplog.records if r.name == FASTLOG]  # the fast reader read it all
    assert res["records"] == 59 and res["imported"] == 59
    assert len(events.loc[events["record_id"] == big["Id"], "raw"].iloc[0]) > fastrows.CSV_BLOCK
