"""Hand-built canonical events for the detection and scope tests.

Each helper returns one event dict with canonical column names; ``frame(*events)``
makes the DataFrame that ``Case.write_events`` stores.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pandas as pd

_ids = itertools.count(1)
T0 = pd.Timestamp("2023-06-01T00:00:00Z")


def at(day: float, hour: float = 0.0) -> pd.Timestamp:
    """T0 plus days and hours (tz-aware UTC)."""
    return T0 + pd.Timedelta(days=day) + pd.Timedelta(hours=hour)


def _rid(prefix: str) -> str:
    return f"{prefix}-{next(_ids):06d}"


def signin(time: pd.Timestamp, user: str, ip: str, app: str = "app-outlook", token: str | None = None,
           session: str | None = None, source: str = "signin_interactive", result: str = "success",
           ua: str = "Mozilla/5.0 Outlook", **extra: Any) -> dict[str, Any]:
    """A sign-in event (interactive unless ``source`` says otherwise)."""
    return {"time": time, "source": source, "operation": "Sign-in", "result": result,
            "error_code": 0 if result == "success" else 50126, "user": user, "app_id": app, "ip": ip,
            "user_agent": ua, "token_id": token or _rid("tok"), "session_id": session or _rid("ses"),
            "record_id": _rid("si"), "raw": "{}", **extra}


def mail(time: pd.Timestamp, mailbox: str, ip: str, app: str = "app-outlook", token: str | None = None,
         session: str | None = None, ua: str = "Mozilla/5.0 Outlook", access: str = "Bind",
         messages: tuple[str, ...] = (), user: str | None = None, issued_at: pd.Timestamp | None = None,
         throttled: bool = False, **extra: Any) -> dict[str, Any]:
    """A MailItemsAccessed event."""
    return {"time": time, "source": "mail_access", "operation": "MailItemsAccessed", "result": "success",
            "user": user or mailbox, "mailbox": mailbox, "app_id": app, "ip": ip, "user_agent": ua,
            "token_id": token, "session_id": session, "token_issued_at": issued_at,
            "mail_access_type": access, "items": max(len(messages), 1), "message_ids": list(messages) or None,
            "throttled": throttled, "record_id": _rid("mia"), "raw": "{}", **extra}


def audit(time: pd.Timestamp, operation: str, user: str, ip: str, target: str = "rule",
          mailbox: str | None = None, source: str = "audit_other") -> dict[str, Any]:
    """An audit record (unified audit log or directory audit)."""
    return {"time": time, "source": source, "operation": operation, "result": "success", "user": user,
            "mailbox": mailbox, "ip": ip, "target": target, "record_id": _rid("au"), "raw": "{}"}


def item_group(time: pd.Timestamp, operation: str, mailbox: str, ip: str, messages: tuple[str, ...] = (),
               subjects: tuple[str, ...] = (), exchange_session: str | None = None, token: str | None = None,
               session: str | None = None, dest: str | None = None, folder: str = "\\Inbox",
               ua: str = "Mozilla/5.0 Outlook", user: str | None = None) -> dict[str, Any]:
    """An ExchangeItemGroup record (SoftDelete, HardDelete, MoveToDeletedItems, Move) as the importer maps it.

    ``raw`` holds the UAL record (AffectedItems with InternetMessageId, ParentFolder and Subject; Folder;
    DestFolder when ``dest``); message_ids, folders, items and target are filled as the mapper does.
    """
    affected = [{"Id": f"RgAA{i}", "InternetMessageId": m, "ParentFolder": {"Id": "LgAA", "Path": folder},
                 **({"Subject": subjects[i]} if i < len(subjects) else {})} for i, m in enumerate(messages)]
    record: dict[str, Any] = {
        "CreationTime": time.strftime("%Y-%m-%dT%H:%M:%S"), "Operation": operation, "RecordType": 3,
        "UserId": user or mailbox, "MailboxOwnerUPN": mailbox, "ClientIPAddress": ip, "ClientInfoString": ua,
        "SessionId": exchange_session, "Folder": {"Id": "LgAA", "Path": folder}, "AffectedItems": affected,
        "CrossMailboxOperation": False}
    if dest:
        record["DestFolder"] = {"Id": "LgAB", "Path": dest}
    if token or session:
        record["AppAccessContext"] = {"UniqueTokenId": token, "AADSessionId": session}
    folders = list(dict.fromkeys([folder, *([dest] if dest else [])]))
    return {"time": time, "source": "audit_other", "operation": operation, "result": "Succeeded",
            "user": user or mailbox, "mailbox": mailbox, "ip": ip, "user_agent": ua, "token_id": token,
            "session_id": session, "exchange_session_id": exchange_session, "items": len(messages),
            "message_ids": list(messages), "folders": folders, "target": dest, "record_id": _rid("ig"),
            "raw": json.dumps(record)}


def inbox_rule(time: pd.Timestamp, user: str, ip: str, name: str, parameters: dict[str, str],
               operation: str = "New-InboxRule", exchange_session: str | None = None, token: str | None = None,
               session: str | None = None) -> dict[str, Any]:
    """An inbox-rule change: New-InboxRule / Set-InboxRule (Parameters) or UpdateInboxRules (OperationProperties)."""
    record: dict[str, Any] = {"CreationTime": time.strftime("%Y-%m-%dT%H:%M:%S"), "Operation": operation,
                              "UserId": user, "ClientIP": ip, "SessionId": exchange_session,
                              "ObjectId": f"{user}\\{name}", "ExternalAccess": False}
    if operation == "UpdateInboxRules":
        record["OperationProperties"] = [{"Name": "RuleName", "Value": name},
                                         *({"Name": k, "Value": v} for k, v in parameters.items())]
        record["MailboxOwnerUPN"] = user
    else:
        record["RecordType"] = 1
        record["Parameters"] = [{"Name": "Name", "Value": name},
                                *({"Name": k, "Value": v} for k, v in parameters.items())]
    if token or session:
        record["AppAccessContext"] = {"UniqueTokenId": token, "AADSessionId": session}
    return {"time": time, "source": "audit_other", "operation": operation, "result": "True", "user": user,
            "mailbox": user if operation == "UpdateInboxRules" else None, "ip": ip, "token_id": token,
            "session_id": session, "exchange_session_id": exchange_session, "target": name,
            "record_id": _rid("rule"), "raw": json.dumps(record)}


def token_event(uti: str, sid: str, verdict: str) -> dict[str, Any]:
    """A judged token (source token, as ``token scan`` stores it): result is the verdict, target the kid."""
    return {"time": at(5, 1), "source": "token", "operation": "Token observed", "result": verdict,
            "user": "user1@contoso.com", "token_id": uti, "session_id": sid, "target": "1LTMzakihiRla_8z2BEJVXeWMqo",
            "record_id": f"token:{uti}", "raw": "{}"}


def frame(*events: dict[str, Any]) -> pd.DataFrame:
    """Events as a DataFrame (object columns for lists)."""
    return pd.DataFrame(list(events))


def signed_in_access(time: pd.Timestamp, user: str, ip: str, app: str = "app-outlook",
                     **mail_extra: Any) -> list[dict[str, Any]]:
    """A sign-in and the mail access that uses the token it issued (ordinary legitimate use)."""
    s = signin(time - pd.Timedelta(minutes=5), user, ip, app=app)
    return [s, mail(time, user, ip, app=app, token=s["token_id"], session=s["session_id"], **mail_extra)]


def backup_nights(days: range, users: int = 4, ip: str = "192.0.2.50") -> list[dict[str, Any]]:
    """A backup app reading every mailbox app-only each night with tokens its service-principal sign-ins issued."""
    rest = "Client=REST;Client=RESTSystem;;"
    rows: list[dict[str, Any]] = []
    for d in days:
        sp = signin(at(d, 3), "backupsvc", ip, app="app-backup", source="signin_serviceprincipal", ua=rest)
        rows += [sp] + [mail(at(d, 3.1), f"user{u}@contoso.com", ip, app="app-backup", ua=rest, user="backupsvc",
                             token=sp["token_id"], access="Sync") for u in range(users)]
    return rows


def tenant_background(users: int = 4, days: int = 12, start_day: int = 0,
                      noninteractive: bool = True) -> list[dict[str, Any]]:
    """Ordinary users signing in and reading their own mail in office hours from their own addresses.

    With ``noninteractive`` each user's token is also refreshed once a day (a non-interactive sign-in
    and the access that uses it), so the case holds both user sign-in sources.
    """
    rows: list[dict[str, Any]] = []
    for d in range(start_day, start_day + days):
        for u in range(users):
            user, ip = f"user{u}@contoso.com", f"10.0.0.{u + 1}"
            rows += signed_in_access(at(d, 14 + u % 3), user, ip, messages=(f"<m{d}-{u}@contoso.com>",))
            if noninteractive:
                s = signin(at(d, 17 + u % 3), user, ip, source="signin_noninteractive")
                rows += [s, mail(at(d, 17.1 + u % 3), user, ip, token=s["token_id"], session=s["session_id"],
                                 access="Sync")]
    return rows


def graph(time: pd.Timestamp, uri: str, ip: str, app: str = "app-x", token: str | None = None,
          user_id: str | None = "id-user1", session: str | None = None, scopes: str | None = "Mail.Read User.Read",
          roles: str | None = None, status: int = 200, method: str = "GET", issued_at: pd.Timestamp | None = None,
          ua: str = "python-requests/2.31.0") -> dict[str, Any]:
    """A Microsoft Graph activity log request as the graph_activity map stores it (``token``: SignInActivityId).

    App-only requests carry ``roles`` and no ``scopes``; their user_id is the service principal's id.
    """
    return {"time": time, "source": "graph_activity", "operation": "Graph request",
            "result": "success" if status < 400 else "failure", "user_id": user_id, "app_id": app, "ip": ip,
            "user_agent": ua, "token_id": token or _rid("gtok"), "session_id": session, "token_issued_at": issued_at,
            "request_uri": f"https://graph.microsoft.com{uri}", "request_method": method, "response_status": status,
            "scopes": scopes, "roles": roles, "record_id": _rid("gr"), "raw": "{}"}
