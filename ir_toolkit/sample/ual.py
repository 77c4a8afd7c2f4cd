"""Unified audit log records (``AuditData``) and their two containers.

Builders return the Management Activity API shaped record (Id, RecordType, CreationTime, ...).
:func:`graph_record` wraps one as a Graph ``security.auditLogRecord``; :func:`csv_row` turns it
into one row of the Purview portal's CSV export. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime
from typing import Any

from ir_toolkit.sample.ids import guid, ual_time

CSV_HEADER = ("RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData",
              "AssociatedAdminUnits", "AssociatedAdminUnitsNames")
RECORD_TYPES = {1: "exchangeAdmin", 2: "exchangeItem", 3: "exchangeItemGroup", 6: "sharePointFileOperation",
                15: "azureActiveDirectoryStsLogon", 50: "exchangeItemAggregated"}
USER_TYPES = {0: "regular", 2: "admin", 5: "application"}
SERVER = "{}PR{:02d}MB{:04d} (15.20.6477.{:03d})"


def folder_id(mailbox: str, path: str) -> str:
    """A stable Exchange folder id for (mailbox, folder path)."""
    digest = hashlib.sha256(f"{mailbox}|{path}".encode()).hexdigest().upper()
    return "LgAAAAA" + digest[:40] + "AQ"


def _server(rng: random.Random) -> str:
    return SERVER.format(rng.choice(("BN8", "CH0", "DM6", "SA1")), rng.randint(10, 19), rng.randint(1000, 9999),
                         rng.randint(0, 999))


def _common(rng: random.Random, t: datetime, op: str, record_type: int, workload: str, user_id: str, org: str,
            user_key: str, user_type: int = 0) -> dict[str, Any]:
    return {"CreationTime": ual_time(t), "Id": guid(rng), "Operation": op, "OrganizationId": org,
            "RecordType": record_type, "ResultStatus": "Succeeded", "UserKey": user_key, "UserType": user_type,
            "Version": 1, "Workload": workload, "UserId": user_id}


def mail_items_accessed(rng: random.Random, t: datetime, *, org: str, org_name: str, user_id: str, user_key: str,
                        mailbox: Any, app_id: str, client_app_id: str, client_ip: str, client_info: str,
                        session_id: str, access: str, folders: list[tuple[str, list[str]]],
                        context: dict[str, str] | None, throttled: bool = False,
                        user_type: int = 0) -> dict[str, Any]:
    """A MailItemsAccessed record (RecordType 50); ``folders`` = [(path, [InternetMessageId, ...])].

    Bind records name every message under ``Folders[].FolderItems``; Sync records name folders only.
    ``context`` is the AppAccessContext (None: the record has none, as aggregated records often don't).
    """
    rec = _common(rng, t, "MailItemsAccessed", 50, "Exchange", user_id, org, user_key, user_type)
    rec.update({"AppId": app_id, "ClientAppId": client_app_id, "ClientIPAddress": client_ip,
                "ClientInfoString": client_info, "ExternalAccess": False, "InternalLogonType": 0, "LogonType": 0,
                "LogonUserSid": mailbox.owner_sid if user_type == 0 else "S-1-5-18",
                "MailboxGuid": mailbox.mailbox_guid, "MailboxOwnerSid": mailbox.owner_sid,
                "MailboxOwnerUPN": mailbox.upn,
                "OperationProperties": [{"Name": "MailAccessType", "Value": access},
                                        {"Name": "IsThrottled", "Value": "True" if throttled else "False"}],
                "OrganizationName": org_name, "OriginatingServer": _server(rng), "SessionId": session_id})
    out = []
    count = 0
    for path, ids in folders:
        entry: dict[str, Any] = {"Id": folder_id(mailbox.upn, path), "Path": path}
        if access == "Bind":
            entry["FolderItems"] = [{"InternetMessageId": m, "SizeInBytes": rng.randint(9_000, 4_000_000)}
                                    for m in ids]
            count += len(ids)
        else:
            count += 1
        out.append(entry)
    rec["Folders"] = out
    rec["OperationCount"] = count
    if context is not None:
        rec["AppAccessContext"] = context
    return rec


def mailbox_item_op(rng: random.Random, t: datetime, op: str, *, org: str, org_name: str, user: Any, ip: str,
                    client_info: str, app_id: str, session_id: str, context: dict[str, str] | None,
                    item: dict[str, Any] | None = None) -> dict[str, Any]:
    """An ExchangeItem record (RecordType 2): ``Send`` (with its Item) or ``MailboxLogin``."""
    rec = _common(rng, t, op, 2, "Exchange", user.upn, org, user.user_key)
    rec.update({"AppId": app_id, "ClientAppId": "", "ClientIP": ip, "ClientIPAddress": ip,
                "ClientInfoString": client_info, "ExternalAccess": False, "InternalLogonType": 0, "LogonType": 0,
                "LogonUserSid": user.owner_sid, "MailboxGuid": user.mailbox_guid, "MailboxOwnerSid": user.owner_sid,
                "MailboxOwnerUPN": user.upn, "OrganizationName": org_name, "OriginatingServer": _server(rng),
                "SessionId": session_id})
    if item is not None:
        rec["Item"] = item
    if context is not None:
        rec["AppAccessContext"] = context
    return rec


def exchange_admin(rng: random.Random, t: datetime, op: str, *, org: str, org_name: str, user: Any, ip: str,
                   object_id: str, parameters: list[tuple[str, str]], app_id: str, session_id: str | None = None,
                   client_app_id: str = "", context: dict[str, str] | None = None) -> dict[str, Any]:
    """An ExchangeAdmin cmdlet record (RecordType 1): ``New-InboxRule``, ``Set-Mailbox``...

    ``session_id`` (default: a new one), ``client_app_id`` and ``context`` (AppAccessContext) tie a cmdlet run
    through a mailbox client to that client's Exchange session and token.
    """
    rec = _common(rng, t, op, 1, "Exchange", user.upn, org, user.user_key, 2 if user.index == 0 else 0)
    rec.update({"ResultStatus": "True", "ObjectId": object_id, "ClientIP": ip, "ExternalAccess": False,
                "OrganizationName": org_name, "OriginatingServer": _server(rng),
                "Parameters": [{"Name": n, "Value": v} for n, v in parameters],
                "SessionId": session_id if session_id is not None else guid(rng),
                "AppId": app_id, "ClientAppId": client_app_id})
    if context is not None:
        rec["AppAccessContext"] = context
    return rec


def exchange_item_group(rng: random.Random, t: datetime, op: str, *, org: str, org_name: str, user: Any,
                        client_ip: str, client_info: str, app_id: str, client_app_id: str, session_id: str,
                        context: dict[str, str] | None, folder: str, items: list[tuple[str, str, str]],
                        dest_folder: str | None = None) -> dict[str, Any]:
    """An ExchangeItemGroup record (RecordType 3): ``MoveToDeletedItems``, ``SoftDelete``, ``HardDelete``, ``Move``.

    ``items`` = [(InternetMessageId, Subject, parent folder path)]; ``folder`` is the folder acted in and
    ``dest_folder`` the destination of a move. The mailbox is the owner's own (LogonType 0).
    """
    rec = _common(rng, t, op, 3, "Exchange", user.upn, org, user.user_key)
    rec.update({"AppId": app_id, "ClientAppId": client_app_id, "ClientIP": client_ip, "ClientIPAddress": client_ip,
                "ClientInfoString": client_info, "ExternalAccess": False, "InternalLogonType": 0, "LogonType": 0,
                "LogonUserSid": user.owner_sid, "MailboxGuid": user.mailbox_guid, "MailboxOwnerSid": user.owner_sid,
                "MailboxOwnerUPN": user.upn, "OrganizationName": org_name, "OriginatingServer": _server(rng),
                "SessionId": session_id, "CrossMailboxOperations": False,
                "AffectedItems": [{"Id": "RgAAAAA" + guid(rng).replace("-", "").upper(), "InternetMessageId": mid,
                                   "ParentFolder": {"Id": folder_id(user.upn, parent), "Path": parent},
                                   "Subject": subject} for mid, subject, parent in items],
                "Folder": {"Id": folder_id(user.upn, folder), "Path": folder}})
    if dest_folder is not None:
        rec["DestFolder"] = {"Id": folder_id(user.upn, dest_folder), "Path": dest_folder}
    if context is not None:
        rec["AppAccessContext"] = context
    return rec


def file_accessed(rng: random.Random, t: datetime, *, org: str, user: Any, ip: str, user_agent: str,
                  site: str, name: str) -> dict[str, Any]:
    """A SharePoint ``FileAccessed`` record (RecordType 6)."""
    rec = _common(rng, t, "FileAccessed", 6, "SharePoint", user.upn, org, f"i:0h.f|membership|{user.user_key}@live.com")
    ext = name.rsplit(".", 1)[-1]
    rec.update({"ClientIP": ip, "ObjectId": f"{site}/Shared Documents/{name}", "ItemType": "File",
                "ListItemUniqueId": guid(rng), "Site": guid(rng), "WebId": guid(rng), "ListId": guid(rng),
                "SiteUrl": site + "/", "SourceFileExtension": ext, "SourceFileName": name,
                "SourceRelativeUrl": "Shared Documents", "UserAgent": user_agent, "EventSource": "SharePoint",
                "ApplicationDisplayName": "Microsoft Office", "AuthenticationType": "OAuth",
                "CorrelationId": guid(rng), "DoNotDistributeEvent": True, "GeoLocation": "NAM",
                "IsManagedDevice": False, "BrowserName": "", "BrowserVersion": "", "Platform": "WinDesktop"})
    return rec


def sts_logon(rng: random.Random, t: datetime, *, org: str, user: Any, ip: str, user_agent: str, app_id: str,
              error: int = 0) -> dict[str, Any]:
    """An Entra ``UserLoggedIn`` / ``UserLoginFailed`` record (RecordType 15)."""
    op = "UserLoggedIn" if error == 0 else "UserLoginFailed"
    rec = _common(rng, t, op, 15, "AzureActiveDirectory", user.upn, org, user.id)
    rec.update({"ResultStatus": "Success" if error == 0 else "Failed", "AzureActiveDirectoryEventType": 1,
                "ExtendedProperties": [{"Name": "ResultStatusDetail", "Value": "Success" if error == 0 else "Failed"},
                                       {"Name": "UserAgent", "Value": user_agent},
                                       {"Name": "RequestType", "Value": "Login:login"}],
                "ModifiedProperties": [], "Actor": [{"ID": user.id, "Type": 0}, {"ID": user.upn, "Type": 5}],
                "ActorContextId": org, "ActorIpAddress": ip, "InterSystemsId": guid(rng), "IntraSystemId": guid(rng),
                "SupportTicketId": "", "Target": [{"ID": "Unknown", "Type": 0}], "TargetContextId": org,
                "ApplicationId": app_id, "ClientIP": ip, "ObjectId": "Unknown", "ErrorNumber": str(error),
                "DeviceProperties": [{"Name": "OS", "Value": "Windows10"}, {"Name": "BrowserType", "Value": "Edge"}]})
    if error:
        rec["LogonError"] = "InvalidUserNameOrPassword"
    return rec


def bare_ip(client_ip: str) -> str:
    """``ip`` of ``ip``, ``ip:port`` or ``[ipv6]:port`` (what the importer must also do)."""
    if client_ip.startswith("["):
        return client_ip[1:client_ip.index("]")]
    if client_ip.count(":") == 1:
        return client_ip.split(":")[0]
    return client_ip


def graph_record_json(rec: dict[str, Any], audit_json: str) -> str:
    """:func:`graph_record` serialised, reusing the record's JSON (same bytes as encoding the whole wrapper)."""
    head = graph_record(rec)
    del head["auditData"]
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)
    return text[:-1] + ',"auditData":{"@odata.type":"#microsoft.graph.security.auditData",' + audit_json[1:] + "}"


