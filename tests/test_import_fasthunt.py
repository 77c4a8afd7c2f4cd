"""Defender advanced hunting bodies ({"Schema", "Results"}, Graph runHuntingQuery's {"schema", "results"}) read
by the generated fast path give the same case as the per-record path (issue 15, Deliver 5).

Same method as tests/test_import_fastmap.py: each file imported with ``fast=True`` and ``fast=False``,
every column, the quarantine and the counts compared.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from conftest import TESTDATA
from test_import_fast import same_case
from test_import_fastmap import refused  # noqa: F401  (a fixture)

from ir_toolkit.sources import fastdocs, fastjson
from ir_toolkit.sources.reader import probe

IMPORT = TESTDATA / "import"
JSONLOG = "ir_toolkit.sources.fastjson"


def _numbered(rows: list[dict[str, Any]], n: int, key: str, prefix: str) -> list[dict[str, Any]]:
    """``n`` copies of ``rows`` in turn, each with its own ``key`` (``prefix-0001`` ...)."""
    return [{**rows[i % len(rows)], key: f"{prefix}-{i:04d}"} for i in range(n)]


def _email_rows(n: int) -> list[dict[str, Any]]:
    """Defender EmailEvents rows (the portal CSV fixture's rows as API objects), each its own message."""
    rows = list(csv.DictReader(io.StringIO((IMPORT / "defender_email_events.csv").read_text("utf-8-sig"))))
    return _numbered(rows, n, "NetworkMessageId", "msg")


def _logons(n: int) -> list[dict[str, Any]]:
    return _numbered(json.loads((IMPORT / "defender_identity_logons.json").read_text("utf-8")), n, "ReportId",
                     "report")


def hunting_body(records: list[Any], graph: bool = False) -> dict[str, Any]:
    """An advanced hunting API body (``graph``: Graph runHuntingQuery's spelling) of ``records``."""
    first = next(r for r in records if isinstance(r, dict))
    if graph:
        return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.security."
                "huntingQueryResults", "schema": [{"name": k, "type": "String"} for k in first], "results": records}
    return {"Stats": {"ExecutionTime": 0.1}, "Schema": [{"Name": k, "Type": "String"} for k in first],
            "Results": records}


def _plan(path: Path) -> fastjson.JsonPlan | None:
    opened, head = probe(path)
    return fastjson.plan(path, opened, head)


def test_graph_hunting_fixture_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          refused: list[int]) -> None:  # noqa: F811
    path = IMPORT / "defender_hunting_graph.json"
    plan = _plan(path)
    assert plan is not None and (plan.container, plan.fm.NAME) == ("results", "graph_activity")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=1)
    assert not [r for r in caplog.records if r.name == JSONLOG]  # DuckDB read the whole body
    assert sum(refused) == 0 and res["imported"] == len(events) == 2
    assert set(events["source"]) == {"graph_activity"} and events["token_id"].notna().all()


@pytest.mark.parametrize(("family", "graph"), [("email_event", False), ("identity_logon", True)])
def test_hunting_bodies_with_odd_rows_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     refused: list[int], family: str, graph: bool) -> None:  # noqa: F811
    records: list[Any] = _email_rows(60) if family == "email_event" else _logons(60)
    time_key = "Timestamp"
    user_key = "SenderFromAddress" if family == "email_event" else "AccountUpn"
    del records[3][user_key]  # a missing key
    records[5][user_key] = None  # null
    records[7][user_key] = 42  # another JSON type: per record
    records[9][time_key] = ""  # no readable time: quarantined
    records[11] = "text"  # no object: quarantined
    records[13] = {**records[13], user_key.lower(): "x@y"}  # a key twice once normalised: per record
    records[15][user_key] = " MiXed@Contoso.COM "
    records[17] = dict(records[18])  # a duplicate record
    records[19][time_key] = "6/15/2023 1:10:00 AM"
    if family == "identity_logon":  # ActionType as the result; another action keeps its FailureReason
        records[21]["ActionType"], records[23]["ActionType"] = "LogonSuccess", "Other"
    path = tmp_path / "hunting.json"
    path.write_text(json.dumps(hunting_body(records, graph), indent=1), "utf-8")
    plan = _plan(path)
    assert plan is not None and (plan.container, plan.envelope, plan.fm.NAME) == ("results", None, family)
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]  # DuckDB read the whole body
    assert (res["records"], res["duplicates"], res["quarantined"]) == (60, 1, 2)
    assert 0 < sum(refused) <= 8  # the odd rows went per record, the rest through SQL
    if family == "identity_logon":
        results = events["result"].value_counts(dropna=False).to_dict()
        assert results == {"failure": 54, "success": 1, "wrongpassword": 1, None: 1}  # None: no AccountUpn, no logon


