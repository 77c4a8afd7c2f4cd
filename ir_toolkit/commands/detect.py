"""`ir-toolkit detect` and `scope`: the detection pack and breach scoping (issues 7, 10)."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from ir_toolkit.commands.common import emit
from ir_toolkit.errors import UserError

log = logging.getLogger(__name__)


# ----- detect and scope (issue 7) ---------------------------------------------------------------
def _pack_params(pairs: list[str], pack: str = "token-forgery") -> dict[str, str]:
    """``-p NAME=VALUE`` pairs, checked against the pack's declared types and bounds before anything runs."""
    from ir_toolkit.analysis.detections import load_pack

    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"-p {pair!r}: parameters are NAME=VALUE")
        params[name.strip()] = value.strip()
    load_pack(pack).resolve(params)
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
    params = _pack_params(args.params, args.pack)  # before the engines are even imported
    from ir_toolkit.analysis.detect import detect, finding_counts

    findings = detect(args.case, pack=args.pack, params=params, progress=args.progress,
                      engine=args.engine, engine_options=_engine_options(args))
    if args.json:
        from ir_toolkit.case import Case

        doc = json.loads((Case.open(args.case).root / "findings.json").read_text(encoding="utf-8"))
        emit(args, doc, "")
        return 0
    lines = [f"{len(findings)} finding(s) written to {args.case}/findings.parquet and findings.json"]
    lines += [f"  {key:<34} {n}" for key, n in finding_counts(findings).items()]
    strong = findings[findings["verdict"].isin(["confirmed", "likely"])]
    lines += [f"  [{r.verdict}] {r.explanation}" for r in strong.head(20).itertuples(index=False)]
    emit(args, None, "\n".join(lines))
    return 0


def cmd_scope(args: argparse.Namespace) -> int:
    params = _pack_params(args.params)
    from ir_toolkit.analysis.scope import scope

    doc = scope(args.case, params=params or None, engine=args.engine,
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
    emit(args, doc, "\n".join(lines))
    return 0


def add_parser(sub: Any) -> None:
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
