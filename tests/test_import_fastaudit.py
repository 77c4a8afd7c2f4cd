"""Diagnostic-settings AuditLogs and UserRiskEvents read by the fast path generated from the field maps give
the same case as the per-record path (issue 15, Deliver 5, session 8): nested paths through objects and lists
(``initiatedBy.user.userPrincipalName``, ``targetResources[0].displayName``) and the ``{key, value}`` user
agent (ir_toolkit/sources/auditsql.py) in SQL; a record whose shape the SQL cannot map exactly goes per record.

Same method as tests/test_import_fastmap.py: each file imported with ``fast=True`` and ``fast=False``,
every column, the quarantine and the counts compared.
"""

from __future__ import annotations

import copy
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
from test_import_fastmap import refused  # noqa: F401  (a fixture)

from ir_toolkit.sources import fastjson
from ir_toolkit.sources.reader import probe

PT1H = TESTDATA / "import" / "diagnostic_entra_PT1H.json"
JSONLOG = "ir_toolkit.sources.fastjson"
UA = "User-Agent"


def _category(name: str, n: int) -> list[dict[str, Any]]:
    """``n`` copies of the fixture's record of category ``name``, with distinct ids."""
    record = next(d for d in map(json.loads, PT1H.read_text("utf-8").splitlines()) if d["category"] == name)
    out = []
    for i in range(n):
        d = copy.deepcopy(record)
        d["properties"]["id"] = f"{name}-{i}"
        out.append(d)
    return out


def _write(path: Path, records: list[dict[str, Any]], container: str, raw: dict[int, str] | None = None) -> Path:
    """Records as PT1H.json lines or Event Hub bodies; ``raw``: lines written as given (duplicate keys)."""
    texts = [(raw or {}).get(i, json.dumps(d)) for i, d in enumerate(records)]
    if container == "lines":
        path.write_text("\n".join(texts) + "\n", "utf-8")
    else:
        path.write_text("\n".join('{"records": [' + ", ".join(texts[i:i + 9]) + "]}"
                                  for i in range(0, len(texts), 9)) + "\n", "utf-8")
    return path


def _plan(path: Path) -> fastjson.JsonPlan | None:
    opened, head = probe(path)
    return fastjson.plan(path, opened, head)


def _fast(tmp_path: Path, path: Path, caplog: pytest.LogCaptureFixture, family: str) -> tuple[dict[str, Any], Any]:
    """Both ways, the same case; the plan maps ``family`` and DuckDB read every record."""
    plan = _plan(path)
    assert plan is not None and (plan.envelope.NAME, plan.fm.NAME) == ("azure_monitor_record", family)
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]
    return res, events


def _kv(*entries: tuple[str, str, Any]) -> list[dict[str, Any]]:
    return [{k: n, v: value} for k, n, v, value in ((e[0], e[1], "value" if e[0].islower() else "Value", e[2])
                                                    for e in entries)]


