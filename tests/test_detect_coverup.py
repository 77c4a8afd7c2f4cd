"""Cover-up as findings (issue 14): the actor's deletes and hiding inbox rules, tied to its access."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ir_toolkit.analysis.coverup import counted_findings, cover_up
from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from ir_toolkit.case.importing import import_files
from tests.conftest import cli
from tests.detect_events import at, frame, inbox_rule, item_group, mail, tenant_background

REST = "Client=REST;Client=RESTSystem;;"
ACTOR_IP = "203.0.113.9"  # the actor's proxy: no sign-in ever came from it
ACTOR_EXS = "exs-actor-1"  # the Exchange session of the forged-token access
ALERTS = ("<alert-1@contoso.com>", "<alert-2@contoso.com>", "<alert-3@contoso.com>")


def scenario() -> list[dict]:
    """Tenant background, forged-token access to user1, and cover-up: tied, address-only, and the users' own."""
    rows = tenant_background(users=4, days=12)
    # Forged tokens inside coverage: confirmed access to user1 in one Exchange session.
    rows += [mail(at(5, 1 + i / 4), "user1@contoso.com", ACTOR_IP, app="app-actor", token=f"forged-{i}", ua=REST,
                  messages=(f"<v1-{i}@c>",), exchange_session_id=ACTOR_EXS) for i in range(3)]
    # The actor deletes the security alerts in its Exchange session (no token ids on the delete records).
    rows.append(item_group(at(5, 2), "SoftDelete", "user1@contoso.com", ACTOR_IP, messages=ALERTS,
                           subjects=("Unusual sign-in activity", "New app connected", "Unusual sign-in activity 2"),
                           exchange_session=ACTOR_EXS, ua=REST))
    rows.append(item_group(at(5, 2.1), "HardDelete", "user1@contoso.com", ACTOR_IP, messages=ALERTS[:1],
                           folder="\\Deleted Items", exchange_session=ACTOR_EXS, ua=REST))
    # From the actor's address only (another session, no ids): likely.
    rows.append(item_group(at(6, 1), "MoveToDeletedItems", "user2@contoso.com", ACTOR_IP,
                           messages=("<notice@contoso.com>",), dest="\\Deleted Items", exchange_session="exs-other"))
    # The users' own deletes and moves, from their usual address and client (item_group's default): not findings.
    rows.append(item_group(at(4, 14.5), "SoftDelete", "user0@contoso.com", "10.0.0.1", messages=("<spam@x>",),
                           exchange_session="exs-user0"))
    rows.append(item_group(at(4, 15), "Move", "user0@contoso.com", "10.0.0.1", messages=("<n@x>",),
                           dest="\\Junk Email", exchange_session="exs-user0"))
    rows.append(item_group(at(4, 15.5), "Move", "user0@contoso.com", "10.0.0.1", messages=("<p@x>",),
                           dest="\\Projects", exchange_session="exs-user0"))
    # A hiding rule set with a forged token (UpdateInboxRules, OperationProperties) and one from the actor's address.
    rows.append(inbox_rule(at(5, 2.3), "user1@contoso.com", ACTOR_IP, "..", {"RuleActions": "MoveToFolder RSS Feeds",
                           "RuleCondition": "SubjectContainsWords security"}, operation="UpdateInboxRules",
                           token="forged-1"))
    rows.append(inbox_rule(at(6, 1.2), "user2@contoso.com", ACTOR_IP, "x",
                           {"SubjectContainsWords": "security;alert;sign-in", "MoveToFolder": "RSS Subscriptions",
                            "MarkAsRead": "True", "StopProcessingRules": "True"}))
    # A benign rule by its owner from a known address, and an untied hiding rule (a user's own auto-delete).
    rows.append(inbox_rule(at(7, 15), "user3@contoso.com", "10.0.0.4", "Newsletters",
                           {"From": "news@contoso.com", "MoveToFolder": "Newsletters", "StopProcessingRules": "True"}))
    rows.append(inbox_rule(at(7, 16), "user2@contoso.com", "10.0.0.3", "No spam",
                           {"From": "promo@shop.example", "DeleteMessage": "True"}))
    return rows


def build(case_dir: Path) -> Case:
    case = Case.open(case_dir)
    case.write_events(frame(*scenario()))
    return case


