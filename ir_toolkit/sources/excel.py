"""CSV files that went through Excel (or a portal's locale): separators and the order of day and month.

A client opens the Purview, Entra or Log Analytics CSV in Excel and saves it again. Excel writes
the list separator of its locale (``;`` where the decimal separator is a comma, a tab for
"Unicode text"), may add a ``sep=;`` first line, drops or adds the BOM, saves in Windows-1252,
and rewrites every date cell in the locale's short form: ``28/05/2023 14:03`` (en-GB, fr, de with
``28.05.2023 14:03``) or ``5/28/2023 2:03:00 PM`` (en-US).

* :func:`csv_delimiter` reads the separator from the header line (the character among
  ``, ; TAB |`` that occurs most often outside quotes; ``,`` when none does; ``sep=X`` wins).
* :func:`date_order` decides day-first or month-first **from the file's own values**: every column
  whose sampled values look like ``a/b/yyyy`` (or ``a.b.yyyy``, ``a-b-yyyy``) is read down the
  file until a value settles it: ``a`` above 12 means day-first, ``b`` above 12 month-first, and a
  dot separator (``28.05.2023``; no locale writes month.day.year) means day-first. When no value
  settles it (every day of the export is the 12th or earlier), the file is *ambiguous*: its dates
  whose two readings differ are quarantined with the reason, never guessed (``5/5/2023`` reads one
  way only and is kept); ``--day-first`` / ``--month-first`` then name the order.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["AMBIGUOUS", "DAY_FIRST", "MONTH_FIRST", "csv_delimiter", "date_columns", "date_order", "dayfirst_of",
           "is_sep_line"]

DAY_FIRST, MONTH_FIRST, AMBIGUOUS = "day-first", "month-first", "ambiguous"
SCAN_LIMIT = 2_000_000  # records read at most to settle the order
_DELIMITERS = (",", ";", "\t", "|")
_SEP_LINE = re.compile(r'^\ufeff?"?sep=(.)"?\s*$', re.IGNORECASE)
_SEP_ROW = re.compile(r"^\ufeff?sep=.?$", re.IGNORECASE)
_LOCALE_DATE = re.compile(r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4})[,T\s]")


def csv_delimiter(head: str) -> str:
    """The field separator of a CSV file from its first line (see the module docstring)."""
    line = head.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    sep = _SEP_LINE.match(line)
    if sep is not None:
        return sep.group(1)
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties: the first (",")
    return best if counts[best] else ","


def is_sep_line(row: list[str]) -> bool:
    """True for Excel's ``sep=X`` hint line (read as the first CSV row)."""
    # read with its own separator, "sep=;" comes back as ["sep=", ""]
    return 1 <= len(row) <= 2 and bool(_SEP_ROW.match(row[0])) and (len(row) == 1 or row[1] == "")


def _verdict(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    m = _LOCALE_DATE.match(value + " ")
    if m is None:
        return None
    a, sep, b = int(m.group(1)), m.group(2), int(m.group(3))
    if sep == "." or (a > 12 >= b):
        return DAY_FIRST
    if b > 12 >= a:
        return MONTH_FIRST
    return AMBIGUOUS


def date_columns(sampled: list[dict[str, Any]]) -> list[str]:
    """The columns of the sampled records that hold locale dates (``a/b/yyyy h:mm``)."""
    return sorted({k for r in sampled for k, v in r.items() if _verdict(v) is not None})


def date_order(records: Iterable[tuple[int, Any]], columns: list[str]) -> str:
    """``day-first``, ``month-first`` or ``ambiguous``: the first value of ``columns`` that settles it.

    Args:
        records: ``(position, record)`` of the whole file (a reader's output).
        columns: The columns holding locale dates (:func:`date_columns` of its first records).
    """
    for _, rec in itertools.islice(records, SCAN_LIMIT):
        if isinstance(rec, dict):
            for c in columns:
                verdict = _verdict(rec.get(c))
                if verdict in (DAY_FIRST, MONTH_FIRST):
                    return verdict
    return AMBIGUOUS


def dayfirst_of(order: str | None) -> bool | None:
    """The ``dayfirst`` argument of the time parsers for an order: None reads only unambiguous dates."""
    return True if order == DAY_FIRST else None if order == AMBIGUOUS else False