DETAILS: list[Any] = [  # additionalDetails / additionalInfo values, exact in SQL or sent per record
    _kv(("key", UA, "Mozilla/5.0 (X11)")), _kv(("Key", UA, "curl/8.0")), _kv(("key", "user-agent", "lower")),
    _kv(("Name", UA, "by Name")), _kv(("name", UA, "by name")),
    _kv(("key", UA, None), ("key", "UserAgent", "fallback")), _kv(("key", UA, ""), ("Key", "UserAgent", "fb2")),
    _kv(("key", UA, "first"), ("key", UA, "second")), _kv(("key", "Other", "x"), ("key", "useragent", "ua-lc")),
    _kv(("key", UA, "  ")), _kv(("key", UA, " padded ")), _kv(("key", UA, 'a"quote')), _kv(("key", UA, "é")),
    _kv(("key", UA, "Mozilla é x")), _kv(("key", UA, 5)), _kv(("key", UA, True)), _kv(("key", UA, ["x"])),
    [{"value": "reversed", "key": UA}], [{"KEY": UA, "value": "caps"}], [{"key": UA, "value": "x", "extra": 1}],
    [{"key": UA, "Value": "mixed"}], ["@{Name=User-Agent; Value=ps}"], [None], [], None, {}, "", " ", 7,
    "text", json.dumps(_kv(("Key", "userAgent", "python-requests/2.31.0")), separators=(",", ":")),
    json.dumps(_kv(("Key", "userAgent", "spaced"))), '[{"Key":"userAgent","Value":"ctl\nchar"}]',
    [{"key": UA, "value": "tab\there"}], [{"key": "Ü", "value": "x"}, {"key": UA, "value": "after"}],
]
TARGETS: list[Any] = [
    [], None, [None], ["text"], [{"displayName": None, "userPrincipalName": "u@contoso.com"}], [{"id": "only-id"}],
    [{"displayName": " pad "}], {"displayName": "object"}, '[{"displayName": "json text"}]',
    [{"DisplayName": "other spelling"}], [{"displayName": "a", "DisplayName": "twice"}], [{"displayName": 5}],
    [{"displayName": ""}, {"displayName": "second"}], [{"displayName": "", "id": "id-after-empty"}],
]
INITIATORS: list[Any] = [
    {"app": {"displayName": "Graph Explorer", "servicePrincipalId": "SP-1", "appId": "APP-1"}},
    {"user": None, "app": {"displayName": " App ", "appId": None}}, None, {}, "text",
    json.dumps({"user": {"userPrincipalName": "json@text"}}), {"user": {"UserPrincipalName": "Other@Spelling"}},
    {"user": {"id": "A", "Id": "B"}}, {"user": {"userPrincipalName": "MiXeD@Contoso.com", "ipAddress": "10.0.0.1"}},
    {"User": {"userPrincipalName": "x"}}, {"user": ["list"]}, {"user": {"ipAddress": 7}},
]


@pytest.mark.parametrize("container", ["lines", "bodies"])
def test_audit_logs_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 refused: list[int], container: str) -> None:  # noqa: F811
    n = len(DETAILS) + len(TARGETS) + len(INITIATORS) + 20
    records = _category("AuditLogs", n)
    props = [d["properties"] for d in records]
    odd = [("additionalDetails", v) for v in DETAILS] + [("targetResources", v) for v in TARGETS] + \
        [("initiatedBy", v) for v in INITIATORS]
    for i, (key, value) in enumerate(odd):
        props[i + 1][key] = value
    del props[n - 2]["additionalDetails"]
    records[n - 3]["category"] = "UserRiskEvents"  # another map: per record
    dup = json.dumps(records[n - 4]).replace('"key": "User-Agent"', '"key": "User-Agent", "key": "X"')
    dup2 = json.dumps(records[n - 5]).replace('"displayName": "Evil App"', '"displayName": "Evil App", '
                                                                            '"displayName": "again"')
    path = _write(tmp_path / "PT1H.json", records, container, {n - 4: dup, n - 5: dup2})
    res, events = _fast(tmp_path, path, caplog, "directory_audit")
    assert res["records"] == n and res["quarantined"] == 0
    assert 0 < sum(refused) <= 36  # the odd shapes the SQL cannot map exactly per record (35 today), the rest in SQL
    agents = set(events["user_agent"].dropna())
    assert {"Mozilla/5.0 (Windows NT 10.0)", "curl/8.0", "lower", "by Name", "fallback", "fb2", "first",
            "ua-lc", "padded", "python-requests/2.31.0"} <= agents
    assert {"Evil App", "u@contoso.com", "only-id"} <= set(events["target"].dropna())
    assert {"victim@contoso.com", "Graph Explorer", "mixed@contoso.com"} <= set(events["user"].dropna())


@pytest.mark.parametrize("container", ["lines", "bodies"])
def test_user_risk_events_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                       refused: list[int], container: str) -> None:  # noqa: F811
    n = len(DETAILS) + 20
    records = _category("UserRiskEvents", n)
    for i, value in enumerate(DETAILS):
        records[i + 1]["properties"]["additionalInfo"] = value
    records[n - 1]["properties"]["location"] = "Redmond, Washington, US"
    records[n - 2]["properties"]["AdditionalInfo"] = records[n - 2]["properties"].pop("additionalInfo")
    path = _write(tmp_path / "PT1H.json", records, container)
    res, events = _fast(tmp_path, path, caplog, "risk")
    assert res["records"] == n and set(events["source"]) == {"risk_detection"}
    assert 0 < sum(refused) <= len(DETAILS)
    assert {"python-requests/2.31.0", "curl/8.0", "fallback"} <= set(events["user_agent"].dropna())
    assert {"NL", "US"} <= set(events["country"].dropna())


