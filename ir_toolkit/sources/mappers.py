"""Record mappers: one normalised-key record in, one canonical event row (a dict) out.

Families (what a record is, whatever file carried it):

* ``signin``: Graph signIn v1.0/beta, Log Analytics SigninLogs / AADNonInteractiveUserSignInLogs /
  AADServicePrincipalSignInLogs / AADManagedIdentitySignInLogs, Entra admin center downloads.
* ``directory_audit``: Graph directoryAudit, Log Analytics AuditLogs (``maps/directory_audit.yaml``).
* ``ual``: unified audit log records (Management Activity API, OfficeActivity, auditData;
  ``maps/ual.yaml`` with the transforms of :mod:`ir_toolkit.sources.ual_fields`).
* ``audit_record``: a container around a UAL record: Graph security auditLogRecord
  (``auditData`` object) or a Purview CSV row (``AuditData`` JSON text).
* ``risk``: Graph riskDetection.  ``directory_object``: user, servicePrincipal, application,
  oauth2PermissionGrant.

Every family's column mapper is generated from its field map (``maps/*.yaml``, see
:mod:`ir_toolkit.sources.fieldmap`); this module classifies records and opens containers.
Every mapper returns the canonical columns it knows (times still as text: the batch
parses them vectorised) and raises :class:`RecordError` for a record it cannot read.
Keys are the normalised ones of :func:`ir_toolkit.sources.fields.normalise_keys`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ir_toolkit.sources.fieldmap import FIELD_MAPS, TABLES, table_of, unwrap_record
from ir_toolkit.sources.record_time import with_record_time
from ir_toolkit.sources.transforms import LA_TABLES, country

__all__ = ["LA_TABLES", "MAPPERS", "RecordError", "classify", "country", "unwrap", "unwrap_audit_record"]

Columns = dict[str, list[Any]]


class RecordError(ValueError):
    """A record that cannot be mapped; the message is the quarantine reason."""


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
    for m in (*_CONTAINERS, *_EARLY):
        if m.recognises(r):
            return m.NAME
    if r.get("category", "") in ("SignInLogs", "NonInteractiveUserSignInLogs",
                                 "ServicePrincipalSignInLogs", "ManagedIdentitySignInLogs"):
        return "signin"
    if "creationtime" in r and ("operation" in r or ("recordtype" in r and "workload" in r)):
        return "ual"  # (a record cut down to its common schema without Operation is still one: Wazuh's test data)
    if "activitydisplayname" in r:
        return "directory_audit"
    if "riskeventtype" in r:
        return "risk"
    other_table = bool(t) and "timegenerated" in r  # a Log Analytics row of a table no map names
    if not other_table and ("createddatetime" in r or "timegenerated" in r) and (
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


def unwrap_audit_record(r: dict[str, Any]) -> dict[str, Any]:
    """The UAL record inside a Graph auditLogRecord or a Purview CSV row (``maps/audit_record.yaml``),
    with the container's fields filling what the inner record lacks.

    Raises:
        RecordError: when AuditData is not a JSON object.
    """
    try:
        return unwrap_record(FIELD_MAPS["audit_record"], r)[1]
    except ValueError as exc:
        raise RecordError(str(exc)) from None


MAPPERS: dict[str, Callable[[list[dict[str, Any]]], Columns]] = {
    name: m for name, m in FIELD_MAPS.items() if m.unwrap is None  # generated from maps/*.yaml
}
# every family's missing time falls back to the record's own (tenant snapshot objects may have none)
MAPPERS.update({name: with_record_time(m) for name, m in MAPPERS.items() if name != "directory_object"})


def unwrap(kind: str, r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The family and record to map for a record of family ``kind``: containers are opened (a
    Purview row's AuditData, an Azure Monitor envelope's properties, Defender's RawEventData, a
    Splunk event's ``_raw``), as deep as they nest.

    Raises:
        RecordError: when a container holds no record we know.
    """
    for _ in range(4):
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
