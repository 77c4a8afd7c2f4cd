"""The secret scrubber on hostile text: time grows linearly with the input.

Run: ``python -m bench scrub`` (or ``python -m bench.scrub_bench --chars 400000``).
For each hostile shape the scrubber runs on ``n`` and ``8 n`` characters; a linear scrubber
shows a ratio near 8 (a backtracking one near 64 or worse). The baseline, measured in the same
run, is one linear pass over the same text (``str.lower``), so the per-character cost is
comparable across machines. Prints times and ratios; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

SHAPES: dict[str, str] = {
    "plain text": "a",
    "eyJ without dots": "eyJ",
    "eyJ segments": "eyJ.",
    "JWT-like prefixes": "eyJaaaaaaaaaa.",
    "client-secret prefixes": "1Q~",
    "bearer runs": "bearer ",
    "secret names": "password=",
    "user agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) ",
}


def _timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str]) -> int:
    from ir_toolkit.textsafe import scrub_text

    parser = argparse.ArgumentParser(prog="bench.scrub_bench")
    parser.add_argument("--chars", type=int, default=100_000, help="size of the small input (default 100000)")
    args = parser.parse_args(argv)
    n = args.chars
    print(f"{'shape':<24}{'n chars':>10}{'scrub s':>10}{'8n s':>10}{'ratio':>8}{'x lower()':>11}")
    for name, unit in SHAPES.items():
        small = (unit * (n // len(unit) + 1))[:n]
        large = small * 8
        t_small = _timed(lambda s=small: scrub_text(s))  # type: ignore[misc]
        t_large = _timed(lambda s=large: scrub_text(s))  # type: ignore[misc]
        base = _timed(lambda s=large: s.lower())  # type: ignore[misc]
        print(f"{name:<24}{n:>10}{t_small:>10.4f}{t_large:>10.4f}{t_large / max(t_small, 1e-9):>8.1f}"
              f"{t_large / max(base, 1e-9):>11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