def graph_record(rec: dict[str, Any]) -> dict[str, Any]:
    """Wrap an AuditData record as a Graph ``microsoft.graph.security.auditLogRecord``."""
    ip = rec.get("ClientIPAddress") or rec.get("ClientIP") or ""
    user_id = rec["UserId"]
    return {"@odata.type": "#microsoft.graph.security.auditLogRecord", "id": rec["Id"],
            "createdDateTime": rec["CreationTime"] + "Z", "auditLogRecordType": RECORD_TYPES[rec["RecordType"]],
            "operation": rec["Operation"], "organizationId": rec["OrganizationId"],
            "userType": USER_TYPES.get(rec["UserType"], "regular"), "userId": user_id,
            "userPrincipalName": user_id if "@" in user_id else "", "service": rec["Workload"],
            "objectId": rec.get("ObjectId", rec.get("MailboxOwnerUPN", "")), "clientIp": bare_ip(ip) if ip else "",
            "administrativeUnits": [],
            "auditData": {"@odata.type": "#microsoft.graph.security.auditData", **rec}}


def csv_row(rec: dict[str, Any], audit_json: str | None = None) -> list[str]:
    """One row of the Purview portal export (columns :data:`CSV_HEADER`); ``audit_json`` saves re-encoding."""
    data = audit_json if audit_json is not None else json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
    return [rec["Id"], rec["CreationTime"] + ".0000000Z", str(rec["RecordType"]), rec["Operation"], rec["UserId"],
            data, "", ""]
