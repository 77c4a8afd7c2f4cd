"""Objects as the AzureAD / AzureADPreview PowerShell modules print them (``Export-Csv`` of their output).

``Get-AzureADAuditSignInLogs`` and ``Get-AzureADAuditDirectoryLogs`` return Graph model objects whose nested
values (Status, Location, DeviceDetail, InitiatedBy ...) ``Export-Csv`` writes as their ``ToString()``::

    class SignInStatus {
      ErrorCode: 50126
      FailureReason: Error validating credentials ...
      AdditionalDetails: The user didn't enter the right credentials.
    }

a nested object on its own ``class Name {`` line, closed by ``}``. Read here as an object of text values (nested
objects as objects) so that ``status.errorCode`` and ``location.countryOrRegion`` are read as from JSON. Pure;
never raises.
"""

from __future__ import annotations

import re
from typing import Any

_OPEN = re.compile(r"^class [A-Za-z_][A-Za-z0-9_]* \{$")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(?: (.*))?$")
MAX_DEPTH = 16


def class_object(text: str) -> dict[str, Any] | None:
    """The object ``text`` prints (see the module docstring), or None when it is not one (a line that is no
    ``Key: value``, ``class X {`` or ``}``, unbalanced braces, nesting beyond :data:`MAX_DEPTH`)."""
    lines = text.strip().splitlines()
    if not lines or not _OPEN.match(lines[0].strip()):
        return None
    root: dict[str, Any] = {}
    stack = [root]
    key: str | None = None
    for raw in lines[1:]:
        line = raw.strip()
        if not line:
            continue
        if not stack:  # text after the outer object's closing brace
            return None
        if line == "}":
            stack.pop()
            continue
        m = _KEY.match(line)
        if m is None:
            if key is None:
                return None
            current = stack[-1][key]  # a value that went on over several lines
            if not isinstance(current, str):
                return None
            stack[-1][key] = f"{current}\n{line}"
            continue
        key, value = m.group(1), (m.group(2) or "").strip()
        if _OPEN.match(value):
            if len(stack) >= MAX_DEPTH:
                return None
            child: dict[str, Any] = {}
            stack[-1][key] = child
            stack.append(child)
            key = None
        else:
            stack[-1][key] = value
    return root if not stack else None
