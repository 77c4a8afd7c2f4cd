"""`ir-toolkit preflight`: what this app can read in the tenant, how far back, and what to add (issue 18)."""

from __future__ import annotations

import argparse
from typing import Any

from ir_toolkit.commands.common import add_sign_in, emit, sign_in_mode
from ir_toolkit.sources.graph.endpoints import CLOUD_ENDPOINTS


def cmd_preflight(args: argparse.Namespace) -> int:
    from ir_toolkit.arguments import guid, iso_time

    guid("--workspace", args.workspace)  # checked before anything heavy is imported, or connects
    if args.since:
        iso_time("--since", args.since)
    from ir_toolkit.case import Case
    from ir_toolkit.case.preflight import run_preflight

    case = Case.open(args.case, writable=True) if args.case else None
    mode = sign_in_mode(args)
    doc = run_preflight(client_id=args.client_id, mode=mode, tenant=args.tenant, cloud=args.cloud,
                        workspace=args.workspace, case=case, since=args.since, certificate=args.certificate,
                        secret_env=args.client_secret_env, authority_url=args.authority_url,
                        graph_url=args.graph_url, log_analytics_url=args.log_analytics_url)
    lic = doc["licences"]
    lines = [f"tenant {doc['tenant']} ({doc['cloud']}): Entra ID {lic.get('entra_tier') or 'unknown'}, "
             f"Purview audit {lic.get('audit') or 'unknown'}; licences: "
             + (", ".join(str(s["sku"]) for s in lic["skus"]) if lic.get("skus") is not None
                else f"not readable ({lic.get('reason')})"),
             f"{'source':<34}{'backend':<15}{'ok':<5}{'kept':>6}  {'expires':<22}reason"]
    for r in doc["sources"]:
        kept = f"{r['retention_days']}d" if r["retention_days"] is not None else "-"
        expires = (f"{r['expires_on'][:10]} ({r['days_left']:+.0f}d)" if r["expires_on"] else
                   f"oldest {r['oldest_record'][:10]}" if r.get("oldest_record") else "-")
        lines.append(f"{r['name']:<34}{r['backend']:<15}{'yes' if r['available'] else 'NO':<5}{kept:>6}  "
                     f"{expires:<22}{r['reason'] or ''}")
    if doc["permissions_to_add"]:
        lines.append("permissions to add: " + ", ".join(doc["permissions_to_add"]))
    if case is not None:
        lines.append(f"recorded in {case.root / 'case.json'}")
    emit(args, doc, "\n".join(lines))
    return 0


def add_parser(sub: Any) -> None:
    pre = sub.add_parser("preflight", help="what this app can read in the tenant, how far back (changes nothing)",
                         description="Read-only checks per source (Graph sign-ins and audits, Purview audit "
                                     "queries, Log Analytics tables, advanced hunting tables): available or why not, "
                                     "licences, retention and the date the period you need starts to expire, and "
                                     "the permissions to add. Makes no change in the tenant.")
    add_sign_in(pre)
    pre.add_argument("--workspace", metavar="ID", help="also check this Log Analytics workspace (GUID)")
    pre.add_argument("--case", metavar="CASE", help="record the result in this case (case.json, custody log)")
    pre.add_argument("--since", metavar="ISO", help="start of the period you need (default: the case's window)")
    pre.add_argument("--cloud", choices=list(CLOUD_ENDPOINTS), help="national cloud (default: the case's, or global)")
    pre.add_argument("--authority-url", metavar="URL", help="override the authority (https://HOST/TENANT)")
    pre.add_argument("--graph-url", metavar="URL", help="override the Graph root (https://HOST)")
    pre.add_argument("--log-analytics-url", metavar="URL", help="override the Log Analytics root (https://HOST)")
    pre.add_argument("--json", action="store_true", help="print the readiness document as JSON")
    pre.set_defaults(func=cmd_preflight)
