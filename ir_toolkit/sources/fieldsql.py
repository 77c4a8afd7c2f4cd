"""SQL forms of the field maps' record transforms, for the fast path generated from the maps (issue 15).

A field map (``maps/*.yaml``) names its whole-column decisions as record transforms
(:data:`ir_toolkit.sources.transforms.RECORD_TRANSFORMS`); the per-record mapper runs their Python,
the generated SQL (:func:`ir_toolkit.sources.fastmap.columns_sql`) runs the form registered here under
the same name. A form writes the column for the records it maps exactly as the Python does and adds a
guard (an SQL condition) for the rest: a record whose guard fails is mapped per record, in its place,
so both paths give the same events. A transform without a form here keeps its map off the fast path.

The unified audit log forms (``maps/ual.yaml``, :mod:`ir_toolkit.sources.ual_fields`) map the
operations that name what they acted on in ``ObjectId`` / ``ItemName``; mail access (MailItemsAccessed:
folders and message ids in nested lists), item groups (``AffectedItems``, ``Folder``, ``DestFolder``),
inbox rule and permission operations (``Parameters``) and records with a ``Target`` list are decided
per record.

Fields are read through :class:`Fields`: ``ref`` gives a field's text (a JSON number as its text when
``integer``), ``jtype`` its JSON type (``'NULL'`` or NULL when absent), each as SQL with parameters;
nothing read from a file is pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ir_toolkit.sources.transforms import RECORD_TRANSFORMS
from ir_toolkit.sources.ual_fields import MAIL_ACCESS, PERMISSION_OPS, RULE_OPS

Sql = tuple[str, list[Any]]  # an SQL expression and the parameters of its ``?`` placeholders, in order
Step = tuple[str, int | None]
_GUID = "'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\n?'"  # ual_fields' guid


class Fields:
    """Where the SQL reads a record's fields (a CSV row's columns, a JSON record's paths)."""

    def ref(self, steps: tuple[Step, ...], integer: bool, guards: list[Sql]) -> Sql | None:
        """The field's text (NULL or '' when empty), or None when records have no such field; what must hold
        for the text to be the value the per-record path reads is appended to ``guards``."""
        raise NotImplementedError

    def jtype(self, steps: tuple[Step, ...]) -> Sql | None:
        """The field's JSON type (``'NULL'`` or NULL when absent or null), None when the source has no types."""
        return None


def absent(src: Fields, key: str) -> Sql | None:
    """A condition true when the record has no value at ``key`` (missing or JSON null), None when unknown."""
    t = src.jtype(((key, None),))
    return (f"coalesce({t[0]}, 'NULL') = 'NULL'", t[1]) if t is not None else None


def _field(src: Fields, key: str, guards: list[Sql], integer: bool = False) -> Sql:
    return src.ref(((key, None),), integer, guards) or ("NULL::VARCHAR", [])


def _plain_keys(obj: str, spelled: tuple[str, ...]) -> str:
    """SQL true when JSON object ``obj`` has distinct keys of letters and digits, and spells the keys of
    ``spelled`` only so (the per-record lookups by usual spelling, then case-insensitively, agree)."""
    names = ", ".join(f"'{k}'" for k in spelled)
    lowers = ", ".join(f"'{k.lower()}'" for k in spelled)
    return (f"(json_type({obj}) = 'OBJECT' AND len(json_keys({obj})) = len(list_distinct(json_keys({obj}))) AND "
            f"len(list_filter(json_keys({obj}), lambda k: NOT regexp_full_match(k, '[A-Za-z0-9]+') OR "
            f"(lower(k) IN ({lowers}) AND k NOT IN ({names})))) = 0)")


_TEXT, _LIST = "('VARCHAR', 'NULL')", "('ARRAY', 'NULL')"


def _types(obj: str, path: str, types: str) -> str:
    return f"coalesce(json_type({obj}, '{path}'), 'NULL') IN {types}"


