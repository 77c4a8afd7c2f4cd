"""The answer key: what the actor really did, accumulated while the events stream out.

:class:`AnswerKey` sees every actor record once (``add``) and keeps only counters and the small
sets the key needs (distinct message ids per targeted mailbox), so memory stays bounded.
:func:`decoys` describes the hard parts planted in the tenant, with the entities involved.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ir_toolkit.sample.graphlog import DECOY_APP, DECOY_IPS
from ir_toolkit.sample.ids import iso
from ir_toolkit.sample.stories import STORIES
from ir_toolkit.sample.story import COLLECTED_AT, TRAVEL_RULE, Story


class AnswerKey:
    """Ground truth of the intrusion, built from the actor's logged records."""

    def __init__(self, story: Story) -> None:
        self.story = story
        self.mailboxes: dict[str, dict[str, Any]] = {}
        self.ips: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.agents: set[str] = set()
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.unlogged_binds = 0
        self.removed = 0                                   # actor records an evidence variant left unwritten
        self.cover_up: list[dict[str, Any]] = []
        self.own_deleters: set[str] = set()
        self.frontend_ips: set[str] = set()
        self.variant: dict[str, Any] = {"dropped": [], "gaps": [], "shared_vpn": False, "frontend_ips": False}
        self.vpn: tuple[str, str] | None = None            # (address, legitimate user's UPN) with --shared-vpn
        self.graph: dict[str, Any] | None = None            # with --graph-activity: what the Graph records prove
        self.writes: list[dict[str, Any]] = []             # the actor's written records of other kinds (directory)

    def add(self, t: datetime, meta: dict[str, Any]) -> None:
        """Count one logged actor record (``meta`` from :func:`ir_toolkit.sample.actor.actor_day`).

        A record that reads no mail (``meta["mailbox"]`` None: a sign-in, a directory change) counts towards the
        window, the addresses and (with ``meta["token"]``) the tokens only.
        """
        self.first = t if self.first is None or t < self.first else self.first
        self.last = t if self.last is None or t > self.last else self.last
        for table, key in ((self.ips, meta.get("ip")), (self.tokens, meta.get("token"))):
            if key is None:
                continue
            row = table.setdefault(key, {"first": t, "last": t, "events": 0})
            row["first"], row["last"] = min(row["first"], t), max(row["last"], t)
            row["events"] += 1
        if meta.get("mailbox") is None:
            if "write" in meta:  # a directory write the key lists (``actor_writes``, with its record_id)
                self.writes.append({"time": iso(t), "kind": "directory", **meta})
            return
        mb = self.mailboxes.setdefault(meta["mailbox"], {"first": t, "last": t, "events": 0, "ids": set(),
                                                         "bind": 0, "sync": 0})
        mb["first"], mb["last"] = min(mb["first"], t), max(mb["last"], t)
        mb["events"] += 1
        mb["bind" if meta["access"] == "Bind" else "sync"] += 1
        mb["ids"].update(meta["message_ids"])
        self.agents.add(meta["user_agent"])

    def add_graph(self, t: datetime, meta: dict[str, Any]) -> None:
        """Count one written actor Graph request (``meta`` from :mod:`ir_toolkit.sample.graphlog`)."""
        g: dict[str, Any] = self.graph if self.graph is not None else {"requests": 0, "directory_reads": 0,
                                                                       "tokens": {}}
        self.graph = g
        self.first = t if self.first is None or t < self.first else self.first
        self.last = t if self.last is None or t > self.last else self.last
        g["requests"] += 1
        if meta["mailbox"] is None:
            g["directory_reads"] += 1
        else:
            mb = self.mailboxes.setdefault(meta["mailbox"], {"first": t, "last": t, "events": 0, "ids": set(),
                                                             "bind": 0, "sync": 0})
            mb["first"], mb["last"] = min(mb["first"], t), max(mb["last"], t)
            mb["graph_requests"] = mb.get("graph_requests", 0) + 1
            mb.setdefault("graph_ids", set()).update([meta["message_id"]] if meta["message_id"] else [])
        tok = g["tokens"].setdefault(meta["token"], {"issued_at": meta["issued_at"], "first": t, "last": t,
                                                     "requests": 0})
        tok["first"], tok["last"] = min(tok["first"], t), max(tok["last"], t)
        tok["requests"] += 1
        row = self.ips.setdefault(meta["ip"], {"first": t, "last": t, "events": 0})
        row["first"], row["last"] = min(row["first"], t), max(row["last"], t)
        row["events"] += 1
        self.agents.add(meta["user_agent"])
    def add_cover_up(self, entry: dict[str, Any]) -> None:
        """Record one written cover-up record (``entry`` from :func:`ir_toolkit.sample.coverup.coverup_day`)."""
        self.cover_up.append(entry)

    def to_json(self, files: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """The answer_key.json document (contract fields of common.md plus detail)."""
        s = self.story
        busy = s.users[s.busy].upn
        listed = {a.ip: a.listed for a in s.actor_ips}
        issued = {t.uti: t.issued_at for t in s.actor_tokens}
        seen = bool(self.mailboxes)                # with the UAL dropped nothing about the actor is provable
        doc: dict[str, Any] = {
            "tenant": {"domain": s.domain, "tenant_id": s.tenant_id, "name": s.org_name, "seed": s.seed,
                       "users": len(s.users), "first_day": s.first_day.isoformat(), "last_day": s.last_day.isoformat(),
                       "collected_at": iso(COLLECTED_AT), **params},
            "window": {"first_malicious": iso(self.first) if self.first else None,
                       "last_malicious": iso(self.last) if self.last else None},
            "signin_coverage": {"start": iso(s.signin_start), "end": iso(s.collected_at)},
            "ual_coverage": {"start": iso(datetime(s.first_day.year, s.first_day.month, s.first_day.day,
                                                   tzinfo=s.collected_at.tzinfo)), "end": iso(s.collected_at)},
            "compromised_mailboxes": [
                {"upn": upn, "first": iso(m["first"]), "last": iso(m["last"]), "events": m["events"],
                 "items_accessed": len(m["ids"]), "bind_records": m["bind"], "sync_records": m["sync"],
                 "throttled": upn == busy,
                 "unlogged_bind_records": self.unlogged_binds if upn == busy else 0,
                 "possibly_more": upn == busy,
                 "before_signin_coverage": m["first"] < s.signin_start,
                 **({"graph_requests": m.get("graph_requests", 0), "graph_messages_read": len(m.get("graph_ids", ()))}
                    if self.graph is not None else {})}
                for upn, m in sorted(self.mailboxes.items())],
            "actor_ips": [{"ip": ip, "first": iso(r["first"]), "last": iso(r["last"]), "events": r["events"],
                           "listed_indicator": listed.get(ip, False)} for ip, r in sorted(self.ips.items())],
            "actor_apps": [{"app_id": s.actor_app[0], "name": s.actor_app[1], "field": "AppId"},
                           {"app_id": s.actor_client_app[0], "name": s.actor_client_app[1], "field": "ClientAppId"}]
            if seen else [],
            "actor_user_agents": sorted(self.agents),
            "actor_token_ids": sorted(self.tokens),
            "actor_tokens": [{"token_id": uti, "issued_at": iso(issued.get(uti, r["first"])), "first": iso(r["first"]),
                              "last": iso(r["last"]), "events": r["events"], "issued_by_entra": False}
                             for uti, r in sorted(self.tokens.items())],
            "actor_working_hours": "Monday-Friday 00:00-09:00 UTC",
            "actor_records_removed": self.removed,
            "cover_up": sorted(self.cover_up, key=lambda c: (c["time"], c["operation"])),
            "evidence_variant": self.variant,
            **({"graph_activity": graph_json(self.graph)} if self.graph is not None else {}),
            "decoys": decoys(s, self),
            "files": files,
        }
        hook = STORIES[s.kind].get("answer")
        told = dict(hook(s, doc)) if hook is not None else {}
        dropped = set(told.pop("decoys_drop", []))
        doc["decoys"] = [d for d in doc["decoys"] if d["kind"] not in dropped] + list(told.pop("decoys_extra", []))
        if self.writes:  # stories whose intruder writes (the token-forgery key stays as it was)
            doc["actor_writes"] = sorted(self.writes, key=lambda w: (w["time"], w["record_id"]))
        doc.update(told)
        return doc


def decoys(s: Story, key: AnswerKey) -> list[dict[str, Any]]:
    """The planted hard parts, each with the entities a responder would meet."""
    u = s.users
    pre = [m for m, r in key.mailboxes.items() if r["first"] < s.signin_start]
    return [
        {"kind": "pre_coverage_intrusion", "description": "The intrusion starts before sign-in logs begin: actor "
         "records before signin_coverage.start cannot be checked against sign-ins (unverifiable, not forged); "
         "only pivoting on the actor's app, addresses and token ids proves them.",
         "entities": {"mailboxes": sorted(pre), "before": iso(s.signin_start)}},
        {"kind": "pre_coverage_legit_access", "description": "Ordinary mailbox access before sign-in coverage: its "
         "tokens were issued but the sign-ins are no longer in the logs.", "entities": {"before": iso(s.signin_start)}},
        {"kind": "backup_app", "description": f"{s.backup_app['name']} reads every mailbox app-only each night "
         "(01:00-04:00 UTC, inside the actor's hours); about a third of its records send the same "
         "ClientInfoString as the actor (Client=REST;Client=RESTSystem;;). Its tokens come from service-principal "
         "sign-ins.", "entities": {"app_id": s.backup_app["appId"], "service_principal_id": s.backup_app["spId"],
                                   "ips": s.backup_app["ips"].split(",")}},
        {"kind": "traveller", "description": f"{u[s.traveller].upn} works from {s.travel[1]} ({s.travel[0]}) for five "
         "days: new country, new address, working hours that overlap the actor's, and an inbox rule created from "
         "there; every token was issued by a sign-in.",
         "entities": {"upn": u[s.traveller].upn, "ip": s.travel_ip, "country": s.travel[0],
                      "first_day": s.travel_days[0].isoformat(), "last_day": s.travel_days[1].isoformat(),
                      "inbox_rule": TRAVEL_RULE}},
        {"kind": "new_mail_client", "description": f"Users switch to {s.new_client['name']} (consented in the "
         "directory audit log): a first-seen AppId on their mailboxes, but with issued tokens; it even sends the "
         "actor's ClientInfoString (Client=REST;Client=RESTSystem;;).",
         "entities": {"app_id": s.new_client["appId"], "users": [u[i].upn for i in s.switchers],
                      "from": s.switch_day.isoformat()}},
        {"kind": "password_spray", "description": "A failed ROPC password spray against every user (50126, some "
         "50053) during the actor's hours; no success, no mailbox access.",
         "entities": {"ips": s.spray_ips, "at": iso(s.spray_at)}},
        {"kind": "missing_app_access_context", "description": "About 8% of legitimate user MailItemsAccessed records "
         "and the throttling burst carry no AppAccessContext: absence alone proves nothing.", "entities": {}},
        {"kind": "throttled_mailbox", "description": f"{u[s.busy].upn} exceeded 1,000 Bind records; Bind logging "
         "stopped for 24 hours (IsThrottled=True) and the actor read it the next morning: only its Sync records "
         "are logged, so scope must say 'possibly more'.",
         "entities": {"upn": u[s.busy].upn, "throttled_at": iso(s.throttle_at),
                      "until": iso(s.throttle_at + timedelta(hours=24)), "unlogged_actor_bind_records":
                      key.unlogged_binds}},
        {"kind": "own_mail_deletes", "description": "Ordinary users move their own mail to Deleted Items and "
         "soft-delete it (MoveToDeletedItems, SoftDelete; ExchangeItemGroup records) from their own clients and "
         "addresses: deletion alone is not the actor's cover-up.", "entities": {"users": sorted(key.own_deleters)}},
        *variant_decoys(key),
    ]


def graph_json(g: dict[str, Any]) -> dict[str, Any]:
    """The answer key's ``graph_activity``: the actor's Graph requests and forged SignInActivityIds."""
    return {"actor_requests": g["requests"], "actor_directory_reads": g["directory_reads"],
            "actor_tokens": [{"token_id": uti, "issued_at": iso(r["issued_at"]), "first": iso(r["first"]),
                              "last": iso(r["last"]), "requests": r["requests"], "issued_by_entra": False}
                             for uti, r in sorted(g["tokens"].items())]}


def variant_decoys(key: AnswerKey) -> list[dict[str, Any]]:
    """The decoys the evidence variants plant (``--shared-vpn``, ``--frontend-ips``)."""
    out: list[dict[str, Any]] = []
    if key.vpn is not None:
        out.append({"kind": "shared_vpn", "description": "A commercial VPN exit the actor also uses: this user signs "
                    "in through it (tokens issued by Entra) and reads their own mailbox; the actor's records from "
                    "the same address are actor records (forged tokens, the actor's apps).",
                    "entities": {"ip": key.vpn[0], "upn": key.vpn[1]}})
    if key.frontend_ips:
        out.append({"kind": "exchange_frontend", "description": "Legitimate REST-style mailbox access (the new mail "
                    "client, OWA ViaProxy, part of the backup app) logged with Exchange Online front-end addresses "
                    "as ClientIPAddress: shared by many mailboxes and apps, never in a sign-in, and inside the ranges "
                    "of data/reference/exchange_online_frontend_ranges.csv.",
                    "entities": {"ips": sorted(key.frontend_ips)}})
    if key.variant.get("graph_activity"):
        out.append({"kind": "first_party_graph_caller", "description": f"{DECOY_APP[1]}, a Microsoft first-party "
                    "application, reads users' calendars and presence app-only through Microsoft Graph with tokens "
                    "no sign-in in the tenant's logs issued (Microsoft documents that its applications' Graph "
                    "activity may lack sign-ins): labelled, not alarmed, and none of its mailboxes in scope.",
                    "entities": {"app_id": DECOY_APP[0], "ips": list(DECOY_IPS)}})
    return out
