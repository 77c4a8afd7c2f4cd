"""Defender XDR CloudAppEvents read by the fast path generated from the field maps give the same case as the
per-record path (issue 15, Deliver 5): RawEventData is mapped in SQL through the UAL map (maps/ual.yaml and
the SQL forms of its record transforms, ir_toolkit/sources/fieldsql.py); a record whose shape the SQL cannot
map exactly goes per record in its place.

Same method as tests/test_import_fastmap.py: each file imported with ``fast=True`` and ``fast=False``,
every column, the quarantine and the counts compared.
"""

from __future__ import annotations

import copy
import csv
import gzip
import json
import logging
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, TESTDATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_import_fast import same_case
from test_import_fasthunt import hunting_body
from test_import_fastmap import refused  # noqa: F401  (a fixture)

from ir_toolkit.sources import fastjson
from ir_toolkit.sources.reader import probe

IMPORT = TESTDATA / "import"
JSONLOG = "ir_toolkit.sources.fastjson"


@pytest.fixture(autouse=True)
def _cloud_app_events_in_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    """CloudAppEvents through the generated SQL (off by default: slower than per record, docs/import.md)."""
    monkeypatch.setattr(fastjson, "UNWRAP_INTO", True)


def test_cloud_app_events_go_per_record_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastjson, "UNWRAP_INTO", False)
    assert _plan(IMPORT / "defender_hunting_api.json") is None
    assert _plan(IMPORT / "defender_hunting_graph.json") is not None  # GraphApiAuditEvents: the map's own rows


@cache
def _audit_records() -> tuple[str, ...]:
    """The sample tenant's unified audit log records (Purview AuditData), a few of each operation."""
    with gzip.open(DATA / "sample-tenant" / "purview" / "audit_search_export.csv.gz", "rt", encoding="utf-8-sig",
                   newline="") as fh:
        rows = [json.loads(r["AuditData"]) for r in csv.DictReader(fh)]
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        if seen.get(r["Operation"], 0) < 12:
            seen[r["Operation"]] = seen.get(r["Operation"], 0) + 1
            out.append(json.dumps(r))
    return tuple(out)


def cloud_app_events(n: int) -> list[dict[str, Any]]:
    """``n`` CloudAppEvents rows (the API fixture's row around the sample tenant's UAL records), each its own."""
    outer = json.loads((IMPORT / "defender_hunting_api.json").read_text("utf-8"))["Results"][0]
    records = _audit_records()
    out = []
    for i in range(n):
        inner = json.loads(records[i % len(records)])
        inner["Id"] = f"{inner['Id'][:-4]}{i:04d}"
        out.append({**copy.deepcopy(outer), "ActionType": inner["Operation"], "ReportId": inner["Id"],
                    "RawEventData": inner})
    return out


def _plan(path: Path) -> fastjson.JsonPlan | None:
    opened, head = probe(path)
    return fastjson.plan(path, opened, head)


def test_api_fixture_plans_the_ual_map(tmp_path: Path) -> None:
    plan = _plan(IMPORT / "defender_hunting_api.json")
    assert plan is not None and (plan.envelope.NAME, plan.fm.NAME, plan.container) == (
        "cloud_app_event", "ual", "results")
    res, events = same_case(tmp_path, IMPORT / "defender_hunting_api.json", batch_size=1)
    assert res["imported"] == 1 and events["source"].tolist() == ["mail_access"]


@pytest.mark.parametrize("container", ["results", "graph", "array"])
def test_cloud_app_events_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                      refused: list[int], container: str) -> None:  # noqa: F811
    rows = cloud_app_events(150)
    path = tmp_path / "cloudappevents.json"
    doc = rows if container == "array" else hunting_body(rows, graph=container == "graph")  # type: ignore[arg-type]
    path.write_text(json.dumps(doc, indent=1 if container == "array" else None), "utf-8")
    plan = _plan(path)
    assert plan is not None and (plan.envelope.NAME, plan.fm.NAME) == ("cloud_app_event", "ual")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=32)
    assert not [r for r in caplog.records if r.name == JSONLOG]  # DuckDB read the whole file
    assert res["imported"] == 150 and {"mail_access", "audit_other"} <= set(events["source"])
    assert 0 < sum(refused) < 150  # the shapes the SQL does not map went per record


