"""The fast path generated from a field map: big CSV exports of one record family mapped in DuckDB.

A CSV export whose records belong to a field map (``maps/*.yaml``) made only of top-level fields and
of transforms with an exact SQL form - Log Analytics exports of MicrosoftGraphActivityLogs, Defender
advanced hunting exports of GraphApiAuditEvents, EmailEvents or IdentityLogonEvents, message trace -
is read by Arrow's CSV reader and mapped by SQL generated (:func:`map_sql`) from that same declaration
that :mod:`ir_toolkit.sources.fieldmap` turns into the per-record mapper, so the two cannot drift.

Columns are given positional names (``c0``, ``c1`` ...) and header names, constants and separators
reach DuckDB as query parameters: nothing read from a file is pasted into SQL. A row the SQL cannot
map exactly as the per-record path would - another record family (by its ``Type`` / ``Category``), a
value whose leading or trailing characters are not printable ASCII where a transform trims it, a
number that is not plain digits, a list where a name list is expected, no readable time - goes through
:func:`ir_toolkit.sources.batch.build_batch` with its position (``fastrows.merge_refused``). When the
CSV reader cannot read on, the per-record readers take over from the first record not yet returned.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ir_toolkit.sources import fastrows
from ir_toolkit.sources.batch import Batch, frame_from_arrow
from ir_toolkit.sources.fieldmap import FIELD_MAPS, FieldMap, FieldPath, Rule
from ir_toolkit.sources.fields import norm_key
from ir_toolkit.sources.fieldsql import COLUMN_FORMS, FIELD_FORMS, PATH_FORMS, RECORD_FORMS
from ir_toolkit.sources.mappers import classify
from ir_toolkit.sources.reader import Opened, csv_header
from ir_toolkit.sources.signinsql import country
from ir_toolkit.sources.sqlforms import Fields, Sql, Step
from ir_toolkit.sources.transforms import RECORD_TRANSFORMS, VALUE_TRANSFORMS
from ir_toolkit.sqltext import literal
from ir_toolkit.timeutil import in_range, parse_times

log = logging.getLogger(__name__)

_CLEAN = "'(?s)[!-~](.*[!-~])?'"  # printable ASCII at both ends: Python's strip() leaves the value as it is
_ASCII_CLEAN = "'[!-~]([ -~]*[!-~])?'"
_ASCII = "'[ -~]*'"  # Python's lower() and DuckDB's agree
_NAMES = "'(?s)[!-Z\\x{5c}-~].*'"  # no JSON list (the per-record path would join its entries)
_INT = "'-?[0-9]{1,15}'"  # exact through Python's float(): integer() of the per-record path
_PATH_TRANSFORMS = {"lower", "text", "integer"}
_COLUMN_TRANSFORMS = {"text", "lower", "integer", "ip", "names", "message_id_list", *COLUMN_FORMS}


def _name(fn: Callable[..., Any] | None, registry: dict[str, Any]) -> str | None:
    return next((k for k, v in registry.items() if v is fn), None) if fn is not None else None


def _sql_path(p: FieldPath, nested: bool) -> bool:
    if not nested:  # CSV cells: top-level fields with transforms the SQL has
        return len(p.steps) == 1 and p.steps[0][1] is None and _name(p.transform, VALUE_TRANSFORMS) in (
            None, *_PATH_TRANSFORMS)
    return True  # objects and lists on the way read by JSON paths; a transform without SQL: the path must be empty


def supported(fm: FieldMap, nested: bool = False, table: bool = False) -> bool:
    """True when every rule of ``fm`` has an exact SQL form (top-level fields, known transforms; ``nested``:
    JSON records, whose nested objects the SQL reads, and whose paths through a transform without an SQL
    form are read when they hold nothing - else the record goes per record; ``table``: inside an envelope
    that names their table, which the sign-in kind is read from)."""
    if fm.unwrap is not None:
        return False
    for rule in fm.rules:
        if not all(_sql_path(p, nested) for p in rule.paths):
            return False
        json_forms = ["country", *FIELD_FORMS] if nested else []  # read the field's JSON as it is
        if _name(rule.transform, VALUE_TRANSFORMS) not in (None, *_COLUMN_TRANSFORMS, *json_forms):
            return False
        if _name(rule.transform, VALUE_TRANSFORMS) in json_forms and any(p.transform for p in rule.paths):
            return False
        if _name(rule.transform, VALUE_TRANSFORMS) in FIELD_FORMS and len(rule.paths) != 1:
            return False
        record = _name(rule.record, RECORD_TRANSFORMS)
        if rule.record is not None and (record not in RECORD_FORMS or (RECORD_FORMS[record].table and not table)):
            return False
        if rule.value is not None and not isinstance(rule.value, str):
            return False
    return True


@dataclass(frozen=True)
class CsvPlan:
    """How one CSV file is mapped: its field map and header (as written and normalised)."""

    fm: FieldMap
    header: tuple[str, ...]
    names: tuple[str, ...]


def plan(path: Path, opened: Opened, head: str) -> CsvPlan | None:
    """A plan when ``path`` is a UTF-8 CSV whose first record belongs to a field map :func:`supported`."""
    if opened.container != "csv" or opened.encoding not in ("utf-8", "utf-8-sig"):
        return None
    text = head.lstrip("\ufeff")
    header = csv_header(text)
    names = [norm_key(h) for h in header]
    if not header or len(set(names)) != len(names):  # colliding names: the per-record path decides
        return None
    try:
        rows = csv.reader(io.StringIO(text))
        next(rows)
        first = next(rows, None)
    except csv.Error:
        return None
    if first is None or len(first) != len(header):
        return None
    kind = classify(dict(zip(names, first, strict=True)))
    fm = FIELD_MAPS.get(kind) if kind is not None else None
    if fm is None or not supported(fm):
        return None
    return CsvPlan(fm, tuple(header), tuple(names))


# ----- SQL generated from the declaration --------------------------------------------------------
class CsvFields(Fields):
    """The columns of a CSV file, named c0, c1 ... in the query."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def ref(self, steps: tuple[Step, ...], integer: bool, guards: list[Sql]) -> Sql | None:
        key = steps[0][0]
        return (f"c{self.names.index(key)}", []) if len(steps) == 1 and key in self.names else None


