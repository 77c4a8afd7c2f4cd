"""orphan-token: resource access whose token no sign-in issued, judged inside sign-in coverage only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ir_toolkit.analysis.detect import detect
from ir_toolkit.case import Case
from tests.detect_events import at, backup_nights, frame, mail, signed_in_access, signin, tenant_background, token_event

REST = "Client=REST;Client=RESTSystem;;"


def run(case_dir: Path, rows: list[dict], **params: object) -> pd.DataFrame:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), *rows))
    return detect(case, params=params or None)


def orphan(findings: pd.DataFrame) -> pd.DataFrame:
    return findings[findings["detection"] == "orphan-token"]


def test_forged_token_inside_coverage_is_confirmed(case_dir: Path) -> None:
    forged = [mail(at(5, 2 + i / 10), "user1@contoso.com", "203.0.113.9", app="app-x", token="forged-1",
                   session="ses-forged", ua=REST, messages=(f"<f{i}@c>",)) for i in range(3)]
    found = orphan(run(case_dir, forged))
    assert len(found) == 1
    f = found.iloc[0]
    assert f["verdict"] == "confirmed" and f["severity"] == "high"
    assert f["mailbox"] == "user1@contoso.com" and f["token_id"] == "forged-1" and f["session_id"] == "ses-forged"
    assert f["events"] == 3 and sorted(f["evidence"]) == sorted(r["record_id"] for r in forged)
    assert "3 access(es) to user1@contoso.com" in f["explanation"] and "no sign-in" in f["explanation"]
    assert f["first"] == at(5, 2) and "T1606.001" in list(f["techniques"])


def test_issued_tokens_are_not_orphans(case_dir: Path) -> None:
    # The background is 48 accesses whose tokens sign-ins issued; a non-interactive refresh issues one more.
    s = signin(at(6, 1), "user2@contoso.com", "10.0.0.3", source="signin_noninteractive")
    rows = [s, mail(at(6, 1.2), "user2@contoso.com", "10.0.0.3", token=s["token_id"], session=s["session_id"])]
    assert orphan(run(case_dir, rows)).empty


def test_orphan_before_coverage_is_unverifiable_not_forged(case_dir: Path) -> None:
    early = mail(at(-3, 10), "user0@contoso.com", "10.0.0.1", token="old-token", session="old-session")
    found = orphan(run(case_dir, [early]))
    assert list(found["verdict"]) == ["unverifiable"]
    assert "unverifiable" in found.iloc[0]["explanation"]


def test_token_issued_before_coverage_is_unverifiable(case_dir: Path) -> None:
    # Used inside coverage, but issued (IssuedAtTime) before the first sign-in the case holds.
    row = mail(at(0, 15), "user3@contoso.com", "10.0.0.4", token="pre-token", session="pre-session",
               issued_at=at(-1, 23))
    assert list(orphan(run(case_dir, [row]))["verdict"]) == ["unverifiable"]


def test_known_session_with_unknown_token_is_only_possible(case_dir: Path) -> None:
    s = signin(at(4, 9), "user1@contoso.com", "10.0.0.2")
    row = mail(at(4, 10), "user1@contoso.com", "10.0.0.2", token="refreshed-unlogged", session=s["session_id"])
    found = orphan(run(case_dir, [s, row]))
    assert list(found["verdict"]) == ["possible"]
    assert "session is known" in found.iloc[0]["explanation"]


def test_records_without_ids_use_the_weaker_match(case_dir: Path) -> None:
    s = signin(at(7, 9), "user2@contoso.com", "10.0.0.3", app="app-outlook")
    matched = mail(at(7, 9.5), "user2@contoso.com", "10.0.0.3", app="app-outlook")  # no AppAccessContext
    unmatched = mail(at(7, 11), "user2@contoso.com", "10.0.0.3", app="app-outlook", ua=REST)  # > 90 min later
    quiet = mail(at(7, 12), "user2@contoso.com", "10.0.0.3", app="app-outlook")  # unmatched but no other signal
    found = orphan(run(case_dir, [s, matched, unmatched, quiet]))
    assert list(found["verdict"]) == ["possible"]  # never proof alone
    assert list(found.iloc[0]["evidence"]) == [unmatched["record_id"]]


def test_app_only_access_explained_by_service_principal_signins(case_dir: Path) -> None:
    assert orphan(run(case_dir, backup_nights(range(2, 9)))).empty


def test_without_signin_logs_nothing_is_confirmed(case_dir: Path) -> None:
    case = Case.open(case_dir)
    only_mail = [r for r in tenant_background() if r["source"] == "mail_access"]
    case.write_events(frame(*only_mail, mail(at(5, 2), "user1@contoso.com", "203.0.113.9", token="t")))
    found = orphan(detect(case))
    assert not found.empty and set(found["verdict"]) == {"unverifiable"}


def test_without_noninteractive_signins_orphans_are_unverifiable(case_dir: Path) -> None:
    case = Case.open(case_dir)
    forged = mail(at(5, 2), "user1@contoso.com", "203.0.113.9", token="forged-x", ua=REST)
    case.write_events(frame(*tenant_background(noninteractive=False), forged))
    found = orphan(detect(case))
    assert list(found["verdict"]) == ["unverifiable"]
    doc = json.loads((case.root / "findings.json").read_text(encoding="utf-8"))
    assert doc["signin_coverage"]["complete"] is False
    found = orphan(detect(case, params={"require_noninteractive": "false"}))
    assert list(found["verdict"]) == ["confirmed"]


def test_app_only_access_is_judged_against_service_principal_signins(case_dir: Path) -> None:
    # App-only tokens (the acting user is an application) are issued by service-principal sign-ins.
    app_only = mail(at(6, 3), "user2@contoso.com", "192.0.2.50", app="app-backup", user="app-backup",
                    token="sp-token-unlogged")
    found = orphan(run(case_dir, [app_only]))
    assert list(found["verdict"]) == ["unverifiable"]  # the case has no service-principal sign-ins


def test_app_only_orphan_inside_service_principal_coverage_is_confirmed(case_dir: Path) -> None:
    sps = [signin(at(d, 3), "backupsvc", "192.0.2.50", app="app-backup", source="signin_serviceprincipal")
           for d in range(10)]
    app_only = mail(at(6, 5), "user2@contoso.com", "192.0.2.77", app="app-backup", user="app-backup",
                    token="sp-token-forged")
    found = orphan(run(case_dir, [*sps, app_only]))
    assert list(found["verdict"]) == ["confirmed"]


def test_coverage_parameters_override_the_data(case_dir: Path) -> None:
    row = mail(at(5, 2), "user1@contoso.com", "203.0.113.9", token="forged-2")
    found = orphan(run(case_dir, [row], coverage_start="2023-06-08T00:00:00Z"))
    assert list(found["verdict"]) == ["unverifiable"]


def test_signed_in_background_has_no_orphans(case_dir: Path) -> None:
    rows = signed_in_access(at(8, 10), "user0@contoso.com", "10.0.0.1")
    assert orphan(run(case_dir, rows)).empty


# ----- forged-token: token verdicts from token scans (source 'token') ----------------------------------------
def test_forged_token_verdict_confirms_the_accesses_that_carried_it(case_dir: Path) -> None:
    used = [mail(at(5, 2), "user1@contoso.com", "203.0.113.9", token="uti-1", session="sid-1"),
            mail(at(5, 3), "user1@contoso.com", "203.0.113.9", token="uti-2", session="sid-1")]  # same session
    found = run(case_dir, [token_event("uti-1", "sid-1", "forged"), *used])
    forged = found[found["detection"] == "forged-token"]
    assert len(forged) == 1 and forged.iloc[0]["verdict"] == "confirmed" and forged.iloc[0]["severity"] == "critical"
    assert sorted(forged.iloc[0]["evidence"]) == sorted(["token:uti-1", *(r["record_id"] for r in used)])
    assert "2 access(es) to user1@contoso.com" in forged.iloc[0]["explanation"]


def test_valid_or_unverifiable_tokens_are_not_findings(case_dir: Path) -> None:
    found = run(case_dir, [token_event("uti-3", "sid-3", "valid"), token_event("uti-4", "sid-4", "unverifiable")])
    assert found[found["detection"] == "forged-token"].empty
