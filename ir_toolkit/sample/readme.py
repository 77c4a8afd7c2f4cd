"""The README written next to a generated tenant: the files, the story, and how to regenerate it."""

from __future__ import annotations

from typing import Any

FILES = (  # (path, what it is exactly as a responder holds it, shape)
    ("entra/signins_interactive/page-NNNNN.json{gz}",
     "Graph **beta** `/auditLogs/signIns` filtered `signInEventTypes/any(t: t eq 'interactiveUser')`",
     'one list page per file: `{{"@odata.context", "@odata.nextLink" (all but the last page), "value": '
     '[signIn...]}}`, 1,000 per page, newest first'),
    ("entra/signins_noninteractive/page-NNNNN.json{gz}",
     "same, `nonInteractiveUser` (token refreshes: each carries the `uniqueTokenIdentifier` that mailbox access "
     "quotes)", "same"),
    ("entra/signins_serviceprincipal/page-NNNNN.json{gz}",
     "same, `servicePrincipal` (the backup app's app-only tokens)", "same"),
    ("entra/directory_audits/page-NNNNN.json{gz}", "Graph v1.0 `/auditLogs/directoryAudits`",
     "list pages of directoryAudit"),
    ("entra/users/, entra/service_principals/, entra/applications/, entra/oauth2_permission_grants/",
     "tenant snapshot: Graph v1.0 `/users`, `/servicePrincipals`, `/applications` (with `keyCredentials` / "
     "`passwordCredentials`), `/oauth2PermissionGrants`", "list pages (`page-00001.json`), 100 per page"),
    ("purview/audit_log_query_records/page-NNNNN.json{gz}",
     "unified audit log through Graph beta `/security/auditLog/queries/{{id}}/records`",
     "list pages of `microsoft.graph.security.auditLogRecord`; the UAL record is in `auditData`"),
    ("purview/audit_search_export.csv{gz}", "the **same** records as the Purview portal's audit search export",
     "`RecordId,CreationDate,RecordType,Operation,UserId,AuditData,AssociatedAdminUnits,AssociatedAdminUnitsNames`;"
     " `AuditData` is the JSON record"),
    ("answer_key.json", "the truth: window, sign-in coverage, compromised mailboxes, actor addresses, apps, user "
     "agents, token ids, decoys, and the SHA-256 of every raw file", "JSON"),
)

NOTES = (
    "- App-only mailbox access (the backup app): `UserId` is the application's AppId, `UserType` 5 (Application), "
    "`LogonUserSid` S-1-5-18; its `AppAccessContext` has `UniqueTokenId`, `IssuedAtTime` and `ClientAppId` "
    "but no `AADSessionId` (app-only tokens have no user session).",
    "- Sync records name folders only (`Folders[].Id`, `Folders[].Path`, no `FolderItems`; `OperationCount` = "
    "folders); Bind records group the messages of about two minutes under `Folders[].FolderItems[]`.",
    "- Throttling: the record that crosses 1,000 Bind records in 24 hours carries `IsThrottled` = `True`; for the "
    "next 24 hours that mailbox has no Bind records at all (Sync records continue).",
    "- The actor's records carry `AppAccessContext` with `UniqueTokenId` and `IssuedAtTime` only: a token minted "
    "offline has no Entra session, so no `AADSessionId`.",
    "- `ClientIPAddress` is sometimes `ip:port` or `[ipv6]:port`; the Graph wrapper's `clientIp` has no port.",
    "- The Purview CSV is UTF-8 without a byte-order mark, CRLF line ends, `CreationDate` like "
    "`2023-06-01T01:02:03.0000000Z`, newest first.",
    "- Domain `*.example` (RFC 2606) and application names are invented; Microsoft first-party AppIds are real.",
)


