"""orphan-graph-request: Graph requests whose token no sign-in issued, judged as mailbox access is (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect, prepare
from ir_toolkit.analysis.graphreads import first_party_callers
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.detect_events import at, frame, graph, signin, tenant_background

TEAMS_SERVICES = "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"   # Microsoft Teams Services (Microsoft's services tenant)
MSG = "AAMkAGI2TG93AAA="


def known_user(user: str = "user1@contoso.com", user_id: str = "id-user1") -> dict:
    """A sign-in that tells the case user1's object id (the URI and the caller name it)."""
    return signin(at(1, 9), user, "10.0.0.2", user_id=user_id)


def run(case_dir: Path, rows: list[dict], noninteractive: bool = True, **params: object) -> pd.DataFrame:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(noninteractive=noninteractive), known_user(), *rows))
    return detect(case, params=params or None)


def graph_findings(findings: pd.DataFrame) -> pd.DataFrame:
    return findings[findings["detection"] == "orphan-graph-request"]


def forged_reads(day: float = 5, token: str = "forged-g1") -> list[dict]:
    """The actor lists user1's inbox by object id and reads three messages by UPN (one twice)."""
    base = [graph(at(day, 2), "/v1.0/users/id-user1/mailFolders/inbox/messages?$top=50", "203.0.113.9", token=token)]
    for i, m in enumerate((f"{MSG}1", f"{MSG}2", f"{MSG}3", f"{MSG}1")):
        base.append(graph(at(day, 2.1 + i / 20), f"/v1.0/users/USER1%40contoso.com/messages/{m}?$select=body",
                          "203.0.113.9", token=token))
    return base


def test_forged_token_mail_reads_inside_coverage_are_confirmed(case_dir: Path) -> None:
    rows = forged_reads()
    found = graph_findings(run(case_dir, rows))
    assert list(found["verdict"]) == ["confirmed"]
    f = found.iloc[0]
    assert f["mailbox"] == "user1@contoso.com" and f["token_id"] == "forged-g1" and f["severity"] == "high"
    assert f["user"] == "user1@contoso.com"  # the caller, resolved from its object id
    assert f["events"] == 5 and sorted(f["evidence"]) == sorted(r["record_id"] for r in rows)
    assert "3 message(s) named, 1 listing(s)" in f["explanation"] and "(mail)" in f["explanation"]


def test_issued_tokens_padding_trimmed_are_not_orphans(case_dir: Path) -> None:
    s = signin(at(6, 9), "user1@contoso.com", "10.0.0.2", source="signin_noninteractive",
               token="ZkPuO0b3lEKPW6RmHKXQAA", user_id="id-user1")
    rows = [s, graph(at(6, 9.1), "/v1.0/me/messages/AAMk1", "10.0.0.2", token="ZkPuO0b3lEKPW6RmHKXQAA=="),
            graph(at(6, 9.2), "/v1.0/me", "10.0.0.2", token="ZkPuO0b3lEKPW6RmHKXQAA")]
    assert graph_findings(run(case_dir, rows)).empty


def test_before_coverage_is_unverifiable_not_confirmed(case_dir: Path) -> None:
    found = graph_findings(run(case_dir, forged_reads(day=-3)))
    assert list(found["verdict"]) == ["unverifiable"] and "unverifiable" in found.iloc[0]["explanation"]


def test_without_noninteractive_signins_delegated_requests_are_unverifiable(case_dir: Path) -> None:
    found = graph_findings(run(case_dir, forged_reads(), noninteractive=False))
    assert list(found["verdict"]) == ["unverifiable"]


def test_known_session_is_only_possible(case_dir: Path) -> None:
    s = signin(at(4, 9), "user1@contoso.com", "10.0.0.2", user_id="id-user1")
    row = graph(at(4, 10), "/v1.0/me/messages", "10.0.0.2", token="refresh-unlogged", session=s["session_id"])
    found = graph_findings(run(case_dir, [s, row]))
    assert list(found["verdict"]) == ["possible"] and "session is known" in found.iloc[0]["explanation"]


def test_first_party_app_only_caller_is_labelled_benign_not_alarmed(case_dir: Path) -> None:
    assert TEAMS_SERVICES in set(first_party_callers()["app_id"])
    app_only = [graph(at(5, 3 + i / 10), f"/v1.0/users/id-user{i}/calendarView?startDateTime=x", "52.113.1.1",
                      app=TEAMS_SERVICES, user_id="sp-teams", scopes=None, roles="Calendars.Read") for i in range(3)]
    # The same first-party app id in a delegated token nobody issued is judged, not labelled (a forger picks it).
    delegated = graph(at(5, 4), "/v1.0/me/messages/AAMk9", "203.0.113.9", app=TEAMS_SERVICES)
    found = graph_findings(run(case_dir, [*app_only, delegated]))
    benign = found[found["verdict"] == "benign"]
    assert len(benign) == 3 and set(benign["severity"]) == {"informational"}
    assert all("Microsoft Teams Services" in e and "first-party" in e for e in benign["explanation"])
    assert list(found[found["verdict"] != "benign"]["verdict"]) == ["confirmed"]
    doc = scope(Case.open(case_dir), write=False)
    assert [m["upn"] for m in doc["compromised_mailboxes"]] == ["user1@contoso.com"]


