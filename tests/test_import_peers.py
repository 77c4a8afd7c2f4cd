"""Peer tools' output folders (issue 15): Hawk and Untitled Goose Tool, as they write them.

The fixtures in tests/data/import/hawk and goose follow the file names and shapes those tools write,
read in their source (tests/data/SOURCES.md): Hawk's Out-MultipleFileType (Windows PowerShell 5.1
``ConvertTo-Json`` with ``\\/Date(ms)\\/`` times, ``Export-Csv`` with nested objects as type names or
``@{Name=Value; ...}``), Goose's JSON lines per source. Each folder is imported whole; each file also
both ways (fast path and per record) with identical results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import TESTDATA
from test_import_fast import same_case

from ir_toolkit.case import Case

HAWK = TESTDATA / "import" / "hawk"
GOOSE = TESTDATA / "import" / "goose" / "output"
SESSION = "0bd6ac7f-2e5c-4a3b-9f0e-6f6a3b1c9d11"
DANA_ID = "1b5ba0d3-9a65-4c57-8c6d-6d1b36e8b7c1"
T = pd.Timestamp


def _folder(case_dir: Path, folder: Path) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    case = Case.open(case_dir, writable=True)
    res = case.import_files([folder])
    return res, case.read_events(), case.quarantined()


def test_hawk_folder_json_before_csv_every_field_from_the_record(case_dir: Path) -> None:
    res, ev, q = _folder(case_dir, HAWK)
    got = [(Path(r["path"]).name, r["format"], r["imported"], r["duplicates"]) for r in res]
    assert got == [
        ("EntraIDAuditLogs.json", "graph-directory-audits", 1, 0), ("EntraIDAuditLogs.csv", "log-analytics-csv", 0, 1),
        ("Entra_Sign_In_Log_dana@contoso.com_dana.json", "graph-signins", 2, 0),
        ("Entra_Sign_In_Log_dana@contoso.com_dana.csv", "log-analytics-csv", 0, 2),
        ("MailItemsAccessed_dana@contoso.com_dana.json", "management-api", 1, 0),
        ("MailItemsAccessed_dana@contoso.com_dana.csv", "log-analytics-csv", 0, 1),
        ("User_Changes_dana.json", "graph-audit-records", 1, 0)]
    assert q.empty and all(r["status"] == "imported" for r in res)
    ev = ev.set_index("record_id")
    fail, ok = ev.loc["5e1d0000-0000-4000-8000-000000000002"], ev.loc["5e1d0000-0000-4000-8000-000000000001"]
    assert (fail["time"], fail["result"], fail["error_code"]) == (T("2023-06-16T02:50:00Z"), "failure", 50126)
    assert (ok["time"], ok["result"], ok["user"], ok["user_id"], ok["ip"], ok["country"]) == (
        T("2023-06-16T02:51:00Z"), "success", "dana@contoso.com", DANA_ID, "203.0.113.9", "NL")
    assert ok["app_id"] == "d3590ed6-52b3-4102-aeff-aad2292ab01c" and ok["source"] == "signin_interactive"
    audit = ev.loc["Directory_c0ffee00-0000-4000-8000-000000000001_ABCDE_1"]
    assert (audit["time"], audit["operation"], audit["user"], audit["user_id"], audit["ip"], audit["user_agent"],
            audit["target"]) == (T("2023-06-16T02:53:00Z"), "Add service principal credentials", "dana@contoso.com",
                                 DANA_ID, "203.0.113.9", "AADInternals", "Mail Sync")
    mail = ev.loc["7a3e0000-0000-4000-8000-000000000001"]
    assert (mail["source"], mail["mailbox"], mail["session_id"], mail["token_id"], mail["mail_access_type"]) == (
        "mail_access", "dana@contoso.com", SESSION, "x9QmZ0l0akWq1m3Rk2ABAA", "Bind")
    assert list(mail["message_ids"]) == ["<m1@contoso.com>", "<m2@contoso.com>"] and mail["items"] == 2
    assert mail["token_issued_at"] == T("2023-06-16T02:50:58Z") and mail["exchange_session_id"] is not None
    rule = ev.loc["7a3e0000-0000-4000-8000-000000000102"]  # Search-UnifiedAuditLog results: AuditData as text
    assert (rule["time"], rule["operation"], rule["target"], rule["ip"]) == (T("2023-06-16T02:53:10Z"),
                                                                            "New-InboxRule", ".rss", "203.0.113.9")


def test_hawk_csv_alone_reads_powershell_objects_and_locale_times(case_dir: Path) -> None:
    """Export-Csv writes a nested object read from JSON as ``@{AADSessionId=...; ...}`` and a list as
    ``System.Object[]``: the session and token come from the first, the second holds nothing to read."""
    case = Case.open(case_dir, writable=True)
    res = case.import_files([HAWK / "dana@contoso.com" / "MailItemsAccessed_dana@contoso.com_dana.csv",
                             HAWK / "dana@contoso.com" / "Entra_Sign_In_Log_dana@contoso.com_dana.csv"])
    assert [r["imported"] for r in res] == [1, 2]
    ev = case.read_events().set_index("record_id")
    mail = ev.loc["7a3e0000-0000-4000-8000-000000000001"]
    assert (mail["time"], mail["session_id"], mail["token_id"], mail["token_issued_at"], mail["client_app_id"]) == (
        T("2023-06-16T02:55:12Z"), SESSION, "x9QmZ0l0akWq1m3Rk2ABAA", T("2023-06-16T02:50:58Z"),
        "d3590ed6-52b3-4102-aeff-aad2292ab01c")
    assert list(mail["message_ids"]) == [] and mail["mail_access_type"] is None  # System.Object[]: not in the file
    signin = ev.loc["5e1d0000-0000-4000-8000-000000000001"]
    assert (signin["time"], signin["user"], signin["ip"]) == (T("2023-06-16T02:51:00Z"), "dana@contoso.com",
                                                              "203.0.113.9")
    assert signin["result"] is None  # Status was written as its type name


def test_untitled_goose_tool_folder(case_dir: Path) -> None:
    res, ev, q = _folder(case_dir, GOOSE.parent)
    got = {Path(r["path"]).name: (r["format"], r["imported"]) for r in res}
    assert got == {"entraidauditlog_2023-06-16.json": ("graph-directory-audits", 1),
                   "adfs_signin_log_2023-06-16.json": ("graph-signins", 2),
                   "EXO_InboxRules_Graph.json": ("exchange-inbox-rules", 2),
                   "EXO_InboxRules_PowerShell.json": ("exchange-inbox-rules", 1),
                   "ual_2023-06-16T00_00_00_2023-06-17T00_00_00.json": ("management-api", 2)}
    assert q.empty
    signins = ev[ev["source"] == "signin_interactive"].sort_values("time")
    assert signins["result"].tolist() == ["failure", "success"]
    assert signins["session_id"].tolist() == [SESSION] * 2
    assert signins["token_id"].tolist() == ["x9QmZ0l0akWq1m3Rk2ABA0", "x9QmZ0l0akWq1m3Rk2ABA1"]
    ual = ev[ev["source"].isin(["mail_access", "audit_other"])].set_index("operation")
    assert ual.loc["MailItemsAccessed", "token_id"] == ual.loc["New-InboxRule", "token_id"] == "x9QmZ0l0akWq1m3Rk2ABA1"
    assert ual.loc["New-InboxRule", "target"] == ".rss" and ual.loc["New-InboxRule", "ip"] == "203.0.113.9"
    rules = ev[ev["source"] == "tenant_snapshot"].sort_values("record_id")
    assert rules["target"].tolist() == [".rss", "fwd", "fwd"]
    assert set(rules["mailbox"]) == {"dana@contoso.com"}  # the Graph lines' owner marker named it
    audit = ev[ev["source"] == "directory_audit"].iloc[0]
    assert (audit["time"], audit["user_agent"]) == (T("2023-06-16T02:53:00Z"), "AADInternals")


@pytest.mark.parametrize("path", sorted(p for p in (*HAWK.rglob("*.*"), *GOOSE.rglob("*.json")) if p.is_file()),
                         ids=lambda p: p.name)
def test_peer_files_same_both_ways(tmp_path: Path, path: Path) -> None:
    res, events = same_case(tmp_path, path)
    assert res["imported"] == len(events) > 0 and res["quarantined"] == 0


def test_powershell_dates_and_objects() -> None:
    from ir_toolkit.sources.fields import parse_text, powershell_object
    from ir_toolkit.timeutil import parse_time

    assert parse_time("/Date(1686883860000)/") == T("2023-06-16T02:51:00Z")
    assert parse_time("/Date(1686883860000+0200)/") == T("2023-06-16T02:51:00Z")  # the offset is display only
    assert parse_time("/Date(-1000)/") == T("1969-12-31T23:59:59Z")
    far = parse_time("/Date(999999999999999)/")  # read, then quarantined at import as beyond TIME_MAX
    assert far is not None and far.year > 2200
    assert parse_time("/Date(99999999999999999999)/") is None and parse_time("/Date(x)/") is None
    assert powershell_object("@{AADSessionId=s; Note=a; b=c; UniqueTokenId=u}") == {
        "AADSessionId": "s", "Note": "a", "b": "c", "UniqueTokenId": "u"}
    assert powershell_object("@{Subject=re; hello world; Id=1}") == {"Subject": "re; hello world", "Id": "1"}
    assert powershell_object("@{}") == {} and powershell_object("@{no pair}") is None
    assert parse_text("@{IssuedAtTime=2023-06-16T02:50:58}") == {"IssuedAtTime": "2023-06-16T02:50:58"}
    assert powershell_object("@{" + "a=" * 3 + "}") == {"a": "a=a="}  # the first '=' names the field
    assert len(powershell_object("@{" + "".join(f"k{i}=v; " for i in range(20_000)) + "z=1}") or {}) == 20_001


def test_hawk_simple_file_flattened_app_access_context(case_dir: Path, tmp_path: Path) -> None:
    """Hawk's Get-SimpleUnifiedAuditLog flattens AuditData: ``AppAccessContext_AADSessionId`` and the like."""
    f = tmp_path / "Simple_MailItemsAccessed_dana.csv"
    f.write_text('"CreationTime","Workload","RecordType","Operation","ResultStatus","ClientIP","UserId","Id",'
                 '"OrganizationId","UserKey","AppAccessContext_AADSessionId","AppAccessContext_UniqueTokenId",'
                 '"AppAccessContext_IssuedAtTime","MailboxOwnerUPN","MailboxGuid"\r\n'
                 '"2023-06-16T02:55:12","Exchange","50","MailItemsAccessed","Succeeded","203.0.113.9",'
                 '"dana@contoso.com","7a3e0000-0000-4000-8000-000000000009","4b2462a4-bbee-495a-a0e1-f23ae524cc9c",'
                 f'"{DANA_ID}","{SESSION}","x9Qm","2023-06-16T02:50:58","dana@contoso.com","2f6a0000"\r\n',
                 encoding="utf-8-sig")
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    mail = case.read_events().iloc[0]
    assert res["imported"] == 1 and mail["source"] == "mail_access" and mail["mailbox"] == "dana@contoso.com"
    assert (mail["session_id"], mail["token_id"], mail["token_issued_at"]) == (SESSION, "x9Qm",
                                                                               T("2023-06-16T02:50:58Z"))


