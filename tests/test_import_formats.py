"""The export formats of issue 15: diagnostic settings, Graph activity logs, Defender XDR advanced
hunting, Log Analytics API bodies, Splunk re-exports, message trace - and the field maps behind them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import TESTDATA

from ir_toolkit.case import Case
from ir_toolkit.sources.fieldmap import FIELD_MAPS, MapError, load_maps, parse_map
from ir_toolkit.sources.formats import FORMATS

IMPORT = TESTDATA / "import"
VICTIM, VICTIM_ID = "victim@contoso.com", "0b6e3e2a-1111-4c1b-9d4e-2f0a6b1c0a01"
APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
TOKEN, SESSION, ACTOR_IP = "kQ9x-Forged_Token_Id_01", "0f1e2d3c-0000-4000-8000-00000000bbbb", "203.0.113.77"

# file -> (format, records, sources of the events)
EXPECTED = {
    "diagnostic_entra_PT1H.json": ("azure-diagnostic-records", 10, {
        "signin_interactive": 1, "signin_noninteractive": 1, "signin_serviceprincipal": 2, "signin_managedidentity": 1,
        "directory_audit": 2, "graph_activity": 1, "risk_detection": 2}),
    "diagnostic_entra_eventhub.json": ("azure-diagnostic-records", 2, {"signin_interactive": 1, "graph_activity": 1}),
    "graph_activity_log_analytics.csv": ("log-analytics-csv", 2, {"graph_activity": 2}),
    "log_analytics_api.json": ("log-analytics-json", 2, {"graph_activity": 2}),
    "defender_hunting_api.json": ("defender-hunting-json", 1, {"mail_access": 1}),
    "defender_hunting_graph.json": ("defender-hunting-json", 2, {"graph_activity": 2}),
    "defender_signins_portal.csv": ("defender-hunting-csv", 2, {"signin_interactive": 1, "signin_noninteractive": 1}),
    "defender_identity_logons.json": ("defender-hunting-json", 1, {"audit_other": 1}),
    "defender_email_events.csv": ("defender-hunting-csv", 1, {"mail_flow": 1}),
    "defender_streaming.json": ("defender-streaming", 2, {"mail_access": 1, "audit_other": 1}),
    "splunk_export.json": ("splunk-json", 2, {"signin_interactive": 1, "mail_access": 1}),
    "splunk_export.csv": ("splunk-csv", 2, {"mail_access": 1, "directory_audit": 1}),
    "message_trace.csv": ("message-trace", 2, {"mail_flow": 2}),
    "entra_audit_download.csv": ("entra-audit-csv", 2, {"directory_audit": 2}),
    "entra_audit_download.json": ("graph-directory-audits", 1, {"directory_audit": 1}),
    "message_trace_history.csv": ("message-trace", 1, {"mail_flow": 1}),
    "message_trace_extended.csv": ("message-trace", 3, {"mail_flow": 3}),
    "graph_provisioning.json": ("graph-provisioning", 1, {"directory_audit": 1}),
    "graph_risky_users.json": ("graph-risky-users", 1, {"risk_detection": 1}),
    "inbox_rules.csv": ("exchange-inbox-rules", 1, {"tenant_snapshot": 1}),
    "inbox_rules.json": ("exchange-inbox-rules", 1, {"tenant_snapshot": 1}),
    **{f"extractor/20230615120000-{n}.csv": ("extractor-suite-csv", 1, {s: 1}) for n, s in (
        ("MailboxRules", "tenant_snapshot"), ("TransportRules", "tenant_snapshot"),
        ("OAuthPermissions", "tenant_snapshot"), ("Users", "tenant_snapshot"), ("RiskyUsers", "risk_detection"),
        ("RiskyDetections", "risk_detection"),
        ("SecurityAlerts", "tenant_snapshot"))},
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, pd.DataFrame]]:
    """Each fixture imported into a case of its own (one import per file for the whole module)."""
    out = {}
    for name in EXPECTED:
        root = tmp_path_factory.mktemp("case") / "case"
        Case.init(root, tenant="contoso.onmicrosoft.com")
        case = Case.open(root, writable=True)
        [res] = case.import_files([IMPORT / name], progress=False)
        out[name] = (res, case.read_events())
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recognised_counted_and_routed(imported: dict, name: str) -> None:
    res, events = imported[name]
    fmt, records, sources = EXPECTED[name]
    assert (res["format"], res["records"], res["imported"], res["quarantined"]) == (fmt, records, records, 0)
    assert res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
    assert events["source"].value_counts().to_dict() == sources
    assert events["time"].notna().all() or "ules." in name  # inbox rules: tenant state without a time
    for raw in events["raw"]:
        assert isinstance(json.loads(raw), dict)


def _one(imported: dict, name: str, **where: str) -> pd.Series:
    events = imported[name][1]
    for column, value in where.items():
        events = events[events[column] == value]
    assert len(events) == 1, f"{name}: {len(events)} events where {where}"
    return events.iloc[0]


GRAPH_ACTIVITY = ["diagnostic_entra_PT1H.json", "diagnostic_entra_eventhub.json", "graph_activity_log_analytics.csv",
                  "log_analytics_api.json", "defender_hunting_graph.json"]


@pytest.mark.parametrize("name", GRAPH_ACTIVITY)
def test_graph_activity_request_token_and_caller(imported: dict, name: str) -> None:
    r = _one(imported, name, source="graph_activity", record_id="a1a1a1a1-0000-4000-8000-000000000001")
    assert r["time"] == pd.Timestamp("2023-06-15T01:10:00.1234567Z").floor("us")
    assert (r["operation"], r["request_method"], r["response_status"], r["result"]) == ("Graph request", "GET", 200,
                                                                                       "success")
    assert r["request_uri"] == "https://graph.microsoft.com/v1.0/users/victim@contoso.com/messages?$top=50"
    assert r["token_id"] == TOKEN  # SignInActivityId: the sign-in's uniqueTokenIdentifier
    assert (r["user_id"], r["app_id"], r["ip"]) == (VICTIM_ID, APP, ACTOR_IP)
    assert r["scopes"] == "Mail.Read User.Read offline_access"
    if name != "defender_hunting_graph.json":  # GraphApiAuditEvents has no TokenIssuedAt, session or user agent
        assert r["token_issued_at"] == pd.Timestamp("2023-06-15T00:55:00Z")
        assert r["session_id"] == SESSION and r["user_agent"] == "python-requests/2.31.0"


def test_graph_activity_app_only_and_refused_requests(imported: dict) -> None:
    app = _one(imported, "graph_activity_log_analytics.csv", record_id="a1a1a1a1-0000-4000-8000-000000000003")
    assert (app["user_id"], app["roles"], app["scopes"]) == ("7e1f0000-0000-4000-8000-000000000009",
                                                             "Mail.Read Mail.ReadWrite", None)
    refused = _one(imported, "defender_hunting_graph.json", request_method="POST")
    assert (refused["response_status"], refused["result"]) == (403, "failure")
    assert refused["request_uri"].endswith("/mailFolders/inbox/messageRules")


def test_diagnostic_settings_every_entra_category(imported: dict) -> None:
    name = "diagnostic_entra_PT1H.json"
    s = _one(imported, name, source="signin_interactive")
    assert (s["time"], s["user"], s["user_id"], s["app_id"]) == (pd.Timestamp("2023-06-15T00:55:00Z"), VICTIM,
                                                                 VICTIM_ID, APP)
    assert (s["ip"], s["country"], s["asn"], s["session_id"], s["token_id"]) == (ACTOR_IP, "NL", 64501, SESSION, TOKEN)
    assert (s["operation"], s["result"], s["resource_id"]) == ("Sign-in", "success",
                                                               "00000002-0000-0ff1-ce00-000000000000")
    sp = _one(imported, name, record_id="11111111-0000-4000-8000-000000000003")
    assert (sp["user"], sp["error_code"], sp["result"]) == ("Backup Robot", 7000215, "failure")
    assert sp["token_id"] == "spTok-1"
    msp = _one(imported, name, record_id="11111111-0000-4000-8000-000000000005")  # MicrosoftServicePrincipalSignInLogs
    assert (msp["source"], msp["user"]) == ("signin_serviceprincipal", "Office 365 SharePoint Online")
    mi = _one(imported, name, source="signin_managedidentity")
    assert (mi["user"], mi["ip"]) == ("vm-identity", None)
    audit = _one(imported, name, operation="Consent to application")
    assert (audit["user"], audit["ip"], audit["target"]) == (VICTIM, ACTOR_IP, "Evil App")
    prov = _one(imported, name, operation="create")
    assert (prov["source"], prov["target"], prov["result"]) == ("directory_audit", "eve@contoso.com", "success")
    risky = _one(imported, name, operation="riskyUser")
    assert (risky["user"], risky["result"], risky["time"]) == (VICTIM, "high", pd.Timestamp("2023-06-15T01:12:00Z"))
    risk = _one(imported, name, operation="anomalousToken")
    assert (risk["ip"], risk["country"], risk["user_agent"]) == (ACTOR_IP, "NL", "python-requests/2.31.0")


MAIL_ACCESS = ["defender_hunting_api.json", "defender_streaming.json", "splunk_export.json", "splunk_export.csv"]


@pytest.mark.parametrize("name", MAIL_ACCESS)
def test_mail_access_inside_defender_and_splunk_records(imported: dict, name: str) -> None:
    r = _one(imported, name, source="mail_access")
    assert (r["operation"], r["mailbox"], r["user"], r["user_id"]) == ("MailItemsAccessed", VICTIM, VICTIM, VICTIM_ID)
    assert r["time"] == pd.Timestamp("2023-06-15T01:20:00Z")
    assert (r["token_id"], r["session_id"], r["token_issued_at"]) == (TOKEN, SESSION,
                                                                     pd.Timestamp("2023-06-15T00:55:00Z"))
    assert (r["app_id"], r["client_app_id"], r["ip"]) == (APP, APP, ACTOR_IP)
    assert (r["mail_access_type"], r["items"], list(r["message_ids"])) == ("Bind", 1, ["<m77@contoso.com>"])


def test_defender_signins_identity_logons_and_email(imported: dict) -> None:
    s = _one(imported, "defender_signins_portal.csv", source="signin_interactive")
    assert (s["user"], s["user_id"], s["app_id"], s["app_name"]) == (VICTIM, VICTIM_ID, APP, "Microsoft Office")
    assert (s["ip"], s["country"], s["session_id"], s["time"]) == (ACTOR_IP, "NL", SESSION,
                                                                   pd.Timestamp("2023-06-15T00:55:00Z"))
    assert s["record_id"] == "11111111-0000-4000-8000-000000000001"  # the sign-in's request id, as Graph's id
    f = _one(imported, "defender_signins_portal.csv", source="signin_noninteractive")
    assert (f["error_code"], f["result"]) == (50126, "failure")
    logon = _one(imported, "defender_identity_logons.json")
    assert (logon["operation"], logon["user"], logon["ip"], logon["target"]) == ("LogonFailed", VICTIM, "10.0.0.5",
                                                                                 "dc01")
    assert logon["result"] == "failure"  # from the ActionType (its FailureReason stays in raw)
    mail = _one(imported, "defender_email_events.csv")
    assert (mail["user"], mail["mailbox"], mail["ip"], mail["target"]) == ("boss@evil.example", VICTIM, "192.0.2.44",
                                                                           "Invoice overdue")
    assert list(mail["message_ids"]) == ["<phish1@evil.example>"] and mail["operation"] == "Inbound"


def test_other_defender_tables_kept_whole(imported: dict) -> None:
    r = _one(imported, "defender_streaming.json", source="audit_other")
    assert (r["operation"], r["user"], r["target"]) == ("PowerShellCommand", VICTIM, "laptop-7.contoso.com")
    assert json.loads(r["raw"])["properties"]["AdditionalFields"] == '{"Command":"Get-Mailbox"}'


def test_splunk_sign_in_and_audit(imported: dict) -> None:
    s = _one(imported, "splunk_export.json", source="signin_interactive")
    assert (s["user"], s["ip"], s["token_id"], s["session_id"]) == (VICTIM, ACTOR_IP, TOKEN, SESSION)
    a = _one(imported, "splunk_export.csv", source="directory_audit")
    assert (a["operation"], a["user"], a["target"]) == ("Add service principal credentials", VICTIM, "Evil App")


def test_message_trace_one_event_per_recipient(imported: dict) -> None:
    events = imported["message_trace.csv"][1]
    assert sorted(events["mailbox"]) == ["cfo@contoso.com", VICTIM]
    r = _one(imported, "message_trace.csv", mailbox=VICTIM)
    assert (r["time"], r["user"], r["ip"], r["result"]) == (pd.Timestamp("2023-06-15T03:00:00Z"), "boss@evil.example",
                                                            "192.0.2.44", "delivered")


@pytest.mark.parametrize("name", ["entra_audit_download.csv", "entra_audit_download.json"])
def test_entra_admin_center_audit_downloads(imported: dict, name: str) -> None:
    r = _one(imported, name, operation="Consent to application")
    assert (r["time"], r["user"], r["user_id"], r["ip"]) == (pd.Timestamp("2023-06-15T01:09:00.123456Z"), VICTIM,
                                                             VICTIM_ID, ACTOR_IP)
    assert (r["result"], r["target"]) == ("success", "Evil App")
    if name.endswith(".csv"):
        assert r["user_agent"] == "Mozilla/5.0 (Windows NT 10.0)"
        app = _one(imported, name, operation="Add service principal credentials")
        assert (app["user"], app["user_id"], app["app_name"]) == ("Evil App", "8e0f0000-0000-4000-8000-000000000004",
                                                                  "Evil App")


def test_extractor_suite_tenant_state(imported: dict) -> None:
    rule = _one(imported, "extractor/20230615120000-MailboxRules.csv")
    assert (rule["operation"], rule["mailbox"], rule["user"], rule["target"]) == ("inboxRule", VICTIM, VICTIM, "..")
    assert pd.isna(rule["time"]) and "attacker@evil.example" in json.loads(rule["raw"])["ForwardTo"]
    transport = _one(imported, "extractor/20230615120000-TransportRules.csv")
    assert (transport["operation"], transport["target"], transport["result"]) == ("transportRule", "Forward finance",
                                                                                  "enabled")
    assert transport["time"] == pd.Timestamp("2023-06-15T01:40:00Z")
    grant = _one(imported, "extractor/20230615120000-OAuthPermissions.csv")
    assert (grant["operation"], grant["app_id"], grant["app_name"], grant["target"]) == (
        "oauth2PermissionGrant", "8e0f0000-0000-4000-8000-0000000000aa", "Evil App", "Mail.Read")
    assert (grant["user_id"], grant["time"]) == (VICTIM_ID, pd.Timestamp("2023-06-15T01:09:00Z"))
    user = _one(imported, "extractor/20230615120000-Users.csv")
    assert (user["operation"], user["user"], user["user_id"]) == ("user", VICTIM, VICTIM_ID)
    risky = _one(imported, "extractor/20230615120000-RiskyUsers.csv")
    assert (risky["operation"], risky["result"], risky["user"]) == ("riskyUser", "high", VICTIM)
    detection = _one(imported, "extractor/20230615120000-RiskyDetections.csv")
    assert (detection["operation"], detection["ip"], detection["country"], detection["user_agent"]) == (
        "anomalousToken", ACTOR_IP, "NL", "python-requests/2.31.0")
    alert = _one(imported, "extractor/20230615120000-SecurityAlerts.csv")
    assert (alert["operation"], alert["user"], alert["result"], alert["target"]) == (
        "securityAlert", VICTIM, "medium", "Suspicious inbox manipulation rule")


def test_historical_trace_and_graph_provisioning_and_risky_users(imported: dict) -> None:
    trace = _one(imported, "message_trace_history.csv")
    assert (trace["time"], trace["user"], trace["mailbox"], trace["ip"], trace["operation"]) == (
        pd.Timestamp("2023-06-15T03:00:00Z"), "boss@evil.example", VICTIM, "192.0.2.44", "Incoming")
    assert list(trace["message_ids"]) == ["<phish1@evil.example>"]
    events = imported["message_trace_extended.csv"][1].sort_values("time")  # UTF-16 without BOM, a row per event
    assert events["operation"].tolist() == ["RECEIVE", "DELIVER", "FAIL"]
    assert events["mailbox"].tolist() == [VICTIM.lower(), VICTIM.lower(), "cfo@contoso.com"]
    assert set(events["user"]) == {"boss@evil.example"} and set(events["ip"]) == {"192.0.2.44"}
    assert [list(m) for m in events["message_ids"]] == [["<phish1@evil.example>"]] * 3
    assert events["time"].iloc[0] == pd.Timestamp("2023-06-15T03:00:01.123Z")
    prov = _one(imported, "graph_provisioning.json")
    assert (prov["operation"], prov["target"], prov["user"]) == ("create", "eve@contoso.com",
                                                                 "Azure AD Provisioning Service")
    risky = _one(imported, "graph_risky_users.json")
    assert (risky["operation"], risky["user"], risky["user_id"], risky["result"]) == ("riskyUser", VICTIM, VICTIM_ID,
                                                                                      "high")


def test_get_inboxrule_output(imported: dict) -> None:
    csv_rule = _one(imported, "inbox_rules.csv")
    assert (csv_rule["operation"], csv_rule["mailbox"], csv_rule["target"], csv_rule["result"]) == (
        "inboxRule", VICTIM, "..", "true")
    json_rule = _one(imported, "inbox_rules.json")  # MailboxOwnerId a name, not an address: no mailbox
    assert (json_rule["user"], json_rule["mailbox"], json_rule["target"]) == ("Victim", None, "fwd")
    assert "attacker@evil.example" in json_rule["raw"]


def test_containers_that_hold_nothing_we_know() -> None:
    from ir_toolkit.sources.batch import build_batch

    records = [
        {"time": "2023-06-15T01:00:00Z", "category": "NetworkAccessTrafficLogs", "operationName": "Traffic",
         "callerIpAddress": "192.0.2.1:443", "correlationId": "c1", "properties": {"flowId": 7}},
        {"time": "2023-06-15T01:00:00Z", "category": "AuditLogs", "operationName": "x", "properties": "{cut"},
        {"Timestamp": "2023-06-15T01:00:00Z", "ActionType": "FileDownloaded", "RawEventData": "", "ReportId": "r1"},
        {"Timestamp": "2023-06-15T01:00:00Z", "ActionType": "X", "RawEventData": "{broken", "ReportId": "r2"},
        {"_time": "2023-06-15T01:00:00Z", "sourcetype": "syslog", "_raw": "<13>Jun 15 host sshd: hello"},
    ]
    batch = build_batch(iter(enumerate(records, 1)), evidence="e", dayfirst=False)
    assert batch.records == 5 and len(batch.events) + len(batch.quarantined) == 5
    kept = batch.events.set_index("operation")
    assert (kept.loc["Traffic", "source"], kept.loc["Traffic", "ip"], kept.loc["Traffic", "target"]) == (
        "audit_other", "192.0.2.1", "NetworkAccessTrafficLogs")  # another category: kept as an Azure Monitor event
    assert kept.loc["FileDownloaded", "source"] == "audit_other"  # no RawEventData: kept as a Defender row
    assert [q["reason"].split(" (")[0] for q in batch.quarantined] == [  # then the decoder's own words
        "record 2: properties is not valid JSON", "record 4: RawEventData is not valid JSON",
        "record 5: _raw is not valid JSON"]


# ----- field maps as data ------------------------------------------------------------------------
def test_every_field_map_has_name_description_and_a_format_reads_it() -> None:
    assert {"signin", "graph_activity", "azure_monitor_record", "cloud_app_event", "risk"} <= set(FIELD_MAPS)
    for name, m in FIELD_MAPS.items():
        assert m.NAME == name and m.DESCRIPTION
        assert m.unwrap is not None or any(r.column == "time" for r in m.rules)
    assert {"azure-diagnostic-records", "defender-hunting-csv", "defender-hunting-json", "defender-streaming",
            "splunk-json", "splunk-csv", "message-trace"} <= set(FORMATS)


def test_a_map_is_generated_from_its_declaration() -> None:
    m = parse_map({"NAME": "x", "DESCRIPTION": "test", "columns": {
        "time": ["when", "at"], "source": {"value": "audit_other"},
        "user": {"from": ["actor.upn | lower", "actor.name"]}, "ip": {"from": "addr", "transform": "ip"},
        "target": {"from": "targets[1].id"}, "record_id": {"from": ["a", "b"], "join": "/"},
        "items": {"from": "n", "transform": "integer"}}})
    cols = m([{"when": "", "at": "2024-01-01", "actor": '{"UPN": " Bob@X.COM "}', "addr": "[2001:db8::1]:443",
               "targets": [{"id": "t0"}, {"ID": "t1"}], "a": "1", "b": 2, "n": "7"},
              {"when": "2024-01-02", "actor": {"name": "robot"}, "addr": None, "targets": [], "a": "", "b": "z"}])
    assert cols["time"] == ["2024-01-01", "2024-01-02"]
    assert cols["user"] == ["bob@x.com", "robot"] and cols["ip"] == ["2001:db8::1", None]
    assert cols["target"] == ["t1", None] and cols["record_id"] == ["1/2", "z"] and cols["items"] == [7, None]
    assert cols["source"] == ["audit_other", "audit_other"]


@pytest.mark.parametrize(("doc", "message"), [
    pytest.param({"NAME": "x", "DESCRIPTION": "d", "columns": {"time": "t", "colour": "c"}}, "no canonical column",
                 id="unknown-column"),
    pytest.param({"NAME": "x", "DESCRIPTION": "d", "columns": {"time": {"from": "t", "transform": "rot13"}}},
                 "unknown transform", id="unknown-transform"),
    pytest.param({"NAME": "x", "DESCRIPTION": "d", "columns": {"time": "t[x]"}}, "malformed path", id="bad-path"),
    pytest.param({"NAME": "x", "columns": {"time": "t"}}, "NAME and DESCRIPTION", id="no-description"),
    pytest.param({"NAME": "x", "DESCRIPTION": "d", "columns": {"user": "u"}}, "time column", id="no-time"),
])
def test_a_broken_map_is_refused_with_its_reason(doc: dict, message: str) -> None:
    with pytest.raises(MapError, match=message):
        parse_map(doc)


def test_maps_directory_loads_and_refuses_a_name_twice(tmp_path: Path) -> None:
    for n in ("a", "b"):
        (tmp_path / f"{n}.yaml").write_text("NAME: same\nDESCRIPTION: d\ncolumns: {time: t}\n")
    with pytest.raises(MapError, match="declared twice"):
        load_maps(tmp_path)


@pytest.mark.parametrize("name", ["message_trace_extended.csv", "entra_audit_download.csv"])
def test_confirmed_shapes_same_both_ways(tmp_path: Path, name: str) -> None:
    """Shapes confirmed against real downloads described by others (tests/data/SOURCES.md), both import paths."""
    from test_import_fast import same_case

    res, events = same_case(tmp_path, IMPORT / name)
    assert res["imported"] == len(events) > 0 and res["quarantined"] == 0


def test_every_record_family_is_a_field_map() -> None:
    """No Python column mapper is left (issue 15, Deliver 3): every family's mapper is generated from maps/*.yaml."""
    from ir_toolkit.sources.mappers import MAPPERS

    assert set(MAPPERS) <= set(FIELD_MAPS)
    assert {"ual", "directory_audit", "audit_record", "signin"} <= set(FIELD_MAPS)
    assert FIELD_MAPS["audit_record"].unwrap is not None and FIELD_MAPS["audit_record"].unwrap.into == "ual"