def test_actor_deletes_are_confirmed_and_named(case_dir: Path) -> None:
    found = detect(build(case_dir))
    mine = found[found["detection"] == "mail-cover-up"]
    soft = mine[mine["explanation"].str.contains("soft-deleted")]
    assert len(soft) == 1 and soft["verdict"].iloc[0] == "confirmed" and soft["mailbox"].iloc[0] == "user1@contoso.com"
    text = soft["explanation"].iloc[0]
    assert text.startswith("3 item(s) soft-deleted from user1@contoso.com")
    assert "'Unusual sign-in activity'" in text and "<alert-1@contoso.com>" in text
    assert f"Exchange session {ACTOR_EXS}" in text and "confirmed forged-token access" in text
    hard = mine[mine["explanation"].str.contains("hard-deleted")]
    assert hard["verdict"].tolist() == ["confirmed"]


def test_deletes_from_a_suspect_address_only_are_likely(case_dir: Path) -> None:
    found = detect(build(case_dir))
    moved = found[(found["detection"] == "mail-cover-up") & (found["mailbox"] == "user2@contoso.com")]
    assert moved["verdict"].tolist() == ["likely"]
    assert "moved to Deleted Items in user2@contoso.com" in moved["explanation"].iloc[0]
    assert f"from {ACTOR_IP}, an address of suspect access" in moved["explanation"].iloc[0]


def test_users_own_deletes_are_not_findings(case_dir: Path) -> None:
    found = detect(build(case_dir))
    assert not (found["detection"] == "mail-cover-up").loc[found["mailbox"] == "user0@contoso.com"].any()
    assert set(found.loc[found["detection"] == "mail-cover-up", "mailbox"]) == {"user1@contoso.com",
                                                                               "user2@contoso.com"}


def test_hiding_rules_tied_to_the_actor_and_benign_rules(case_dir: Path) -> None:
    found = detect(build(case_dir))
    rules = found[found["detection"] == "hiding-inbox-rule"].set_index("mailbox")
    tied = found[(found["detection"] == "hiding-inbox-rule") & (found["verdict"] == "confirmed")]
    assert tied["mailbox"].tolist() == ["user1@contoso.com"]
    assert "with token forged-1" in tied["explanation"].iloc[0] and "RSS Feeds" in tied["explanation"].iloc[0]
    by_address = found[(found["detection"] == "hiding-inbox-rule") & (found["verdict"] == "likely")]
    text = by_address["explanation"].iloc[0]
    assert by_address["mailbox"].tolist() == ["user2@contoso.com"] and "Inbox rule 'x' on user2@contoso.com" in text
    assert "moves mail to a rarely-read folder" in text and "marks mail as read" in text
    assert "security words" in text and "SubjectContainsWords=security;alert;sign-in" in text
    assert "user3@contoso.com" not in rules.index  # Newsletters: not a hiding rule, no tie
    benign = found[(found["mailbox"] == "user3@contoso.com") | (found["user"] == "user3@contoso.com")]
    assert not benign["verdict"].isin(["confirmed", "likely"]).any()
    own = found[(found["detection"] == "hiding-inbox-rule") & found["explanation"].str.contains("'No spam'")]
    assert own["verdict"].tolist() == ["possible"] and "deletes mail" in own["explanation"].iloc[0]


def test_scope_lists_the_cover_up(case_dir: Path) -> None:
    case = build(case_dir)
    found = detect(case)
    doc = scope(case, found)
    mailboxes = {m["upn"]: m for m in doc["compromised_mailboxes"]}
    entries = mailboxes["user1@contoso.com"]["cover_up"]
    soft = [e for e in entries if e["operation"] == "SoftDelete"]
    assert len(soft) == 1 and soft[0]["items"] == sorted(ALERTS) and soft[0]["tied_by"] == "exchange session"
    assert soft[0]["rule"] is None and soft[0]["finding_id"].startswith("mail-cover-up:")
    rule = [e for e in entries if e["rule"] is not None]
    assert rule and rule[0]["rule"] == ".." and rule[0]["tied_by"] == "token"
    assert rule[0]["operation"] == "UpdateInboxRules"
    top = doc["cover_up"]
    assert {e["mailbox"] for e in top} == {"user1@contoso.com", "user2@contoso.com"}
    assert all(e["verdict"] in ("confirmed", "likely") for e in top)
    assert {e["tied_by"] for e in top if e["mailbox"] == "user2@contoso.com"} == {"address"}
    assert "user0@contoso.com" not in mailboxes
    assert all("cover_up" not in m or m["cover_up"] for m in mailboxes.values())


