"""The fast path generated from a field map gives the same case as the per-record path (issue 15).

Same method as tests/test_import_fast.py: each file imported with ``fast=True`` and ``fast=False``,
every column, the quarantine and the counts compared.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import TESTDATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_import_fast import same_case

from ir_toolkit.sources import fastjson, fastmap, fastrows
from ir_toolkit.sources.fieldmap import FIELD_MAPS
from ir_toolkit.sources.reader import probe

IMPORT = TESTDATA / "import"
FASTLOG = "ir_toolkit.sources.fastmap"


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the rows the generated SQL handed to the per-record path (a spy on the real function)."""
    seen: list[int] = []
    real = fastrows.merge_refused

    def spy(frame: Any, keep: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(int((~keep).sum()))
        return real(frame, keep, *args, **kwargs)

    monkeypatch.setattr(fastrows, "merge_refused", spy)
    return seen


@pytest.mark.parametrize(("name", "family"), [
    ("graph_activity_log_analytics.csv", "graph_activity"), ("defender_email_events.csv", "email_event"),
    ("message_trace.csv", "message_trace"), ("entra_audit_download.csv", "entra_audit_download")])
def test_fixtures_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture, refused: list[int],
                                               name: str, family: str) -> None:
    opened, head = probe(IMPORT / name)
    plan = fastmap.plan(IMPORT / name, opened, head)
    assert plan is not None and plan.fm.NAME == family
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, events = same_case(tmp_path, IMPORT / name, batch_size=1)
    assert not [r for r in caplog.records if r.name == FASTLOG]  # DuckDB read the whole file
    assert sum(refused) == 0 and res["imported"] == len(events) > 0


def test_maps_that_need_python_have_no_sql() -> None:
    assert fastmap.supported(FIELD_MAPS["graph_activity"]) and fastmap.supported(FIELD_MAPS["email_event"])
    for name in ("signin", "defender_signin", "risk", "azure_monitor_record", "cloud_app_event"):
        assert not fastmap.supported(FIELD_MAPS[name]), name  # nested paths, record transforms, containers
    # JSON records: nested paths and the SQL forms of ir_toolkit/sources/fieldsql.py (sign-ins: in an envelope)
    assert fastmap.supported(FIELD_MAPS["ual"], nested=True) and fastmap.supported(FIELD_MAPS["provisioning"], True)
    assert fastmap.supported(FIELD_MAPS["signin"], nested=True, table=True)
    assert not fastmap.supported(FIELD_MAPS["defender_signin"], nested=True)  # its kind is not an envelope's table


