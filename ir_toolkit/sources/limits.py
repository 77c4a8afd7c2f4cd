"""The bounds every reader keeps, whatever an evidence file holds (see docs/import.md, "Limits").

A record beyond a bound is quarantined, never imported half and never allowed to stop the file:

* :data:`MAX_RECORD` characters per record (a JSON value, a JSON line, a CSV row). A bigger one
  is skipped in bounded memory and quarantined as a reference (file, byte offset, length, sha256),
  not copied.
* :data:`MAX_DEPTH` levels of nesting per record (Graph and audit records nest 6 deep at most;
  deeper ones would make later verbs recurse).
* A gzip file expands to at most :data:`MAX_INFLATE` times its compressed size, or
  :data:`MIN_INFLATE_CAP` bytes when that is more; what lies beyond is quarantined with the reason.

Each bound can be set for one run through the environment variable of the same name with the
prefix ``IR_TOOLKIT_`` (for example ``IR_TOOLKIT_MAX_RECORD=200000000``).
"""

from __future__ import annotations

import os


def _env(name: str, default: int) -> int:
    try:
        return max(int(os.environ.get(f"IR_TOOLKIT_{name}", default)), 1)
    except ValueError:
        return default


MAX_RECORD = _env("MAX_RECORD", 64 << 20)
MAX_DEPTH = _env("MAX_DEPTH", 64)
MAX_INFLATE = _env("MAX_INFLATE", 200)
MIN_INFLATE_CAP = _env("MIN_INFLATE_CAP", 4 << 30)


def inflate_cap(compressed_size: int) -> int:
    """The most bytes a gzip file of ``compressed_size`` bytes may expand to."""
    return max(compressed_size * MAX_INFLATE, MIN_INFLATE_CAP)


def depth(value: object, limit: int | None = None) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0), counted without recursion.

    Stops counting at ``limit`` + 1 (default :data:`MAX_DEPTH`), so a hostile value costs no more
    than its first ``limit`` levels.
    """
    cap = (MAX_DEPTH if limit is None else limit) + 1
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            d += 1
            if d > deepest:
                deepest = d
                if deepest >= cap:
                    return deepest
            stack.extend((x, d) for x in v if isinstance(x, dict | list))
    return deepest
