"""Field helpers shared by every record mapper: key normalisation, nested access, addresses.

Microsoft writes the same field as ``userPrincipalName`` (Graph), ``UserPrincipalName``
(Log Analytics), ``UserPrincipalName [UTC]``-style renamed portal columns and ``Type_``
duplicates. One normalisation step (:func:`normalise_keys`) lower-cases keys and strips
those decorations, so the mappers name each field once, in lower case.

Nested values arrive as objects (Graph JSON), as JSON text (CSV exports, Log Analytics
dynamic columns), as Python-literal text (exports written by pandas) or as PowerShell's
``@{Name=Value; ...}`` (Export-Csv of objects read from JSON: Hawk's CSV files); :func:`sub`
accepts all four. Everything here is pure and never raises on odd input.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
from functools import lru_cache
from typing import Any

from ir_toolkit.sources.classtext import class_object

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]

_KEY_CACHE: dict[str, str] = {}
_PLANS: dict[tuple[Any, ...], tuple[str, ...] | None] = {}
_MAX_PLANS = 4096


def norm_key(key: str) -> str:
    """The canonical form of one column or property name (lower case, no decorations)."""
    k = key.strip().lower()
    if k.endswith("[utc]"):
        k = k[:-5].rstrip()
    if k.endswith("_") and len(k) > 1:
        k = k.rstrip("_")
    return k


def cached_norm_key(key: Any) -> str:
    """``norm_key`` of a record's key (``str()`` of a key that is no text), memoised for the keys seen most."""
    n = _KEY_CACHE.get(key)
    if n is None:
        n = norm_key(key) if isinstance(key, str) else str(key)
        if len(_KEY_CACHE) < 1 << 16:
            _KEY_CACHE[key] = n
    return n