@pytest.mark.parametrize("damage", ["broken", "comma", "nested list", "extra key", "empty"])
def test_an_odd_hunting_body_hands_over_with_nothing_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          damage: str) -> None:
    records: list[Any] = _email_rows(40)
    body: dict[str, Any] = hunting_body(records)
    if damage == "nested list":
        body["Results"][20] = [records[20], records[21]]  # the per-record readers flatten it
    elif damage == "extra key":
        body["More"] = 1  # a key after the rows: the fast path leaves the body to the per-record readers
    elif damage == "empty":
        body["Results"] = []
    text = json.dumps(body, indent=1)
    if damage == "broken":
        text = text.replace('"msg-0020"', '"msg-0020" tru', 1)
    elif damage == "comma":
        text = text.replace('"NetworkMessageId": "msg-0020"', '"NetworkMessageId": "msg-0020",}', 1)
    path = tmp_path / "hunting.json"
    path.write_text(text, "utf-8")
    assert (_plan(path) is None) == (damage in ("comma", "empty"))  # DuckDB reads a comma, Python does not
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, _ = same_case(tmp_path, path, batch_size=8)
    handed = [r for r in caplog.records if r.name == JSONLOG and "per-record import" in r.getMessage()]
    assert bool(handed) == (damage in ("broken", "nested list", "extra key"))
    if damage in ("broken", "comma"):  # how much of the damage is one record is the per-record reader's matter
        assert res["records"] >= 40 and res["quarantined"] >= 1
    else:
        assert (res["records"], res["quarantined"]) == {"nested list": (41, 0), "extra key": (40, 0),
                                                        "empty": (0, 0)}[damage]


@pytest.mark.parametrize("shape", ["whole", "extra key", "same first key nested", "two bodies"])
def test_a_big_hunting_body_is_read_in_pieces_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch, refused: list[int],  # noqa: F811
                                                             shape: str) -> None:
    """A body bigger than DuckDB's document limit has its rows cut into pieces (here of ~3 kB)."""
    monkeypatch.setattr(fastdocs, "_LINE_CHARS", 3000)
    records: list[Any] = [{"Timestamp": r.pop("Timestamp"), **r} for r in _email_rows(80)]
    if shape == "same first key nested":  # a cut inside a row: that piece is no array, the rest per record
        for r in records[40:]:
            r["Nested"] = [{"Timestamp": "a"}, {"Timestamp": "b"}]
    body = hunting_body(records)
    if shape == "extra key":
        body["More"] = 1
    text = json.dumps(body)
    if shape == "two bodies":
        text += "\n" + json.dumps(hunting_body(_email_rows(3)))
    path = tmp_path / "hunting.json"
    path.write_text(text, "utf-8")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, _ = same_case(tmp_path, path, batch_size=16)
    handed = [r.getMessage() for r in caplog.records if r.name == JSONLOG and "per-record import" in r.getMessage()]
    assert bool(handed) == (shape != "whole")
    assert sum(refused) == 0 and res["records"] == (83 if shape == "two bodies" else 80)
    if shape == "same first key nested":
        assert 1 < int(handed[0].split("from record ")[1].split()[0]) <= 80