def _array(src: Fields, steps: tuple[Step, ...], each: str, guards: list[Sql]) -> tuple[str, list[Any]] | None:
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


def _name_value(name: str, types: str) -> Callable[[Fields, tuple[Step, ...], list[Sql]], Sql]:
    """``name_value(v, name)`` of a ``[{Name, Value}]`` list: the entry's Value (its JSON type beside it)."""
    each = (f"{_plain_keys('e', ('Name', 'Value', 'Key'))} AND NOT list_contains(json_keys(e), 'Key') AND "
            f"{_types('e', '$.Name', _TEXT)} AND regexp_full_match(coalesce(json_extract_string(e, '$.Name'), ''), "
            f"'[ -~]*') AND {_types('e', '$.Value', types)}")

    def sql(src: Fields, steps: tuple[Step, ...], guards: list[Sql]) -> Sql:
        found = _array(src, steps, each, guards)
        if found is None:
            return "NULL::VARCHAR", []
        items, ps = found
        return f"list_filter({items}, lambda e: lower(json_extract_string(e, '$.Name')) = ?)[1]", [*ps, name.lower()]
    return sql


def _entry_text(name: str) -> Callable[[Fields, tuple[Step, ...], list[Sql]], Sql]:
    """The Value of entry ``name`` as text (logon User-Agent and session id, mail access type)."""
    nv = _name_value(name, _TEXT)

    def sql(src: Fields, steps: tuple[Step, ...], guards: list[Sql]) -> Sql:
        e, ps = nv(src, steps, guards)
        value = f"json_extract_string({e}, '$.Value')"
        if name == "MailAccessType":  # text(): stripped; printable ASCII ends are left as they are
            guards.append((f"(coalesce({value}, '') = '' OR regexp_full_match({value}, '(?s)[!-~](.*[!-~])?'))",
                           ps * 2))
        return f"nullif({value}, '')", ps
    return sql


def _entry_flag(src: Fields, steps: tuple[Step, ...], guards: list[Sql]) -> Sql:
    """boolean() of entry IsThrottled's Value: true, false or NULL."""
    e, ps = _name_value("IsThrottled", "('VARCHAR', 'BOOLEAN', 'NULL')")(src, steps, guards)
    v = f"json_extract_string({e}, '$.Value')"
    guards.append((f"regexp_full_match(coalesce({v}, ''), '[ -~]*')", ps))
    return (f"CASE WHEN lower(trim({v})) IN ('true', '1', 'yes') THEN true "
            f"WHEN lower(trim({v})) IN ('false', '0', 'no') THEN false END", ps * 2)


PATH_FORMS: dict[str, Callable[[Fields, tuple[Step, ...], list[Sql]], Sql]] = {
    "logon_user_agent": _entry_text("UserAgent"),
    "logon_session_id": _entry_text("SessionId"),
    "mail_access_type": _entry_text("MailAccessType"),
    "is_throttled": _entry_flag,
}


@dataclass(frozen=True)
class RecordForm:
    """The SQL form of one record transform: the top-level keys it reads besides the map's paths, and
    ``sql(src, exprs, own, guards)``: the column from its own paths' value (``own``) and the columns mapped
    before it (``exprs``)."""

    reads: tuple[str, ...]
    sql: Callable[[Fields, dict[str, Sql], Sql, list[Sql]], Sql]


