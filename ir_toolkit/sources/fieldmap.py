"""Field maps as data: each record family's mapping declared once, in ``maps/*.yaml``.

A map names, for each canonical column, the field path(s) it comes from and the few named
transforms it needs (:mod:`ir_toolkit.sources.transforms`), in the manner of pySigma's field
mappings. The column mapper of :data:`ir_toolkit.sources.mappers.MAPPERS` is generated from
that one declaration, so adding a family of records is adding one YAML file.

A map file::

    NAME: graph_activity                # the record family (registry key)
    DESCRIPTION: Microsoft Graph activity log requests
    tables: [MicrosoftGraphActivityLogs]  # Log Analytics tables / diagnostic categories /
                                          # advanced hunting tables whose records it maps
    recognise: [[requesturi, requestmethod]]   # key sets that mark its records in a file
    columns:
      time: [timegenerated, time]       # paths: the first with a non-empty value
      source: {value: graph_activity}   # a constant
      ip: {from: [ipaddress, calleripaddress], transform: ip}
      user: {from: "initiatedby.user.userprincipalname | lower"}   # a transform per path
      result: {record: result_from_http_status}   # a whole-column transform (after the paths)
      record_id: {from: [messagetraceid, recipientaddress], join: "/"}   # every path's value, joined
    priority: 50                        # recognise keys are tried in priority order (lower first;
                                        # below 50: before the built-in tests of mappers.classify)

or, for a container around another record (Defender CloudAppEvents around a UAL record)::

    unwrap:
      field: raweventdata               # the inner record (object or JSON text)
      into: ual                         # its family (omitted: classified on its own)
      table: category                   # the outer field naming the inner record's table
      fill: {creationtime: [timestamp]}  # inner key <- outer paths, where the inner lacks it
      otherwise: defender_event         # the family of the outer record when the inner one is no
                                        # object, or (without ``into``) no record we know

Paths use normalised keys (:func:`ir_toolkit.sources.fields.normalise_keys`): ``a.b`` is field b of
object a (an object or JSON text), ``a[0].b`` field b of the first element of list a. A value is
taken when it is not None and not ``""``; the path's own transform is applied before that test,
the column's ``transform`` after it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ir_toolkit.schema import EVENT_COLUMN_NAMES
from ir_toolkit.sources.fields import items, loads, sub
from ir_toolkit.sources.transforms import RECORD_TRANSFORMS, TABLE_KEY, VALUE_TRANSFORMS

MAPS_DIR = Path(__file__).with_name("maps")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader: ten times faster at start-up
MAPPED = tuple(c for c in EVENT_COLUMN_NAMES if c not in ("evidence", "raw"))
Columns = dict[str, list[Any]]
Records = list[dict[str, Any]]
Step = tuple[str, int | None]
_STEP = re.compile(r"^([^\[\]]+)(?:\[(\d+)\])?$")


class MapError(ValueError):
    """A field map that cannot be used (unknown column, transform or malformed path)."""


@dataclass(frozen=True)
class FieldPath:
    """One field path with its optional transform."""

    steps: tuple[Step, ...]
    transform: Callable[[Any], Any] | None

    def get(self, r: dict[str, Any]) -> Any:
        value: Any = r
        if len(self.steps) == 1 and self.steps[0][1] is None:  # the common case: one top-level field
            value = r.get(self.steps[0][0])
            return self.transform(value) if self.transform is not None and value is not None else value
        for i, (name, index) in enumerate(self.steps):
            if i:
                value = sub(value)
            value = value.get(name)
            if index is not None:
                listed = items(value)
                value = listed[index] if index < len(listed) else None
            if value is None:
                return None
        return self.transform(value) if self.transform is not None else value


def _first_key(r: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        v = r.get(key)
        if v is not None and v != "":
            return v
    return None


@dataclass(frozen=True)
class Rule:
    """How one canonical column is filled."""

    column: str
    paths: tuple[FieldPath, ...] = ()
    transform: Callable[[Any], Any] | None = None
    record: Callable[[Records, Columns], list[Any]] | None = None
    value: Any = None
    join: str | None = None

    def values(self, rs: Records, cols: Columns) -> list[Any]:
        """The column for ``rs`` (``cols``: the columns mapped before this one)."""
        out: list[Any]
        if not self.paths:
            out = [self.value] * len(rs)
        elif self.join is not None:
            out = [self._joined(r, self.join) for r in rs]
        elif self.flat_keys is not None:  # top-level fields without their own transforms: plain lookups
            keys = self.flat_keys
            if len(keys) == 1:
                key = keys[0]
                out = [r.get(key) for r in rs]
            else:
                out = [_first_key(r, keys) for r in rs]
        else:
            out = [self._first(r) for r in rs]
        if self.transform is not None:
            t = self.transform
            out = [None if v is None or v == "" else t(v) for v in out]
        if self.record is not None:
            cols[self.column] = out
            out = self.record(rs, cols)
        return out

    @property
    def flat_keys(self) -> tuple[str, ...] | None:
        """The keys of the paths when every path is one top-level field without a transform, else None."""
        if all(len(p.steps) == 1 and p.steps[0][1] is None and p.transform is None for p in self.paths):
            return tuple(p.steps[0][0] for p in self.paths)
        return None

    def _joined(self, r: dict[str, Any], sep: str) -> str | None:
        found = [str(v) for v in (p.get(r) for p in self.paths) if v is not None and v != ""]
        return sep.join(found) if found else None

    def _first(self, r: dict[str, Any]) -> Any:
        for p in self.paths:
            v = p.get(r)
            if v is not None and v != "":
                return v
        return None


@dataclass(frozen=True)
class Unwrap:
    """A container record: the inner record, its family, and what the outer one fills in."""

    field: str
    into: str | None
    table: str | None
    fill: dict[str, tuple[FieldPath, ...]]
    otherwise: str | None
    label: str = ""  # the field as the map spells it (for quarantine reasons)


@dataclass(frozen=True)
class FieldMap:
    """One record family's mapping (see the module docstring for the YAML)."""

    NAME: str
    DESCRIPTION: str
    tables: tuple[str, ...] = ()
    recognise: tuple[frozenset[str], ...] = ()
    rules: tuple[Rule, ...] = ()
    unwrap: Unwrap | None = None
    origin: str = ""
    priority: int = 50

    def __call__(self, rs: Records) -> Columns:
        """Map records of this family to canonical columns (times still as text)."""
        cols: Columns = {}
        for rule in self.rules:
            cols[rule.column] = rule.values(rs, cols)
        return cols

    def recognises(self, r: dict[str, Any]) -> bool:
        """True when the record has every key of one of the ``recognise`` sets."""
        return any(keys.issubset(r) for keys in self.recognise)


