"""The SQL of the fast import path (:mod:`ir_toolkit.sources.fastpath`): records decoded by DuckDB.

Each query reads one file with DuckDB's JSON or CSV reader and returns, per record, in file order:
``raw`` (the record as compact JSON), ``kh`` (a hash of the key lists of the record and of the nested
objects the mapping reads), ``nkeys`` (top-level key count), ``ok`` (every field the mapping reads
has the JSON type the SQL mapping handles) and the canonical columns, untrimmed (trimming, lower
case, addresses and times are done in Arrow and pandas by :mod:`ir_toolkit.sources.batch`, as on
the per-record path). A record whose ``ok`` is false, or whose key spellings the Python side does
not accept (:data:`SIGNIN_KEYS`, :data:`UAL_KEYS`), goes through the per-record path.

The mapping mirrors the field maps ``maps/signin.yaml`` and ``maps/ual.yaml`` (inside
``maps/audit_record.yaml``), whose per-record mappers are generated (:mod:`ir_toolkit.sources.fieldmap`);
this SQL is written by hand (nested paths and the UAL decisions have no generated SQL form yet), and
tests/test_import_fast.py checks that both paths give the same events.
"""

from __future__ import annotations

DROP = "\0"  # a key that normalises to a name mapped to DROP sends the record down the per-record path

# normalised name -> the one spelling the SQL reads (DROP: names only the per-record path reads)
SIGNIN_KEYS: dict[str, dict[str, str]] = {
    "": {
        "signineventtypes": "signInEventTypes", "managedserviceidentity": "managedServiceIdentity",
        "userprincipalname": "userPrincipalName", "serviceprincipalid": "servicePrincipalId",
        "isinteractive": "isInteractive", "status": "status", "createddatetime": "createdDateTime",
        "serviceprincipalname": "servicePrincipalName", "userid": "userId", "appid": "appId",
        "appdisplayname": "appDisplayName", "resourceid": "resourceId", "ipaddress": "ipAddress",
        "location": "location", "autonomoussystemnumber": "autonomousSystemNumber", "useragent": "userAgent",
        "sessionid": "sessionId", "uniquetokenidentifier": "uniqueTokenIdentifier", "id": "id",
        "originalrequestid": "originalRequestId", "type": DROP, "category": DROP, "resulttype": DROP,
        "errorcode": DROP, "timegenerated": DROP, "resourceidentity": DROP, "locationdetails": DROP,
        "calleripaddress": DROP, "time": DROP,  # maps/signin.yaml reads them when the Graph fields are empty
    },
    "status": {"errorcode": "errorCode"},
    "location": {"countryorregion": "countryOrRegion"},
    "managedServiceIdentity": {"msitype": "msiType"},
}
UAL_KEYS: dict[str, dict[str, str]] = {
    "": {
        "creationtime": "CreationTime", "id": "Id", "operation": "Operation", "userid": "UserId",
        "resultstatus": "ResultStatus", "userkey": "UserKey", "appid": "AppId", "clientappid": "ClientAppId",
        "clientipaddress": "ClientIPAddress", "clientip": "ClientIP", "clientinfostring": "ClientInfoString",
        "useragent": "UserAgent", "sessionid": "SessionId", "mailboxownerupn": "MailboxOwnerUPN",
        "mailboxguid": "MailboxGuid", "workload": "Workload", "objectid": "ObjectId", "itemname": "ItemName",
        "operationcount": "OperationCount", "appaccesscontext": "AppAccessContext",
        "operationproperties": "OperationProperties", "folders": "Folders", "timegenerated": DROP,
        "actoripaddress": "ActorIpAddress", "target": "Target", "client_ipaddress": DROP, "officeid": DROP,
        "affecteditems": "AffectedItems", "folder": "Folder", "destfolder": "DestFolder",
        "applicationid": "ApplicationId", "extendedproperties": "ExtendedProperties",
        "deviceproperties": "DeviceProperties",
        # Hawk's flattened AppAccessContext (maps/ual.yaml reads them; the SQL does not)
        "appaccesscontext_aadsessionid": DROP, "appaccesscontext_uniquetokenid": DROP,
        "appaccesscontext_issuedattime": DROP, "appaccesscontext_clientappid": DROP,
    },
    "AppAccessContext": {"aadsessionid": "AADSessionId", "uniquetokenid": "UniqueTokenId",
                         "issuedattime": "IssuedAtTime", "clientappid": "ClientAppId"},
    "OperationProperties[]": {"name": "Name", "value": "Value", "key": DROP},
    "Folders[]": {"path": "Path", "folderitems": "FolderItems"},
    "Folders[].FolderItems[]": {"internetmessageid": "InternetMessageId"},
    "Target[]": {"id": "ID"},
    "ExtendedProperties[]": {"name": "Name", "value": "Value", "key": DROP},
    "DeviceProperties[]": {"name": "Name", "value": "Value", "key": DROP},
    "Folder": {"path": "Path"},
    "DestFolder": {"path": "Path"},
    "AffectedItems[]": {"internetmessageid": "InternetMessageId", "parentfolder": "ParentFolder"},
    "AffectedItems[].ParentFolder": {"path": "Path"},
}
PURVIEW_HEADER = ("RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData",
                  "AssociatedAdminUnits", "AssociatedAdminUnitsNames")


