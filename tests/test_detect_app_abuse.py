"""app-abuse: a credential change and a mail grant to an application, then its reads from never-seen addresses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.detect_events import at, audit, frame, mail, signin, tenant_background

APP = "5a1f0c2e-7d3b-4e8a-9c61-2b4d8e0f7a13"
DECOY = "9b2e4d61-0c7a-4f3e-8d15-6a0c3e9b2f48"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
FULL_ACCESS = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
EWS = "Client=WebServices;ExchangeWebServices"
PROXY_ADMIN, PROXY_APP = "203.0.113.50", "203.0.113.60"


def change(time: pd.Timestamp, operation: str, user: str, ip: str | None, app: str = APP, name: str = "Legacy Test",
           props: dict[str, str] | None = None, source: str = "directory_audit") -> dict[str, Any]:
    """A directory audit change on an application (its AppId in additionalDetails, as Entra logs it)."""
    row = audit(time, operation, user, ip or "", target=name, source=source)
    row["ip"] = ip
    row["raw"] = json.dumps({"activityDisplayName": operation, "additionalDetails": [{"key": "AppId", "value": app}],
                             "targetResources": [{"displayName": name, "modifiedProperties": [
                                 {"displayName": k, "newValue": v} for k, v in (props or {}).items()]}]})
    return row


def grant(time: pd.Timestamp, user: str, ip: str | None, app: str = APP) -> dict[str, Any]:
    """Add app role assignment: full_access_as_app on Exchange Online to ``app``."""
    row = change(time, "Add app role assignment to service principal", user, ip, app=EXCHANGE,
                 name="Office 365 Exchange Online",
                 props={"AppRole.Id": FULL_ACCESS, "AppRole.Value": "full_access_as_app",
                        "ServicePrincipal.AppId": app})
    return row


def app_reads(day: float, ip: str, app: str = APP, mailboxes: range = range(3)) -> list[dict[str, Any]]:
    """An app-only sign-in of ``app`` from ``ip`` and EWS reads of several mailboxes with its token."""
    sp = signin(at(day, 0), app, ip, app=app, source="signin_serviceprincipal", ua="")
    return [sp] + [mail(at(day, 0.1 + m / 100), f"user{m}@contoso.com", ip, app=app, ua=EWS, user=app,
                        token=sp["token_id"], issued_at=sp["time"], messages=(f"<x{day}-{m}@c>",))
                   for m in mailboxes]


def intrusion(directory: bool = True, change_ip: str | None = PROXY_ADMIN) -> list[dict[str, Any]]:
    """user3 (sprayed) signs in from a proxy, adds a secret and grants full_access_as_app, the app reads mail."""
    rows = [signin(at(9, 0.9), "user3@contoso.com", PROXY_ADMIN)]
    if directory:
        rows += [change(at(9, 1), "Add service principal credentials", "user3@contoso.com", change_ip),
                 grant(at(9, 1.1), "user3@contoso.com", change_ip)]
    return rows + app_reads(9.1, PROXY_APP) + app_reads(10.1, PROXY_APP, mailboxes=range(1, 4))


def decoy() -> list[dict[str, Any]]:
    """A journaling app reading nightly from its own server; the admin rotates its secret from the office."""
    rows: list[dict[str, Any]] = []
    for d in range(12):
        rows += app_reads(d + 0.05, "192.0.2.50", app=DECOY, mailboxes=range(2))
    rows.append(change(at(8, 15), "Update application – Certificates and secrets management", "user0@contoso.com",
                       "10.0.0.1", app=DECOY, name="Journal Export"))
    return rows


def run(case_dir: Path, rows: list[dict[str, Any]], **params: object) -> tuple[Case, pd.DataFrame]:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), *rows))
    found = detect(case, params=params or None)
    return case, found[found["detection"] == "app-abuse"]


def test_chain_of_credential_grant_and_new_address_reads_is_confirmed(case_dir: Path) -> None:
    rows = intrusion()
    case, found = run(case_dir, rows + decoy())
    assert len(found) == 1, found[["verdict", "app_id", "explanation"]]
    f = found.iloc[0]
    assert f["verdict"] == "confirmed" and f["app_id"] == APP and f["severity"] == "high"
    assert f["first"] == at(9, 0.9) and abs(f["last"] - at(10.1, 0.1 + 3 / 100)) < pd.Timedelta(seconds=1)
    assert {r["record_id"] for r in rows} == set(f["evidence"]), "change, grant, sign-ins and reads are one chain"
    assert "1 credential change(s) and 1 mail grant(s)" in f["explanation"]
    assert "6 read(s) of 4 mailbox(es)" in f["explanation"] and PROXY_ADMIN in f["explanation"]
    doc = scope(case)
    assert {m["upn"] for m in doc["compromised_mailboxes"]} == {f"user{m}@contoso.com" for m in range(4)}
    assert {m["confidence"] for m in doc["compromised_mailboxes"]} == {"confirmed"}
    assert {i["ip"] for i in doc["actor_ips"]} == {PROXY_ADMIN, PROXY_APP}
    assert not any("shared address" in r for i in doc["actor_ips"] for r in i["reasons"]), "only the actor used them"
    assert APP in {a["app_id"] for a in doc["actor_apps"]} and DECOY not in {a["app_id"] for a in doc["actor_apps"]}
    reasons = " ".join(doc["compromised_mailboxes"][0]["reasons"])
    assert "app-abuse finding" in reasons and "abused application" in reasons


def test_rotated_credential_of_an_app_reading_from_its_usual_address_is_no_finding(case_dir: Path) -> None:
    _, found = run(case_dir, decoy())
    assert found.empty


def test_changes_from_the_office_are_only_possible(case_dir: Path) -> None:
    _, found = run(case_dir, intrusion(change_ip="10.0.0.4"))
    assert list(found["verdict"]) == ["possible"]
    assert "onboarding" in found.iloc[0]["explanation"]


def test_credential_change_without_a_grant_is_likely(case_dir: Path) -> None:
    rows = [r for r in intrusion() if r["operation"] != "Add app role assignment to service principal"]
    _, found = run(case_dir, rows)
    assert list(found["verdict"]) == ["likely"]
    assert "only part of the chain" in found.iloc[0]["explanation"]


def test_change_records_without_an_address_are_likely(case_dir: Path) -> None:
    _, found = run(case_dir, intrusion(change_ip=None))
    assert list(found["verdict"]) == ["likely"] and "name no address" in found.iloc[0]["explanation"]


def test_reads_long_after_the_change_are_not_chained(case_dir: Path) -> None:
    late = [r for r in intrusion() if r["source"] == "directory_audit"]
    for r in late:
        r["time"] = at(-40)
    _, found = run(case_dir, [r for r in intrusion() if r["source"] != "directory_audit"] + late,
                   app_abuse_window_days=30)
    assert found.empty
    _, found = run(case_dir, [], app_abuse_window_days=60)   # the same case, a window that reaches the reads
    assert list(found["verdict"]) == ["confirmed"]


def test_without_directory_audits_a_new_app_reading_app_only_is_likely_not_confirmed(case_dir: Path) -> None:
    case, found = run(case_dir, intrusion(directory=False) + decoy())
    assert list(found["verdict"]) == ["likely"] and found.iloc[0]["app_id"] == APP
    assert "no directory audit log covers" in found.iloc[0]["explanation"]
    doc = scope(case)
    assert {m["upn"] for m in doc["compromised_mailboxes"]} == {f"user{m}@contoso.com" for m in range(4)}
    assert {m["confidence"] for m in doc["compromised_mailboxes"]} == {"likely"}


def test_mail_grant_named_only_by_scope_and_target_name_is_tied(case_dir: Path) -> None:
    """A delegated consent names the app by display name and the Mail.Read scope; the sign-ins name the app."""
    rows = intrusion()
    rows = [r for r in rows if r["operation"] != "Add app role assignment to service principal"]
    consent = change(at(9, 1.1), "Consent to application", "user3@contoso.com", PROXY_ADMIN, app="-",
                     name="Legacy Test", props={"ConsentAction.Permissions": "Scope: Mail.Read offline_access"})
    rows = [{**r, "app_name": "Legacy Test"} if r["source"] == "signin_serviceprincipal" else r for r in rows]
    _, found = run(case_dir, rows + [consent])
    assert list(found["verdict"]) == ["confirmed"] and consent["record_id"] in set(found.iloc[0]["evidence"])


def test_grant_without_a_mail_permission_is_not_a_grant(case_dir: Path) -> None:
    rows = [r for r in intrusion() if r["operation"] != "Add app role assignment to service principal"]
    rows.append(change(at(9, 1.1), "Add app role assignment to service principal", "user3@contoso.com", PROXY_ADMIN,
                       props={"AppRole.Value": "User.Read.All", "ServicePrincipal.AppId": APP}))
    _, found = run(case_dir, rows)
    assert list(found["verdict"]) == ["likely"] and "0 mail grant(s)" in found.iloc[0]["explanation"]


def test_unified_audit_log_spelling_with_a_trailing_dot_counts(case_dir: Path) -> None:
    rows = [r for r in intrusion() if r["source"] != "directory_audit"]
    rows += [change(at(9, 1), "Add service principal credentials.", "user3@contoso.com", PROXY_ADMIN,
                    source="audit_other"),
             change(at(9, 1.1), "Update application.", "user3@contoso.com", PROXY_ADMIN, source="audit_other",
                    props={"RequiredResourceAccess": f"ResourceAppId: {EXCHANGE}, EntitlementId: {FULL_ACCESS}"})]
    _, found = run(case_dir, rows)
    assert list(found["verdict"]) == ["confirmed"]


def test_graph_message_requests_are_reads_of_the_mailbox_they_name(case_dir: Path) -> None:
    rows = [r for r in intrusion() if r["source"] != "mail_access"]
    graph = {"time": at(9.1, 0.2), "source": "graph_activity", "operation": "Graph request", "result": "success",
             "app_id": APP, "ip": PROXY_APP, "request_method": "GET", "response_status": 200, "roles": "Mail.Read",
             "request_uri": "https://graph.microsoft.com/v1.0/users/user1@contoso.com/mailFolders/inbox/messages",
             "record_id": "graph-0001", "raw": "{}"}
    refused = {**graph, "response_status": 403, "record_id": "graph-0002"}
    _, found = run(case_dir, [*rows, graph, refused])
    assert list(found["verdict"]) == ["confirmed"]
    f = found.iloc[0]
    assert "graph-0001" in set(f["evidence"]) and "graph-0002" not in set(f["evidence"])
    assert f["mailbox"] == "user1@contoso.com" and "1 read(s) of 1 mailbox(es)" in f["explanation"]


def test_an_old_rotation_does_not_hide_a_later_chain(case_dir: Path) -> None:
    """A vouched rotation two months earlier is not the chain's start: the actor's change is, and only it counts."""
    old = change(at(-60), "Add service principal credentials", "user0@contoso.com", "10.0.0.1")
    early = app_reads(-61, "192.0.2.70") + app_reads(-59, "192.0.2.70")   # its usual address, before and after
    rows = intrusion()
    _, found = run(case_dir, [old, *early, *rows])
    assert list(found["verdict"]) == ["confirmed"]
    evidence = set(found.iloc[0]["evidence"])
    assert old["record_id"] not in evidence and not evidence & {r["record_id"] for r in early}
    assert {r["record_id"] for r in rows} == evidence


NIMBUS = "4c7e2a90-1b3d-4f6e-a8c2-7d9e0b1f3a55"


def consent_and_delegated_reads(read_ip: str | None = None) -> list[dict[str, Any]]:
    """user0 consents a mail client to Mail.Read from home, then three users read their own mail with it, each from
    the address its mailbox is read from every day (``read_ip``: all from that address instead)."""
    rows = [change(at(8, 14), "Consent to application", "user0@contoso.com", "10.0.0.1", app=NIMBUS,
                   name="Nimbus Mail", props={"ConsentAction.Permissions": "Scope: Mail.Read, offline_access"})]
    for d in (8, 9, 10, 11):
        rows += [mail(at(d, 15 + u / 10), f"user{u}@contoso.com", read_ip or f"10.0.0.{u + 1}", app=NIMBUS,
                      messages=(f"<n{d}-{u}@c>",)) for u in range(3)]
    return rows


def without_signins(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if not str(r["source"]).startswith("signin_")]


def test_without_signins_a_consented_mail_client_read_from_the_users_own_addresses_is_no_finding(
        case_dir: Path) -> None:
    """No user sign-ins held: the mailboxes' own access history stands in for them (as access_judged does), so a
    user's daily address is not 'never used before' and the consent from it is not unvouched."""
    case = Case.open(case_dir)
    case.write_events(frame(*without_signins(tenant_background()), *consent_and_delegated_reads()))
    found = detect(case)
    assert found[found["detection"] == "app-abuse"].empty
    doc = scope(case)
    assert not doc["compromised_mailboxes"] and not doc["actor_ips"]


