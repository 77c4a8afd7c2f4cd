"""Benchmark: rendering the HTML report (plain and redacted) on a large case.

Run: ``python -m bench report`` (or ``python -m bench.report_bench --events 300000``). Builds a
synthetic case (sign-ins and MailItemsAccessed of many users, an actor on a few mailboxes,
a finding and a scope), then prints the seconds to render the report plainly and redacted,
and their ratios to a baseline measured in the same run: reading the same events from the
case into pandas. Goals: plain within 4x of the read, redacted within 8x (each distinct
string is redacted once).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.report.html import FIGURE_COLUMNS, render_report


def build_case(root: Path, events: int, users: int = 500) -> Case:
    case = Case.init(root, tenant="contoso.onmicrosoft.com")
    rng = np.random.default_rng(558)
    start = pd.Timestamp("2023-05-01", tz="UTC")
    upns = np.array([f"user{i}@contoso.onmicrosoft.com" for i in range(users)])
    who = upns[rng.integers(0, users, events)]
    actor = rng.random(events) < 0.01
    frame = pd.DataFrame({
        "time": start + pd.to_timedelta(rng.integers(0, 45 * 86400, events), unit="s"),
        "source": np.where(rng.random(events) < 0.5, "signin_noninteractive", "mail_access"),
        "operation": "event", "result": "success", "user": who, "mailbox": who,
        "ip": np.where(actor, "203.0.113.66", [f"10.0.{i % 250}.{i % 200}" for i in range(events)]),
        "user_agent": np.where(actor, "Client=REST;Client=RESTSystem;;", "Mozilla/5.0"),
        "token_id": np.where(actor, "forged", [f"t{i}" for i in range(events)]),
        "mail_access_type": "Bind", "record_id": [f"r{i}" for i in range(events)],
        "raw": json.dumps({"userDisplayName": "Some Person"}),
    })
    case.write_events(frame)
    (root / "findings.json").write_text(json.dumps([{
        "finding_id": "f1", "detection": "orphan-token", "title": "orphan token", "severity": "high",
        "verdict": "confirmed", "ip": "203.0.113.66", "token_id": "forged", "events": int(actor.sum()),
        "explanation": "bench", "evidence": [f"r{i}" for i in np.flatnonzero(actor)[:50]]}]))
    (root / "scope.json").write_text(json.dumps({"actor_ips": [{"ip": "203.0.113.66"}],
                                                 "compromised_mailboxes": [{"upn": upns[0]}]}))
    return case


def _best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report_bench")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        case = build_case(Path(tmp) / "case", args.events)
        base = _best(lambda: case.read_events(columns=FIGURE_COLUMNS), args.repeat)
        plain = _best(lambda: render_report(case), args.repeat)
        red = _best(lambda: render_report(case, redact=True, out=Path(tmp) / "r.html"), args.repeat)
    print(f"events: {args.events}  read: {base:.2f} s  report: {plain:.2f} s ({plain / base:.1f}x, goal <= 4x)  "
          f"redacted: {red:.2f} s ({red / base:.1f}x, goal <= 8x)")
    return 0 if plain / base <= 4 and red / base <= 8 else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
