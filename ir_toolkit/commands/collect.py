"""`ir-toolkit collect`: a live tenant's logs through Microsoft Graph (issue 5), a Log Analytics workspace or
Defender XDR advanced hunting (issue 18)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ir_toolkit.commands.common import add_sign_in, emit, sign_in_mode
from ir_toolkit.sources.graph.endpoints import CLOUD_ENDPOINTS

log = logging.getLogger(__name__)


# ----- collect (issue 5) ------------------------------------------------------------------------
def cmd_collect(args: argparse.Namespace) -> int:
    from ir_toolkit.arguments import number_in, window
    from ir_toolkit.sources.backends import MAX_PAGE_SIZE, MAX_SLICE_HOURS, MIN_SLICE_HOURS, check_backend

    # cheap checks first: before the collector is even imported, the case opened or anything connects
    check_backend(args.backend, args.workspace, args.sources)
    window(args.since, args.until)
    number_in("--slice-hours", args.slice_hours, MIN_SLICE_HOURS, MAX_SLICE_HOURS)
    number_in("--page-size", args.page_size, 1, MAX_PAGE_SIZE)
    from ir_toolkit.case import Case
    from ir_toolkit.case.collect import collect_case

    mode = sign_in_mode(args)
    case = Case.open(args.case, writable=True)
    summary = collect_case(case, client_id=args.client_id, mode=mode, since=args.since, until=args.until,
                           tenant=args.tenant, sources=args.sources, cloud=args.cloud, certificate=args.certificate,
                           secret_env=args.client_secret_env, authority_url=args.authority_url,
                           graph_url=args.graph_url, progress=args.progress and not args.json,
                           slice_hours=args.slice_hours, page_size=args.page_size,
                           audit_operations=args.audit_operations, audit_record_types=args.audit_record_types,
                           backend=args.backend, workspace=args.workspace, log_analytics_url=args.log_analytics_url)
    lines = [f"{'source':<26}{'slices':>7}{'records':>10}{'retries':>9}{'throttled s':>13}  complete"]
    for name, t in summary["sources"].items():
        lines.append(f"{name:<26}{t['slices']:>7}{t['records']:>10}{t['retries']:>9}{t['throttle_wait_s']:>13.1f}"
                     f"  {'yes' if not t['gaps'] else 'NO: ' + str(t['gaps']) + ' gap(s)'}")
    for gap in summary["gaps"]:
        lines.append(f"GAP {gap['source']} {gap['slice_start']}..{gap['slice_end']}: {gap['gap']}")
    imported = [r for r in summary["imported"] if "error" not in r]
    if imported:
        lines.append(f"imported {sum(r.get('imported', 0) for r in imported)} events from {len(imported)} file(s)")
    for err in summary["import_errors"]:
        lines.append(f"NOT IMPORTED {err['source']}: {err['error']}")
    lines += [f"NOTE {note}" for note in summary["notes"]]
    for kept in summary["kept_as_evidence"]:
        lines.append(f"KEPT AS EVIDENCE {kept['source']}: {kept['note']}")
    lines.append("collection complete" if summary["complete"] else
                 "collection INCOMPLETE: run the same command again to retry the gaps")
    document = {k: v for k, v in summary.items() if k != "ledger"} | {"ledger": summary["ledger"]}
    emit(args, document, "\n".join(lines))
    return 0 if summary["complete"] and not summary["import_errors"] else 1


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=96, initial_indent="  ", subsequent_indent="  ")


def add_parser(sub: Any) -> None:
    from ir_toolkit.sources.graph.sources import permissions_help
    from ir_toolkit.sources.kql.sources import DEFENDER, HUNTING_PERMISSIONS, LA_PERMISSIONS, LOG_ANALYTICS

    col = sub.add_parser(
        "collect", help="collect a live tenant's logs (Graph, a Log Analytics workspace, Defender XDR)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Collect sign-ins, audit logs and app/consent snapshots into CASE, from Microsoft Graph "
                    "(default), a Log Analytics / Sentinel workspace (--from log-analytics --workspace ID) or "
                    "Defender XDR advanced hunting (--from defender). "
                    "Resumable: run the same command again after an interruption.",
        epilog="least-privilege application permissions per source (delegated sign-in: same scopes plus\n"
               "Global Reader or Security Reader; audit_log also needs the Purview Audit Reader role):\n"
               + permissions_help()
               + f"\n\n--from log-analytics ({'; '.join(LA_PERMISSIONS)}):\n" + _wrap(", ".join(LOG_ANALYTICS))
               + f"\n--from defender ({'; '.join(HUNTING_PERMISSIONS)}):\n" + _wrap(", ".join(DEFENDER))
               + "\n\nThe client secret is read from the environment variable named by --client-secret-env,\n"
                 "never from the command line. A CA bundle comes from REQUESTS_CA_BUNDLE or SSL_CERT_FILE.\n"
                 "Exit status: 0 complete, 1 gaps remain (named in the ledger) or files not imported, 2 bad input.")
    col.add_argument("case", metavar="CASE")
    add_sign_in(col)
    col.add_argument("--since", required=True, metavar="ISO", help="window start (UTC unless an offset is given)")
    col.add_argument("--until", required=True, metavar="ISO", help="window end, exclusive")
    col.add_argument("--sources", metavar="LIST", help="comma list of sources (default: all of --from)")
    col.add_argument("--from", dest="backend", default="graph", choices=("graph", "log-analytics", "defender"),
                     help="where the logs are: graph (default), log-analytics (a workspace), defender (advanced "
                          "hunting)")
    col.add_argument("--workspace", metavar="ID", help="Log Analytics workspace id (GUID), with --from log-analytics")
    col.add_argument("--cloud", choices=list(CLOUD_ENDPOINTS),
                     help="national cloud (default: the case's cloud)")
    col.add_argument("--authority-url", metavar="URL", help="override the authority (https://HOST/TENANT)")
    col.add_argument("--graph-url", metavar="URL", help="override the Graph root (https://HOST)")
    col.add_argument("--log-analytics-url", metavar="URL", help="override the Log Analytics root (https://HOST)")
    col.add_argument("--audit-operations", metavar="LIST",
                     help="audit_log operationFilters, comma list or 'all' (default: MailItemsAccessed, Send, "
                          "inbox rules, mailbox permissions, consents, service principal credentials)")
    col.add_argument("--audit-record-types", metavar="LIST", help="audit_log recordTypeFilters, comma list")
    col.add_argument("--slice-hours", type=float, default=24.0, metavar="H",
                     help="length of a time slice (default 24; slices halve themselves when needed)")
    col.add_argument("--page-size", type=int, metavar="N", help="records per page ($top; default per source)")
    col.add_argument("--json", action="store_true", help="print the summary and ledger as JSON")
    col.add_argument("--no-progress", dest="progress", action="store_false")
    col.set_defaults(func=cmd_collect)
