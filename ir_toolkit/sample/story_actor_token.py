"""The actor-token story (``sample make --story actor-token``): CVE-2025-55241 in the sample tenant.

The intruder forges unsigned impersonation tokens on an Exchange Online actor token and writes to the
directory as the tenant's Global Administrator through Azure AD Graph: a credential on the backup
application's service principal, a certificate on the internal application, the Global Administrator
role for a user it can sign in as. Entra logs each write with the *service's* display name as the
initiating user beside the administrator's UPN (reference/anchors-2026-12.md 1c). Its reads are not
logged anywhere, so the answer key says the mail it may have read cannot be scoped.

Decoys with the same pattern: Exchange Online PowerShell creating and filling groups for an admin (the
service's name beside a real UPN, on operations naming a group), and ``Set directory feature on tenant``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ir_toolkit.sample import directory
from ir_toolkit.sample.activity import Event
from ir_toolkit.sample.ids import guid, rng_for, utc
from ir_toolkit.sample.story import INTRUSION_END, INTRUSION_START, Story

SERVICE = "Office 365 Exchange Online"      # the actor token's service, shown as the initiating user
EXO_POWERSHELL_GROUP_OPS = ("Add group", "Add member to group", "Update group")
MAIL_READS = ("Reads with actor tokens leave no record in the victim tenant: whether the intruder read mail, users "
              "or settings cannot be scoped from the logs; only its writes are proven.")


def _impersonated(story: Story, t: Any, rng: Any, *, activity: str, category: str, operation_type: str,
                  target: dict[str, Any], ip: str) -> dict[str, Any]:
    """A directory audit record of a write by the Global Administrator, logged as the actor token shows it."""
    rec = directory.directory_audit(rng, t, activity=activity, category=category, operation_type=operation_type,
                                    initiator=story.users[story.admin], app=None, target=target)
    rec["initiatedBy"]["user"]["displayName"] = SERVICE
    rec["initiatedBy"]["user"]["ipAddress"] = ip
    return rec


def actor_address(story: Story) -> str:
    """The intruder's address for Azure AD Graph: its own (unlisted) infrastructure."""
    return next(a.ip for a in story.actor_ips if not a.listed)


def write_days(story: Story) -> list[date]:
    """The two weekdays the intruder writes: early in the intrusion and near its end (inside sign-in coverage)."""
    rng = rng_for(story.seed, "actor-token-days")
    first = INTRUSION_START + timedelta(days=rng.randint(17, 19))
    last = INTRUSION_END - timedelta(days=rng.randint(1, 2))
    return [d if d.weekday() < 5 else d + timedelta(days=7 - d.weekday()) for d in (first, last)]


def _writes(story: Story, day: date, n: int) -> list[Event]:
    rng = rng_for(story.seed, "actor-token", day.isoformat())
    ip = actor_address(story)
    b = story.backup_app
    foothold = story.users[story.targets[-1]]
    plan: list[tuple[str, str, str, dict[str, Any]]] = []
    if n == 0:
        plan.append(("Add service principal credentials", "ApplicationManagement", "Update",
                     directory.object_target(b["spId"], b["name"], "ServicePrincipal",
                                             [("KeyDescription", "[]", f'["[KeyIdentifier={guid(rng)},'
                                                                       'KeyType=AsymmetricX509Cert,'
                                                                       'KeyUsage=Verify]"]')])))
        plan.append(("Add member to role", "RoleManagement", "Assign",
                     directory.user_target(foothold, [("Role.DisplayName", "", '"Global Administrator"')])))
    else:
        plan.append(("Update application – Certificates and secrets management", "ApplicationManagement", "Update",
                     directory.object_target(guid(rng), f"{story.org_name} HR Sync", "Application",
                                             [("KeyDescription", "[]", '["[KeyType=Password,KeyUsage=Verify]"]')])))
    events = []
    clock = 3 * 3600 + rng.randint(0, 3600)
    for activity, category, op_type, target in plan:
        clock += rng.randint(60, 600)
        t = utc(day, clock)
        rec = _impersonated(story, t, rng, activity=activity, category=category, operation_type=op_type,
                            target=target, ip=ip)
        meta = {"write": activity, "user": story.users[story.admin].upn, "initiator_display_name": SERVICE,
                "target": target.get("displayName") or target.get("userPrincipalName"), "ip": ip,
                "record_id": rec["id"]}
        events.append(Event(t, "directory", rec, meta))
    return events


def _decoys(story: Story, day: date) -> list[Event]:
    """Exchange Online PowerShell's own actor-token writes for an admin: groups, and a tenant feature."""
    rng = rng_for(story.seed, "actor-token-decoy", day.isoformat())
    admin = story.users[story.admin]
    events: list[Event] = []
    if day.weekday() < 5 and rng.random() < 0.3:
        t = utc(day, 13 * 3600 + rng.randint(0, 4 * 3600))
        activity = rng.choice(EXO_POWERSHELL_GROUP_OPS)
        group = directory.object_target(guid(rng), f"{rng.choice(('Policy', 'Trade', 'Legal'))} team", "Group")
        events.append(Event(t, "directory", _impersonated(
            story, t, rng, activity=activity, category="GroupManagement", operation_type="Add",
            target=group, ip=admin.home_ip)))
    if day.day in (1, 15):
        t = utc(day, 10 * 3600 + rng.randint(0, 3600))
        events.append(Event(t, "directory", _impersonated(
            story, t, rng, activity="Set directory feature on tenant", category="DirectoryManagement",
            operation_type="Update", target=directory.object_target(story.tenant_id, story.org_name, "Other"),
            ip=admin.home_ip)))
    return events


def actor_day(story: Story, day: date, day_no: int, active: frozenset[date]) -> tuple[list[Event], int]:
    """The actor-token intruder's logged writes of ``day`` (and the decoys'), no unlogged reads counted."""
    days = write_days(story)
    events = _decoys(story, day)
    if day in days:
        events += _writes(story, day, days.index(day))
    return events, 0


def answer(story: Story, doc: dict[str, Any]) -> dict[str, Any]:
    """What the answer key says beyond the written records: the impersonated service, and what cannot be scoped."""
    return {"actor_token": {"service_display_name": SERVICE, "impersonated_user": story.users[story.admin].upn,
                            "actor_ip": actor_address(story), "mail_reads_scoped": False, "why": MAIL_READS},
            "decoys_extra": [{"kind": "exchange_powershell_groups", "description": "Exchange Online PowerShell "
                              "creates and fills groups with actor tokens: the service's name beside an admin's UPN "
                              "on group operations, and 'Set directory feature on tenant'. Not the intruder.",
                              "entities": {"upn": story.users[story.admin].upn, "service": SERVICE}}],
            # the token-forgery decoys that describe its reads (before coverage, the throttled mailbox's morning)
            "decoys_drop": ["pre_coverage_intrusion", "throttled_mailbox"]}
