"""Benchmark: redaction stays linear in the length of attacker-controlled text.

Run: ``python -m bench redact`` (or ``python -m bench.redact_bench --chars 200000``). For each hostile
shape (runs that look like the start of an address, a path, an IPv6 address, a name), redacts one
string of ``--chars`` characters and, as the baseline measured in the same run, 100 strings of a
hundredth of that length (the same characters in all). A linear pattern costs about the same for
both; a backtracking one costs ``chars / 100`` times more for the long string (a 200,000-character
user agent once took 230 s). Goal: every ratio <= 3.
"""

from __future__ import annotations

import argparse
import time

from ir_toolkit.report.redact import Redactor

SHAPES = {
    "local-part run": "a",
    "dotted run": "a.",
    "digits and dots": "1.",
    "at signs": "a@",
    "colons": "a:",
    "slashes": "/a",
    "name-like": "Adele ",
    "encoded": "%40a",
}


def _seconds(red: Redactor, texts: list[str]) -> float:
    t = time.perf_counter()
    for text in texts:
        red.text(text)
    return time.perf_counter() - t


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.redact_bench")
    ap.add_argument("--chars", type=int, default=200_000)
    args = ap.parse_args(argv)
    red = Redactor(b"bench", domains=["contoso.com"], people=[("Adele Vance", "Adele", "Vance")],
                   local_parts=["adele.vance@contoso.com"], orgs=["Contoso"],
                   tenant_ids=["5f2b8c1e-4d3a-4b2c-9e8f-7a6b5c4d3e2f"], keep_ips=[])
    worst = 0.0
    for name, unit in SHAPES.items():
        long_text = unit * (args.chars // len(unit))
        short = [unit * (args.chars // 100 // len(unit))] * 100
        base = _seconds(red, short)
        one = _seconds(red, [long_text])
        ratio = one / base if base > 0 else 1.0
        worst = max(worst, ratio)
        print(f"{name:16s} {args.chars} chars: {one:.3f} s; 100 x {args.chars // 100}: {base:.3f} s; "
              f"ratio {ratio:.2f} (goal <= 3)")
    return 0 if worst <= 3 else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