def test_without_signins_a_consented_app_reading_from_a_stranger_address_is_still_likely(case_dir: Path) -> None:
    case = Case.open(case_dir)
    rows = consent_and_delegated_reads(read_ip="203.0.113.77")
    rows[0]["ip"] = "203.0.113.50"  # the consent, too, from an address no mailbox is read from
    case.write_events(frame(*without_signins(tenant_background()), *rows))
    found = detect(case)
    chain = found[found["detection"] == "app-abuse"]
    assert list(chain["verdict"]) == ["likely"] and chain.iloc[0]["app_id"] == NIMBUS
    assert "unvouched" in chain.iloc[0]["explanation"]


def test_after_the_sign_ins_end_a_consented_mail_client_read_from_the_users_homes_is_no_finding(
        case_dir: Path) -> None:
    """Session 10: sign-ins of one week only (seed 41): after it, the users read from new home addresses no sign-in
    held shows; the mailboxes' own history stands in for the sign-ins outside their coverage, as without any.
    (access_judged still judges these reads' addresses by the sign-ins alone while both kinds are held.)"""
    def moved(r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "ip": r["ip"].replace("10.0.0.", "10.0.1.")} if r["time"] >= at(6) else r
    rows = [moved(r) for r in tenant_background(days=12)
            if not (str(r["source"]).startswith("signin_") and r["time"] >= at(6))]
    reads = [moved(r) for r in consent_and_delegated_reads()]
    case = Case.open(case_dir)
    case.write_events(frame(*rows, *reads))
    found = detect(case)
    assert found[found["detection"] == "app-abuse"].empty
