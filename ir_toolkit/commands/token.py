"""`ir-toolkit token inspect|scan|keys`: token forensics (issue 6)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ir_toolkit.commands.common import Parser, emit
from ir_toolkit.errors import UserError

log = logging.getLogger(__name__)


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
    emit(args, result, _token_text(result), scrub=not args.show_token)
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
        emit(args, {**summary, "results": results}, "", scrub=not args.show_token)
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
    emit(args, summary, text, scrub=not args.show_token)
    return 0


def cmd_token_keys(args: argparse.Namespace) -> int:
    from ir_toolkit.tokens import build_catalogue

    keys = build_catalogue(args.jwks, args.online, args.discovery_url or _default_urls()).describe()
    text = "\n".join(f"{k['kid']}  {k['kind']:<10} {'COMPROMISED ' if k['compromised'] else ''}"
                     f"{k['not_before'] or '?'} .. {k['not_after'] or '?'}  {k['source']}" for k in keys)
    emit(args, keys, text + f"\n{len(keys)} key(s)")
    return 0


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jwks", action="append", default=[], metavar="FILE",
                   help="extra JWKS file (repeatable); a key's kind comes from its issuer field")
    p.add_argument("--online", action="store_true", help="also fetch the public discovery keys endpoints")
    p.add_argument("--discovery-url", action="append", default=[], metavar="URL",
                   help="keys endpoint for --online (repeatable; default Microsoft's common v2 endpoint)")
    p.add_argument("--json", action="store_true")


def add_parser(sub: Any) -> None:
    tok = sub.add_parser("token", help="token forensics")
    tok_sub = tok.add_subparsers(dest="token_verb", metavar="ACTION", parser_class=Parser)
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