def _result(of: str, test: str) -> RecordForm:
    def sql(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
        ref, ps = exprs[of]
        return f"CASE WHEN ({ref}) IS NULL THEN NULL WHEN ({ref}) {test} THEN 'success' ELSE 'failure' END", ps * 2
    return RecordForm((), sql)


def _mail(exprs: dict[str, Sql]) -> Sql:
    """SQL true for a mail access record (MailItemsAccessed), false otherwise."""
    op, ps = exprs["operation"]
    return f"coalesce(({op}) = ?, false)", [*ps, MAIL_ACCESS]


def _only(cond: Sql, guards: list[Sql], start: int) -> None:
    """The guards from ``start`` on need to hold only where ``cond`` does."""
    c, ps = cond
    guards[start:] = [(f"(NOT {c} OR {g})", [*ps, *gps]) for g, gps in guards[start:]]


def _ual_source(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    m, ps = _mail(exprs)
    return f"CASE WHEN {m} THEN 'mail_access' ELSE 'audit_other' END", ps


def _ual_mailbox(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    """MailboxOwnerUPN; else, for an Exchange record that names a mailbox (MailboxGuid), the user."""
    (m, mps), (w, wps) = own, _field(src, "workload", guards)
    (g, gps), (u, ups) = _field(src, "mailboxguid", guards), _field(src, "userid", guards)
    return (f"CASE WHEN ({m}) IS NOT NULL AND ({m}) <> '' THEN ({m}) "
            f"WHEN ({w}) = 'Exchange' AND coalesce({g}, '') <> '' THEN ({u}) END", [*mps * 3, *wps, *gps, *ups])


def _mail_access_type(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    (m, mps), (v, vps) = _mail(exprs), own
    return f"CASE WHEN {m} THEN {v} END", [*mps, *vps]


def _throttled(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    (m, mps), (v, vps) = _mail(exprs), own
    return f"CASE WHEN {m} THEN ({v}) IS TRUE END", [*mps, *vps]


def _no_item_group(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> None:
    """Other operations than mail access are mapped in SQL without AffectedItems, Folder and DestFolder."""
    start = len(guards)
    for key in ("affecteditems", "folder", "destfolder"):
        cond = absent(src, key)
        guards.append(cond if cond is not None else ("false", []))
    m, ps = _mail(exprs)
    _only((f"NOT {m}", ps), guards, start)


_ITEM = f"{_plain_keys('x', ('InternetMessageId',))} AND {_types('x', '$.InternetMessageId', _TEXT)}"
_FOLDER = (f"{_plain_keys('e', ('Path', 'FolderItems'))} AND {_types('e', '$.Path', _TEXT)} AND "
           f"{_types('e', '$.FolderItems', _LIST)} AND "
           "len(list_filter(coalesce(CAST(json_extract(e, '$.FolderItems') AS JSON[]), []), "
           f"lambda x: json_type(x) = 'OBJECT' AND NOT coalesce({_ITEM}, false))) = 0")


def _touched(which: str) -> Callable[[Fields, dict[str, Sql], Sql, list[Sql]], Sql]:
    """Mail access: message ids / folder paths of Folders; other operations: NULL (item groups per record)."""
    def sql(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
        _no_item_group(src, exprs, guards)
        start = len(guards)
        found = _array(src, (("folders", None),), _FOLDER, guards)
        m, mps = _mail(exprs)
        _only((m, mps), guards, start)
        if found is None:
            return "NULL", []
        items, ps = found
        if which == "folders":
            listed = (f"list_transform(list_filter({items}, lambda e: json_type(e, '$.Path') = 'VARCHAR'), "
                      "lambda e: json_extract_string(e, '$.Path'))")
        else:
            listed = (f"flatten(list_transform({items}, lambda e: list_transform(list_filter(coalesce(CAST("
                      "json_extract(e, '$.FolderItems') AS JSON[]), []), lambda x: json_type(x) = 'OBJECT' AND "
                      "coalesce(json_extract_string(x, '$.InternetMessageId'), '') <> ''), "
                      "lambda x: json_extract_string(x, '$.InternetMessageId'))))")
        return f"CASE WHEN {m} THEN coalesce({listed}, []::VARCHAR[]) END", [*mps, *ps]
    return sql


def _ual_items(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    """Mail access: OperationCount; other operations: NULL (item groups per record)."""
    _no_item_group(src, exprs, guards)
    start = len(guards)
    n, nps = _field(src, "operationcount", guards, integer=True)
    guards.append((f"(coalesce({n}, '') = '' OR regexp_full_match({n}, '-?[0-9]{{1,15}}'))", nps * 2))
    m, mps = _mail(exprs)
    _only((m, mps), guards, start)
    return f"CASE WHEN {m} THEN TRY_CAST(nullif({n}, '') AS BIGINT) END", [*mps, *nps]


def _ual_target(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    """ObjectId, else ItemName, as text; rule and permission operations and a Target list per record."""
    _no_item_group(src, exprs, guards)  # DestFolder's path is the target of a move without ObjectId
    start = len(guards)
    op, ps = exprs["operation"]
    cond = absent(src, "target")
    guards.append(cond if cond is not None else ("false", []))
    guards.append((f"(({op}) IS NULL OR (regexp_full_match({op}, '[ -~]*') AND NOT list_contains(?, lower({op}))))",
                   [*ps, *ps, sorted(RULE_OPS | PERMISSION_OPS), *ps]))
    (o, ops), (n, nps) = _field(src, "objectid", guards), _field(src, "itemname", guards)
    found = f"coalesce(nullif({o}, ''), nullif({n}, ''))"
    # text(): Python's strip() and Arrow's trim agree on printable ASCII ends
    guards.append((f"({found} IS NULL OR regexp_full_match({found}, '(?s)[!-~](.*[!-~])?'))", [*ops, *nps] * 2))
    m, mps = _mail(exprs)
    _only((f"NOT {m}", mps), guards, start)
    return f"CASE WHEN NOT {m} THEN {found} END", [*mps, *ops, *nps]


_GROUP = ("affecteditems", "folder", "destfolder")
RECORD_FORMS: dict[str, RecordForm] = {
    "result_from_http_status": _result("response_status", "< 400"),
    "result_from_error_code": _result("error_code", "= 0"),
    "ual_source": RecordForm((), _ual_source),
    "ual_mailbox": RecordForm(("workload", "mailboxguid", "userid"), _ual_mailbox),
    "mail_access_only": RecordForm((), _mail_access_type),
    "mail_access_throttled": RecordForm((), _throttled),
    "ual_items": RecordForm((*_GROUP, "operationcount"), _ual_items),
    "ual_message_ids": RecordForm((*_GROUP, "folders"), _touched("ids")),
    "ual_folders": RecordForm((*_GROUP, "folders"), _touched("folders")),
    "ual_target": RecordForm((*_GROUP, "target", "objectid", "itemname"), _ual_target),
}


def record_reads(fn: Callable[..., Any] | None) -> tuple[str, ...]:
    """The top-level keys the SQL form of record transform ``fn`` reads (none for None or no form)."""
    name = next((k for k, v in RECORD_TRANSFORMS.items() if v is fn), None) if fn is not None else None
    return RECORD_FORMS[name].reads if name in RECORD_FORMS else ()


COLUMN_FORMS: dict[str, str] = {"guid": _GUID}  # value transforms that keep a value matching the pattern, else NULL

# How unified audit log records spell the keys the SQL reads (Microsoft's schema): the SQL reads these where
# the file's first record lacks the key; a record spelling one otherwise goes per record.
SPELLINGS: dict[str, str] = {k.lower(): k for k in (
    "CreationTime", "TimeGenerated", "Operation", "ResultStatus", "UserId", "UserKey", "MailboxOwnerUPN", "AppId",
    "ApplicationId", "ClientAppId", "AppAccessContext", "ClientIPAddress", "ClientIP", "ActorIpAddress",
    "ClientInfoString", "UserAgent", "ExtendedProperties", "DeviceProperties", "SessionId", "OperationProperties",
    "Id", "OfficeId", "Workload", "MailboxGuid", "AffectedItems", "Folder", "DestFolder", "Folders", "Parameters",
    "Target", "ObjectId", "ItemName", "OperationCount", "AADSessionId", "UniqueTokenId", "IssuedAtTime")}