class _Paths:
    """Fields decoded in one pass (stage 1: ``from_json`` into a struct ``f`` of JSON fragments);
    ``v(name)`` / ``t(name)`` are the text / JSON type of a field in stage 2 (``a.b``: field b of object a)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.top = list(dict.fromkeys(p.split(".", 1)[0] for p in paths))

    def extract(self, doc: str) -> str:
        struct = "'{" + ", ".join(f'"{name}": "JSON"' for name in self.top) + "}'"
        return f"from_json({doc}, {struct})"

    def _ref(self, name: str) -> tuple[str, str]:
        top, _, rest = name.partition(".")
        return f'f."{top}"', f"'$.{rest}'" if rest else "'$'"

    def raw(self, name: str) -> str:
        ref, path = self._ref(name)
        return ref if path == "'$'" else f"({ref} -> {path})"

    def v(self, name: str) -> str:
        ref, path = self._ref(name)
        return f"({ref} ->> {path})"

    def t(self, name: str) -> str:
        ref, path = self._ref(name)
        return f"json_type({ref})" if path == "'$'" else f"json_type({ref}, {path})"

    def is_(self, name: str, *types: str) -> str:
        """True when the field is missing, JSON null or one of ``types``."""
        return _is(self.raw(name), *types)

    def int_ok(self, name: str) -> str:
        return (f"({self.is_(name)} OR ({self.t(name)} IN ('BIGINT', 'UBIGINT') "
                f"AND TRY_CAST({self.v(name)} AS BIGINT) IS NOT NULL))")


# the first character of a JSON value as DuckDB writes it (compact) tells its type, without parsing it
_FIRST = {"NULL": ["n"], "VARCHAR": ['"'], "OBJECT": ["{"], "ARRAY": ["["], "BOOLEAN": ["t", "f"]}


def _is(ref: str, *types: str) -> str:
    """True when the JSON value ``ref`` is missing, JSON null or one of ``types``."""
    if all(t in _FIRST for t in types):
        first = ", ".join(f"'{c}'" for t in ("NULL", *types) for c in _FIRST[t])
        return f"coalesce(left(CAST({ref} AS VARCHAR), 1) IN ({first}), true)"
    allowed = ", ".join(f"'{t}'" for t in ("NULL", *types))
    return f"coalesce(json_type({ref}), 'NULL') IN ({allowed})"


def _nonempty(expr: str) -> str:
    return f"coalesce({expr}, '') <> ''"


SIGNIN_TEXT = ["createdDateTime", "userPrincipalName", "servicePrincipalId", "servicePrincipalName", "userId",
               "appId", "appDisplayName", "resourceId", "ipAddress", "userAgent", "sessionId",
               "uniqueTokenIdentifier", "id", "originalRequestId", "location.countryOrRegion",
               "managedServiceIdentity.msiType"]
SIGNIN_OTHER = ["signInEventTypes", "managedServiceIdentity", "status", "location", "isInteractive",
                "autonomousSystemNumber", "status.errorCode"]
SIGNIN = _Paths(SIGNIN_TEXT + SIGNIN_OTHER)
_EVENT_TYPES = ("'interactiveuser'", "'noninteractiveuser'", "'serviceprincipal'", "'managedidentity'")


def signin_stage1(source: str) -> str:
    """Decode each sign-in of a JSON array once: raw text, key hash and count, values and types."""
    return f"""
