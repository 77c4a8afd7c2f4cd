"""Windows Security and AD FS audit events: EVTX files and Log Analytics SecurityEvent / Event rows.

Two ways a responder gets them:

* **EVTX files** (``Security.evtx`` of the AD FS servers and domain controllers, the
  CertificateServicesClient-Lifecycle-System log), read by :mod:`ir_toolkit.sources.evtxfile`, which
  flattens each record to one level the way Log Analytics shows it.
* **Log Analytics** ``SecurityEvent`` / ``Event`` / ``WindowsEvent`` rows (CSV or JSON, KQL query
  results): the field map ``maps/windows_event.yaml`` reads them and the flattened EVTX records alike.

:func:`event_fields` gathers what one event says, whatever the shape: named fields, the unnamed
``Data`` values (from ``EventData`` XML text, a JSON list, or the EVTX list), and, for the AD FS
audits, the fields of the ``AuditBase`` XML (1200-1207: ``UserId``, ``IpAddress``,
``ForwardedIpAddress``, ``RelyingParty`` ...) or the claims of 500/501. XML is read with bounded,
linear regular expressions, never an XML parser (entity expansion) and never a backtracking pattern.

The record transforms of :data:`WINDOWS_TRANSFORMS` turn those into canonical columns (operation,
result, user, ip, session_id = the AD FS request's instance id, target, user_agent, record_id).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.fields import ip as clean_ip
from ir_toolkit.sources.fields import parse_text

ADFS_ISSUANCE = ("1200", "1202", "299", "412")  # a token issued (2016+), or its 2012 R2 audits
ADFS_AUDITS = {
    "1200": "AD FS application token success", "1201": "AD FS application token failure",
    "1202": "AD FS fresh credential validation success", "1203": "AD FS fresh credential validation error",
    "1204": "AD FS password change success", "1205": "AD FS password change error",
    "1206": "AD FS sign-out success", "1207": "AD FS sign-out failure",
    "299": "AD FS token issued for relying party", "324": "AD FS caller not authorised for relying party",
    "403": "AD FS HTTP request received", "404": "AD FS HTTP response sent", "410": "AD FS request context headers",
    "411": "AD FS token validation failed", "412": "AD FS token authenticated",
    "500": "AD FS issued identity claims", "501": "AD FS caller identity claims",
    "502": "AD FS act-as identity claims", "503": "AD FS on-behalf-of identity claims",
    "510": "AD FS additional audit data",
}
SECURITY_EVENTS = {
    "4624": "An account was successfully logged on", "4625": "An account failed to log on",
    "4662": "An operation was performed on an object", "4663": "An attempt was made to access an object",
    "4692": "Backup of data protection master key was attempted",
    "4768": "A Kerberos authentication ticket (TGT) was requested", "4769": "A Kerberos service ticket was requested",
    "5136": "A directory service object was modified",
    "5156": "The Windows Filtering Platform has permitted a connection",
}
OTHER_EVENTS = {  # (a word of the provider's name, EventID) -> name: these ids mean other things elsewhere
    ("certificateservicesclient", "1007"): "A certificate was exported",
    ("capi2", "70"): "Certificate private key acquired",
    ("sysmon", "18"): "Pipe connected",
    ("mssql", "33205"): "SQL Server audit",
}
_FAILURES = {"1201", "1203", "1205", "1207", "411", "4625"}
_DATA = re.compile(r"<Data(?:\s{1,16}Name\s{0,4}=\s{0,4}[\"']([^\"'<>]{0,200})[\"'])?\s{0,16}"
                   r"(?:/>|>([^<]{0,65536})</Data>)")  # bounded runs only: no quadratic backtracking
_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9]{0,63})>([^<]{0,4096})</")
_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")
_CLAIMS = {
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": "claimname",
    "http://schemas.microsoft.com/2012/01/requestcontext/claims/x-ms-forwarded-client-ip": "forwardedipaddress",
    "http://schemas.microsoft.com/2012/01/requestcontext/claims/x-ms-client-ip": "ipaddress",
    "http://schemas.microsoft.com/2012/01/requestcontext/claims/x-ms-client-user-agent": "useragentstring",
}
_AUDIT_TAGS = {"userid", "ipaddress", "forwardedipaddress", "proxyipaddress", "relyingparty", "authprotocol",
               "networklocation", "useragentstring", "auditresult", "mfaperformed", "server", "endpoint",
               "claimsprovider", "primaryauth", "failuretype", "errorcode"}
_CACHE = "\0windows"  # key of the parsed fields inside a normalised record (never in a file)


# ----- what one event says ----------------------------------------------------------------------
def _data_values(value: Any) -> tuple[dict[str, Any], list[str]]:
    """Named and unnamed Data values of an EventData field: XML text, a JSON list/object, or a list."""
    named: dict[str, Any] = {}
    unnamed: list[str] = []
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped.startswith("<"):
            for name, text in _DATA.findall(value[:1 << 20]):
                if name:
                    named[name.lower()] = html.unescape(text)
                else:
                    unnamed.append(html.unescape(text))
            return named, unnamed
        value = parse_text(value) if stripped.startswith(("[", "{")) else None
    if isinstance(value, dict):
        named.update({str(k).lower(): v for k, v in value.items() if isinstance(v, str | int | float)})
    elif isinstance(value, list):
        unnamed.extend(str(v) for v in value if v is not None)
    return named, unnamed


def event_fields(r: dict[str, Any]) -> dict[str, Any]:
    """Everything one event says, as lower-case names: the record's own fields, its EventData values,
    the AD FS audit XML fields and claims, plus ``eventid`` (text), ``provider`` and ``data`` (the
    unnamed values). Cached inside the record (the transforms read it several times)."""
    cached = r.get(_CACHE)
    if isinstance(cached, dict):
        return cached
    f: dict[str, Any] = {k: v for k, v in r.items() if isinstance(k, str)}
    unnamed: list[str] = []
    for key in ("eventdata", "eventdata_dynamic", "eventdata_string", "userdata", "parameterxml"):
        if key in r and r[key] not in (None, ""):
            named, data = _data_values(r[key])
            for k, v in named.items():
                f.setdefault(k, v)
            unnamed = unnamed or data
    f["data"] = unnamed
    eid = r.get("eventid")
    if isinstance(eid, dict):
        eid = eid.get("#text")
    f["eventid"] = str(eid).strip() if eid not in (None, "") else None
    f["provider"] = str(r.get("eventsourcename") or r.get("provider") or r.get("source") or
                        r.get("providername") or "")
    if _is_adfs(f):
        for text in unnamed:
            if "AuditBase" in text or "<UserId>" in text:
                for tag, value in _TAG.findall(html.unescape(text)[:1 << 20]):
                    if tag.lower() in _AUDIT_TAGS:
                        f.setdefault("adfs_" + tag.lower(), html.unescape(value).strip())
        for i in range(1, len(unnamed) - 1):
            name = _CLAIMS.get(unnamed[i].strip().lower())
            if name:
                f.setdefault("adfs_" + name, unnamed[i + 1].strip())
        if unnamed and _GUID.match(unnamed[0].strip()):
            f["adfs_instanceid"] = unnamed[0].strip().strip("{}").lower()
    r[_CACHE] = f
    return f


def _is_adfs(f: dict[str, Any]) -> bool:
    p = f["provider"].lower()
    return "ad fs" in p or "adfs" in p or (not p and f["eventid"] in ADFS_AUDITS)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    t = str(v).strip()
    return None if t in ("", "-", "N/A", "n/a") else t


def _operation(f: dict[str, Any]) -> str | None:
    eid = f["eventid"]
    if eid is None:
        return _text(f.get("activity") or f.get("rendereddescription"))
    name = ADFS_AUDITS.get(eid) if _is_adfs(f) else None
    provider = f["provider"].lower()
    if name is None and (not provider or "security-auditing" in provider):
        name = SECURITY_EVENTS.get(eid)
    if name is None:
        name = next((n for (word, i), n in OTHER_EVENTS.items() if i == eid and word in provider), None)
    if name is None:
        activity = _text(f.get("activity")) or _text(f.get("rendereddescription")) or _text(f.get("operation"))
        if activity and activity.startswith(eid):
            activity = activity[len(eid):].lstrip(" -")
        name = activity
    return f"{eid} - {name}" if name else eid


def _result(f: dict[str, Any]) -> str:
    audit = (_text(f.get("adfs_auditresult")) or "").lower()
    level = str(f.get("eventlevelname") or f.get("keywords") or "").lower()
    if f["eventid"] in _FAILURES or audit == "failure" or "failure" in level or level.startswith("0x8010"):
        return "failure"
    return "success"


def _account(name: Any, domain: Any) -> str | None:
    n, d = _text(name), _text(domain)
    if n is None:
        return None
    return (f"{d}\\{n}" if d and "@" not in n else n).lower()


def _user(f: dict[str, Any]) -> str | None:
    if _is_adfs(f):
        for key in ("adfs_userid", "adfs_upn", "adfs_claimname"):
            v = _text(f.get(key))
            if v:
                return v.lower()
    for key in ("account", "subjectaccount"):
        v = _text(f.get(key))
        if v and v not in ("-\\-",):
            return v.lower()
    if f["eventid"] in ("4624", "4625", "4768", "4769"):
        return _account(f.get("targetusername"), f.get("targetdomainname"))
    return _account(f.get("subjectusername"), f.get("subjectdomainname")) or \
        (_text(f.get("username")) or "").lower() or None


def _ip(f: dict[str, Any]) -> str | None:
    for key in ("adfs_forwardedipaddress", "adfs_ipaddress", "ipaddress", "sourceaddress", "clientaddress"):
        v = _text(f.get(key))
        if v:
            for part in v.split(","):  # x-ms-forwarded-client-ip may list a chain: the client is first
                got = clean_ip(part)
                if got and any(c.isdigit() for c in got) and ("." in got or ":" in got):
                    return got
    return None


def _target(f: dict[str, Any]) -> str | None:
    if f["eventid"] in ("4662", "4663"):
        parts = [_text(f.get(k)) for k in ("objecttype", "properties", "objectname")]
        joined = " ".join(" ".join(p.split()) for p in parts if p)
        return joined[:20000] or None  # a whole property list: the DKM key's thumbnailPhoto may come late in it
    if _is_adfs(f):
        rp = _text(f.get("adfs_relyingparty"))
        if rp:
            return rp
        data = f["data"]
        if f["eventid"] == "299" and len(data) > 1:
            return _text(data[1])
        if f["eventid"] == "412" and len(data) > 3:
            return _text(data[3])
    for key in ("subjectname", "subject", "thumbprint", "certificatethumbprint", "pipename", "objectname",
                "targetusername", "targetobject", "destaddress"):
        v = _text(f.get(key))
        if v:
            return v[:1000]
    return None


def _record_id(r: dict[str, Any], f: dict[str, Any]) -> str:
    rid = _text(f.get("eventrecordid"))
    if rid:
        channel = _text(f.get("channel") or f.get("eventlog")) or ""
        return f"{_text(f.get('computer')) or ''}/{channel}/{rid}"
    origin = _text(f.get("eventoriginid"))
    if origin:
        return origin
    body = json.dumps({k: v for k, v in r.items() if k != _CACHE}, sort_keys=True, default=str)
    return "sha1:" + hashlib.sha1(body.encode("utf-8", "surrogatepass")).hexdigest()


Records = list[dict[str, Any]]
Columns = dict[str, list[Any]]


def _each(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Records, Columns], list[Any]]:
    return lambda rs, cols: [fn(event_fields(r)) for r in rs]


WINDOWS_TRANSFORMS: dict[str, Callable[[Records, Columns], list[Any]]] = {
    "windows_operation": _each(_operation),
    "windows_result": _each(_result),
    "windows_user": _each(_user),
    "windows_ip": _each(_ip),
    "windows_target": _each(_target),
    "windows_instance": _each(lambda f: f.get("adfs_instanceid")),
    "windows_user_agent": _each(lambda f: _text(f.get("adfs_useragentstring"))),
    "windows_provider": _each(lambda f: _text(f["provider"])),
    "windows_record_id": lambda rs, cols: [_record_id(r, event_fields(r)) for r in rs],
}