def _path(text: str, where: str) -> FieldPath:
    spec, _, tname = (p.strip() for p in str(text).partition("|"))
    steps: list[Step] = []
    for step in spec.split("."):
        m = _STEP.match(step.strip())
        if not m:
            raise MapError(f"{where}: malformed path {text!r}")
        steps.append((m.group(1).lower(), int(m.group(2)) if m.group(2) else None))
    return FieldPath(tuple(steps), _transform(tname, where) if tname else None)


def _transform(name: str, where: str) -> Callable[[Any], Any]:
    if name not in VALUE_TRANSFORMS:
        raise MapError(f"{where}: unknown transform {name!r} (known: {', '.join(sorted(VALUE_TRANSFORMS))})")
    return VALUE_TRANSFORMS[name]


def _paths(spec: Any, where: str) -> tuple[FieldPath, ...]:
    listed = spec if isinstance(spec, list) else [spec]
    return tuple(_path(p, where) for p in listed)


def _rule(column: str, spec: Any, where: str) -> Rule:
    if column not in MAPPED:
        raise MapError(f"{where}: {column!r} is no canonical column")
    if not isinstance(spec, dict):
        return Rule(column, _paths(spec, where))
    unknown = set(spec) - {"from", "transform", "record", "value", "join"}
    if unknown:
        raise MapError(f"{where}: unknown keys {sorted(unknown)} for column {column!r}")
    record = spec.get("record")
    if record is not None and record not in RECORD_TRANSFORMS:
        raise MapError(f"{where}: unknown record transform {record!r}")
    return Rule(column, _paths(spec["from"], where) if "from" in spec else (),
                _transform(spec["transform"], where) if spec.get("transform") else None,
                RECORD_TRANSFORMS[record] if record else None, spec.get("value"), spec.get("join"))