def _graph_rows() -> tuple[list[str], list[list[str]]]:
    text = (IMPORT / "graph_activity_log_analytics.csv").read_text("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    out = []
    for i in range(120):
        r = list(rows[i % 2])
        r[header.index("RequestId")] = f"req-{i:04d}"
        out.append(r)
    return header, out


def _set(header: list[str], row: list[str], column: str, value: str) -> None:
    row[header.index(column)] = value


def test_odd_graph_activity_rows_same_both_ways(tmp_path: Path, refused: list[int]) -> None:
    header, rows = _graph_rows()
    odd = {
        1: ("ResponseStatusCode", "200.0"), 2: ("ResponseStatusCode", " 404"), 3: ("ResponseStatusCode", "abc"),
        4: ("Scopes", '["Mail.Read", "User.Read"]'), 5: ("Scopes", "  Mail.Read  "), 6: ("UserId", " ABC-Def "),
        7: ("UserId", "İstanbul-ID"), 8: ("TimeGenerated [UTC]", ""),
        9: ("TimeGenerated [UTC]", "6/15/2023, 1:10:00.000 AM"),
        10: ("IPAddress", "[2001:DB8::1]:443"), 11: ("RequestUri", "https://graph.microsoft.com/v1.0/me/messages?$q=é\x1f"),
        12: ("Type", "SigninLogs"), 13: ("AppId", "\u00a0D3590ED6-52B3-4102-AEFF-AAD2292AB01C"), 14: ("RequestId", ""),
        15: ("SessionId", "\t"), 16: ("Roles", "[]"), 17: ("ResponseStatusCode", "123456789012345678"),
        18: ("RequestId", "req-0000"),  # a duplicate record id
    }
    for i, (column, value) in odd.items():
        _set(header, rows[i], column, value)
    path = tmp_path / "graph.csv"
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    path.write_bytes(out.getvalue().encode("utf-8-sig"))
    res, events = same_case(tmp_path, path, batch_size=16)
    assert res["format"] == "log-analytics-csv" and res["quarantined"] >= 1 and res["duplicates"] == 1
    assert 0 < sum(refused) < len(rows) // 2  # the odd rows went per record, the rest through SQL
    assert set(events["source"]) == {"graph_activity", "signin_interactive"}


def test_a_row_the_csv_reader_refuses_hands_the_rest_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    header, rows = _graph_rows()
    rows[70] = rows[70][:5]  # a row of the wrong width: Arrow stops, the per-record readers go on
    path = tmp_path / "graph.csv"
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    path.write_bytes(out.getvalue().encode("utf-8"))
    with caplog.at_level(logging.INFO, logger=FASTLOG):
        res, _ = same_case(tmp_path, path, batch_size=32)
    assert [r for r in caplog.records if r.name == FASTLOG]
    assert (res["records"], res["quarantined"]) == (120, 1)


def test_header_text_never_reaches_sql_text(tmp_path: Path) -> None:
    header, rows = _graph_rows()
    header[header.index("Location")] = "x'); DROP TABLE csv_rows; --"
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    path = tmp_path / "graph.csv"
    path.write_text(out.getvalue(), "utf-8")
    opened, head = probe(path)
    plan = fastmap.plan(path, opened, head)
    assert plan is not None
    query, params = fastmap.map_sql(plan, "csv_rows")
    assert "DROP" not in query and header[header.index("x'); DROP TABLE csv_rows; --")] in params
    res, events = same_case(tmp_path, path, batch_size=50)
    assert res["imported"] == 120 and "x'); DROP TABLE csv_rows; --" in events["raw"].iloc[0]


# ----- JSON lines of diagnostic-settings envelopes (fastjson) -------------------------------------
JSONLOG = "ir_toolkit.sources.fastjson"


def _diagnostic_lines(n: int = 60) -> list[str]:
    lines = (IMPORT / "diagnostic_entra_PT1H.json").read_text().splitlines()
    graph = json.loads(next(line for line in lines if "MicrosoftGraphActivityLogs" in line))

    def one(i: int, **props: Any) -> str:
        d = copy.deepcopy(graph)
        d["properties"]["requestId"] = f"req-{i}"
        d["properties"].update(props)
        return json.dumps(d)

    out = [one(i) for i in range(n)]
    out[3] = lines[0]  # a sign-in: another map, per record
    out[5] = ""  # a blank line: line numbers go on
    out[7] = one(7, responseStatusCode="200")  # text where the file has numbers
    d = json.loads(out[8])
    d["properties"]["RequestId"] = d["properties"].pop("requestId")  # another spelling
    out[8] = json.dumps(d)
    out[9] = one(9, roles=["Mail.Read", "Mail.Send"])  # a list of names
    d = json.loads(one(10))
    del d["properties"]["timeGenerated"]  # the envelope's time fills in
    out[10] = json.dumps(d)
    d = json.loads(one(11, timeGenerated=""))
    d["time"] = "junk"  # no readable time: quarantined
    out[11] = json.dumps(d)
    out[12] = one(12, ipAddress="")  # the envelope's callerIpAddress fills in
    out[13] = '"text"'  # no object: quarantined (an array on a line would be its records)
    out[14] = one(14, userId=" ABC ")
    d = json.loads(one(15))
    d["category"] = "MİCROSOFTGRAPHACTIVITYLOGS"  # lower-cased differently by Python and DuckDB
    out[15] = json.dumps(d)
    out[16] = one(16, responseStatusCode=2.5)
    out[17] = out[18]  # a duplicate record id
    d = json.loads(one(19))
    d["properties"]["RequestID"] = "req-19-again"  # a key twice once normalised
    out[19] = json.dumps(d)
    return out


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_diagnostic_lines_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                       refused: list[int]) -> None:
    path = _write(tmp_path / "PT1H.json", _diagnostic_lines())
    opened, head = probe(path)
    plan = fastjson.plan(path, opened, head)
    assert plan is not None and (plan.envelope.NAME, plan.fm.NAME) == ("azure_monitor_record", "graph_activity")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]  # DuckDB read every line
    assert (res["records"], res["duplicates"], res["quarantined"]) == (59, 1, 2)
    assert 0 < sum(refused) <= 14  # the odd lines went per record, the rest through SQL
    assert set(events["source"]) == {"graph_activity", "signin_interactive"}
    assert events["evidence"].str.endswith("#59").any()  # positions are record numbers (a blank line is none)