def _value(src: Fields, steps: tuple[Step, ...], transform: str | None, guards: list[Sql],
           integer: bool = False) -> Sql:
    """One path of one record: NULL when empty, else the value after the path's transform (``integer``:
    the column is read as a number, so a JSON number is as good as its text)."""
    if transform in PATH_FORMS:
        return PATH_FORMS[transform](src, steps, guards)
    if transform is not None and transform not in _PATH_TRANSFORMS:  # no SQL: read only where it holds nothing
        t = src.jtype(steps)
        guards.append((f"coalesce({t[0]}, 'NULL') = 'NULL'", t[1]) if t is not None else ("false", []))
        return "NULL::VARCHAR", []
    ref = src.ref(steps, integer or transform == "integer", guards)
    if ref is None:
        return "NULL::VARCHAR", []
    c, ps = ref
    if transform is None:
        return f"nullif({c}, '')", ps
    if transform == "integer":
        guards.append((f"(coalesce({c}, '') = '' OR regexp_full_match({c}, {_INT}))", ps * 2))
        return f"TRY_CAST(nullif({c}, '') AS BIGINT)", ps
    pattern = _CLEAN if transform == "text" else _ASCII_CLEAN
    guards.append((f"(coalesce({c}, '') = '' OR regexp_full_match({c}, {pattern}))", ps * 2))
    return (f"lower(nullif({c}, ''))" if transform == "lower" else f"nullif({c}, '')"), ps


