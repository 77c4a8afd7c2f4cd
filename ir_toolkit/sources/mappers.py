"""Record mappers: one normalised-key record in, one canonical event row (a dict) out.

Families (what a record is, whatever file carried it):

* ``signin``: Graph signIn v1.0/beta, Log Analytics SigninLogs / AADNonInteractiveUserSignInLogs /
  AADServicePrincipalSignInLogs / AADManagedIdentitySignInLogs, Entra admin center downloads.
* ``directory_audit``: Graph directoryAudit, Log Analytics AuditLogs.
* ``ual``: unified audit log records (Management Activity API, OfficeActivity, auditData).
* ``audit_record``: a container around a UAL record: Graph security auditLogRecord
  (``auditData`` object) or a Purview CSV row (``AuditData`` JSON text).
* ``risk``: Graph riskDetection.  ``directory_object``: user, servicePrincipal, application,
  oauth2PermissionGrant.

Every mapper returns the canonical columns it knows (times still as text: the batch
parses them vectorised) and raises :class:`RecordError` for a record it cannot read.
Keys are the normalised ones of :func:`ir_toolkit.sources.fields.normalise_keys`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.fieldmap import FIELD_MAPS, TABLES, table_of, unwrap_record
from ir_toolkit.sources.fields import (
    boolean,
    col,
    field,
    first,
    integer,
    ip,
    items,
    loads,
    lower,
    name_value,
    normalise_keys,
    obj,
    parse_text,
    sub,
    text,
)
from ir_toolkit.sources.record_time import with_record_time
from ir_toolkit.sources.transforms import LA_TABLES, country

__all__ = ["LA_TABLES", "MAPPERS", "UNWRAP", "RecordError", "classify", "country", "unwrap", "unwrap_audit_record"]

Row = dict[str, Any]
Columns = dict[str, list[Any]]
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class RecordError(ValueError):
    """A record that cannot be mapped; the message is the quarantine reason."""


_TABLES = {"auditlogs": "directory_audit", "officeactivity": "ual"}  # tables of the Python mappers
_CONTAINERS = [m for m in FIELD_MAPS.values() if m.unwrap is not None]
_EARLY = [m for m in FIELD_MAPS.values() if m.unwrap is None and m.priority < 50]  # before the built-in tests
_RECOGNISED = [m for m in FIELD_MAPS.values() if m.unwrap is None and m.priority >= 50]


def classify(r: dict[str, Any]) -> str | None:
    """The family of a normalised record, or None when it is none we know.

    A table the record names (Log Analytics ``Type``, an envelope's category) decides first; then
    containers (``unwrap`` maps) and field maps of priority below 50, the built-in tests, and the
    ``recognise`` keys of the other field maps.
    """
    t = table_of(r) or ""
    if t in TABLES:
        return TABLES[t]
    if t in _TABLES:
        return _TABLES[t]
    for m in (*_CONTAINERS, *_EARLY):
        if m.recognises(r):
            return m.NAME
    if r.get("category", "") in ("SignInLogs", "NonInteractiveUserSignInLogs",
                                 "ServicePrincipalSignInLogs", "ManagedIdentitySignInLogs"):
        return "signin"
    if "auditdata" in r:
        return "audit_record"
    if "creationtime" in r and "operation" in r:
        return "ual"
    if "activitydisplayname" in r:
        return "directory_audit"
    if "riskeventtype" in r:
        return "risk"
    if ("createddatetime" in r or "timegenerated" in r) and (
        "status" in r or "signineventtypes" in r or "isinteractive" in r or "resulttype" in r
    ):
        return "signin"
    if "consenttype" in r or "serviceprincipaltype" in r or "signinaudience" in r:
        return "directory_object"
    if "userprincipalname" in r and ("accountenabled" in r or "givenname" in r or "usertype" in r):
        return "directory_object"  # a Graph user
    if ("officeid" in r or "officeworkload" in r) and "operation" in r:
        return "ual"
    return next((m.NAME for m in _RECOGNISED if m.recognises(r)), None)


# ----- directory audits -------------------------------------------------------------------------
def map_directory_audit(r: dict[str, Any]) -> Row:
    """A Graph directoryAudit or a Log Analytics AuditLogs row."""
    by = sub(r.get("initiatedby"))
    user, app = sub(by.get("user")), sub(by.get("app"))
    targets = items(r.get("targetresources"))
    target = None
    if targets and isinstance(targets[0], dict):
        t0 = normalise_keys(targets[0])
        target = text(first(t0, "displayname", "userprincipalname", "id"))
    return {
        "time": first(r, "activitydatetime", "timegenerated"),
        "source": "directory_audit",
        "operation": text(first(r, "activitydisplayname", "operationname")),
        "result": lower(r.get("result")),
        "user": lower(user.get("userprincipalname")) or text(app.get("displayname")),
        "user_id": lower(first(user, "id") or first(app, "serviceprincipalid")),
        "user_display_name": text(user.get("displayname")),
        "app_id": lower(app.get("appid")),
        "app_name": text(app.get("displayname")),
        "ip": ip(text(user.get("ipaddress"))),
        "user_agent": text(name_value(r.get("additionaldetails"), "User-Agent")),
        "target": target,
        "record_id": text(r.get("id")),
    }


# ----- unified audit log ------------------------------------------------------------------------
_RULE_OPS = {"new-inboxrule", "set-inboxrule", "remove-inboxrule", "updateinboxrules", "enable-inboxrule"}
_PERMISSION_OPS = {"add-mailboxpermission", "add-recipientpermission", "add-mailboxfolderpermission",
                   "set-mailboxfolderpermission", "remove-mailboxpermission"}


def _ual_target(r: dict[str, Any], op: str) -> str | None:
    params = r.get("parameters")
    if op in _RULE_OPS:  # UpdateInboxRules (OWA / Outlook client rules) names the rule in OperationProperties
        return text(name_value(params, "Name") or name_value(params, "Identity")
                    or name_value(r.get("operationproperties"), "RuleName") or r.get("objectid"))
    if op in _PERMISSION_OPS:
        return text(name_value(params, "User") or name_value(params, "Trustee") or r.get("objectid"))
    for t in items(r.get("target")):
        if isinstance(t, dict):
            tid = text(normalise_keys(t).get("id"))
            if tid and not tid.isdigit():
                return tid
    found = first(r, "objectid", "itemname")
    if found is None:  # an item-group operation (Move, Copy): where the items went
        found = field(r.get("destfolder"), "Path", "path")
    return text(found)


def _mail_items(folders: Any) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    paths: list[str] = []
    for f in items(folders):
        if not isinstance(f, dict):
            continue
        folder_path = field(f, "Path", "path")
        if folder_path is not None:
            paths.append(str(folder_path))
        for item in items(field(f, "FolderItems", "folderItems")):
            mid = field(item, "InternetMessageId", "internetMessageId") if isinstance(item, dict) else None
            if mid:
                ids.append(str(mid))
    return ids, paths


def _texts(values: list[Any]) -> list[str]:
    """Non-empty values as text, first occurrence of each kept, in order."""
    return list(dict.fromkeys(str(v) for v in values if v is not None and v != ""))


def item_group(r: dict[str, Any]) -> tuple[list[str], list[str], int | None] | None:
    """Message ids, folder paths and item count of an ExchangeItemGroup record (RecordType 3).

    SoftDelete, HardDelete, MoveToDeletedItems, Move, Copy ... carry ``AffectedItems[] {Id,
    InternetMessageId, ParentFolder {Id, Path}, Subject, Attachments}``, ``Folder {Id, Path}`` and
    ``DestFolder {Id, Path}``. Returns None for a record with none of the three (not an item group).
    The folders are ``Folder``, ``DestFolder`` then each item's ``ParentFolder`` path, once each; the
    count is the number of item objects (None when AffectedItems is not a list). Malformed entries
    (an item that is no object, no InternetMessageId) are skipped: the record stays whole in ``raw``.
    """
    affected, folder, dest = r.get("affecteditems"), r.get("folder"), r.get("destfolder")
    if affected is None and folder is None and dest is None:
        return None
    listed = parse_text(affected) if isinstance(affected, str) else affected
    objs = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    ids = [str(m) for m in (field(e, "InternetMessageId", "internetMessageId") for e in objs)
           if m is not None and m != ""]
    paths = [field(folder, "Path", "path"), field(dest, "Path", "path"),
             *(field(field(e, "ParentFolder", "parentFolder"), "Path", "path") for e in objs)]
    return ids, _texts(paths), len(objs) if isinstance(listed, list) else None


def map_ual(rs: list[dict[str, Any]]) -> Columns:
    """Unified audit log records (MailItemsAccessed -> mail_access, all others -> audit_other).

    Item-group records (deletes and moves) of audit_other get message_ids, folders and items from
    :func:`item_group`; Move / Copy without ObjectId get their destination folder as target.
    """
    ops = [text(r.get("operation")) for r in rs]
    mail = [op == "MailItemsAccessed" for op in ops]
    ctx = [obj(r.get("appaccesscontext")) or {} for r in rs]
    mailbox = [r.get("mailboxownerupn") or (r.get("userid") if r.get("workload") == "Exchange" and r.get("mailboxguid")
                                            else None) for r in rs]
    props = [r.get("operationproperties") if m else None for r, m in zip(rs, mail, strict=True)]
    folders = [_mail_items(r.get("folders")) if m else None for r, m in zip(rs, mail, strict=True)]
    groups = [None if m else item_group(r) for r, m in zip(rs, mail, strict=True)]
    return {
        "time": col(rs, "creationtime", "timegenerated"),
        "source": ["mail_access" if m else "audit_other" for m in mail],
        "operation": ops,
        "result": col(rs, "resultstatus"),
        "user": [lower(v) for v in col(rs, "userid")],
        "user_id": [k if isinstance(k, str) and _GUID.match(k) else None for k in col(rs, "userkey")],
        "mailbox": mailbox,
        "app_id": col(rs, "appid", "applicationid"),  # ApplicationId: UserLoggedIn / UserLoginFailed
        "client_app_id": [first(r, "clientappid") or field(c, "ClientAppId", "clientAppId")
                          for r, c in zip(rs, ctx, strict=True)],
        "ip": [ip(text(v)) for v in col(rs, "clientipaddress", "clientip", "client_ipaddress", "actoripaddress")],
        "user_agent": [first(r, "clientinfostring", "useragent") or logon_property(r, "extendedproperties", "UserAgent")
                       for r in rs],
        "session_id": [field(c, "AADSessionId", "aadSessionId") or logon_property(r, "deviceproperties", "SessionId")
                       for r, c in zip(rs, ctx, strict=True)],
        "token_id": [field(c, "UniqueTokenId", "uniqueTokenId") for c in ctx],
        "token_issued_at": [field(c, "IssuedAtTime", "issuedAtTime") for c in ctx],
        "exchange_session_id": col(rs, "sessionid"),
        "mail_access_type": [text(name_value(p, "MailAccessType")) if m else None
                             for p, m in zip(props, mail, strict=True)],
        "throttled": [boolean(name_value(p, "IsThrottled")) is True if m else None
                      for p, m in zip(props, mail, strict=True)],
        "items": [integer(r.get("operationcount")) if m else g[2] if g is not None else None
                  for r, m, g in zip(rs, mail, groups, strict=True)],
        "message_ids": [f[0] if f is not None else g[0] if g is not None else None
                        for f, g in zip(folders, groups, strict=True)],
        "folders": [f[1] if f is not None else g[1] if g is not None else None
                    for f, g in zip(folders, groups, strict=True)],
        "target": [None if m else _ual_target(r, (op or "").lower()) for r, m, op in zip(rs, mail, ops, strict=True)],
        "record_id": col(rs, "id", "officeid"),
    }


def logon_property(r: dict[str, Any], key: str, name: str) -> Any:
    """One entry of an Entra logon record's ``ExtendedProperties`` / ``DeviceProperties`` list.

    UserLoggedIn / UserLoginFailed (AzureActiveDirectoryStsLogon) carry the browser's User-Agent
    in ``ExtendedProperties`` and the Entra session (the one an inbox rule made from that logon
    names as ``AppAccessContext.AADSessionId``) in ``DeviceProperties`` as ``{Name, Value}`` entries.
    """
    entries = r.get(key)
    return name_value(entries, name) if entries is not None else None


EXCEL_CELL_LIMIT = 32_767  # characters Excel keeps in one cell


_AUDIT_FALLBACKS = (("creationtime", ("creationdate", "createddatetime")), ("operation", ("operation", "operations")),
                    ("userid", ("userprincipalname", "userid", "userids")), ("clientip", ("clientip",)),
                    ("id", ("recordid", "id")))


def unwrap_audit_record(r: dict[str, Any]) -> dict[str, Any]:
    """The UAL record inside a Graph auditLogRecord or a Purview CSV row, with the container's
    fields filling what the inner record lacks.

    Raises:
        RecordError: when AuditData is not a JSON object.
    """
    data = r.get("auditdata")
    if isinstance(data, str):
        try:
            data = loads(data)
        except ValueError as exc:
            if len(data) == EXCEL_CELL_LIMIT:  # a Purview CSV re-saved by Excel cuts long cells there
                raise RecordError(f"AuditData cut at {EXCEL_CELL_LIMIT} characters (Excel's cell limit: the file "
                                  "was re-saved by Excel; import the original export)") from None
            raise RecordError(f"AuditData is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError("AuditData is not a JSON object")
    inner = normalise_keys(data)
    for key, outer in _AUDIT_FALLBACKS:
        if inner.get(key) in (None, ""):
            value = first(r, *outer)
            if value is not None:
                inner[key] = value
    return inner


def _by_row(fn: Callable[[dict[str, Any]], Row]) -> Callable[[list[dict[str, Any]]], Columns]:
    """A column mapper from a one-record mapper (for the low-volume families)."""
    def mapper(rs: list[dict[str, Any]]) -> Columns:
        rows = [fn(r) for r in rs]
        return {k: [row.get(k) for row in rows] for k in {k for row in rows for k in row}}

    mapper.__doc__ = fn.__doc__
    return mapper


MAPPERS: dict[str, Callable[[list[dict[str, Any]]], Columns]] = {
    "directory_audit": _by_row(map_directory_audit),
    "ual": map_ual,
    **{name: m for name, m in FIELD_MAPS.items() if m.unwrap is None},  # generated from maps/*.yaml
}
# every family's missing time falls back to the record's own (tenant snapshot objects may have none)
MAPPERS.update({name: with_record_time(m) for name, m in MAPPERS.items() if name != "directory_object"})
UNWRAP: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "audit_record": ("ual", unwrap_audit_record),
}


def unwrap(kind: str, r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The family and record to map for a record of family ``kind``: containers are opened (a
    Purview row's AuditData, an Azure Monitor envelope's properties, Defender's RawEventData, a
    Splunk event's ``_raw``), as deep as they nest.

    Raises:
        RecordError: when a container holds no record we know.
    """
    for _ in range(4):
        if kind in UNWRAP:
            kind, unwrap_one = UNWRAP[kind]
            r = unwrap_one(r)
            continue
        m = FIELD_MAPS.get(kind)
        if m is None or m.unwrap is None:
            return kind, r
        outer = r
        try:
            into, r = unwrap_record(m, r)
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        found = into or classify(r)
        if found is None and m.unwrap.otherwise is not None:  # an inner record we do not know: the outer one
            found, r = m.unwrap.otherwise, outer
        if found is None:
            raise RecordError(f"{m.unwrap.label} holds no record we know (keys: {', '.join(list(r)[:8])})")
        kind = found
    raise RecordError("containers nested too deep")
