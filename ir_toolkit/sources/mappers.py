"""Record mappers: one normalised-key record in, one canonical event row (a dict) out.

Families (what a record is, whatever file carried it):

* ``signin``: Graph signIn v1.0/beta, Log Analytics SigninLogs / AADNonInteractiveUserSignInLogs /
  AADServicePrincipalSignInLogs / AADManagedIdentitySignInLogs, Entra admin center downloads.
* ``directory_audit``: Graph directoryAudit, Log Analytics AuditLogs.
* ``ual``: unified audit log records (Management Activity API, OfficeActivity, auditData).
* ``audit_record``: a container around a UAL record: Graph security auditLogRecord
  (``auditData`` object) or a Purview CSV row (``AuditData`` JSON text).
* ``risk``: Graph riskDetection.  ``directory_object``: servicePrincipal, application,
  oauth2PermissionGrant.

Every mapper returns the canonical columns it knows (times still as text: the batch
parses them vectorised) and raises :class:`RecordError` for a record it cannot read.
Keys are the normalised ones of :func:`ir_toolkit.sources.fields.normalise_keys`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.fields import (
    boolean,
    first,
    integer,
    ip,
    items,
    lower,
    name_value,
    normalise_keys,
    path,
    sub,
    text,
)

Row = dict[str, Any]
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class RecordError(ValueError):
    """A record that cannot be mapped; the message is the quarantine reason."""


LA_TABLES: dict[str, str] = {
    "signinlogs": "signin_interactive",
    "aadnoninteractiveusersigninlogs": "signin_noninteractive",
    "aadserviceprincipalsigninlogs": "signin_serviceprincipal",
    "aadmanagedidentitysigninlogs": "signin_managedidentity",
    "noninteractiveusersigninlogs": "signin_noninteractive",
    "serviceprincipalsigninlogs": "signin_serviceprincipal",
    "managedidentitysigninlogs": "signin_managedidentity",
}
_EVENT_TYPES = {
    "interactiveuser": "signin_interactive",
    "noninteractiveuser": "signin_noninteractive",
    "serviceprincipal": "signin_serviceprincipal",
    "managedidentity": "signin_managedidentity",
}


def classify(r: dict[str, Any]) -> str | None:
    """The family of a normalised record, or None when it is none we know."""
    table = r.get("type") if isinstance(r.get("type"), str) else None
    t = table.lower() if table else ""
    if t in LA_TABLES or r.get("category", "") in ("SignInLogs", "NonInteractiveUserSignInLogs",
                                                    "ServicePrincipalSignInLogs", "ManagedIdentitySignInLogs"):
        return "signin"
    if t == "auditlogs":
        return "directory_audit"
    if t == "officeactivity":
        return "ual"
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
    if ("officeid" in r or "officeworkload" in r) and "operation" in r:
        return "ual"
    return None


# ----- sign-ins ---------------------------------------------------------------------------------
def _signin_source(r: dict[str, Any]) -> str:
    for key in ("type", "category"):
        v = r.get(key)
        if isinstance(v, str) and v.lower() in LA_TABLES:
            return LA_TABLES[v.lower()]
    for t in items(r.get("signineventtypes")):
        if isinstance(t, str) and t.lower() in _EVENT_TYPES:
            return _EVENT_TYPES[t.lower()]
    if r.get("managedserviceidentity") and sub(r.get("managedserviceidentity")).get("msitype") not in (None, "none"):
        return "signin_managedidentity"
    if not r.get("userprincipalname") and r.get("serviceprincipalid"):
        return "signin_serviceprincipal"
    interactive = boolean(r.get("isinteractive"))
    return "signin_noninteractive" if interactive is False else "signin_interactive"


def _country(r: dict[str, Any]) -> str | None:
    loc = first(r, "location", "locationdetails")
    if isinstance(loc, str) and not loc.lstrip().startswith("{"):
        return text(loc.rsplit(",", 1)[-1])  # "US" (Log Analytics) or "Redmond, Washington, US"
    return text(sub(loc).get("countryorregion"))


def map_signin(r: dict[str, Any]) -> Row:
    """A sign-in (any of the four event types, any container)."""
    source = _signin_source(r)
    code = integer(path(r, "status", "errorcode"))
    if code is None:
        code = integer(first(r, "resulttype", "errorcode"))
    sp = source in ("signin_serviceprincipal", "signin_managedidentity")
    upn = lower(r.get("userprincipalname"))
    return {
        "time": first(r, "createddatetime", "timegenerated"),
        "source": source,
        "operation": "Sign-in",
        "result": None if code is None else ("success" if code == 0 else "failure"),
        "error_code": code,
        "user": upn if upn or not sp else text(r.get("serviceprincipalname")),
        "user_id": lower(first(r, "userid") if upn or not sp else first(r, "serviceprincipalid", "userid")),
        "app_id": lower(r.get("appid")),
        "app_name": text(r.get("appdisplayname")),
        "resource_id": lower(first(r, "resourceidentity", "resourceid")),
        "ip": ip(text(first(r, "ipaddress"))),
        "country": _country(r),
        "asn": integer(r.get("autonomoussystemnumber")),
        "user_agent": text(r.get("useragent")),
        "session_id": lower(r.get("sessionid")),
        "token_id": text(r.get("uniquetokenidentifier")),
        "record_id": text(first(r, "id", "originalrequestid")),
    }


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
        "app_id": lower(app.get("appid")),
        "app_name": text(app.get("displayname")),
        "ip": ip(text(user.get("ipaddress"))),
        "target": target,
        "record_id": text(r.get("id")),
    }


# ----- unified audit log ------------------------------------------------------------------------
_RULE_OPS = {"new-inboxrule", "set-inboxrule", "remove-inboxrule", "updateinboxrules", "enable-inboxrule"}
_PERMISSION_OPS = {"add-mailboxpermission", "add-recipientpermission", "add-mailboxfolderpermission",
                   "set-mailboxfolderpermission", "remove-mailboxpermission"}


def _ual_target(r: dict[str, Any], op: str) -> str | None:
    params = r.get("parameters")
    if op in _RULE_OPS:
        return text(name_value(params, "Name") or name_value(params, "Identity") or r.get("objectid"))
    if op in _PERMISSION_OPS:
        return text(name_value(params, "User") or name_value(params, "Trustee") or r.get("objectid"))
    for t in items(r.get("target")):
        if isinstance(t, dict):
            tid = text(normalise_keys(t).get("id"))
            if tid and not tid.isdigit():
                return tid
    return text(first(r, "objectid", "itemname"))


def map_ual(r: dict[str, Any]) -> Row:
    """A unified audit log record (MailItemsAccessed -> mail_access, all others -> audit_other)."""
    op = text(r.get("operation"))
    ctx = sub(r.get("appaccesscontext"))
    mailbox = lower(r.get("mailboxownerupn"))
    if mailbox is None and text(r.get("workload")) == "Exchange" and r.get("mailboxguid"):
        mailbox = lower(r.get("userid"))
    row: Row = {
        "time": first(r, "creationtime", "timegenerated"),
        "operation": op,
        "result": lower(r.get("resultstatus")),
        "user": lower(r.get("userid")),
        "user_id": lower(r.get("userkey")) if _GUID.match(str(r.get("userkey") or "")) else None,
        "mailbox": mailbox,
        "app_id": lower(r.get("appid")),
        "client_app_id": lower(first(r, "clientappid") or ctx.get("clientappid")),
        "ip": ip(text(first(r, "clientipaddress", "clientip", "client_ipaddress", "actoripaddress"))),
        "user_agent": text(first(r, "clientinfostring", "useragent")),
        "session_id": lower(ctx.get("aadsessionid")),
        "token_id": text(ctx.get("uniquetokenid")),
        "token_issued_at": ctx.get("issuedattime"),
        "exchange_session_id": lower(r.get("sessionid")),
        "record_id": text(first(r, "id", "officeid")),
    }
    if op == "MailItemsAccessed":
        folders = items(r.get("folders"))
        ids: list[str] = []
        paths: list[str] = []
        for f in folders:
            if not isinstance(f, dict):
                continue
            fn = normalise_keys(f)
            if fn.get("path") is not None:
                paths.append(str(fn["path"]))
            for item in items(fn.get("folderitems")):
                mid = normalise_keys(item).get("internetmessageid") if isinstance(item, dict) else None
                if mid:
                    ids.append(str(mid))
        props = r.get("operationproperties")
        row.update(
            source="mail_access",
            mail_access_type=text(name_value(props, "MailAccessType")),
            throttled=boolean(name_value(props, "IsThrottled")) is True,
            items=integer(r.get("operationcount")),
            message_ids=ids,
            folders=paths,
        )
    else:
        row.update(source="audit_other", target=_ual_target(r, (op or "").lower()))
    return row


def map_audit_record(r: dict[str, Any]) -> Row:
    """A container around a UAL record: Graph auditLogRecord or a Purview CSV row."""
    data = r.get("auditdata")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise RecordError(f"AuditData is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError("AuditData is not a JSON object")
    inner = normalise_keys(data)
    row = map_ual(inner) if inner else {"source": "audit_other"}
    fallbacks = {
        "time": first(r, "creationdate", "createddatetime"),
        "operation": text(first(r, "operation", "operations")),
        "user": lower(first(r, "userprincipalname", "userid", "userids")),
        "ip": ip(text(r.get("clientip"))),
        "record_id": text(first(r, "recordid", "id")),
    }
    for key, value in fallbacks.items():
        if row.get(key) in (None, "") and value is not None:
            row[key] = value
    return row


# ----- risk detections and directory objects ----------------------------------------------------
def map_risk(r: dict[str, Any]) -> Row:
    """A Graph riskDetection."""
    info = r.get("additionalinfo")
    return {
        "time": first(r, "detecteddatetime", "activitydatetime"),
        "source": "risk_detection",
        "operation": text(r.get("riskeventtype")),
        "result": lower(first(r, "risklevel", "riskstate")),
        "user": lower(r.get("userprincipalname")),
        "user_id": lower(r.get("userid")),
        "ip": ip(text(r.get("ipaddress"))),
        "country": _country(r),
        "user_agent": text(name_value(info, "userAgent")),
        "target": text(r.get("requestid")),
        "record_id": text(r.get("id")),
    }


def map_directory_object(r: dict[str, Any]) -> Row:
    """A tenant snapshot object: servicePrincipal, application or oauth2PermissionGrant."""
    if "consenttype" in r:
        kind, target = "oauth2PermissionGrant", text(r.get("scope"))
    elif "serviceprincipaltype" in r or "appownerorganizationid" in r:
        kind, target = "servicePrincipal", text(r.get("serviceprincipaltype"))
    else:
        kind, target = "application", text(r.get("signinaudience"))
    return {
        "time": first(r, "createddatetime"),
        "source": "tenant_snapshot",
        "operation": kind,
        "user_id": lower(first(r, "principalid", "id")),
        "app_id": lower(first(r, "appid", "clientid")),
        "app_name": text(r.get("displayname")),
        "resource_id": lower(r.get("resourceid")),
        "target": target,
        "record_id": text(r.get("id")),
    }


MAPPERS: dict[str, Callable[[dict[str, Any]], Row]] = {
    "signin": map_signin,
    "directory_audit": map_directory_audit,
    "ual": map_ual,
    "audit_record": map_audit_record,
    "risk": map_risk,
    "directory_object": map_directory_object,
}