SELECT raw, jt, hash(k) AS kh, len(k) AS nkeys, CASE WHEN jt = 'OBJECT' THEN {SIGNIN.extract('raw')} END AS f
FROM (SELECT raw, CASE WHEN starts_with(raw, '{{') THEN 'OBJECT' END AS jt,
             CASE WHEN starts_with(raw, '{{') THEN json_keys(raw) END AS k
      FROM (SELECT j::VARCHAR AS raw FROM {source}))"""


def signin_stage2(table: str) -> str:
    """Map one decoded batch (``table``) to canonical columns, untrimmed."""
    p = SIGNIN
    v = p.v
    ok = " AND ".join([
        "jt = 'OBJECT'",
        *(p.is_(n, "VARCHAR") for n in SIGNIN_TEXT),
        p.is_("signInEventTypes", "ARRAY"),
        f"list_bool_and(list_transform(json_type({p.raw('signInEventTypes')}, '$[*]'), "
        "lambda t: t = 'VARCHAR')) IS NOT false",
        p.is_("managedServiceIdentity", "OBJECT"), p.is_("status", "OBJECT"), p.int_ok("status.errorCode"),
        p.is_("location", "OBJECT"), p.is_("isInteractive", "BOOLEAN"), p.int_ok("autonomousSystemNumber"),
    ])
    evtype = (f"list_filter(list_transform(json_extract_string({p.raw('signInEventTypes')}, '$[*]'), "
              f"lambda x: lower(x)), lambda x: x IN ({', '.join(_EVENT_TYPES)}))[1]")
    msi = v("managedServiceIdentity.msiType")
    upn, spid = v("userPrincipalName"), v("servicePrincipalId")
    src = f"""CASE {evtype}
        WHEN 'interactiveuser' THEN 'signin_interactive' WHEN 'noninteractiveuser' THEN 'signin_noninteractive'
        WHEN 'serviceprincipal' THEN 'signin_serviceprincipal' WHEN 'managedidentity' THEN 'signin_managedidentity'
        ELSE CASE
          WHEN {msi} IS NOT NULL AND {msi} <> 'none' THEN 'signin_managedidentity'
          WHEN NOT {_nonempty(upn)} AND {_nonempty(spid)} THEN 'signin_serviceprincipal'
          WHEN {v('isInteractive')} = 'false' THEN 'signin_noninteractive'
          ELSE 'signin_interactive' END END"""
    return f"""
WITH m AS (
  SELECT *, {src} AS source, TRY_CAST({v('status.errorCode')} AS BIGINT) AS error_code FROM {table}
)
SELECT
  hash(kh, json_keys({p.raw('status')}), json_keys({p.raw('location')}),
       json_keys({p.raw('managedServiceIdentity')})) AS kh,
  ({ok}) AS ok,
  {v('createdDateTime')} AS time,
  source,
  CASE WHEN error_code IS NULL THEN NULL WHEN error_code = 0 THEN 'success' ELSE 'failure' END AS result,
  error_code,
  (source IN ('signin_serviceprincipal', 'signin_managedidentity') AND NOT {_nonempty(upn)}) AS by_app,
  {v('servicePrincipalName')} AS app_user,
  {upn} AS upn,
  CASE WHEN source IN ('signin_serviceprincipal', 'signin_managedidentity') AND NOT {_nonempty(upn)}
       THEN coalesce(nullif({spid}, ''), nullif({v('userId')}, '')) ELSE {v('userId')} END AS user_id,
  {v('appId')} AS app_id, {v('appDisplayName')} AS app_name, {v('resourceId')} AS resource_id,
  {v('ipAddress')} AS ip, {v('location.countryOrRegion')} AS country,
  TRY_CAST({v('autonomousSystemNumber')} AS BIGINT) AS asn,
  {v('userAgent')} AS user_agent, {v('sessionId')} AS session_id, {v('uniqueTokenIdentifier')} AS token_id,
  coalesce(nullif({v('id')}, ''), nullif({v('originalRequestId')}, '')) AS record_id
FROM m"""


UAL_TEXT = ["CreationTime", "Id", "Operation", "UserId", "ResultStatus", "UserKey", "AppId", "ClientAppId",
            "ClientIPAddress", "ClientIP", "ClientInfoString", "UserAgent", "SessionId", "MailboxOwnerUPN",
            "MailboxGuid", "Workload", "ObjectId", "ItemName", "ActorIpAddress", "AppAccessContext.AADSessionId",
            "AppAccessContext.UniqueTokenId", "AppAccessContext.IssuedAtTime", "AppAccessContext.ClientAppId",
            "Folder.Path", "DestFolder.Path", "ApplicationId"]
UAL_OTHER = ["OperationCount", "AppAccessContext", "OperationProperties", "Folders", "Target", "AffectedItems",
             "Folder", "DestFolder", "ExtendedProperties", "DeviceProperties"]
UAL = _Paths(UAL_TEXT + UAL_OTHER)


def purview_stage1(table: str, pos: bool = False) -> str:
    """Decode each Purview CSV row once (``table``: the rows, every column text, empty as '').

    ``pos``: ``table`` has a column ``pos`` (the row's number in the file), returned as it is.

    ``a`` is AuditData when it is a JSON object (checked by ``json_valid``, which reads as the JSON
    functions do, without writing the document again as a cast to JSON would), else NULL. DuckDB reads
    a comma before ``}`` or ``]``, which the per-record decoder refuses: such text (or a string that
    holds one) is left to the per-record path.
    """
    raw = ", ".join(f"'{h}', {h}" for h in PURVIEW_HEADER)
    return f"""
