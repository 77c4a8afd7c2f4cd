"""Folders and ZIP archives as import inputs: members as evidence, bounds, hostile names (issue 15)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import stat
import zipfile
from pathlib import Path

import pytest
from conftest import TESTDATA, cli

from ir_toolkit.case import Case
from ir_toolkit.errors import InputFormatError
from ir_toolkit.sources import containers

IMPORT = TESTDATA / "import"
SIGNINS = (IMPORT / "graph_signins_v1.json").read_bytes()
PURVIEW = (IMPORT / "purview_current.csv").read_bytes()
AUDITS = (IMPORT / "graph_directory_audits.json").read_bytes()


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_folder_is_read_recursively_unknown_file_skipped_exit_1(case_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "handover"
    (folder / "entra" / "deeper").mkdir(parents=True)
    (folder / "entra" / "deeper" / "signins.json").write_bytes(SIGNINS)
    (folder / "purview.csv").write_bytes(PURVIEW)
    (folder / "README.txt").write_text("what the client says about this export\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "empty.json").write_text("[]")
    (folder / "link.json").symlink_to(folder / "purview.csv")
    p = cli("import", case_dir, folder, "--json")
    assert p.returncode == 1, p.stderr
    doc = {Path(d["path"]).name: d for d in json.loads(p.stdout)}
    assert set(doc) == {"signins.json", "purview.csv", "README.txt", "empty.json", "link.json"}  # .DS_Store ignored
    assert "symbolic link" in doc["link.json"]["reason"]
    assert (doc["signins.json"]["imported"], doc["purview.csv"]["imported"]) == (1, 3)
    assert doc["README.txt"]["status"] == "not-imported" and "unknown format" in doc["README.txt"]["reason"]
    assert (doc["empty.json"]["status"], doc["empty.json"]["records"], doc["empty.json"]["format"]) == \
        ("imported", 0, "empty")
    assert "2 of 5 file(s) not imported" in p.stderr and p.stderr.count("\n") == 1
    custody = [json.loads(ln) for ln in (case_dir / "custody.log").read_text().splitlines()]
    assert {Path(c["details"]["path"]).name for c in custody if c["action"] == "import.left_out"} == \
        {"README.txt", "link.json"}
    for d in doc.values():
        assert d["records"] == d["imported"] + d["duplicates"] + d["quarantined"]


def test_folder_holding_the_case_never_imports_the_case(tmp_path: Path) -> None:
    case = Case.init(tmp_path / "case", tenant="contoso")
    (tmp_path / "signins.json").write_bytes(SIGNINS)
    results = case.import_files([tmp_path])
    assert [Path(r["path"]).name for r in results] == ["signins.json"]
    with pytest.raises(InputFormatError, match="is the case folder itself"):
        case.import_files([case.root])


def test_zip_members_are_evidence_with_their_archive(case_dir: Path, tmp_path: Path) -> None:
    inner = _zip([("audits/directory.json", AUDITS)])
    data = _zip([("export/signins.json", SIGNINS), ("export/purview.csv", PURVIEW), ("nested.zip", inner),
                 ("export/audits.json.gz", gzip.compress(AUDITS.replace(b"\"id\": \"id\"", b"\"id\": \"id-gz\""))),
                 ("__MACOSX/export/._signins.json", b"\0\5\26\7"), ("export/notes.txt", b"not a log\n")])
    archive = tmp_path / "handover.zip"
    archive.write_bytes(data)
    case = Case.open(case_dir, writable=True)
    results = case.import_files([archive])
    by_path = {r["path"]: r for r in results}
    assert by_path[str(archive)]["status"] == "archive" and by_path[str(archive)]["members"] == 6
    member = by_path[f"{archive}!export/signins.json"]
    assert (member["format"], member["imported"], member["member"]) == ("graph-signins", 1, "export/signins.json")
    assert by_path[f"{archive}!nested.zip!audits/directory.json"]["format"] == "graph-directory-audits"
    assert by_path[f"{archive}!export/notes.txt"]["status"] == "not-imported"
    evidence = {e["sha256"]: e for e in case.evidence()}
    outer = evidence[_sha(data)]
    assert outer["format"] == "zip" and outer["original"] == str(archive)
    listing = {m["member"]: m for m in outer["members"]}
    assert listing["export/signins.json"]["sha256"] == _sha(SIGNINS)
    assert listing["export/signins.json"]["evidence"] == evidence[_sha(SIGNINS)]["path"]
    assert listing["__MACOSX/export/._signins.json"]["status"] == "ignored"
    assert listing["nested.zip"]["status"] == "archive"
    assert evidence[_sha(SIGNINS)]["archive"] == _sha(data)
    assert evidence[_sha(SIGNINS)]["member"] == "export/signins.json"
    assert evidence[_sha(inner)]["format"] == "zip" and evidence[_sha(inner)]["archive"] == _sha(data)
    assert listing["nested.zip"]["evidence"] == evidence[_sha(inner)]["path"]
    assert evidence[_sha(AUDITS)]["archive"] == _sha(inner)
    events = case.read_events()
    assert by_path[f"{archive}!export/audits.json.gz"]["format"] == "graph-directory-audits"
    assert events["evidence"].str.startswith("raw/imports/").all() and len(events) == 6
    assert case.verify() == [] and not (case.root / ".import-unpack").exists()
    again = case.import_files([archive])  # the same archive again adds nothing
    assert all(r["imported"] == 0 for r in again)


HOSTILE = ["../../../../escaped.json", "/etc/absolute.json", "C:\\Windows\\drive.json", "..\\..\\back.json",
           "a/\x1b[2J\nforged: line.json", "....//....//dots.json"]


def test_hostile_member_names_are_data_not_paths(case_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "inner" / "hostile.zip"
    archive.parent.mkdir()
    archive.write_bytes(_zip([(n, SIGNINS.replace(b"66ea54eb", f"{i:08x}".encode())) for i, n in enumerate(HOSTILE)]))
    before = {p for p in tmp_path.rglob("*")} - {p for p in case_dir.rglob("*")}
    p = cli("import", case_dir, archive)
    assert p.returncode == 0, p.stderr
    after = {p for p in tmp_path.rglob("*")} - {p for p in case_dir.rglob("*")}
    assert after == before  # nothing written outside the case
    assert not list(Path("/").glob("escaped.json")) and not Path("/etc/absolute.json").exists()
    raw = [f for f in (case_dir / "raw").rglob("*") if f.is_file()]
    assert all(f.parent == case_dir / "raw" / "imports" for f in raw) and len(raw) == 1 + len(HOSTILE)
    assert "\x1b" not in p.stdout and "\\x1b[2J\\nforged" in p.stdout  # names shown escaped, one line each
    assert p.stdout.count("\n") == 2 + len(HOSTILE)  # the archive, its members, the call's summary
    summary = p.stdout.splitlines()[-1]  # what the responder waited for, and how long
    assert summary.startswith(f"import: {len(HOSTILE)} files, {len(HOSTILE)} records ({len(HOSTILE)} imported, ")
    assert re.search(r" in \d+\.\d s, [\d,]+ records/s$", summary), summary
    members = {m["member"] for e in Case.open(case_dir).evidence() for m in e.get("members", [])}
    assert members == set(HOSTILE)  # recorded as written


def test_zip_bounds_refuse_bombs_and_floods(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "RATIO_FLOOR", 10_000)
    bomb = b"\0" * 2_000_000  # deflates about 1000:1
    link = zipfile.ZipInfo("link.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(_zip([("zeros.json", bomb), (link, b"/etc/passwd"), ("ok.json", SIGNINS)]))
    results = Case.open(case_dir, writable=True).import_files([archive])
    status = {r["path"].split("!")[-1]: r for r in results}
    assert "zip bomb" in status["zeros.json"]["reason"] and "symbolic link" in status["link.json"]["reason"]
    assert status["ok.json"]["imported"] == 1
    assert sum(f.stat().st_size for f in (case_dir / "raw").rglob("*") if f.is_file()) < 100_000

    monkeypatch.setattr(containers, "MAX_MEMBERS", 2)
    many = tmp_path / "many.zip"
    many.write_bytes(_zip([(f"m{i}.json", SIGNINS.replace(b"66ea54eb", f"{i:08x}".encode())) for i in range(4)]))
    results = Case.open(case_dir, writable=True).import_files([many])
    assert [r["status"] for r in results[1:]] == ["imported", "imported", "not-imported"]
    assert results[-1]["reason"].startswith("2 more member(s) not unpacked") and "MAX_MEMBERS" in results[-1]["reason"]

    monkeypatch.setattr(containers, "MAX_MEMBERS", 100)
    monkeypatch.setattr(containers, "MAX_UNPACKED", len(SIGNINS) + 10)
    big = tmp_path / "big.zip"
    big.write_bytes(_zip([("a.json", SIGNINS), ("b.csv", PURVIEW)]))
    results = Case.open(case_dir, writable=True).import_files([big])
    assert "MAX_UNPACKED" in results[-1]["reason"]


def test_zip_three_levels_deep_is_reported(case_dir: Path, tmp_path: Path) -> None:
    deepest = _zip([("x.json", SIGNINS)])
    archive = tmp_path / "deep.zip"
    archive.write_bytes(_zip([("l2.zip", _zip([("l3.zip", deepest)])), ("top.csv", PURVIEW)]))
    results = Case.open(case_dir, writable=True).import_files([archive])
    deep = [r for r in results if r["path"].endswith("l3.zip")]
    assert deep and "3 levels deep" in deep[0]["reason"]
    assert any(r.get("imported") == 3 for r in results)


def test_archive_with_nothing_known_is_exit_2(case_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "notes.zip"
    archive.write_bytes(_zip([("a.txt", b"hello\n"), ("b.txt", b"world\n")]))
    p = cli("import", case_dir, archive)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "none of 2 files" in p.stderr
    assert Case.open(case_dir).evidence() == []
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(InputFormatError, match="not a readable ZIP archive"):
        Case.open(case_dir, writable=True).import_files([corrupt])


def test_excel_workbook_is_named_as_such(case_dir: Path, tmp_path: Path) -> None:
    book = tmp_path / "signins.xlsx"
    book.write_bytes(_zip([("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", b"<workbook/>")]))
    with pytest.raises(InputFormatError, match="Excel workbook"):
        Case.open(case_dir, writable=True).import_files([book])


def test_safe_name_and_display() -> None:
    assert containers.safe_name("../../etc/passwd") == "passwd"
    assert containers.safe_name("C:\\x\\..\\evil name.json") == "evil_name.json"
    assert containers.safe_name("..") == "member" and containers.safe_name("dir/") == "dir"
    assert containers.display("a\nb\x1b\u202e") == "a\\nb\\x1b\\u202e"


def test_corrupt_archive_among_good_files_and_content_seen_before(case_dir: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    archive = tmp_path / "again.zip"
    archive.write_bytes(_zip([("copy.json", SIGNINS)]))
    case = Case.open(case_dir, writable=True)
    case.import_files([IMPORT / "graph_signins_v1.json"])
    results = case.import_files([corrupt, archive])
    assert [(r["path"], r["status"]) for r in results] == [
        (str(archive), "archive"), (f"{archive}!copy.json", "already-imported"), (str(corrupt), "not-imported")]
    evidence = {e["sha256"]: e for e in case.evidence()}
    assert evidence[_sha(SIGNINS)]["original"] == str(IMPORT / "graph_signins_v1.json")  # first name kept
    assert "archive" not in evidence[_sha(SIGNINS)] and len(evidence) == 2  # the corrupt file is not evidence


def test_tar_archive_is_named_as_such(case_dir: Path, tmp_path: Path) -> None:
    import tarfile

    src = tmp_path / "signins.json"
    src.write_bytes(SIGNINS)
    tgz = tmp_path / "export.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(src, arcname="signins.json")
    with pytest.raises(InputFormatError, match="a tar archive"):
        Case.open(case_dir, writable=True).import_files([tgz])
    gz = tmp_path / "signins.json.gz"  # a gzip log is no tar archive
    gz.write_bytes(gzip.compress(SIGNINS))
    [res] = Case.open(case_dir, writable=True).import_files([gz])
    assert res["imported"] == 1
