"""new-address, scripted-client, indicator-match, working-hours and persistence-cover."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ir_toolkit.analysis.detect import detect
from ir_toolkit.case import Case
from tests.detect_events import at, audit, frame, mail, signed_in_access, signin, tenant_background

REST = "Client=REST;Client=RESTSystem;;"


def findings(case_dir: Path, rows: list[dict], detection: str, **params: object) -> pd.DataFrame:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), *rows))
    found = detect(case, params=params or None)
    return found[found["detection"] == detection]


# ----- new-address -------------------------------------------------------------------------------
def test_access_from_an_address_the_user_never_signed_in_from(case_dir: Path) -> None:
    rows = [mail(at(5, 3), "user1@contoso.com", "203.0.113.7", token="t-unknown", country="NL", asn=64500)]
    found = findings(case_dir, rows, "new-address")
    assert len(found) == 1 and found.iloc[0]["ip"] == "203.0.113.7"
    assert "country NL, ASN 64500" in found.iloc[0]["explanation"]


def test_traveller_who_signed_in_abroad_is_not_a_new_address(case_dir: Path) -> None:
    rows = [r for d in (5, 6) for r in signed_in_access(at(d, 20), "user1@contoso.com", "198.18.5.5")]
    assert findings(case_dir, rows, "new-address").empty


def test_verified_access_from_new_address_stays_possible(case_dir: Path) -> None:
    s = signin(at(5, 3), "user1@contoso.com", "10.0.0.2")
    rows = [s, mail(at(5, 3.1), "user1@contoso.com", "198.18.9.9", token=s["token_id"], ua=REST)]
    found = findings(case_dir, rows, "new-address")
    assert list(found["verdict"]) == ["possible"]


# ----- scripted-client ---------------------------------------------------------------------------
def test_scripted_client_reading_mail(case_dir: Path) -> None:
    rows = [mail(at(5, 3), "user1@contoso.com", "203.0.113.7", ua="python-requests/2.31", token="t1")]
    found = findings(case_dir, rows, "scripted-client")
    assert len(found) == 1 and found.iloc[0]["verdict"] == "likely"  # scripted + new address, unverified
    assert "python-requests/2.31" in found.iloc[0]["explanation"]


def test_backup_service_sending_the_rest_client_string_is_benign(case_dir: Path) -> None:
    sp = signin(at(5, 3), "backupsvc", "192.0.2.50", app="app-backup", source="signin_serviceprincipal", ua=REST)
    rows = [sp, mail(at(5, 3.1), "user0@contoso.com", "192.0.2.50", app="app-backup", ua=REST, user="backupsvc",
                     token=sp["token_id"])]
    found = findings(case_dir, rows, "scripted-client")
    assert list(found["verdict"]) == ["benign"]


def test_ordinary_clients_are_not_scripted(case_dir: Path) -> None:
    assert findings(case_dir, [], "scripted-client").empty


# ----- indicator-match ---------------------------------------------------------------------------
def test_shipped_storm0558_address_matches(case_dir: Path) -> None:
    rows = [signin(at(3, 1), "user0@contoso.com", "195.26.87.219", result="failure"),
            signin(at(3, 2), "user0@contoso.com", "20.108.240.252", result="failure")]  # blog-only proxy
    found = findings(case_dir, rows, "indicator-match")
    assert set(found["ip"]) == {"195.26.87.219", "20.108.240.252"}
    assert set(found["verdict"]) == {"possible"}  # a lead, not a verdict
    assert "Token web panel" in " ".join(found["explanation"])


def test_user_csv_with_cidr_and_user_agent(case_dir: Path, tmp_path: Path) -> None:
    iocs = tmp_path / "iocs.csv"
    iocs.write_text("indicator,type,description\n203.0.113.0/24,CIDR,actor VPS range\n"
                    "EvilAgent/1.0,UserAgent,actor tool\n", encoding="utf-8")
    rows = [mail(at(5, 3), "user1@contoso.com", "203.0.113.77", token="t1", ua="python-requests/2.31"),
            mail(at(5, 4), "user2@contoso.com", "10.0.0.3", token="t2", ua="EvilAgent/1.0")]
    found = findings(case_dir, rows, "indicator-match", iocs=str(iocs), shipped_iocs=False)
    assert set(found["ip"].fillna("-")) == {"203.0.113.77", "10.0.0.3"}
    cidr = found[found["ip"] == "203.0.113.77"].iloc[0]
    assert cidr["verdict"] == "likely"  # same address carries unverified suspicious mail access
    assert "203.0.113.0/24" in cidr["explanation"]


def test_stix_bundle_indicators(case_dir: Path, tmp_path: Path) -> None:
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "id": "indicator--1", "name": "proxy", "pattern_type": "stix",
         "pattern": "[ipv4-addr:value = '198.51.100.23']"},
        {"type": "indicator", "id": "indicator--2", "name": "other", "pattern_type": "stix",
         "pattern": "[ipv4-addr:value = '192.0.2.200']"}]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    rows = [signin(at(3, 1), "user3@contoso.com", "198.51.100.23", result="failure")]
    found = findings(case_dir, rows, "indicator-match", iocs=str(path), shipped_iocs=False)
    assert list(found["ip"]) == ["198.51.100.23"]


def test_no_indicator_no_match(case_dir: Path) -> None:
    assert findings(case_dir, [], "indicator-match").empty


# ----- working-hours -----------------------------------------------------------------------------
def _actor_weekday_nights() -> list[dict]:
    # 2023-06-05 is a Monday: Monday-Friday 01:00-07:00 UTC is 09:00-15:00 at UTC+8.
    return [mail(at(d, h), "user1@contoso.com", "203.0.113.9", token=f"f{d}-{h}", ua=REST)
            for d in range(4, 9) for h in range(1, 8)]


def test_actor_rhythm_points_to_another_time_zone(case_dir: Path) -> None:
    found = findings(case_dir, _actor_weekday_nights(), "working-hours")
    assert len(found) == 1
    f = found.iloc[0]
    assert f["verdict"] == "possible" and f["events"] == 35
    actor, tenant = (int(x) for x in re.findall(r"UTC([+-]\d+)", f["explanation"]))
    assert 5 <= actor <= 9 and -6 <= tenant <= 0  # office hours in East Asia vs the tenant's UTC afternoons


def test_suspicious_activity_in_the_tenants_hours_is_benign(case_dir: Path) -> None:
    rows = [mail(at(d, 15), "user1@contoso.com", "203.0.113.9", token=f"f{d}", ua=REST) for d in range(4, 9)]
    found = findings(case_dir, rows, "working-hours")
    assert list(found["verdict"]) == ["benign"]


def test_no_suspicious_activity_no_rhythm_finding(case_dir: Path) -> None:
    assert findings(case_dir, [], "working-hours").empty


# ----- persistence-cover -------------------------------------------------------------------------
def test_inbox_rule_and_credentials_are_reported(case_dir: Path) -> None:
    rows = [audit(at(4, 10), "New-InboxRule", "user1@contoso.com", "10.0.0.2", target="fwd",
                  mailbox="user1@contoso.com"),
            audit(at(4, 11), "Add service principal credentials", "admin@contoso.com", "10.0.0.5",
                  target="app-backup", source="directory_audit")]
    found = findings(case_dir, rows, "persistence-cover")
    assert set(found["verdict"]) == {"possible"} and len(found) == 2
    assert any("'New-InboxRule'" in e for e in found["explanation"])


def test_change_from_an_actor_address_is_likely(case_dir: Path) -> None:
    rows = _actor_weekday_nights() + [audit(at(5, 3), "Set-Mailbox", "user1@contoso.com", "203.0.113.9",
                                            mailbox="user1@contoso.com")]
    found = findings(case_dir, rows, "persistence-cover")
    assert list(found["verdict"]) == ["likely"]


def test_ordinary_operations_are_not_persistence(case_dir: Path) -> None:
    rows = [audit(at(4, 10), "UserLoggedIn", "user1@contoso.com", "10.0.0.2"),
            audit(at(4, 10), "Send", "user1@contoso.com", "10.0.0.2")]
    assert findings(case_dir, rows, "persistence-cover").empty
