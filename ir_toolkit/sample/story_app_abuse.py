"""The ``app-abuse`` story: an application given a secret and full_access_as_app reads mail (Midnight Blizzard).

Follows reference/anchors-2026-12.md section 1d. A password spray from residential proxies finds one IT
account without MFA; from the proxy it cracked the account on, the actor signs in to the Azure portal, adds a
client secret to a dormant legacy test application (``Update application – Certificates and secrets
management``), adds Exchange Online ``full_access_as_app`` to its required permissions (``Update application``)
and grants it (``Add app role assignment to service principal``). From then on, on its working days
(Monday-Friday 06:00-14:00 UTC, Moscow office hours), the application signs in with the secret from other proxies
(service-principal sign-ins Entra really issued) and reads the targeted mailboxes app-only over EWS
(MailItemsAccessed, ``Client=WebServices;ExchangeWebServices``).

The decoy: an internal journaling application reads two mailboxes every night from its own server; an
administrator rotates its secret from the office during the intrusion and it keeps reading from the same address.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from ir_toolkit.sample import directory, signins, ual
from ir_toolkit.sample.activity import OFFICE_IPS, Event, throttled, with_port
from ir_toolkit.sample.ids import guid, iso, pooled_message_id, rng_for, ual_time, utc
from ir_toolkit.sample.story import INTRUSION_END, Story, User

NAME = "app-abuse"
EWS = "Client=WebServices;ExchangeWebServices"
JOURNAL_EWS = "Client=WebServices;ExchangeServicesClient/15.00.0913.015;"
EXCHANGE, FULL_ACCESS = "00000002-0000-0ff1-ce00-000000000000", "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
PORTAL = ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal")
ARM = ("797f4846-ba00-4fd7-ba43-dac1f8f63013", "Windows Azure Service Management API")
SPRAY_APP = ("1b730954-1685-4b74-9bfd-dac224a7b894", "Azure Active Directory PowerShell")
BROWSER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
           "Safari/537.36")
JOURNAL_SERVER = "192.0.2.60"          # the journaling app's own server, in the office range
FOLDERS = ("\\Inbox", "\\Inbox", "\\Sent Items", "\\Inbox\\Board", "\\Archive")


@dataclass(frozen=True)
class Plot:
    """What the app-abuse intruder and the decoy do (decided once per seed)."""

    account: int                         # the sprayed IT account
    app: dict[str, str]                  # the abused legacy test application
    journal: dict[str, str]              # the decoy journaling application
    journal_mailboxes: tuple[int, ...]
    rotation_at: datetime                # the administrator rotates the journal app's secret
    proxies: tuple[str, ...]             # residential proxies; [0] cracked the account and made the changes
    spray_at: datetime
    days: tuple[date, ...]               # the days the application reads mail


def _app(rng: random.Random, name: str, tenant: str) -> dict[str, str]:
    return {"name": name, "appId": guid(rng), "spId": guid(rng), "objectId": guid(rng), "keyId": guid(rng),
            "ownerTenant": tenant}


@cache
def _plot_of(seed: int, users: int, org_name: str, tenant: str, targets: tuple[int, ...], pool: tuple[int, ...]
             ) -> Plot:
    rng = rng_for(seed, NAME)
    it = [i for i in range(1, users) if i % 8 == 5 and i not in targets]
    account = it[0] if it else next((i for i in pool if i not in targets), pool[0])
    start = date(2023, 6, 1) + timedelta(days=rng.randint(0, 4))
    while start.weekday() >= 5:
        start += timedelta(days=1)
    spray_at = utc(start, 4 * 3600 + rng.randint(0, 1800))
    hosts = rng.sample(range(100, 150), 4)
    proxies = (*(f"203.0.113.{h}" for h in hosts), f"2001:db8:ace:{rng.randint(1, 0xffff):x}::{rng.randint(2, 0xff):x}")
    days = []
    d = start
    while d <= INTRUSION_END:
        if d.weekday() < 5 and (d == start or rng.random() < 0.8):
            days.append(d)
        d += timedelta(days=1)
    rotation = date(2023, 6, 6) + timedelta(days=rng.randint(0, 2))
    others = [i for i in pool if i not in targets and i != account]
    return Plot(account=account, app=_app(rng, f"{org_name} Mail Test (legacy)", tenant),
                journal=_app(rng, f"{org_name} Journal Export", tenant), journal_mailboxes=tuple(sorted(others[:2])),
                rotation_at=utc(rotation, 15 * 3600 + rng.randint(0, 7200)), proxies=proxies, spray_at=spray_at,
                days=tuple(days))


def plot(story: Story) -> Plot:
    """The story's :class:`Plot` (the same for the same tenant)."""
    pool = tuple(i for i in range(1, len(story.users)) if i != story.traveller and i not in story.switchers)
    return _plot_of(story.seed, len(story.users), story.org_name, story.tenant_id, tuple(story.targets), pool)