def test_odd_cloud_app_events_same_both_ways(tmp_path: Path, refused: list[int]) -> None:  # noqa: F811
    rows: list[Any] = cloud_app_events(60)
    del rows[1]["RawEventData"]["CreationTime"]  # the row's Timestamp fills it in
    del rows[2]["RawEventData"]["UserId"]  # the row's AccountId fills it in
    rows[3]["RawEventData"]["ObjectId"] = None
    rows[4]["RawEventData"]["Operation"] = 7  # another JSON type: per record
    rows[5]["RawEventData"] = json.dumps(rows[5]["RawEventData"])  # JSON text: per record
    rows[6]["RawEventData"] = {}  # an empty record: filled from the row, per record
    rows[7]["RawEventData"] = "not json"  # quarantined
    rows[8]["RawEventData"]["objectid"] = "x"  # a key twice once normalised: per record
    rows[9]["RawEventData"]["AppAccessContext"] = "text"  # per record
    rows[10]["RawEventData"]["UserKey"] = " not-a-guid "
    rows[11]["RawEventData"]["CreationTime"] = "junk"  # no readable time: quarantined
    rows[12] = rows[13]  # a duplicate record
    rows[14]["RawEventData"]["ObjectId"] = " padded "
    rows[15]["RawEventData"]["Operation"] = "NEW-INBOXRULE"
    rows[16] = "text"  # no object: quarantined
    del rows[17]["RawEventData"]  # no inner record: a Defender event
    rows[18]["RawEventData"]["Workload"] = "Exchange"
    rows[18]["RawEventData"]["MailboxOwnerUPN"] = ""
    path = tmp_path / "cloudappevents.json"
    path.write_text(json.dumps(hunting_body(rows)), "utf-8")
    res, events = same_case(tmp_path, path, batch_size=16)
    assert (res["records"], res["duplicates"], res["quarantined"]) == (60, 1, 3)
    assert 0 < sum(refused) < 60 and "audit_other" in set(events["source"])


@pytest.mark.parametrize("damage", ["broken", "comma"])
def test_a_damaged_cloud_app_event_hands_over_with_nothing_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                damage: str) -> None:
    rows = cloud_app_events(50)
    text = json.dumps(hunting_body(rows), indent=1)
    marker = f'"ReportId": "{rows[30]["ReportId"]}"'
    text = text.replace(marker, marker + (" tru" if damage == "broken" else ",}"), 1)
    path = tmp_path / "cloudappevents.json"
    path.write_text(text, "utf-8")
    assert (_plan(path) is None) == (damage == "comma")  # DuckDB reads a comma before }, Python does not
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, _ = same_case(tmp_path, path, batch_size=8)
    assert bool([r for r in caplog.records if r.name == JSONLOG]) == (damage == "broken")
    assert res["records"] >= 50 and res["quarantined"] >= 1


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                        st.sampled_from(["", " ", "x", "İ", "MailItemsAccessed", "Exchange", "Send",
                                         "2023-06-15T01:00:00", "New-InboxRule", "[]", "{}",
                                         "0b6e3e2a-1111-4c1b-9d4e-2f0a6b1c0a01"]),
                        st.lists(st.sampled_from([{"Name": "UserAgent", "Value": "x"}, "y", 1]), max_size=2),
                        st.just({"AADSessionId": "s", "UniqueTokenId": "t"}))
UAL_KEYS = ["CreationTime", "Operation", "UserId", "UserKey", "MailboxOwnerUPN", "Workload", "MailboxGuid",
            "ObjectId", "ItemName", "AppAccessContext", "ExtendedProperties", "DeviceProperties", "Target",
            "ClientIP", "ClientIPAddress", "Id", "AffectedItems", "userid", "OperationProperties", "Folders"]


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(1, 23), st.sampled_from(UAL_KEYS), JSON_VALUES), min_size=1,
                        max_size=8))
def test_any_raw_event_value_same_both_ways(changes: list[tuple[int, str, Any]]) -> None:
    rows = cloud_app_events(24)
    for i, key, value in changes:
        rows[i]["RawEventData"][key] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cloudappevents.json"
        path.write_text(json.dumps(hunting_body(rows)), "utf-8")
        same_case(Path(tmp), path, batch_size=10)


