"""The intruder's days: forged tokens, scripted REST reads in Bind bursts, a few proxies.

Follows reference/storm-0558.md: no sign-in ever issues the actor's tokens (their UniqueTokenIds
exist nowhere in Entra), the actor works Monday-Friday 00:00-09:00 UTC, reads a few targeted
mailboxes in ~2-minute Bind groups (several InternetMessageIds each) and syncs some folders,
through a handful of proxy addresses, with an AppId / ClientAppId pair no one else uses.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from ir_toolkit.sample import ual
from ir_toolkit.sample.activity import Event, throttled, with_port
from ir_toolkit.sample.ids import guid, pooled_message_id, rng_for, ual_time, utc
from ir_toolkit.sample.story import ACTOR_USER_AGENTS, INTRUSION_END, INTRUSION_START, ActorToken, Story

ACTOR_FOLDERS = ("\\Inbox", "\\Inbox", "\\Sent Items", "\\Inbox\\Negotiations", "\\Archive")


def active_days(story: Story) -> list[date]:
    """The weekdays the actor worked (first and last day of the intrusion always, the throttle follow-up too)."""
    out = []
    day = INTRUSION_START
    follow_up = story.throttle_at.date() + timedelta(days=1)
    while day <= INTRUSION_END:
        if day.weekday() < 5:
            rng = rng_for(story.seed, "actor-active", day.isoformat())
            if day in (INTRUSION_START, INTRUSION_END, follow_up) or rng.random() < 0.75:
                out.append(day)
        day += timedelta(days=1)
    return out


def actor_day(story: Story, day: date, day_no: int, active: frozenset[date]) -> tuple[list[Event], int]:
    """The actor's logged events of ``day`` and the number of its Bind reads that throttling left unlogged.

    Args:
        story: The tenant's plan.
        day: The day to generate.
        day_no: Days since the tenant's first day (message numbering).
        active: :func:`active_days` of the story.
    """
    if day not in active:
        return [], 0
    rng = rng_for(story.seed, "actor", day.isoformat())
    token = next(t for t in story.actor_tokens if t.first_day <= day <= t.last_day)
    ips = [a for a in story.actor_ips if a.first_day <= day <= a.last_day]
    follow_up = story.throttle_at.date() + timedelta(days=1)
    k = rng.randint(1, min(3, len(story.targets)))
    mailboxes = rng.sample(story.targets, k)
    if day == follow_up and story.busy not in mailboxes:
        mailboxes.insert(0, story.busy)
    events: list[Event] = []
    unlogged = 0
    clock = rng.randint(5 * 60, 60 * 60)                     # seconds after 00:00 UTC
    for mb in mailboxes:
        ip = rng.choice(ips).ip
        reads, missed, clock = mailbox_reads(story, rng, day, day_no, mb, ip, token, clock, follow_up)
        events += reads
        unlogged += missed
        clock += rng.randint(600, 3600)
    return events, unlogged


def mailbox_reads(story: Story, rng: random.Random, day: date, day_no: int, mb: int, ip: str, token: ActorToken,
                  clock: int, follow_up: date) -> tuple[list[Event], int, int]:
    """One Exchange session of the actor on mailbox ``mb`` from ``ip``, starting ``clock`` seconds after midnight.

    Returns the logged events, the Bind reads throttling left unlogged, and the clock after the last read.
    Each event's ``actor`` meta names the mailbox, address, user agent, token and Exchange ``session_id``.
    """
    user = story.users[mb]
    exch_session = guid(rng)
    ua = ACTOR_USER_AGENTS[0] if rng.random() < 0.7 else rng.choice(ACTOR_USER_AGENTS[1:])
    ctx = {"IssuedAtTime": ual_time(token.issued_at), "UniqueTokenId": token.uti}
    plan: list[tuple[str, list[tuple[str, list[str]]]]] = []
    if rng.random() < 0.4 or (day == follow_up and mb == story.busy):
        plan += [("Sync", [(f, [])]) for f in rng.sample(ACTOR_FOLDERS[1:], rng.randint(1, 3))]
    for _ in range(rng.randint(3, 9)):
        folder = rng.choice(ACTOR_FOLDERS)
        ids = {pooled_message_id(story.seed, mb, rng.randint(0, (day_no + 1) * 40))
               for _ in range(rng.randint(2, 10))}
        plan.append(("Bind", [(folder, sorted(ids))]))
    events: list[Event] = []
    unlogged = 0
    for access, folders in plan:
        clock += rng.randint(120, 300) if access == "Bind" else rng.randint(20, 90)   # one Bind group per 2 min
        if clock >= 9 * 3600 - 60:
            break
        when = utc(day, clock)
        if access == "Bind" and throttled(story, mb, when):
            unlogged += 1
            continue
        rec = ual.mail_items_accessed(
            rng, when, org=story.tenant_id, org_name=story.domain, user_id=user.upn, user_key=user.user_key,
            mailbox=user, app_id=story.actor_app[0], client_app_id=story.actor_client_app[0],
            client_ip=with_port(rng, ip, 0.5), client_info=ua, session_id=exch_session, access=access,
            folders=folders, context=dict(ctx))
        meta = {"mailbox": user.upn, "ip": ip, "user_agent": ua, "token": token.uti, "access": access,
                "message_ids": [m for _, ids in folders for m in ids] if access == "Bind" else [],
                "session_id": exch_session}
        events.append(Event(when, "ual", rec, meta))
    return events, unlogged, clock
