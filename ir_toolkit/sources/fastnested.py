"""The plan of a JSON file's generated fast path and the walk along its nested paths.

:mod:`ir_toolkit.sources.fastjson` maps JSON records in DuckDB by SQL generated from a field map. What
that SQL reads is decided here from the file's first record: which map (the envelope's and the inner
record's, :class:`JsonPlan`), the spellings of the keys it reads (JSON keys are case-insensitive for the
per-record path; the SQL reads the first record's spellings, else Microsoft's, :data:`SPELLINGS`), and
the spellings of every nested object on the way to a field read at depth (``initiatedBy.user``,
``targetResources[0]``). :func:`nested_spelled` checks a later record's nested objects against them, once
per record shape.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ir_toolkit.sources.fastmap import supported
from ir_toolkit.sources.fieldmap import FIELD_MAPS, TABLES, FieldMap
from ir_toolkit.sources.fields import norm_key, normalise_keys
from ir_toolkit.sources.fieldsql import SPELLINGS, record_reads
from ir_toolkit.sources.mappers import classify
from ir_toolkit.sources.sqlforms import Step

KEY = re.compile(r"^[A-Za-z0-9_]+$")  # spellings the SQL may read (as JSON path parameters)


@dataclass(frozen=True)
class JsonPlan:
    """An envelope map (None: the records are the map's own), the inner record's map, the spellings the SQL
    reads (normalised -> as written), and the container: ``lines`` (JSON lines of envelopes), ``bodies``
    (Event Hub bodies) or ``array`` (:mod:`ir_toolkit.sources.fastdocs`); ``nested``: the spellings of the
    inner record's objects the SQL reads fields of (their path's steps -> normalised key -> its spellings:
    ``initiatedBy``, ``initiatedBy.user``, ``targetResources[0]``)."""

    envelope: FieldMap | None
    fm: FieldMap
    outer: dict[str, str]
    inner: dict[str, str]
    container: str = "lines"
    nested: tuple[tuple[tuple[Step, ...], dict[str, str]], ...] = ()


def spellings(record: dict[str, Any]) -> dict[str, str] | None:
    """The record's keys, normalised -> as written; None when two collide or one is not SQL-readable."""
    names = [norm_key(k) for k in record]
    if len(set(names)) != len(names) or not all(KEY.match(k) for k in record):
        return None
    return dict(zip(names, record, strict=True))


def plan_of(first: Any, container: str, unwrap_into: bool) -> JsonPlan | None:
    """The plan for a file whose first record is ``first`` (None: no generated SQL reads it exactly);
    ``unwrap_into``: whether an envelope holding a known map's record (CloudAppEvents) is read in SQL."""
    if not isinstance(first, dict):
        return None
    envelope = FIELD_MAPS.get(classify(normalise_keys(first)) or "")
    if envelope is not None and envelope.unwrap is None and supported(envelope, nested=True):  # the map's own
        own = spellings(first)
        return with_nested(JsonPlan(None, envelope, {}, own, container), first) \
            if own is not None and container != "lines" else None
    if envelope is None or envelope.unwrap is None or not (envelope.unwrap.into or envelope.unwrap.table):
        return None
    outer = spellings(first)
    u = envelope.unwrap
    if outer is None or u.field not in outer or not isinstance(first[outer[u.field]], dict):
        return None
    if u.into is not None:  # Defender's CloudAppEvents: RawEventData is a UAL record
        if not unwrap_into:
            return None
        fm = FIELD_MAPS.get(u.into)
    elif u.table in outer:
        category = first[outer[u.table]]
        fm = FIELD_MAPS.get(TABLES.get(str(category).lower().removeprefix("advancedhunting-"), ""))
    else:
        return None
    inner = spellings(first[outer[u.field]])
    if fm is None or inner is None or not supported(fm, nested=True, table=u.table is not None):
        return None
    return with_nested(JsonPlan(envelope, fm, outer, inner, container), first[outer[u.field]])