def test_odd_mail_access_same_both_ways(tmp_path: Path, refused: list[int]) -> None:  # noqa: F811
    """MailItemsAccessed (most of a breach's CloudAppEvents): access type, throttling, folders and message ids."""
    rows = [r for r in cloud_app_events(132) if r["ActionType"] == "MailItemsAccessed"][:12] * 3
    rows = [copy.deepcopy(r) for r in rows]
    for i, r in enumerate(rows):
        r["RawEventData"]["Id"] = r["ReportId"] = f"mail-{i}"
    odd: list[tuple[str, Any]] = [
        ("OperationProperties", [{"Name": "MailAccessType", "Value": " Sync "},
                                 {"Name": "IsThrottled", "Value": True}]),
        ("OperationProperties", [{"name": "MailAccessType", "value": "Bind"}]),  # other spellings: per record
        ("OperationProperties", ["@{Name=MailAccessType; Value=Bind}"]),  # Defender's PowerShell text: per record
        ("OperationProperties", [{"Name": "ISTHROTTLED", "Value": "yes"}, {"Name": "IsThrottled", "Value": "no"}]),
        ("OperationProperties", None), ("OperationProperties", "text"), ("OperationCount", "7"),
        ("OperationCount", 2.5), ("Folders", []), ("Folders", None),
        ("Folders", [{"Path": "\\Inbox", "FolderItems": [{"InternetMessageId": "<a@b>"}, {"InternetMessageId": ""},
                                                        "x", {"SizeInBytes": 1}]}, {"Id": "no path"}]),
        ("Folders", [{"path": "\\Inbox"}]), ("Folders", ["@{Id=LgAA; Path=\\Inbox; FolderItems=System.Object[]}"]),
        ("Folders", [{"Path": 5, "FolderItems": None}]), ("Folders", [{"Path": "a", "FolderItems": "[]"}]),
        ("Folders", [{"Path": "\\Sent Items",
                      "FolderItems": [{"InternetMessageId": "<c@d>", "internetMessageId": "x"}]}]),
    ]
    for i, (key, value) in enumerate(odd):
        rows[2 * i + 1]["RawEventData"][key] = value
    path = tmp_path / "cloudappevents.json"
    path.write_text(json.dumps(hunting_body(rows)), "utf-8")  # type: ignore[arg-type]
    res, events = same_case(tmp_path, path, batch_size=8)
    assert res["imported"] == len(rows) and set(events["source"]) == {"mail_access"}
    assert 0 < sum(refused) <= len(odd)  # the odd shapes per record, the rest in SQL
    assert events["message_ids"].map(lambda v: "<a@b>" in list(v) if v is not None else False).any()


# Folders values the regular expression of ualsql.py reads (True) or sends per record (False)
FOLDERS: list[tuple[Any, bool]] = [
    ([{"Id": "LgAA", "Path": "\\Inbox", "FolderItems": [{"InternetMessageId": "<a@b>", "SizeInBytes": 2733952},
                                                        {"InternetMessageId": "<c@d>", "SizeInBytes": -1}]}], True),
    ([{"Path": "\\Inbox"}, {"Id": "x", "Path": "", "FolderItems": []}, {"Path": "\\Sent Items"}], True),
    ([{"Path": 'quote " slash \\ tab \t nl \n /', "FolderItems": [{"Id": "i", "InternetMessageId": ""},
                                                                   {"InternetMessageId": "<\"q\"@x>"}]}], True),
    ([{"Path": "Boîte de réception", "FolderItems": [{"InternetMessageId": "<é@x>"}]}], True),
    ([], True), (None, True),
    ([{"Path": "ctl \u0001 char"}], False), ([{"Path": "\\Inbox", "Id": "after"}], False),
    ([{"Path": "a", "FolderItems": [{"SizeInBytes": 1, "InternetMessageId": "<x>"}]}], False),
    ([{"Path": "a", "FolderItems": [{"InternetMessageId": "<x>", "SizeInBytes": 1.5}]}], False),
    ([{"Path": "a", "FolderItems": [{"InternetMessageId": None}]}], False),
    ([{"Path": "a", "FolderItems": [{"InternetMessageId": "<x>", "Subject": "s"}]}], False),
    ([{"Path": None}], False), ([{"Path": "a", "FolderItems": None}], False), ([{"Id": "no path"}], False),
    (["\\Inbox"], False), ([[{"Path": "a"}]], False), ("[]", False), ({"Path": "a"}, False),
]