def test_which_entra_categories_take_the_fast_path(tmp_path: Path) -> None:
    """Every Entra category of the fixture, as a PT1H.json blob and as an Event Hub body: all but RiskyUsers'
    and ProvisioningLogs' own maps are planned (those two are too: each category's file is its own)."""
    lines = PT1H.read_text("utf-8").splitlines()
    planned = {}
    for line in lines:
        d = json.loads(line)
        for container in ("lines", "bodies"):
            path = _write(tmp_path / f"{d['category']}-{container}.json", [d] * 3, container)
            plan = _plan(path)
            planned[(d["category"], container)] = plan.fm.NAME if plan is not None else None
    want = {"SignInLogs": "signin", "NonInteractiveUserSignInLogs": "signin", "ServicePrincipalSignInLogs": "signin",
            "ManagedIdentitySignInLogs": "signin", "MicrosoftServicePrincipalSignInLogs": "signin",
            "AuditLogs": "directory_audit", "MicrosoftGraphActivityLogs": "graph_activity",
            "ProvisioningLogs": "provisioning", "RiskyUsers": "risky_user", "UserRiskEvents": "risk"}
    assert planned == {(c, k): f for c, f in want.items() for k in ("lines", "bodies")}


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=6),
                        st.sampled_from(["User-Agent", "UserAgent", "user-agent", " x ", "é", 'a"b', "a\\b", "\n"]))
ENTRY_KEYS = st.sampled_from(["key", "Key", "name", "Name", "value", "Value", "KEY", "VALUE", "x"])
ENTRIES = st.lists(st.one_of(st.dictionaries(ENTRY_KEYS, JSON_VALUES, max_size=3), JSON_VALUES), max_size=3)
FIELDS = st.one_of(ENTRIES, ENTRIES.map(lambda v: json.dumps(v, separators=(",", ":"))), JSON_VALUES)
AUDIT_PATHS = [("additionalDetails",), ("targetResources", 0, "displayName"), ("targetResources", 0, "id"),
               ("initiatedBy", "user", "userPrincipalName"), ("initiatedBy", "app", "displayName"),
               ("initiatedBy", "user"), ("initiatedBy",), ("targetResources",), ("activityDisplayName",)]


def _put(props: dict[str, Any], steps: tuple[Any, ...], value: Any) -> None:
    """Sets ``value`` at ``steps`` where the objects and lists on the way are there (else nothing)."""
    at: Any = props
    for step in steps[:-1]:
        if isinstance(step, int):
            at = at[step] if isinstance(at, list) and len(at) > step else None
        else:
            at = at.get(step) if isinstance(at, dict) else None
    if isinstance(at, dict):
        at[steps[-1]] = value


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(1, 23), st.sampled_from(AUDIT_PATHS), FIELDS), min_size=1,
                        max_size=8))
def test_any_audit_value_same_both_ways(changes: list[tuple[int, tuple[Any, ...], Any]]) -> None:
    records = _category("AuditLogs", 24)
    records[5]["properties"]["initiatedBy"] = {"app": {"displayName": "App", "servicePrincipalId": "SP"}}
    for i, steps, value in changes:
        _put(records[i]["properties"], steps, value)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "PT1H.json", records, "lines")
        assert _plan(path) is not None
        same_case(Path(tmp), path, batch_size=10)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(1, 15), FIELDS), min_size=1, max_size=6))
def test_any_risk_info_same_both_ways(changes: list[tuple[int, Any]]) -> None:
    records = _category("UserRiskEvents", 16)
    for i, value in changes:
        records[i]["properties"]["additionalInfo"] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "PT1H.json", records, "bodies")
        assert _plan(path) is not None
        same_case(Path(tmp), path, batch_size=10)


