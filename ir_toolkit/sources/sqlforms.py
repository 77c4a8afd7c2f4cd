"""The parts the SQL forms of field-map transforms are written with (:mod:`ir_toolkit.sources.fieldsql`).

:class:`Fields` is where the generated SQL reads a record's fields (a CSV row's columns, a JSON record's
paths: :class:`ir_toolkit.sources.fastmap.CsvFields`, :class:`ir_toolkit.sources.fastjson.JsonFields`);
the helpers write the checks a form adds as guards: a record whose guard fails goes per record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Sql = tuple[str, list[Any]]  # an SQL expression and the parameters of its ``?`` placeholders, in order
Step = tuple[str, int | None]
PathForm = Callable[["Fields", tuple[Step, ...], list[Sql]], Sql]


class Fields:
    """Where the SQL reads a record's fields (a CSV row's columns, a JSON record's paths)."""

    def ref(self, steps: tuple[Step, ...], integer: bool, guards: list[Sql]) -> Sql | None:
        """The field's text (NULL or '' when empty), or None when records have no such field; what must hold
        for the text to be the value the per-record path reads is appended to ``guards``."""
        raise NotImplementedError

    def jtype(self, steps: tuple[Step, ...]) -> Sql | None:
        """The field's JSON type (``'NULL'`` or NULL when absent or null), None when the source has no types."""
        return None

    def text(self, steps: tuple[Step, ...]) -> Sql | None:
        """The field's text as JSON writes it (an object or a list as its JSON), with no guard; None when unknown."""
        return None

    def table(self) -> Sql | None:
        """The table the record's envelope names (a diagnostic-settings category), None when none."""
        return None


def absent(src: Fields, key: str) -> Sql | None:
    """A condition true when the record has no value at ``key`` (missing or JSON null), None when unknown."""
    t = src.jtype(((key, None),))
    return (f"coalesce({t[0]}, 'NULL') = 'NULL'", t[1]) if t is not None else None


def field_text(src: Fields, key: str, guards: list[Sql], integer: bool = False) -> Sql:
    return src.ref(((key, None),), integer, guards) or ("NULL::VARCHAR", [])


def plain_keys(obj: str, spelled: tuple[str, ...]) -> str:
    """SQL true when JSON object ``obj`` has distinct keys of letters and digits, and spells the keys of
    ``spelled`` only so (the per-record lookups by usual spelling, then case-insensitively, agree)."""
    names = ", ".join(f"'{k}'" for k in spelled)
    lowers = ", ".join(f"'{k.lower()}'" for k in spelled)
    return (f"(json_type({obj}) = 'OBJECT' AND len(json_keys({obj})) = len(list_distinct(json_keys({obj}))) AND "
            f"len(list_filter(json_keys({obj}), lambda k: NOT regexp_full_match(k, '[A-Za-z0-9]+') OR "
            f"(lower(k) IN ({lowers}) AND k NOT IN ({names})))) = 0)")


TEXT, LIST = "('VARCHAR', 'NULL')", "('ARRAY', 'NULL')"


def of_types(obj: str, path: str, types: str) -> str:
    return f"coalesce(json_type({obj}, '{path}'), 'NULL') IN {types}"


def array_of(src: Fields, steps: tuple[Step, ...], each: str, guards: list[Sql]) -> tuple[str, list[Any]] | None:
    """The JSON list at ``steps`` as ``JSON[]`` (NULL when absent or null); ``each(e)`` (SQL of ``e``) must hold
    for every element, and the field be a list or nothing, else the record goes per record."""
    ref, t = src.ref(steps, False, []), src.jtype(steps)
    if ref is None or t is None:
        guards.append(("false", []))
        return None
    items = f"CASE WHEN {t[0]} = 'ARRAY' THEN CAST(CAST({ref[0]} AS JSON) AS JSON[]) END"
    params = [*t[1], *ref[1]]
    guards.append((f"(coalesce({t[0]}, 'NULL') = 'NULL' OR ({t[0]} = 'ARRAY' AND "
                   f"len(list_filter({items}, lambda e: NOT coalesce({each}, false))) = 0))", [*t[1], *t[1], *params]))
    return items, params




@dataclass(frozen=True)
class RecordForm:
    """The SQL form of one record transform: the top-level keys it reads besides the map's paths,
    ``sql(src, exprs, own, guards)``: the column from its own paths' value (``own``) and the columns mapped
    before it (``exprs``), and whether it needs the table an envelope names (:meth:`Fields.table`)."""

    reads: tuple[str, ...]
    sql: Callable[[Fields, dict[str, Sql], Sql, list[Sql]], Sql]
    table: bool = False



def only_where(cond: Sql, guards: list[Sql], start: int) -> None:
    """The guards from ``start`` on need to hold only where ``cond`` does."""
    c, ps = cond
    guards[start:] = [(f"(NOT {c} OR {g})", [*ps, *gps]) for g, gps in guards[start:]]



def fields_text(src: Fields, steps: tuple[Step, ...]) -> tuple[Sql, Sql] | None:
    """A field's JSON type and its text (an object or list as its JSON), with no guard; None when unknown."""
    t, v = src.jtype(steps), src.text(steps)
    return (t, v) if t is not None and v is not None else None
