"""The ``golden-saml`` story: a federated tenant, a stolen AD FS signing key, forged SAML sign-ins.

Every ordinary interactive sign-in of the tenant is federated (``tokenIssuerType`` ADFederationServices)
and has its AD FS audits, 1202 (fresh credentials) and 1200 (token issued), in the AD FS servers' Security
log a few seconds before it: the decoy that makes "federated" alone mean nothing. The actor reads the AD FS
DKM key from the directory (Security 4662 on a domain controller: contact class, thumbnailPhoto), then signs
SAML assertions for target users with the stolen key and presents them to Entra from its own addresses: Entra
logs real sign-ins (ADFederationServices, incoming token saml11) and issues real tokens, but AD FS logged no
issuance. With those tokens the actor reads the targets' mail (MailItemsAccessed Bind, the token's
UniqueTokenId and session).

The AD FS and Security events are written as a Log Analytics ``SecurityEvent`` export (JSON lines,
``windows/SecurityEvent.json``) by :class:`SecurityEventWriter`; the tenant's interactive sign-ins pass
through :class:`FederatedSignins`, which marks them federated and writes their AD FS audits. The answer
key's ``golden_saml`` section holds the DKM read, each forged sign-in and AD FS coverage.
"""

from __future__ import annotations

import gzip
import html
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ir_toolkit.sample import signins, ual
from ir_toolkit.sample.activity import Event
from ir_toolkit.sample.actor import mailbox_reads
from ir_toolkit.sample.ids import guid, iso, rng_for, token_id, utc
from ir_toolkit.sample.story import INTRUSION_END, ActorToken, Story

ADFS_SERVER, DC = "ADFS01", "DC01"
WAP_ADDRESS = "10.20.0.5"                       # the Web Application Proxy that forwards to AD FS
ACTOR_ACCOUNT = "svc-sqlreport"                 # the domain account the actor runs as on-premises
SAML_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0"
DKM_OBJECT_TYPE = "%{5cb41ed0-0e4c-11d0-a286-00aa003049e2}"
DKM_PROPERTIES = ("%%7684\r\n\t\t{77b5b886-944a-11d1-aebd-0000f80367c1}\r\n\t\t\t"
                  "{8d3bca50-1d7e-11d0-a081-00aa006c33ed}\r\n\t{5cb41ed0-0e4c-11d0-a286-00aa003049e2}\r\n")


@dataclass(frozen=True)
class ForgedLogon:
    """One forged SAML sign-in and the reads it led to (``clock``: seconds after midnight UTC)."""

    day: date
    clock: int
    user: int
    ip: str
    session_id: str
    token: str

    @property
    def time(self) -> datetime:
        return utc(self.day, self.clock)


@dataclass(frozen=True)
class Plan:
    """The actor's plan: the DKM read and the forged sign-ins, derived from the seed alone."""

    dkm_at: datetime
    logons: tuple[ForgedLogon, ...]


def plan(story: Story) -> Plan:
    """The golden-saml actor's plan for ``story`` (the same every time it is asked)."""
    rng = rng_for(story.seed, "golden-saml")
    first = (story.signin_start + timedelta(days=4)).date()
    days = [first + timedelta(days=i) for i in range((INTRUSION_END - first).days + 1)]
    days = [d for d in days if d.weekday() < 5]
    chosen = sorted([days[0], *rng.sample(days[1:], min(len(days) - 1, rng.randint(3, 5)))])
    ips = [a.ip for a in story.actor_ips if not a.listed][:2]  # addresses in no indicator list
    logons = []
    for i, day in enumerate(chosen):
        users = [story.targets[i % len(story.targets)]] if i < len(story.targets) else \
            rng.sample(story.targets, rng.randint(1, 2))
        clock = rng.randint(30 * 60, 3 * 3600)
        for u in users:
            logons.append(ForgedLogon(day, clock, u, rng.choice(ips), guid(rng), token_id(rng)))
            clock += rng.randint(2 * 3600, 3 * 3600)
    dkm = chosen[0] - timedelta(days=2)
    return Plan(utc(dkm, rng.randint(22 * 3600, 23 * 3600)), tuple(logons))


