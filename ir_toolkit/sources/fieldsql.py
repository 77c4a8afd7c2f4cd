"""SQL forms of the field maps' transforms, for the fast path generated from the maps (issue 15).

A field map (``maps/*.yaml``) names its whole-column decisions as record transforms
(:data:`ir_toolkit.sources.transforms.RECORD_TRANSFORMS`) and a few value transforms; the per-record
mapper runs their Python, the generated SQL (:func:`ir_toolkit.sources.fastmap.columns_sql`) runs the
form registered here under the same name. A form writes the column for the records it maps exactly as
the Python does and adds a guard (an SQL condition) for the rest: a record whose guard fails is mapped
per record, in its place, so both paths give the same events. A transform without a form keeps its map
off the fast path (or, for a path's value transform, that path is read only where it holds nothing).

Registries (plain dicts, by transform name): :data:`RECORD_FORMS` (record transforms),
:data:`PATH_FORMS` (value transforms written after a path), :data:`COLUMN_FORMS` (value transforms that
keep a value matching a pattern). The forms of the unified audit log map are in
:mod:`ir_toolkit.sources.ualsql`, those of the sign-in map in :mod:`ir_toolkit.sources.signinsql`.
:data:`FIELD_FORMS`: column transforms that read their one field as JSON (the ``{key, value}`` user agent of
directory audits and risk detections, :mod:`ir_toolkit.sources.auditsql`). :data:`SPELLINGS`: how each
map's records spell the keys the SQL reads, used where a file's first record lacks one (a record spelling
it otherwise goes per record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.auditsql import AUDIT_SPELLINGS, FIELD_FORMS
from ir_toolkit.sources.signinsql import SIGNIN_RECORD_FORMS, SIGNIN_SPELLINGS
from ir_toolkit.sources.sqlforms import Fields, PathForm, RecordForm, Sql
from ir_toolkit.sources.transforms import LOGON_RESULTS, RECORD_TRANSFORMS
from ir_toolkit.sources.ualsql import UAL_PATH_FORMS, UAL_RECORD_FORMS

_GUID = "'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\n?'"  # ual_fields' guid


def _result(of: str, test: str) -> RecordForm:
    def sql(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
        ref, ps = exprs[of]
        return f"CASE WHEN ({ref}) IS NULL THEN NULL WHEN ({ref}) {test} THEN 'success' ELSE 'failure' END", ps * 2
    return RecordForm((), sql)


def _logon_result(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    (op, ops), (v, vps) = exprs["operation"], own
    whens = " ".join(f"WHEN '{k}' THEN '{w}'" for k, w in LOGON_RESULTS.items())  # constants of ours
    return f"CASE ({op}) {whens} ELSE ({v}) END", ops + vps


RECORD_FORMS: dict[str, RecordForm] = {
    "result_from_http_status": _result("response_status", "< 400"),
    "result_from_logon_action": RecordForm((), _logon_result),
    "result_from_error_code": _result("error_code", "= 0"),
    **UAL_RECORD_FORMS,
    **SIGNIN_RECORD_FORMS,
}
PATH_FORMS: dict[str, PathForm] = {**UAL_PATH_FORMS}
COLUMN_FORMS: dict[str, str] = {"guid": _GUID}  # value transforms that keep a value matching the pattern, else NULL

SPELLINGS: dict[str, dict[str, str]] = {
    "ual": {k.lower(): k for k in (  # Microsoft's UAL schema
        "CreationTime", "TimeGenerated", "Operation", "ResultStatus", "UserId", "UserKey", "MailboxOwnerUPN", "AppId",
        "ApplicationId", "ClientAppId", "AppAccessContext", "ClientIPAddress", "ClientIP", "ActorIpAddress",
        "ClientInfoString", "UserAgent", "ExtendedProperties", "DeviceProperties", "SessionId", "OperationProperties",
        "Id", "OfficeId", "Workload", "MailboxGuid", "AffectedItems", "Folder", "DestFolder", "Folders", "Parameters",
        "Target", "ObjectId", "ItemName", "OperationCount", "AADSessionId", "UniqueTokenId", "IssuedAtTime")},
    "signin": SIGNIN_SPELLINGS,
    **AUDIT_SPELLINGS,
}
__all__ = ["COLUMN_FORMS", "FIELD_FORMS", "PATH_FORMS", "RECORD_FORMS", "SPELLINGS", "record_reads"]


def record_reads(fn: Callable[..., Any] | None) -> tuple[str, ...]:
    """The top-level keys the SQL form of record transform ``fn`` reads (none for None or no form)."""
    name = next((k for k, v in RECORD_TRANSFORMS.items() if v is fn), None) if fn is not None else None
    return RECORD_FORMS[name].reads if name in RECORD_FORMS else ()
