"""The fast path generated from field maps for JSON: diagnostic-settings records and Graph activity records.

A storage-account blob of Azure Monitor diagnostic records (``PT1H.json``: one record per line), Event
Hub bodies of the same records (``{"records": [...]}``), or a JSON array / Log Analytics query API body
of a map's own records (:mod:`ir_toolkit.sources.fastdocs` reads those documents in DuckDB), of a
category or table whose field map has an exact SQL form (:func:`ir_toolkit.sources.fastmap.supported`;
today MicrosoftGraphActivityLogs -> graph_activity, the bulkiest Entra category), is mapped in DuckDB
by SQL generated from the declarations: the envelope's ``unwrap`` (azure_monitor_record: ``properties``
unwrapped, ``category`` naming the table, the envelope's fields filling what properties lack), when
there is one, and the inner map's columns (:func:`ir_toolkit.sources.fastmap.columns_sql`).

JSON keys are case-insensitive for the per-record path; the SQL reads the spellings of the file's
first record (given to DuckDB as parameters, never pasted; the plan and the spellings of the nested
objects read: :mod:`ir_toolkit.sources.fastnested`). A record of another shape is checked once
per shape (:class:`_Shapes`): another spelling, a key written twice, keys that collide once normalised,
or a shape the per-record classifier would not put in the plan's map sends its records per record; a
page or envelope inside a record, a record DuckDB cannot parse or parses where the per-record decoder
does not (a comma before ``}``), hands the rest of the file to the per-record readers from that record
on. Rows keep their record numbers (as the per-record readers count them) as positions.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ir_toolkit.sources import fastdocs, fastrows
from ir_toolkit.sources.batch import Batch
from ir_toolkit.sources.fastmap import columns_sql, finish_batch
from ir_toolkit.sources.fastnested import JsonPlan, keys_read, nested_spelled, plan_of, spelled_as
from ir_toolkit.sources.fields import loads, normalise_keys
from ir_toolkit.sources.jsonstream import pages_of
from ir_toolkit.sources.mappers import classify
from ir_toolkit.sources.reader import Opened
from ir_toolkit.sources.sqlforms import Fields, Sql, Step
from ir_toolkit.sqltext import literal

log = logging.getLogger(__name__)
# CloudAppEvents (an inner record of a known map: the UAL map's SQL) through SQL: exact, but 1.2x the CPU of
# the per-record path at 100,000 rows (docs/import.md, session 7), so off until that SQL is cheaper
UNWRAP_INTO = False


class _Stop(Exception):
    """The rest of the file goes through the per-record readers."""


def plan(path: Path, opened: Opened, head: str) -> JsonPlan | None:
    """A plan when ``path`` is UTF-8 JSON lines whose first record is an envelope of a supported map, or
    Event Hub bodies of such envelopes, or a JSON array of such envelopes or of a supported map's records."""
    container = fastdocs.kind(opened, head)
    if container is not None:
        if fastdocs.trailing_comma(path, opened):  # DuckDB reads it, the per-record decoder does not
            return None
        return plan_of(fastdocs.first_record(path, opened), container, UNWRAP_INTO)
    if opened.container != "jsonl" or opened.encoding not in ("utf-8", "utf-8-sig"):
        return None
    try:
        first = loads(head.lstrip("\ufeff").split("\n", 1)[0])
    except ValueError:
        return None
    if not isinstance(first, dict) or pages_of(first) is not None:
        return None
    p = plan_of(first, "lines", UNWRAP_INTO)
    return p if p is not None and p.envelope is not None else None