def _column(src: Fields, rule: Rule, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
    """One canonical column as SQL; what must hold for it to be exact is appended to ``guards``."""
    t = _name(rule.transform, VALUE_TRANSFORMS)
    record = _name(rule.record, RECORD_TRANSFORMS)
    paths: list[Sql] = []
    if t == "country":  # reads a location object or text as it is
        return country(src, [fp.steps for fp in rule.paths], guards)
    if t in FIELD_FORMS:  # reads its field's JSON as it is (a {key, value} list)
        return FIELD_FORMS[t](src, [fp.steps for fp in rule.paths], guards)
    for fp in rule.paths:
        ahead = len(guards)
        paths.append(_value(src, fp.steps, _name(fp.transform, VALUE_TRANSFORMS), guards, t == "integer"))
        if paths[:-1] and len(guards) > ahead:  # what this path needs holds only where no earlier path has a value
            found = f"coalesce({', '.join(f'CAST({e} AS VARCHAR)' for e, _ in paths[:-1])})"
            found_ps = [x for _, ps in paths[:-1] for x in ps]
            guards[ahead:] = [(f"(({found}) IS NOT NULL AND ({found}) <> '' OR {g})", [*found_ps, *found_ps, *gps])
                              for g, gps in guards[ahead:]]
    path_params = [x for _, ps in paths for x in ps]
    if not paths:
        expr, params = "CAST(? AS VARCHAR)", [rule.value]
    elif rule.join is not None:
        expr, params = f"nullif(concat_ws(?, {', '.join(e for e, _ in paths)}), '')", [rule.join, *path_params]
    else:
        texts = ", ".join(f"CAST({e} AS VARCHAR)" for e, _ in paths)  # an integer path among text ones
        expr = paths[0][0] if len(paths) == 1 else f"coalesce({texts})"
        params = path_params
    pattern = {"integer": _INT, "lower": _ASCII, "names": _NAMES, "message_id_list": _CLEAN}
    if t in pattern:
        guards.append((f"({expr} IS NULL OR regexp_full_match({expr}, {pattern[t]}))", params * 2))
    if t == "integer":
        expr = f"TRY_CAST({expr} AS BIGINT)"
    elif t == "lower":
        expr = f"lower({expr})"
    elif t == "message_id_list":
        expr, params = f"CASE WHEN {expr} IS NULL THEN NULL ELSE [{expr}] END", params * 2
    elif t in COLUMN_FORMS:
        expr, params = f"CASE WHEN regexp_full_match({expr}, {COLUMN_FORMS[t]}) THEN {expr} END", params * 2
    if record is not None:  # the record transform reads the column's paths
        expr, params = RECORD_FORMS[record].sql(src, exprs, (expr, params), guards)
    return expr, params


def columns_sql(fm: FieldMap, src: Fields) -> tuple[list[str], list[Any], Sql]:
    """The select items of ``fm``'s columns, their parameters, and the ``ok`` condition (with its own)."""
    exprs: dict[str, Sql] = {}
    guards: list[Sql] = []
    for rule in fm.rules:
        exprs[rule.column] = _column(src, rule, exprs, guards)
    unique = list({repr(g): g for g in guards}.values())  # several record forms may ask the same
    ok = (" AND ".join(g for g, _ in unique) or "true", [x for _, ps in unique for x in ps])
    return [f'{e} AS "{col}"' for col, (e, _) in exprs.items()], [x for _, ps in exprs.values() for x in ps], ok


def map_sql(p: CsvPlan, table: str) -> Sql:
    """The query mapping the rows of ``table`` (columns c0..cN, text) to canonical columns, untrimmed,
    with ``raw`` (the row as a JSON object) and ``ok`` (the SQL's mapping is the per-record one)."""
    items, params, (ok, ok_params) = columns_sql(p.fm, CsvFields(p.names))
    raw = "json_object(" + ", ".join(f"?, c{i}" for i in range(len(p.header))) + ")::VARCHAR"
    select = [f"{raw} AS raw", f"({ok}) AS ok", *items]
    params = [*p.header, *ok_params, *params]
    for extra in ("type", "category"):  # the values that decide a row's family
        select.append(f"c{p.names.index(extra)} AS _{extra}" if extra in p.names else f"NULL::VARCHAR AS _{extra}")
    return f"SELECT {', '.join(select)} FROM {table}", params


# ----- batches ---------------------------------------------------------------------------------
def parse(p: CsvPlan, path: Path, opened: Opened, *, evidence: str, batch_size: int, dayfirst: bool, hint: str,
          slow: Callable[[int], Iterator[Batch]]) -> Iterator[Batch]:
    """Batches of one CSV file mapped in DuckDB; ``slow(done)`` parses it per record after record ``done``."""
    query, params = map_sql(p, "csv_rows")
    done = 0
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = {literal(fastrows.MEMORY)}")
        con.register("csv_rows", fastrows.csv_rows(path, opened, tuple(f"c{i}" for i in range(len(p.header)))))
        reader = con.sql(query, params=params).to_arrow_reader(batch_size)
        for rb in fastrows.rebatch(reader, batch_size):
            yield _batch(p, rb, done, evidence=evidence, dayfirst=dayfirst, hint=hint)
            done += rb.num_rows
    except (duckdb.Error, fastrows.FastPathStop, pa.ArrowException, OSError) as exc:
        log.info("%s: per-record import from record %d on (%s)", evidence, done + 1, str(exc).splitlines()[0])
        yield from slow(done)
    finally:
        con.close()


def _families(p: CsvPlan, t: pa.Table) -> pa.Array:
    """True for rows that the per-record path classifies into ``p.fm`` (decided per distinct Type/Category)."""
    blank = dict.fromkeys(p.names, "")
    pairs = list(zip(t.column("_type").to_pylist(), t.column("_category").to_pylist(), strict=True))
    decided: dict[tuple[Any, Any], bool] = {}
    for pair in set(pairs):
        record = dict(blank)
        if "type" in p.names:
            record["type"] = pair[0]
        if "category" in p.names:
            record["category"] = pair[1]
        decided[pair] = classify(record) == p.fm.NAME
    return pa.array([decided[pair] for pair in pairs], pa.bool_())


def _batch(p: CsvPlan, t: pa.Table, done: int, *, evidence: str, dayfirst: bool, hint: str) -> Batch:
    positions = list(range(done + 1, done + t.num_rows + 1))
    ok = pc.and_(pc.fill_null(fastrows.one_array(t.column("ok")), False), _families(p, t))
    return finish_batch(p.fm, t, ok, positions, evidence=evidence, dayfirst=dayfirst, hint=hint)


def finish_batch(fm: FieldMap, t: pa.Table, ok: pa.Array, positions: list[int], *, evidence: str, dayfirst: bool,
                 hint: str) -> Batch:
    """The batch of rows the generated SQL mapped (``t``: ``raw`` and ``fm``'s columns); rows not ``ok``, or
    without a readable time, are mapped per record in their place (``fastrows.merge_refused``)."""
    raws = fastrows.one_array(t.column("raw"))
    cols: dict[str, Any] = {r.column: fastrows.one_array(t.column(r.column)) for r in fm.rules}
    if "ip" in cols:
        cols["ip"] = fastrows.ips(cols["ip"])
    times = parse_times(pd.Series(pd.arrays.ArrowExtensionArray(cols["time"])), dayfirst=dayfirst)
    cols["time"] = times
    ok = pc.and_(ok, pa.array((times.notna() & in_range(times)).to_numpy()))  # the rest: decided per record
    frame = frame_from_arrow(cols, positions, raws, evidence, dayfirst)
    # a row without a record id gets one derived from raw by the store: the per-record path writes that raw
    keep = ok.to_numpy(zero_copy_only=False) & frame["record_id"].notna().to_numpy(dtype=bool)
    if keep.all():
        return Batch(frame, [], t.num_rows)
    return fastrows.merge_refused(frame, keep, raws, positions, evidence=evidence, dayfirst=dayfirst, hint=hint,
                                  family=None)
