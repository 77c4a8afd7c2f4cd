"""`ir-toolkit verify`: is the case as the toolkit left it? (exit 1 when anything changed).

Runs read-only with ``--read-only`` and by itself on a read-only case folder or medium; otherwise it
appends one ``verify`` line to the custody log. Prints the custody head hash so the examiner can
note it outside the case and check it later with ``--expect-head``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ir_toolkit.commands.common import emit


def cmd_verify(args: argparse.Namespace) -> int:
    from ir_toolkit.case import Case
    from ir_toolkit.case.custody import custody_head
    from ir_toolkit.case.verify import read_only_reason

    case = Case.open(args.case)
    result = case.verification(expect_head=args.expect_head)
    reason = "--read-only" if args.read_only else read_only_reason(case.root)
    if reason is None:
        case.log_action("verify", intact=result.intact, problems=result.problems, head_before=result.head)
        result.head, result.lines = custody_head(case.root)
    doc = {"intact": result.intact, "evidence_files": result.evidence_files, "problems": result.problems,
           "artifacts": result.artifacts, "custody_head": result.head, "custody_lines": result.lines,
           "notes": result.notes, "read_only": reason}
    head = (f"custody head: {result.head} ({result.lines} line(s)); note it outside the case and check it later "
            f"with 'ir-toolkit verify CASE --expect-head {result.head}'")
    mode = f" (read-only: {reason}; nothing written)" if reason else ""
    if args.json:
        emit(args, doc, "")
    elif result.problems:
        for p in result.problems:
            sys.stderr.write(p + "\n")
        sys.stderr.write(f"case NOT intact: {len(result.problems)} problem(s); {result.evidence_files} evidence "
                         f"file(s), {result.artifacts} recorded artifact(s){mode}\n")
        sys.stdout.write(head + "\n")
    else:
        lines = [f"evidence intact: {result.evidence_files} file(s) match case.json; custody chain intact; "
                 f"{result.artifacts} recorded artifact(s) match it{mode}", *result.notes, head]
        sys.stdout.write("\n".join(lines) + "\n")
    return 1 if result.problems else 0


def add_parser(sub: Any) -> None:
    """Register the ``verify`` verb."""
    ver = sub.add_parser("verify", help="check evidence, custody chain and derived files (exit 1 if changed)")
    ver.add_argument("case", metavar="CASE")
    ver.add_argument("--read-only", action="store_true",
                     help="write nothing (automatic on a read-only case folder or medium)")
    ver.add_argument("--expect-head", metavar="HASH",
                     help="custody head noted earlier outside the case: it must still be in the chain")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_verify)
