"""SQL forms of the unified audit log map's transforms (``maps/ual.yaml``, :mod:`ir_toolkit.sources.ual_fields`).

The operations that name what they acted on in ``ObjectId`` / ``ItemName``, and mail access (MailItemsAccessed,
AttachmentAccess, MessageBind:
access type, throttling, ``OperationCount``, the folders and message ids of ``Folders``) are mapped in SQL;
item groups (``AffectedItems``, ``Folder``, ``DestFolder``), inbox rule and permission operations
(``Parameters``), records with a ``Target`` list, ``{Name, Value}`` entries written as PowerShell text
(Defender's RawEventData) or spelled otherwise are decided per record, by the guards these forms add.
"""

from __future__ import annotations

from collections.abc import Callable

from ir_toolkit.sources.sqlforms import (
    Fields,
    PathForm,
    RecordForm,
    Sql,
    Step,
    absent,
    field_text,
    fields_text,
    only_where,
)
from ir_toolkit.sources.ual_fields import MAIL_ACCESS_OPS, PERMISSION_OPS, RULE_OPS
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
        if name in ("MailAccessType", "AttachmentAccessType"):  # text(): stripped; printable ASCII ends kept
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


def _access_type(src: Fields, steps: tuple[Step, ...], guards: list[Sql]) -> Sql:
    """The entry MailAccessType's Value, else AttachmentAccessType's (an AttachmentAccess record)."""
    (m, mps), (a, aps) = _entry_text("MailAccessType")(src, steps, guards), _entry_text("AttachmentAccessType")(
        src, steps, guards)
    return f"coalesce({m}, {a})", [*mps, *aps]


UAL_PATH_FORMS: dict[str, PathForm] = {
    "logon_user_agent": _entry_text("UserAgent"),
    "logon_session_id": _entry_text("SessionId"),
    "mail_access_type": _access_type,
    "is_throttled": _entry_flag,
}




def _mail(exprs: dict[str, Sql]) -> Sql:
    """SQL true for a mail access record (``ual_fields.MAIL_ACCESS_OPS``: MailItemsAccessed ...), false otherwise."""
    op, ps = exprs["operation"]
    return f"coalesce(list_contains(?, {op}), false)", [list(MAIL_ACCESS_OPS), *ps]




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


# The Folders list as DuckDB writes it (compact JSON), matched whole by one regular expression instead of a JSON
# parse of the list, of each folder and of each item per guard and value (session 9: the JSON-function form cost
# about a third of the CloudAppEvents query): folders of exactly Id (optional), Path, FolderItems (optional), items
# of exactly Id (optional), InternetMessageId, SizeInBytes (optional), keys in that order and each once, strings
# without \\u escapes (decoded by DuckDB as by Python), sizes integers. Any other list goes per record.
_STR = r'"(?:[^"\\]|\\[^u])*"'
_ITEM = r'\{(?:"Id":' + _STR + r',)?"InternetMessageId":' + _STR + r'(?:,"SizeInBytes":-?[0-9]+)?\}'
_FOLDER = (r'\{(?:"Id":' + _STR + r',)?"Path":' + _STR + r'(?:,"FolderItems":\[(?:' + _ITEM + r'(?:,' + _ITEM +
           r')*)?\])?\}')
_FOLDERS = literal(r'\[(?:' + _FOLDER + r'(?:,' + _FOLDER + r')*)?\]')
# each value's JSON string token (keys are never inside a string: its quotes are escaped), decoded
_TOKENS = {"folders": literal(r'"Path":(' + _STR + r')'), "ids": literal(r'"InternetMessageId":(' + _STR + r')')}
_DECODE = "lambda t: CASE WHEN contains(t, '\\') THEN json_extract_string(t, '$') ELSE t[2:-2] END"


def _once(guards: list[Sql], start: int) -> None:
    """Drops the guards from ``start`` on that are already among those before it (the forms of several
    columns add the same check: DuckDB would evaluate it once per copy)."""
    added = guards[start:]
    del guards[start:]
    for g in added:
        if g not in guards:
            guards.append(g)


def _touched(which: str) -> Callable[[Fields, dict[str, Sql], Sql, list[Sql]], Sql]:
    """Mail access: message ids / folder paths of Folders; other operations: NULL (item groups per record)."""
    def sql(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
        start = len(guards)
        _no_item_group(src, exprs, guards)
        _once(guards, start)
        start = len(guards)
        found = fields_text(src, (("folders", None),))
        m, mps = _mail(exprs)
        if found is None:
            guards.append(("false", []))
            only_where((m, mps), guards, start)
            return "NULL", []
        (t, tps), (v, vps) = found
        guards.append((f"(coalesce({t}, 'NULL') = 'NULL' OR ({t} = 'ARRAY' AND regexp_full_match({v}, {_FOLDERS})))",
                       [*tps, *tps, *vps]))
        only_where((m, mps), guards, start)
        _once(guards, start)
        listed = f"list_transform(regexp_extract_all({v}, {_TOKENS[which]}, 1), {_DECODE})"
        if which == "ids":
            listed = f"list_filter({listed}, lambda x: x <> '')"
        return (f"CASE WHEN {m} THEN CASE WHEN {t} = 'ARRAY' THEN {listed} ELSE []::VARCHAR[] END END",
                [*mps, *tps, *vps])
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