@pytest.mark.parametrize(("line", "why"), [('{"time": "2023', "not JSON"), ("page", "page")])
def test_diagnostic_lines_hand_the_rest_over(tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str,
                                             why: str) -> None:
    lines = _diagnostic_lines()
    lines[40] = json.dumps({"records": [json.loads(lines[0]), json.loads(lines[1])]}) if line == "page" else line
    path = _write(tmp_path / "PT1H.json", lines)
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, _ = same_case(tmp_path, path, batch_size=16)
    assert [r for r in caplog.records if r.name == JSONLOG and why in r.getMessage()]
    assert res["records"] == 59 + (1 if line == "page" else 0)


# ----- any cell, any value: the generated SQL and the per-record mappers agree ----------------------
CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "\u00a0x", "x\u2003", "İD", "ß", "200", "-7", "2.5", "1e3", "123456789012345678",
                     "[\"a\"]", "[]", "Mail.Read User.Read", "[2001:db8::1]:443", "6/15/2023 1:10:00 AM",
                     "MicrosoftGraphActivityLogs", "SigninLogs", "\t", "a\nb"]))
GRAPH_COLUMNS = ["TimeGenerated [UTC]", "ResponseStatusCode", "UserId", "AppId", "IPAddress", "Scopes", "Roles",
                 "SessionId", "RequestId", "Type", "SignInActivityId", "TokenIssuedAt", "RequestMethod"]


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(0, 23), st.sampled_from(GRAPH_COLUMNS), CELLS), min_size=1,
                        max_size=8))
def test_any_csv_cell_same_both_ways(changes: list[tuple[int, str, str]]) -> None:
    header, rows = _graph_rows()
    rows = rows[:24]
    for i, column, value in changes:
        _set(header, rows[i], column, value)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.csv"
        out = io.StringIO()
        csv.writer(out).writerows([header, *rows])
        path.write_bytes(out.getvalue().encode("utf-8"))
        same_case(Path(tmp), path, batch_size=10)


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**66), 2**66), st.floats(allow_nan=False),
                        CELLS, st.lists(st.text(max_size=4), max_size=2))
PROPERTIES = ["timeGenerated", "responseStatusCode", "userId", "appId", "ipAddress", "scopes", "roles", "C_Sid",
              "requestId", "signInActivityId", "tokenIssuedAt", "requestMethod", "UserId", "category"]


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(1, 23), st.sampled_from(PROPERTIES), JSON_VALUES), min_size=1,
                        max_size=8))
def test_any_diagnostic_value_same_both_ways(changes: list[tuple[int, str, Any]]) -> None:
    lines = _diagnostic_lines(24)
    for i, key, value in changes:
        d = json.loads(lines[i]) if lines[i].startswith("{") else None
        if d is None:
            continue
        if key == "category":
            d["category"] = value
        elif isinstance(d.get("properties"), dict):
            d["properties"][key] = value
        lines[i] = json.dumps(d)
    with tempfile.TemporaryDirectory() as tmp:
        same_case(Path(tmp), _write(Path(tmp) / "PT1H.json", lines), batch_size=10)


