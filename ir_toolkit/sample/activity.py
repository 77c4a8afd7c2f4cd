"""One day of the tenant's legitimate life: people reading mail, the backup app, admins, a password spray.

:func:`tenant_day` returns the day's :class:`Event` list (unsorted). Each day is generated from
its own seeded generator, so days can be produced in any order (newest first, as Graph pages
are) with memory bounded by one day. The actor's events come from :mod:`ir_toolkit.sample.actor`.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from ir_toolkit.sample import signins, ual
from ir_toolkit.sample.ids import guid, pooled_message_id, rng_for, ual_time, utc
from ir_toolkit.sample.story import Story, User

FOLDERS = ("\\Inbox", "\\Inbox", "\\Inbox", "\\Sent Items", "\\Archive", "\\Inbox\\Projects", "\\Deleted Items")
SUBJECTS = ("Weekly sync notes", "Draft for review", "Re: Budget figures", "Travel approval", "Meeting moved",
            "Re: Re: Position paper", "Quarterly report", "Agenda for Thursday", "FW: Press enquiry")
OFFICE_IPS = ("192.0.2.10", "192.0.2.11", "192.0.2.12")
THROTTLE_BINDS = 1000          # Exchange stops Bind records after 1,000 in 24 h for a mailbox


class Event(NamedTuple):
    """One raw record: ``kind`` names the file family it goes to; ``actor`` is set on the actor's records."""

    time: datetime
    kind: str                  # signin_interactive | signin_noninteractive | signin_serviceprincipal | directory | ual
    rec: dict[str, Any]
    actor: dict[str, Any] | None = None


# name -> (sign-in app, mailbox AppId, ClientAppId, ClientInfoString, user agent, OS, browser)
CLIENTS: dict[str, tuple[tuple[str, str], str, str, str, str, str, str]] = {
    "outlook_desktop": (("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office"),
                        "d3590ed6-52b3-4102-aeff-aad2292ab01c", "", "Client=MSExchangeRPC",
                        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.16327; Pro)",
                        "Windows 10", "Rich Client 16.0.16327.20214"),
    "owa": (signins.EXCHANGE, "00000002-0000-0ff1-ce00-000000000000", "", "Client=OWA;Action=ViaProxy",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/113.0.0.0 "
            "Safari/537.36 Edg/113.0.1774.42", "Windows 10", "Edge 113.0.1774"),
    "mobile": (("27922004-5251-4030-b22d-91ecd9a37ea4", "Outlook Mobile"), "27922004-5251-4030-b22d-91ecd9a37ea4",
               "27922004-5251-4030-b22d-91ecd9a37ea4", "Client=OutlookService;Outlook-iOS/2.0;",
               "Outlook-iOS/709.2189947.prod.iphone (4.2318.0)", "Ios 16.5", "Rich Client 4.2318.0"),
}


def client_of(story: Story, name: str) -> tuple[tuple[str, str], str, str, str, str, str, str]:
    """The client tuple for ``name`` (``new_client`` is the story's newly adopted third-party mail app)."""
    if name == "new_client":
        app = story.new_client
        return ((app["appId"], app["name"]), app["appId"], app["appId"], "Client=REST;Client=RESTSystem;;",
                f"{app['name'].replace(' ', '')}/3.1.4 (Windows 10.0.19045)", "Windows 10", "Rich Client 3.1.4")
    return CLIENTS[name]


def with_port(rng: random.Random, ip: str, p: float = 0.3) -> str:
    """ClientIPAddress as UAL writes it: sometimes ``ip:port`` or ``[ipv6]:port``."""
    if rng.random() >= p:
        return ip
    return f"[{ip}]:{rng.randint(1024, 65535)}" if ":" in ip else f"{ip}:{rng.randint(1024, 65535)}"


def throttled(story: Story, mailbox: int, t: datetime) -> bool:
    """True while Bind records of ``mailbox`` are not written (24 h after its throttling)."""
    return mailbox == story.busy and story.throttle_at <= t < story.throttle_at + timedelta(hours=24)