def test_folders_read_by_one_regular_expression_same_both_ways(tmp_path: Path, refused: list[int]) -> None:  # noqa: F811
    """MailItemsAccessed Folders: folders and items of the usual shape (escapes, non-ASCII, empty ids, several
    folders) are read in SQL by one regular expression over the list; every other shape goes per record."""
    rows = [copy.deepcopy(r) for r in cloud_app_events(132) if r["ActionType"] == "MailItemsAccessed"]
    rows = (rows * 4)[:2 * len(FOLDERS) + 1]
    rows = [copy.deepcopy(r) for r in rows]
    for i, r in enumerate(rows):
        r["RawEventData"]["Id"] = r["ReportId"] = f"folders-{i}"
        r["RawEventData"]["OperationProperties"] = [{"Name": "MailAccessType", "Value": "Bind"}]
    for i, (value, _) in enumerate(FOLDERS):
        rows[2 * i + 1]["RawEventData"]["Folders"] = value
    path = tmp_path / "cloudappevents.json"
    path.write_text(json.dumps(hunting_body(rows)), "utf-8")  # type: ignore[arg-type]
    res, events = same_case(tmp_path, path, batch_size=64)
    assert res["imported"] == len(rows) and set(events["source"]) == {"mail_access"}
    assert sum(refused) == sum(not in_sql for _, in_sql in FOLDERS)  # the sample's own Folders in SQL too
    ids = [i for v in events["message_ids"].dropna() for i in v]
    assert {"<a@b>", "<c@d>", '<"q"@x>', "<é@x>"} <= set(ids) and "" not in ids
    assert {'quote " slash \\ tab \t nl \n /', "Boîte de réception", ""} <= \
        {f for v in events["folders"].dropna() for f in v}


# ----- nested paths of diagnostic-settings records: ProvisioningLogs (maps/provisioning.yaml) -------------
def _provisioning_lines(n: int) -> list[dict[str, Any]]:
    lines = (IMPORT / "diagnostic_entra_PT1H.json").read_text("utf-8").splitlines()
    record = json.loads(next(x for x in lines if '"ProvisioningLogs"' in x))
    out = []
    for i in range(n):
        d = copy.deepcopy(record)
        d["properties"]["id"] = d["properties"]["changeId"] = f"change-{i}"
        out.append(d)
    return out


def test_provisioning_lines_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                         refused: list[int]) -> None:  # noqa: F811
    lines = _provisioning_lines(40)
    props = [d["properties"] for d in lines]
    props[1]["initiatedBy"] = None  # nested object null
    del props[2]["servicePrincipal"]  # missing
    props[3]["initiatedBy"] = json.dumps(props[3]["initiatedBy"])  # JSON text: per record
    props[4]["provisioningStatusInfo"] = {"Status": "FAILURE"}  # another spelling: per record
    props[5]["provisioningStatusInfo"] = {"status": 3}  # another type: per record
    props[6]["initiatedBy"] = ["x"]  # no object: nothing read from it
    props[7]["targetIdentity"] = {"displayName": " Padded "}
    props[8]["sourceIdentity"] = {"displayName": "Src", "DisplayName": "twice"}  # a key twice: per record
    path = tmp_path / "PT1H.json"
    path.write_text("\n".join(json.dumps(d) for d in lines) + "\n", "utf-8")
    plan = _plan(path)
    assert plan is not None and (plan.envelope.NAME, plan.fm.NAME) == ("azure_monitor_record", "provisioning")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]
    assert res["imported"] == 40 and set(events["source"]) == {"directory_audit"}
    assert 0 < sum(refused) <= 6 and events["result"].notna().sum() >= 30


# ----- diagnostic-settings sign-ins (maps/signin.yaml and ir_toolkit/sources/signinsql.py) ----------------
def _signin_lines(n: int) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in (IMPORT / "diagnostic_entra_PT1H.json").read_text("utf-8").splitlines()]
    signins = [d for d in lines if d["category"].endswith("SignInLogs")]
    out = []
    for i in range(n):
        d = copy.deepcopy(signins[i % len(signins)])
        d["properties"]["id"] = f"signin-{i}"
        out.append(d)
    return out


