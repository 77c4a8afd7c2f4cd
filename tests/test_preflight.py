"""`ir-toolkit preflight` against local HTTPS fakes (MSAL authority, Graph probes, Log Analytics, advanced
hunting): full access, no P1/P2 (Microsoft's 403), a missing permission, no workspace access; read-only;
recorded in the case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.case import Case
from ir_toolkit.sources.graph.client import GraphError
from ir_toolkit.sources.preflight import expiry, licences, retention, why_not
from tests.conftest import ROOT, cli
from tests.fakes.authority import FakeAuthority
from tests.fakes.query_records import make_hunting_rows, make_la_rows
from tests.fakes.query_server import FakeQueryService

WS = "1a2b3c4d-0000-4000-8000-00000000abcd"
SECRET = "preflight-s3cret"
E5 = [{"skuPartNumber": "SPE_E5", "skuId": "06ebc4ee-1bb5-47dd-8120-11324bc54e06", "consumedUnits": 20,
       "prepaidUnits": {"enabled": 25}, "servicePlans": [
           {"servicePlanName": "AAD_PREMIUM", "provisioningStatus": "Success"},
           {"servicePlanName": "AAD_PREMIUM_P2", "provisioningStatus": "Success"},
           {"servicePlanName": "M365_ADVANCED_AUDITING", "provisioningStatus": "Success"}]}]
BUSINESS_BASIC = [{"skuPartNumber": "O365_BUSINESS_ESSENTIALS", "skuId": "3b555118-da6a-4418-894f-7df1e2096870",
                   "consumedUnits": 3, "prepaidUnits": {"enabled": 5},
                   "servicePlans": [{"servicePlanName": "EXCHANGE_S_STANDARD", "provisioningStatus": "Success"}]}]
LA = make_la_rows(start="2023-06-01", days=2, per_day=4)
HUNT = make_hunting_rows(start="2023-06-01", days=2, per_day=4)


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[tuple[FakeAuthority, dict[str, str], Path]]:
    (tmp_path / "sts").mkdir()
    with FakeAuthority(tmp_path / "sts", secret=SECRET) as sts:
        env = {"IR_TOOLKIT_COLLECT_TIME_SCALE": "0.001", "P_SECRET": SECRET,
               "XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
        yield sts, env, tmp_path


def _preflight(tenant: Any, svc: FakeQueryService, *extra: str) -> tuple[int, dict[str, Any], str]:
    sts, env, tmp = tenant
    bundle = tmp / "ca.pem"
    bundle.write_bytes(Path(sts.ca_file).read_bytes() + Path(svc.ca_file).read_bytes())
    r = cli("preflight", "--tenant", "contoso-tenant", "--client-id", sts.client_id, "--client-secret-env",
            "P_SECRET", "--authority-url", sts.authority(), "--graph-url", svc.url, "--log-analytics-url", svc.la_url,
            "--json", *extra, env={**env, "REQUESTS_CA_BUNDLE": str(bundle)})
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    methods = {(m, p.split("?")[0]) for m, p, _, _ in svc.log}
    assert all(m == "GET" or p.endswith(("/query", "/runHuntingQuery")) for m, p in methods), methods
    assert not any("auditLog/queries" in p for m, p in methods if m != "GET")  # never creates a search
    return r.returncode, doc, r.stderr


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Sources by name, after checking the document against the documented JSON schema."""
    import jsonschema

    jsonschema.validate(doc, json.loads((ROOT / "docs" / "preflight.schema.json").read_text()))
    return {r["name"]: r for r in doc["sources"]}


def _service(tenant: Any, **kw: Any) -> FakeQueryService:
    """The tenant's APIs: tokens must come from the fake authority, for the API's own root."""
    sts, _, tmp = tenant
    kw.setdefault("skus", E5)
    kw.setdefault("la", LA)
    return FakeQueryService(hunting=HUNT, workspaces=(WS,), folder=tmp / "svc", token_ok=sts.token_ok,
                            scope_of=sts.scope_of, **kw)