def _mailbox_records(story: Story, rng: random.Random, user: User, t: datetime, client: str, ip: str,
                     token: dict[str, str] | None, day_no: int) -> list[Event]:
    _, app_id, client_app_id, info, *_ = client_of(story, client)
    out: list[tuple[str, list[tuple[str, list[str]]]]] = []
    exch_session = guid(rng)
    n_bind = rng.choice((0, 1, 1, 2, 2, 3)) if client != "mobile" else rng.choice((0, 1))
    if client == "outlook_desktop" and rng.random() < 0.5 or client == "mobile" and rng.random() < 0.3:
        out.append(("Sync", [(rng.choice(FOLDERS), [])]))
    for _ in range(n_bind):
        ids = [pooled_message_id(story.seed, user.index, day_no * 40 + rng.randint(0, 59))
               for _ in range(rng.randint(1, 4))]
        out.append(("Bind", [(rng.choice(FOLDERS[:4]), sorted(set(ids)))]))
    events = []
    for access, folders in out:
        when = t + timedelta(seconds=rng.randint(5, 3300))
        if access == "Bind" and throttled(story, user.index, when):
            continue
        ctx = token if token is not None and rng.random() < 0.92 else None
        rec = ual.mail_items_accessed(
            rng, when, org=story.tenant_id, org_name=story.domain, user_id=user.upn, user_key=user.user_key,
            mailbox=user, app_id=app_id, client_app_id=client_app_id, client_ip=with_port(rng, ip),
            client_info=info, session_id=exch_session, access=access, folders=folders, context=ctx)
        events.append(Event(when, "ual", rec))
    return events


def session(story: Story, rng: random.Random, user: User, day: date, client: str, start: float, hours: int,
            ip: str, loc: tuple[str, str, str, float, float, int] | None, day_no: int) -> list[Event]:
    """One client session of ``user``: sign-ins (an interactive one some days, a token refresh each hour) and the
    mailbox access each token allowed."""
    app, *_, ua, os_name, browser = client_of(story, client)
    week = day.isocalendar()
    session_id = guid(rng_for(story.seed, "session", user.index, client, week.year, week.week))
    events: list[Event] = []
    t = utc(day, start)
    owner = story.new_client["ownerTenant"] if client == "new_client" else None
    if rng.random() < (0.8 if day.weekday() == 0 else 0.3):
        rec = signins.user_signin(rng, t, user=user, tenant_id=story.tenant_id, app=app, ip=ip, user_agent=ua,
                                  os_name=os_name, browser=browser, session_id=session_id, interactive=True, loc=loc,
                                  protocol="oAuth2", owner=owner)
        events.append(Event(t, "signin_interactive", rec))
        events.append(Event(t + timedelta(seconds=1), "ual", ual.sts_logon(
            rng, t + timedelta(seconds=1), org=story.tenant_id, user=user, ip=ip, user_agent=ua, app_id=app[0])))
        if client == "outlook_desktop":
            events.append(Event(t + timedelta(seconds=20), "ual", ual.mailbox_item_op(
                rng, t + timedelta(seconds=20), "MailboxLogin", org=story.tenant_id, org_name=story.domain, user=user,
                ip=ip, client_info="Client=MSExchangeRPC", app_id=CLIENTS[client][1], session_id=guid(rng),
                context=None)))
    for h in range(hours):
        tt = t + timedelta(seconds=h * 3600 + rng.randint(60, 600))
        rec = signins.user_signin(rng, tt, user=user, tenant_id=story.tenant_id, app=app, ip=ip, user_agent=ua,
                                  os_name=os_name, browser=browser, session_id=session_id, interactive=False, loc=loc,
                                  owner=owner)
        events.append(Event(tt, "signin_noninteractive", rec))
        token = {"AADSessionId": session_id, "IssuedAtTime": ual_time(tt),
                 "UniqueTokenId": rec["uniqueTokenIdentifier"]}
        events.extend(_mailbox_records(story, rng, user, tt, client, ip, token, day_no))
    return events


