"""Reusing what the case holds: detect's prepared views in a new process, current findings and scope.json.

Nothing reused may make a result differ from a cold run, and a change to the store between detect and
scope must be seen (ir_toolkit.analysis.reuse).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ir_toolkit.analysis import prepare as prepare_module
from ir_toolkit.analysis.detect import detect, forget_prepared
from ir_toolkit.analysis.detections import raw_sql
from ir_toolkit.analysis.reuse import CACHE_DIR, PREPARED_JSON, decode, encode, load_prepared, prepared_key
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.conftest import cli
from tests.detect_events import at, frame, mail
from tests.test_scope import build


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("prepared again although the case holds a current preparation")


def _stable(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("generated_at", "inputs")}


def _cold_scope(case_dir: Path, tmp_path: Path) -> dict:
    """scope.json of a copy of the case with nothing kept (no cache, no scope.json), in a new process."""
    cold = tmp_path / "cold"
    shutil.copytree(case_dir, cold)
    shutil.rmtree(cold / CACHE_DIR, ignore_errors=True)
    (cold / "scope.json").unlink(missing_ok=True)
    assert cli("scope", cold).returncode == 0
    return json.loads((cold / "scope.json").read_text(encoding="utf-8"))


def test_scope_reuses_detects_preparation_and_equals_a_cold_scope(case_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    case, truth = build(case_dir)
    detect(case)
    assert prepared_key(case) is not None  # detect kept its preparation in the case
    forget_prepared()  # as a new process
    monkeypatch.setattr(prepare_module, "_prepare", _refuse)
    reused = scope(case)
    assert {m["upn"] for m in reused["compromised_mailboxes"]} == truth["mailboxes"]
    assert _stable(reused) == _stable(_cold_scope(case_dir, tmp_path))


def test_a_store_changed_between_detect_and_scope_is_seen(case_dir: Path, tmp_path: Path) -> None:
    case, _ = build(case_dir)
    detect(case)
    before = prepared_key(case)
    forget_prepared()
    # New evidence after detect: another forged-token read from the actor's proxy.
    case.write_events(frame(mail(at(7, 1), "user0@contoso.com", "203.0.113.9", app="app-actor", token="forged-late",
                                 ua="Client=REST;Client=RESTSystem;;", messages=("<late@c>",))))
    doc = scope(case)
    assert prepared_key(case) not in (None, before)  # prepared again for the new store, and kept
    assert _stable(doc) == _stable(_cold_scope(case_dir, tmp_path))


def test_current_findings_are_reused_until_the_store_changes(case_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case, _ = build(case_dir)
    first = detect(case)
    inputs = json.loads((case.root / "findings.json").read_text(encoding="utf-8"))["inputs"]
    forget_prepared()
    with monkeypatch.context() as m:
        m.setattr(prepare_module, "_prepare", _refuse)
        m.setattr(prepare_module, "load_prepared", lambda *a, **k: None)
        again = detect(case)  # neither prepared nor run: the findings on file are current
    assert list(again["finding_id"]) == list(first["finding_id"])
    case.write_events(frame(mail(at(7, 1), "user0@contoso.com", "203.0.113.77", token="forged-new")))
    detect(case)
    assert json.loads((case.root / "findings.json").read_text(encoding="utf-8"))["inputs"] != inputs


def test_changed_findings_or_scope_files_are_not_reused(case_dir: Path) -> None:
    case, _ = build(case_dir)
    detect(case)
    first = scope(case)
    assert scope(case)["generated_at"] == first["generated_at"]  # current: read back, not made again
    path = case.root / "scope.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"confirmed"', '"possible"'), encoding="utf-8")
    assert _stable(scope(case)) == _stable(first)  # an edited scope.json is not what custody recorded: scoped again
    findings = case.root / "findings.parquet"
    findings.write_bytes(findings.read_bytes() + b"\0")  # no longer the recorded file: detect runs again
    forget_prepared()
    assert len(detect(case)) > 0
    assert Case.open(case_dir).verify() == []


def test_prepared_values_round_trip() -> None:
    value = {"start": pd.Timestamp("2024-01-02T03:04:05Z"), "gaps": [{"span": (None, pd.Timestamp(0, tz="UTC"))}],
             "skew": pd.Timedelta(minutes=5), "sql": raw_sql("NOT (a.x)"), "text": "NOT (a.x)", "n": np.int64(3),
             "ok": True, "share": 0.5}
    back = decode(json.loads(json.dumps(encode(value))))
    assert back == value
    assert type(back["sql"]) is type(value["sql"]) and type(back["text"]) is str
    assert isinstance(back["gaps"][0]["span"], tuple)


def test_a_case_without_its_cache_prepares_and_a_bad_cache_is_ignored(case_dir: Path) -> None:
    case, truth = build(case_dir)
    detect(case)
    forget_prepared()
    (case.root / CACHE_DIR / PREPARED_JSON).write_text("{not json", encoding="utf-8")
    (case.root / "scope.json").unlink(missing_ok=True)
    doc = scope(case, write=False)
    assert {m["upn"] for m in doc["compromised_mailboxes"]} == truth["mailboxes"]


def test_kept_tables_of_another_preparation_are_not_read(case_dir: Path) -> None:
    case, _ = build(case_dir)
    detect(case)
    old = (case.root / CACHE_DIR / "prepared.duckdb").read_bytes()
    case.write_events(frame(mail(at(7, 1), "user0@contoso.com", "203.0.113.77", token="forged-new")))
    forget_prepared()
    detect(case)
    key = prepared_key(case)
    assert key is not None and load_prepared(case, key) is not None
    (case.root / CACHE_DIR / "prepared.duckdb").write_bytes(old)  # the file of the preparation before the import
    assert load_prepared(case, key) is None


def test_kept_tables_hold_what_scope_reads_and_detect_prepares_whole(case_dir: Path) -> None:
    case, _ = build(case_dir)
    first = detect(case)
    forget_prepared()  # as a new process
    kept = prepare_module.prepare(case, complete=False)  # scope's: read back from CASE/cache/
    assert not kept.complete
    judged = set(kept.engine.run_sql("SELECT * FROM access_judged LIMIT 0").columns)
    assert "in_coverage" not in judged and {"verdict", "address_known_from", "record_id", "issuance"} <= judged
    assert "weak_matches" not in kept.tables  # `keep: false`: a view again, computed from the events if read
    assert kept.engine.run_sql("SELECT count(*) AS n FROM weak_matches")["n"].iloc[0] >= 0
    # the graph views (`sources: [graph_activity]`) are empty, with their columns, in a case without Graph activity
    assert "graph_activity" not in kept.sources
    assert {"verdict", "issuance"} <= set(kept.engine.run_sql("SELECT * FROM graph_judged").columns)
    # detections need every column: in the same process, detect prepares whole and finds the same
    (case.root / "findings.json").unlink()
    again = prepare_module.prepare(case)
    assert again.complete and "in_coverage" in set(again.engine.run_sql("SELECT * FROM access_judged LIMIT 0").columns)
    assert list(detect(case)["finding_id"]) == list(first["finding_id"])


def test_a_view_of_sources_the_case_lacks_is_empty_without_running() -> None:
    view = {"name": "v", "sql": "SELECT {n} AS n FROM events", "sources": ["graph_activity"]}
    assert prepare_module.view_sql(view, {"n": 1}, frozenset({"mail_access"})).endswith("LIMIT 0")
    assert prepare_module.view_sql(view, {"n": 1}, frozenset({"graph_activity"})) == "SELECT 1 AS n FROM events"