def _pages(records: list[dict[str, Any]], how: str) -> str:
    """Graph pages of ``records`` (annotations before and after ``value``, as Graph writes them): one page
    pretty-printed, pages one after the other, or one page per line."""
    def page(part: list[dict[str, Any]], n: int) -> dict[str, Any]:
        return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits",
                "@odata.count": len(part), "value": part,
                "@odata.nextLink": f"https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$skiptoken={n}"}
    parts = [page(records[i:i + 7], i) for i in range(0, len(records), 7)]
    if how == "page":
        return json.dumps(page(records, 0), indent=2)
    return ("\n" if how == "page lines" else "").join(json.dumps(p) for p in parts) + "\n"


@pytest.mark.parametrize("container", ["array", "page", "pages", "page lines"])
def test_graph_directory_audits_mapped_in_sql_same_both_ways(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                             refused: list[int], container: str) -> None:  # noqa: F811
    """A JSON array of Graph directoryAudit records (the map's own records, no envelope), or Graph pages of them
    (``{"@odata.context", "value": [...], "@odata.nextLink"}``: one, several, one per line; session 9)."""
    page = json.loads((TESTDATA / "import" / "graph_directory_audits.json").read_text("utf-8"))
    odd = [("additionalDetails", v) for v in DETAILS] + [("targetResources", v) for v in TARGETS] + \
        [("initiatedBy", v) for v in INITIATORS]
    records = []
    for i in range(len(odd) + 10):
        d = copy.deepcopy(page["value"][0])
        d["id"] = f"audit-{i}"
        if 0 < i <= len(odd):
            d[odd[i - 1][0]] = odd[i - 1][1]
        records.append(d)
    records[0]["initiatedBy"]["user"]["@odata.type"] = "#microsoft.graph.userIdentity"  # a key the SQL cannot spell
    path = tmp_path / "audits.json"
    path.write_text(json.dumps(records) if container == "array" else _pages(records, container), "utf-8")
    plan = _plan(path)
    assert plan is not None and plan.envelope is None and plan.fm.NAME == "directory_audit"
    assert plan.container == ("array" if container == "array" else "results")
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, events = same_case(tmp_path, path, batch_size=8)
    assert not [r for r in caplog.records if r.name == JSONLOG]
    assert res["records"] == len(records) and set(events["source"]) == {"directory_audit"}
    assert 0 < sum(refused) <= 36
    assert {"curl/8.0", "fallback", "python-requests/2.31.0"} <= set(events["user_agent"].dropna())
    assert {"Example.com", "u@contoso.com", "only-id"} <= set(events["target"].dropna())


@pytest.mark.parametrize("how", ["heads before value", "value twice", "value no list", "records key"])
def test_graph_page_the_fast_path_cannot_read_hands_over(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          how: str) -> None:
    """A second document that is no Graph page as the per-record readers read one (a head before ``value``,
    ``value`` twice: DuckDB reads the first, json the last; ``value`` no list; another list key) hands the rest
    of the file over at its first record: the same case both ways."""
    page = json.loads((TESTDATA / "import" / "graph_directory_audits.json").read_text("utf-8"))
    records = []
    for i in range(12):
        d = copy.deepcopy(page["value"][0])
        d["id"] = f"audit-{i}"
        records.append(d)
    second: str = {
        "heads before value": json.dumps({"Stats": {}, "value": records[6:]}),
        "value twice": json.dumps({"@odata.context": "c", "value": records[6:]})[:-1] + ', "value": []}',
        "value no list": json.dumps({"@odata.context": "c", "value": records[6]}),
        "records key": json.dumps({"@odata.context": "c", "records": records[6:]}),
    }[how]
    path = tmp_path / "audits.json"
    path.write_text(json.dumps({"@odata.context": "c", "value": records[:6]}) + "\n" + second + "\n", "utf-8")
    assert _plan(path) is not None
    with caplog.at_level(logging.INFO, logger=JSONLOG):
        res, _ = same_case(tmp_path, path, batch_size=4)
    assert [r.getMessage() for r in caplog.records if r.name == JSONLOG and "from record 7 on" in r.getMessage()]
    assert res["imported"] + res["quarantined"] >= 6
