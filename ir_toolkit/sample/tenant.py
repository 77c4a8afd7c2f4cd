"""The tenant-wide parts of a day: the backup app, admins, the consent wave, the password spray.

:func:`tenant_day` assembles everything that happened on one day (people, services, the actor)
into one list of :class:`~ir_toolkit.sample.activity.Event`, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from ir_toolkit.sample import directory, signins, ual
from ir_toolkit.sample.activity import Event, busy_bulk, throttled, user_day, with_port
from ir_toolkit.sample.coverup import coverup_day, coverup_days, own_deletes_day
from ir_toolkit.sample.ids import guid, pooled_message_id, rng_for, ual_time, utc
from ir_toolkit.sample.stories import STORIES
from ir_toolkit.sample.story import TRAVEL_RULE, Story

REST = "Client=REST;Client=RESTSystem;;"
EWS = "Client=WebServices;ExchangeServicesClient/15.00.0913.015;"
SPRAY_APP = ("1b730954-1685-4b74-9bfd-dac224a7b894", "Azure Active Directory PowerShell")


def _backup_day(story: Story, day: date, day_no: int) -> list[Event]:
    """App-only nightly backup: an SP sign-in each hour, then Sync and Bind reads of every mailbox."""
    rng = rng_for(story.seed, day.isoformat(), "backup")
    app = story.backup_app
    ips = app["ips"].split(",")
    events: list[Event] = []
    tokens = []
    for hour in (1, 2, 3):
        t = utc(day, hour * 3600 + rng.randint(0, 240))
        rec = signins.sp_signin(rng, t, app=app, tenant_id=story.tenant_id, ip=ips[hour - 1])
        events.append(Event(t, "signin_serviceprincipal", rec))
        tokens.append((t, rec["uniqueTokenIdentifier"]))
    slot = 3 * 3600 / max(len(story.users), 1)
    for user in story.users:
        when = utc(day, 3600 + 300 + int(user.index * slot * 0.95))
        issued, uti = max(tk for tk in tokens if tk[0] <= when) if when >= tokens[0][0] else tokens[0]
        info = REST if rng.random() < 0.35 else EWS
        ctx = {"IssuedAtTime": ual_time(issued), "UniqueTokenId": uti, "ClientAppId": app["appId"]}
        plan: list[tuple[str, list[tuple[str, list[str]]]]] = [("Sync", [("\\Inbox", [])])]
        if rng.random() < 0.5:
            plan.append(("Sync", [("\\Sent Items", [])]))
        if rng.random() < 0.6:
            ids = {pooled_message_id(story.seed, user.index, day_no * 40 + rng.randint(0, 59))
                   for _ in range(rng.randint(1, 12))}
            plan.append(("Bind", [("\\Inbox", sorted(ids))]))
        for k, (access, folders) in enumerate(plan):
            t = when + timedelta(seconds=k * 7 + rng.randint(0, 5))
            if access == "Bind" and throttled(story, user.index, t):
                continue
            rec = ual.mail_items_accessed(
                rng, t, org=story.tenant_id, org_name=story.domain, user_id=app["appId"], user_key=app["spId"],
                mailbox=user, app_id=app["appId"], client_app_id=app["appId"],
                client_ip=with_port(rng, rng.choice(ips)),
                client_info=info, session_id=guid(rng), access=access, folders=folders, context=ctx, user_type=5)
            events.append(Event(t, "ual", rec))
    return events


def _admin_day(story: Story, day: date) -> list[Event]:
    """Routine directory changes by the IT admin, the consent wave on the switch day, an audit setting."""
    rng = rng_for(story.seed, day.isoformat(), "admin")
    admin = story.users[story.admin]
    events: list[Event] = []
    if day.weekday() < 5:
        for _ in range(rng.randint(0, 3)):
            t = utc(day, 14 * 3600 + rng.randint(0, 6 * 3600))
            target = rng.choice(story.users)
            activity = rng.choice(("Update user", "Add member to group", "Reset user password"))
            props = ([("Department", f'["{target.department}"]', f'["{target.department}"]')]
                     if activity == "Update user" else [])
            op_type = "Assign" if activity == "Add member to group" else "Update"
            events.append(Event(t, "directory", directory.directory_audit(
                rng, t, activity=activity, category="UserManagement", operation_type=op_type,
                initiator=admin, app=None, target=directory.user_target(target, props))))
        if rng.random() < 0.15:
            t = utc(day, 15 * 3600 + rng.randint(0, 3 * 3600))
            target = rng.choice(story.users)
            events.append(Event(t, "ual", ual.exchange_admin(
                rng, t, "Set-Mailbox", org=story.tenant_id, org_name=story.domain, user=admin, ip="192.0.2.10",
                object_id=target.upn, app_id="fb78d390-0c51-40cd-8e17-fdbfab77341b",
                parameters=[("Identity", target.mailbox_guid), ("AuditLogAgeLimit", "365.00:00:00")])))
    if day == story.travel_days[0] + timedelta(days=1):
        # The traveller files mail into a folder while abroad: an inbox rule from a new country (legitimate).
        user = story.users[story.traveller]
        t = utc(day, 2 * 3600 + rng.randint(0, 3600))
        events.append(Event(t, "ual", ual.exchange_admin(
            rng, t, "New-InboxRule", org=story.tenant_id, org_name=story.domain, user=user,
            ip=with_port(rng, story.travel_ip, 1), object_id=f"{user.upn}\\{TRAVEL_RULE}",
            app_id="00000002-0000-0ff1-ce00-000000000000",
            parameters=[("Name", TRAVEL_RULE), ("SubjectContainsWords", "itinerary;booking"),
                        ("MoveToFolder", "Travel"), ("StopProcessingRules", "False")])))
    if day == story.switch_day:
        c = story.new_client
        for n, i in enumerate(story.switchers):
            user = story.users[i]
            t = utc(day, 13 * 3600 + 600 + n * 1700 + rng.randint(0, 600))
            props = [("ConsentContext.IsAdminConsent", "", "False"), ("ConsentAction.Permissions", "",
                      "[] => [[Scope: openid profile offline_access Mail.ReadWrite Mail.Send User.Read]]")]
            if n == 0:
                events.append(Event(t - timedelta(seconds=3), "directory", directory.directory_audit(
                    rng, t - timedelta(seconds=3), activity="Add service principal", category="ApplicationManagement",
                    operation_type="Add", initiator=user, app=None,
                    target=directory.object_target(c["spId"], c["name"], "ServicePrincipal"))))
            events.append(Event(t, "directory", directory.directory_audit(
                rng, t, activity="Consent to application", category="ApplicationManagement", operation_type="Assign",
                initiator=user, app=None,
                target=directory.object_target(c["spId"], c["name"], "ServicePrincipal", props))))
    return events


def _spray(story: Story) -> list[Event]:
    """A failed password spray: one or two ROPC attempts per user from three addresses abroad."""
    rng = rng_for(story.seed, "spray")
    events: list[Event] = []
    t = story.spray_at
    order = list(story.users)
    rng.shuffle(order)
    for n, user in enumerate(order):
        for _ in range(1 if rng.random() < 0.7 else 2):
            t += timedelta(seconds=rng.randint(4, 25))
            code = (50053, "Account is locked because user tried to sign in too many times with an incorrect user ID "
                    "or password.") if n % 9 == 8 else (50126, "Error validating credentials due to invalid username "
                                                        "or password.")
            ip = story.spray_ips[n % len(story.spray_ips)]
            rec = signins.user_signin(rng, t, user=user, tenant_id=story.tenant_id, app=SPRAY_APP, ip=ip,
                                      user_agent="python-requests/2.28.2", os_name="", browser="", session_id="",
                                      interactive=True, error=code, protocol="ropc", loc=signins.SPRAY_PLACE)
            rec["clientAppUsed"] = "Other clients"
            events.append(Event(t, "signin_interactive", rec))
            events.append(Event(t, "ual", ual.sts_logon(rng, t, org=story.tenant_id, user=user, ip=ip,
                                                        user_agent="python-requests/2.28.2", app_id=SPRAY_APP[0],
                                                        error=code[0])))
    return events


def tenant_day(story: Story, day: date, active: frozenset[date], cover_days: list[date] | None = None,
               extra: Sequence[Event] = ()) -> tuple[list[Event], int]:
    """Every event of ``day`` sorted newest first, and the actor's unlogged (throttled) Bind reads that day.

    Args:
        story: The tenant's plan.
        day: The day to generate.
        active: The actor's working days (:func:`ir_toolkit.sample.actor.active_days`).
        cover_days: The actor's cover-up days (default :func:`ir_toolkit.sample.coverup.coverup_days`).
        extra: More events of the day (evidence variants), sorted in with the rest.
    """
    day_no = (day - story.first_day).days
    events: list[Event] = []
    for user in story.users:
        events += user_day(story, user, day, day_no)
    events += _backup_day(story, day, day_no)
    events += _admin_day(story, day)
    if day == story.throttle_at.date():
        events += busy_bulk(story, day_no)
    if day == story.spray_at.date():
        events += _spray(story)
    plot = STORIES[story.kind]
    actor, unlogged = plot["actor_day"](story, day, day_no, active)
    events += actor
    if plot["cover_up"]:
        events += coverup_day(story, day, coverup_days(story, active) if cover_days is None else cover_days, actor)
    events += own_deletes_day(story, day, day_no)
    events += extra
    events = [e for e in events if e.time < story.collected_at]
    events.sort(key=lambda e: (e.time, _rid(e)), reverse=True)
    return events, unlogged


def _rid(e: Event) -> str:
    return str(e.rec.get("id") or e.rec.get("Id"))
