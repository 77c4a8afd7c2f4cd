"""SQL text that never carries a pasted path or value: literals and identifiers, quoted once, here.

Everything read from logs is attacker-controlled, and so is a case folder's name (a responder
copies what a client hands over). SQL is therefore built from constant text plus:

* :func:`literal` for a value (strings quoted with ``'`` doubled; numbers, booleans, timestamps,
  lists), used by every detection parameter and time bound;
* :func:`identifier` for a column or view name (double quotes doubled);
* DuckDB relations (``con.read_parquet(files)``, ``con.read_json(path)``) for files, so a path
  never becomes SQL text at all (see :mod:`ir_toolkit.case.store`);
* bound parameters (``$name``) where a query takes values at run time.

This is a bottom layer (like :mod:`ir_toolkit.textsafe`): every other layer may use it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["identifier", "literal"]


def literal(value: Any) -> str:
    """``value`` as a portable SQL literal (DuckDB and Spark SQL).

    None is ``NULL``; booleans ``TRUE``/``FALSE``; finite numbers as written (NaN and infinities
    are ``NULL``); timestamps ``CAST('YYYY-MM-DD HH:MM:SS.ffffff' AS TIMESTAMP)`` in UTC; lists
    ``a, b`` (empty: ``NULL``); anything else as text in single quotes, each ``'`` doubled and NUL
    characters dropped (no engine keeps them in a literal).
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "NULL"
    if isinstance(value, pd.Timestamp | datetime):
        t = pd.Timestamp(value)
        t = t.tz_convert("UTC") if t.tzinfo else t
        return f"CAST('{t.strftime('%Y-%m-%d %H:%M:%S.%f')}' AS TIMESTAMP)"
    if isinstance(value, list | tuple | set | frozenset):
        items = [literal(v) for v in value]
        return ", ".join(items) if items else "NULL"
    return "'" + str(value).replace("\x00", "").replace("'", "''") + "'"


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (``"`` doubled, NUL dropped)."""
    return '"' + str(name).replace("\x00", "").replace('"', '""') + '"'