def parse_map(doc: dict[str, Any], where: str = "<map>") -> FieldMap:
    """A :class:`FieldMap` from its YAML document.

    Raises:
        MapError: on an unknown column or transform, a malformed path or a missing NAME/DESCRIPTION.
    """
    if not isinstance(doc, dict) or not doc.get("NAME") or not doc.get("DESCRIPTION"):
        raise MapError(f"{where}: a field map needs NAME and DESCRIPTION")
    unwrap = None
    if "unwrap" in doc:
        u = doc["unwrap"]
        unwrap = Unwrap(str(u["field"]).lower(), u.get("into"), (u.get("table") or "").lower() or None,
                        {k.lower(): _paths(v, where) for k, v in (u.get("fill") or {}).items()}, u.get("otherwise"),
                        str(u.get("label") or u["field"]))
    rules = tuple(_rule(c, s, where) for c, s in (doc.get("columns") or {}).items())
    if unwrap is None and not any(r.column == "time" for r in rules):
        raise MapError(f"{where}: a field map needs a time column")
    return FieldMap(str(doc["NAME"]), str(doc["DESCRIPTION"]).strip(), tuple(doc.get("tables") or ()),
                    tuple(frozenset(k.lower() for k in keys) for keys in doc.get("recognise") or ()),
                    rules, unwrap, where, int(doc.get("priority", 50)))


def load_maps(directory: Path = MAPS_DIR) -> dict[str, FieldMap]:
    """Every map of ``directory`` (``*.yaml``), keyed by NAME, in ``priority`` order (then file name):
    the order in which their ``recognise`` keys are tried."""
    maps: dict[str, FieldMap] = {}
    for path in sorted(directory.glob("*.yaml")):
        m = parse_map(yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER), path.name)  # noqa: S506
        if m.NAME in maps:
            raise MapError(f"{path.name}: NAME {m.NAME!r} is declared twice")
        maps[m.NAME] = m
    return dict(sorted(maps.items(), key=lambda kv: kv[1].priority))


FIELD_MAPS: dict[str, FieldMap] = load_maps()
TABLES: dict[str, str] = {t.lower(): m.NAME for m in FIELD_MAPS.values() for t in m.tables}


def table_of(r: dict[str, Any]) -> str | None:
    """The table a record names (set by an envelope, or a Log Analytics ``Type`` column), lower case."""
    for key in (TABLE_KEY, "type"):
        v = r.get(key)
        if isinstance(v, str) and v:
            t = v.lower()
            return t.removeprefix("advancedhunting-")
    return None


EXCEL_CELL_LIMIT = 32_767  # characters Excel keeps in one cell


def _not_an_object(label: str, value: str) -> str:
    """Why a container's inner record given as text is not one (the quarantine reason)."""
    try:
        loads(value)
    except ValueError as exc:
        if len(value) == EXCEL_CELL_LIMIT:  # a CSV re-saved by Excel cuts long cells there
            return (f"{label} cut at {EXCEL_CELL_LIMIT} characters (Excel's cell limit: the file was re-saved by "
                    "Excel; import the original export)")
        return f"{label} is not valid JSON ({exc})"
    except RecursionError:
        return f"{label} is nested too deep"
    return f"{label} is not a JSON object"


def unwrap_record(m: FieldMap, r: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The inner record of a container record and its family (None: classify it).

    Returns ``(m.unwrap.otherwise, r)`` when the record holds no inner object (the field missing,
    empty or ``{}``).

    Raises:
        ValueError: when the inner record is text that is not a JSON object, or is missing and there
        is no ``otherwise`` family.
    """
    u = m.unwrap
    assert u is not None
    inner_value = r.get(u.field)
    inner = sub(inner_value)
    if not inner:
        if isinstance(inner_value, str) and inner_value.strip() and not inner_value.strip() == "{}":
            raise ValueError(_not_an_object(u.label, inner_value))
        if u.otherwise is not None:
            return u.otherwise, r
        if not (isinstance(inner_value, dict) or (isinstance(inner_value, str) and inner_value.strip() == "{}")):
            raise ValueError(f"{u.label} is not a JSON object")  # missing; an empty object is filled in below
    for key, paths in u.fill.items():
        if inner.get(key) in (None, ""):
            for p in paths:
                v = p.get(r)
                if v is not None and v != "":
                    inner[key] = v
                    break
    if u.table is not None and isinstance(r.get(u.table), str):
        inner[TABLE_KEY] = r[u.table]
    return u.into, inner
