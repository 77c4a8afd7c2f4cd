"""scope(): pivots to a fixed point, decoys stay out, scope.json per DESIGN.md, CLI verbs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ir_toolkit.analysis.detect import detect, read_findings
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.conftest import cli
from tests.detect_events import at, audit, frame, mail, signed_in_access, signin, tenant_background, token_event

REST = "Client=REST;Client=RESTSystem;;"
EGRESS = "198.51.100.1"  # corporate egress shared by every user


def breach() -> tuple[list[dict], dict]:
    """A tenant with a forged-token actor and the decoys real tenants are full of."""
    rows = tenant_background(users=4, days=12)
    # Corporate egress: every user also signs in and reads mail through it.
    for u in range(4):
        rows += signed_in_access(at(3, 15), f"user{u}@contoso.com", EGRESS, messages=(f"<egress{u}@c>",))
    actor: list[dict] = []
    # Forged tokens inside coverage, two actor proxies, actor app, REST client.
    for i in range(4):
        actor.append(mail(at(5, 1 + i / 4), "user1@contoso.com", "203.0.113.9", app="app-actor", token=f"forged-a{i}",
                          ua=REST, messages=(f"<v1-{i}@c>", "<v1-shared@c>")))
    actor.append(mail(at(6, 2), "user2@contoso.com", "203.0.113.10", app="app-actor", token="forged-b",
                      ua=REST, messages=("<v2-0@c>",), throttled=True))
    actor.append(mail(at(6, 2.5), "user2@contoso.com", "203.0.113.10", app="app-actor", token="forged-b",
                      ua=REST, access="Sync"))
    # Before sign-in coverage: only the actor's app ties it in (then its address does).
    actor.append(mail(at(-4, 3), "user3@contoso.com", "203.0.113.66", app="app-actor", token="forged-old",
                      ua=REST, messages=("<v3-0@c>",)))
    actor.append(mail(at(-4, 4), "user3@contoso.com", "203.0.113.66", app="app-actor", ua=REST,
                      messages=("<v3-1@c>",)))  # aggregated record without AppAccessContext
    actor.append(audit(at(5, 2), "New-InboxRule", "user1@contoso.com", "203.0.113.9", mailbox="user1@contoso.com"))
    # One forged access through the shared egress: the egress must not drag the others in.
    actor.append(mail(at(5, 3), "user1@contoso.com", EGRESS, app="app-actor", token="forged-e", ua=REST,
                      messages=("<v1-egress@c>",)))
    decoys: list[dict] = []
    # Backup app reading every mailbox app-only, sending the same REST string; explained by its SP sign-ins.
    for d in range(-5, 12):  # its sign-ins, like the users', are logged from day 0 on
        sp = signin(at(d, 23), "backupsvc", "192.0.2.50", app="app-backup", source="signin_serviceprincipal", ua=REST)
        decoys += [sp] * (d >= 0) + [mail(at(d, 23.2), f"user{u}@contoso.com", "192.0.2.50", app="app-backup", ua=REST,
                               user="backupsvc", token=sp["token_id"] if d >= 0 else f"pre-{d}", access="Sync")
                          for u in range(5)]
    # Traveller signing in and reading mail from abroad.
    decoys += signed_in_access(at(8, 3), "user0@contoso.com", "198.18.7.7", country="JP")
    # New mail client (new AppId, tokens issued).
    decoys += signed_in_access(at(9, 15), "user3@contoso.com", "10.0.0.4", app="app-newclient")
    # Failed password spray.
    decoys += [signin(at(7, 4 + i / 60), f"user{i % 4}@contoso.com", "192.0.2.99", result="failure")
               for i in range(20)]
    # Ordinary access before sign-in coverage (unverifiable, not forged).
    decoys += [mail(at(-2, 14), "user4@contoso.com", "10.0.0.5", token="pre-ordinary", messages=("<p@c>",))]
    truth = {
        "mailboxes": {"user1@contoso.com", "user2@contoso.com", "user3@contoso.com"},
        "ips": {"203.0.113.9", "203.0.113.10", "203.0.113.66"},
        "first": at(-4, 3), "last": at(6, 2.5),
    }
    return rows + actor + decoys, truth


def build(case_dir: Path) -> tuple[Case, dict]:
    case = Case.open(case_dir)
    rows, truth = breach()
    case.write_events(frame(*rows))
    return case, truth


def test_scope_finds_the_actor_and_leaves_the_decoys_out(case_dir: Path) -> None:
    case, truth = build(case_dir)
    detect(case)
    doc = scope(case)
    mailboxes = {m["upn"]: m for m in doc["compromised_mailboxes"]}
    assert set(mailboxes) == set(truth["mailboxes"])
    assert {m: mailboxes[m]["items_accessed"] for m in mailboxes} == {
        "user1@contoso.com": 6, "user2@contoso.com": 1, "user3@contoso.com": 2}
    assert all(m["confidence"] == "confirmed" for m in mailboxes.values())
    assert mailboxes["user2@contoso.com"]["possibly_more"] is True
    assert "possibly_more" not in mailboxes["user1@contoso.com"]
    assert mailboxes["user1@contoso.com"]["events"] == 4 + 1 + 1  # 4 proxy accesses, inbox rule, egress access
    actor_ips = {i["ip"] for i in doc["actor_ips"]}
    assert truth["ips"] <= actor_ips and actor_ips - truth["ips"] <= {EGRESS}
    egress = next(i for i in doc["actor_ips"] if i["ip"] == EGRESS)
    assert egress["events"] == 1 and any("shared" in r for r in egress["reasons"])
    assert pd.Timestamp(doc["window"]["first_malicious"]) == truth["first"]
    assert pd.Timestamp(doc["window"]["last_malicious"]) == truth["last"]
    assert [(a["app_id"], a["field"]) for a in doc["actor_apps"]] == [("app-actor", "AppId")]
    assert doc["actor_apps"][0]["actor_specific"]


def test_pivots_follow_actor_specific_entities_only(case_dir: Path) -> None:
    case, _ = build(case_dir)
    doc = scope(case)  # runs detect itself when findings are missing
    followed = {(p["kind"], p["value"]) for p in doc["pivots"]}
    assert ("app", "app-actor") in followed and ("ip", "203.0.113.66") in followed
    assert ("ip", EGRESS) not in followed and ("user_agent", REST) not in followed
    shared = {(s["kind"], s["value"]) for s in doc["not_pivoted_shared"]}
    assert ("ip", EGRESS) in shared and ("user_agent", REST) in shared
    assert max(p["round"] for p in doc["pivots"]) >= 2  # the pre-coverage address came from the app


def test_scope_json_contract(case_dir: Path) -> None:
    case, _ = build(case_dir)
    detect(case)
    scope(case)
    doc = json.loads((case.root / "scope.json").read_text(encoding="utf-8"))
    assert {"case", "generated_at", "window", "signin_coverage", "compromised_mailboxes", "actor_ips",
            "actor_apps", "findings_by_detection"} <= doc.keys()
    assert set(doc["window"]) == {"first_malicious", "last_malicious"}
    assert {"start", "end"} <= doc["signin_coverage"].keys()
    for m in doc["compromised_mailboxes"]:
        assert {"upn", "first", "last", "events", "items_accessed", "confidence", "reasons"} <= m.keys()
        assert m["confidence"] in ("confirmed", "likely") and m["reasons"]
    for i in doc["actor_ips"]:
        assert {"ip", "first", "last", "events", "reasons"} <= i.keys()
    assert doc["findings_by_detection"]["orphan-token"] >= 3
    periods = doc["unverifiable_periods"]
    assert periods and periods[0]["reason"] == "mailbox access before sign-in coverage"
    assert {t["upn"] for t in doc["throttled_mailboxes"]} == {"user2@contoso.com"}
    findings = read_findings(case)
    assert findings is not None and sum(doc["findings_by_detection"].values()) == len(findings)


def test_no_confirmed_finding_means_empty_scope(case_dir: Path) -> None:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background()))
    doc = scope(case)
    assert doc["compromised_mailboxes"] == [] and doc["actor_ips"] == [] and doc["pivots"] == []
    assert doc["window"] == {"first_malicious": None, "last_malicious": None}


def test_likely_without_proof_is_reported_as_likely(case_dir: Path) -> None:
    case = Case.open(case_dir)
    # No token ids, no sign-in explains the app, new address, scripted client: likely, never confirmed.
    rows = tenant_background() + [mail(at(9, 2), "user2@contoso.com", "203.0.113.50", app="app-odd", ua=REST,
                                       messages=("<l@c>",))]
    case.write_events(frame(*rows))
    doc = scope(case)
    assert [(m["upn"], m["confidence"]) for m in doc["compromised_mailboxes"]] == [("user2@contoso.com", "likely")]


def test_cli_detect_and_scope(case_dir: Path) -> None:
    build(case_dir)
    r = cli("detect", case_dir, "--json", "-p", "baseline_days=7")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["pack"] == "token-forgery" and doc["findings"] and doc["parameters"]["baseline_days"] == 7
    assert (case_dir / "findings.parquet").exists() and (case_dir / "findings.json").exists()
    r = cli("scope", case_dir, "--json")
    assert r.returncode == 0, r.stderr
    assert {m["upn"] for m in json.loads(r.stdout)["compromised_mailboxes"]} == set(breach()[1]["mailboxes"])
    r = cli("scope", case_dir)
    assert r.returncode == 0 and "compromised mailboxes: 3" in r.stdout


def test_cli_bad_input_is_one_line_exit_2(case_dir: Path, tmp_path: Path) -> None:
    for args in (("-p", "nonsense=1"), ("-p", "baseline_days=abc"), ("-p", "novalue"), ("--pack", "nope"),
                 ("-p", f"iocs={tmp_path / 'missing.csv'}")):
        r = cli("detect", case_dir, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = cli("scope", tmp_path / "not-a-case")
    assert r.returncode == 2 and "not" in r.stderr


def test_forged_token_verdict_confirms_access_before_coverage(case_dir: Path) -> None:
    case = Case.open(case_dir)
    early = mail(at(-3, 2), "user3@contoso.com", "203.0.113.80", token="uti-early", session="sid-early",
                 messages=("<e1@c>", "<e2@c>"))
    case.write_events(frame(*tenant_background(), early, token_event("uti-early", "sid-early", "forged")))
    doc = scope(case)
    [mailbox] = doc["compromised_mailboxes"]
    assert (mailbox["upn"], mailbox["confidence"], mailbox["items_accessed"]) == ("user3@contoso.com", "confirmed", 2)
    assert [i["ip"] for i in doc["actor_ips"]] == ["203.0.113.80"]
    assert doc["window"]["first_malicious"] == doc["window"]["last_malicious"] == "2023-05-29T02:00:00Z"


def test_scope_uses_the_parameters_detect_ran_with(case_dir: Path) -> None:
    build(case_dir)
    assert cli("detect", case_dir, "-p", "coverage_start=2023-06-03T00:00:00Z").returncode == 0
    r = cli("scope", case_dir, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["signin_coverage"]["start"] == "2023-06-03T00:00:00Z"
    assert doc["signin_coverage"]["method"] == "parameter"
