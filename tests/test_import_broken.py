"""Broken and hostile inputs: each bad record is quarantined, each bad file is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TESTDATA, cli

from ir_toolkit.case import Case
from ir_toolkit.errors import InputFormatError

IMPORT = TESTDATA / "import"


def _signins() -> list[dict]:
    return json.loads((IMPORT / "graph_signins_beta.json").read_text())["value"] + \
        json.loads((IMPORT / "graph_signins_v1.json").read_text())["value"]


def _state(case_dir: Path) -> tuple[list, list]:
    manifest = json.loads((case_dir / "case.json").read_text())
    return manifest["evidence"], sorted(p.name for p in (case_dir / "raw").rglob("*") if p.is_file())


def test_truncated_json_keeps_what_came_before(case_dir: Path, tmp_path: Path) -> None:
    recs = [dict(r, id=f"r{i}") for i in range(5) for r in _signins()[:1]]
    text = json.dumps({"@odata.context": "x", "value": recs}, indent=1)
    f = tmp_path / "cut.json"
    f.write_text(text[: int(len(text) * 0.7)])
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert res["format"] == "graph-signins"
    assert res["imported"] >= 2 and res["quarantined"] == 1
    assert res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
    q = case.quarantined().iloc[0]
    assert "truncated" in q["reason"] or "JSON broken" in q["reason"]
    assert q["file"].startswith("raw/imports/")


def test_bad_jsonl_line_is_quarantined_rest_imports(case_dir: Path, tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in _signins()]
    f = tmp_path / "signins.jsonl"
    f.write_text(lines[0] + "\n" + '{"id": "broken", "createdDateTime": \n' + lines[1] + "\n[1, 2]\n")
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert (res["records"], res["imported"], res["quarantined"]) == (4, 2, 2)
    q = case.quarantined()
    assert sorted(q["position"]) == [2, 4]
    assert any("line 2" in r for r in q["reason"])


def test_csv_row_with_broken_auditdata(case_dir: Path, tmp_path: Path) -> None:
    text = (IMPORT / "purview_current.csv").read_text(encoding="utf-8-sig")
    header, *rows = text.splitlines(keepends=True)
    broken = 'x1,2023-06-15T03:00:00Z,50,MailItemsAccessed,a@b.com,"{""CreationTime"": ""2023-06-15T03:0",,\r\n'
    f = tmp_path / "purview.csv"
    f.write_text(header + broken + "".join(rows), encoding="utf-8")
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert (res["format"], res["records"], res["imported"], res["quarantined"]) == ("purview-csv", 4, 3, 1)
    q = case.quarantined().iloc[0]
    assert q["position"] == 1 and "AuditData is not valid JSON" in q["reason"]
    assert json.loads(q["record"])["RecordId"] == "x1"


def test_csv_row_of_wrong_width(case_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "la.csv"
    f.write_text("TimeGenerated,Type,Id,UserPrincipalName,ResultType\n"
                 "2023-01-01T00:00:00Z,SigninLogs,a,u@x.com,0\n"
                 "2023-01-01T00:00:00Z,SigninLogs,b\n")
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert (res["records"], res["imported"], res["quarantined"]) == (2, 1, 1)
    assert "3 fields" in case.quarantined().iloc[0]["reason"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-8-sig"])
def test_utf16_and_bom_variants_import(case_dir: Path, tmp_path: Path, encoding: str) -> None:
    f = tmp_path / "signins.json"
    f.write_bytes(json.dumps({"value": _signins()}, ensure_ascii=False).encode(encoding))
    [res] = Case.open(case_dir, writable=True).import_files([f])
    assert (res["format"], res["imported"], res["quarantined"]) == ("graph-signins", 2, 0)


def test_latin1_bytes_are_read_as_windows_1252(case_dir: Path, tmp_path: Path) -> None:
    text = (IMPORT / "entra_signins.csv").read_text(encoding="utf-8-sig").replace("Redmond", "Malmö")
    f = tmp_path / "entra.csv"
    f.write_bytes(text.encode("latin-1"))
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert (res["imported"], res["quarantined"]) == (2, 0)
    assert any("Malmö" in raw for raw in case.read_events()["raw"])
    assert case.evidence()[0]["encoding"] == "cp1252"


def test_invalid_utf8_after_a_valid_start_is_quarantined(case_dir: Path, tmp_path: Path) -> None:
    good = [json.dumps(dict(_signins()[0], id=f"g{i}")).encode() for i in range(2000)]  # > 64 kB valid UTF-8 first
    bad = json.dumps(dict(_signins()[0], id="bad", userDisplayName="XX")).encode().replace(b"XX", b"Malm\xf6")
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join([*good, bad]) + b"\n")
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert (res["records"], res["imported"], res["quarantined"]) == (2001, 2000, 1)
    assert "not valid" in case.quarantined().iloc[0]["reason"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "file is empty"),
    (b"  \n\r\n ", "file is empty"),
    (b"hello world, this is not an export\n", "unknown format"),
    (b'{"foo": 1}\n{"bar": 2}\n', "unknown format"),
    (b"\x1f\x8bnot really gzip", "cannot be read"),
])
def test_unusable_file_is_one_line_exit_2_nothing_written(case_dir: Path, tmp_path: Path, content: bytes,
                                                          message: str) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(content)
    before = _state(case_dir)
    p = cli("import", case_dir, f)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and message in p.stderr and str(f) in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert _state(case_dir) == before
    assert not list((case_dir / "events").rglob("*.parquet"))


@pytest.mark.parametrize(("content", "message"), [
    (b"", "file is empty"),
    (b"hello world, this is not an export\n", "unknown format"),
    (b"\x1f\x8bnot really gzip", "cannot be read"),
])
def test_unusable_file_among_others_is_reported_and_skipped_exit_1(case_dir: Path, tmp_path: Path, content: bytes,
                                                                   message: str) -> None:
    good = IMPORT / "graph_signins_v1.json"
    f = tmp_path / "bad.json"
    f.write_bytes(content)
    p = cli("import", case_dir, good, f, "--json")
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert [(d["status"], d["imported"]) for d in doc] == [("imported", 1), ("not-imported", 0)]
    assert message in doc[1]["reason"] and doc[1]["path"] == str(f)
    assert p.stderr.count("\n") == 1 and "import incomplete" in p.stderr and str(f) in p.stderr
    assert len(Case.open(case_dir).evidence()) == 1 and len(Case.open(case_dir).read_events()) == 1


def test_directory_and_missing_file(case_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    p = cli("import", case_dir, empty)
    assert p.returncode == 2 and "no files to import" in p.stderr and p.stderr.count("\n") == 1
    p = cli("import", case_dir, tmp_path / "nope.json")
    assert p.returncode == 2 and "no such file" in p.stderr
    with pytest.raises(InputFormatError, match="unknown format 'nosuch'"):
        Case.open(case_dir, writable=True).import_files([IMPORT / "graph_signins_v1.json"], format="nosuch")
    with pytest.raises(InputFormatError, match="is CSV"):
        Case.open(case_dir, writable=True).import_files([IMPORT / "purview_current.csv"], format="graph-signins")


def test_not_a_case(tmp_path: Path) -> None:
    p = cli("import", tmp_path / "nocase", IMPORT / "graph_signins_v1.json")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_hostile_values_stay_text(case_dir: Path, tmp_path: Path) -> None:
    rec = dict(_signins()[0], userPrincipalName='=HYPERLINK("http://x")', userAgent="<script>alert(1)</script>",
               ipAddress="[::1]:99999", status="not an object", location=[1, 2], autonomousSystemNumber="AS-x",
               createdDateTime="2023-13-45T99:99:99Z")
    ok = dict(_signins()[1], id="ok-1", status={"errorCode": "50126"})
    f = tmp_path / "hostile.json"
    f.write_text(json.dumps([rec, ok, "just a string", None, 12]))
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert (res["records"], res["imported"], res["quarantined"]) == (5, 1, 4)
    reasons = " | ".join(case.quarantined()["reason"])
    assert "no readable time" in reasons and "not an object" in reasons
    assert case.read_events()["error_code"].iloc[0] == 50126


def test_big_array_with_boundary_lookalikes_inside_records(case_dir: Path, tmp_path: Path) -> None:
    """Runs of records are decoded together between record boundaries; text or nested objects that
    look like a boundary must never split a record."""
    base = _signins()[0]
    trap = '},{"id":"trap","createdDateTime":"2020-01-01T00:00:00Z"'
    recs = []
    for i in range(400):
        r = dict(base, id=f"rec-{i}", userDisplayName=trap if i % 3 else "plain")
        r["appliedConditionalAccessPolicies"] = [{"id": f"p{j}", "createdDateTime": "x"} for j in range(i % 4)]
        recs.append(r)
    f = tmp_path / "big.json"
    f.write_text(json.dumps(recs, indent=None if len(recs) % 2 else 1))
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    assert (res["records"], res["imported"], res["quarantined"]) == (400, 400, 0)
    ev = case.read_events().set_index("record_id")
    for r in recs[::37]:
        assert json.loads(ev.loc[r["id"], "raw"]) == r
    assert ev.loc["rec-4", "evidence"].endswith("#5")


def test_cut_gzip_stream_keeps_what_came_before(case_dir: Path, tmp_path: Path) -> None:
    import gzip
    import random

    rnd = random.Random(4)
    lines = [json.dumps(dict(_signins()[0], id=f"z{i}", userAgent=f"{rnd.getrandbits(256):x}")) for i in range(3000)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    f = tmp_path / "signins.jsonl.gz"
    f.write_bytes(data[: int(len(data) * 0.8)])
    case = Case.open(case_dir, writable=True)
    [res] = case.import_files([f])
    import zlib

    readable = zlib.decompressobj(31).decompress(data[: int(len(data) * 0.8)])
    complete = readable.count(b"\n")  # every line decompressed whole before the cut is kept
    assert res["format"] == "graph-signins"
    assert (res["records"], res["imported"], res["quarantined"]) == (complete + 1, complete, 1)
    assert any("gzip stream cut short" in r for r in case.quarantined()["reason"])