def user_day(story: Story, user: User, day: date, day_no: int) -> list[Event]:
    rng = rng_for(story.seed, day.isoformat(), "user", user.index)
    weekday = day.weekday() < 5
    events: list[Event] = []
    away = user.index == story.traveller and story.travel_days[0] <= day <= story.travel_days[1]
    if away:
        country, city, state, offset = story.travel
        ip, start_h = story.travel_ip, 9 - offset
        lat, lon, asn = signins.ABROAD[country]
        loc: tuple[str, str, str, float, float, int] | None = (city, state, country, lat, lon, asn)
    else:
        ip = rng.choice(OFFICE_IPS) if weekday and rng.random() < 0.65 else user.home_ip
        start_h, loc = 13, None
    primary = user.desktop
    if user.index in story.switchers and day >= story.switch_day:
        primary = "new_client"
    if weekday or away:
        start = max(60, start_h * 3600 + rng.randint(-2400, 3600))
        events += session(story, rng, user, day, primary, start, rng.randint(6, 9), ip, loc, day_no)
        for _ in range(rng.randint(0, 3)):
            t = utc(day, start + rng.randint(600, 8 * 3600))
            item = {"Id": "RgAAAAA" + guid(rng).replace("-", "").upper(), "InternetMessageId":
                    pooled_message_id(story.seed, 100_000 + user.index, day_no * 10 + rng.randint(0, 9)),
                    "ParentFolder": {"Id": ual.folder_id(user.upn, "\\Sent Items"), "Path": "\\Sent Items"},
                    "SizeInBytes": rng.randint(8000, 900_000), "Subject": rng.choice(SUBJECTS)}
            events.append(Event(t, "ual", ual.mailbox_item_op(
                rng, t, "Send", org=story.tenant_id, org_name=story.domain, user=user, ip=with_port(rng, ip),
                client_info=client_of(story, primary)[3], app_id=client_of(story, primary)[1], session_id=guid(rng),
                context=None, item=item)))
        for _ in range(rng.randint(0, 3)):
            t = utc(day, start + rng.randint(600, 8 * 3600))
            site = f"https://{story.domain.split('.')[0]}.sharepoint.com/sites/{user.department.replace(' ', '')}"
            events.append(Event(t, "ual", ual.file_accessed(
                rng, t, org=story.tenant_id, user=user, ip=ip, user_agent=CLIENTS["outlook_desktop"][4], site=site,
                name=f"{rng.choice(('Brief', 'Minutes', 'Budget', 'Memo'))}-{rng.randint(100, 999)}.docx")))
        if rng.random() < 0.01:
            t = utc(day, start + rng.randint(600, 4 * 3600))
            events.append(Event(t, "ual", ual.exchange_admin(
                rng, t, "New-InboxRule", org=story.tenant_id, org_name=story.domain, user=user,
                ip=with_port(rng, ip, 1),
                object_id=f"{user.upn}\\Newsletters", app_id=CLIENTS["owa"][1],
                parameters=[("Name", "Newsletters"), ("From", "news@updates.example.org"),
                            ("MoveToFolder", "Newsletters"), ("StopProcessingRules", "True")])))
    if user.mobile and rng.random() < (0.7 if weekday else 0.3):
        events += session(story, rng, user, day, "mobile", rng.choice((0, 1, 2, 20)) * 3600 + rng.randint(0, 3000),
                           rng.randint(1, 2), user.home_ip if not away else ip, loc, day_no)
    return events


def busy_bulk(story: Story, day_no: int) -> list[Event]:
    """The afternoon the busy mailbox's owner bulk-reads a backlog in OWA until Bind logging is throttled."""
    rng = rng_for(story.seed, "throttle")
    user = story.users[story.busy]
    app, app_id, _, info, *_ = CLIENTS["owa"]
    start = story.throttle_at - timedelta(hours=3)
    events = []
    for i in range(THROTTLE_BINDS + 1):
        last = i == THROTTLE_BINDS
        when = story.throttle_at if last else start + timedelta(seconds=int(i * 3 * 3600 / THROTTLE_BINDS))
        ids = [pooled_message_id(story.seed, user.index, rng.randint(0, max(day_no, 1) * 40)) for _ in range(2)]
        rec = ual.mail_items_accessed(
            rng, when, org=story.tenant_id, org_name=story.domain, user_id=user.upn, user_key=user.user_key,
            mailbox=user, app_id=app_id, client_app_id="", client_ip=with_port(rng, OFFICE_IPS[0]), client_info=info,
            session_id=guid(rng), access="Bind", folders=[("\\Inbox", sorted(set(ids)))], context=None, throttled=last)
        events.append(Event(when, "ual", rec))
    return events
