"""Declared bounds of playbook and detection-pack parameters, checked before anything runs.

A parameter's specification (a playbook's ``parameters:`` entry or a pack's) may declare, next
to its type and default:

* ``min`` / ``max``: inclusive bounds of a number (``baseline_days: {default: 7, min: 1}``);
* ``format: timezone``: an IANA zone name (``Europe/Berlin``);
* ``not_before: OTHER``: a time that must not be earlier than parameter OTHER (a window's end).

:func:`check` applies one specification to one value, :func:`check_order` the ``not_before``
rules over all values. Both raise :class:`~ir_toolkit.errors.UserError` with one line naming the
parameter, the value and the bound, so ``-p baseline_days=-3`` stops before the case is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ir_toolkit.errors import UserError

BOUND_KEYS = ("min", "max", "format", "not_before")
FORMATS = ("timezone",)


def check(owner: str, name: str, value: Any, spec: Mapping[str, Any]) -> None:
    """Check one parameter value against its declared bounds (None and "" mean "not set" and pass).

    Args:
        owner: Who declares it, for the message (``pack token-forgery``, ``playbook single-mailbox``).
        name: The parameter.
        value: The typed value.
        spec: The declaration (keys of :data:`BOUND_KEYS` are read, others ignored).

    Raises:
        UserError: when the value is out of bounds.
    """
    if value is None or value == "":
        return
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None or hi is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{owner}: parameter {name}: {value!r} is not a number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = (f"between {lo} and {hi}" if lo is not None and hi is not None
                    else f"at least {lo}" if lo is not None else f"at most {hi}")
            raise UserError(f"{owner}: parameter {name}={value}: must be {span}")
    fmt = spec.get("format")
    if fmt == "timezone":
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(f"{owner}: parameter {name}={value!r}: not a time zone (use an IANA name such as "
                            "Europe/Berlin or UTC)") from None


def check_order(owner: str, values: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> None:
    """Apply every ``not_before`` rule: a parameter's time not earlier than the one it names.

    Raises:
        UserError: naming both parameters and values.
    """
    for name, spec in specs.items():
        other = spec.get("not_before")
        if not other or not values.get(name) or not values.get(str(other)):
            continue
        from ir_toolkit.timeutil import parse_time  # pandas loads only when two times are compared

        end, start = parse_time(values[name]), parse_time(values[str(other)])
        if end is not None and start is not None and end < start:
            raise UserError(f"{owner}: parameter {name}={values[name]} is before {other}={values[str(other)]}")


def validate_spec(owner: str, name: str, spec: Mapping[str, Any]) -> None:
    """Check a declaration itself (a playbook or pack author's mistake is a user error too)."""
    for key in ("min", "max"):
        if spec.get(key) is not None and (isinstance(spec[key], bool) or not isinstance(spec[key], int | float)):
            raise UserError(f"{owner}: parameter {name}: {key} must be a number, not {spec[key]!r}")
    if spec.get("format") is not None and spec["format"] not in FORMATS:
        raise UserError(f"{owner}: parameter {name}: unknown format {spec['format']!r} (known: {', '.join(FORMATS)})")