def actor_day(story: Story, day: date, day_no: int, active: frozenset[date]) -> tuple[list[Event], int]:
    """The golden-saml actor's logged events of ``day`` (the registry's ``actor_day``; ``active`` unused)."""
    p = plan(story)
    events: list[Event] = []
    if p.dkm_at.date() == day:
        events.append(Event(p.dkm_at, "windows", dkm_read(story, p.dkm_at)))
    unlogged = 0
    for lg in (x for x in p.logons if x.day == day):
        rng = rng_for(story.seed, "golden-saml-logon", lg.session_id)
        user = story.users[lg.user]
        t = lg.time
        rec = signins.user_signin(rng, t, user=user, tenant_id=story.tenant_id, app=story.actor_client_app,
                                  ip=lg.ip, user_agent=SAML_AGENT, os_name="Windows 10", browser="Chrome 114.0.0",
                                  session_id=lg.session_id, interactive=True, protocol="wsFederation")
        rec.update({"uniqueTokenIdentifier": lg.token, "tokenIssuerType": "ADFederationServices",
                    "tokenIssuerName": f"http://sts.{story.domain}/adfs/services/trust", "incomingTokenType": "saml11"})
        rec["authenticationDetails"][0].update({
            "authenticationMethod": "Previously satisfied", "authenticationMethodDetail": "Federated",
            "authenticationStepResultDetail": "MFA requirement satisfied by claim provided by external provider"})
        events.append(Event(t, "signin_interactive", rec))
        events.append(Event(t + timedelta(seconds=1), "ual", ual.sts_logon(
            rng, t + timedelta(seconds=1), org=story.tenant_id, user=user, ip=lg.ip, user_agent=SAML_AGENT,
            app_id=story.actor_client_app[0])))
        reads, missed, _ = mailbox_reads(story, rng, day, day_no, lg.user, lg.ip,
                                         ActorToken(lg.token, t, day, day), lg.clock, date.min)
        events += reads
        unlogged += missed
    return events, unlogged


# ----- Log Analytics SecurityEvent rows ---------------------------------------------------------
def _row(story: Story, t: datetime, computer: str, event_id: int, salt: str, **fields: Any) -> dict[str, Any]:
    rng = rng_for(story.seed, "security-event", salt, event_id)
    row: dict[str, Any] = {"TenantId": guid(rng_for(story.seed, "workspace")), "SourceSystem": "OpsManager",
                           "TimeGenerated": iso(t), "Computer": f"{computer}.{story.domain}",
                           "EventSourceName": "Microsoft-Windows-Security-Auditing", "Channel": "Security",
                           "Level": "0", "EventID": event_id, "Activity": str(event_id)}
    row.update(fields)
    row.update({"EventOriginId": guid(rng), "Type": "SecurityEvent"})
    return row


def adfs_audit(story: Story, t: datetime, event_id: int, upn: str, ip: str, activity_id: str) -> dict[str, Any]:
    """An AD FS 2016+ audit (1200 application token / 1202 fresh credentials) as a SecurityEvent row: EventData
    holds the activity id and the AuditBase XML (escaped), with the elements Microsoft documents."""
    kind = "AppToken" if event_id == 1200 else "FreshCredentials"
    audit = ('<?xml version="1.0" encoding="utf-16"?><AuditBase xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="' + kind + 'Audit"><AuditType>' + kind +
             '</AuditType><AuditResult>Success</AuditResult><FailureType>None</FailureType><ErrorCode>N/A</ErrorCode>'
             '<ContextComponents><Component xsi:type="ResourceAuditComponent"><RelyingParty>'
             'urn:federation:MicrosoftOnline</RelyingParty><ClaimsProvider>AD AUTHORITY</ClaimsProvider><UserId>' +
             html.escape(upn) + '</UserId></Component><Component xsi:type="RequestAuditComponent"><Server>'
             f'http://sts.{story.domain}/adfs/services/trust</Server><AuthProtocol>WSFederation</AuthProtocol>'
             f'<NetworkLocation>Extranet</NetworkLocation><IpAddress>{WAP_ADDRESS}</IpAddress><ForwardedIpAddress>'
             f'{ip}</ForwardedIpAddress><ProxyIpAddress>N/A</ProxyIpAddress><ProxyServer>WAP01</ProxyServer>'
             '<Endpoint>/adfs/ls/</Endpoint></Component></ContextComponents></AuditBase>')
    data = ('<EventData xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><Data>' + activity_id +
            "</Data><Data>" + html.escape(audit, quote=False) + "</Data></EventData>")
    return _row(story, t, ADFS_SERVER, event_id, activity_id, EventSourceName="AD FS Auditing", Task=3,
                EventData=data)


def dkm_read(story: Story, t: datetime) -> dict[str, Any]:
    """Security 4662 on a domain controller: the DKM container's key (contact class, thumbnailPhoto) read."""
    domain = story.domain.split(".")[0].upper()
    return _row(story, t, DC, 4662, "dkm", Activity="4662 - An operation was performed on an object.",
                Account=f"{domain}\\{ACTOR_ACCOUNT}", AccountType="User", Task=14080, AccessMask="0x10",
                ObjectServer="DS", ObjectType=DKM_OBJECT_TYPE, OperationType="Object Access",
                ObjectName="%{9736f74f-fd37-4b02-80e8-8120a72ad6c2}", Properties=DKM_PROPERTIES,
                SubjectUserName=ACTOR_ACCOUNT, SubjectDomainName=domain, SubjectLogonId="0x8f0f2cd7")


