"""Importing every supported export: detection, canonical values, counts, duplicates (issue 4)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import TESTDATA, cli

from ir_toolkit.case import Case
from ir_toolkit.case.importing import import_files
from ir_toolkit.sources import jsonstream
from ir_toolkit.sources.fields import ip, normalise_keys
from ir_toolkit.sources.formats import FORMATS

IMPORT = TESTDATA / "import"

# file -> (format, records, imported, duplicates, quarantined)
EXPECTED = {
    "graph_signins_v1.json": ("graph-signins", 1, 1, 0, 0),
    "graph_signins_beta.json": ("graph-signins", 1, 1, 0, 0),
    "graph_directory_audits.json": ("graph-directory-audits", 1, 1, 0, 0),
    "graph_audit_records.json": ("graph-audit-records", 2, 2, 0, 0),
    "graph_audit_records_placeholder.json": ("graph-audit-records", 1, 0, 0, 1),
    "management_api.json": ("management-api", 2, 2, 0, 0),
    "purview_current.csv": ("purview-csv", 3, 3, 0, 0),
    "purview_legacy.csv": ("purview-csv", 2, 2, 0, 0),
    "log_analytics_portal.csv": ("log-analytics-csv", 3, 3, 0, 0),
    "log_analytics.json": ("log-analytics-json", 2, 2, 0, 0),
    "signinlogs_msticpy_sample.csv": ("log-analytics-csv", 86, 45, 41, 0),
    "entra_signins.csv": ("entra-signins-csv", 2, 2, 0, 0),
    "entra_interactive_signins_2023-06-15.csv": ("entra-signins-csv", 2, 2, 0, 0),
    "entra_application_signins_2023-06-15.csv": ("entra-signins-csv", 1, 1, 0, 0),
    "graph_risk_detections.json": ("graph-risk-detections", 1, 1, 0, 0),
    "graph_service_principals.json": ("graph-directory-objects", 1, 1, 0, 0),
    "graph_oauth2_grants.json": ("graph-directory-objects", 1, 1, 0, 0),
    "excel_entra_signins_en-GB.csv": ("entra-signins-csv", 2, 2, 0, 0),
    "excel_purview_de.csv": ("purview-csv", 3, 3, 0, 0),
}


def one(case_dir: Path, name: str) -> tuple[Case, dict, pd.DataFrame]:
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([IMPORT / name])
    return case, res, case.read_events()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_real_format_is_recognised_and_counted(case_dir: Path, name: str) -> None:
    case, res, events = one(case_dir, name)
    fmt, records, imported, dups, quarantined = EXPECTED[name]
    assert (res["format"], res["records"], res["imported"], res["duplicates"], res["quarantined"]) == \
        (fmt, records, imported, dups, quarantined)
    assert res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
    assert len(events) == imported
    entry = case.find_evidence(res["sha256"])
    assert entry is not None and entry["format"] == fmt and entry["records"] == records
    assert (case.root / entry["path"]).read_bytes() == (IMPORT / name).read_bytes()
    assert events["evidence"].str.startswith(entry["path"] + "#").all()
    for raw in events["raw"]:  # the original record, whole, as JSON
        assert isinstance(json.loads(raw), dict)
    assert case.quarantined().shape[0] == quarantined


def test_every_format_has_name_description_sniff_parse() -> None:
    assert len(FORMATS) >= 10
    for name, fmt in FORMATS.items():
        assert fmt.NAME == name and fmt.DESCRIPTION and callable(fmt.sniff) and callable(fmt.parse)


def test_graph_beta_signin_values(case_dir: Path) -> None:
    _, _, ev = one(case_dir, "graph_signins_beta.json")
    r = ev.iloc[0]
    assert r["source"] == "signin_interactive" and r["operation"] == "Sign-in"
    assert (r["result"], r["error_code"]) == ("failure", 50126)
    assert r["user"] == "testaccount1@contoso.com" and r["app_id"] == "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"
    assert r["token_id"] == "ZTE0OTk3YTQtZjg5Mi00YjBiLWIwNTEtZmViZTA1YzJhNDli"
    assert (r["ip"], r["country"], r["asn"]) == ("131.107.159.37", "US", 3598)
    assert r["resource_id"] == "797f4846-ba00-4fd7-ba43-dac1f8f63013"
    assert r["time"] == pd.Timestamp("2021-06-30T16:34:32Z")
    # duplicated keys in the Learn example: the last value is kept, as in the raw JSON we store
    assert json.loads(r["raw"])["homeTenantId"] == "99081087-73c4-48d1-a112-f60ff75114f7"


MAIL = {
    "purview_current.csv": "5f3c1c2e-7a41-4c1b-9d4e-2f0a6b1c0d01",
    "purview_legacy.csv": "5f3c1c2e-7a41-4c1b-9d4e-2f0a6b1c0d01",
    "graph_audit_records.json": "5f3c1c2e-7a41-4c1b-9d4e-2f0a6b1c0d01",
    "log_analytics_portal.csv": "bb22cc33-0000-4000-8000-000000000009",
}


@pytest.mark.parametrize("name", sorted(MAIL))
def test_mail_access_fields_whatever_the_container(case_dir: Path, name: str) -> None:
    _, _, ev = one(case_dir, name)
    r = ev[ev["record_id"] == MAIL[name]].iloc[0]
    assert r["source"] == "mail_access" and r["operation"] == "MailItemsAccessed"
    assert r["mailbox"] == "victim@contoso.com"
    assert r["token_id"] == "kQ9x-Forged_Token_Id_01"  # compared as-is: never lower-cased
    assert r["session_id"] == "0f1e2d3c-0000-4000-8000-00000000bbbb"
    assert r["token_issued_at"] == pd.Timestamp("2023-06-15T00:55:00Z")
    assert r["client_app_id"] == r["app_id"] == "d3590ed6-52b3-4102-aeff-aad2292ab01c"
    assert (r["mail_access_type"], r["items"], r["throttled"]) == ("Bind", 3, False)
    assert list(r["message_ids"]) == ["<msg1@contoso.com>", "<msg2@contoso.com>", "<msg3@contoso.com>"]
    assert list(r["folders"]) == ["\\Inbox", "\\Sent Items"]
    assert r["ip"] == "2001:db8::5"  # "[2001:DB8::5]:41234" in the record
    assert "[2001:db8::5]:41234" in r["raw"].lower()
    assert r["user_agent"] == "Client=REST;Client=RESTSystem;;"


def test_purview_csv_sync_rule_and_raw_row(case_dir: Path) -> None:
    _, _, ev = one(case_dir, "purview_current.csv")
    sync = ev[ev["mail_access_type"] == "Sync"].iloc[0]
    assert sync["throttled"] and sync["ip"] == "203.0.113.7" and sync["items"] == 1
    assert sync["client_app_id"] == "00000002-0000-0ff1-ce00-000000000000"
    rule = ev[ev["operation"] == "New-InboxRule"].iloc[0]
    assert (rule["source"], rule["target"], rule["ip"]) == ("audit_other", "Hide", "198.51.100.23")
    raw = json.loads(rule["raw"])  # the CSV row, AuditData kept as its original text
    assert set(raw) >= {"RecordId", "CreationDate", "AuditData"} and isinstance(raw["AuditData"], str)


def test_log_analytics_portal_export(case_dir: Path) -> None:
    _, _, ev = one(case_dir, "log_analytics_portal.csv")
    by_source = {r["source"]: r for _, r in ev.iterrows()}
    s = by_source["signin_noninteractive"]
    assert s["time"] == pd.Timestamp("2021-04-28T15:05:26Z")  # "4/28/2021, 3:05:26.000 PM" in a ' [UTC]' column
    assert (s["country"], s["asn"], s["token_id"]) == ("US", 8075, "tokA-1_x")  # multi-line JSON LocationDetails
    assert s["user_id"] == "26be570a-1111-5555-b4e2-a37c6808512d"
    d = by_source["directory_audit"]
    assert (d["operation"], d["user"], d["target"]) == ("Consent to application", "admin@contoso.com", "Evil App")


def test_log_analytics_msticpy_sample(case_dir: Path) -> None:
    _, res, ev = one(case_dir, "signinlogs_msticpy_sample.csv")
    assert (ev["source"] == "signin_interactive").all()
    assert ev["time"].notna().all() and ev["user"].notna().all()
    assert ev["country"].notna().sum() > 40  # LocationDetails is Python-literal text in this export
    assert set(ev["result"]) <= {"success", "failure"}


def test_service_principal_and_managed_identity_signins(case_dir: Path) -> None:
    _, _, ev = one(case_dir, "log_analytics.json")
    sp = ev[ev["source"] == "signin_serviceprincipal"].iloc[0]
    assert (sp["user"], sp["user_id"], sp["error_code"]) == ("Backup Robot", "5b7c0000-0000-4000-8000-000000000001",
                                                             7000215)
    assert sp["time"] == pd.Timestamp("2021-04-28T15:05:26.123456Z")  # 7-digit fraction, CreatedDateTime wins
    assert (ev["source"] == "signin_managedidentity").sum() == 1


def test_entra_csv_download(case_dir: Path) -> None:
    _, _, ev = one(case_dir, "entra_signins.csv")
    ok = ev[ev["result"] == "success"].iloc[0]
    assert (ok["country"], ok["token_id"], ok["app_id"]) == ("US", "tokB-2_y", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
    assert ev["error_code"].tolist() == [0, 50126]


def test_entra_csv_download_with_the_current_header(case_dir: Path) -> None:
    """The 57 columns of a current download: padded names, a double space, a column written twice."""
    case = Case.open(case_dir, writable=True)
    case.import_files([IMPORT / "entra_interactive_signins_2023-06-15.csv",
                       IMPORT / "entra_application_signins_2023-06-15.csv"])
    ev = case.read_events().set_index("record_id")
    ok = ev.loc["aa11bb22-0000-4000-8000-000000000101"]
    assert (ok["source"], ok["user"], ok["result"], ok["asn"], ok["country"]) == \
        ("signin_interactive", "victim@contoso.com", "success", 8075, "US")
    assert (ok["app_id"], ok["resource_id"], ok["token_id"], ok["session_id"]) == \
        ("00000002-0000-0ff1-ce00-000000000000", "00000002-0000-0ff1-ce00-000000000000", "ZxY-abc_def0",
         "0f1e2d3c-0000-4000-8000-00000000cccc")
    assert ok["time"] == pd.Timestamp("2023-06-15T01:02:03Z")
    bad = ev.loc["aa11bb22-0000-4000-8000-000000000102"]
    assert (bad["result"], bad["error_code"], bad["asn"], bad["ip"]) == ("failure", 50126, 9009, "198.51.100.23")
    app = ev.loc["bb22cc33-0000-4000-8000-000000000201"]
    assert (app["source"], app["user"], app["user_id"], app["app_id"]) == \
        ("signin_serviceprincipal", "Backup Robot", "5b7c0000-0000-4000-8000-000000000001",
         "e1e2e3e4-0000-4000-8000-000000000001")


def test_directory_objects_and_risk(case_dir: Path) -> None:
    case = Case.open(case_dir, writable=True)
    case.import_files([IMPORT / "graph_service_principals.json", IMPORT / "graph_oauth2_grants.json",
                       IMPORT / "graph_risk_detections.json"])
    ev = case.read_events()
    snap = ev[ev["source"] == "tenant_snapshot"].set_index("operation")
    assert snap.loc["servicePrincipal", "app_id"] == "e1e2e3e4-0000-4000-8000-000000000001"
    assert snap.loc["oauth2PermissionGrant", "target"] == "Mail.Read offline_access"
    risk = ev[ev["source"] == "risk_detection"].iloc[0]
    assert (risk["operation"], risk["user_agent"]) == ("unfamiliarFeatures", "python-requests/2.31")


def test_same_file_twice_adds_nothing(case_dir: Path) -> None:
    case = Case.open(case_dir, writable=True)
    [first] = case.import_files([IMPORT / "purview_current.csv"])
    before = case.events.count()
    [again] = case.import_files([IMPORT / "purview_current.csv"])
    assert again["skipped"] and again["imported"] == 0 and again["duplicates"] == first["records"]
    assert again["records"] == again["imported"] + again["duplicates"] + again["quarantined"]
    assert case.events.count() == before and len(case.evidence()) == 1


def test_overlapping_exports_are_duplicates_not_double_counted(case_dir: Path) -> None:
    case = Case.open(case_dir, writable=True)
    a, b, c = case.import_files([IMPORT / "purview_current.csv", IMPORT / "purview_legacy.csv",
                                 IMPORT / "graph_audit_records.json"])
    assert (a["imported"], b["duplicates"], c["duplicates"]) == (3, 2, 2)
    assert (case.read_events()["source"] == "mail_access").sum() == 2


def _records() -> list[dict]:
    return json.loads((IMPORT / "graph_signins_beta.json").read_text())["value"] + \
        json.loads((IMPORT / "graph_signins_v1.json").read_text())["value"]


@pytest.mark.parametrize("shape", ["array", "jsonl", "gzip-jsonl", "array-of-pages", "jsonl-of-pages", "gzip-page"])
def test_graph_containers(case_dir: Path, tmp_path: Path, shape: str) -> None:
    recs = _records()
    page = {"@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns", "value": recs}
    text = {
        "array": json.dumps(recs, indent=1),
        "jsonl": "\n".join(json.dumps(r) for r in recs) + "\n",
        "gzip-jsonl": "\n".join(json.dumps(r) for r in recs),
        "array-of-pages": json.dumps([page, {"value": []}]),
        "jsonl-of-pages": json.dumps(page) + "\n" + json.dumps(page) + "\n",
        "gzip-page": json.dumps(page),
    }[shape]
    f = tmp_path / "export.bin"
    f.write_bytes(gzip.compress(text.encode()) if shape.startswith("gzip") else text.encode())
    [res] = Case.open(case_dir, writable=True).import_files([f])
    n = 4 if shape == "jsonl-of-pages" else 2
    assert (res["format"], res["records"], res["imported"], res["quarantined"]) == ("graph-signins", n, 2, 0)


def test_json_refills_across_small_chunks(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", 97)  # every record spans several reads
    recs = [dict(r, id=f"id-{i}") for i in range(30) for r in _records()[:1]]
    f = tmp_path / "page.json"
    f.write_text(json.dumps({"@odata.context": "x", "@odata.count": 123456, "value": recs}, indent=2))
    case = Case.open(case_dir, writable=True)
    [res] = import_files(case, [f], batch_size=7)
    assert (res["records"], res["imported"], res["quarantined"]) == (30, 30, 0)


def test_forced_format_and_day_first(case_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "la.csv"
    f.write_text("TimeGenerated [UTC],Type,Id,UserPrincipalName,ResultType\n"
                 '"3/4/2023, 1:02:03.000 PM",SigninLogs,x1,A@B.com,0\n')
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f], format="log-analytics-csv", dayfirst=True)
    assert res["imported"] == 1
    assert case.read_events()["time"].iloc[0] == pd.Timestamp("2023-04-03T13:02:03Z")


def test_cli_import_json(case_dir: Path) -> None:
    p = cli("import", case_dir, IMPORT / "graph_signins_v1.json", IMPORT / "management_api.json", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert [d["format"] for d in doc] == ["graph-signins", "management-api"]
    for d in doc:
        assert set(d) >= {"path", "format", "records", "imported", "duplicates", "quarantined"}
        assert d["records"] == d["imported"] + d["duplicates"] + d["quarantined"]
    manifest = json.loads((case_dir / "case.json").read_text())
    assert [e["records"] for e in manifest["evidence"]] == [1, 2]
    assert any(json.loads(line)["action"] == "import" for line in (case_dir / "custody.log").read_text().splitlines())


@pytest.mark.parametrize(("raw", "want"), [
    ("1.2.3.4:5678", "1.2.3.4"), ("[2001:DB8::1]:443", "2001:db8::1"), ("::ffff:10.0.0.1", "10.0.0.1"),
    ("2001:db8:0:0::1", "2001:db8::1"), (" 8.8.8.8 ", "8.8.8.8"), ("not an ip", "not an ip"), ("", None),
])
def test_address_normalisation(raw: str, want: str | None) -> None:
    assert ip(raw) == want


def test_key_normalisation_prefers_undecorated() -> None:
    assert normalise_keys({"Type_": "dup", "Type": "SigninLogs", "TimeGenerated [UTC]": "t"}) == \
        {"type": "SigninLogs", "timegenerated": "t"}


def test_files_parsed_side_by_side_give_the_same_case(tmp_path: Path) -> None:
    names = ["purview_current.csv", "graph_audit_records.json", "purview_legacy.csv", "log_analytics_portal.csv",
             "graph_signins_beta.json"]
    out = {}
    for workers in (1, 3):
        case = Case.init(tmp_path / f"case{workers}", tenant="contoso")
        results = import_files(case, [IMPORT / n for n in names], workers=workers)
        events = case.read_events().drop(columns=["raw"])
        out[workers] = ([{k: r[k] for k in ("format", "records", "imported", "duplicates", "quarantined")}
                         for r in results], events)
        assert not (case.root / ".import-spool").exists()
    assert out[1][0] == out[3][0]
    pd.testing.assert_frame_equal(out[1][1], out[3][1])


def test_same_file_twice_in_one_call(case_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again.csv"
    copy.write_bytes((IMPORT / "purview_current.csv").read_bytes())
    case = Case.open(case_dir, writable=True)
    first, again = case.import_files([IMPORT / "purview_current.csv", copy])
    assert (first["imported"], first["skipped"]) == (3, False)
    assert (again["records"], again["imported"], again["duplicates"], again["skipped"]) == (3, 0, 3, True)
    assert case.evidence()[0]["records"] == 3 and len(case.evidence()) == 1
    assert case.quarantined().empty and len(case.read_events()) == 3


def test_excel_resaves_read_as_their_originals(case_dir: Path) -> None:
    """en-GB Excel (; cp1252, 14/06/2023 23:59: minutes only) and German Excel (sep=; line, 15.06.2023 01:02)."""
    case, res, ev = one(case_dir, "excel_entra_signins_en-GB.csv")
    assert (res["date_order"], case.evidence()[0]["delimiter"], case.evidence()[0]["encoding"]) == \
        ("day-first", ";", "cp1252")
    ev = ev.sort_values("time")
    assert ev["time"].tolist() == [pd.Timestamp("2023-06-14T23:59Z"), pd.Timestamp("2023-06-15T00:10Z")]
    assert ev["user"].tolist() == ["victim@contoso.com"] * 2 and ev["ip"].tolist() == ["203.0.113.7", "198.51.100.23"]
    assert "Zoé Müller" in ev["raw"].iloc[0]
    case, res, ev = one(case_dir, "excel_purview_de.csv")
    ev = ev[ev["evidence"].str.startswith(res["evidence"] + "#")]
    assert res["date_order"] == "day-first" and set(ev["source"]) == {"mail_access", "audit_other"}
    assert ev["time"].min() == pd.Timestamp("2023-06-15T01:02:03Z")  # AuditData's own CreationTime


def test_an_import_writes_a_part_per_source_not_per_batch(case_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: batches of one file go into one part per source (a row group each), up to PART_ROWS rows."""
    from ir_toolkit.case import store

    case = Case.open(case_dir, writable=True)
    [res] = import_files(case, [IMPORT / "signinlogs_msticpy_sample.csv"], batch_size=7)
    parts = sorted((case_dir / "events").rglob("*.parquet"))
    assert res["imported"] == 45 and len(parts) == len({p.parent for p in parts})
    assert sum(pq.ParquetFile(p).metadata.num_row_groups for p in parts) > len(parts)
    assert not list((case_dir / "events").rglob(".*.tmp")) and case.verify() == []
    monkeypatch.setattr(store, "PART_ROWS", 10)  # a part is closed (and recorded) once it holds PART_ROWS rows
    other = Case.init(tmp_path / "other", tenant="contoso.onmicrosoft.com")
    import_files(other, [IMPORT / "signinlogs_msticpy_sample.csv"], batch_size=7)
    rows = [pq.ParquetFile(p).metadata.num_rows for p in (other.root / "events").rglob("*.parquet")]
    assert sum(rows) == 45 and len(rows) > len(parts) and max(rows) < 10 + 7
    assert Case.open(other.root).verify() == [] and len(Case.open(other.root).read_events()) == 45


def test_a_failed_import_leaves_no_part_and_is_redone(case_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case.open(case_dir, writable=True)
    real = Case.quarantine
    calls = {"n": 0}

    def failing(self: Case, sha: str, entries: list) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk gone")
        real(self, sha, entries)

    monkeypatch.setattr(Case, "quarantine", failing)
    with pytest.raises(OSError):
        import_files(case, [IMPORT / "signinlogs_msticpy_sample.csv"], batch_size=7)
    assert not list((case_dir / "events").rglob("*.tmp")) and not list((case_dir / "events").rglob("*.parquet"))
    monkeypatch.setattr(Case, "quarantine", real)
    [res] = import_files(case, [IMPORT / "signinlogs_msticpy_sample.csv"], batch_size=7)
    assert (res["imported"], res["duplicates"]) == (45, 41) and len(case.read_events()) == 45
    assert case.verify() == []


def test_progress_bar_shows_rate_and_time_left(case_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = Case.open(case_dir, writable=True)
    import_files(case, [IMPORT / "graph_signins_beta.json", IMPORT / "purview_current.csv"], progress=True)
    err = capsys.readouterr().err
    assert "import 2 files: 100%" in err and "B/s]" in err and "<00:00" in err  # rate and time left
