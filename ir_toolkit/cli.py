"""``ir-toolkit``: one command, a verb per step of an investigation.

The CLI holds no logic of its own: each verb parses its arguments and calls the
layer that does the work. User errors print one line on stderr and exit 2;
``--json`` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

from ir_toolkit import __version__
from ir_toolkit.commands import collect as collect_cmd
from ir_toolkit.commands import detect as detect_cmd
from ir_toolkit.commands import evidence as evidence_cmd
from ir_toolkit.commands import preflight as preflight_cmd
from ir_toolkit.commands import token as token_cmd
from ir_toolkit.commands import verify as verify_cmd
from ir_toolkit.commands.common import Parser as _Parser
from ir_toolkit.commands.common import emit as _emit
from ir_toolkit.errors import IrToolkitError, UserError
from ir_toolkit.sources.graph.endpoints import CLOUD_ENDPOINTS
from ir_toolkit.textsafe import scrub_text

log = logging.getLogger("ir_toolkit.cli")

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


# ----- import (issue 4) -------------------------------------------------------------------------
def _add_import(sub: Any) -> None:
    imp = sub.add_parser("import", help="import log exports (files, folders, ZIP archives) into a case")
    imp.add_argument("case", metavar="CASE")
    imp.add_argument("files", metavar="FILE_DIR_OR_ZIP", nargs="+")
    imp.add_argument("--format", default="auto", help="format name, or auto (default)")
    imp.add_argument("--json", action="store_true")
    imp.add_argument("--no-progress", dest="progress", action="store_false")
    order = imp.add_mutually_exclusive_group()
    order.add_argument("--day-first", dest="dayfirst", action="store_const", const=True, default=None,
                       help="read locale dates a/b/yyyy as day/month (default: decided per file from its dates)")
    order.add_argument("--month-first", dest="dayfirst", action="store_const", const=False,
                       help="read locale dates a/b/yyyy as month/day")
    imp.add_argument("--allow-other-tenant", action="store_true",
                     help="import logs that name another tenant id than the case's")
    imp.set_defaults(func=cmd_import)


IMPORT_PARTIAL = 1  # exit status: the import ran, but a file was left out or wholly quarantined


def cmd_import(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case
    from ir_toolkit.case.importing import summary_line
    from ir_toolkit.sources.containers import display

    # the modules' objects (pandas, pyarrow, DuckDB, ours: some 70,000) live as long as the process: out of the
    # garbage collector's full passes, which otherwise walk them all again while the import allocates
    gc.freeze()
    started = time.perf_counter()
    case = Case.open(args.case, writable=True)
    progress = args.progress and not args.json and sys.stderr.isatty()
    results = case.import_files(args.files, format=args.format, progress=progress, dayfirst=args.dayfirst,
                                allow_other_tenant=args.allow_other_tenant)
    lines = []
    failed = [r for r in results if r.get("status") in ("not-imported", "all-quarantined")]
    for r in results:
        path = display(r["path"])
        if r.get("status") == "not-imported":
            lines.append(f"{path}: NOT imported: {display(r['reason'])}")
            continue
        if r.get("status") == "archive":
            lines.append(f"{path}: ZIP archive of {r['members']} member(s), hashed as evidence (members below)")
            continue
        note = " (already imported: nothing added)" if r.get("skipped") else ""
        if r.get("status") == "all-quarantined":
            note = f" - NOT imported: {display(r['reason'])}"
        lines.append(f"{path}: {r['format']}: {r['records']} records, {r['imported']} imported, "
                     f"{r['duplicates']} duplicates, {r['quarantined']} quarantined{note}")
    lines.append(summary_line(results, time.perf_counter() - started))  # what the responder waited for
    _emit(args, results, "\n".join(lines))
    if failed:
        sys.stderr.write(f"ir-toolkit: import incomplete: {len(failed)} of {len(results)} file(s) not imported "
                         f"(first: {display(failed[0]['path'])}: {display(failed[0]['reason'])})\n")
        return IMPORT_PARTIAL
    return 0


# ----- timeline and graph (issue 8) -------------------------------------------------------------
def cmd_timeline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ir_toolkit.analysis.timeline import TIMELINE_FORMATS, case_findings, write_timeline
    from ir_toolkit.case import Case

    if Path(args.out).suffix.lower() not in TIMELINE_FORMATS:
        raise UserError(f"{args.out}: timeline must be written to a .csv or .jsonl file")
    case = Case.open(args.case)
    rows = write_timeline(case, args.out, findings=case_findings(case), progress=args.progress)
    case.log_action("timeline.export", artifacts=[args.out], out=str(args.out), rows=rows)
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
    case.log_action("graph.export", artifacts=[args.out], **doc)
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

    path = render_report(Case.open(args.case, writable=True), out=args.out, redact=args.redact, tz=args.tz,
                         classification=args.classification or "", progress=args.progress and sys.stderr.isatty())
    sys.stdout.write(f"report written: {path}\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ir_toolkit.playbook import load_playbook, notebooks_out, parse_assignments, run_playbook

    playbook = load_playbook(args.playbook)
    params = parse_assignments(playbook, args.params)  # before the case layer is imported
    from ir_toolkit.case import Case

    case = Case.open(args.case, writable=True)
    report = run_playbook(playbook, case, params, progress=args.progress)
    out = notebooks_out(case, bool(params.get("redact")))
    sys.stdout.write(f"playbook {playbook.id}: {len(playbook.notebooks)} notebook(s) executed into "
                     f"{out}\nreport written: {report}\n")
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
    rep.add_argument("--classification", metavar="TEXT",
                     help="classification line on top of the report and of every printed page (e.g. TLP:AMBER)")
    rep.add_argument("--tz", default="UTC", type=_tz, help="display time zone (default UTC)")
    rep.add_argument("--no-progress", dest="progress", action="store_false")
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


# ----- sample (issue 3) -------------------------------------------------------------------------
def cmd_sample_make(args: argparse.Namespace) -> int:
    from ir_toolkit.sample import make_sample

    key = make_sample(args.dir, seed=args.seed, users=args.users, days=args.days, scale=args.scale,
                      gzip=args.gzip, progress=args.progress, drop=args.drop, gaps=args.gap,
                      shared_vpn=args.shared_vpn, frontend_ips=args.frontend_ips, story_name=args.story,
                      graph_activity=args.graph_activity)
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
    make.add_argument("--story", default="token-forgery",
                      help="the intruder's story: token-forgery (default), or another of ir_toolkit.sample.stories")
    make.add_argument("--users", type=int, default=40)
    make.add_argument("--days", type=int, default=45)
    make.add_argument("--scale", type=float, default=1.0, help="grow users and days together")
    make.add_argument("--gzip", action="store_true", help="write JSON pages as .json.gz")
    make.add_argument("--drop", action="append", default=[], metavar="NAME",
                      help="leave a log family out (repeatable): signins, signin_interactive, signin_noninteractive, "
                           "signin_serviceprincipal, directory_audit, ual, ual_graph, ual_csv, ual_other")
    make.add_argument("--gap", action="append", default=[], metavar="SOURCE:START:HOURS",
                      help="remove SOURCE's records from START for HOURS (repeatable), e.g. ual:2023-06-01T00:00Z:24")
    make.add_argument("--shared-vpn", action="store_true",
                      help="the actor also uses a commercial VPN address a legitimate user signs in from")
    make.add_argument("--frontend-ips", action="store_true",
                      help="legitimate REST mailbox access logged with Exchange Online front-end addresses")
    make.add_argument("--graph-activity", action="store_true",
                      help="also write Microsoft Graph activity logs (storage blobs): the tenant's Graph traffic, "
                           "the actor's Graph mail reads with tokens no sign-in issued, a first-party caller decoy")
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
    init.add_argument("--cloud", default="global", choices=list(CLOUD_ENDPOINTS))
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=cmd_case_init)
    show = case_sub.add_parser("show", help="summarise a case")
    show.add_argument("case", metavar="CASE")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_case_show)
    verify_cmd.add_parser(sub)


# ----- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every verb of the DESIGN.md contract."""
    p = _Parser(prog="ir-toolkit", description="Incident response for Microsoft 365 / Entra ID token forgery.")
    p.add_argument("--version", action="version", version=f"ir-toolkit {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for add in (_add_case_verify, _add_import, preflight_cmd.add_parser, collect_cmd.add_parser, detect_cmd.add_parser,
                evidence_cmd.add_parser, _add_timeline_graph, _add_report_run_demo, token_cmd.add_parser, _add_sample):
        add(sub)
    return p


