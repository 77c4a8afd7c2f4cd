from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from ir_toolkit.case import Case
from ir_toolkit.errors import CaseError
from tests.conftest import cli


def test_init_open_round_trip(tmp_path: Path) -> None:
    case = Case.init(tmp_path / "c1", tenant="contoso.onmicrosoft.com", cloud="usgov")
    again = Case.open(tmp_path / "c1")
    assert again.tenant == "contoso.onmicrosoft.com"
    assert again.cloud == "usgov"
    assert again.manifest["case_uuid"] == case.manifest["case_uuid"]
    for sub in ("raw", "events", "quarantine", "reports"):
        assert (tmp_path / "c1" / sub).is_dir()
    assert [e["action"] for e in again.custody()] == ["case.init"]


def test_evidence_is_copied_hashed_and_recorded_once(case_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "signins.json"
    src.write_text('{"value": []}')
    case = Case.open(case_dir)
    entry, new = case.add_evidence(src, source="import", format="graph_json")
    assert new
    import hashlib

    assert entry["sha256"] == hashlib.sha256(b'{"value": []}').hexdigest()
    assert entry["size"] == 13
    assert (case_dir / entry["path"]).read_bytes() == b'{"value": []}'
    entry2, new2 = Case.open(case_dir).add_evidence(src, source="import")
    assert not new2 and entry2["sha256"] == entry["sha256"]
    manifest = json.loads((case_dir / "case.json").read_text())
    assert len(manifest["evidence"]) == 1
    assert manifest["evidence"][0]["sha256"] == entry["sha256"]


def test_custody_log_is_appended_by_every_action(case_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("x\n")
    before = (case_dir / "custody.log").read_text()
    case = Case.open(case_dir)
    case.add_evidence(src, source="import")
    assert cli("verify", case_dir).returncode == 0
    after = (case_dir / "custody.log").read_text()
    assert after.startswith(before)
    actions = [json.loads(line)["action"] for line in after.splitlines()]
    assert actions == ["case.init", "evidence.add", "verify"]
    assert all("time" in json.loads(line) and "actor" in json.loads(line) for line in after.splitlines())


def test_secrets_never_reach_custody_log(case_dir: Path) -> None:
    Case.open(case_dir).log_action("collect", client_secret="s3cr3t-value", access_token="eyJabc", tenant="t")
    text = (case_dir / "custody.log").read_text()
    assert "s3cr3t-value" not in text and "eyJabc" not in text
    assert '"tenant": "t"' in text


def _case_with_two_files(case_dir: Path, tmp_path: Path) -> Case:
    case = Case.open(case_dir)
    for name in ("one.json", "two.json"):
        (tmp_path / name).write_text(name)
        case.add_evidence(tmp_path / name, source="import")
    return case


def test_verify_detects_modified_deleted_and_added_files(case_dir: Path, tmp_path: Path) -> None:
    case = _case_with_two_files(case_dir, tmp_path)
    ok = cli("verify", case_dir)
    assert ok.returncode == 0, ok.stderr
    assert "2 file(s)" in ok.stdout
    one = case_dir / case.evidence()[0]["path"]
    two = case_dir / case.evidence()[1]["path"]
    one.chmod(0o644)
    one.write_text("tampered")
    two.unlink()
    (case_dir / "raw" / "imports" / "planted.json").write_text("{}")
    bad = cli("verify", case_dir)
    assert bad.returncode == 1
    assert f"changed: {case.evidence()[0]['path']}" in bad.stderr
    assert f"missing: {case.evidence()[1]['path']}" in bad.stderr
    assert "unexpected: raw/imports/planted.json" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_verify_json(case_dir: Path, tmp_path: Path) -> None:
    _case_with_two_files(case_dir, tmp_path)
    out = cli("verify", case_dir, "--json")
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    assert {k: doc[k] for k in ("intact", "evidence_files", "problems")} == \
        {"intact": True, "evidence_files": 2, "problems": []}
    lines = (case_dir / "custody.log").read_bytes().splitlines()
    assert doc["custody_lines"] == len(lines) and doc["custody_head"] == hashlib.sha256(lines[-1]).hexdigest()


def test_path_that_is_not_a_case(tmp_path: Path) -> None:
    (tmp_path / "notacase").mkdir()
    (tmp_path / "notacase" / "x.txt").write_text("x")
    r = cli("verify", tmp_path / "notacase")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not a case folder" in r.stderr
    r2 = cli("case", "init", tmp_path / "notacase", "--tenant", "t")
    assert r2.returncode == 2 and "not empty" in r2.stderr and r2.stderr.count("\n") == 1


def test_missing_case_and_file_as_case(tmp_path: Path) -> None:
    r = cli("verify", tmp_path / "nope")
    assert r.returncode == 2 and "no such case folder" in r.stderr
    (tmp_path / "f").write_text("x")
    r = cli("case", "show", tmp_path / "f")
    assert r.returncode == 2 and "is a file" in r.stderr


def test_corrupt_case_json(case_dir: Path) -> None:
    (case_dir / "case.json").write_text('{"case": "x", "tenant": ')
    r = cli("verify", case_dir)
    assert r.returncode == 2
    assert "corrupt case manifest" in r.stderr and r.stderr.count("\n") == 1
    (case_dir / "case.json").write_text('["not", "a", "manifest"]')
    r = cli("case", "show", case_dir)
    assert r.returncode == 2 and "corrupt case manifest" in r.stderr


def test_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        r = cli("case", "init", ro / "case", "--tenant", "t")
        assert r.returncode == 2
        assert "read-only" in r.stderr and r.stderr.count("\n") == 1
        assert not (ro / "case").exists()
        with pytest.raises(CaseError, match="read-only"):
            Case.init(ro, tenant="t")
    finally:
        ro.chmod(0o755)


def test_read_only_case_refuses_writes(case_dir: Path) -> None:
    case_dir.chmod(0o555)
    try:
        with pytest.raises(CaseError, match="read-only"):
            Case.open(case_dir, writable=True)
        assert Case.open(case_dir).tenant  # reading is fine
    finally:
        os.chmod(case_dir, 0o755)


def test_case_init_cli_and_unknown_cloud(tmp_path: Path) -> None:
    r = cli("case", "init", tmp_path / "c", "--tenant", "contoso.com", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tenant"] == "contoso.com"
    r = cli("case", "init", tmp_path / "d", "--tenant", "contoso.com", "--cloud", "mars")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = cli("case", "init", tmp_path / "c", "--tenant", "contoso.com")
    assert r.returncode == 2 and "already a case" in r.stderr