# ----- Event Hub bodies and JSON arrays (fastdocs): the same records in other containers ----------------
def _bodies(lines: list[str], per_body: int, pretty: bool) -> str:
    records = [json.loads(x) for x in lines if x]
    bodies = [{"records": records[i:i + per_body]} for i in range(0, len(records), per_body)]
    return "\n".join(json.dumps(b, indent=2 if pretty else None) for b in bodies) + "\n"


@pytest.mark.parametrize(("per_body", "pretty"), [(60, True), (7, False)])
def test_event_hub_bodies_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                       refused: list[int], per_body: int, pretty: bool) -> None:
    path = tmp_path / "eventhub.json"
    path.write_text(_bodies(_diagnostic_lines(), per_body, pretty), "utf-8")
    opened, head = probe(path)
    plan = fastjson.plan(path, opened, head)
    assert plan is not None and (plan.container, plan.fm.NAME) == ("bodies", "graph_activity")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]  # DuckDB read every body
    assert (res["records"], res["duplicates"], res["quarantined"]) == (59, 1, 2)
    assert 0 < sum(refused) <= 14
    assert set(events["source"]) == {"graph_activity", "signin_interactive"}


def _graph_records(n: int = 40) -> list[dict[str, Any]]:
    """A Log Analytics JSON export of MicrosoftGraphActivityLogs: the CSV fixture's rows as objects."""
    header, values = _graph_rows()
    out = []
    for i in range(n):
        rec = {h.removesuffix(" [UTC]"): v for h, v in zip(header, values[i % len(values)], strict=True)}
        rec["ResponseStatusCode"] = int(rec["ResponseStatusCode"]) if rec["ResponseStatusCode"].isdigit() else None
        out.append(rec)
    return out


def test_graph_activity_array_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           refused: list[int]) -> None:
    records = _graph_records()
    records[4]["Type"] = "SigninLogs"  # another table: per record
    records[6]["ResponseStatusCode"] = "abc"
    records[8] = {**records[8], "requestId": "x"}  # a key twice once normalised
    records[9]["TimeGenerated"] = ""  # no readable time: quarantined
    records[11] = "text"  # type: ignore[call-overload]  # no object: quarantined
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(records, indent=1), "utf-8")
    opened, head = probe(path)
    plan = fastjson.plan(path, opened, head)
    assert plan is not None and (plan.container, plan.envelope, plan.fm.NAME) == ("array", None, "graph_activity")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]
    assert res["format"] == "log-analytics-json" and res["records"] == 40 and res["quarantined"] >= 1
    assert 0 < sum(refused) <= 10
    assert "graph_activity" in set(events["source"])


@pytest.mark.parametrize("where", ["bodies", "array", "array comma"])
def test_a_bad_record_inside_a_document_hands_the_rest_over(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                            where: str) -> None:
    if where == "bodies":
        text = _bodies(_diagnostic_lines(), 7, False)
        lines = text.splitlines()
        lines[4] = lines[4].replace('"properties": {', '"properties": {"broken": tru, ', 1)  # body 5, record 1
        text = "\n".join(lines) + "\n"
    else:
        text = json.dumps(_graph_records(), indent=1)
        bad = '"RequestId": "req-0030",}' if where == "array comma" else '"RequestId": tru'
        text = text.replace('"RequestId": "req-0030"', bad, 1)
    path = tmp_path / "docs.json"
    path.write_text(text, "utf-8")
    opened, head = probe(path)
    assert (fastjson.plan(path, opened, head) is None) == (where == "array comma")  # DuckDB would read that one
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, _ = same_case(tmp_path, path, batch_size=8)
    assert res["quarantined"] >= 1 and res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
    handed = [r.getMessage() for r in caplog.records if r.name == JSONLOG and "per-record import" in r.getMessage()]
    assert bool(handed) == (where != "array comma")
    if where == "bodies":  # bodies one per line: from the broken body's first record (7 records a body)
        assert "from record 29 on" in handed[0]