def test_full_access_every_source_available_with_retention_and_expiry(tenant: Any) -> None:
    tmp = tenant[2]
    (tmp / "svc").mkdir()
    assert cli("case", "init", tmp / "case", "--tenant", "contoso-tenant").returncode == 0
    with _service(tenant) as svc:
        code, doc, err = _preflight(tenant, svc, "--workspace", WS, "--case", str(tmp / "case"),
                                    "--since", "2023-06-01")
    assert code == 0, err
    rows = _by_name(doc)
    assert all(r["available"] and r["reason"] is None for r in rows.values()), [r for r in rows.values()
                                                                              if not r["available"]]
    assert doc["licences"]["entra_tier"] == "P2" and doc["licences"]["audit"] == "premium"
    assert [s["sku"] for s in doc["licences"]["skus"]] == ["SPE_E5"] and doc["permissions_to_add"] == []
    assert rows["signins_interactive"]["retention_days"] == 30 and rows["audit_log"]["retention_days"] == 365
    assert rows["signins_interactive"]["expires_on"].startswith("2023-07-01")  # --since + 30 days
    assert rows["signins_interactive"]["oldest_record"] == "2023-06-01T00:00:05Z"  # asked oldest first
    assert rows["directory_audits"]["oldest_record"] == "2023-06-01T00:00:05Z"
    assert any("%24orderby=createdDateTime+asc" in p or "$orderby=createdDateTime" in p for _, p, _, _ in svc.log)
    assert rows["risk_detections"]["retention_days"] == 90 and rows["CloudAppEvents"]["retention_days"] == 30
    assert rows["SigninLogs"]["oldest_record"].startswith("2023-06-01") and rows["SigninLogs"]["rows"] == 8
    assert rows["SigninLogs"]["retention_days"] is None and rows["SigninLogs"]["expires_on"] is None
    assert {r["backend"] for r in rows.values()} == {"graph", "log-analytics", "defender"}
    manifest = json.loads((tmp / "case" / "case.json").read_text())
    assert manifest["preflight"] == doc
    assert '"preflight"' in (tmp / "case" / "custody.log").read_text()
    assert cli("verify", tmp / "case").returncode == 0
    from ir_toolkit.report.casedata import preflight as preflight_frame

    frame = preflight_frame(Case.open(tmp / "case"))
    assert len(frame) == len(doc["sources"]) and frame["available"].all()
    from ir_toolkit.report.html import render_report

    html = render_report(Case.open(tmp / "case")).read_text(encoding="utf-8")
    method = html.split('id="method"', 1)[1].split("</section>", 1)[0]
    assert "Logging readiness" in method and "SigninLogs" in method and "CloudAppEvents" in method
    assert "2023-07-01" in method  # the interactive sign-ins' expiry date


def test_no_p1_p2_licence_is_named_with_microsofts_error_code(tenant: Any) -> None:
    tmp = tenant[2]
    (tmp / "svc").mkdir()
    with _service(tenant, skus=BUSINESS_BASIC, premium=False) as svc:
        code, doc, err = _preflight(tenant, svc)
    assert code == 0, err
    rows = _by_name(doc)
    for name in ("signins_interactive", "signins_noninteractive", "signins_serviceprincipal",
                 "signins_managedidentity"):
        assert not rows[name]["available"]
        assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in rows[name]["reason"]
        assert rows[name]["retention_days"] == 7
    assert rows["directory_audits"]["available"] and rows["directory_audits"]["retention_days"] == 7
    assert doc["licences"]["entra_tier"] == "Free" and doc["permissions_to_add"] == []  # a licence, not consent
    assert "SigninLogs" not in rows  # no workspace named: not checked


def test_missing_permission_lists_exactly_what_to_add(tenant: Any) -> None:
    tmp = tenant[2]
    (tmp / "svc").mkdir()
    with _service(tenant, skus=None, denied=("security/auditLog/queries", "oauth2PermissionGrants"),
                  hunting_allowed=False) as svc:
        code, doc, err = _preflight(tenant, svc, "--workspace", WS)
    assert code == 0, err
    rows = _by_name(doc)
    assert not rows["audit_log"]["available"] and rows["audit_log"]["reason"].startswith("missing permission")
    assert not rows["oauth2_permission_grants"]["available"] and rows["signins_interactive"]["available"]
    assert not rows["CloudAppEvents"]["available"] and rows["SigninLogs"]["available"]
    assert doc["permissions_to_add"] == sorted(["AuditLogsQuery.Read.All", "DelegatedPermissionGrant.Read.All",
                                                "ThreatHunting.Read.All", "Organization.Read.All"])
    assert doc["licences"]["entra_tier"] is None and "missing permission" in doc["licences"]["reason"]
    assert rows["signins_interactive"]["retention_basis"].startswith("assumed")


def test_no_workspace_access_and_unknown_workspace(tenant: Any) -> None:
    tmp = tenant[2]
    (tmp / "svc").mkdir()
    other = "99999999-0000-4000-8000-000000000000"
    with _service(tenant, denied_workspaces=(WS,)) as svc:
        code, doc, err = _preflight(tenant, svc, "--workspace", WS)
        code2, doc2, _ = _preflight(tenant, svc, "--workspace", other)
    assert code == code2 == 0, err
    la = [r for r in doc["sources"] if r["backend"] == "log-analytics"]
    assert la and all(not r["available"] and "no workspace access" in r["reason"] for r in la)
    assert "Azure role Log Analytics Reader on the workspace" in doc["permissions_to_add"]
    assert all("workspace not found" in r["reason"] for r in doc2["sources"] if r["backend"] == "log-analytics")
    assert _by_name(doc)["signins_interactive"]["available"]


