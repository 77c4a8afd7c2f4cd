"""SQL forms of the directory audit and risk detection maps' transforms (``maps/directory_audit.yaml``,
``maps/risk.yaml``): the user agent of ``additionalDetails`` / ``additionalInfo`` (issue 15, session 8).

``user_agent_detail`` is ``text(name_value(v, "User-Agent") or name_value(v, "UserAgent"))`` over a list of
``{key, value}`` entries (AuditLogs' additionalDetails: a JSON list; UserRiskEvents' additionalInfo: the
same list as JSON text). As session 7 did for CloudAppEvents' ``{Name, Value}`` lists
(:mod:`ir_toolkit.sources.ualsql`), the list is matched by one regular expression over its compact text:
entries of exactly a label (``Name``, ``name``, ``Key`` or ``key``) then a value (``Value`` or ``value``), the
label printable ASCII without quote or backslash, the value a string without escapes or control characters,
or null. Any other list (spaces, escapes, numbers, other spellings or key orders, PowerShell ``@{...}`` text)
goes per record, by the guard the form adds; a field of another JSON type than a list or text has no
entries, so no user agent.
"""

from __future__ import annotations

from ir_toolkit.sources.sqlforms import Fields, Sql, Step, fields_text
from ir_toolkit.sqltext import literal

_NAME = r'[ !#-\[\]-~]*'  # printable ASCII but " and \ (Python's lower() and the regex's (?i) agree)
_TOKEN = r'"[^"\\\x00-\x1f]*"|null'  # a string as JSON text decodes it unchanged, or null
_LABEL = r'"(?:Name|name|Key|key)"'  # fields.name_value's label spellings (an entry of two keys)
_VALUE = r'"(?:Value|value)"'
_ENTRY = r'\{' + _LABEL + r':"' + _NAME + r'",' + _VALUE + r':(?:' + _TOKEN + r')\}'
_SHAPE = literal(r'\[(?:' + _ENTRY + r'(?:,' + _ENTRY + r')*)?\]')
_UNCLEAN = literal(r'\{' + _LABEL + r':"(?i:User-?Agent)",' + _VALUE + r':"(?:[^!-~"][^"]*|[^"]*[^!-~"])"')


def _find(name: str) -> str:
    """The pattern of the first entry labelled ``name`` (any case), its value's JSON token as group 1."""
    return literal(r'\{' + _LABEL + r':"(?i:' + name + r')",' + _VALUE + r':(' + _TOKEN + r')\}')


def user_agent_detail(src: Fields, paths: list[tuple[Step, ...]], guards: list[Sql]) -> Sql:
    """The user agent of a ``[{key, value}]`` list (``transforms.user_agent_detail``) at the one path given:
    the User-Agent entry's value, else (none, null or "") the UserAgent entry's; text stripped."""
    found = fields_text(src, paths[0]) if len(paths) == 1 else None
    if found is None:
        guards.append(("false", []))
        return "NULL::VARCHAR", []
    (t, tps), (v, vps) = found
    if tps or vps:  # JSON paths take no parameters; a source whose fields do has no lists
        guards.append(("false", []))
        return "NULL::VARCHAR", []
    listed = f"coalesce({t}, 'NULL') IN ('ARRAY', 'VARCHAR')"
    # any user agent entry's value with other than printable ASCII at an end (text() would strip it): per record
    guards.append((f"(NOT {listed} OR ({t} = 'VARCHAR' AND {v} = '') OR (regexp_full_match({v}, {_SHAPE}) AND "
                   f"NOT regexp_matches({v}, {_UNCLEAN})))", []))
    # each regular expression evaluated once a row: the lambdas bind the first entry's token, then the chosen one
    chosen = (f"CASE WHEN a IN ('', 'null', '\"\"') THEN regexp_extract({v}, {_find('UserAgent')}, 1) ELSE a END")
    value = (f"(list_transform([{chosen}], lambda c: CASE WHEN starts_with(c, '\"') THEN nullif(c[2:-2], '') END))[1]")
    return (f"CASE WHEN {listed} THEN (list_transform([regexp_extract({v}, {_find('User-Agent')}, 1)], "
            f"lambda a: {value}))[1] END"), []


FIELD_FORMS = {"user_agent_detail": user_agent_detail}  # column transforms that read their one field as JSON
AUDIT_SPELLINGS: dict[str, dict[str, str]] = {
    "directory_audit": {k.lower(): k for k in (  # Graph's directoryAudit (diagnostic-settings properties)
        "activityDateTime", "activityDisplayName", "operationName", "result", "initiatedBy", "user", "app",
        "userPrincipalName", "id", "displayName", "servicePrincipalId", "appId", "ipAddress", "additionalDetails",
        "targetResources")},
    "risk": {k.lower(): k for k in (  # Graph's riskDetection (diagnostic-settings properties)
        "detectedDateTime", "activityDateTime", "riskEventType", "riskLevel", "riskState", "userPrincipalName",
        "userId", "ipAddress", "location", "countryOrRegion", "additionalInfo", "requestId", "id")},
}
