"""Run every benchmark (``python -m bench``) or the ones named (``python -m bench import collect``).

Options after the names go to each named benchmark (``python -m bench e2e --events 1000000``).
The end-to-end benchmark (``e2e``, 10 million events by default) runs only when named.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ONLY_WHEN_NAMED = ("e2e_bench",)


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in Path(__file__).parent.glob("*_bench.py"))
    flags = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    argv, options = argv[:flags], argv[flags:]
    wanted = [n for n in names if any(n.startswith(a) for a in argv)] if argv else \
        [n for n in names if n not in ONLY_WHEN_NAMED]
    if not wanted:
        print(f"no benchmark matches {argv}; have: {', '.join(names)}", file=sys.stderr)
        return 2
    status = 0
    for name in wanted:
        print(f"=== {name}", flush=True)
        status |= importlib.import_module(f"bench.{name}").main(options)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
