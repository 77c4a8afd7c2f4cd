"""Checks of command-line values that run before anything touches the network or a case.

Every check raises :class:`~ir_toolkit.errors.UserError` with one line that names the option,
the value given and what was expected, so ``collect --since 2023-13-45`` fails in milliseconds
with exit 2 instead of after a sign-in attempt. Pure functions; no I/O, and nothing heavy imported
(no pandas), so a CLI verb can run them before it loads anything else.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from ir_toolkit.errors import UserError

ISO_FORMAT = "ISO 8601 UTC, e.g. 2023-06-01 or 2023-06-01T00:00:00Z"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")


def iso_time(option: str, value: str) -> datetime:
    """``value`` read as an ISO 8601 time (tz-aware; UTC unless it carries an offset).

    Raises:
        UserError: ``--since '2023-13-45': not a valid date or time; expected ISO 8601 ...``.
    """
    text = str(value).strip()
    if not _ISO.match(text):
        raise UserError(f"{option} {value!r}: not a date or time; expected {ISO_FORMAT}")
    try:
        ts = datetime.fromisoformat(text.replace(" ", "T", 1))
    except (ValueError, OverflowError):
        raise UserError(f"{option} {value!r}: not a valid date or time; expected {ISO_FORMAT}") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def window(since: str, until: str, *, since_option: str = "--since",
           until_option: str = "--until") -> tuple[datetime, datetime]:
    """The collection window ``[since, until)``: both readable and ``since`` strictly before ``until``.

    Raises:
        UserError: naming the unreadable value, or both values when the order is wrong.
    """
    start, end = iso_time(since_option, since), iso_time(until_option, until)
    if end <= start:
        raise UserError(f"{until_option} {until!r} is not after {since_option} {since!r}: "
                        f"the window is [{since_option}, {until_option})")
    return start, end


def number_in(option: str, value: float | int | None, lo: float, hi: float) -> None:
    """Check ``lo <= value <= hi`` (None passes: the option was not given).

    Raises:
        UserError: ``--page-size 0: must be between 1 and 1000``.
    """
    if value is None:
        return
    if not lo <= value <= hi:
        raise UserError(f"{option} {value:g}: must be between {lo:g} and {hi:g}")


def guid(option: str, value: str | None) -> str | None:
    """``value`` as a lower-case GUID (None passes).

    Raises:
        UserError: when it is not a GUID (a workspace id is the workspace's GUID, not its name).
    """
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise UserError(f"{option} {value!r}: not a GUID (expected e.g. 1a2b3c4d-0000-4000-8000-00000000abcd)") \
            from None