def test_hand_written_sql_knows_every_field_the_maps_read() -> None:
    """The Purview and sign-in fast paths are SQL written by hand: every top-level field maps/ual.yaml and
    maps/signin.yaml read is one the SQL reads or sends down the per-record path (DROP), so a field added to
    a map cannot make the two paths differ silently."""
    from ir_toolkit.sources import fastsql
    from ir_toolkit.sources.fieldmap import FIELD_MAPS

    for name, keys in (("ual", fastsql.UAL_KEYS[""]), ("signin", fastsql.SIGNIN_KEYS[""])):
        read = {p.steps[0][0] for rule in FIELD_MAPS[name].rules for p in rule.paths}
        assert read <= set(keys), (name, sorted(read - set(keys)))


def test_purview_row_with_hawk_flattened_fields_same_both_ways(tmp_path: Path) -> None:
    import csv
    import io
    import json

    rec = {"CreationTime": "2023-06-16T02:55:12", "Id": "aa3e0000-0000-4000-8000-000000000001",
           "Operation": "MailItemsAccessed", "UserId": "dana@contoso.com", "ResultStatus": "Succeeded",
           "Workload": "Exchange", "AppAccessContext_AADSessionId": SESSION, "MailboxOwnerUPN": "dana@contoso.com"}
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData", "AssociatedAdminUnits",
                "AssociatedAdminUnitsNames"])
    w.writerow([rec["Id"], "2023-06-16T02:55:12.0000000Z", "50", "MailItemsAccessed", "dana@contoso.com",
                json.dumps(rec), "", ""])
    f = tmp_path / "purview.csv"
    f.write_text(out.getvalue(), encoding="utf-8")
    res, events = same_case(tmp_path, f)
    assert res["format"] == "purview-csv" and events["session_id"].tolist() == [SESSION]