SELECT raw, {'pos, ' if pos else ''}CreationDate, Operation AS outer_operation, UserId AS outer_user, RecordId,
  CASE WHEN a IS NOT NULL THEN 'OBJECT' END AS jt, hash(k) AS kh, len(k) AS nkeys,
  CASE WHEN a IS NOT NULL THEN {UAL.extract('a')} END AS f
FROM (SELECT *, CASE WHEN a IS NOT NULL THEN json_keys(a) END AS k
  FROM (SELECT *, json_object({raw})::VARCHAR AS raw,
          CASE WHEN regexp_matches(AuditData, '^[ \\t\\n\\r]*\\{{') AND json_valid(AuditData)
               AND NOT regexp_matches(AuditData, ',[ \\t\\n\\r]*[\\]}}]') THEN AuditData END AS a
      FROM {table}))"""


def purview_stage2(table: str, carry: bool = False, pos: bool = False) -> str:
    """Map decoded Purview rows (``table``: a batch, or the stage 1 query) to canonical columns, untrimmed.

    ``carry``: also return stage 1's ``raw`` and ``nkeys``; ``pos``: and its ``pos``.
    """
    p = UAL
    v = p.v
    props, folders, targets = p.raw("OperationProperties"), p.raw("Folders"), p.raw("Target")
    affected = p.raw("AffectedItems")
    extended, device = p.raw("ExtendedProperties"), p.raw("DeviceProperties")

    def fallback(inner: str, outer: str) -> str:  # unwrap_audit_record: the CSV column fills an empty field
        return f"CASE WHEN {_nonempty(v(inner))} THEN {v(inner)} ELSE nullif({outer}, '') END"

    def each(ref: str, path: str, *types: str) -> str:  # the JSON type of every value at a wildcard path
        allowed = ", ".join(f"'{t}'" for t in types)  # (one parse of ref; a missing key is no value)
        return (f"list_bool_and(list_transform(json_type({ref}, '{path}'), lambda t: t IN ({allowed}))) "
                "IS NOT false")

    text = ("NULL", "VARCHAR")
    ok = " AND ".join([
        "jt = 'OBJECT'",
        *(p.is_(n, "VARCHAR") for n in UAL_TEXT), p.int_ok("OperationCount"),
        p.is_("AppAccessContext", "OBJECT"), p.is_("OperationProperties", "ARRAY"), p.is_("Folders", "ARRAY"),
        each(props, "$[*]", "OBJECT"), each(props, "$[*].Name", *text), each(props, "$[*].Value", *text),
        # Entra logons (UserLoggedIn / UserLoginFailed): {Name, Value} lists, as mappers.logon_property reads them
        *(check for ref in (extended, device) for check in (
            _is(ref, "ARRAY"), each(ref, "$[*]", "OBJECT"), each(ref, "$[*].Name", *text),
            each(ref, "$[*].Value", *text))),
        each(folders, "$[*]", "OBJECT"), each(folders, "$[*].Path", *text),
        each(folders, "$[*].FolderItems", "NULL", "ARRAY"),
        p.is_("Target", "ARRAY"), each(targets, "$[*]", "OBJECT"), each(targets, "$[*].ID", *text),
        # target ids: printable ASCII without blanks (Python strips and isdigit()s them)
        f"list_bool_and(list_transform(json_extract_string({targets}, '$[*].ID'), "
        "lambda x: coalesce(regexp_full_match(x, '[!-~]*'), true))) IS NOT false",
        each(folders, "$[*].FolderItems[*]", "OBJECT"),
        each(folders, "$[*].FolderItems[*].InternetMessageId", *text),
        # item groups (mappers.item_group): AffectedItems objects, Folder / DestFolder objects
        p.is_("AffectedItems", "ARRAY"), p.is_("Folder", "OBJECT"), p.is_("DestFolder", "OBJECT"),
        each(affected, "$[*]", "OBJECT"), each(affected, "$[*].InternetMessageId", *text),
        each(affected, "$[*].ParentFolder", "NULL", "OBJECT"), each(affected, "$[*].ParentFolder.Path", *text),
    ])
    group = f"NOT ({p.is_('AffectedItems')} AND {p.is_('Folder')} AND {p.is_('DestFolder')})"
    group_paths = (f"list_concat([{v('Folder.Path')}, {v('DestFolder.Path')}], "
                   f"coalesce(json_extract_string({affected}, '$[*].ParentFolder.Path'), []))")
    user = fallback("UserId", "outer_user")

    def prop(name: str, where: str = props) -> str:
        return (f"list_filter(json_extract({where}, '$[*]'), lambda e: lower(e ->> '$.Name') = '{name.lower()}')[1]"
                " ->> '$.Value'")

    def keys(path: str) -> str:  # the key lists of the objects at a wildcard path
        return f"list_distinct(json_keys({path}))"

    return f"""
