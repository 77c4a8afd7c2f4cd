"""The actor covering its tracks, and ordinary users tidying their own mail (the decoy).

On one or two of its working days the actor, inside one of its Exchange sessions (same ``SessionId``, same
forged token in ``AppAccessContext``, same proxy address, AppId / ClientAppId and client string), deletes the
security notifications that could give it away (``MoveToDeletedItems``, then ``SoftDelete``, one
``HardDelete``; ExchangeItemGroup records, RecordType 3) and, the first time, creates an inbox rule that
hides future ones (``New-InboxRule``, ExchangeAdmin, RecordType 1). Every random choice here comes from its
own seeded generator (``rng_for(seed, "coverup", ...)``), so adding these records leaves every other record
of the tenant byte-for-byte as it was.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from ir_toolkit.sample import ual
from ir_toolkit.sample.activity import OFFICE_IPS, SUBJECTS, Event, client_of, with_port
from ir_toolkit.sample.ids import guid, iso, pooled_message_id, rng_for, utc
from ir_toolkit.sample.story import INTRUSION_END, INTRUSION_START, Story

NOTIFICATIONS = ("Security alert: unusual sign-in activity on your account",
                 "Microsoft 365 security: suspicious mailbox access detected",
                 "IT Security: please confirm a recent sign-in from a new location",
                 "Alert: a new inbox rule was created on your mailbox",
                 "Security notice: email received but missing from your inbox")
RULE_NAMES = (".", "..", "RSS", "Junk filter")
RULE_WORDS = "security;alert;sign-in;suspicious"
DELETED, RECOVERABLE = "\\Deleted Items", "\\Recoverable Items\\Deletions"
MESSAGE_POOL = 300_000          # message numbering of the security notifications (apart from ordinary mail)


def coverup_days(story: Story, active: frozenset[date]) -> list[date]:
    """One or two of the actor's working days (never its first or last, nor the throttle follow-up)."""
    rng = rng_for(story.seed, "coverup")
    follow_up = story.throttle_at.date() + timedelta(days=1)
    pool = sorted(d for d in active if d not in (INTRUSION_START, INTRUSION_END, follow_up))
    return sorted(rng.sample(pool, min(len(pool), rng.randint(1, 2))))