#: Verbs that can take minutes on a large case: each ends with a one-line summary of its time on stderr.
TIMED_VERBS = ("import", "collect", "detect", "scope", "evidence", "timeline", "graph", "report", "run", "demo")


def stage_summary(verb: str, started: float) -> str:
    """``ir-toolkit: detect finished in 12.3 s (CPU 20.1 s, peak memory 0.61 GB)``: wall time since ``started``,
    CPU time of this process and the children it waited for (notebook kernels), the largest resident set."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    peak = max(me.ru_maxrss, kids.ru_maxrss) * 1024 / 1e9
    return (f"ir-toolkit: {verb} finished in {time.perf_counter() - started:.1f} s (CPU {cpu:.1f} s, "
            f"peak memory {peak:.2f} GB)")


def _scrub_record(record: logging.LogRecord) -> bool:
    """A logging filter: the message, formatted, with token-shaped strings removed."""
    record.msg, record.args = scrub_text(record.getMessage()), None
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_scrub_record)
    started = time.perf_counter()
    try:
        code = int(args.func(args))
        if args.verb in TIMED_VERBS and code == 0:  # a partial import ends with its one line of what was not read
            sys.stderr.write(stage_summary(args.verb, started) + "\n")
        return code
    except UserError as exc:
        sys.stderr.write(f"ir-toolkit: error: {scrub_text(str(exc))}\n")
        return exc.exit_code
    except IrToolkitError as exc:
        sys.stderr.write(f"ir-toolkit: {scrub_text(str(exc))}\n")
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        sys.stderr.write("ir-toolkit: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if args.debug:
            raise
        sys.stderr.write(f"ir-toolkit: internal error: {exc.__class__.__name__}: {scrub_text(str(exc))} "
                         "(rerun with --debug)\n")
        return 3