def test_a_trailing_comma_in_a_line_is_quarantined_both_ways(tmp_path: Path) -> None:
    lines = _diagnostic_lines(30)
    lines[20] = lines[20][:-2] + ",}}"  # {"properties": {..., "C_DeviceId": "",}}
    assert lines[20].endswith('"",}}')
    path = _write(tmp_path / "PT1H.json", lines)
    res, events = same_case(tmp_path, path, batch_size=8)
    assert res["quarantined"] == 3 and not events["raw"].str.contains('"req-20"', regex=False).any()


def _api_body(records: list[dict[str, Any]], split: int) -> dict[str, Any]:
    """A Log Analytics query API body of ``records`` (all of the first record's columns), in two tables."""
    names = list(records[0])
    columns = [{"name": n, "type": "string"} for n in names]
    rows = [[r.get(n) for n in names] for r in records]
    return {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": rows[:split]},
                       {"name": "More", "columns": columns, "rows": rows[split:]}]}


def test_log_analytics_api_body_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                             refused: list[int]) -> None:
    records = _graph_records()
    records[3]["Scopes"] = None  # null cells
    records[5]["Type"] = "SigninLogs"  # another table: per record
    records[7]["ResponseStatusCode"] = "abc"
    path = tmp_path / "api.json"
    path.write_text(json.dumps(_api_body(records, 25)), "utf-8")
    opened, head = probe(path)
    plan = fastjson.plan(path, opened, head)
    assert plan is not None and (plan.container, plan.fm.NAME) == ("tables", "graph_activity")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]
    assert res["format"] == "log-analytics-json" and res["records"] == 40
    assert 0 < sum(refused) <= 4 and events["evidence"].str.endswith("#40").any()


@pytest.mark.parametrize("damage", ["row width", "no columns"])
def test_an_odd_log_analytics_api_body_hands_the_rest_over(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           damage: str) -> None:
    bodies = [_api_body(_graph_records(20), 10) for _ in range(3)]
    for k, body in enumerate(bodies):
        for t in body["tables"]:
            for i, row in enumerate(t["rows"]):
                row[list(_graph_records(1)[0]).index("RequestId")] = f"req-{k}-{t['name']}-{i}"
    if damage == "row width":
        bodies[1]["tables"][1]["rows"][4] = bodies[1]["tables"][1]["rows"][4][:3]  # quarantined per record
    else:
        del bodies[1]["tables"][1]["columns"]  # no query body: the per-record readers keep it as one record
    path = tmp_path / "api.json"
    path.write_text("\n".join(json.dumps(b) for b in bodies) + "\n", "utf-8")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, _ = same_case(tmp_path, path, batch_size=8)
    assert [r for r in caplog.records if r.name == JSONLOG and "per-record import" in r.getMessage()]
    assert res["records"] == (60 if damage == "row width" else 41) and res["quarantined"] >= 1


RECORD_KEYS = ["TimeGenerated", "ResponseStatusCode", "UserId", "AppId", "IPAddress", "Scopes", "Roles", "SessionId",
               "RequestId", "Type", "category", "RequestUri", "requestid"]


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(1, 19), st.sampled_from(RECORD_KEYS), JSON_VALUES), min_size=1,
                        max_size=8), container=st.sampled_from(["array", "tables"]))
def test_any_graph_record_value_same_both_ways(changes: list[tuple[int, str, Any]], container: str) -> None:
    records = _graph_records(20)
    for i, key, value in changes:
        records[i][key] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.json"
        path.write_text(json.dumps(records if container == "array" else _api_body(records, 7)), "utf-8")
        same_case(Path(tmp), path, batch_size=6)
