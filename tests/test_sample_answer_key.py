"""The answer key agrees with the raw files, re-read here without the importer; the story's hard parts are there."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sample_reading import bare_ip, records, ual

from ir_toolkit.paths import reference_file
from ir_toolkit.sample import make_sample


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text.endswith("Z") else \
        datetime.fromisoformat(text + "+00:00")


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("key") / "tenant"
    make_sample(root, seed=558, users=20, days=45)
    return root, json.loads((root / "answer_key.json").read_text())


@pytest.fixture(scope="module")
def mail(tenant: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in ual(tenant[0]) if r["Operation"] == "MailItemsAccessed"]


@pytest.fixture(scope="module")
def signins(tenant: tuple[Path, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    root = tenant[0] / "entra"
    return {k: records(root / f"signins_{k}") for k in ("interactive", "noninteractive", "serviceprincipal")}


def _actor(key: dict[str, Any], rec: dict[str, Any]) -> bool:
    apps = {a["field"]: a["app_id"] for a in key["actor_apps"]}
    return rec.get("AppId") == apps["AppId"] and rec.get("ClientAppId") == apps["ClientAppId"]


def test_answer_key_agrees_with_raw_records(tenant: tuple[Path, dict[str, Any]], mail: list[dict[str, Any]]) -> None:
    _, key = tenant
    boxes: dict[str, dict[str, Any]] = defaultdict(lambda: {"times": [], "ids": set(), "binds": []})
    ips: dict[str, list[datetime]] = defaultdict(list)
    tokens, agents = set(), set()
    for rec in filter(lambda r: _actor(key, r), mail):
        t = _t(rec["CreationTime"])
        box = boxes[rec["MailboxOwnerUPN"]]
        box["times"].append(t)
        props = {p["Name"]: p["Value"] for p in rec["OperationProperties"]}
        if props["MailAccessType"] == "Bind":
            box["ids"].update(i["InternetMessageId"] for f in rec["Folders"] for i in f["FolderItems"])
            box["binds"].append(t)
            assert rec["OperationCount"] >= 2, "several messages per Bind group"
        ips[bare_ip(rec["ClientIPAddress"])].append(t)
        tokens.add(rec["AppAccessContext"]["UniqueTokenId"])
        agents.add(rec["ClientInfoString"])
    assert 3 <= len(boxes) <= 5
    got = {m["upn"]: m for m in key["compromised_mailboxes"]}
    assert set(got) == set(boxes)
    for upn, box in boxes.items():
        m = got[upn]
        assert (m["first"], m["last"]) == (min(box["times"]).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                           max(box["times"]).strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert (m["events"], m["items_accessed"]) == (len(box["times"]), len(box["ids"]))
        binds = sorted(box["binds"])
        assert all((b - a).total_seconds() >= 120 for a, b in zip(binds, binds[1:], strict=False)), "2-minute groups"
    assert {i["ip"]: i["events"] for i in key["actor_ips"]} == {ip: len(ts) for ip, ts in ips.items()}
    assert set(key["actor_token_ids"]) == tokens and set(key["actor_user_agents"]) == agents
    every = [t for ts in ips.values() for t in ts]
    assert key["window"] == {"first_malicious": min(every).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "last_malicious": max(every).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert key["window"]["first_malicious"].startswith("2023-05-15")
    assert key["window"]["last_malicious"].startswith("2023-06-14")
    assert all(t.weekday() < 5 and t.hour < 9 for t in every), "the actor works Mon-Fri 00:00-09:00 UTC"


def test_file_hashes_in_the_key(tenant: tuple[Path, dict[str, Any]]) -> None:
    root, key = tenant
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"answer_key.json",
                                                                                              "README.md"}
    assert {f["path"] for f in key["files"]} == on_disk
    for f in key["files"]:
        assert hashlib.sha256((root / f["path"]).read_bytes()).hexdigest() == f["sha256"]


def test_tokens_link_sign_ins_to_mailbox_access(tenant: tuple[Path, dict[str, Any]], mail: list[dict[str, Any]],
                                                signins: dict[str, list[dict[str, Any]]]) -> None:
    _, key = tenant
    start = _t(key["signin_coverage"]["start"])
    assert min(_t(r["createdDateTime"]) for rs in signins.values() for r in rs) >= start
    assert min(_t(r["CreationTime"]) for r in mail) < start - timedelta(days=10), "UAL reaches before sign-ins"
    issued = {r["uniqueTokenIdentifier"]: r for rs in signins.values() for r in rs}
    checked = 0
    for rec in mail:
        ctx = rec.get("AppAccessContext")
        if ctx is None or _actor(key, rec) or _t(ctx["IssuedAtTime"]) < start:
            continue
        signin = issued[ctx["UniqueTokenId"]]                      # every legit token was issued by a sign-in
        assert signin["sessionId"] == ctx.get("AADSessionId", signin["sessionId"])
        assert signin["appId"] in (rec["AppId"], rec["ClientAppId"])
        checked += 1
    assert checked > 1000
    assert not set(key["actor_token_ids"]) & set(issued), "forged tokens were never issued"
    unverifiable = [r for r in mail if "AppAccessContext" in r and not _actor(key, r)
                    and _t(r["AppAccessContext"]["IssuedAtTime"]) < start - timedelta(days=2)]
    assert len(unverifiable) > 500 and not any(r["AppAccessContext"]["UniqueTokenId"] in issued for r in unverifiable)
    before = [m for m in key["compromised_mailboxes"] if m["before_signin_coverage"]]
    assert before and all(_t(m["first"]) < start for m in before)


def test_actor_addresses_and_apps(tenant: tuple[Path, dict[str, Any]], mail: list[dict[str, Any]],
                                  signins: dict[str, list[dict[str, Any]]]) -> None:
    _, key = tenant
    with reference_file("storm0558_iocs.csv").open(newline="") as fh:
        iocs = {row["indicator"] for row in csv.DictReader(fh)}
    listed = [i for i in key["actor_ips"] if i["ip"] in iocs]
    assert 1 <= len(listed) <= 2 and len(key["actor_ips"]) - len(listed) >= 2
    assert all(i["listed_indicator"] == (i["ip"] in iocs) for i in key["actor_ips"])
    signin_ips = {r["ipAddress"] for rs in signins.values() for r in rs}
    assert not signin_ips & {i["ip"] for i in key["actor_ips"]}, "the actor never signs in"
    others = [r for r in mail if not _actor(key, r)]
    apps = {a["app_id"] for a in key["actor_apps"]}
    assert not any(r["AppId"] in apps or r["ClientAppId"] in apps for r in others)
    raw = [r["ClientIPAddress"] for r in mail]
    assert any(v.startswith("[") and "]:" in v for v in raw) and any(v.count(":") == 1 for v in raw)


def test_decoys_are_in_the_raw_logs(tenant: tuple[Path, dict[str, Any]], mail: list[dict[str, Any]],
                                    signins: dict[str, list[dict[str, Any]]]) -> None:
    root, key = tenant
    d = {x["kind"]: x["entities"] for x in key["decoys"]}
    assert set(d) == {"pre_coverage_intrusion", "pre_coverage_legit_access", "backup_app", "traveller",
                      "new_mail_client", "password_spray", "missing_app_access_context", "throttled_mailbox",
                      "own_mail_deletes"}
    backup = [r for r in mail if r["AppId"] == d["backup_app"]["app_id"]]
    assert {r["MailboxOwnerUPN"] for r in backup} == {u["userPrincipalName"] for u in records(root / "entra" / "users")}
    assert any(r["ClientInfoString"] == "Client=REST;Client=RESTSystem;;" for r in backup)
    sp_tokens = {r["uniqueTokenIdentifier"] for r in signins["serviceprincipal"]}
    assert any(r["AppAccessContext"]["UniqueTokenId"] in sp_tokens for r in backup)
    trav = d["traveller"]
    abroad = [r for r in signins["interactive"] + signins["noninteractive"] if r["ipAddress"] == trav["ip"]]
    assert abroad and {r["location"]["countryOrRegion"] for r in abroad} == {trav["country"]}
    assert any(bare_ip(r["ClientIPAddress"]) == trav["ip"] for r in mail)
    rules = [r for r in ual(root) if r["Operation"] == "New-InboxRule" and bare_ip(r["ClientIP"]) == trav["ip"]]
    assert len(rules) == 1 and rules[0]["UserId"] == trav["upn"]
    assert {"Name": "Name", "Value": trav["inbox_rule"]} in rules[0]["Parameters"]
    new = [r for r in mail if r["AppId"] == d["new_mail_client"]["app_id"]]
    assert new and min(r["CreationTime"] for r in new) >= d["new_mail_client"]["from"]
    assert {r["MailboxOwnerUPN"] for r in new} == set(d["new_mail_client"]["users"])
    spray = [r for r in signins["interactive"] if r["ipAddress"] in d["password_spray"]["ips"]]
    assert len(spray) >= 20 and all(r["status"]["errorCode"] in (50126, 50053) for r in spray)
    assert not any(bare_ip(r["ClientIPAddress"]) in d["password_spray"]["ips"] for r in mail)
    assert any("AppAccessContext" not in r and not _actor(key, r) for r in mail)


def test_throttled_mailbox_is_flagged_and_gap_is_real(tenant: tuple[Path, dict[str, Any]],
                                                      mail: list[dict[str, Any]]) -> None:
    _, key = tenant
    th = next(x["entities"] for x in key["decoys"] if x["kind"] == "throttled_mailbox")
    box = next(m for m in key["compromised_mailboxes"] if m["upn"] == th["upn"])
    assert box["throttled"] and box["possibly_more"] and box["unlogged_bind_records"] > 0
    assert not any(m["throttled"] for m in key["compromised_mailboxes"] if m["upn"] != th["upn"])
    start, end = _t(th["throttled_at"]), _t(th["until"])
    on_box = [r for r in mail if r["MailboxOwnerUPN"] == th["upn"]]
    flag = [r for r in on_box if {"Name": "IsThrottled", "Value": "True"} in r["OperationProperties"]]
    assert len(flag) == 1 and _t(flag[0]["CreationTime"]) == start
    busy = [r for r in on_box if start - timedelta(hours=24) <= _t(r["CreationTime"]) < start
            and r["OperationProperties"][0]["Value"] == "Bind"]
    assert len(busy) >= 1000
    gap = [r for r in on_box if start < _t(r["CreationTime"]) < end]
    assert gap and all(r["OperationProperties"][0]["Value"] == "Sync" for r in gap)
    assert any(_actor(key, r) for r in gap), "the actor read the mailbox while Bind logging was off"


COVER_OPS = {"MoveToDeletedItems", "SoftDelete", "HardDelete", "New-InboxRule"}


def test_cover_up_agrees_with_raw_records(tenant: tuple[Path, dict[str, Any]], mail: list[dict[str, Any]]) -> None:
    root, key = tenant
    apps = {a["field"]: a["app_id"] for a in key["actor_apps"]}
    reads = {r["SessionId"]: r for r in mail if _actor(key, r)}
    found = []
    for rec in ual(root):
        if rec["Operation"] not in COVER_OPS or rec.get("AppId") != apps["AppId"]:
            continue
        assert rec["ClientAppId"] == apps["ClientAppId"]
        read = reads[rec["SessionId"]]                   # inside one of the actor's own Exchange sessions
        assert rec["AppAccessContext"] == read["AppAccessContext"], "the same forged token"
        assert bare_ip(rec.get("ClientIPAddress") or rec["ClientIP"]) == bare_ip(read["ClientIPAddress"])
        assert rec["UserId"] == read["MailboxOwnerUPN"]
        params = {p["Name"]: p["Value"] for p in rec.get("Parameters", [])}
        if rec["Operation"] == "New-InboxRule":
            assert rec["RecordType"] == 1 and params["MarkAsRead"] == "True"
            assert params.get("MoveToFolder") == "RSS Subscriptions" or params.get("DeleteMessage") == "True"
            assert "security" in params["SubjectOrBodyContainsWords"]
        else:
            assert rec["RecordType"] == 3 and rec["MailboxOwnerUPN"] == read["MailboxOwnerUPN"]
            assert rec["Folder"]["Path"] and all(i["ParentFolder"]["Path"] for i in rec["AffectedItems"])
            assert ("DestFolder" in rec) == (rec["Operation"] == "MoveToDeletedItems")
        found.append({"mailbox": rec["UserId"], "operation": rec["Operation"], "time": rec["CreationTime"] + "Z",
                      "message_ids": [i["InternetMessageId"] for i in rec.get("AffectedItems", [])],
                      "rule": params.get("Name") if rec["Operation"] == "New-InboxRule" else None,
                      "exchange_session_id": rec["SessionId"],
                      "ip": bare_ip(rec.get("ClientIPAddress") or rec["ClientIP"])})
    assert found and sorted(found, key=lambda c: (c["time"], c["operation"])) == key["cover_up"]
    assert {c["operation"] for c in found} == COVER_OPS
    assert {c["mailbox"] for c in found} <= {m["upn"] for m in key["compromised_mailboxes"]}
    assert all(_t(c["time"]).weekday() < 5 and _t(c["time"]).hour < 9 for c in found)
    own = [r for r in ual(root) if r["RecordType"] == 3 and r["AppId"] != apps["AppId"]]
    users = next(d["entities"]["users"] for d in key["decoys"] if d["kind"] == "own_mail_deletes")
    assert own and {r["MailboxOwnerUPN"] for r in own} == set(users)
    assert all(r["UserId"] == r["MailboxOwnerUPN"] and r["SessionId"] not in reads for r in own)
