"""Sign-ins whose userPrincipalName is the user's object id (Log Analytics writes some so; session 10).

A generated tenant (seed 7, 25 users) whose user sign-ins all carried the object id as their UPN scoped three
innocent mailboxes and two of their owners' home addresses as likely app-abuse: a mail client consented by a user
and read by three people from their own addresses, none of which was 'an address the user signs in from'. The pack's
``signins`` view now names such a sign-in's user by the UPN the object id has elsewhere (the sign-ins that
carry both, the tenant snapshot).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.detect_events import at, frame, mail, tenant_background
from tests.test_detect_app_abuse import consent_and_delegated_reads

REST = "Client=REST;Client=RESTSystem;;"


def object_id(user: str) -> str:
    """A stable object id per user (user3@contoso.com -> 00000000-0000-4000-8000-000000000003)."""
    return f"00000000-0000-4000-8000-{int(user[4:user.index('@')]):012d}"


def with_object_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every user sign-in spells its user by the object id; the tenant snapshot's user objects name them."""
    out = [{**r, "user": object_id(r["user"]), "user_id": object_id(r["user"])}
           if str(r["source"]) in ("signin_interactive", "signin_noninteractive") else r for r in rows]
    users = sorted({r["user"] for r in rows if str(r["source"]) == "signin_interactive"})
    return out + [{"time": at(-300), "source": "tenant_snapshot", "operation": "user", "user": u,
                   "user_id": object_id(u), "target": "Member", "record_id": object_id(u), "raw": "{}"}
                  for u in users]


def scripted_reads_without_ids() -> list[dict[str, Any]]:
    """Each user's own script reading its mailbox from the user's own address; the records carry no token id."""
    return [mail(at(d, 20), f"user{u}@contoso.com", f"10.0.0.{u + 1}", ua=REST, messages=(f"<s{d}-{u}@c>",))
            for d in (9, 10) for u in range(3)]


def test_sign_ins_spelled_by_object_id_keep_their_users_addresses_known(case_dir: Path) -> None:
    case = Case.open(case_dir)
    case.write_events(frame(*with_object_ids(tenant_background()), *scripted_reads_without_ids(),
                            *consent_and_delegated_reads()))
    found = detect(case)
    assert found[found["detection"] == "app-abuse"].empty
    doc = scope(case)
    assert not doc["compromised_mailboxes"] and not doc["actor_ips"]


def test_a_stranger_address_is_still_new_when_sign_ins_are_spelled_by_object_id(case_dir: Path) -> None:
    case = Case.open(case_dir)
    rows = with_object_ids(tenant_background())
    stranger = [mail(at(d, 2), "user1@contoso.com", "203.0.113.9", ua=REST, messages=(f"<x{d}@c>",)) for d in (9, 10)]
    case.write_events(frame(*rows, *stranger))
    detect(case)
    doc = scope(case)
    assert [m["upn"] for m in doc["compromised_mailboxes"]] == ["user1@contoso.com"]
    assert [i["ip"] for i in doc["actor_ips"]] == ["203.0.113.9"]
