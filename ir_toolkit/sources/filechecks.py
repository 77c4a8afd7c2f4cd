"""What a file says about itself before it is imported: an empty query result, the tenant it names.

* :func:`is_empty_result`: a query that found nothing still writes a file: ``[]``, a Graph page
  ``{"value": []}``, ``{"records": []}``, a Log Analytics REST body whose tables have no rows, a
  hunting result ``{"Schema": [...], "Results": []}``, or a CSV with its header (naming a time column:
  TimeGenerated, Timestamp, CreationDate, Date (UTC) ...) and no row. Such a
  file is accepted with 0 records (it is evidence that the query returned nothing).
* :func:`tenant_ids`: the tenant ids the sampled records name (``TenantId``, ``AADTenantId``,
  ``OrganizationId``, ``tenantId``, also inside ``AuditData`` / ``RawEventData`` / ``properties``).
  A sign-in's ``homeTenantId`` / ``resourceTenantId`` are not read: a guest's or a cross-tenant
  sign-in legitimately names another tenant there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ir_toolkit.sources.fields import sub

__all__ = ["GUID", "is_empty_result", "tenant_ids"]

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RESULT_KEYS = {"value", "records", "results", "rows", "tables", "data"}
_SCHEMA_KEYS = {"columns", "schema"}  # Log Analytics tables' and hunting results' column lists
_TENANT_KEYS = ("tenantid", "aadtenantid", "organizationid")  # read last to first
_NESTED = ("auditdata", "raweventdata", "properties")
_SMALL = 1 << 16
# a header-only CSV is an empty result when it names a time column (every log export has one)
_TIME_COLUMNS = {"timegenerated", "timestamp", "creationdate", "creationtime", "createddatetime", "activitydatetime",
                 "date", "date (utc)", "time", "eventtime", "_time", "activity date (utc)", "lastaccessed", "received"}


def _empty(value: Any) -> bool:
    """An empty result: ``[]``, or an object with a result key whose every list (column lists aside) is empty."""
    if isinstance(value, list):
        return all(isinstance(v, dict) and _empty(v) for v in value)
    if isinstance(value, dict):
        keys = {k.lower(): v for k, v in value.items() if isinstance(k, str)}
        lists = [v for k, v in keys.items() if isinstance(v, list) and k not in _SCHEMA_KEYS]
        return bool(_RESULT_KEYS & set(keys)) and all(_empty(v) for v in lists) and \
            all(isinstance(keys[k], list) for k in _RESULT_KEYS & set(keys))
    return False


def is_empty_result(path: Path, container: str, head: str, header: list[str], records: int) -> bool:
    """True when the file is an empty query result (see the module docstring).

    Args:
        path: The file.
        container: ``json``, ``jsonl`` or ``csv`` (from the reader's probe).
        head: Its first characters, decoded (the whole file when it is small).
        header: Its CSV header (empty for JSON).
        records: How many records sampling read from it (a JSON body that is no Graph page is one record).
    """
    if path.stat().st_size >= _SMALL or len(head) >= _SMALL:
        return False
    text = head.lstrip("\ufeff \t\r\n")
    if container == "csv":
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lower().lstrip('"').startswith("sep=")]
        return not records and len(lines) == 1 and len(header) >= 2 and \
            any(" ".join(h.split()) in _TIME_COLUMNS for h in header)
    try:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        docs = [json.loads(ln) for ln in lines] if container == "jsonl" else [json.loads(text)]
    except ValueError:
        return False
    return bool(docs) and all(_empty(d) for d in docs)


def _tenant_of(layer: dict[str, Any]) -> str | None:
    keys = ("aadtenantid", "organizationid") if "timegenerated" in layer else _TENANT_KEYS[::-1]
    for key in keys:  # Log Analytics rows: TenantId is the workspace's id, not the Entra tenant's
        v = layer.get(key)
        if isinstance(v, str) and GUID.match(v.strip().lower()):
            return v.strip().lower()
    return None


def tenant_ids(records: list[dict[str, Any]]) -> set[str]:
    """The tenant ids (lower-case GUIDs) that records name (normalised keys in): per record the first of
    ``OrganizationId``, ``AADTenantId``, ``TenantId`` (not a Log Analytics row's, which is its workspace's),
    else the same inside ``AuditData`` / ``RawEventData`` / ``properties``."""
    found: set[str] = set()
    for r in records:
        tenant = _tenant_of(r)
        for key in _NESTED:
            if tenant is None and r.get(key) is not None:
                tenant = _tenant_of(sub(r.get(key)))
        if tenant is not None:
            found.add(tenant)
    return found
