"""SQL forms of the sign-in map's transforms (``maps/signin.yaml``, :mod:`ir_toolkit.sources.transforms`).

For diagnostic-settings sign-ins (SignInLogs, NonInteractiveUserSignInLogs, ServicePrincipalSignInLogs,
ManagedIdentitySignInLogs, MicrosoftServicePrincipalSignInLogs: PT1H.json lines, Event Hub bodies) the
sign-in kind comes from the category the envelope names (a managed identity flag first), the user and
user id of an application identity without a UPN from its service principal, and the country from
``location`` (a Graph location object's ``countryOrRegion``, or the last part of a text). A record the
forms cannot decide exactly (no category they know, a flag or location of another type or spelling)
goes per record, by the guards they add.
"""

from __future__ import annotations

from ir_toolkit.sources.sqlforms import Fields, RecordForm, Sql, Step, field_text, fields_text, plain_keys
from ir_toolkit.sources.transforms import LA_TABLES

_APPS = "('signin_serviceprincipal', 'signin_managedidentity')"
_CLEAN = "'(?s)[!-~](.*[!-~])?'"
_SPELLED = ("countryOrRegion", "CountryOrRegion")  # transforms.country's field() spellings


def _managed(src: Fields, guards: list[Sql]) -> Sql:
    """SQL true when ``boolean(IsManagedIdentity)`` is True (Defender's service principal sign-ins)."""
    found = fields_text(src, (("ismanagedidentity", None),))
    if found is None:
        guards.append(("false", []))
        return "false", []
    (t, tps), (v, vps) = found
    guards.append((f"(coalesce({t}, 'NULL') IN ('NULL', 'BOOLEAN', 'VARCHAR', 'BIGINT', 'UBIGINT') AND "
                   f"regexp_full_match(coalesce({v}, ''), '[ -~]*'))", [*tps, *vps]))
    return (f"coalesce(({t} = 'BOOLEAN' AND {v} = 'true') OR ({t} = 'VARCHAR' AND lower(trim({v})) IN "
            f"('true', '1', 'yes')) OR ({t} IN ('BIGINT', 'UBIGINT') AND {v} = '1'), false)", [*tps, *vps, *tps, *vps,
                                                                                            *tps, *vps])


def _source(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    """The managed identity flag, else the table the envelope names; any other record per record."""
    table = src.table()
    if table is None:
        guards.append(("false", []))
        return "NULL", []
    (m, mps), (tb, tps) = _managed(src, guards), table
    guards.append((f"({m} OR list_contains(?, lower({tb})))", [*mps, sorted(LA_TABLES), *tps]))
    return (f"CASE WHEN {m} THEN 'signin_managedidentity' ELSE map_extract(MAP(?, ?), lower({tb}))[1] END",
            [*mps, list(LA_TABLES), list(LA_TABLES.values()), *tps])


def _by_app(src: Fields, exprs: dict[str, Sql], guards: list[Sql]) -> Sql:
    """An application identity's sign-in without a UPN (transforms._by_app)."""
    (s, sps), (u, ups) = exprs["source"], field_text(src, "userprincipalname", guards)
    return f"(({s}) IN {_APPS} AND coalesce({u}, '') = '')", [*sps, *ups]


def _user(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    (a, aps), (n, nps) = _by_app(src, exprs, guards), field_text(src, "serviceprincipalname", guards)
    return f"CASE WHEN {a} THEN {n} ELSE {own[0]} END", [*aps, *nps, *own[1]]


def _user_id(src: Fields, exprs: dict[str, Sql], own: Sql, guards: list[Sql]) -> Sql:
    (a, aps), (p, pps) = _by_app(src, exprs, guards), field_text(src, "serviceprincipalid", guards)
    u, ups = field_text(src, "userid", guards)
    return f"CASE WHEN {a} THEN coalesce(nullif({p}, ''), nullif({u}, '')) ELSE {u} END", [*aps, *pps, *ups, *ups]


def country(src: Fields, paths: list[tuple[Step, ...]], guards: list[Sql]) -> Sql:
    """``country()`` of the first path with a value: a location object's countryOrRegion, or a text's last
    comma-separated part (a number, flag or list gives none); JSON text of an object per record."""
    picks: list[tuple[str, str]] = []
    for steps in paths:
        found = fields_text(src, steps)
        if found is None:
            guards.append(("false", []))
            return "NULL", []
        (t, tps), (v, vps) = found
        o = f"CASE WHEN {t} = 'OBJECT' THEN {v} END"  # JSON functions only on objects (DuckDB evaluates all)
        name = f"coalesce(json_extract_string({o}, '$.countryOrRegion'), json_extract_string({o}, '$.CountryOrRegion'))"
        picked = f"(coalesce({t}, 'NULL') <> 'NULL' AND NOT ({t} = 'VARCHAR' AND {v} = ''))"
        ok = (f"({t} <> 'VARCHAR' OR (regexp_full_match({v}, '[ -~]*') AND NOT regexp_matches({v}, '^ *[\\[{{]'))) AND "
              f"({t} <> 'OBJECT' OR coalesce({plain_keys(f'({o})::JSON', _SPELLED)} AND NOT "
              f"list_has_all(json_keys({o}), ['countryOrRegion', 'CountryOrRegion']) AND "
              f"coalesce(json_type({o}, '$.countryOrRegion'), 'NULL') IN ('VARCHAR', 'NULL') AND "
              f"coalesce(json_type({o}, '$.CountryOrRegion'), 'NULL') IN ('VARCHAR', 'NULL') AND "
              f"(coalesce({name}, '') = '' OR regexp_full_match({name}, {_CLEAN})), false))")
        value = (f"CASE WHEN {t} = 'VARCHAR' THEN nullif(trim(regexp_extract({v}, '[^,]*$')), '') "
                 f"WHEN {t} = 'OBJECT' THEN nullif({name}, '') END")
        if tps or vps:  # JSON paths take no parameters; a source whose fields do has no location objects
            guards.append(("false", []))
            return "NULL", []
        guards.append((f"(NOT {picked} OR ({ok}))", []))
        picks.append((picked, value))
    return "CASE " + " ".join(f"WHEN {p} THEN {v}" for p, v in picks) + " END", []


SIGNIN_RECORD_FORMS: dict[str, RecordForm] = {
    "signin_source": RecordForm(("ismanagedidentity",), _source, table=True),
    "signin_user": RecordForm(("userprincipalname", "serviceprincipalname"), _user),
    "signin_user_id": RecordForm(("userprincipalname", "serviceprincipalid", "userid"), _user_id),
}
SIGNIN_SPELLINGS: dict[str, str] = {k.lower(): k for k in (  # Graph's signIn (diagnostic-settings properties)
    "createdDateTime", "status", "errorCode", "resultType", "userPrincipalName", "appId", "appDisplayName",
    "resourceIdentity", "resourceId", "ipAddress", "location", "locationDetails", "autonomousSystemNumber",
    "userAgent", "sessionId", "uniqueTokenIdentifier", "id", "originalRequestId", "isManagedIdentity",
    "servicePrincipalName", "servicePrincipalId", "userId")}
