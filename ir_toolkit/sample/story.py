"""The sample tenant's cast and plot: who works there, which apps read mail, and the intrusion.

:func:`build_story` turns (seed, users, days) into a :class:`Story`: a small, fully decided plan
(people, applications, addresses, dates, the actor's infrastructure and tokens, the decoys).
The day-by-day events are generated from it in :mod:`ir_toolkit.sample.activity`; nothing here
writes files. The calendar is the real one of Storm-0558: the intrusion runs from Monday
15 May 2023 to Wednesday 14 June 2023 and was detected on Friday 16 June 2023.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ir_toolkit.paths import reference_file
from ir_toolkit.sample.ids import guid, rng_for, sid, token_id

DETECTION_DAY = date(2023, 6, 16)
COLLECTED_AT = datetime(2023, 6, 16, 16, 0, tzinfo=UTC)   # when the responder pulled the logs
SIGNIN_RETENTION = timedelta(days=30)                     # Entra ID P1/P2 sign-in retention
INTRUSION_START = date(2023, 5, 15)
INTRUSION_END = date(2023, 6, 14)
MIN_DAYS = 35          # the tenant must start before the intrusion (and before sign-in coverage)
MIN_USERS = 12         # enough people for targets, traveller, switchers and the busy mailbox

FIRST = ("Avery", "Blake", "Casey", "Dana", "Emerson", "Finley", "Gray", "Harper", "Jordan", "Kai", "Logan",
         "Morgan", "Noel", "Parker", "Quinn", "Reese", "Rowan", "Sage", "Taylor", "Wren", "Alex", "Jamie",
         "Robin", "Sasha", "Elliot", "Hayden", "Marlowe", "Skyler", "Tatum", "Lennox")
LAST = ("Abbott", "Barrera", "Castillo", "Delaney", "Ellison", "Fairchild", "Garrison", "Holloway", "Ingram",
        "Jennings", "Kowalski", "Lindqvist", "Mbeki", "Navarro", "Okafor", "Petrov", "Quintero", "Ramsey",
        "Sato", "Thornton", "Underwood", "Vance", "Whitaker", "Yilmaz", "Zimmer", "Achebe", "Brennan", "Cho")
COMPANIES = ("northwind-policy", "tailspin-trade", "fabrikam-energy", "litware-diplomacy", "adatum-advisory",
             "woodgrove-analytics", "wingtip-affairs", "proseware-strategy")
DEPARTMENTS = (("Policy", "Policy Analyst"), ("Trade", "Trade Negotiator"), ("Legal", "Counsel"),
               ("Finance", "Controller"), ("Communications", "Press Officer"), ("IT", "Systems Engineer"),
               ("Executive Office", "Chief of Staff"), ("Research", "Senior Researcher"))
TRAVEL = (("JP", "Tokyo", "Tokyo", 9), ("SG", "Singapore", "Singapore", 8), ("KR", "Seoul", "Seoul", 9),
          ("AU", "Sydney", "New South Wales", 10))
TRAVEL_RULE = "Travel bookings"     # the inbox rule the traveller creates abroad
NEW_CLIENTS = ("Nimbus Mail", "Comet Inbox", "Brightmail", "Spark Desk Mail")
BACKUP_APPS = ("KeepSafe Mail Archiver", "Vaultline Backup for Microsoft 365", "Journalix Compliance Archive")

# Real first-party application ids (data/reference/microsoft_first_party_apps.csv) that nobody in the
# sample tenant uses to read mail: the actor's forged tokens name one of these pairs.
ACTOR_APP_IDS = (("4345a7b9-9a63-4910-a426-35363201d503", "O365 Suite UX"),
                 ("00000006-0000-0ff1-ce00-000000000000", "Microsoft Office 365 Portal"),
                 ("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome"))
ACTOR_CLIENT_APP_IDS = (("3cf6df92-2745-4f6f-bbcf-19b59bcdb62a", "Office 365 Client Admin"),
                        ("9e4a5442-a5c9-4f6f-b03f-5b9fcaaf24b1", "OfficeServicesManager"))
ACTOR_USER_AGENTS = (  # storm-0558.md: REST client string, Chrome 92.0.4515.159, Edge 106.0.1370.52
    "Client=REST;Client=RESTSystem;;",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/92.0.4515.159 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/106.0.0.0 Safari/537.36 Edg/106.0.1370.52",
)


@dataclass
class User:
    """One member of the tenant (also the owner of one mailbox)."""

    index: int
    id: str
    upn: str
    given: str
    surname: str
    department: str
    job: str
    mailbox_guid: str
    owner_sid: str
    user_key: str
    home_ip: str
    desktop: str            # primary mail client: outlook_desktop | owa
    mobile: bool

    @property
    def display(self) -> str:
        return f"{self.given} {self.surname}"


@dataclass
class ActorToken:
    """A forged token: a UniqueTokenId Entra never issued, used for a stretch of days."""

    uti: str
    issued_at: datetime
    first_day: date
    last_day: date


@dataclass
class ActorIp:
    """An actor proxy address and the days it was in use."""

    ip: str
    first_day: date
    last_day: date
    listed: bool            # in data/reference/storm0558_iocs.csv


@dataclass
class Story:
    """Everything decided before a single event is generated."""

    seed: int
    domain: str
    tenant_id: str
    org_name: str
    first_day: date
    last_day: date
    collected_at: datetime
    signin_start: datetime
    users: list[User]
    targets: list[int]                      # user indexes of the actor's mailboxes
    busy: int                               # the busy (throttled) mailbox, also a target
    throttle_at: datetime                   # when its Bind logging was throttled (for 24 h)
    traveller: int
    travel: tuple[str, str, str, int]       # country, city, state, UTC offset hours
    travel_days: tuple[date, date]
    travel_ip: str
    switchers: list[int]
    switch_day: date
    spray_at: datetime
    spray_ips: list[str]
    backup_app: dict[str, str]              # appId, spId, objectId, name, keyId, ips (comma separated), ownerTenant
    new_client: dict[str, str]              # appId, spId, objectId, name, ownerTenant
    actor_app: tuple[str, str]
    actor_client_app: tuple[str, str]
    actor_ips: list[ActorIp]
    actor_tokens: list[ActorToken]
    admin: int = 0                          # user 0 is the Global Administrator
    kind: str = "token-forgery"             # the intruder's story (ir_toolkit.sample.stories.STORIES)

    def days(self) -> list[date]:
        """Every day of the tenant, oldest first."""
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]


def _softether_ips() -> list[tuple[str, date, date]]:
    """SoftEther proxies from the reference IOC list that were live during the intrusion."""
    out = []
    with reference_file("storm0558_iocs.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["description"] != "SoftEther proxy" or not row["first_seen"]:
                continue
            first = datetime.strptime(row["first_seen"], "%m/%d/%Y").date()
            last = datetime.strptime(row["last_seen"], "%m/%d/%Y").date()
            lo, hi = max(first, INTRUSION_START), min(last, INTRUSION_END)
            if (hi - lo).days >= 5:
                out.append((row["indicator"], lo, hi))
    return out


def _weekday_on_or_after(d: date) -> date:
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def build_story(seed: int, users: int, days: int) -> Story:
    """Decide the tenant and the intrusion for ``seed`` (``users`` people over ``days`` days)."""
    rng = rng_for(seed, "story")
    org = rng.choice(COMPANIES)
    domain = f"{org}.example"
    people: list[User] = []
    seen: set[str] = set()
    for i in range(users):
        given, surname = rng.choice(FIRST), rng.choice(LAST)
        upn = f"{given}.{surname}".lower()
        n = 2
        while upn in seen:
            upn, n = f"{given}.{surname}{n}".lower(), n + 1
        seen.add(upn)
        dept, job = DEPARTMENTS[i % len(DEPARTMENTS)] if i else ("IT", "Global Administrator")
        home = (f"198.51.100.{rng.randint(30, 199)}" if rng.random() < 0.6
                else f"2001:db8:1:{rng.randint(1, 4095):x}::{rng.randint(2, 255):x}")
        people.append(User(i, guid(rng), f"{upn}@{domain}", given, surname, dept, job, guid(rng), sid(rng),
                           f"1003{rng.getrandbits(48):012X}", home,
                           "outlook_desktop" if rng.random() < 0.65 else "owa", rng.random() < 0.6))
    pool = list(range(1, users))
    rng.shuffle(pool)
    n_targets = rng.randint(3, 5)
    targets = sorted(pool[:n_targets])
    busy = targets[0]
    traveller, switchers = pool[n_targets], sorted(pool[n_targets + 1:n_targets + 4])
    first_day = DETECTION_DAY - timedelta(days=days - 1)
    signin_start = COLLECTED_AT - SIGNIN_RETENTION

    # Throttled Bind logging: a delegate bulk-reads the busy mailbox one afternoon; the actor reads
    # it the next morning inside the 24 hours during which Bind records are not written.
    t_day = date(2023, 5, 30) + timedelta(days=rng.randint(0, 2))      # Tue-Thu, inside coverage
    throttle_at = datetime(t_day.year, t_day.month, t_day.day, 17, rng.randint(0, 50), rng.randint(0, 59), tzinfo=UTC)

    travel = rng.choice(TRAVEL)
    t_start = _weekday_on_or_after(date(2023, 5, 22) + timedelta(days=rng.randint(0, 10)))
    switch_day = _weekday_on_or_after(date(2023, 6, 1) + timedelta(days=rng.randint(0, 4)))
    spray_day = _weekday_on_or_after(date(2023, 5, 23) + timedelta(days=rng.randint(0, 12)))
    spray_at = datetime(spray_day.year, spray_day.month, spray_day.day, 2, rng.randint(0, 40), tzinfo=UTC)

    backup_name = rng.choice(BACKUP_APPS)
    backup = {"name": backup_name, "appId": guid(rng), "spId": guid(rng), "objectId": guid(rng), "keyId": guid(rng),
              "ips": ",".join(f"198.51.100.{200 + k}" for k in range(3)), "ownerTenant": guid(rng)}
    client_name = rng.choice(NEW_CLIENTS)
    new_client = {"name": client_name, "appId": guid(rng), "spId": guid(rng), "objectId": guid(rng),
                  "ownerTenant": guid(rng)}

    listed = _softether_ips()
    rng.shuffle(listed)
    actor_ips = [ActorIp(ip, lo, hi, True) for ip, lo, hi in sorted(listed[:rng.randint(1, 2)])]
    backbone = f"198.18.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
    actor_ips.append(ActorIp(backbone, INTRUSION_START, INTRUSION_END, False))
    mid = INTRUSION_START + timedelta(days=rng.randint(8, 14))
    actor_ips.append(ActorIp(f"198.19.{rng.randint(0, 255)}.{rng.randint(2, 254)}", mid, INTRUSION_END, False))
    v6 = f"2001:db8:{rng.randint(0x100, 0xfff):x}:{rng.randint(1, 0xffff):x}::{rng.randint(2, 0xff):x}"
    actor_ips.append(ActorIp(v6, INTRUSION_START + timedelta(days=3), mid, False))
    actor_ips.sort(key=lambda a: (a.first_day, a.ip))

    tokens = []
    day = INTRUSION_START
    while day <= INTRUSION_END:
        span = rng.randint(6, 9)
        issued = datetime(day.year, day.month, day.day, 0, rng.randint(0, 9), rng.randint(0, 59), tzinfo=UTC)
        tokens.append(ActorToken(token_id(rng), issued, day, min(day + timedelta(days=span - 1), INTRUSION_END)))
        day += timedelta(days=span)

    return Story(
        seed=seed, domain=domain, tenant_id=guid(rng), org_name=org.replace("-", " ").title(),
        first_day=first_day, last_day=DETECTION_DAY, collected_at=COLLECTED_AT, signin_start=signin_start,
        users=people, targets=targets, busy=busy, throttle_at=throttle_at,
        traveller=traveller, travel=travel, travel_days=(t_start, t_start + timedelta(days=4)),
        travel_ip=f"203.0.113.{rng.randint(10, 99)}", switchers=switchers, switch_day=switch_day,
        spray_at=spray_at, spray_ips=[f"203.0.113.{rng.randint(150, 250)}" for _ in range(3)],
        backup_app=backup, new_client=new_client,
        actor_app=rng.choice(ACTOR_APP_IDS), actor_client_app=rng.choice(ACTOR_CLIENT_APP_IDS),
        actor_ips=actor_ips, actor_tokens=tokens,
    )
