"""Windows Security and AD FS audit events (issue 19, Golden SAML): EVTX files read with the ``evtx``
parser, Log Analytics SecurityEvent exports (CSV, query API JSON) mapped by maps/windows_event.yaml."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import TESTDATA, cli

from ir_toolkit.case import Case
from ir_toolkit.sources.evtxfile import flatten_evtx
from ir_toolkit.sources.windows import WINDOWS_TRANSFORMS, event_fields

WINDOWS = TESTDATA / "windows"
EVTX = WINDOWS / "Security_short_selected.evtx"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"


def _case(tmp: Path) -> Case:
    Case.init(tmp / "case", tenant="contoso.onmicrosoft.com")
    return Case.open(tmp / "case", writable=True)


def _quarantine(case: Case) -> list[dict]:
    return [json.loads(line) for f in sorted((case.root / "quarantine").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_evtx_file_imports_every_record(tmp_path: Path) -> None:
    case = _case(tmp_path)
    [res] = case.import_files([EVTX])
    assert (res["format"], res["records"], res["imported"], res["quarantined"]) == ("windows-evtx", 7, 7, 0)
    ev = case.read_events().sort_values("record_id").reset_index(drop=True)
    assert set(ev["source"]) == {"windows_event"}
    failed = ev[ev["operation"].str.startswith("4625")].iloc[0]
    assert failed["operation"] == "4625 - An account failed to log on"
    assert (failed["result"], failed["user"], failed["ip"]) == ("failure", "temporal\\administrator", "23.94.153.202")
    assert failed["record_id"] == "temporal/Security/319457832"
    assert failed["time"] == pd.Timestamp("2016-06-29T15:24:36.686Z")
    assert failed["evidence"].endswith("#4")  # the fourth record of the file
    raw = json.loads(failed["raw"])  # the whole event: System fields and EventData by name
    assert (raw["EventRecordID"], raw["TargetUserName"], raw["Channel"]) == (319457832, "Administrator", "Security")


def _damaged(tmp: Path, how: str) -> Path:
    data = bytearray(EVTX.read_bytes())
    starts = [i for i in range(len(data) - 4) if data[i:i + 4] == RECORD_MAGIC]
    third = starts[2]
    if how == "record":
        data[third + 40:third + 80] = b"\xff" * 40  # record 3's body no longer decodes
    else:
        data[third:third + 4] = b"XXXX"  # record 3's header magic: the rest of that chunk is lost
    out = tmp / f"Security-{how}.evtx"
    out.write_bytes(bytes(data))
    return out


def test_a_bad_evtx_record_is_quarantined_and_the_rest_imports(tmp_path: Path) -> None:
    case = _case(tmp_path)
    [res] = case.import_files([_damaged(tmp_path, "record")])
    assert (res["records"], res["imported"], res["quarantined"]) == (7, 6, 1)
    [q] = _quarantine(case)
    assert q["position"] == 3 and "EVTX record 3 unreadable" in q["reason"] and "binxml" in q["reason"]
    assert len(case.read_events()) == 6


def test_a_bad_evtx_chunk_keeps_what_was_read(tmp_path: Path) -> None:
    case = _case(tmp_path)
    [res] = case.import_files([_damaged(tmp_path, "chunk")])
    assert res["imported"] == 2 and res["quarantined"] == 1
    assert res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
    [q] = _quarantine(case)
    assert "header magic" in q["reason"]


def test_cli_imports_evtx_with_exit_0(tmp_path: Path) -> None:
    root = tmp_path / "case"
    assert cli("case", "init", root, "--tenant", "contoso.onmicrosoft.com").returncode == 0
    r = cli("import", root, EVTX, "--json")
    assert r.returncode == 0, r.stderr
    [doc] = json.loads(r.stdout)
    assert doc["format"] == "windows-evtx" and doc["imported"] == 7


def test_security_event_exports_map_adfs_audits(tmp_path: Path) -> None:
    case = _case(tmp_path)
    res = case.import_files([WINDOWS / "securityevent_adfs.csv", WINDOWS / "securityevent_adfs_api.json"])
    assert [(r["format"], r["imported"], r["duplicates"]) for r in res] == [
        ("log-analytics-csv", 4, 0), ("log-analytics-json", 0, 4)]  # the same events: same record ids
    ev = case.read_events().set_index("operation")
    issued = ev.loc["1200 - AD FS application token success"]
    assert (issued["user"], issued["ip"], issued["result"]) == ("alice@contoso.com", "203.0.113.10", "success")
    assert issued["session_id"] == "2f0c6a77-08f4-4c1b-a0a0-7c1d0b6d1a01"  # the request's instance id
    assert issued["target"] == "urn:federation:MicrosoftOnline"
    assert issued["time"] == pd.Timestamp("2026-06-15T08:02:11.5Z")
    failed = ev.loc["1203 - AD FS fresh credential validation error"]
    # x-ms-forwarded-client-ip lists a chain: the client is the first address
    assert (failed["user"], failed["ip"], failed["result"]) == ("contoso\\bob", "198.51.100.7", "failure")
    dkm = ev.loc["4662 - An operation was performed on an object"]
    assert "5cb41ed0-0e4c-11d0-a286-00aa003049e2" in dkm["target"]  # contact class
    assert "8d3bca50-1d7e-11d0-a081-00aa006c33ed" in dkm["target"]  # thumbnailPhoto
    assert dkm["user"] == "contoso\\svc-backup"


def test_adfs_2012r2_claims_and_instance_id() -> None:
    """501 carries the caller's claims after its instance id; the upn claim is the user."""
    rec = {"eventid": "501", "eventsourcename": "AD FS Auditing", "computer": "ADFS01",
           "eventdata": json.dumps(["7e1f0000-1111-4222-8333-944455556666",
                                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "Carol@Contoso.com",
                                    "http://schemas.microsoft.com/2012/01/requestcontext/claims/x-ms-forwarded-client-ip",
                                    "192.0.2.44"])}
    f = event_fields(rec)
    assert f["adfs_upn"] == "Carol@Contoso.com" and f["adfs_forwardedipaddress"] == "192.0.2.44"
    assert f["adfs_instanceid"] == "7e1f0000-1111-4222-8333-944455556666"


