"""The shared-VPN variant: one commercial VPN exit used by the actor and by a legitimate user.

The actor adds a commercial VPN egress address to its proxies on a few working days; a legitimate user
(not a target, not the traveller) signs in through the same address on some evenings, tokens issued by
Entra, and reads their own mailbox. Attribution by address alone then fails: the responder has to
separate the two by token (issued or not), application and mailbox. All choices come from generators
seeded ``rng_for(seed, "shared-vpn", ...)``, so the rest of the tenant is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ir_toolkit.sample import signins
from ir_toolkit.sample.activity import CLIENTS, Event, session
from ir_toolkit.sample.actor import mailbox_reads
from ir_toolkit.sample.ids import guid, rng_for, utc
from ir_toolkit.sample.story import Story

# Exit location and ASN of the VPN (9009 is M247, a hosting network commercial VPNs rent exits from).
VPN_PLACE = ("Zurich", "Zurich", "CH", 47.37, 8.54, 9009)


@dataclass(frozen=True)
class VpnPlan:
    """The VPN address, its legitimate user, and the days each side uses it."""

    ip: str
    user: int
    user_days: tuple[date, ...]
    actor_days: tuple[date, ...]


def vpn_plan(story: Story, active: frozenset[date]) -> VpnPlan:
    """Decide the shared address (203.0.113.100-149, unused elsewhere), its user and the days."""
    rng = rng_for(story.seed, "shared-vpn")
    taken = {story.admin, story.traveller, story.busy, *story.targets, *story.switchers}
    user = rng.choice([u.index for u in story.users if u.index not in taken])
    ip = f"203.0.113.{rng.randint(100, 149)}"
    covered = sorted(d for d in active if d > story.signin_start.date())
    actor_days = sorted(rng.sample(covered, min(len(covered), rng.randint(3, 4))))
    n = (story.last_day - story.signin_start.date()).days
    weekdays = [d for d in (story.signin_start.date() + timedelta(days=i) for i in range(1, n))
                if d.weekday() < 5 and d not in actor_days]
    user_days = sorted({*rng.sample(actor_days, min(2, len(actor_days))), *rng.sample(weekdays, 2)})
    return VpnPlan(ip, user, tuple(user_days), tuple(actor_days))


def vpn_day(story: Story, plan: VpnPlan, day: date, day_no: int) -> tuple[list[Event], int]:
    """The VPN events of ``day`` (the legitimate user's sessions, the actor's reads) and unlogged actor Binds."""
    events: list[Event] = []
    unlogged = 0
    if day in plan.user_days:
        rng = rng_for(story.seed, "shared-vpn", "user", day.isoformat())
        user = story.users[plan.user]
        app, *_, ua, os_name, browser = CLIENTS["owa"]
        start = rng.randint(1800, 2 * 3600)                  # evening at home, US Eastern: 20:30-22:00
        t = utc(day, start - 30)
        rec = signins.user_signin(rng, t, user=user, tenant_id=story.tenant_id, app=app, ip=plan.ip, user_agent=ua,
                                  os_name=os_name, browser=browser, session_id=guid(rng), interactive=True,
                                  loc=VPN_PLACE, protocol="oAuth2")
        events.append(Event(t, "signin_interactive", rec))
        events += session(story, rng, user, day, "owa", start, rng.randint(2, 3), plan.ip, VPN_PLACE, day_no)
    if day in plan.actor_days:
        rng = rng_for(story.seed, "shared-vpn", "actor", day.isoformat())
        token = next(t for t in story.actor_tokens if t.first_day <= day <= t.last_day)
        follow_up = story.throttle_at.date() + timedelta(days=1)
        mb = rng.choice(story.targets)
        reads, unlogged, _ = mailbox_reads(story, rng, day, day_no, mb, plan.ip, token,
                                           rng.randint(3 * 3600, 5 * 3600), follow_up)
        events += reads
    return events, unlogged
