"""Tamper evidence: every kind of change to a case is caught by `verify` (exit 1, the file named).

One case is built per module as a responder builds it (import, detect, scope, import more,
detect and scope again, report); each test tampers with its own copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from ir_toolkit.cli import main
from ir_toolkit.paths import sample_tenant_dir
from ir_toolkit.report.html import render_report
from tests.acceptance_cases import log_files


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A case after import, detect, scope, a second import, detect and scope again, and a report."""
    root = tmp_path_factory.mktemp("tamper") / "case"
    case = Case.init(root, tenant="sample")
    files = log_files(sample_tenant_dir())
    case.import_files(files[:-1])
    detect(case)
    scope(case)
    case.import_files(files[-1:])  # more evidence arrives: a legitimate re-run
    detect(case)
    scope(case)
    render_report(case)
    return root


def _verify(case: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["verify", str(case), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def copy(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built case to tamper with."""
    return Path(shutil.copytree(built, tmp_path / "case", symlinks=True))


def _lines(case: Path) -> list[bytes]:
    return (case / "custody.log").read_bytes().splitlines()


def _write_lines(case: Path, lines: list[bytes]) -> None:
    (case / "custody.log").write_bytes(b"".join(line + b"\n" for line in lines))


def _head(case: Path) -> str:
    return hashlib.sha256(_lines(case)[-1]).hexdigest()


def _actor_part(case: Path) -> Path:
    """The mail_access part file holding most of the actor's events (the compromised mailboxes' reads)."""
    mailboxes = {m["upn"] for m in json.loads((case / "scope.json").read_text())["compromised_mailboxes"]}
    parts = sorted((case / "events" / "mail_access").glob("*.parquet"))
    return max(parts, key=lambda p: sum(m in mailboxes for m in pq.read_table(p, columns=["mailbox"])
                                        .column(0).to_pylist()))


def test_untouched_case_verifies_clean_and_prints_its_head(built: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    case = Path(shutil.copytree(built, tmp_path / "case", symlinks=True))
    assert json.loads((case / "scope.json").read_text())["compromised_mailboxes"], "the sample has a scope"
    head = _head(case)
    code, out, err = _verify(case, capsys)
    assert code == 0, err
    assert "custody chain intact" in out and err == ""
    new_head = _head(case)  # verify appended its own line, and prints the new head
    assert f"custody head: {new_head}" in out and new_head != head
    code, out, _ = _verify(case, capsys, "--expect-head", head, "--read-only")
    assert code == 0 and "1 line(s) appended since the noted head" in out
    assert f"line {len(_lines(case))}: verify by " in out


def _edit_custody_line(case: Path) -> str:
    lines = _lines(case)
    entry = json.loads(lines[5])
    entry["actor"] = "someone-else@elsewhere"
    lines[5] = json.dumps(entry).encode()
    _write_lines(case, lines)
    return "changed: custody.log line 7 (hash chain broken: line 6 was edited"


def _delete_custody_line(case: Path) -> str:
    lines = _lines(case)
    del lines[3]
    _write_lines(case, lines)
    return "changed: custody.log line 4 (hash chain broken"


def _delete_actor_events(case: Path) -> str:
    part = _actor_part(case)
    part.unlink()
    return f"missing: {part.relative_to(case).as_posix()} (deleted; recorded at custody.log line"


def _rewrite_actor_events(case: Path) -> str:
    part = _actor_part(case)
    mailboxes = {m["upn"] for m in json.loads((case / "scope.json").read_text())["compromised_mailboxes"]}
    table = pq.read_table(part)
    keep = [m not in mailboxes for m in table.column("mailbox").to_pylist()]
    import pyarrow as pa

    pq.write_table(table.filter(pa.array(keep)), part)
    return f"changed: {part.relative_to(case).as_posix()} (sha256 differs from custody.log line"


def _edit_scope(case: Path) -> str:
    doc = json.loads((case / "scope.json").read_text())
    doc["compromised_mailboxes"] = []
    (case / "scope.json").write_text(json.dumps(doc, indent=2) + "\n")
    return "changed: scope.json (sha256 differs from custody.log line"


def _delete_scope(case: Path) -> str:
    (case / "scope.json").unlink()
    return "missing: scope.json"


def _edit_case_json(case: Path) -> str:
    doc = json.loads((case / "case.json").read_text())
    doc["evidence"][0]["records"] = 0
    (case / "case.json").write_text(json.dumps(doc, indent=2) + "\n")
    return "changed: case.json (sha256 differs from custody.log line"


def _edit_findings(case: Path) -> str:
    doc = json.loads((case / "findings.json").read_text())
    doc["counts"] = {}
    (case / "findings.json").write_text(json.dumps(doc))
    return "changed: findings.json"


def _edit_report(case: Path) -> str:
    report = case / "reports" / "report.html"
    report.write_text(report.read_text().replace("<h2>", "<h2>edited ", 1))
    return "changed: reports/report.html"


def _plant_report(case: Path) -> str:
    (case / "reports" / "extra.html").write_text("<p>nothing to see</p>")
    return "unrecorded: reports/extra.html"


def _plant_events(case: Path) -> str:
    part = sorted((case / "events" / "signin_interactive").glob("*.parquet"))[0]
    shutil.copy(part, part.with_name("part-99999-planted.parquet"))
    return "unrecorded: events/signin_interactive/part-99999-planted.parquet"


def _symlink_in_raw(case: Path) -> str:
    (case / "raw" / "imports" / "link.json").symlink_to("/etc/hostname")
    return "symlink: raw/imports/link.json -> /etc/hostname"


def _evidence_replaced_by_symlink(case: Path) -> str:
    rel = json.loads((case / "case.json").read_text())["evidence"][0]["path"]
    target = case.parent / "elsewhere.bin"
    shutil.copy(case / rel, target)
    (case / rel).unlink()
    (case / rel).symlink_to(target)
    return f"symlink: {rel} -> {target}"


def _unlisted_in_raw(case: Path) -> str:
    (case / "raw" / "imports" / "planted.json").write_text("[]")
    return "unexpected: raw/imports/planted.json"


def _edit_evidence(case: Path) -> str:
    rel = json.loads((case / "case.json").read_text())["evidence"][0]["path"]
    (case / rel).chmod(0o644)
    (case / rel).write_bytes(b"tampered")
    return f"changed: {rel} (sha256 differs from case.json)"


def _events_dir_linked(case: Path) -> str:
    shutil.move(case / "events", case.parent / "events-elsewhere")
    (case / "events").symlink_to(case.parent / "events-elsewhere")
    return f"symlink: events -> {case.parent / 'events-elsewhere'} (a case holds no links)"


def _scope_replaced_by_fifo(case: Path) -> str:
    (case / "scope.json").unlink()
    os.mkfifo(case / "scope.json")  # opening it would block verify forever
    return "changed: scope.json (not a regular file"


def _chained_line_reaching_outside(case: Path) -> str:
    prev = _head(case)
    line = json.dumps({"action": "detect", "artifacts": {"../../../dev/zero": "0" * 64}, "prev": prev}).encode()
    _write_lines(case, [*_lines(case), line])
    return f"changed: custody.log line {len(_lines(case))} (artifact path '../../../dev/zero' is outside the case)"


TAMPERS: dict[str, Callable[[Path], str]] = {
    "events folder linked elsewhere": _events_dir_linked, "scope.json replaced by a FIFO": _scope_replaced_by_fifo,
    "chained line reaching outside": _chained_line_reaching_outside,
    "edited custody line": _edit_custody_line, "deleted custody line": _delete_custody_line,
    "deleted actor events": _delete_actor_events, "rewritten actor events": _rewrite_actor_events,
    "edited scope.json": _edit_scope, "deleted scope.json": _delete_scope, "edited case.json": _edit_case_json,
    "edited findings.json": _edit_findings, "edited report": _edit_report, "planted report": _plant_report,
    "planted events part": _plant_events, "symlink in raw": _symlink_in_raw,
    "evidence replaced by a symlink": _evidence_replaced_by_symlink, "unlisted file in raw": _unlisted_in_raw,
    "edited evidence": _edit_evidence,
}


@pytest.mark.parametrize("kind", list(TAMPERS))
def test_each_change_is_caught_and_named(kind: str, copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = TAMPERS[kind](copy)
    code, out, err = _verify(copy, capsys)
    assert code == 1, out
    assert expected in err, err
    assert "case NOT intact" in err and "Traceback" not in err
    doc = json.loads(_json(copy, capsys))
    assert not doc["intact"] and any(expected in p for p in doc["problems"])


def _json(case: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["verify", str(case), "--json", "--read-only"]) == 1
    return capsys.readouterr().out


def test_chain_rewritten_end_to_end_needs_the_noted_head(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A forger who edits scope.json and rebuilds the whole chain passes verify, unless the examiner
    kept the head: that is exactly what verify cannot prove on its own (docs/evidence.md)."""
    noted = _head(copy)
    _edit_scope(copy)
    forged_sha = hashlib.sha256((copy / "scope.json").read_bytes()).hexdigest()
    prev, rebuilt = "0" * 64, []
    for line in _lines(copy):
        entry = json.loads(line)
        if "scope.json" in entry.get("artifacts", {}):
            entry["artifacts"]["scope.json"] = forged_sha
        entry["prev"] = prev
        rebuilt.append(json.dumps(entry).encode())
        prev = hashlib.sha256(rebuilt[-1]).hexdigest()
    _write_lines(copy, rebuilt)
    code, _, err = _verify(copy, capsys, "--read-only")
    assert code == 0, err  # undetectable from inside the case
    code, _, err = _verify(copy, capsys, "--read-only", "--expect-head", noted)
    assert code == 1 and "changed: custody.log (the head" in err and "not in the chain" in err


def test_a_forged_line_appended_after_the_head_is_shown_to_the_examiner(
        copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Appending a well-formed line that re-records an edited scope.json keeps the chain valid: verify
    cannot call it tampering, but with the noted head it lists the appended line and what it records."""
    noted = _head(copy)
    _edit_scope(copy)
    line = json.dumps({"time": "2026-01-01T00:00:00Z", "actor": "mallory@host", "action": "scope",
                       "artifacts": {"scope.json": hashlib.sha256((copy / "scope.json").read_bytes()).hexdigest()},
                       "prev": noted}).encode()
    _write_lines(copy, [*_lines(copy), line])
    code, out, err = _verify(copy, capsys, "--read-only", "--expect-head", noted)
    assert code == 0, err
    assert f"line {len(_lines(copy))}: scope by mallory@host at 2026-01-01T00:00:00Z (records scope.json)" in out


def test_cut_custody_tail_is_caught_with_the_noted_head(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noted = _head(copy)
    _write_lines(copy, _lines(copy)[:-1])  # the report line removed: the chain itself still holds
    code, _, err = _verify(copy, capsys, "--read-only", "--expect-head", noted)
    assert code == 1 and "not in the chain" in err
    assert "unrecorded: reports/report.html" in err  # and the report it recorded is now unaccounted for


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_verify_runs_on_a_read_only_copy_and_writes_nothing(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (copy / "custody.log").read_bytes()
    _read_only(copy)
    try:
        code, out, err = _verify(copy, capsys)
        assert code == 0, err
        assert "read-only: case folder is read-only; nothing written" in out
        assert (copy / "custody.log").read_bytes() == before
        (copy / "scope.json").chmod(0o644)
        _edit_scope(copy)
        code, out, err = _verify(copy, capsys)
        assert code == 1 and "changed: scope.json" in err and (copy / "custody.log").read_bytes() == before
    finally:
        for path in [copy, *copy.rglob("*")]:
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | stat.S_IWUSR)


def test_read_only_flag_writes_nothing_on_a_writable_case(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (copy / "custody.log").read_bytes()
    code, out, _ = _verify(copy, capsys, "--read-only")
    assert code == 0 and "read-only: --read-only" in out
    assert (copy / "custody.log").read_bytes() == before


def test_a_part_left_by_a_killed_import_is_reported_then_recovered(case_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """kill -9 between writing an events part and recording it: verify names the part; the next import
    removes it (logged) and writes its events again from the evidence, and the case verifies clean."""
    from ir_toolkit.case import EventStore
    from tests.conftest import TESTDATA

    src = TESTDATA / "import" / "management_api.json"
    scratch = Case.init(tmp_path / "scratch", tenant="t")
    scratch.import_files([src])
    frame = scratch.read_events()
    case = Case.open(case_dir)
    entry, _ = case.add_evidence(src, source="import", format="management-api")  # the killed import's start
    EventStore(case_dir / "events").append(frame, tag=entry["sha256"][:12])  # its part, never recorded
    code, _, err = _verify(case_dir, capsys, "--read-only")
    assert code == 1 and "unrecorded: events/audit_other/part-00000-" in err
    result = Case.open(case_dir, writable=True).import_files([src])
    assert result[0]["imported"] == len(frame) == 2 and result[0]["duplicates"] == 0
    recovered = [e for e in Case.open(case_dir).custody() if e["action"] == "events.recover"]
    assert len(recovered) == 1 and recovered[0]["details"]["removed"][0].startswith("events/audit_other/part-00000-")
    code, _, err = _verify(case_dir, capsys)
    assert code == 0, err
    assert len(Case.open(case_dir).read_events()) == 2


def test_a_write_killed_after_its_record_is_a_note_and_the_next_write_finishes_it(
        case_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import ir_toolkit.case.custody as custody

    def killed(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # the process dies between the custody line and the rename

    case = Case.open(case_dir, writable=True)
    before = (case_dir / "case.json").read_bytes()
    case.manifest["note"] = "second save"
    monkeypatch.setattr(custody.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        case.save()
    monkeypatch.undo()
    assert (case_dir / "case.json").read_bytes() == before and (case_dir / ".case.json.pending").exists()
    code, out, err = _verify(case_dir, capsys, "--read-only")
    assert code == 0, err
    assert "case.json: the write recorded at custody.log line" in out and "was interrupted" in out
    (case_dir / ".case.json.pending").write_text("{}")  # a pending file that is not the recorded version
    code, _, err = _verify(case_dir, capsys, "--read-only")
    assert code == 1 and "changed: case.json (sha256 differs from custody.log line" in err
    Case.open(case_dir, writable=True).save()
    assert not (case_dir / ".case.json.pending").exists()
    code, out, err = _verify(case_dir, capsys)
    assert code == 0 and "interrupted" not in out, err