@pytest.mark.parametrize("container", ["lines", "bodies"])
def test_diagnostic_signins_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                         refused: list[int], container: str) -> None:  # noqa: F811
    lines = _signin_lines(60)
    props = [d["properties"] for d in lines]
    odd: list[tuple[str, Any]] = [
        ("isManagedIdentity", True), ("isManagedIdentity", "True "), ("isManagedIdentity", 1),
        ("isManagedIdentity", 2.5), ("location", {"city": "Redmond", "countryOrRegion": " US "}),
        ("location", "Redmond, Washington, US"), ("location", '{"countryOrRegion": "NL"}'),
        ("location", {"CountryOrRegion": "DE"}), ("location", 7), ("location", {}), ("location", ""),
        ("status", {"errorCode": "50126"}), ("status", None), ("status", '{"errorCode": 0}'),
        ("status", {"ErrorCode": 50126}), ("userPrincipalName", ""), ("userPrincipalName", None),
        ("servicePrincipalName", 5), ("userId", "ABC"), ("autonomousSystemNumber", "8075"), ("ipAddress", ""),
    ]
    for i, (key, value) in enumerate(odd):
        props[2 * i + 1][key] = value
    lines[50]["category"] = "AuditLogs"  # another map: per record
    path = tmp_path / "PT1H.json"
    if container == "lines":
        path.write_text("\n".join(json.dumps(d) for d in lines) + "\n", "utf-8")
    else:
        path.write_text("\n".join(json.dumps({"records": lines[i:i + 9]}) for i in range(0, 60, 9)) + "\n", "utf-8")
    plan = _plan(path)
    assert plan is not None and (plan.envelope.NAME, plan.fm.NAME) == ("azure_monitor_record", "signin")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]
    assert res["records"] == 60 and {"signin_interactive", "signin_serviceprincipal", "signin_managedidentity"} <= \
        set(events["source"])
    assert 0 < sum(refused) <= len(odd)  # odd shapes per record, the rest through SQL


def test_attachment_access_is_mail_access_in_sql(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                refused: list[int]) -> None:  # noqa: F811
    """AttachmentAccess (a message's attachments read: AttachmentAccessType, OperationCount) and MessageBind are
    mail access in the generated SQL as per record (ual_fields.MAIL_ACCESS_OPS in both), mapped by the SQL."""
    shape = json.loads((IMPORT / "shapes" / "management_api_attachment_access.json").read_text("utf-8"))
    rows = [copy.deepcopy(r) for r in cloud_app_events(132) if r["ActionType"] == "MailItemsAccessed"][:12] * 2
    rows = [copy.deepcopy(r) for r in rows]
    for i, r in enumerate(rows):
        r["RawEventData"]["Id"] = r["ReportId"] = f"mail-{i}"
    for i in range(0, 24, 3):
        inner = {**copy.deepcopy(shape), "Id": f"{shape['Id'][:-4]}{i:04d}",
                 "OrganizationId": rows[1]["RawEventData"]["OrganizationId"]}
        if i % 2:
            inner["Operation"] = "MessageBind"
            del inner["OperationProperties"]
        rows[i]["RawEventData"], rows[i]["ReportId"], rows[i]["ActionType"] = inner, inner["Id"], inner["Operation"]
    path = tmp_path / "cloudappevents.json"
    path.write_text(json.dumps(hunting_body(rows), indent=1), "utf-8")  # type: ignore[arg-type]
    plan = _plan(path)
    assert plan is not None and (plan.envelope.NAME, plan.fm.NAME) == ("cloud_app_event", "ual")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]  # DuckDB read the whole file
    assert res["imported"] == 24
    reads = events[events["operation"].isin(["AttachmentAccess", "MessageBind"])]
    assert len(reads) == 8 and set(reads["source"]) == {"mail_access"} and set(reads["items"]) == {3}
    assert reads.set_index("operation")["mail_access_type"].to_dict() == {"AttachmentAccess": "Bind",
                                                                         "MessageBind": None}
    assert sum(refused) == 0  # the SQL mapped every row