class JsonFields(Fields):
    """A record's fields as the inner record sees them: properties first, the envelope's fills after.

    Every field is read by one ``json_extract_string`` / ``json_type`` call over a list of paths (one
    parse of the line for all of them): :meth:`ref` gives ``s[i]``, and :attr:`paths` lists the paths.
    """

    def __init__(self, p: JsonPlan) -> None:
        self.p = p
        self.paths: list[str] = []

    def index(self, path: str) -> int:
        """The 1-based position of ``path`` in :attr:`paths` (added when new)."""
        if path not in self.paths:
            self.paths.append(path)
        return self.paths.index(path) + 1

    def _paths(self, steps: tuple[Step, ...], guards: list[Sql] | None) -> list[str]:
        """The JSON paths of a field (the inner record's, then the envelope's that fill it in); an object or
        list on the way must be one or absent (``guards``), else the per-record path decides."""
        key = steps[0][0]
        u = self.p.envelope.unwrap if self.p.envelope is not None else None
        path = f"{'$' if u is None else f'$.{self.p.outer[u.field]}'}.{self.p.inner[key]}" if key in self.p.inner \
            else None
        if len(steps) > 1 or steps[0][1] is not None:
            return self._nested_path(path, steps, guards)
        fills = [f"$.{self.p.outer[fp.steps[0][0]]}" for fp in (u.fill.get(key, ()) if u is not None else ())
                 if len(fp.steps) == 1 and fp.steps[0][0] in self.p.outer]
        return [*([path] if path is not None else []), *fills]

    def _nested_path(self, path: str | None, steps: tuple[Step, ...], guards: list[Sql] | None) -> list[str]:
        """The JSON path of a field inside objects or lists (``a.b.c``, ``a[0].b``): each object on the way an
        object or nothing, each list a list or nothing (``guards``); [] when a step is spelled unknown."""
        nested = dict(self.p.nested)
        for i, (key, index) in enumerate(steps):
            if path is None:
                return []
            if i:
                spelled = nested.get(steps[:i], {})
                if key not in spelled:
                    return []
                if guards is not None:
                    guards.append((f"coalesce(ty[{self.index(path)}], 'NULL') IN ('OBJECT', 'NULL')", []))
                path = f"{path}.{spelled[key]}"
            if index is not None:
                if guards is not None:
                    guards.append((f"coalesce(ty[{self.index(path)}], 'NULL') IN ('ARRAY', 'NULL')", []))
                path = f"{path}[{index}]"
        return [path] if path is not None else []

    def object_path(self, steps: tuple[Step, ...]) -> str | None:
        """The JSON path of the nested object at ``steps`` (None when a step is spelled unknown)."""
        key = steps[0][0]
        u = self.p.envelope.unwrap if self.p.envelope is not None else None
        base = f"{'$' if u is None else f'$.{self.p.outer[u.field]}'}.{self.p.inner[key]}" if key in self.p.inner \
            else None
        found = self._nested_path(base, steps, None)
        return found[0] if found else None

    def jtype(self, steps: tuple[Step, ...]) -> Sql | None:
        u = self.p.envelope.unwrap if self.p.envelope is not None else None
        if u is not None and steps[0][0] in u.fill:  # filled in from the envelope: the per-record path decides
            return None
        paths = self._paths(steps, None)
        if not paths:  # a key the SQL cannot read (_Shapes sends records holding it per record)
            return "NULL", []
        if len(steps) > 1 and steps[-1][1] is None:  # absent when its object is no object
            parent = self.index(paths[0].rsplit(".", 1)[0])
            return f"CASE WHEN ty[{parent}] = 'OBJECT' THEN ty[{self.index(paths[0])}] END", []
        return f"ty[{self.index(paths[0])}]", []

    def text(self, steps: tuple[Step, ...]) -> Sql | None:
        u = self.p.envelope.unwrap if self.p.envelope is not None else None
        paths = self._paths(steps, None)
        nested = len(steps) > 1 or steps[0][1] is not None
        if nested or (u is not None and steps[0][0] in u.fill):  # filled in: the per-record path decides
            return None
        return (f"s[{self.index(paths[0])}]", []) if paths else ("NULL::VARCHAR", [])

    def table(self) -> Sql | None:
        u = self.p.envelope.unwrap if self.p.envelope is not None else None
        return (f"s[{self.index(f'$.{self.p.outer[u.table]}')}]", []) if u is not None and u.table else None

    def ref(self, steps: tuple[Step, ...], integer: bool, guards: list[Sql]) -> Sql | None:
        paths = self._paths(steps, guards)
        if not paths:
            return None
        types = "('VARCHAR', 'NULL', 'BIGINT', 'UBIGINT')" if integer else "('VARCHAR', 'NULL')"
        at = [self.index(jp) for jp in paths]
        for i in at:  # other JSON types are written otherwise by Python: the per-record path decides
            guards.append((f"coalesce(ty[{i}], 'NULL') IN {types}", []))
        if len(at) == 1:
            return f"s[{at[0]}]", []
        return "coalesce(" + ", ".join(f"nullif(s[{i}], '')" for i in at) + ")", []


