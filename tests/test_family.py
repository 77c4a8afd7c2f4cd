"""The token-abuse family: actor-token detections on hand-built events, member status rules, scope.json.

Positive and negative cases of the actor-token detections (directory writes logged with a service's
display name beside a person's UPN; Azure AD Graph requests with tokens no sign-in issued), the
ruled-in / ruled-out / not-judged rules of ir_toolkit.analysis.family on evidence profiles, and the
family and members that scope.json carries. The directory audit importer keeps the initiating user's
display name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect, prepare, run_pack
from ir_toolkit.analysis.family import family_sentence, member_status, members
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.detect_events import at, audit, frame, signin, tenant_background

SERVICE = "Office 365 Exchange Online"
ADMIN = "user0@contoso.com"


def write(operation: str, display: str | None = SERVICE, user: str = ADMIN, ip: str = "203.0.113.77") -> dict:
    """A directory audit write whose initiating user carries ``display`` as display name."""
    return {**audit(at(5, 3), operation, user, ip, target="KeepSafe Backup", source="directory_audit"),
            "user_display_name": display}


def graph_request(token: str | None, uri: str = "https://graph.windows.net/contoso.com/users?api-version=1.6",
                  when: pd.Timestamp | None = None) -> dict:
    return {"time": when or at(6, 2), "source": "graph_activity", "operation": "Graph request", "result": "success",
            "user_id": "0b5c9a1e-0000-4000-8000-000000000001", "app_id": "00000002-0000-0ff1-ce00-000000000000",
            "ip": "203.0.113.78", "token_id": token, "request_uri": uri, "request_method": "GET",
            "scopes": "Directory.Read.All", "record_id": f"g-{token}-{uri.split('/')[2]}", "raw": "{}"}


def findings_of(case_dir: Path, *rows: dict) -> pd.DataFrame:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), *rows))
    return run_pack(prepare(case))


def test_actor_token_writes_are_found_and_the_legitimate_patterns_are_not(case_dir: Path) -> None:
    found = findings_of(
        case_dir,
        write("Add service principal credentials"), write("Add member to role"), write("Update user"),
        write("Add group"), write("Add member to group"), write("Set directory feature on tenant"),  # EXO's own
        write("Add service principal credentials", display="Adele Vance"),  # a person's own name
        write("Add member to role", display=None),  # display name not logged
        write("Add service principal credentials", user="Office 365 Exchange Online"),  # an app, no UPN
        write("Add service principal credentials", display="skype for business online ", user="user2@contoso.com"))
    hits = found[found["detection"] == "actor-token-directory-write"]
    got = sorted(zip(hits["user"], hits["explanation"].str.extract(r"'([^']+)' write")[0], hits["verdict"],
                     strict=True))
    assert got == [(ADMIN, "Add member to role", "confirmed"),
                   (ADMIN, "Add service principal credentials", "confirmed"), (ADMIN, "Update user", "likely"),
                   ("user2@contoso.com", "Add service principal credentials", "confirmed")]
    assert set(hits["member"]) == {"actor-token"}
    assert all("reads with the same token leave no record" in e for e in hits["explanation"])
    assert (found[found["detection"] == "orphan-token"]["member"] == "forged-oauth-token").all()


def test_exclusions_are_parameters(case_dir: Path) -> None:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), write("Add group"), write("Add member to role")))
    found = run_pack(prepare(case, params={"actor_token_excluded_operations": "set directory feature on tenant",
                                           "actor_token_services": "dataverse"}))
    assert found[found["detection"] == "actor-token-directory-write"].empty  # Exchange is no longer a service here
    found = run_pack(prepare(case, params={"actor_token_excluded_operations": "%role%"}))
    hits = found[found["detection"] == "actor-token-directory-write"]
    assert [e.split("'")[1] for e in hits["explanation"]] == ["Add group"]


def test_aad_graph_requests_without_issued_tokens(case_dir: Path) -> None:
    issued = signin(at(6, 1.5), "user1@contoso.com", "10.0.0.2", token="tok-issued")
    found = findings_of(case_dir, issued, graph_request("tok-issued"), graph_request("tok-orphan"),
                        graph_request(None, when=at(6, 3)),
                        graph_request("tok-orphan-2", uri="https://graph.microsoft.com/v1.0/me/messages"),
                        graph_request("tok-before", when=at(-3, 2)))
    hits = found[found["detection"] == "actor-token-aad-graph"]
    assert len(hits) == 1  # one caller (user, address, app)
    row = hits.iloc[0]
    assert row["verdict"] == "likely" and row["events"] == 3 and row["member"] == "actor-token"
    assert "1 issued inside sign-in coverage" in row["explanation"]
    ids = set(row["evidence"])
    assert {"g-tok-orphan-graph.windows.net", "g-None-graph.windows.net", "g-tok-before-graph.windows.net"} == ids


def test_aad_graph_outside_coverage_is_unverifiable(case_dir: Path) -> None:
    found = findings_of(case_dir, graph_request("tok-before", when=at(-3, 2)))
    hits = found[found["detection"] == "actor-token-aad-graph"]
    assert list(hits["verdict"]) == ["unverifiable"]


# ----- member status rules -------------------------------------------------------------------------------
T1, T2 = pd.Timestamp("2023-06-01T00:00:00Z"), pd.Timestamp("2023-06-10T00:00:00Z")


def profile(*held: str, holes: dict[str, int] | None = None) -> dict[str, Any]:
    return {"sources": {s: {"held": True, "first": T1, "last": T2,
                            "holes": [{"start": T1, "end": T1}] * (holes or {}).get(s, 0)} for s in held}}


def result(member: str, verdict: str, detection: str = "d") -> dict[str, Any]:
    return {"member": member, "verdict": verdict, "detection": detection, "explanation": f"{verdict} thing.",
            "mailbox": "a@contoso.com", "user": None, "ip": "203.0.113.1", "app_id": None, "token_id": None}


NONE = pd.DataFrame(columns=["member", "verdict", "detection", "explanation", "mailbox", "user", "ip", "app_id",
                             "token_id"])
EVERYTHING = ("mail_access", "signin_interactive", "signin_noninteractive", "signin_serviceprincipal",
              "directory_audit", "windows_event")


@pytest.mark.parametrize(("member", "findings", "prof", "coverage", "status", "words"), [
    ("forged-oauth-token", [result("forged-oauth-token", "confirmed")], profile(), None, "ruled_in", "1 confirmed"),
    ("forged-oauth-token", [], profile(*EVERYTHING), {"judged": True}, "ruled_out", "held without holes from"),
    ("forged-oauth-token", [], profile("mail_access", "signin_interactive"), {"judged": False}, "not_judged",
     "no signin_noninteractive events"),
    ("forged-oauth-token", [], profile(*EVERYTHING, holes={"signin_interactive": 2}), {"judged": True},
     "not_judged", "have holes"),
    ("forged-oauth-token", [result("forged-oauth-token", "unverifiable")], profile(*EVERYTHING), {"judged": True},
     "not_judged", "1 unverifiable"),
    ("forged-oauth-token", [result("app-abuse", "confirmed")], profile(*EVERYTHING), {"judged": True},
     "ruled_out", "None of its detections"),
    ("actor-token", [], profile(*EVERYTHING), None, "not_judged", "leave no record anywhere"),
    ("actor-token", [result("actor-token", "likely")], profile(), None, "ruled_in", "1 likely"),
    ("golden-saml", [], profile("signin_interactive", "directory_audit"), None, "not_judged",
     "no windows_event events were provided"),
    ("golden-saml", [], profile(*EVERYTHING), None, "ruled_out", "windows_event; signin_interactive held"),
    ("silver-saml", [], profile(*EVERYTHING), None, "not_judged", "SaaS application"),
    ("app-abuse", [result("app-abuse", "possible")], profile(*EVERYTHING), None, "not_judged", "1 possible"),
])
def test_member_status(member: str, findings: list, prof: dict, coverage: dict | None, status: str,
                       words: str) -> None:
    got = member_status(members()[member], pd.DataFrame(findings) if findings else NONE, prof, coverage)
    assert got["status"] == status and words in got["reason"], got["reason"]
    assert got["member"] == member and got["evidence_needed"]
    assert got["missing"] == [s for n in members()[member]["needs"] for s in n["sources"] if s not in prof["sources"]]


def test_a_member_no_detection_looks_for_is_not_judged() -> None:
    got = member_status(members()["golden-saml"], NONE, profile(*EVERYTHING), None, detections=[])
    assert got["status"] == "not_judged" and "the detection pack has no detection for it" in got["reason"]
    got = member_status(members()["golden-saml"], NONE, profile(*EVERYTHING), None, detections=["adfs-absent"])
    assert got["status"] == "ruled_out"


def test_every_member_declares_its_evidence() -> None:
    assert list(members()) == ["forged-oauth-token", "app-abuse", "actor-token", "golden-saml", "silver-saml"]
    for name, entry in members().items():
        assert entry["NAME"] == name and entry["DESCRIPTION"] and entry["needs"]
        assert all(n["sources"] and n["why"] and n["absent"] for n in entry["needs"])
        assert entry["can_rule_out"] or entry["blind_spot"]
    assert {n for e in members().values() for need in e["needs"] for n in need["sources"]} >= {"windows_event"}


def test_family_sentence() -> None:
    fam = [{"member": "actor-token", "status": "ruled_in"}, {"member": "golden-saml", "status": "not_judged"},
           {"member": "app-abuse", "status": "ruled_out"}]
    assert family_sentence(fam) == ("Token-abuse family: ruled in: actor-token; ruled out: app-abuse; could not be "
                                    "judged with the evidence held: golden-saml.")


# ----- scope.json ----------------------------------------------------------------------------------------
def test_scope_names_the_members_behind_each_conclusion(case_dir: Path) -> None:
    from tests.test_scope import build

    case, truth = build(case_dir)
    case.write_events(frame(write("Add member to role", ip="203.0.113.77")))
    detect(case)
    scope(case)
    doc = json.loads((case.root / "scope.json").read_text(encoding="utf-8"))
    status = {f["member"]: f["status"] for f in doc["family"]}
    assert list(status) == list(members())
    assert status | {"app-abuse": "-"} == {"forged-oauth-token": "ruled_in", "app-abuse": "-",
                                           "actor-token": "ruled_in", "golden-saml": "not_judged",
                                           "silver-saml": "not_judged"}  # no AD FS events; SaaS logs never held
    actor = next(f for f in doc["family"] if f["member"] == "actor-token")
    assert actor["entities"]["users"] == [ADMIN] and actor["entities"]["ips"] == ["203.0.113.77"]
    assert "leave no record" in actor["cannot_show"]
    assert {m["upn"] for m in doc["compromised_mailboxes"]} == truth["mailboxes"]  # the write adds no mailbox
    assert all(m["members"] == ["forged-oauth-token"] for m in doc["compromised_mailboxes"])
    ips = {i["ip"]: i["members"] for i in doc["actor_ips"]}
    assert ips["203.0.113.77"] == ["actor-token"] and ips["203.0.113.9"] == ["forged-oauth-token"]
    assert all(a["members"] for a in doc["actor_apps"])


def test_directory_audit_import_keeps_the_initiators_display_name(tmp_path: Path) -> None:
    record = {"id": "Directory_1", "category": "ApplicationManagement", "result": "success",
              "activityDisplayName": "Add service principal credentials", "activityDateTime": "2025-07-01T03:04:05Z",
              "loggedByService": "Core Directory", "operationType": "Update",
              "initiatedBy": {"user": {"id": "u1", "displayName": SERVICE, "userPrincipalName": "Admin@Contoso.com",
                                       "ipAddress": "203.0.113.77"}, "app": None},
              "targetResources": [{"id": "sp1", "displayName": "KeepSafe", "type": "ServicePrincipal"}]}
    (tmp_path / "audits.json").write_text(json.dumps({"value": [record]}), encoding="utf-8")
    case = Case.init(tmp_path / "case", tenant="contoso.com")
    case.import_files([tmp_path / "audits.json"])
    events = case.read_events()
    assert list(events["user_display_name"]) == [SERVICE] and list(events["user"]) == ["admin@contoso.com"]
    found = detect(case, write=False)
    assert list(found[found["detection"] == "actor-token-directory-write"]["verdict"]) == ["confirmed"]


def test_report_first_page_says_which_members_are_ruled_in_out_or_not_judged(tmp_path: Path) -> None:
    import html
    import re

    from ir_toolkit.report.html import render_report
    from tests import reportcase as rc

    case = rc.build(tmp_path / "case")
    doc = json.loads((case.root / "scope.json").read_text(encoding="utf-8"))
    hostile = "<script>window.pwned=5</script>"
    doc["family"] = [
        {"member": "forged-oauth-token", "status": "ruled_in", "reason": "1 confirmed finding of orphan-token."},
        {"member": "app-abuse", "status": "ruled_out", "reason": f"None found {hostile}."},
        {"member": "golden-saml", "status": "not_judged", "reason": "no windows_event events were provided."}]
    (case.root / "scope.json").write_text(json.dumps(doc), encoding="utf-8")
    page = render_report(case).read_text(encoding="utf-8")
    assert hostile not in page and html.escape(hostile) in page
    part = re.search(r'<dd id="answer-family">(.*?)</dd>', page, re.S)
    assert part is not None
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", part.group(1))).split())
    assert text.startswith("Token-abuse family: ruled in: forged-oauth-token; ruled out: app-abuse; could not be "
                           "judged with the evidence held: golden-saml.")
    detail = re.search(r'<ul id="holdings-family">(.*?)</ul>', page, re.S)  # the reasons, in the evidence section
    assert detail is not None and 'class="family-ruled_in"' in detail.group(1)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", detail.group(1))).split())
    assert "golden-saml : not judged . no windows_event events were provided." in text
    del doc["family"]  # a scope written before the family existed: no family line, nothing breaks
    (case.root / "scope.json").write_text(json.dumps(doc), encoding="utf-8")
    page = render_report(case).read_text(encoding="utf-8")
    assert 'id="answer-family"' not in page and 'id="holdings-family"' not in page
