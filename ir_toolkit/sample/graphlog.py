"""The ``--graph-activity`` variant: Microsoft Graph activity logs as diagnostic-settings storage blobs.

The tenant exported the category MicrosoftGraphActivityLogs to a storage account for the same 30 days the
sign-ins cover; the blobs are ``PT1H.json`` files (one Azure Monitor record per line, the request in
``properties``) under ``azure/insights-logs-microsoftgraphactivitylogs/resourceId=/TENANTS/{tenant}/PROVIDERS/
MICROSOFT.AADIAM/y=YYYY/m=MM/d=DD/h=HH/m=00/``. They hold:

* the tenant's ordinary Graph traffic: some of the users' hourly token refreshes also fetch a Microsoft Graph
  token (a companion non-interactive sign-in, resource Microsoft Graph) whose uniqueTokenIdentifier the
  following requests carry as SignInActivityId (one in eight with base64 ``==`` padding, as AADGraphActivityLogs
  values can carry);
* the actor's Graph reads of target mailboxes' messages, delegated, with a SignInActivityId no sign-in issued
  (a token forged each working day), from the actor's proxies, and one directory listing;
* the decoy: Microsoft Teams Services (a Microsoft first-party application) reading users' calendars app-only
  with tokens no sign-in in the tenant's logs issued.

Every random choice comes from generators seeded by the record or the day (``rng_for(seed, "graph", ...)``): the
variant consumes nothing of the generators the rest of the tenant uses, so without it the files are unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ir_toolkit.sample.activity import Event
from ir_toolkit.sample.ids import guid, rng_for, token_id, utc
from ir_toolkit.sample.signins import GRAPH
from ir_toolkit.sample.story import INTRUSION_END, Story
from ir_toolkit.sample.writers import compact

FOLDER = "azure/insights-logs-microsoftgraphactivitylogs"
FORGERY_STORY = "token-forgery"
GRAPH_URL = "https://graph.microsoft.com"
DECOY_APP = ("cc15fd57-2c6c-4117-a88c-83b1d56b4bbe", "Microsoft Teams Services")   # owner: Microsoft Services
DECOY_IPS = ("52.113.74.21", "52.114.32.6")        # Microsoft 365 endpoint set 11 (Teams): 52.112.0.0/14
ACTOR_AGENT = "python-requests/2.31.0"
USER_SCOPES = "Mail.ReadWrite Files.ReadWrite.All User.Read People.Read Calendars.ReadWrite"
SIGNIN_SHARE = 96                 # of 256: share of the users' token refreshes that also fetch a Graph token


def graph_message_id(seed: int, mailbox: int, n: int) -> str:
    """Graph (Exchange item) id of message ``n`` of mailbox ``mailbox``: ``AAMkA...`` base64url, stable per message."""
    h = hashlib.blake2b(f"{seed}|graph|{mailbox}|{n}".encode(), digest_size=48).digest()
    return "AAMkA" + base64.urlsafe_b64encode(h).decode().rstrip("=")


def _time7(t: datetime, salt: str) -> str:
    frac = int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=4).digest(), "big") % 10_000_000
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:07d}Z"


def request(story: Story, t: datetime, rid: str, *, uri: str, ip: str, app: str, token: str, issued: datetime,
            user_id: str = "", sp_id: str = "", scopes: str = "", roles: str = "", agent: str = "", session: str = "",
            status: int = 200, method: str = "GET") -> dict[str, Any]:
    """One MicrosoftGraphActivityLogs diagnostic record (``properties`` as the storage export writes it)."""
    h = hashlib.blake2b(rid.encode(), digest_size=8).digest()
    when = _time7(t, rid)
    tid = story.tenant_id
    return {
        "time": when, "resourceId": f"/tenants/{tid}/providers/Microsoft.aadiam",
        "operationName": "Microsoft Graph Activity", "operationVersion": "1.0",
        "category": "MicrosoftGraphActivityLogs", "tenantId": tid, "resultType": "", "resultSignature": "",
        "resultDescription": "", "durationMs": 0,
        "callerIpAddress": ip, "correlationId": rid, "identity": "", "Level": 4, "location": "US",
        "properties": {
            "timeGenerated": when, "location": "East US", "requestId": rid, "operationId": rid,
            "clientRequestId": rid, "apiVersion": uri.split("/")[1], "requestMethod": method,
            "responseStatusCode": status, "tenantId": tid, "durationMs": 40 + h[0] * 3,
            "responseSizeBytes": 600 + int.from_bytes(h[1:3], "big"), "signInActivityId": token, "roles": roles,
            "scopes": scopes, "ipAddress": ip, "userAgent": agent, "requestUri": GRAPH_URL + uri, "appId": app,
            "servicePrincipalId": sp_id, "userId": user_id, "wids": "", "atContent": "",
            "identityProvider": f"https://sts.windows.net/{tid}/", "tokenIssuedAt": _time7(issued, token),
            "clientAuthMethod": 2 if roles else 0, "c_sid": session}}


class GraphLog:
    """Builds the Graph activity events of each day and writes the hourly blobs.

    Args:
        out: The sample folder.
        story: The tenant's plan.
        active: The actor's working days.
    """

    def __init__(self, out: Path, story: Story, active: frozenset[date]) -> None:
        self.out, self.story, self.active = out, story, active
        self.start = story.signin_start
        self.lines: dict[datetime, list[tuple[str, str]]] = {}
        self.records = 0
        self.listed = False
        self.index_of = {u.id: u.index for u in story.users}

    # --- the writer seam of ir_toolkit.sample.make (add / close) ---
    def add(self, rec: dict[str, Any]) -> None:
        """Keep one record for its hour's blob."""
        t = datetime.fromisoformat(rec["time"][:19] + "+00:00")
        self.lines.setdefault(t.replace(minute=0, second=0), []).append((rec["time"], compact(rec)))
        self.records += 1

    def close(self) -> list[Path]:
        """Write every hour's ``PT1H.json`` (records in time order, one per line); returns the files."""
        files = []
        base = self.out / FOLDER / "resourceId=" / "TENANTS" / self.story.tenant_id.upper() / "PROVIDERS" / \
            "MICROSOFT.AADIAM"
        for hour in sorted(self.lines):
            path = base / f"y={hour:%Y}" / f"m={hour:%m}" / f"d={hour:%d}" / f"h={hour:%H}" / "m=00" / "PT1H.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(line + "\n" for _, line in sorted(self.lines[hour])), encoding="utf-8")
            files.append(path)
        return files

    # --- the day's events ---
    def day(self, day: date, events: list[Event]) -> list[Event]:
        """The Graph events of ``day`` (and the companion sign-ins of its ordinary traffic)."""
        out: list[Event] = []
        for ev in events:
            if ev.kind == "signin_noninteractive" and ev.time >= self.start and ev.rec.get("userId"):
                out += self._ordinary(ev)
        if utc(day, 86400) > self.start and day.weekday() < 5:
            out += self._decoy(day)
        if day in self.active and utc(day, 0) >= self.start and self.story.kind == FORGERY_STORY:
            out += self._actor(day)   # the token forger's Graph reads (other stories' intruders have their own)
        return [e for e in out if e.time < self.story.collected_at]

    def _ordinary(self, ev: Event) -> list[Event]:
        rec = ev.rec
        if hashlib.blake2b(rec["id"].encode(), digest_size=1).digest()[0] >= SIGNIN_SHARE:
            return []
        rng = rng_for(self.story.seed, "graph", rec["id"])
        t = ev.time + timedelta(seconds=2)
        companion = json.loads(json.dumps(rec))
        companion.update({"id": guid(rng), "createdDateTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "correlationId": guid(rng), "originalRequestId": guid(rng), "resourceId": GRAPH[0],
                          "resourceDisplayName": GRAPH[1], "uniqueTokenIdentifier": token_id(rng)})
        out = [Event(t, "signin_noninteractive", companion)]
        uti = companion["uniqueTokenIdentifier"]
        logged = uti + "==" if rng.random() < 0.125 else uti
        uid = rec["userId"]
        mine = self.index_of.get(uid, 0)
        colleague = self.story.users[rng.randrange(len(self.story.users))].upn
        uris = ["/v1.0/me", "/v1.0/me/photo/$value", "/v1.0/me/messages?$top=20&$select=subject,from",
                f"/v1.0/me/messages/{graph_message_id(self.story.seed, mine, rng.randint(0, 400))}",
                "/v1.0/me/drive/recent", f"/v1.0/users/{colleague}/photo/$value",
                "/beta/me/mailFolders/inbox/messages?$top=10"]
        for _ in range(rng.randint(1, 3)):
            when = t + timedelta(seconds=rng.randint(5, 3000))
            rid = guid(rng)
            out.append(Event(when, "graph_activity", request(
                self.story, when, rid, uri=rng.choice(uris), ip=rec["ipAddress"], app=rec["appId"], token=logged,
                issued=t, user_id=uid, scopes=USER_SCOPES, agent=rec["userAgent"], session=rec["sessionId"])))
        return out

    def _decoy(self, day: date) -> list[Event]:
        rng = rng_for(self.story.seed, "graph-decoy", day.isoformat())
        others = [u for u in self.story.users if u.index not in self.story.targets]
        sp_id = guid(rng_for(self.story.seed, "graph-decoy-sp"))
        out = []
        for _ in range(rng.randint(3, 6)):
            t = utc(day, rng.randint(6 * 3600, 20 * 3600))
            if t < self.start:
                continue
            user = rng.choice(others)
            rid = guid(rng)
            uri = rng.choice((f"/v1.0/users/{user.id}/calendarView?startDateTime={day.isoformat()}T00:00:00Z"
                              f"&endDateTime={day.isoformat()}T23:59:59Z",
                              f"/beta/communications/presences/{user.id}"))
            out.append(Event(t, "graph_activity", request(
                self.story, t, rid, uri=uri, ip=rng.choice(DECOY_IPS), app=DECOY_APP[0], token=token_id(rng),
                issued=t - timedelta(minutes=rng.randint(1, 50)), sp_id=sp_id, user_id="",
                roles="Calendars.Read Presence.Read.All")))
        return out

    def _actor(self, day: date) -> list[Event]:
        s = self.story
        rng = rng_for(s.seed, "graph-actor", day.isoformat())
        ips = [a.ip for a in s.actor_ips if a.first_day <= day <= a.last_day]
        uti = token_id(rng)
        clock = utc(day, rng.randint(5 * 3600, 7 * 3600))
        issued = clock - timedelta(seconds=rng.randint(60, 600))
        out: list[Event] = []

        def add(uri: str, mailbox: str | None, message: str | None, ip: str, user_id: str) -> None:
            nonlocal clock
            clock += timedelta(seconds=rng.randint(2, 40))
            meta = {"mailbox": mailbox, "ip": ip, "token": uti, "issued_at": issued, "user_agent": ACTOR_AGENT,
                    "message_id": message, "kind": "mail" if mailbox else "directory"}
            out.append(Event(clock, "graph_activity", request(
                s, clock, guid(rng), uri=uri, ip=ip, app=s.actor_app[0], token=uti, issued=issued, user_id=user_id,
                scopes="Mail.Read User.Read User.ReadBasic.All", agent=ACTOR_AGENT), meta))

        first_target = s.users[s.targets[0]]
        if not self.listed:
            self.listed = True   # days run newest first: the listing is on the last working day
            add("/v1.0/users?$select=displayName,mail,jobTitle&$top=999", None, None, rng.choice(ips),
                first_target.id)
        for mb in sorted(rng.sample(s.targets, rng.randint(1, min(2, len(s.targets))))):
            user, ip = s.users[mb], rng.choice(ips)
            add(f"/v1.0/users/{user.id}/mailFolders/inbox/messages?$top=25&$select=subject,from,receivedDateTime",
                user.upn, None, ip, user.id)
            for _ in range(rng.randint(2, 5)):
                gid = graph_message_id(s.seed, mb, rng.randint(0, 30 * (INTRUSION_END - day).days + 60))
                tail = "/attachments" if rng.random() < 0.2 else ""
                add(f"/v1.0/users/{user.upn}/messages/{gid}{tail}", user.upn, gid, ip, user.id)
        return out
