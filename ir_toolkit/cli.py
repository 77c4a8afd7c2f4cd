"""``ir-toolkit``: one command, a verb per step of an investigation.

The CLI holds no logic of its own: each verb parses its arguments and calls the
layer that does the work. User errors print one line on stderr and exit 2;
``--json`` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ir_toolkit import __version__
from ir_toolkit.errors import IrToolkitError, NotImplementedYet, UserError

log = logging.getLogger("ir_toolkit.cli")

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print ``document`` as JSON with --json, else the human ``text``."""
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _not_yet(issue: int, what: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        raise NotImplementedYet(f"{what}: not implemented yet: see issue {issue}")

    return handler


# ----- case / verify ----------------------------------------------------------------------------
def cmd_case_init(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case

    case = Case.init(args.case, tenant=args.tenant, cloud=args.cloud)
    _emit(args, case.summary(), f"case created: {case.root} (tenant {case.tenant}, cloud {case.cloud})")
    return 0


def cmd_case_show(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case

    summary = Case.open(args.case).summary()
    lines = [f"{k}: {v}" for k, v in summary.items()]
    _emit(args, summary, "\n".join(lines))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case

    case = Case.open(args.case)
    problems = case.verify()
    case.log_action("verify", intact=not problems, problems=problems)
    n = len(case.evidence())
    if getattr(args, "json", False):
        _emit(args, {"intact": not problems, "evidence_files": n, "problems": problems}, "")
    elif problems:
        for p in problems:
            sys.stderr.write(p + "\n")
        sys.stderr.write(f"evidence NOT intact: {len(problems)} problem(s) in {n} evidence file(s)\n")
    else:
        sys.stdout.write(f"evidence intact: {n} file(s) match case.json\n")
    return 1 if problems else 0


# ----- import (issue 4) -------------------------------------------------------------------------
def _add_import(sub: Any) -> None:
    imp = sub.add_parser("import", help="import log exports into a case")
    imp.add_argument("case", metavar="CASE")
    imp.add_argument("files", metavar="FILE", nargs="+")
    imp.add_argument("--format", default="auto", help="format name, or auto (default)")
    imp.add_argument("--json", action="store_true")
    imp.add_argument("--no-progress", dest="progress", action="store_false")
    imp.add_argument("--day-first", dest="dayfirst", action="store_true",
                     help="read locale dates a/b/yyyy as day/month (default month/day)")
    imp.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case

    case = Case.open(args.case, writable=True)
    progress = args.progress and not args.json and sys.stderr.isatty()
    results = case.import_files(args.files, format=args.format, progress=progress, dayfirst=args.dayfirst)
    lines = []
    for r in results:
        note = " (already imported: nothing added)" if r.get("skipped") else ""
        lines.append(f"{r['path']}: {r['format']}: {r['records']} records, {r['imported']} imported, "
                     f"{r['duplicates']} duplicates, {r['quarantined']} quarantined{note}")
    _emit(args, results, "\n".join(lines))
    return 0


# ----- collect (issue 5) ------------------------------------------------------------------------
def cmd_collect(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case
    from ir_toolkit.case.collect import collect_case

    mode = "device_code" if args.device_code else "certificate" if args.certificate else "client_secret"
    case = Case.open(args.case, writable=True)
    summary = collect_case(case, client_id=args.client_id, mode=mode, since=args.since, until=args.until,
                           tenant=args.tenant, sources=args.sources, cloud=args.cloud, certificate=args.certificate,
                           secret_env=args.client_secret_env, authority_url=args.authority_url,
                           graph_url=args.graph_url, progress=args.progress and not args.json,
                           slice_hours=args.slice_hours, page_size=args.page_size,
                           audit_operations=args.audit_operations, audit_record_types=args.audit_record_types)
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
    lines.append("collection complete" if summary["complete"] else
                 "collection INCOMPLETE: run the same command again to retry the gaps")
    document = {k: v for k, v in summary.items() if k != "ledger"} | {"ledger": summary["ledger"]}
    _emit(args, document, "\n".join(lines))
    return 0 if summary["complete"] and not summary["import_errors"] else 1


def _add_collect(sub: Any) -> None:
    from ir_toolkit.sources.graph.sources import permissions_help

    col = sub.add_parser(
        "collect", help="collect a live tenant's logs through Microsoft Graph",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Collect sign-ins, audit logs and app/consent snapshots through Microsoft Graph into CASE. "
                    "Resumable: run the same command again after an interruption.",
        epilog="least-privilege application permissions per source (delegated sign-in: same scopes plus\n"
               "Global Reader or Security Reader; audit_log also needs the Purview Audit Reader role):\n"
               + permissions_help()
               + "\n\nThe client secret is read from the environment variable named by --client-secret-env,\n"
                 "never from the command line. A CA bundle comes from REQUESTS_CA_BUNDLE or SSL_CERT_FILE.\n"
                 "Exit status: 0 complete, 1 gaps remain (named in the ledger) or files not imported, 2 bad input.")
    col.add_argument("case", metavar="CASE")
    col.add_argument("--tenant", help="tenant id or domain (default: the case's tenant)")
    col.add_argument("--client-id", required=True, help="the app registration's client id")
    how = col.add_mutually_exclusive_group(required=True)
    how.add_argument("--device-code", action="store_true", help="sign in as a responder (device code flow)")
    how.add_argument("--certificate", metavar="PEM_OR_PFX", help="app-only sign-in with a certificate")
    how.add_argument("--client-secret-env", metavar="VAR", help="app-only sign-in; the secret is in env var VAR")
    col.add_argument("--since", required=True, metavar="ISO", help="window start (UTC unless an offset is given)")
    col.add_argument("--until", required=True, metavar="ISO", help="window end, exclusive")
    col.add_argument("--sources", metavar="LIST", help="comma list of sources (default: all)")
    col.add_argument("--cloud", choices=["global", "usgov", "usgovdod", "china"],
                     help="national cloud (default: the case's cloud)")
    col.add_argument("--authority-url", metavar="URL", help="override the authority (https://HOST/TENANT)")
    col.add_argument("--graph-url", metavar="URL", help="override the Graph root (https://HOST)")
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


# ----- detect and scope (issue 7) ---------------------------------------------------------------
def _pack_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"-p {pair!r}: parameters are NAME=VALUE")
        params[name.strip()] = value.strip()
    return params


def _engine_options(args: argparse.Namespace) -> dict[str, str | None]:
    if args.engine != "spark" and (args.spark_master or args.events):
        raise UserError("--spark-master and --events need --engine spark")
    return {"master": args.spark_master, "events": args.events} if args.engine == "spark" else {}


def _add_engine_args(parser: Any) -> None:
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="SQL engine: duckdb (this machine, default) or spark (a cluster / data lake)")
    parser.add_argument("--spark-master", metavar="URL", help="Spark master (local[4], spark://host:7077, yarn)")
    parser.add_argument("--events", metavar="URI",
                        help="Parquet events with the canonical columns (a lake table path) instead of CASE/events")


def cmd_detect(args: argparse.Namespace) -> int:
    from ir_toolkit.analysis.detect import detect, finding_counts

    findings = detect(args.case, pack=args.pack, params=_pack_params(args.params), progress=args.progress,
                      engine=args.engine, engine_options=_engine_options(args))
    if args.json:
        from ir_toolkit.case import Case

        doc = json.loads((Case.open(args.case).root / "findings.json").read_text(encoding="utf-8"))
        _emit(args, doc, "")
        return 0
    lines = [f"{len(findings)} finding(s) written to {args.case}/findings.parquet and findings.json"]
    lines += [f"  {key:<34} {n}" for key, n in finding_counts(findings).items()]
    strong = findings[findings["verdict"].isin(["confirmed", "likely"])]
    lines += [f"  [{r.verdict}] {r.explanation}" for r in strong.head(20).itertuples(index=False)]
    _emit(args, None, "\n".join(lines))
    return 0


def cmd_scope(args: argparse.Namespace) -> int:
    from ir_toolkit.analysis.scope import scope

    doc = scope(args.case, params=_pack_params(args.params) or None, engine=args.engine,
                engine_options=_engine_options(args))
    w = doc["window"]
    lines = [f"scope written to {args.case}/scope.json",
             f"window: {w['first_malicious']} .. {w['last_malicious']}",
             f"sign-in coverage: {doc['signin_coverage']['start']} .. {doc['signin_coverage']['end']}",
             f"compromised mailboxes: {len(doc['compromised_mailboxes'])}"]
    lines += [f"  {m['upn']} [{m['confidence']}] {m['first']} .. {m['last']}, {m['events']} events, "
              f"{m['items_accessed']} items{' (possibly more)' if m.get('possibly_more') else ''}"
              for m in doc["compromised_mailboxes"]]
    lines += [f"actor addresses: {', '.join(i['ip'] for i in doc['actor_ips']) or '-'}"]
    _emit(args, doc, "\n".join(lines))
    return 0


def _add_detect_scope(sub: Any) -> None:
    det = sub.add_parser("detect", help="run a detection pack over a case")
    det.add_argument("case", metavar="CASE")
    det.add_argument("--pack", default="token-forgery", help="pack name or pack YAML file")
    det.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE",
                     help="pack parameter, e.g. -p baseline_days=14 -p iocs=list.csv")
    det.add_argument("--json", action="store_true")
    det.add_argument("--no-progress", dest="progress", action="store_false")
    _add_engine_args(det)
    det.set_defaults(func=cmd_detect)

    sco = sub.add_parser("scope", help="scope the breach; writes CASE/scope.json")
    sco.add_argument("case", metavar="CASE")
    sco.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE",
                     help="pack parameter (used when detect has not run yet)")
    sco.add_argument("--json", action="store_true")
    _add_engine_args(sco)
    sco.set_defaults(func=cmd_scope)


