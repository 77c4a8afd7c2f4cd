"""Property-based tests: random and mutated records never escape the importer uncounted."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from conftest import TESTDATA
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ir_toolkit.case import Case
from ir_toolkit.errors import InputFormatError
from ir_toolkit.sources.formats import FORMATS, detect, sample
from ir_toolkit.sources.reader import probe

IMPORT = TESTDATA / "import"
KNOWN_KEYS = ["id", "createdDateTime", "userPrincipalName", "status", "ipAddress", "location", "signInEventTypes",
              "CreationTime", "Operation", "AuditData", "auditData", "AppAccessContext", "Folders",
              "OperationProperties", "MailboxOwnerUPN", "ClientIPAddress", "activityDisplayName", "initiatedBy",
              "targetResources", "riskEventType", "consentType", "TimeGenerated", "Type", "OperationCount",
              "value", "@odata.context"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=30),
                    st.sampled_from(["2023-06-15T01:02:03.1234567Z", "9/20/2023 4:05:03 AM", "[::1]:80", "Bind",
                                     "SigninLogs", "OfficeActivity", "MailItemsAccessed", "{not json", "[1,2"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8)),
                                                 inner, max_size=5)), max_leaves=12)
records = st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=10)), values, max_size=10)


def _real_records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in ("graph_signins_beta.json", "graph_signins_v1.json", "graph_directory_audits.json",
                 "graph_audit_records.json", "management_api.json", "log_analytics.json"):
        doc = json.loads((IMPORT / name).read_text())
        out += doc["value"] if isinstance(doc, dict) else doc
    return out


REAL = _real_records()


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    rec = dict(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 4))):
        keys = list(rec)
        action = draw(st.sampled_from(["replace", "delete", "add", "recase"]))
        if action == "replace" and keys:
            rec[draw(st.sampled_from(keys))] = draw(values)
        elif action == "delete" and keys:
            rec.pop(draw(st.sampled_from(keys)))
        elif action == "add":
            rec[draw(st.sampled_from(KNOWN_KEYS))] = draw(values)
        elif keys:
            k = draw(st.sampled_from(keys))
            rec[k.upper() if draw(st.booleans()) else k.lower()] = rec.pop(k)
    return rec


def _parse_all(path: Path, fmt_name: str) -> tuple[int, int, int]:
    opened, _ = probe(path)
    fmt = FORMATS[fmt_name]
    records = events = quarantined = 0
    for batch in fmt.parse(path, opened, evidence="x", batch_size=3):
        assert batch.records == len(batch.events) + len(batch.quarantined)
        timed = batch.events[batch.events["source"] != "tenant_snapshot"]
        assert timed["time"].notna().all()
        for q in batch.quarantined:
            assert set(q) >= {"file", "position", "reason", "record"} and q["reason"]
            json.dumps(q, ensure_ascii=False).encode("utf-8")  # always writable to the quarantine file
        records += batch.records
        events += len(batch.events)
        quarantined += len(batch.quarantined)
    return records, events, quarantined


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(records, mutated(), values), min_size=1, max_size=8),
       st.sampled_from(["graph-signins", "management-api", "log-analytics-json", "graph-audit-records"]),
       st.sampled_from(["array", "jsonl", "page"]))
def test_random_json_records_are_imported_or_quarantined(recs: list[Any], fmt: str, shape: str) -> None:
    if shape == "jsonl":
        text = "\n".join(json.dumps(r) for r in recs) + "\n"
    elif shape == "page":
        text = json.dumps({"@odata.context": "x", "value": recs})
    else:
        text = json.dumps(recs)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "f.json"
        f.write_text(text)
        opened, _ = probe(f)
        assume(opened.container in FORMATS[fmt].containers)  # import_files refuses the others
        records, events, quarantined = _parse_all(f, fmt)
    tops = [json.loads(line) for line in text.splitlines() if line.strip()] if shape == "jsonl" else [json.loads(text)]
    expected = 0
    for top in tops:
        if opened.container == "json" and isinstance(top, list):
            expected += sum(_element_records(e, pages=True) for e in top)
        elif opened.container == "json" and isinstance(top, dict) and _is_page(top):
            expected += sum(_element_records(e, pages=False) for e in top["value"])
        else:  # a JSON line (a one-line array probes as JSON lines too)
            rules = _goose_rules(top) if opened.container == "jsonl" else None
            expected += _records_in(top) if rules is None else rules
    assert records == expected
    assert records == events + quarantined


def _is_page(obj: dict[str, Any]) -> bool:
    for k, v in obj.items():
        if k == "value":
            return isinstance(v, list)
        if not k.startswith("@odata"):
            return False
    return False


def _goose_rules(line: Any) -> int | None:
    """Untitled Goose Tool's inbox-rule line (docs/import.md): objects, then ``{"userPrincipalName": owner}``, which
    names their owner and is no record of its own: the objects before it; None for any other line."""
    if not (isinstance(line, list) and len(line) > 1 and isinstance(line[-1], dict)):
        return None
    if list(line[-1]) != ["userPrincipalName"]:
        return None
    return len(line) - 1 if all(isinstance(r, dict) and "userPrincipalName" not in r for r in line[:-1]) else None


def _element_records(e: Any, pages: bool) -> int:
    """Records of one array element: a non-empty nested array's items (pages opened), a page's records
    (with ``pages``), else one."""
    if isinstance(e, list) and e:
        return sum(_records_in(x) for x in e)
    return _records_in(e) if pages else 1


def _records_in(obj: Any) -> int:
    """How many records one JSON value holds: a page's records, else itself."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "value":
                return len(v) if isinstance(v, list) else 1
            if not k.startswith("@odata"):
                return 1
    return 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=20), st.one_of(st.text(max_size=40), st.builds(json.dumps, mutated()))),
                min_size=1, max_size=6))
