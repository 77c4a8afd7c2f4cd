"""The decisions of the unified audit log field map (``maps/ual.yaml``) that a path cannot express.

A UAL record (Management Activity API, OfficeActivity, Purview's AuditData, Defender's RawEventData)
is mapped by its field map; these functions are the map's named transforms: which records are mail
access, what a mail access or an item group (deletes, moves) touched, what an operation acted on, and
the ``{Name, Value}`` lists of Entra logon records. Pure; never raise on odd input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.fields import (
    boolean,
    field,
    integer,
    items,
    name_value,
    normalise_keys,
    parse_text,
    powershell_object,
    text,
)

Columns = dict[str, list[Any]]
Records = list[dict[str, Any]]
MAIL_ACCESS = "MailItemsAccessed"
# The operations that record a read of mail items: MailItemsAccessed; AttachmentAccess (RecordType 50, the same
# aggregated record of a message's attachments read: OperationProperties AttachmentAccessType Bind, OperationCount,
# Messages[].MessageItems[] of Exchange item ids, no InternetMessageId); MessageBind (the mailbox audit's
# "message viewed in the preview pane or opened", which MailItemsAccessed replaced).
MAIL_ACCESS_OPS = ("AttachmentAccess", MAIL_ACCESS, "MessageBind")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RULE_OPS = {"new-inboxrule", "set-inboxrule", "remove-inboxrule", "updateinboxrules", "enable-inboxrule"}
PERMISSION_OPS = {"add-mailboxpermission", "add-recipientpermission", "add-mailboxfolderpermission",
                   "set-mailboxfolderpermission", "remove-mailboxpermission"}


def logon_property(r: dict[str, Any], key: str, name: str) -> Any:
    """One entry of an Entra logon record's ``ExtendedProperties`` / ``DeviceProperties`` list.

    UserLoggedIn / UserLoginFailed (AzureActiveDirectoryStsLogon) carry the browser's User-Agent
    in ``ExtendedProperties`` and the Entra session (the one an inbox rule made from that logon
    names as ``AppAccessContext.AADSessionId``) in ``DeviceProperties`` as ``{Name, Value}`` entries.
    """
    entries = r.get(key)
    return name_value(entries, name) if entries is not None else None


def target_of(r: dict[str, Any], op: str) -> str | None:
    """What a UAL operation (lower case) acted on: the rule's name, the delegate, the object, or for an
    item-group move without ObjectId the destination folder."""
    params = r.get("parameters")
    if op in RULE_OPS:  # UpdateInboxRules (OWA / Outlook client rules) names the rule in OperationProperties
        return text(name_value(params, "Name") or name_value(params, "Identity")
                    or name_value(r.get("operationproperties"), "RuleName") or r.get("objectid"))
    if op in PERMISSION_OPS:
        return text(name_value(params, "User") or name_value(params, "Trustee") or r.get("objectid"))
    for t in items(r.get("target")):
        if isinstance(t, dict):
            tid = text(normalise_keys(t).get("id"))
            if tid and not tid.isdigit():
                return tid
    found = r.get("objectid")
    if found is None or found == "":
        found = r.get("itemname")
    if found is None or found == "":  # an item-group operation (Move, Copy): where the items went
        found = field(r.get("destfolder"), "Path", "path")
    return text(found)


def mail_items(folders: Any) -> tuple[list[str], list[str]]:
    """Message ids and folder paths of a MailItemsAccessed record's ``Folders`` (Defender's RawEventData writes
    each folder as ``@{Id=...; Path=...; FolderItems=System.Object[]}``: the path is read, the items are lost)."""
    ids: list[str] = []
    paths: list[str] = []
    for f in items(folders):
        if isinstance(f, str) and f[:2] == "@{":  # Defender's RawEventData: "@{Id=...; Path=\\Inbox; FolderItems=...}"
            f = powershell_object(f)
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


def _mail(cols: Columns) -> list[bool]:
    return [s == "mail_access" for s in cols["source"]]


def _source(rs: Records, cols: Columns) -> list[Any]:
    return ["mail_access" if op in MAIL_ACCESS_OPS else "audit_other" for op in cols["operation"]]


def _mailbox(rs: Records, cols: Columns) -> list[Any]:
    """The mailbox owner; for an Exchange record without MailboxOwnerUPN that names a mailbox, the user."""
    return [m if m is not None and m != "" else (r.get("userid") if r.get("workload") == "Exchange"
                                                  and r.get("mailboxguid") else None)
            for r, m in zip(rs, cols["mailbox"], strict=True)]


def _mail_only(column: str) -> Callable[[Records, Columns], list[Any]]:
    def only(rs: Records, cols: Columns) -> list[Any]:
        return [v if m else None for v, m in zip(cols[column], _mail(cols), strict=True)]
    return only


def _throttled(rs: Records, cols: Columns) -> list[Any]:
    return [(v is True) if m else None for v, m in zip(cols["throttled"], _mail(cols), strict=True)]


def _groups(rs: Records, cols: Columns) -> list[Any]:
    return [None if m else item_group(r) for r, m in zip(rs, _mail(cols), strict=True)]


def _items(rs: Records, cols: Columns) -> list[Any]:
    return [integer(r.get("operationcount")) if m else g[2] if g is not None else None
            for r, m, g in zip(rs, _mail(cols), _groups(rs, cols), strict=True)]


def _touched(index: int) -> Callable[[Records, Columns], list[Any]]:
    """Message ids (0) or folders (1): of the Folders of a mail access, else of an item group."""
    def touched(rs: Records, cols: Columns) -> list[Any]:
        out: list[Any] = []
        for r, m in zip(rs, _mail(cols), strict=True):
            found = mail_items(r.get("folders")) if m else item_group(r)
            out.append(found[index] if found is not None else None)
        return out
    return touched


def _target(rs: Records, cols: Columns) -> list[Any]:
    return [None if m else target_of(r, (op or "").lower())
            for r, m, op in zip(rs, _mail(cols), cols["operation"], strict=True)]


UAL_VALUE_TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "guid": lambda v: v if isinstance(v, str) and _GUID.match(v) else None,
    "logon_user_agent": lambda v: name_value(v, "UserAgent"),
    "logon_session_id": lambda v: name_value(v, "SessionId"),
    "mail_access_type": lambda v: text(name_value(v, "MailAccessType")) or text(name_value(v, "AttachmentAccessType")),
    "is_throttled": lambda v: boolean(name_value(v, "IsThrottled")),
}
UAL_RECORD_TRANSFORMS: dict[str, Callable[[Records, Columns], list[Any]]] = {
    "ual_source": _source,
    "ual_mailbox": _mailbox,
    "mail_access_only": _mail_only("mail_access_type"),
    "mail_access_throttled": _throttled,
    "ual_items": _items,
    "ual_message_ids": _touched(0),
    "ual_folders": _touched(1),
    "ual_target": _target,
}