def test_first_party_labelling_can_be_turned_off(case_dir: Path) -> None:
    app_only = graph(at(5, 3), "/v1.0/users/id-user1/messages", "52.113.1.1", app=TEAMS_SERVICES,
                     user_id="sp-teams", scopes=None, roles="Mail.Read")
    found = graph_findings(run(case_dir, [app_only], label_first_party=False))
    # No service-principal sign-ins are held: an app-only token's issuance cannot be checked.
    assert list(found["verdict"]) == ["unverifiable"]


def test_app_only_orphan_with_service_principal_coverage_is_confirmed(case_dir: Path) -> None:
    sps = [signin(at(d, 3), "rogue-app", "192.0.2.60", app="app-rogue", source="signin_serviceprincipal")
           for d in range(12)]
    row = graph(at(6, 3), "/v1.0/users/user2@contoso.com/messages/AAMk7", "198.51.100.77", app="app-rogue",
                user_id="sp-rogue", scopes=None, roles="Mail.Read")
    found = graph_findings(run(case_dir, [*sps, row]))
    assert list(found["verdict"]) == ["confirmed"] and found.iloc[0]["mailbox"] == "user2@contoso.com"


def test_kinds_targets_and_refused_requests_in_scope(case_dir: Path) -> None:
    ip, tok = "203.0.113.9", "forged-g2"
    rows = [*forged_reads(token=tok),
            graph(at(5, 3), "/v1.0/users/id-user1/drive/root/children", ip, token=tok),
            graph(at(5, 3.1), "/beta/users?$select=displayName,mail", ip, token=tok, scopes="User.Read.All"),
            graph(at(5, 3.2), "/v1.0/users/user3@contoso.com/messages/AAMkX", ip, token=tok, status=403)]
    found = graph_findings(run(case_dir, rows))
    kinds = dict(zip(found["explanation"].str.extract(r"\((\w+)\) on")[0], found["verdict"], strict=True))
    assert kinds == {"mail": "confirmed", "files": "confirmed", "directory": "confirmed", "refused": "confirmed"}
    doc = scope(Case.open(case_dir), write=False)
    (mb,) = doc["compromised_mailboxes"]  # the refused read of user3 put nothing in scope
    assert mb["upn"] == "user1@contoso.com" and mb["confidence"] == "confirmed"
    assert (mb["graph_requests"], mb["graph_messages_read"], mb["graph_listings"]) == (5, 3, 1)
    assert mb["items_accessed"] == 0  # Graph item ids are not InternetMessageIds
    assert mb["first"] == "2023-06-06T02:00:00Z"
    reads = {(r["kind"], r["target"]): r["requests"] for r in doc["actor_graph_reads"]}
    assert reads == {("mail", "user1@contoso.com"): 5, ("files", "user1@contoso.com"): 1, ("directory", "users"): 1,
                     ("refused", "user3@contoso.com"): 1}
    assert [i["ip"] for i in doc["actor_ips"]] == [ip]
    assert doc["window"]["first_malicious"] == "2023-06-06T02:00:00Z"


@pytest.mark.parametrize(("uri", "target", "message"), [
    ("/v1.0/me/mailFolders('Inbox')/messages/AAMkQ1/attachments?$top=5", "user1@contoso.com", "AAMkQ1"),
    ("/beta/users/id-unknown/messages/$count", "id-unknown", None),
    ("/v1.0/users/user2@contoso.com/messages/delta", "user2@contoso.com", None),
    ("/v1.0/users('user2%40contoso.com')/messages/AAMkR?$select=body", "user2@contoso.com", "AAMkR"),
    ("/v1.0/Users/ID-USER1/MailFolders/Inbox/Messages/AAMkCase", "user1@contoso.com", "AAMkCase"),
])
def test_uri_parsing(case_dir: Path, uri: str, target: str, message: str | None) -> None:
    run(case_dir, [graph(at(5, 2), uri, "203.0.113.9", token="forged-g3")])
    rows = prepare(Case.open(case_dir)).engine.run_sql("SELECT kind, target, message_id FROM graph_access")
    rows = rows.astype(object).where(rows.notna(), None)
    assert rows.to_dict("records") == [{"kind": "mail", "target": target, "message_id": message}]


def test_object_id_resolved_from_the_tenant_snapshot(case_dir: Path) -> None:
    snapshot = {"time": at(-30), "source": "tenant_snapshot", "operation": "user", "user": "user7@contoso.com",
                "user_id": "id-user7", "record_id": "id-user7", "raw": "{}"}
    found = graph_findings(run(case_dir, [snapshot, *forged_reads()[:1],
                                          graph(at(5, 2.5), "/v1.0/users/ID-USER7/messages/AAMk7", "203.0.113.9",
                                                token="forged-g1")]))
    assert set(found["mailbox"]) == {"user1@contoso.com", "user7@contoso.com"}
    assert set(found["verdict"]) == {"confirmed"}