def map_sql(p: JsonPlan, table: str) -> Sql:
    """The query mapping ``table`` (``pos``, ``line``) to canonical columns, ``raw``, ``ok``, ``valid``, ``kh``.

    Each line is parsed a few times in all (valid, values, types, key lists), not once per field.
    """
    fields = JsonFields(p)
    items, params, (ok, ok_params) = columns_sql(p.fm, fields)
    tables = [[t.lower() for t in p.fm.tables]]
    u = p.envelope.unwrap if p.envelope is not None else None
    if u is not None:
        props = fields.index(f"$.{p.outer[u.field]}")
        cat = fields.index(f"$.{p.outer[u.table]}") if u.table is not None else 0
        inner_keys, tables = f"$.{p.outer[u.field]}", tables if cat else []
        envelope = f"ty[{props}] = 'OBJECT' AND len(ik) > 0 AND "
    else:  # the record names its own table (Log Analytics ``Type``), or its keys decide (:class:`_Shapes`)
        cat = fields.index(f"$.{p.inner['type']}") if "type" in p.inner else 0
        inner_keys, envelope, tables = "$", "", tables if cat else []
        # a category of sign-ins makes a record of another shape a sign-in (mappers.classify)
        if "category" in p.inner:
            at = fields.index(f"$.{p.inner['category']}")
            envelope = (f"coalesce(ty[{at}], 'NULL') IN ('VARCHAR', 'NULL') AND coalesce(s[{at}], '') NOT IN "
                        "('SignInLogs', 'NonInteractiveUserSignInLogs', 'ServicePrincipalSignInLogs', "
                        "'ManagedIdentitySignInLogs') AND ")
    if cat:
        envelope += (f"ty[{cat}] = 'VARCHAR' AND regexp_full_match(s[{cat}], '[ -~]+') "
                     f"AND list_contains(?, regexp_replace(lower(s[{cat}]), '^advancedhunting-', ''))")
    else:
        envelope += "true"
    nested = [fields.object_path(steps) or inner_keys for steps, _ in p.nested]
    select = ["pos", "line AS raw", "valid", "hash(kk) AS kh", "list_transform(kk, lambda x: len(x)) AS lens",
              f"(starts_with(ltrim(line), '{{') AND {envelope} AND {ok}) AS ok",
              # a comma before } or ]: DuckDB reads it, the per-record decoder may not (checked in Python)
              "regexp_matches(line, ',\\s*[}\\]]') AS comma", *items]
    decoded = ("SELECT pos, line, valid, kk, kk[2] AS ik, s, ty FROM (SELECT pos, line, valid, "
               "CASE WHEN valid THEN json_extract_string(line, ?) END AS s, "
               "CASE WHEN valid THEN json_type(line, ?) END AS ty, "
               "CASE WHEN valid THEN json_keys(line, ?) END AS kk "
               # NaN / Infinity: DuckDB reads them, the per-record path writes them back as null
               "FROM (SELECT pos, line, json_valid(line) AND NOT regexp_matches(line, "
               f"'[:,\\[]\\s*-?(Infinity|NaN)') AS valid FROM {table}))")
    query = f"SELECT {', '.join(select)} FROM ({decoded})"
    return query, [*tables, *ok_params, *params, fields.paths, fields.paths, ["$", inner_keys, *nested]]