@pytest.mark.timeout(120)
def test_hostile_event_data_is_read_in_linear_time() -> None:
    """Attacker-controlled XML: no XML parser (entities), no backtracking pattern."""
    nasty = "<EventData>" + "<Data>" * 50_000 + "<UserId>" + "a" * 100_000 + "</EventData>"
    f = event_fields({"eventid": "1200", "eventsourcename": "AD FS Auditing", "eventdata": nasty})
    assert f.get("adfs_userid") is None
    spaces = "<EventData>" + ("<Data" + " " * 200_000 + "x") * 3 + "<Data>ok</Data></EventData>"
    f = event_fields({"eventid": "4662", "eventdata": spaces})  # quadratic backtracking would take hours
    assert f["data"] == ["ok"]


def test_flatten_keeps_system_and_unnamed_data() -> None:
    flat = flatten_evtx({"Event": {"System": {"EventID": {"#attributes": {"Qualifiers": 0}, "#text": 1200},
                                              "Provider": {"#attributes": {"Name": "AD FS Auditing"}},
                                              "TimeCreated": {"#attributes": {"SystemTime": "2026-06-15T08:00:00Z"}},
                                              "EventRecordID": 9, "Channel": "Security", "Computer": "ADFS01"},
                                   "EventData": {"Data": ["abc", "<AuditBase><UserId>x@y.z</UserId></AuditBase>"]}}})
    assert flat["EventID"] == 1200 and flat["Provider"] == "AD FS Auditing"
    assert flat["TimeCreated"] == "2026-06-15T08:00:00Z" and flat["EventData"][1].startswith("<AuditBase>")


@pytest.mark.parametrize("name", ["securityevent_adfs.csv", "Security_short_selected.evtx"])
def test_fixture_is_in_sources(name: str) -> None:
    assert name in (TESTDATA / "SOURCES.md").read_text(encoding="utf-8")


def test_evtx_folder_is_walked(tmp_path: Path) -> None:
    folder = tmp_path / "handover"
    folder.mkdir()
    shutil.copy(EVTX, folder / "Security.evtx")
    case = _case(tmp_path)
    [res] = case.import_files([folder])
    assert res["format"] == "windows-evtx" and res["imported"] == 7


def test_event_names_follow_their_provider() -> None:
    """1007 is a certificate export only from CertificateServicesClient-Lifecycle-System; 501 an AD FS audit
    only from AD FS (Log Analytics' Activity names it after another provider's message)."""
    name = WINDOWS_TRANSFORMS["windows_operation"]
    rows = [{"eventid": 1007, "provider": "Microsoft-Windows-CertificateServicesClient-Lifecycle-System"},
            {"eventid": 1007, "provider": "Microsoft-Windows-GroupPolicy", "activity": "1007 - Policy applied"},
            {"eventid": "501", "eventsourcename": "AD FS Auditing",
             "activity": "501 - The Desktop Window Manager is experiencing heavy resource contention."},
            {"eventid": "4662", "eventsourcename": "Microsoft-Windows-Security-Auditing"}]
    assert name(rows, {}) == ["1007 - A certificate was exported", "1007 - Policy applied",
                              "501 - AD FS caller identity claims", "4662 - An operation was performed on an object"]