def _actor(ip: str, kind: str, **more: Any) -> dict[str, Any]:
    """Answer-key meta of an actor record that reads no mail (a sign-in, a directory change)."""
    return {"mailbox": None, "ip": ip, "kind": kind, **more}


def _spray(story: Story, p: Plot) -> list[Event]:
    """Failed ROPC attempts against every account from the proxies; the IT account's password works."""
    rng = rng_for(story.seed, NAME, "spray")
    events: list[Event] = []
    t = p.spray_at
    order = [u for u in story.users if u.index != p.account]
    rng.shuffle(order)
    for n, user in enumerate([*order, story.users[p.account]]):
        t += timedelta(seconds=rng.randint(20, 90))
        cracked = user.index == p.account
        ip = p.proxies[0] if cracked else p.proxies[n % len(p.proxies)]
        error = None if cracked else (50126, "Error validating credentials due to invalid username or password.")
        rec = signins.user_signin(rng, t, user=user, tenant_id=story.tenant_id, app=SPRAY_APP, ip=ip,
                                  user_agent="python-requests/2.31.0", os_name="", browser="",
                                  session_id=guid(rng) if cracked else "", interactive=True, error=error,
                                  protocol="ropc", loc=signins.SPRAY_PLACE)
        rec["clientAppUsed"] = "Other clients"
        events.append(Event(t, "signin_interactive", rec, _actor(ip, "signin") if cracked else None))
    return events


def _change(rng: random.Random, t: datetime, activity: str, user: User, ip: str, target: dict[str, Any],
            app_id: str | None, actor: dict[str, Any] | None) -> Event:
    details = [("User-Agent", BROWSER)] + ([("AppId", app_id)] if app_id else [])
    rec = directory.directory_audit(rng, t, activity=activity, category="ApplicationManagement",
                                    operation_type="Update" if activity.startswith("Update") else "Add",
                                    initiator=user, app=None, target=target, details=details)
    rec["initiatedBy"]["user"]["ipAddress"] = ip
    return Event(t, "directory", rec, actor)


def _takeover(story: Story, p: Plot) -> list[Event]:
    """The portal sign-in from the cracking proxy, the secret, full_access_as_app requested and granted."""
    rng = rng_for(story.seed, NAME, "takeover")
    user, app, ip = story.users[p.account], p.app, p.proxies[0]
    t = p.spray_at + timedelta(minutes=40 + rng.randint(0, 20))
    rec = signins.user_signin(rng, t, user=user, tenant_id=story.tenant_id, app=PORTAL, ip=ip, user_agent=BROWSER,
                              os_name="Windows 10", browser="Chrome 120.0.0", session_id=guid(rng), interactive=True,
                              resource=ARM, loc=signins.SPRAY_PLACE)
    events = [Event(t, "signin_interactive", rec, _actor(ip, "signin"))]
    secret = (f"[{{\"KeyIdentifier\":\"{guid(rng)}\",\"KeyType\":\"Password\",\"KeyUsage\":\"Verify\","
              "\"DisplayName\":\"sync\"}]")
    required = (f"[{{\"ResourceAppId\":\"{EXCHANGE}\",\"RequiredAppPermissions\":[{{\"EntitlementId\":"
                f"\"{FULL_ACCESS}\",\"DirectAccessGrant\":false,\"ImpersonationAccessGrants\":[]}}]}}]")
    steps = (
        ("Update application – Certificates and secrets management", directory.object_target(
            app["objectId"], app["name"], "Application", [("KeyDescription", "[]", secret),
                                                          ("Included Updated Properties", "", "KeyDescription")]),
         app["appId"]),
        ("Update application", directory.object_target(
            app["objectId"], app["name"], "Application",
            [("RequiredResourceAccess", "[]", required),
             ("Included Updated Properties", "", "RequiredResourceAccess")]),
         app["appId"]),
        ("Add app role assignment to service principal", directory.object_target(
            guid(rng), "Office 365 Exchange Online", "ServicePrincipal",
            [("AppRole.Id", "", FULL_ACCESS), ("AppRole.Value", "", "full_access_as_app"),
             ("AppRole.DisplayName", "", "Use Exchange Web Services with full access to all mailboxes"),
             ("ServicePrincipal.ObjectID", "", app["spId"]), ("ServicePrincipal.DisplayName", "", app["name"]),
             ("ServicePrincipal.AppId", "", app["appId"])]), None),
    )
    for activity, target, app_id in steps:
        t += timedelta(seconds=rng.randint(40, 240))
        events.append(_change(rng, t, activity, user, ip, target, app_id, _actor(ip, "change", operation=activity)))
    return events


