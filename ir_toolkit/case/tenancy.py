"""Which tenant a case is about, and refusing logs of another one.

A case names its tenant at ``case init --tenant`` (a domain or a tenant id). Logs name the tenant
they came from by id (``TenantId``, ``AADTenantId``, ``OrganizationId`` ...: see
:func:`ir_toolkit.sources.filechecks.tenant_ids`). The case's tenant id is the ``--tenant`` value
when that is a GUID; otherwise the first import whose records name exactly one tenant id sets it
(``tenant_id`` and ``tenant_id_from`` in case.json). An import whose files name another tenant id
is refused before anything is written, unless ``allow_other_tenant`` (``--allow-other-tenant``):
then it is imported and the custody log records which tenants the files named.

The check reads the records each file's format detection samples (its first 20 records).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ir_toolkit.errors import InputFormatError
from ir_toolkit.sources.containers import display
from ir_toolkit.sources.filechecks import GUID, tenant_ids

if TYPE_CHECKING:
    from ir_toolkit.case.case import Case

__all__ = ["case_tenant_id", "check", "pin"]


def case_tenant_id(case: Case) -> str | None:
    """The case's tenant id: ``--tenant`` when it is a GUID, else the one learned from an import."""
    named = case.tenant.strip().lower()
    if GUID.match(named):
        return named
    learned = case.manifest.get("tenant_id")
    return str(learned) if learned else None


def check(case: Case, sampled: list[tuple[str, list[dict[str, Any]]]], allow_other_tenant: bool) -> dict[str, str]:
    """The tenant ids the files name (id -> first file naming it); raises when one is not the case's.

    Args:
        case: The case.
        sampled: Per file, its shown name and its sampled records (normalised keys).
        allow_other_tenant: Accept other tenants (recorded in the custody log).

    Raises:
        InputFormatError: a file names another tenant than the case's (or two files two tenants while the
            case has none yet), unless ``allow_other_tenant``.
    """
    seen: dict[str, str] = {}
    for shown, records in sampled:
        for t in sorted(tenant_ids(records)):
            seen.setdefault(t, shown)
    own = case_tenant_id(case)
    others = {t: f for t, f in seen.items() if own is not None and t != own}
    if own is None and len(seen) > 1:
        others = dict(list(seen.items())[1:])
    if not others:
        return seen
    if allow_other_tenant:
        case.log_action("import.other_tenant", case_tenant=own, tenants=seen)
        return {}
    t, shown = next(iter(others.items()))
    mine = f"the case's tenant {own} ({case.tenant})" if own is not None else \
        f"tenant {next(iter(seen))} named by {display(seen[next(iter(seen))])}"
    raise InputFormatError(f"{display(shown)}: its records name tenant {t}, not {mine}; "
                           "nothing imported (add --allow-other-tenant to import it anyway)")


def pin(case: Case, seen: dict[str, str]) -> None:
    """Record the tenant id the imported files name as the case's, when the case has none yet."""
    if case_tenant_id(case) is None and len(seen) == 1:
        [(tenant, shown)] = seen.items()
        case.manifest["tenant_id"] = tenant
        case.manifest["tenant_id_from"] = shown
        case.save()
        case.log_action("case.tenant_id", tenant_id=tenant, learned_from=shown)