def normalise_keys(record: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``record`` with normalised keys.

    When two keys normalise to the same name (``Type`` and the portal's duplicate ``Type_``),
    the undecorated one wins. Records of one shape (the same keys in the same order) share one
    precomputed key plan, so most records cost one ``zip``.
    """
    keys = tuple(record)
    if keys in _PLANS:
        plan = _PLANS[keys]
    else:
        names = tuple(cached_norm_key(k) for k in keys)
        plan = names if len(set(names)) == len(names) else None
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[keys] = plan
    if plan is not None:
        return dict(zip(plan, record.values(), strict=True))
    out: dict[str, Any] = {}
    for k, v in record.items():  # colliding names: the undecorated spelling wins
        n = cached_norm_key(k)
        if n not in out or (isinstance(k, str) and k.strip().lower() == n):
            out[n] = v
    return out


def col(records: list[dict[str, Any]], *keys: str) -> list[Any]:
    """One field of every record: the first of ``keys`` present with a non-empty value."""
    if len(keys) == 1:
        key = keys[0]
        return [r.get(key) for r in records]
    return [first(r, *keys) for r in records]


LONG_INT = re.compile(r"\d{19}")  # orjson reads integers beyond 64 bits as floats: leave those to json


_BIG = 9.2e18  # orjson reads an integer beyond 64 bits as a float at least this far from zero


def _big_float(value: Any) -> bool:
    """True when a decoded document holds a float that may have been an integer beyond 64 bits."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif type(v) is float and not -_BIG < v < _BIG:
            return True
    return False


def loads(text: str) -> Any:
    """json.loads, through orjson when installed and exact (ValueError on bad JSON, as json.loads).

    A document with a float beyond 64-bit integers (orjson reads integers beyond 64 bits as floats) is
    decoded again by the stdlib, which keeps such integers exact; so is one orjson refuses (NaN ...).
    Checking the decoded values costs a few microseconds per record, scanning the text for 19 digits
    ten times that.
    """
    if _orjson is not None:
        try:
            value = _orjson.loads(text)
        except ValueError:
            pass  # NaN, huge integers and the like: the stdlib decides
        else:
            if not _big_float(value):
                return value
    return json.loads(text)


_PS_PAIR = re.compile(r"; (?=[A-Za-z_][A-Za-z0-9_]*=)")


def powershell_object(text: str) -> dict[str, str] | None:
    """A nested object as PowerShell's Export-Csv writes it: ``@{IssuedAtTime=2023-06-14T23:00:00; AADSessionId=...}``
    (a PSCustomObject's text; values as text, an inner object or list not decoded); None when ``text`` is not one."""
    if not (text.startswith("@{") and text.endswith("}")):
        return None
    body = text[2:-1]
    out: dict[str, str] = {}
    for part in _PS_PAIR.split(body) if body else []:
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            return None
        out[name.strip()] = value
    return out


def parse_text(value: str) -> Any:
    """Decode nested text: JSON first, then a Python literal, then PowerShell's ``@{k=v; ...}`` or the AzureAD
    module's ``class X { K: v }`` (:mod:`ir_toolkit.sources.classtext`); None when it is none of them."""
    text = value.strip()
    if text[:2] == "@{":
        return powershell_object(text)
    if text[:6] == "class ":  # the AzureAD PowerShell module's objects as Export-Csv writes them
        return class_object(text)
    if not text or text[0] not in "[{":
        return None
    try:
        return loads(text)
    except ValueError:
        pass
    except RecursionError:  # nested deeper than the decoder goes: the depth limit quarantines the record
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


def sub(value: Any) -> dict[str, Any]:
    """A nested object (given as dict or as JSON/Python text) with normalised keys; {} if none."""
    if isinstance(value, str):
        value = parse_text(value)
    if isinstance(value, dict):
        return normalise_keys(value)
    return {}


def obj(value: Any) -> dict[str, Any] | None:
    """A nested object given as dict or as JSON/Python text (keys as written), else None."""
    if isinstance(value, str):
        value = parse_text(value)
    return value if isinstance(value, dict) else None


def field(value: Any, *spellings: str) -> Any:
    """One property of a nested object, looked up by its usual spellings, then case-insensitively.

    ``field(status, "errorCode", "ErrorCode")``; ``value`` may be a dict or JSON/Python text.
    """
    d = obj(value)
    if d is None:
        return None
    for key in spellings:
        v = d.get(key)
        if v is not None:
            return v
    return normalise_keys(d).get(spellings[0].lower()) if d else None


def items(value: Any) -> list[Any]:
    """A nested list (given as list or as JSON/Python text); [] if none."""
    if isinstance(value, str):
        value = parse_text(value)
    return value if isinstance(value, list) else []


def first(record: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present with a non-empty value."""
    for key in keys:
        value = record.get(key)
        if value is not None and value != "":
            return value
    return None


def text(value: Any) -> str | None:
    """A string, or None for missing/empty values (numbers are written as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def lower(value: Any) -> str | None:
    """:func:`text`, lower case (UPNs, GUIDs)."""
    t = text(value)
    return t.lower() if t is not None else None


def integer(value: Any) -> int | None:
    """An int from a number or numeric text; None when not numeric."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None  # the column is int64
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return int(f) if f == f and abs(f) < 2**63 else None


def boolean(value: Any) -> bool | None:
    """True/False from a bool or its text; None otherwise."""
    if isinstance(value, bool):
        return value
    t = text(value)
    if t is None:
        return None
    t = t.lower()
    return True if t in ("true", "1", "yes") else False if t in ("false", "0", "no") else None


NO_ADDRESS = frozenset({"<null>", "null", "-"})  # written where a log has no client address


@lru_cache(maxsize=1 << 16)
def ip(value: str | None) -> str | None:
    """A client address without port or brackets, in canonical form.

    ``1.2.3.4:5678`` -> ``1.2.3.4``; ``[2001:db8::1]:443`` -> ``2001:db8::1``;
    ``::ffff:1.2.3.4`` -> ``1.2.3.4``. Text that is no address is returned stripped, but for the
    placeholders logs write where they have none (``<null>``: Entra's unified audit records, ``-``:
    Defender rows), which are no address (None).
    """
    if value is None:
        return None
    t = value.strip().strip('"')
    if not t or t.lower() in NO_ADDRESS:
        return None
    host = t
    if t.startswith("["):
        host = t[1:].split("]", 1)[0]
    elif t.count(":") == 1:
        host = t.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return t
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def name_value(entries: Any, name: str) -> Any:
    """The ``Value`` of the entry named ``name`` in a [{Name, Value}] (or [{key, value}]) list; an entry may
    also be PowerShell's ``@{Name=...; Value=...}`` text (Defender's CloudAppEvents RawEventData)."""
    wanted = name.lower()
    for entry in items(entries):
        if isinstance(entry, str) and entry[:2] == "@{":  # Defender's RawEventData: "@{Value=Bind; Name=...}"
            entry = powershell_object(entry)
        if isinstance(entry, dict):
            label = field(entry, "Name", "name", "Key", "key")
            if isinstance(label, str) and label.lower() == wanted:
                return field(entry, "Value", "value")
    return None