def _sp_signin(rng: random.Random, t: datetime, app: dict[str, str], tenant: str, ip: str) -> dict[str, Any]:
    rec = signins.sp_signin(rng, t, app=app, tenant_id=tenant, ip=ip, resource=signins.EXCHANGE)
    rec.update({"clientCredentialType": "clientSecret", "servicePrincipalCredentialThumbprint": ""})
    return rec


def _reads(story: Story, p: Plot, day: date, day_no: int) -> tuple[list[Event], int]:
    """One working day of the application: a sign-in per session, then app-only EWS reads of a few targets."""
    rng = rng_for(story.seed, NAME, "reads", day.isoformat())
    events: list[Event] = []
    unlogged = 0
    clock = 6 * 3600 + rng.randint(0, 3600)
    for mb in rng.sample(story.targets, rng.randint(2, len(story.targets))):
        ip = rng.choice(p.proxies[1:])
        t = utc(day, clock)
        sp = _sp_signin(rng, t, p.app, story.tenant_id, ip)
        events.append(Event(t, "signin_serviceprincipal", sp, _actor(ip, "signin", token=sp["uniqueTokenIdentifier"])))
        ctx = {"IssuedAtTime": ual_time(t), "UniqueTokenId": sp["uniqueTokenIdentifier"], "ClientAppId": p.app["appId"]}
        user, session = story.users[mb], guid(rng)
        plan: list[tuple[str, str, list[str]]] = [("Sync", "\\Inbox", [])] + [("Bind", rng.choice(FOLDERS), sorted({
            pooled_message_id(story.seed, mb, rng.randint(0, (day_no + 1) * 40)) for _ in range(rng.randint(3, 12))}))
            for _ in range(rng.randint(2, 6))]
        for access, folder, ids in plan:
            clock += rng.randint(30, 240)
            when = utc(day, clock)
            if access == "Bind" and throttled(story, mb, when):
                unlogged += 1
                continue
            rec = ual.mail_items_accessed(
                rng, when, org=story.tenant_id, org_name=story.domain, user_id=p.app["appId"], user_key=p.app["spId"],
                mailbox=user, app_id=p.app["appId"], client_app_id=p.app["appId"], client_ip=with_port(rng, ip),
                client_info=EWS, session_id=session, access=access, folders=[(folder, ids)], context=dict(ctx),
                user_type=5)
            events.append(Event(when, "ual", rec, {"mailbox": user.upn, "ip": ip, "user_agent": EWS,
                                                   "token": sp["uniqueTokenIdentifier"], "access": access,
                                                   "message_ids": ids, "session_id": session}))
        clock += rng.randint(900, 5400)
        if clock > 14 * 3600:
            break
    return events, unlogged