def test_a_table_the_workspace_does_not_hold_is_named(tenant: Any) -> None:
    tmp = tenant[2]
    (tmp / "svc").mkdir()
    partial = {k: v for k, v in LA.items() if k != "MicrosoftGraphActivityLogs"}
    with _service(tenant, la=partial) as svc:
        code, doc, err = _preflight(tenant, svc, "--workspace", WS)
    assert code == 0, err
    row = _by_name(doc)["MicrosoftGraphActivityLogs"]
    assert not row["available"] and "not sent to this workspace" in row["reason"]


def test_wrong_secret_is_one_line_exit_2(tenant: Any) -> None:
    sts, env, tmp = tenant
    (tmp / "svc").mkdir()
    with _service(tenant) as svc:
        code, _, err = _preflight((sts, {**env, "P_SECRET": "wrong"}, tmp), svc)
    assert code == 2 and "invalid_client" in err and len(err.strip().splitlines()) == 1


# ----- the pure parts ----------------------------------------------------------------------------
def test_pure_licences_retention_expiry_and_reasons() -> None:
    lic = licences(E5)
    assert (lic["entra_tier"], lic["audit"]) == ("P2", "premium")
    assert licences(BUSINESS_BASIC)["entra_tier"] == "Free"
    assert retention("signins_interactive", {"entra_tier": "Free"})[0] == 7
    assert retention("audit_log", {"audit": "standard"})[0] == 180
    assert retention("applications", lic)[0] is None
    now = pd.Timestamp("2023-06-20", tz="UTC")
    got = expiry(30, pd.Timestamp("2023-06-01", tz="UTC"), None, now)
    assert got["expires_on"] == "2023-07-01T00:00:00Z" and got["days_left"] == 11.0
    assert expiry(7, None, None, now)["days_left"] == 0.0  # without a start: the oldest day goes today
    assert expiry(30, pd.Timestamp("2023-05-01", tz="UTC"), None, now)["days_left"] < 0  # already gone
    kind, reason = why_not(GraphError("x", status=403, code="Authentication_RequestFromNonPremiumTenantOrB2CTenant"))
    assert kind == "licence" and "P1/P2" in reason
    assert why_not(GraphError("x", status=403, code="Authorization_RequestDenied"))[0] == "permission"


def test_unknown_app_names_aadsts700016_and_the_fix(tenant: Any) -> None:
    sts, env, tmp = tenant
    (tmp / "svc").mkdir()
    with _service(tenant) as svc:
        r = cli("preflight", "--tenant", "contoso-tenant", "--client-id", "00000000-0000-0000-0000-000000000000",
                "--client-secret-env", "P_SECRET", "--authority-url", sts.authority(), "--graph-url", svc.url,
                env={**env, "REQUESTS_CA_BUNDLE": str(sts.ca_file)})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "AADSTS700016" in r.stderr and "check --client-id, --tenant and --cloud" in r.stderr
    assert svc.served() == 0


def test_device_code_signs_in_once_for_graph_and_the_workspace(tenant: Any) -> None:
    sts, env, tmp = tenant
    (tmp / "svc").mkdir()
    with _service(tenant, denied=("oauth2PermissionGrants",)) as svc:
        bundle = tmp / "ca.pem"
        bundle.write_bytes(Path(sts.ca_file).read_bytes() + Path(svc.ca_file).read_bytes())
        r = cli("preflight", "--tenant", "contoso-tenant", "--client-id", sts.client_id, "--device-code",
                "--workspace", WS, "--authority-url", sts.authority(), "--graph-url", svc.url,
                "--log-analytics-url", svc.la_url, "--json", env={**env, "REQUESTS_CA_BUNDLE": str(bundle)})
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("enter FAKE-CODE") == 1  # one prompt: the workspace token comes from the same sign-in
    assert "refresh_token" in sts.grants
    rows = _by_name(json.loads(r.stdout))
    assert rows["SigninLogs"]["available"] and rows["signins_interactive"]["available"]
    assert "directory role of the signed-in responder" in rows["oauth2_permission_grants"]["reason"]


def test_device_code_on_an_app_without_public_client_flows_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "sts").mkdir()
    with FakeAuthority(tmp_path / "sts", public_client=False) as sts:
        r = cli("preflight", "--tenant", "contoso-tenant", "--client-id", sts.client_id, "--device-code",
                "--authority-url", sts.authority(), "--graph-url", "https://127.0.0.1:9",
                env={"REQUESTS_CA_BUNDLE": str(sts.ca_file), "XDG_RUNTIME_DIR": str(tmp_path / "runtime")})
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]  # after the device-code prompt: one line
    assert "AADSTS7000218" in last and "allow public client flows" in last and "Traceback" not in r.stderr
