"""The named transforms a field map (``maps/*.yaml``) may use, as plain dict registries.

Two kinds, like pySigma's field-mapping transformations:

* :data:`VALUE_TRANSFORMS` - one value in, one value out (``lower``, ``ip``, ``integer`` ...). A
  map writes them after a field path (``initiatedby.user.userprincipalname | lower``) or as the
  column's ``transform``.
* :data:`RECORD_TRANSFORMS` - the whole column from the records and the columns mapped before it
  (``signin_source``: the sign-in kind from the table name, event types and identities). They stand
  for the few decisions a path cannot express.

Every transform is pure and never raises on odd input (a value it cannot read becomes None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.fields import boolean, field, first, integer, ip, items, lower, name_value, sub, text
from ir_toolkit.sources.ual_fields import UAL_RECORD_TRANSFORMS, UAL_VALUE_TRANSFORMS
from ir_toolkit.sources.windows import WINDOWS_TRANSFORMS

Columns = dict[str, list[Any]]
Records = list[dict[str, Any]]

LA_TABLES: dict[str, str] = {  # Log Analytics table / diagnostic-settings category -> sign-in source
    "signinlogs": "signin_interactive",
    "aadnoninteractiveusersigninlogs": "signin_noninteractive",
    "aadserviceprincipalsigninlogs": "signin_serviceprincipal",
    "aadmanagedidentitysigninlogs": "signin_managedidentity",
    "noninteractiveusersigninlogs": "signin_noninteractive",
    "serviceprincipalsigninlogs": "signin_serviceprincipal",
    "managedidentitysigninlogs": "signin_managedidentity",
    "microsoftserviceprincipalsigninlogs": "signin_serviceprincipal",
    "aadspnsignineventsbeta": "signin_serviceprincipal",
    "entraidspnsigninevents": "signin_serviceprincipal",
}
#: IdentityLogonEvents' ActionType as the canonical result (Microsoft's spelling only).
LOGON_RESULTS = {"LogonSuccess": "success", "LogonFailed": "failure"}
TABLE_KEY = "_table"  # the table / category an envelope named (set by the unwrapping, never in a file)
_EVENT_TYPES = {
    "interactiveuser": "signin_interactive",
    "noninteractiveuser": "signin_noninteractive",
    "serviceprincipal": "signin_serviceprincipal",
    "managedidentity": "signin_managedidentity",
}
_APP_SOURCES = ("signin_serviceprincipal", "signin_managedidentity")


def country(loc: Any) -> str | None:
    """The country code of a sign-in location: "US" (Log Analytics), "Redmond, Washington, US", or
    an object with countryOrRegion (Graph)."""
    if isinstance(loc, str) and not loc.lstrip().startswith(("{", "[", "@{", "class ")):
        return text(loc.rsplit(",", 1)[-1])
    return text(field(loc, "countryOrRegion", "CountryOrRegion"))


def signin_source(r: dict[str, Any]) -> str:
    """The sign-in source of one record (table name, event types, identities, isInteractive)."""
    if boolean(r.get("ismanagedidentity")) is True:  # Defender's AADSpnSignInEventsBeta
        return "signin_managedidentity"
    for key in (TABLE_KEY, "type", "category"):
        v = r.get(key)
        if isinstance(v, str) and v.lower() in LA_TABLES:
            return LA_TABLES[v.lower()]
    types = r.get("signineventtypes") or r.get("logontype")  # LogonType: Defender's AADSignInEventsBeta
    if types:
        for t in types if isinstance(types, list) else items(types):
            if isinstance(t, str) and t.lower() in _EVENT_TYPES:
                return _EVENT_TYPES[t.lower()]
    if r.get("managedserviceidentity") and sub(r.get("managedserviceidentity")).get("msitype") not in (None, "none"):
        return "signin_managedidentity"
    if not r.get("userprincipalname") and r.get("serviceprincipalid"):
        return "signin_serviceprincipal"
    interactive = r.get("isinteractive")
    return "signin_noninteractive" if interactive is False or boolean(interactive) is False else "signin_interactive"


def _signin_sources(rs: Records, cols: Columns) -> list[Any]:
    return [signin_source(r) for r in rs]


def _result_from_error_code(rs: Records, cols: Columns) -> list[Any]:
    return [None if c is None else ("success" if c == 0 else "failure") for c in cols["error_code"]]


def _by_app(rs: Records, cols: Columns) -> list[bool]:
    """Sign-ins of an application identity (service principal, managed identity) without a UPN."""
    return [s in _APP_SOURCES and not r.get("userprincipalname") for r, s in zip(rs, cols["source"], strict=True)]


def _signin_user(rs: Records, cols: Columns) -> list[Any]:
    return [r.get("serviceprincipalname") if a else u
            for r, a, u in zip(rs, _by_app(rs, cols), cols["user"], strict=True)]


def _signin_user_id(rs: Records, cols: Columns) -> list[Any]:
    return [first(r, "serviceprincipalid", "userid") if a else r.get("userid")
            for r, a in zip(rs, _by_app(rs, cols), strict=True)]


def _status_result(rs: Records, cols: Columns) -> list[Any]:
    """success for an HTTP status below 400, failure from 400 (Graph activity requests)."""
    return [None if c is None else ("success" if c < 400 else "failure") for c in cols["response_status"]]


def _logon_result(rs: Records, cols: Columns) -> list[Any]:
    """success for a LogonSuccess, failure for a LogonFailed (Defender for Identity logons' ActionType), else the
    column's own value (the FailureReason: the FailureReason of a failed logon stays in raw)."""
    return [LOGON_RESULTS.get(op, own) if isinstance(op, str) else own
            for op, own in zip(cols["operation"], cols["result"], strict=True)]


def _message_id_list(value: Any) -> list[str] | None:
    t = text(value)
    return [t] if t is not None else None


def _strings(value: Any) -> str | None:
    """A list of names (scopes, roles) as one space-separated text; text as it is."""
    if isinstance(value, str):
        parsed = items(value) if value.lstrip().startswith("[") else None
        return text(" ".join(str(v) for v in parsed)) if parsed else text(value)
    if isinstance(value, list):
        return text(" ".join(str(v) for v in value if v is not None))
    return text(value)


VALUE_TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "text": text,
    "lower": lower,
    "integer": integer,
    "boolean": boolean,
    "ip": lambda v: ip(text(v)),
    "country": country,
    "message_id_list": _message_id_list,
    "names": _strings,
    "address": lambda v: lower(v) if "@" in str(v) else None,
    "first_address": lambda v: lower(str(v).replace(",", ";").split(";", 1)[0]),
    "permission_kind": lambda v: {"delegated": "oauth2PermissionGrant", "application": "appRoleAssignment"}.get(
        str(v).strip().lower(), text(v)),
    "recipient_address": lambda v: lower(str(v).split(";", 1)[0].split("##", 1)[0]),
    "user_agent_detail": lambda v: text(name_value(v, "User-Agent") or name_value(v, "UserAgent")),
    **UAL_VALUE_TRANSFORMS,
}
RECORD_TRANSFORMS: dict[str, Callable[[Records, Columns], list[Any]]] = {
    "signin_source": _signin_sources,
    "result_from_error_code": _result_from_error_code,
    "result_from_http_status": _status_result,
    "result_from_logon_action": _logon_result,
    "signin_user": _signin_user,
    "signin_user_id": _signin_user_id,
    **UAL_RECORD_TRANSFORMS,
}


def _object_kind(r: dict[str, Any]) -> tuple[str, str | None]:
    """The kind of a tenant snapshot object and what its target column shows."""
    if "consenttype" in r:
        return "oauth2PermissionGrant", text(r.get("scope"))
    if "userprincipalname" in r and "appid" not in r:
        return "user", text(r.get("usertype"))
    if "serviceprincipaltype" in r or "appownerorganizationid" in r:
        return "servicePrincipal", text(r.get("serviceprincipaltype"))
    return "application", text(r.get("signinaudience"))


RECORD_TRANSFORMS["directory_object_kind"] = lambda rs, cols: [_object_kind(r)[0] for r in rs]
RECORD_TRANSFORMS["directory_object_target"] = lambda rs, cols: [_object_kind(r)[1] for r in rs]
RECORD_TRANSFORMS.update(WINDOWS_TRANSFORMS)  # Windows / AD FS events (maps/windows_event.yaml)