def with_nested(p: JsonPlan, inner: dict[str, Any]) -> JsonPlan | None:
    """``p`` with the spellings the SQL reads that the first record lacks (Microsoft's, :data:`SPELLINGS`) and
    those of the nested objects it reads fields of; None when the first record spells a nested key twice."""
    read, known = keys_read(p, False), SPELLINGS.get(p.fm.NAME, {})
    spelled = {**{k: known[k] for k in read if k in known}, **p.inner}
    nested: dict[tuple[Step, ...], dict[str, str]] = {}
    for prefix in prefixes(p.fm):
        found = walk(inner, prefix, spelled, nested)  # keys the SQL cannot spell (``@odata.type``) are not read
        own = spellings({k: v for k, v in found.items() if KEY.match(k)}) if isinstance(found, dict) else {}
        if own is None:
            return None
        nested[prefix] = {**{k: known[k] for k in wanted(p.fm, prefix) if k in known}, **own}
    return JsonPlan(p.envelope, p.fm, p.outer, spelled, p.container, tuple(nested.items()))


def prefixes(fm: FieldMap) -> list[tuple[Step, ...]]:
    """The paths (as steps) of the nested objects the map's paths read fields of, parents first."""
    found = {fp.steps[:i] for r in fm.rules for fp in r.paths for i in range(1, len(fp.steps))}
    return sorted(found, key=lambda steps: (len(steps), repr(steps)))


def wanted(fm: FieldMap, prefix: tuple[Step, ...]) -> set[str]:
    """The normalised keys the map's paths read of the object at ``prefix``."""
    n = len(prefix)
    return {fp.steps[n][0] for r in fm.rules for fp in r.paths if len(fp.steps) > n and fp.steps[:n] == prefix}


def walk(record: dict[str, Any], prefix: tuple[Step, ...], spelled: dict[str, str],
         nested: dict[tuple[Step, ...], dict[str, str]]) -> Any:
    """The value at ``prefix`` in ``record``, its keys read as spelled (None where a step has no value)."""
    value: Any = record
    for i, (key, index) in enumerate(prefix):
        names = spelled if i == 0 else nested.get(prefix[:i], {})
        if not isinstance(value, dict) or key not in names:
            return None
        value = value.get(names[key])
        if index is not None:
            value = value[index] if isinstance(value, list) and index < len(value) else None
    return value


def nested_spelled(p: JsonPlan, inner: dict[str, Any], lens: list[int | None]) -> bool:
    """True when each nested object the SQL reads is spelled as it reads it (or is no object); ``lens``:
    DuckDB's key counts of the record, its inner record and the nested objects read, in that order."""
    nested = dict(p.nested)
    for (prefix, spelled), n in zip(p.nested, lens[2:], strict=True):
        found = walk(inner, prefix, p.inner, nested)
        if isinstance(found, dict) and (len(found) != n or not spelled_as(found, spelled, wanted(p.fm, prefix))):
            return False
    return True


def spelled_as(obj: dict[str, Any], spelled: dict[str, str], read: set[str]) -> bool:
    """True when ``obj``'s keys are distinct once normalised and the SQL reads them as written."""
    names = [norm_key(k) for k in obj]
    if len(set(names)) != len(names) or "_table" in names:
        return False
    if any(spelled.get(n, k) != k for n, k in zip(names, obj, strict=True)):
        return False
    return all(n in spelled for n in names if n in read)


def keys_read(p: JsonPlan, outer: bool) -> set[str]:
    """The normalised keys the SQL reads from the envelope (``outer``) or from its inner record."""
    u = p.envelope.unwrap if p.envelope is not None else None
    own = {fp.steps[0][0] for r in p.fm.rules for fp in r.paths}
    own |= {k for r in p.fm.rules for k in record_reads(r.record)}
    if u is None:
        return own
    if outer:
        return {u.field, *([u.table] if u.table else []), *(fp.steps[0][0] for fps in u.fill.values() for fp in fps)}
    return own | set(u.fill)


__all__ = ["KEY", "JsonPlan", "keys_read", "nested_spelled", "plan_of", "prefixes", "spelled_as", "spellings",
           "walk", "wanted", "with_nested"]