def coverup_day(story: Story, day: date, days: list[date], actor: list[Event]) -> list[Event]:
    """The cover-up records of ``day`` (empty unless ``day`` is in ``days``), inside one of ``actor``'s sessions.

    Each event's ``actor`` meta is ``{"cover_up": entry}``, ``entry`` being the answer key's cover_up row.
    """
    if day not in days or not actor:
        return []
    rng = rng_for(story.seed, "coverup", day.isoformat())
    sessions: dict[str, list[Event]] = {}
    for ev in actor:
        if ev.actor is not None and "session_id" in ev.actor:
            sessions.setdefault(ev.actor["session_id"], []).append(ev)
    if not sessions:
        return []
    reads = sessions[rng.choice(sorted(sessions))]
    first = min(reads, key=lambda e: e.time)
    meta = first.actor
    assert meta is not None
    user = next(u for u in story.users if u.upn == meta["mailbox"])
    last = max(e.time for e in reads)
    t = min(last + timedelta(seconds=rng.randint(30, 90)), utc(day, 9 * 3600 - 240))
    ids = sorted({pooled_message_id(story.seed, MESSAGE_POOL + user.index,
                                    (day - story.first_day).days * 10 + rng.randint(0, 9))
                  for _ in range(rng.randint(2, 4))})
    subjects = {m: rng.choice(NOTIFICATIONS) for m in ids}
    common: dict[str, Any] = {"org": story.tenant_id, "org_name": story.domain, "user": user,
                              "client_info": meta["user_agent"], "app_id": story.actor_app[0],
                              "client_app_id": story.actor_client_app[0], "session_id": meta["session_id"]}
    ctx = first.rec.get("AppAccessContext")
    steps = [("MoveToDeletedItems", "\\Inbox", ids, DELETED), ("SoftDelete", DELETED, ids, None),
             ("HardDelete", RECOVERABLE, ids[:1], None)]
    events: list[Event] = []
    for op, folder, which, dest in steps:
        t += timedelta(seconds=rng.randint(3, 20))
        parent = RECOVERABLE if op == "HardDelete" else folder
        rec = ual.exchange_item_group(
            rng, t, op, client_ip=with_port(rng, meta["ip"], 0.5), context=dict(ctx) if ctx else None,
            folder=folder, items=[(m, subjects[m], parent) for m in which], dest_folder=dest, **common)
        events.append(Event(t, "ual", rec, {"cover_up": _entry(user.upn, op, t, which, None, meta)}))
    if day == days[0]:
        t += timedelta(seconds=rng.randint(20, 60))
        name = rng.choice(RULE_NAMES)
        hide = [("MoveToFolder", "RSS Subscriptions")] if rng.random() < 0.5 else [("DeleteMessage", "True")]
        params = [("AlwaysDeleteOutlookRulesBlob", "False"), ("Force", "False"), ("Name", name),
                  ("SubjectOrBodyContainsWords", RULE_WORDS), ("From", f"security@{story.domain}"), *hide,
                  ("MarkAsRead", "True"), ("StopProcessingRules", "True")]
        rec = ual.exchange_admin(
            rng, t, "New-InboxRule", org=story.tenant_id, org_name=story.domain, user=user,
            ip=with_port(rng, meta["ip"], 1), object_id=f"{user.upn}\\{name}", parameters=params,
            app_id=story.actor_app[0], session_id=meta["session_id"], client_app_id=story.actor_client_app[0],
            context=dict(ctx) if ctx else None)
        events.append(Event(t, "ual", rec, {"cover_up": _entry(user.upn, "New-InboxRule", t, [], name, meta)}))
    return events


def _entry(mailbox: str, op: str, t: datetime, ids: list[str], rule: str | None,
           meta: dict[str, Any]) -> dict[str, Any]:
    return {"mailbox": mailbox, "operation": op, "time": iso(t), "message_ids": list(ids), "rule": rule,
            "exchange_session_id": meta["session_id"], "ip": meta["ip"]}


def own_deletes_day(story: Story, day: date, day_no: int) -> list[Event]:
    """Ordinary users deleting their own mail from their own clients and addresses (weekdays, working hours)."""
    if day.weekday() >= 5:
        return []
    rng = rng_for(story.seed, "own-deletes", day.isoformat())
    events: list[Event] = []
    for user in story.users:
        if rng.random() >= 0.15:
            continue
        away = user.index == story.traveller and story.travel_days[0] <= day <= story.travel_days[1]
        client = "new_client" if user.index in story.switchers and day >= story.switch_day else user.desktop
        _, app_id, client_app_id, info, *_ = client_of(story, client)
        ip = story.travel_ip if away else (rng.choice(OFFICE_IPS) if rng.random() < 0.6 else user.home_ip)
        t = utc(day, (2 if away else 14) * 3600 + rng.randint(0, 6 * 3600))
        ids = sorted({pooled_message_id(story.seed, user.index, day_no * 40 + rng.randint(0, 59))
                      for _ in range(rng.randint(1, 3))})
        session = guid(rng)
        steps: list[tuple[str, str, str | None]] = [("MoveToDeletedItems", "\\Inbox", DELETED)]
        if rng.random() < 0.4:
            steps.append(("SoftDelete", DELETED, None))
        for op, folder, dest in steps:
            t += timedelta(seconds=rng.randint(2, 600))
            events.append(Event(t, "ual", ual.exchange_item_group(
                rng, t, op, org=story.tenant_id, org_name=story.domain, user=user, client_ip=with_port(rng, ip),
                client_info=info, app_id=app_id, client_app_id=client_app_id, session_id=session, context=None,
                folder=folder, items=[(m, rng.choice(SUBJECTS), folder) for m in ids], dest_folder=dest)))
    return events