# ----- timeline and graph (issue 8) -------------------------------------------------------------
def cmd_timeline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ir_toolkit.analysis.timeline import TIMELINE_FORMATS, case_findings, write_timeline
    from ir_toolkit.case import Case

    if Path(args.out).suffix.lower() not in TIMELINE_FORMATS:
        raise UserError(f"{args.out}: timeline must be written to a .csv or .jsonl file")
    case = Case.open(args.case)
    rows = write_timeline(case, args.out, findings=case_findings(case), progress=args.progress)
    case.log_action("timeline.export", out=str(args.out), rows=rows)
    _emit(args, {"out": str(args.out), "rows": rows}, f"timeline: {rows} row(s) written to {args.out}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ir_toolkit.analysis.graph import GRAPH_FORMATS, build_graph, export_graph
    from ir_toolkit.analysis.timeline import case_findings
    from ir_toolkit.case import Case

    if Path(args.out).suffix.lower() not in GRAPH_FORMATS:
        raise UserError(f"{args.out}: graph must be written to a .graphml, .gexf or .json file")
    case = Case.open(args.case)
    graph = build_graph(case, findings=case_findings(case))
    export_graph(graph, args.out)
    doc = {"out": str(args.out), "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges()}
    case.log_action("graph.export", **doc)
    _emit(args, doc, f"graph: {doc['nodes']} node(s), {doc['edges']} edge(s) written to {args.out}")
    return 0


def _add_timeline_graph(sub: Any) -> None:
    tl = sub.add_parser("timeline", help="export a Timesketch-ready timeline")
    tl.add_argument("case", metavar="CASE")
    tl.add_argument("--out", required=True, metavar="FILE.(csv|jsonl)")
    tl.add_argument("--json", action="store_true")
    tl.add_argument("--no-progress", dest="progress", action="store_false")
    tl.set_defaults(func=cmd_timeline)

    gr = sub.add_parser("graph", help="export the actor graph")
    gr.add_argument("case", metavar="CASE")
    gr.add_argument("--out", required=True, metavar="FILE.(graphml|gexf|json)")
    gr.add_argument("--json", action="store_true")
    gr.set_defaults(func=cmd_graph)


# ----- report, run, demo (issue 9) --------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case
    from ir_toolkit.report.html import render_report

    path = render_report(Case.open(args.case, writable=True), out=args.out, redact=args.redact, tz=args.tz)
    sys.stdout.write(f"report written: {path}\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case
    from ir_toolkit.playbook import load_playbook, parse_assignments, run_playbook

    playbook = load_playbook(args.playbook)
    params = parse_assignments(playbook, args.params)
    case = Case.open(args.case, writable=True)
    report = run_playbook(playbook, case, params, progress=args.progress)
    sys.stdout.write(f"playbook {playbook.id}: {len(playbook.notebooks)} notebook(s) executed into "
                     f"{case.reports_dir / 'notebooks'}\nreport written: {report}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ir_toolkit.demo import run_demo

    report, seconds = run_demo(args.out, progress=args.progress)
    sys.stdout.write(f"report written: {report}\ndemo finished in {seconds:.1f} s\n")
    return 0


def _tz(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {value!r} (use an IANA name)") from None
    return value


def _add_report_run_demo(sub: Any) -> None:
    rep = sub.add_parser("report", help="write the self-contained HTML report")
    rep.add_argument("case", metavar="CASE")
    rep.add_argument("--redact", action="store_true", help="pseudonymise people and internal addresses")
    rep.add_argument("--out", metavar="FILE", help="default CASE/reports/report.html")
    rep.add_argument("--tz", default="UTC", type=_tz, help="display time zone (default UTC)")
    rep.set_defaults(func=cmd_report)

    run = sub.add_parser("run", help="execute a playbook's notebooks")
    run.add_argument("playbook", metavar="PLAYBOOK", help="a playbooks/*.yaml name or path")
    run.add_argument("--case", required=True)
    run.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--progress", action="store_true", help="show per-cell progress")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="sample tenant -> playbook -> report")
    demo.add_argument("--out", default="demo-case", metavar="DIR")
    demo.add_argument("--progress", action="store_true", help="show per-cell progress")
    demo.set_defaults(func=cmd_demo)


# ----- token (issue 6) --------------------------------------------------------------------------
_TOKEN_FILE_LIMIT = 1 << 20


def _read_token_arg(arg: str) -> str:
    """TOKEN_OR_FILE: ``-`` reads stdin, an existing file is read, anything else is the token itself."""
    from pathlib import Path

    from ir_toolkit.tokens.jwt import JWT_PATTERN

    def is_file(p: Path) -> bool:
        try:
            return p.is_file()
        except (OSError, ValueError):  # names too long for a path are tokens, not files
            return False

    if arg == "-":
        text, where = sys.stdin.read(_TOKEN_FILE_LIMIT), "stdin"
    elif is_file(Path(arg)):
        p = Path(arg)
        if p.stat().st_size > _TOKEN_FILE_LIMIT:
            raise UserError(f"{p}: file larger than 1 MiB: use 'ir-toolkit token scan' for logs")
        text, where = p.read_text(encoding="utf-8", errors="replace"), str(p)
    elif "." not in arg:
        raise UserError("TOKEN_OR_FILE is no file, and not a token (a token has dots between its segments)")
    else:
        return arg
    found = sorted(set(JWT_PATTERN.findall(text)))
    if len(found) > 1:
        raise UserError(f"{where}: holds {len(found)} different tokens: use 'ir-toolkit token scan'")
    return found[0] if found else text


def _printable(value: Any) -> Any:
    """Claims are attacker-written: show control characters (newlines, terminal escapes) as \\xNN."""
    if not isinstance(value, str):
        return value
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in value)


def _token_text(result: dict[str, Any]) -> str:
    k, c = result.get("key") or {}, result["claims"]
    lines = [f"token {result['fingerprint']}: {result['verdict'].upper()}",
             f"  signature: {result['signature']} ({result['alg']})"]
    if k.get("source") is None:
        lines.append(f"  key: {k.get('kid') or k.get('x5t') or '(none named)'} (in no catalogue or given JWKS file)")
    else:
        lines.append(f"  key: {k['kid'] or k['x5t']} kind={k['kind']} compromised={'yes' if k['compromised'] else 'no'}"
                     f" valid {k['not_before'] or '?'} .. {k['not_after'] or '?'} source={k['source']}")
    for name in ("iss", "tid", "aud", "appid", "azp", "upn", "unique_name", "uti", "sid", "iat", "nbf", "exp"):
        if c.get(name) is not None:
            lines.append(f"  {name}: {c[name]}")
    lines += ["  reasons:"] + [f"    - {r}" for r in result["reasons"]]
    if "token" in result:
        lines.append(f"  token: {result['token']}")
    return "\n".join(map(_printable, lines))


def cmd_token_inspect(args: argparse.Namespace) -> int:
    from ir_toolkit.tokens import build_catalogue, inspect_token

    token = _read_token_arg(args.token)
    catalogue = build_catalogue(args.jwks, args.online, args.discovery_url or _default_urls())
    result = inspect_token(token, catalogue=catalogue, show_token=args.show_token)
    _emit(args, result, _token_text(result))
    return 0


def _default_urls() -> tuple[str, ...]:
    from ir_toolkit.tokens import DISCOVERY_URLS

    return DISCOVERY_URLS


def cmd_token_scan(args: argparse.Namespace) -> int:
    from ir_toolkit.tokens import build_catalogue, results_frame, scan_files

    case = None
    if args.case:
        from ir_toolkit.case import Case

        case = Case.open(args.case, writable=True)
    catalogue = build_catalogue(args.jwks, args.online, args.discovery_url or _default_urls())
    results = scan_files(args.files, catalogue=catalogue, show_token=args.show_token, progress=args.progress)
    table = results_frame(results)
    summary: dict[str, Any] = {"files": len(args.files), "tokens": len(results),
                               "verdicts": table["verdict"].value_counts().to_dict()}
    if args.out:
        from ir_toolkit.tokens.casework import write_table

        summary["out"] = str(write_table(table, args.out))
    if case is not None:
        from ir_toolkit.tokens.casework import record_in_case

        summary["case"] = record_in_case(case, results, args.files)
    if getattr(args, "json", False):
        _emit(args, {**summary, "results": results}, "")
        return 0
    shown = table[["fingerprint", "verdict", "signature", "key_kind", "tid", "user", "uti", "occurrences"]]
    text = shown.map(_printable).to_string(index=False) if len(table) else "no tokens found"
    counts = ", ".join(f"{v} {k}" for k, v in summary["verdicts"].items())
    text += f"\n{len(results)} token(s) in {len(args.files)} file(s){': ' + counts if counts else ''}"
    if "out" in summary:
        text += f"; table written to {summary['out']}"
    if "case" in summary:
        stored = summary["case"]
        text += f"; {stored['events_stored']} event(s) and {stored['findings']} finding(s) in the case"
    _emit(args, summary, text)
    return 0


def cmd_token_keys(args: argparse.Namespace) -> int:
    from ir_toolkit.tokens import build_catalogue

    keys = build_catalogue(args.jwks, args.online, args.discovery_url or _default_urls()).describe()
    text = "\n".join(f"{k['kid']}  {k['kind']:<10} {'COMPROMISED ' if k['compromised'] else ''}"
                     f"{k['not_before'] or '?'} .. {k['not_after'] or '?'}  {k['source']}" for k in keys)
    _emit(args, keys, text + f"\n{len(keys)} key(s)")
    return 0


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jwks", action="append", default=[], metavar="FILE",
                   help="extra JWKS file (repeatable); a key's kind comes from its issuer field")
    p.add_argument("--online", action="store_true", help="also fetch the public discovery keys endpoints")
    p.add_argument("--discovery-url", action="append", default=[], metavar="URL",
                   help="keys endpoint for --online (repeatable; default Microsoft's common v2 endpoint)")
    p.add_argument("--json", action="store_true")


def _add_token(sub: Any) -> None:
    tok = sub.add_parser("token", help="token forensics")
    tok_sub = tok.add_subparsers(dest="token_verb", metavar="ACTION", parser_class=_Parser)
    tok_sub.required = True
    ins = tok_sub.add_parser("inspect", help="decode, verify and judge one token")
    ins.add_argument("token", metavar="TOKEN_OR_FILE", help="the token, a file holding it, or - for stdin")
    _key_options(ins)
    ins.add_argument("--show-token", action="store_true", help="print the full token (default: fingerprint)")
    ins.set_defaults(func=cmd_token_inspect)
    scan = tok_sub.add_parser("scan", help="find and judge every token in files (logs, HAR, scripts)")
    scan.add_argument("files", metavar="FILE", nargs="+")
    _key_options(scan)
    scan.add_argument("--case", metavar="CASE", help="also store token events and findings in this case")
    scan.add_argument("--out", metavar="FILE.(csv|jsonl|json)", help="write the results table")
    scan.add_argument("--show-token", action="store_true", help="include full tokens (default: fingerprints)")
    scan.add_argument("--no-progress", dest="progress", action="store_false")
    scan.set_defaults(func=cmd_token_scan)
    keys = tok_sub.add_parser("keys", help="list the signing-key catalogue")
    _key_options(keys)
    keys.set_defaults(func=cmd_token_keys)


# ----- sample (issue 3) -------------------------------------------------------------------------
def cmd_sample_make(args: argparse.Namespace) -> int:
    from ir_toolkit.sample import make_sample

    key = make_sample(args.dir, seed=args.seed, users=args.users, days=args.days, scale=args.scale,
                      gzip=args.gzip, progress=args.progress)
    t = key["tenant"]
    text = (f"sample tenant {t['domain']} written to {args.dir}: {t['records']['events_total']} events, "
            f"{len(key['compromised_mailboxes'])} compromised mailboxes; answer key: answer_key.json")
    _emit(args, {"dir": str(args.dir), "tenant": t, "window": key["window"]}, text)
    return 0


def _add_sample(sub: Any) -> None:
    sample = sub.add_parser("sample", help="the generated sample tenant")
    sample_sub = sample.add_subparsers(dest="sample_verb", metavar="ACTION", parser_class=_Parser)
    sample_sub.required = True
    make = sample_sub.add_parser("make", help="write a sample tenant's raw logs and answer key")
    make.add_argument("dir", metavar="DIR")
    make.add_argument("--seed", type=int, default=558)
    make.add_argument("--users", type=int, default=40)
    make.add_argument("--days", type=int, default=45)
    make.add_argument("--scale", type=float, default=1.0, help="grow users and days together")
    make.add_argument("--gzip", action="store_true", help="write JSON pages as .json.gz")
    make.add_argument("--json", action="store_true")
    make.add_argument("--no-progress", dest="progress", action="store_false")
    make.set_defaults(func=cmd_sample_make)


# ----- case and verify (issue 2) ----------------------------------------------------------------
def _add_case_verify(sub: Any) -> None:
    case = sub.add_parser("case", help="create or show a case folder")
    case_sub = case.add_subparsers(dest="case_verb", metavar="ACTION", parser_class=_Parser)
    case_sub.required = True
    init = case_sub.add_parser("init", help="create a new case folder")
    init.add_argument("case", metavar="CASE")
    init.add_argument("--tenant", required=True, help="tenant domain or id")
    init.add_argument("--cloud", default="global", choices=["global", "usgov", "usgovdod", "china"])
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=cmd_case_init)
    show = case_sub.add_parser("show", help="summarise a case")
    show.add_argument("case", metavar="CASE")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_case_show)

    ver = sub.add_parser("verify", help="check evidence files against case.json (exit 1 if changed)")
    ver.add_argument("case", metavar="CASE")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_verify)


# ----- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every verb of the DESIGN.md contract."""
    p = _Parser(prog="ir-toolkit", description="Incident response for Microsoft 365 / Entra ID token forgery.")
    p.add_argument("--version", action="version", version=f"ir-toolkit {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for add in (_add_case_verify, _add_import, _add_collect, _add_detect_scope, _add_timeline_graph,
                _add_report_run_demo, _add_token, _add_sample):
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except UserError as exc:
        sys.stderr.write(f"ir-toolkit: error: {exc}\n")
        return exc.exit_code
    except IrToolkitError as exc:
        sys.stderr.write(f"ir-toolkit: {exc}\n")
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        sys.stderr.write("ir-toolkit: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if args.debug:
            raise
        sys.stderr.write(f"ir-toolkit: internal error: {exc.__class__.__name__}: {exc} (rerun with --debug)\n")
        return 3