def test_random_purview_rows_are_imported_or_quarantined(rows: list[tuple[str, str]]) -> None:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData"])
    for date, audit in rows:
        w.writerow(["r", date, "50", "MailItemsAccessed", "u@x.com", audit])
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "p.csv"
        f.write_text(out.getvalue(), encoding="utf-8")
        records, events, quarantined = _parse_all(f, "purview-csv")
    assert records == events + quarantined
    assert records >= 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["graph_signins_beta.json", "purview_current.csv", "log_analytics_portal.csv",
                        "management_api.json"]),
       st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=0, max_size=4)), min_size=1, max_size=4))
def test_mutated_files_never_crash_the_import(name: str, edits: list[tuple[float, bytes]]) -> None:
    data = bytearray((IMPORT / name).read_bytes())
    for where, new in edits:
        at = int(where * (len(data) - 1))
        data[at:at + len(new)] = new
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / name
        f.write_bytes(bytes(data))
        case = Case.init(Path(tmp) / "case", tenant="contoso")
        try:
            [res] = case.import_files([f])
        except InputFormatError as exc:  # the only acceptable failure: one clear line naming the file
            assert str(f) in str(exc) and "\n" not in str(exc)
            assert not case.evidence()
            return
        assert res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
        assert len(case.read_events()) == res["imported"]
        assert len(case.quarantined()) == res["quarantined"]
        assert detect(sample(case.root / case.evidence()[0]["path"])) is not None


@st.composite
def lookalike_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records whose nested objects and strings imitate the gap between two records."""
    trap = st.sampled_from(['},{"id":"x","createdDateTime":"y"', '}, {"id": 1, "createdDateTime": 2}', "},", "{", "}"])
    nested = st.recursive(st.one_of(scalars, trap), lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.fixed_dictionaries({"id": st.text(max_size=5), "createdDateTime": inner})), max_leaves=6)
    n = draw(st.integers(20, 60))
    return [{"id": f"r{i}", "createdDateTime": draw(st.one_of(st.text(max_size=3), trap)),
             "pad": "p" * draw(st.integers(0, 300)), "nested": draw(nested)} for i in range(n)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lookalike_records(), st.sampled_from([None, 1, 2]))
def test_json_array_runs_never_split_a_record(recs: list[dict[str, Any]], indent: int | None) -> None:
    from ir_toolkit.sources.jsonstream import read_json

    text = json.dumps(recs, indent=indent)
    got = [rec for _, rec in read_json(io.StringIO(text))]
    assert got == recs
