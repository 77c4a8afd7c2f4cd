"""Every raw file of a generated tenant against the reference field lists (names, nesting, types)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sample_reading import (
    APP_ACCESS_CONTEXT,
    AUDIT_LOG_RECORD,
    AUDIT_USER_TYPES,
    AUTH_DETAIL,
    BETA_SIGNIN,
    COMMON_SCHEMA,
    CREDENTIAL_TYPES,
    CSV_HEADER,
    DEVICE,
    DIRECTORY_AUDIT,
    EVENT_TYPES,
    GEO,
    GRANT,
    INCOMING,
    INITIATED_APP,
    INITIATED_USER,
    KEY_CREDENTIAL,
    LOCATION,
    MAIL_ITEMS,
    MODIFIED,
    PASSWORD_CREDENTIAL,
    PROTOCOLS,
    STATUS,
    TARGET,
    TOKEN_ISSUER_TYPES,
    csv_export,
    pages,
    records,
)

from ir_toolkit.sample import make_sample

SIGNIN_FOLDERS = {"signins_interactive": "interactiveUser", "signins_noninteractive": "nonInteractiveUser",
                  "signins_serviceprincipal": "servicePrincipal"}
GRAPH_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UAL_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fmt") / "tenant"
    make_sample(root, seed=7, users=14, days=38, gzip=True)
    return root


def test_page_envelopes_next_links_and_order(tenant: Path) -> None:
    folders = [p.parent for p in tenant.rglob("page-00001.json*")]
    assert len(folders) == 9
    for folder in folders:
        got = pages(folder)
        for i, page in enumerate(got):
            last = i == len(got) - 1
            keys = {"@odata.context", "value"} | (set() if last else {"@odata.nextLink"})
            assert set(page) == keys
            assert page["@odata.context"].startswith("https://graph.microsoft.com/")
            if not last:
                assert "$skiptoken=" in page["@odata.nextLink"]
            assert isinstance(page["value"], list) and page["value"]
    several = pages(tenant / "entra" / "signins_noninteractive")
    assert len(several) > 1 and all(len(p["value"]) == 1000 for p in several[:-1])


@pytest.mark.parametrize("folder", sorted(SIGNIN_FOLDERS))
def test_signins_match_beta_signin_resource(tenant: Path, folder: str) -> None:
    recs = records(tenant / "entra" / folder)
    times = [r["createdDateTime"] for r in recs]
    assert times == sorted(times, reverse=True), "Graph returns sign-ins newest first"
    for r in recs:
        assert set(r) <= BETA_SIGNIN, set(r) - BETA_SIGNIN
        assert GRAPH_TIME.match(r["createdDateTime"])
        assert r["signInEventTypes"] == [SIGNIN_FOLDERS[folder]] and set(r["signInEventTypes"]) <= EVENT_TYPES
        assert set(r["status"]) == STATUS and isinstance(r["status"]["errorCode"], int)
        assert set(r["deviceDetail"]) == DEVICE and isinstance(r["deviceDetail"]["isCompliant"], bool)
        assert set(r["location"]) == LOCATION and set(r["location"]["geoCoordinates"]) == GEO
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", r["uniqueTokenIdentifier"])
        assert isinstance(r["sessionId"], str) and isinstance(r["isInteractive"], bool)
        assert r["tokenIssuerType"] in TOKEN_ISSUER_TYPES and r["incomingTokenType"] in INCOMING
        assert r["authenticationProtocol"] in PROTOCOLS and r["clientCredentialType"] in CREDENTIAL_TYPES
        assert isinstance(r["autonomousSystemNumber"], int) and isinstance(r["riskEventTypes_v2"], list)
        for step in r["authenticationDetails"]:
            assert set(step) == AUTH_DETAIL
        if folder == "signins_serviceprincipal":
            assert r["userPrincipalName"] is None and r["servicePrincipalId"] and r["servicePrincipalName"]
            assert r["clientCredentialType"] == "certificate" and r["servicePrincipalCredentialKeyId"]
        else:
            assert r["userPrincipalName"] == r["userPrincipalName"].lower() and "@" in r["userPrincipalName"]
            assert r["isInteractive"] is (folder == "signins_interactive")
            if r["status"]["errorCode"] == 0:
                assert re.fullmatch(r"[0-9a-f-]{36}", r["sessionId"])


def test_directory_audits_match_v1_resource(tenant: Path) -> None:
    recs = records(tenant / "entra" / "directory_audits")
    assert {"Consent to application", "Add service principal"} <= {r["activityDisplayName"] for r in recs}
    for r in recs:
        assert set(r) == DIRECTORY_AUDIT
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$", r["activityDateTime"])
        user, app = r["initiatedBy"]["user"], r["initiatedBy"]["app"]
        assert (user is None or set(user) == INITIATED_USER) and (app is None or set(app) == INITIATED_APP)
        for t in r["targetResources"]:
            assert set(t) == TARGET and all(set(m) == MODIFIED for m in t["modifiedProperties"])
        assert all(set(d) == {"key", "value"} for d in r["additionalDetails"])


def test_audit_log_records_and_csv_export_hold_the_same_records(tenant: Path) -> None:
    graph = records(tenant / "purview" / "audit_log_query_records")
    header, rows = csv_export(tenant)
    assert header == CSV_HEADER
    assert [g["id"] for g in graph] == [row["RecordId"] for row in rows]
    for g, row in zip(graph, rows, strict=True):
        assert set(g) == AUDIT_LOG_RECORD and g["userType"] in AUDIT_USER_TYPES
        assert g["@odata.type"] == "#microsoft.graph.security.auditLogRecord"
        data = dict(g["auditData"])
        assert data.pop("@odata.type") == "#microsoft.graph.security.auditData"
        assert json.loads(row["AuditData"]) == data
        assert COMMON_SCHEMA <= set(data) and isinstance(data["RecordType"], int) and isinstance(data["UserType"], int)
        assert UAL_TIME.match(data["CreationTime"]) and g["createdDateTime"] == data["CreationTime"] + "Z"
        assert row["CreationDate"] == data["CreationTime"] + ".0000000Z"
        assert row["RecordType"] == str(data["RecordType"])
        assert row["Operation"] == data["Operation"] == g["operation"] and row["UserId"] == data["UserId"]
    ops = {json.loads(r["AuditData"])["Operation"] for r in rows}
    assert {"MailItemsAccessed", "Send", "MailboxLogin", "New-InboxRule", "Set-Mailbox", "FileAccessed",
            "UserLoggedIn", "UserLoginFailed"} <= ops


def test_mail_items_accessed_shape(tenant: Path) -> None:
    seen = {"Bind": 0, "Sync": 0, "ctx": 0, "noctx": 0}
    for row in csv_export(tenant)[1]:
        rec = json.loads(row["AuditData"])
        if rec["Operation"] != "MailItemsAccessed":
            continue
        assert MAIL_ITEMS <= set(rec) and rec["RecordType"] == 50 and rec["Workload"] == "Exchange"
        props = {p["Name"]: p["Value"] for p in rec["OperationProperties"]}
        assert props["MailAccessType"] in ("Bind", "Sync") and props["IsThrottled"] in ("True", "False")
        seen[props["MailAccessType"]] += 1
        assert isinstance(rec["OperationCount"], int) and rec["Folders"]
        for folder in rec["Folders"]:
            assert folder["Path"].startswith("\\")
            if props["MailAccessType"] == "Bind":
                assert all(i["InternetMessageId"].startswith("<") for i in folder["FolderItems"])
            else:
                assert "FolderItems" not in folder
        if props["MailAccessType"] == "Bind":
            assert rec["OperationCount"] == sum(len(f["FolderItems"]) for f in rec["Folders"])
        if "AppAccessContext" in rec:
            seen["ctx"] += 1
            assert set(rec["AppAccessContext"]) <= APP_ACCESS_CONTEXT and "UniqueTokenId" in rec["AppAccessContext"]
            assert UAL_TIME.match(rec["AppAccessContext"]["IssuedAtTime"])
        else:
            seen["noctx"] += 1
    assert all(seen.values()), seen


def test_snapshot_pages(tenant: Path) -> None:
    users = records(tenant / "entra" / "users")
    assert len(users) == 14 and all(u["userPrincipalName"] == u["mail"] for u in users)
    sps = records(tenant / "entra" / "service_principals")
    apps = records(tenant / "entra" / "applications")
    for obj in sps + apps:
        assert {"id", "appId", "displayName", "keyCredentials", "passwordCredentials"} <= set(obj)
        assert all(set(k) == KEY_CREDENTIAL for k in obj["keyCredentials"])
        assert all(set(p) == PASSWORD_CREDENTIAL for p in obj["passwordCredentials"])
    assert any(o["keyCredentials"] for o in sps) and any(o["passwordCredentials"] for o in apps)
    grants = records(tenant / "entra" / "oauth2_permission_grants")
    assert grants and all(set(g) == GRANT and g["consentType"] in ("AllPrincipals", "Principal") for g in grants)
