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


def _field(src: Fields, key: str, guards: list[Sql]) -> Sql:
    return src.ref(((key, None),), False, guards) or ("NULL::VARCHAR", [])


@dataclass(frozen=True)
class RecordForm:
    """The SQL form of one record transform: the top-level keys it reads besides the map's paths, and
    ``sql(src, exprs, guards)``: the column from the columns mapped before it (``exprs``)."""

    reads: tuple[str, ...]
    sql: Callable[[Fields, dict[str, Sql], list[Sql]], Sql]


def _result(of: str, test: str) -> RecordForm:
    def sql(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
        ref, ps = exprs[of]
        return f"CASE WHEN ({ref}) IS NULL THEN NULL WHEN ({ref}) {test} THEN 'success' ELSE 'failure' END", ps * 2
    return RecordForm((), sql)


def _not_mail(exprs: dict[str, Sql], guards: list[Sql]) -> None:
    op, ps = exprs["operation"]
    guards.append((f"({op}) IS DISTINCT FROM ?", [*ps, MAIL_ACCESS]))


def _ual_source(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
    op, ps = exprs["operation"]
    return f"CASE WHEN ({op}) = ? THEN 'mail_access' ELSE 'audit_other' END", [*ps, MAIL_ACCESS]


def _ual_mailbox(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
    """MailboxOwnerUPN; else, for an Exchange record that names a mailbox (MailboxGuid), the user."""
    (m, mps), (w, wps) = exprs["mailbox"], _field(src, "workload", guards)
    (g, gps), (u, ups) = _field(src, "mailboxguid", guards), _field(src, "userid", guards)
    return (f"CASE WHEN ({m}) IS NOT NULL AND ({m}) <> '' THEN ({m}) "
            f"WHEN ({w}) = 'Exchange' AND coalesce({g}, '') <> '' THEN ({u}) END", [*mps * 3, *wps, *gps, *ups])


def _mail_only(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
    """Mail access columns (folders, message ids, throttling): NULL for other operations; mail access per record."""
    _not_mail(exprs, guards)
    return "NULL", []


def _item_group(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
    """Item group columns: NULL for a record without AffectedItems, Folder and DestFolder (the rest per record)."""
    _not_mail(exprs, guards)
    for key in ("affecteditems", "folder", "destfolder"):
        cond = absent(src, key)
        guards.append(cond if cond is not None else ("false", []))
    return "NULL", []


def _ual_target(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
    """ObjectId, else ItemName, as text; rule and permission operations and a Target list per record."""
    _item_group(src, exprs, guards)  # DestFolder's path is the target of a move without ObjectId
    op, ps = exprs["operation"]
    cond = absent(src, "target")
    guards.append(cond if cond is not None else ("false", []))
    guards.append((f"(({op}) IS NULL OR (regexp_full_match({op}, '[ -~]*') AND NOT list_contains(?, lower({op}))))",
                   [*ps, *ps, sorted(RULE_OPS | PERMISSION_OPS), *ps]))
    (o, ops), (n, nps) = _field(src, "objectid", guards), _field(src, "itemname", guards)
    found = f"coalesce(nullif({o}, ''), nullif({n}, ''))"
    # text(): Python's strip() and Arrow's trim agree on printable ASCII ends
    guards.append((f"({found} IS NULL OR regexp_full_match({found}, '(?s)[!-~](.*[!-~])?'))", [*ops, *nps] * 2))
    return found, [*ops, *nps]


RECORD_FORMS: dict[str, RecordForm] = {
    "result_from_http_status": _result("response_status", "< 400"),
    "result_from_error_code": _result("error_code", "= 0"),
    "ual_source": RecordForm((), _ual_source),
    "ual_mailbox": RecordForm(("workload", "mailboxguid", "userid"), _ual_mailbox),
    "mail_access_only": RecordForm((), _mail_only),
    "mail_access_throttled": RecordForm((), _mail_only),
    "ual_items": RecordForm(("affecteditems", "folder", "destfolder"), _item_group),
    "ual_message_ids": RecordForm(("affecteditems", "folder", "destfolder"), _item_group),
    "ual_folders": RecordForm(("affecteditems", "folder", "destfolder"), _item_group),
    "ual_target": RecordForm(("affecteditems", "folder", "destfolder", "target", "objectid", "itemname"),
                             _ual_target),
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