class _Shapes:
    """Accepts record shapes (by key-list hash) from one sample record each, as the per-record path sees them."""

    def __init__(self, p: JsonPlan) -> None:
        self.p = p
        self.known: dict[int, bool] = {}

    def accept(self, record: Any, lens: list[int | None]) -> bool:
        """``lens``: DuckDB's key counts of the record, its inner record and the nested objects read."""
        if not isinstance(record, dict):
            return False
        if pages_of(record) is not None:
            raise _Stop("a page of records inside a record")
        if self.p.envelope is None:
            if len(record) != lens[0] or classify(normalise_keys(record)) != self.p.fm.NAME:
                return False
            return spelled_as(record, self.p.inner, keys_read(self.p, False) | {"type", "category"}) and \
                nested_spelled(self.p, record, lens)
        u = self.p.envelope.unwrap
        assert u is not None
        inner = record.get(self.p.outer[u.field])
        if len(record) != lens[0] or not isinstance(inner, dict) or len(inner) != lens[1]:  # a key written twice
            return False
        if classify(normalise_keys(record)) != self.p.envelope.NAME:
            return False
        return spelled_as(record, self.p.outer, keys_read(self.p, True)) and spelled_as(inner, self.p.inner,
                                                                                 keys_read(self.p, False)) and \
            nested_spelled(self.p, inner, lens)

    def __call__(self, hashes: np.ndarray, sample: Callable[[int], tuple[Any, list[int | None]]]) -> np.ndarray:
        uniques, first = np.unique(hashes, return_index=True)
        for h, i in zip(uniques.tolist(), first.tolist(), strict=True):
            if h not in self.known:
                self.known[h] = self.accept(*sample(i))
        accepted = np.array([h for h in uniques.tolist() if self.known[h]], dtype=hashes.dtype)
        return np.isin(hashes, accepted)


def _valid(t: pa.Table) -> np.ndarray:
    """Rows DuckDB read as the per-record decoder does (a comma before } or ]: decoded to be sure)."""
    valid = pc.fill_null(t.column("valid"), False).to_numpy(zero_copy_only=False).copy()
    comma = pc.fill_null(t.column("comma"), False).to_numpy(zero_copy_only=False)
    lines = t.column("raw")
    for i in np.flatnonzero(valid & comma).tolist():
        try:
            loads(lines[i].as_py())
        except (ValueError, RecursionError):
            valid[i] = False
    return valid


def parse(p: JsonPlan, path: Path, opened: Opened, *, evidence: str, batch_size: int, dayfirst: bool, hint: str,
          slow: Callable[[int], Iterator[Batch]]) -> Iterator[Batch]:
    """Batches of one JSON file mapped in DuckDB; ``slow(n)`` parses it per record after record ``n``."""
    query, params = map_sql(p, "lines")
    shapes = _Shapes(p)
    last = 0  # the last record in a batch yielded
    con, reader = duckdb.connect(), duckdb.connect()  # one maps, the other reads documents
    try:
        for c in (con, reader):
            c.execute("SET enable_progress_bar = false")
            c.execute(f"SET memory_limit = {literal(fastrows.MEMORY)}")
        for lines in fastdocs.chunks(p.container, path, opened, batch_size, reader):
            con.register("lines", lines)
            t = con.sql(query, params=params).to_arrow_table()
            con.unregister("lines")
            bad = np.flatnonzero(~_valid(t))
            rows = int(bad[0]) if len(bad) else t.num_rows
            if rows:
                yield _batch(p, t.slice(0, rows), shapes, evidence=evidence, dayfirst=dayfirst, hint=hint)
                last = int(t.column("pos")[rows - 1].as_py())
            if rows < t.num_rows:
                raise _Stop(f"record {last + 1} is not JSON DuckDB reads as the per-record readers do")
    except (duckdb.Error, _Stop, fastrows.FastPathStop, pa.ArrowException, OSError, UnicodeError) as exc:
        log.info("%s: per-record import from record %d on (%s)", evidence, last + 1, str(exc).splitlines()[0])
        yield from slow(last)
    finally:
        con.close()
        reader.close()


def _batch(p: JsonPlan, t: pa.Table, shapes: _Shapes, *, evidence: str, dayfirst: bool, hint: str) -> Batch:
    raws = fastrows.one_array(t.column("raw"))
    lens = t.column("lens")

    def sample(i: int) -> tuple[Any, list[int | None]]:
        try:
            return loads(raws[i].as_py()), [-1 if n is None else n for n in lens[i].as_py() or [-1, -1]]
        except (ValueError, TypeError):
            return None, [-1, -1]

    ok = pc.and_(pc.fill_null(fastrows.one_array(t.column("ok")), False),
                 pa.array(shapes(t.column("kh").to_numpy(), sample) & ~fastrows.maybe_deep(raws)))
    return finish_batch(p.fm, t, ok, t.column("pos").to_pylist(), evidence=evidence, dayfirst=dayfirst, hint=hint)


__all__ = ["JsonFields", "JsonPlan", "map_sql", "parse", "plan"]
