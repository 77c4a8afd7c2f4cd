"""SQL forms of the unified audit log map's transforms (``maps/ual.yaml``, :mod:`ir_toolkit.sources.ual_fields`).

The operations that name what they acted on in ``ObjectId`` / ``ItemName``, and mail access (MailItemsAccessed:
access type, throttling, ``OperationCount``, the folders and message ids of ``Folders``) are mapped in SQL;
item groups (``AffectedItems``, ``Folder``, ``DestFolder``), inbox rule and permission operations
(``Parameters``), records with a ``Target`` list, ``{Name, Value}`` entries written as PowerShell text
(Defender's RawEventData) or spelled otherwise are decided per record, by the guards these forms add.
"""

from __future__ import annotations

from collections.abc import Callable

from ir_toolkit.sources.sqlforms import (
    LIST,
    TEXT,
    Fields,
    PathForm,
    RecordForm,
    Sql,
    Step,
    absent,
    array_of,
    field_text,
    fields_text,
    of_types,
    only_where,
    plain_keys,
)
from ir_toolkit.sources.ual_fields import MAIL_ACCESS, PERMISSION_OPS, RULE_OPS
from ir_toolkit.sqltext import literal

_NAME = r'[ !#-\[\]-~]*'  # printable ASCII but " and \ (Python's lower() and the regex's (?i) agree)


def _name_value(name: str, flag: bool) -> Callable[[Fields, tuple[Step, ...], list[Sql]], Sql]:
    """``name_value(v, name)`` of a ``[{Name, Value}]`` list: the JSON token of the first entry's Value (''
    when none). The list is matched as DuckDB writes it (compact JSON): entries of exactly ``Name`` then
    ``Value``, the name printable ASCII, the value a string without escapes, null (or, for a ``flag``, true or
    false); any other list goes per record. One regular expression over the list's text, not a parse of it
    per guard and value (the JSON-function form of session 7 cost more than the per-record path)."""
    token = r'"[^"\\]*"|null' + (r'|true|false' if flag else "")
    entry = r'\{"Name":"' + _NAME + r'","Value":(?:' + token + r')\}'
    shape = literal(r'\[(?:' + entry + r'(?:,' + entry + r')*)?\]')
    find = literal(r'\{"Name":"(?i:' + name + r')","Value":(' + token + r')\}')

    def sql(src: Fields, steps: tuple[Step, ...], guards: list[Sql]) -> Sql:
        found = fields_text(src, steps)
        if found is None:
            guards.append(("false", []))
            return "''", []
        (t, tps), (v, vps) = found
        guards.append((f"(coalesce({t}, 'NULL') = 'NULL' OR ({t} = 'ARRAY' AND regexp_full_match({v}, {shape})))",
                       [*tps, *tps, *vps]))
        return f"CASE WHEN {t} = 'ARRAY' THEN regexp_extract({v}, {find}, 1) ELSE '' END", [*tps, *tps, *vps]
    return sql


def _entry_text(name: str) -> Callable[[Fields, tuple[Step, ...], list[Sql]], Sql]:
    """The Value of entry ``name`` as text (logon User-Agent and session id, mail access type)."""
    nv = _name_value(name, flag=False)

    def sql(src: Fields, steps: tuple[Step, ...], guards: list[Sql]) -> Sql:
        tok, ps = nv(src, steps, guards)
        value = f"CASE WHEN starts_with({tok}, '\"') THEN nullif(({tok})[2:-2], '') END"
        if name == "MailAccessType":  # text(): stripped; printable ASCII ends are left as they are
            guards.append((f"(coalesce({value}, '') = '' OR regexp_full_match({value}, '(?s)[!-~](.*[!-~])?'))",
                           ps * 4))
        return value, ps * 2
    return sql


def _entry_flag(src: Fields, steps: tuple[Step, ...], guards: list[Sql]) -> Sql:
    """boolean() of entry IsThrottled's Value: true, false or NULL."""
    tok, ps = _name_value("IsThrottled", flag=True)(src, steps, guards)
    v = f"lower(trim(({tok})[2:-2]))"
    guards.append((f"regexp_full_match({tok}, '[ -~]*')", ps))
    return (f"CASE WHEN ({tok}) = 'true' THEN true WHEN ({tok}) = 'false' THEN false "
            f"WHEN NOT starts_with({tok}, '\"') THEN NULL WHEN {v} IN ('true', '1', 'yes') THEN true "
            f"WHEN {v} IN ('false', '0', 'no') THEN false END", ps * 6)