def _journal(story: Story, p: Plot, day: date, day_no: int) -> list[Event]:
    """The decoy: nightly app-only reads from the journal server; the secret rotated from the office once."""
    rng = rng_for(story.seed, NAME, "journal", day.isoformat())
    app = dict(p.journal)
    if day >= p.rotation_at.date():
        app["keyId"] = guid(rng_for(story.seed, NAME, "journal-key"))
    t = utc(day, 23 * 3600 + rng.randint(0, 600))
    sp = _sp_signin(rng, t, app, story.tenant_id, JOURNAL_SERVER)
    events = [Event(t, "signin_serviceprincipal", sp)]
    ctx = {"IssuedAtTime": ual_time(t), "UniqueTokenId": sp["uniqueTokenIdentifier"], "ClientAppId": app["appId"]}
    for k, mb in enumerate(p.journal_mailboxes):
        when = t + timedelta(seconds=60 + 30 * k + rng.randint(0, 20))
        ids = sorted({pooled_message_id(story.seed, mb, day_no * 40 + rng.randint(0, 39)) for _ in range(3)})
        events.append(Event(when, "ual", ual.mail_items_accessed(
            rng, when, org=story.tenant_id, org_name=story.domain, user_id=app["appId"], user_key=app["spId"],
            mailbox=story.users[mb], app_id=app["appId"], client_app_id=app["appId"],
            client_ip=JOURNAL_SERVER, client_info=JOURNAL_EWS, session_id=guid(rng), access="Bind",
            folders=[("\\Inbox", ids)], context=dict(ctx), user_type=5)))
    if day == p.rotation_at.date():
        admin = story.users[story.admin]
        target = directory.object_target(app["objectId"], app["name"], "Application", [
            ("KeyDescription", "[]", f"[{{\"KeyIdentifier\":\"{app['keyId']}\",\"KeyType\":\"Password\"}}]"),
            ("Included Updated Properties", "", "KeyDescription")])
        events.append(_change(rng, p.rotation_at, "Update application – Certificates and secrets management", admin,
                              OFFICE_IPS[0], target, app["appId"], None))
    return events


def app_abuse_day(story: Story, day: date, day_no: int, active: frozenset[date]) -> tuple[list[Event], int]:
    """The story's events of ``day`` (registry ``actor_day``): the decoy every day, the intruder on its days."""
    p = plot(story)
    events = _journal(story, p, day, day_no)
    unlogged = 0
    if day == p.spray_at.date():
        events += _spray(story, p) + _takeover(story, p)
    if day in p.days:
        reads, unlogged = _reads(story, p, day, day_no)
        events += reads
    return events, unlogged


def app_abuse_answer(story: Story, doc: dict[str, Any]) -> dict[str, Any]:
    """What the app-abuse story changes in answer_key.json (registry ``answer``): apps, tokens, plot, decoy."""
    p = plot(story)
    seen = bool(doc["compromised_mailboxes"])
    account = story.users[p.account].upn
    decoy = {"kind": "app_credential_rotation",
             "description": f"{p.journal['name']} reads {len(p.journal_mailboxes)} mailboxes app-only every night "
             f"from its own server ({JOURNAL_SERVER}); an administrator rotates its client secret from the office "
             f"({OFFICE_IPS[0]}) on {p.rotation_at.date().isoformat()} and it keeps reading from the same address: "
             "a credential change alone is not abuse.",
             "entities": {"app_id": p.journal["appId"], "name": p.journal["name"], "ips": [JOURNAL_SERVER],
                          "users": [story.users[i].upn for i in p.journal_mailboxes], "changed_at": iso(p.rotation_at),
                          "changed_from": OFFICE_IPS[0]}}
    return {
        "actor_apps": [{"app_id": p.app["appId"], "name": p.app["name"], "field": "AppId"}] if seen else [],
        "actor_tokens": [{**t, "issued_by_entra": True} for t in doc["actor_tokens"]],
        "actor_working_hours": "Monday-Friday 06:00-14:00 UTC",
        "app_abuse": {"app_id": p.app["appId"], "service_principal_id": p.app["spId"], "name": p.app["name"],
                      "compromised_account": account, "spray_at": iso(p.spray_at), "spray_ips": list(p.proxies),
                      "changes_from": p.proxies[0], "permission": "full_access_as_app (Exchange Online)"},
        "story_intro": "a Midnight Blizzard-style abused-application",
        "story_text": (f"A password spray from residential proxies at {iso(p.spray_at)} cracked {account}; from "
                       f"{p.proxies[0]} the actor signed in to the Azure portal, added a client secret to the dormant "
                       f"application {p.app['name']} and granted it Exchange full_access_as_app. From "
                       f"{doc['window']['first_malicious'] or '(not provable from these files)'} to "
                       f"{doc['window']['last_malicious'] or '(not provable)'} the application signed in with the "
                       "secret from other proxies (tokens Entra really issued) and read the targeted mailboxes "
                       "app-only over EWS, Monday to Friday 06:00-14:00 UTC. The abused application:"),
        "decoys": [*doc["decoys"], decoy],
    }