class SecurityEventWriter:
    """The Log Analytics ``SecurityEvent`` export: one JSON row per line (``.json.gz`` with ``gz``)."""

    def __init__(self, path: Path, gz: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path.with_name(path.name + ".gz") if gz else path
        self.lines: list[str] = []
        self.gz = gz

    def add(self, rec: dict[str, Any]) -> None:
        self.lines.append(json.dumps(rec, separators=(",", ":"), ensure_ascii=False))

    def close(self) -> list[Path]:
        data = "".join(line + "\n" for line in self.lines).encode("utf-8")
        self.path.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if self.gz else data)
        return [self.path]


class FederatedSignins:
    """The interactive sign-in pages of a federated tenant: each ordinary successful sign-in is marked
    federated and its AD FS audits (1202, then 1200) go to the Security log a few seconds before it. Sign-ins
    already federated (the actor's forged ones) pass through without any AD FS audit."""

    def __init__(self, pages: Any, security: SecurityEventWriter, story: Story) -> None:
        self.pages, self.security, self.story = pages, security, story

    def add(self, rec: dict[str, Any]) -> None:
        if rec.get("tokenIssuerType") == "AzureAD" and rec.get("status", {}).get("errorCode") == 0:
            rec["tokenIssuerType"] = "ADFederationServices"
            rec["tokenIssuerName"] = f"http://sts.{self.story.domain}/adfs/services/trust"
            t = datetime.fromisoformat(rec["createdDateTime"].replace("Z", "+00:00"))
            activity = guid(rng_for(self.story.seed, "adfs-activity", rec["id"]))
            for event_id, before in ((1202, 4), (1200, 2)):
                self.security.add(adfs_audit(self.story, t - timedelta(seconds=before), event_id,
                                             rec["userPrincipalName"], rec["ipAddress"], activity))
        self.pages.add(rec)

    def close(self) -> list[Path]:
        return self.pages.close()


def writers(out: Path, story: Story, gz: bool) -> dict[str, Any]:
    """The story's own writers (the registry's ``writers``): the Security log and the federated sign-ins."""
    from ir_toolkit.sample.make import signin_writer  # make imports the registry, which imports this module

    security = SecurityEventWriter(out / "windows" / "SecurityEvent.json", gz=gz)
    # the answer key lists each actor token with its issue time: the forged sign-ins' tokens join the story's
    story.actor_tokens = [*story.actor_tokens,
                          *(ActorToken(lg.token, lg.time, lg.day, lg.day) for lg in plan(story).logons)]
    return {"windows": security,
            "signin_interactive": FederatedSignins(signin_writer(out, story, "signin_interactive", gz), security,
                                                   story)}


def answer(story: Story, doc: dict[str, Any]) -> dict[str, Any]:
    """The answer key with the story's truth (the registry's ``answer``)."""
    p = plan(story)
    forged = [{"time": iso(lg.time), "upn": story.users[lg.user].upn, "ip": lg.ip, "session_id": lg.session_id,
               "token_id": lg.token, "adfs_issuance": False} for lg in p.logons]
    doc["golden_saml"] = {
        "dkm_read": {"time": iso(p.dkm_at), "account": ACTOR_ACCOUNT, "computer": f"{DC}.{story.domain}",
                     "event": 4662},
        "forged_signins": forged,
        "adfs_coverage": {"start": doc["signin_coverage"]["start"], "end": doc["signin_coverage"]["end"],
                          "note": "every ordinary interactive sign-in has its 1202 and 1200 audits"},
    }
    if doc["window"]["first_malicious"] is not None:
        doc["window"]["first_malicious"] = min(doc["window"]["first_malicious"], forged[0]["time"])
    for tok in doc["actor_tokens"]:
        tok["issued_by_entra"] = True       # Entra issued it, from a SAML assertion AD FS never issued
    doc["actor_working_hours"] = "Monday-Friday 00:30-09:00 UTC"
    doc["decoys"].append({
        "kind": "federated_signins", "description": "Every ordinary interactive sign-in is federated "
        "(tokenIssuerType ADFederationServices) and has AD FS 1202/1200 audits seconds before it: federated alone "
        "means nothing; only the actor's sign-ins lack an AD FS issuance.",
        "entities": {"adfs_server": f"{ADFS_SERVER}.{story.domain}"}})
    return doc