UAL_PATH_FORMS: dict[str, PathForm] = {
    "logon_user_agent": _entry_text("UserAgent"),
    "logon_session_id": _entry_text("SessionId"),
    "mail_access_type": _entry_text("MailAccessType"),
    "is_throttled": _entry_flag,
}




def _mail(exprs: dict[str, Sql]) -> Sql:
    """SQL true for a mail access record (MailItemsAccessed), false otherwise."""
    op, ps = exprs["operation"]
    return f"coalesce(({op}) = ?, false)", [*ps, MAIL_ACCESS]




def _ual_source(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    m, ps = _mail(exprs)
    return f"CASE WHEN {m} THEN 'mail_access' ELSE 'audit_other' END", ps


def _ual_mailbox(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    """MailboxOwnerUPN; else, for an Exchange record that names a mailbox (MailboxGuid), the user."""
    (m, mps), (w, wps) = own, field_text(src, "workload", guards)
    (g, gps), (u, ups) = field_text(src, "mailboxguid", guards), field_text(src, "userid", guards)
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
    only_where((f"NOT {m}", ps), guards, start)


_ITEM = f"{plain_keys('x', ('InternetMessageId',))} AND {of_types('x', '$.InternetMessageId', TEXT)}"
_FOLDER = (f"{plain_keys('e', ('Path', 'FolderItems'))} AND {of_types('e', '$.Path', TEXT)} AND "
           f"{of_types('e', '$.FolderItems', LIST)} AND "
           "len(list_filter(coalesce(CAST(json_extract(e, '$.FolderItems') AS JSON[]), []), "
           f"lambda x: json_type(x) = 'OBJECT' AND NOT coalesce({_ITEM}, false))) = 0")


def _touched(which: str) -> Callable[[Fields, dict[str, Sql], Sql, list[Sql]], Sql]:
    """Mail access: message ids / folder paths of Folders; other operations: NULL (item groups per record)."""
    def sql(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
        _no_item_group(src, exprs, guards)
        start = len(guards)
        found = array_of(src, (("folders", None),), _FOLDER, guards)
        m, mps = _mail(exprs)
        only_where((m, mps), guards, start)
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
    n, nps = field_text(src, "operationcount", guards, integer=True)
    guards.append((f"(coalesce({n}, '') = '' OR regexp_full_match({n}, '-?[0-9]{{1,15}}'))", nps * 2))
    m, mps = _mail(exprs)
    only_where((m, mps), guards, start)
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
    (o, ops), (n, nps) = field_text(src, "objectid", guards), field_text(src, "itemname", guards)
    found = f"coalesce(nullif({o}, ''), nullif({n}, ''))"
    # text(): Python's strip() and Arrow's trim agree on printable ASCII ends
    guards.append((f"({found} IS NULL OR regexp_full_match({found}, '(?s)[!-~](.*[!-~])?'))", [*ops, *nps] * 2))
    m, mps = _mail(exprs)
    only_where((f"NOT {m}", mps), guards, start)
    return f"CASE WHEN NOT {m} THEN {found} END", [*mps, *ops, *nps]


_GROUP = ("affecteditems", "folder", "destfolder")
UAL_RECORD_FORMS: dict[str, RecordForm] = {
    "ual_source": RecordForm((), _ual_source),
    "ual_mailbox": RecordForm(("workload", "mailboxguid", "userid"), _ual_mailbox),
    "mail_access_only": RecordForm((), _mail_access_type),
    "mail_access_throttled": RecordForm((), _throttled),
    "ual_items": RecordForm((*_GROUP, "operationcount"), _ual_items),
    "ual_message_ids": RecordForm((*_GROUP, "folders"), _touched("ids")),
    "ual_folders": RecordForm((*_GROUP, "folders"), _touched("folders")),
    "ual_target": RecordForm((*_GROUP, "target", "objectid", "itemname"), _ual_target),
}