def test_a_hiding_rule_counts_once_in_the_scope(case_dir: Path) -> None:
    found = detect(build(case_dir))
    rule_ids = {r for ev in found.loc[found["detection"] == "hiding-inbox-rule", "evidence"] for r in ev}
    both = found[(found["detection"] == "persistence-cover") & found["evidence"].map(lambda ev: set(ev) <= rule_ids)]
    assert len(both)  # both detections report the rule change...
    kept = counted_findings(found)
    strong_rules = {r for ev in kept.loc[kept["detection"].eq("hiding-inbox-rule") & kept["verdict"].isin(
        ["confirmed", "likely"]), "evidence"] for r in ev}
    again = kept[(kept["detection"] == "persistence-cover") & kept["evidence"].map(lambda ev: set(ev) <= strong_rules)]
    assert again.empty  # ...but the scope counts it once


def test_cover_up_is_pure_over_findings_and_evidence() -> None:
    findings = pd.DataFrame([{"finding_id": "mail-cover-up:1", "detection": "mail-cover-up", "verdict": "likely",
                              "first": at(1), "last": at(1), "mailbox": "a@c", "evidence": ["r1", "r2"]},
                             {"finding_id": "mail-cover-up:2", "detection": "mail-cover-up", "verdict": "possible",
                              "first": at(2), "last": at(2), "mailbox": "a@c", "evidence": ["r3"]}])
    evidence = pd.DataFrame([{"record_id": "r1", "operation": "SoftDelete", "target": None, "kind": "mail",
                              "tied_by": "address", "message_ids": ["<b>", "<a>"]},
                             {"record_id": "r2", "operation": "SoftDelete", "target": None, "kind": "mail",
                              "tied_by": "address", "message_ids": None}])
    entries, per = cover_up(findings, evidence, ["a@c", "z@c"])
    assert [e["items"] for e in entries] == [["<a>", "<b>"]] and entries[0]["tied_by"] == "address"
    assert list(per) == ["a@c"] and "mailbox" not in per["a@c"][0]


def test_malformed_affected_items_import_without_loss(case_dir: Path, tmp_path: Path) -> None:
    base = json.loads(item_group(at(5, 2), "SoftDelete", "user1@contoso.com", ACTOR_IP, messages=ALERTS)["raw"])
    records = []
    for i, affected in enumerate(["not a list", [5, "text", None], [{"Id": "x", "Subject": "no id"}],
                                  [{"InternetMessageId": {"nested": 1}}], {"InternetMessageId": "<obj@x>"},
                                  base["AffectedItems"]]):
        records.append({**base, "Id": f"00000000-0000-4000-8000-{i:012d}", "AffectedItems": affected})
    path = tmp_path / "ual.json"
    path.write_text(json.dumps(records), "utf-8")
    case = Case.open(case_dir)
    [res] = import_files(case, [path])
    assert res["records"] == res["imported"] == len(records) and res["quarantined"] == 0
    ev = case.read_events().sort_values("record_id").reset_index(drop=True)
    assert (ev["source"] == "audit_other").all() and (ev["mailbox"] == "user1@contoso.com").all()
    assert [json.loads(r)["AffectedItems"] for r in ev["raw"]] == [r["AffectedItems"] for r in records]
    assert [list(m) for m in ev["message_ids"]][:5] == [[], [], [], ["{'nested': 1}"], []]
    assert list(ev["message_ids"].iloc[5]) == list(ALERTS) and ev["items"].iloc[5] == 3
    assert pd.isna(ev["items"].iloc[0]) and ev["items"].iloc[1] == 0 and ev["items"].iloc[2] == 1


def test_cli_detect_and_scope_report_cover_up(case_dir: Path) -> None:
    build(case_dir)
    res = cli("detect", case_dir, "--json")
    assert res.returncode == 0, res.stderr
    counts = json.loads(res.stdout)["counts"]
    assert counts.get("mail-cover-up/confirmed", 0) >= 1 and counts.get("hiding-inbox-rule/confirmed") == 1
    res = cli("scope", case_dir, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["cover_up"] and json.loads((case_dir / "scope.json").read_text("utf-8"))["cover_up"] == doc["cover_up"]
    user1 = next(m for m in doc["compromised_mailboxes"] if m["upn"] == "user1@contoso.com")
    assert {e["operation"] for e in user1["cover_up"]} >= {"SoftDelete", "HardDelete", "UpdateInboxRules"}