SELECT {'raw, nkeys,' if carry else ''}{' pos,' if pos else ''}
  hash(kh, json_keys({p.raw('AppAccessContext')}), {keys(props + ", '$[*]'")}, {keys(folders + ", '$[*]'")},
       {keys(folders + ", '$[*].FolderItems[*]'")}, {keys(targets + ", '$[*]'")},
       json_keys({p.raw('Folder')}), json_keys({p.raw('DestFolder')}), {keys(affected + ", '$[*]'")},
       {keys(affected + ", '$[*].ParentFolder'")}, {keys(extended + ", '$[*]'")},
       {keys(device + ", '$[*]'")}) AS kh,
  ({ok}) AS ok,
  {fallback("CreationTime", "CreationDate")} AS time,
  {fallback("Operation", "outer_operation")} AS operation,
  {v('ResultStatus')} AS result,
  {user} AS user,
  {v('UserKey')} AS user_key,
  CASE WHEN {_nonempty(v('MailboxOwnerUPN'))} THEN {v('MailboxOwnerUPN')}
       WHEN {v('Workload')} = 'Exchange' AND {_nonempty(v('MailboxGuid'))} THEN {user} END AS mailbox,
  CASE WHEN {_nonempty(v('AppId'))} THEN {v('AppId')} ELSE {v('ApplicationId')} END AS app_id,
  CASE WHEN {_nonempty(v('ClientAppId'))} THEN {v('ClientAppId')} ELSE {v('AppAccessContext.ClientAppId')} END
    AS client_app_id,
  coalesce(nullif({v('ClientIPAddress')}, ''), nullif({v('ClientIP')}, ''), nullif({v('ActorIpAddress')}, '')) AS ip,
  coalesce(nullif({v('ClientInfoString')}, ''), nullif({v('UserAgent')}, ''), {prop('UserAgent', extended)})
    AS user_agent,
  CASE WHEN {_nonempty(v('AppAccessContext.AADSessionId'))} THEN {v('AppAccessContext.AADSessionId')}
       ELSE {prop('SessionId', device)} END AS session_id, {v('AppAccessContext.UniqueTokenId')} AS token_id,
  {v('AppAccessContext.IssuedAtTime')} AS token_issued_at,
  {v('SessionId')} AS exchange_session_id,
  coalesce(nullif(trim({prop('MailAccessType')}), ''), {prop('AttachmentAccessType')}) AS mail_access_type,
  {prop('IsThrottled')} AS throttled,
  TRY_CAST({v('OperationCount')} AS BIGINT) AS items,
  coalesce(list_filter(json_extract_string({folders}, '$[*].FolderItems[*].InternetMessageId'),
                       lambda x: coalesce(x, '') <> ''), []) AS message_ids,
  coalesce(list_filter(json_extract_string({folders}, '$[*].Path'), lambda x: x IS NOT NULL), []) AS folders,
  coalesce(list_filter(json_extract_string({targets}, '$[*].ID'),
                       lambda x: x <> '' AND NOT regexp_full_match(x, '[0-9]+'))[1],
           CASE WHEN {_nonempty(v('ObjectId'))} THEN {v('ObjectId')} ELSE nullif({v('ItemName')}, '') END,
           nullif({v('DestFolder.Path')}, '')) AS target,
  {group} AS is_group,
  coalesce(list_filter(json_extract_string({affected}, '$[*].InternetMessageId'),
                       lambda x: coalesce(x, '') <> ''), []) AS group_message_ids,
  list_filter({group_paths}, lambda x, i: coalesce(x, '') <> '' AND list_position({group_paths}, x) = i)
    AS group_folders,
  CASE WHEN json_type({affected}) = 'ARRAY' THEN json_array_length({affected}) END AS group_items,
  {fallback("Id", "RecordId")} AS record_id
FROM {table}"""