def readme(key: dict[str, Any]) -> str:
    """Markdown describing the tenant of ``key`` (an answer_key.json document)."""
    t = key["tenant"]
    gz = ".gz" if t["gzip"] else ""
    rec = t["records"]
    variant = t.get("variant_args", [])
    lines = [
        f"# Sample tenant: {t['name']} ({t['domain']})",
        "",
        "A generated Microsoft 365 tenant (no real data) with "
        f"{key.get('story_intro', 'a Storm-0558-style forged-token')} intrusion, in",
        "Microsoft's own export formats, and its answer key. Regenerate it with one command from the project root:",
        "",
        "```",
        f"{'' if variant else 'make sample      # = '}ir-toolkit sample make "
        f"{'DIR' if variant else 'data/sample-tenant'} "
        f"--seed {t['seed']} --users {t['users_param']} --days {t['days_param']}{' --gzip' if t['gzip'] else ''}"
        f"{''.join(' ' + a for a in variant)}",
        "```",
        "",
        "Same seed, same bytes (the SHA-256 of every file is in `answer_key.json`).",
        "",
        "## Files",
        "",
        "| path | what it is (exactly as a responder holds it) | shape |",
        "|---|---|---|",
        *(f"| `{p.format(gz=gz)}` | {w.format()} | {h.format()} |" for p, w, h in FILES),
        "",
        f"Records: {rec['signins_interactive']} interactive, {rec['signins_noninteractive']} non-interactive and "
        f"{rec['signins_serviceprincipal']} service-principal sign-ins; {rec['directory_audits']} directory audits; "
        f"{rec['unified_audit_log']} unified audit log records (in both forms: import both, records de-duplicate "
        f"by Id); {rec['events_total']} events in all.",
        "",
        "## The story",
        "",
        f"{t['users']} people work at {t['name']}, Monday to Friday, US Eastern hours. The audit log covers "
        f"{t['first_day']} to the collection on {t['collected_at']}; Entra kept only 30 days of sign-ins, from "
        f"{key['signin_coverage']['start']}.",
        "",
        *_variant_lines(key),
        key.get("story_text") or
        f"From {key['window']['first_malicious'] or '(not provable from these files)'} to "
        f"{key['window']['last_malicious'] or '(not provable)'} an actor holding a forged "
        "signing key read mail with tokens it minted itself: no sign-in ever issued them, so their "
        "UniqueTokenIds appear in no sign-in log. It worked Monday to Friday 00:00-09:00 UTC, through a handful "
        "of proxies, with a scripted REST client and an application pair no one in the tenant uses:",
        "",
    ]
    for app in key["actor_apps"]:
        lines.append(f"- {app['field']} `{app['app_id']}` ({app['name']})")
    lines += ["", "| mailbox | first | last | events | distinct messages (Bind) | throttled |",
              "|---|---|---|---|---|---|"]
    for m in key["compromised_mailboxes"]:
        lines.append(f"| {m['upn']} | {m['first']} | {m['last']} | {m['events']} | {m['items_accessed']} | "
                     f"{'yes: possibly more' if m['throttled'] else 'no'} |")
    lines += ["", "| actor address | first | last | events | in the published indicators |", "|---|---|---|---|---|"]
    for ip in key["actor_ips"]:
        lines.append(f"| {ip['ip']} | {ip['first']} | {ip['last']} | {ip['events']} | "
                     f"{'yes' if ip['listed_indicator'] else 'no'} |")
    lines += ["", "## What makes it hard (the decoys)", ""]
    for d in key["decoys"]:
        lines.append(f"- **{d['kind']}**: {d['description']}")
    lines += ["", "## Modelling choices (where Microsoft's documentation is silent)", "", *NOTES]
    lines += ["", "Addresses are documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32,"
              " 198.18.0.0/15) except the actor's listed proxies, which are real Storm-0558 SoftEther indicators "
              "(Microsoft, 14 July 2023).", ""]
    return "\n".join(lines)


def _variant_lines(key: dict[str, Any]) -> list[str]:
    """A paragraph on the evidence variant, when the tenant holds partial evidence."""
    v = key.get("evidence_variant") or {}
    if not (v.get("dropped") or v.get("gaps") or v.get("shared_vpn") or v.get("frontend_ips")
            or v.get("graph_activity")):
        return []
    parts = [f"dropped: {', '.join(v['dropped'])}"] if v.get("dropped") else []
    parts += [f"gap in {g['source']} from {g['start']} to {g['end']}" for g in v.get("gaps", [])]
    parts += ["a VPN address shared by the actor and a user"] * bool(v.get("shared_vpn"))
    parts += ["Exchange Online front-end addresses on REST mailbox access"] * bool(v.get("frontend_ips"))
    parts += ["Microsoft Graph activity logs (azure/insights-logs-microsoftgraphactivitylogs)"] * bool(
        v.get("graph_activity"))
    return [f"**Evidence variant** ({'; '.join(parts)}): the answer key holds only what the written records prove "
            f"({key.get('actor_records_removed', 0)} actor MailItemsAccessed records are not in these files).", ""]
