"""Honest import status: empty results, wholly quarantined files, other tenants (issue 15, Deliver 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TESTDATA, cli

from ir_toolkit.case import Case
from ir_toolkit.errors import InputFormatError

IMPORT = TESTDATA / "import"
TENANT = "4b2462a4-bbee-495a-a0e1-f23ae524cc9c"  # the OrganizationId of the Purview fixtures
OTHER = "41463f53-8812-40f4-890f-865bf6e35190"  # the Management API fixture's (Microsoft Learn sample)


@pytest.mark.parametrize(("content", "fmt"), [
    ("[]", "empty"),
    ('{"value": []}', "empty"),
    ('{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": []}',
     "graph-signins"),
    ('{"tables": [{"name": "PrimaryResult", "columns": [{"name": "TimeGenerated"}], "rows": []}]}', "empty"),
    ('{"Schema": [{"Name": "Timestamp"}], "Results": []}', "empty"),
    ("\ufeffRecordId,CreationDate,RecordType,Operation,UserId,AuditData,AssociatedAdminUnits,"
     "AssociatedAdminUnitsNames\r\n", "purview-csv"),
    ("TimeGenerated [UTC],UserPrincipalName,IPAddress\n", "log-analytics-csv"),
    ("Date (UTC);Request ID;User agent\n", "entra-signins-csv"),
    ('"Operation","OperationResult","LogonType","MailboxOwnerUPN","LogonUserDisplayName","LastAccessed"\r\n',
     "empty"),  # Search-MailboxAuditLog's columns (session 10): an empty result, no longer unknown
    ('{"results": [], "@odata.nextLink": null}\n{"results": []}\n', "empty"),
])
def test_empty_result_is_accepted_with_zero_records(case_dir: Path, tmp_path: Path, content: str, fmt: str) -> None:
    f = tmp_path / "result.out"
    f.write_text(content, "utf-8")
    p = cli("import", case_dir, f, "--json")
    assert p.returncode == 0, p.stderr
    [doc] = json.loads(p.stdout)
    assert (doc["format"], doc["records"], doc["imported"], doc["status"]) == (fmt, 0, 0, "imported")
    [entry] = Case.open(case_dir).evidence()
    assert entry["records"] == 0 and entry["sha256"] == doc["sha256"]


@pytest.mark.parametrize("content", ["[{}]", '{"value": [], "nextLink": 5, "other": [1]}', "just,two\n"])
def test_not_empty_results_stay_unknown(case_dir: Path, tmp_path: Path, content: str) -> None:
    f = tmp_path / "x.json"
    f.write_text(content)
    with pytest.raises(InputFormatError, match="unknown format"):
        Case.open(case_dir, writable=True).import_files([f])


def test_wholly_quarantined_file_is_exit_1_with_reason(case_dir: Path) -> None:
    p = cli("import", case_dir, IMPORT / "graph_audit_records_placeholder.json")
    assert p.returncode == 1
    assert "NOT imported: every record quarantined (first: record 1: no readable time" in p.stdout
    assert p.stderr.count("\n") == 1 and "import incomplete: 1 of 1" in p.stderr
    p = cli("import", case_dir, IMPORT / "graph_audit_records_placeholder.json", "--json")
    [doc] = json.loads(p.stdout)
    assert p.returncode == 1 and doc["status"] == "all-quarantined"  # the same file again: still not in the case
    assert doc["records"] == doc["imported"] + doc["duplicates"] + doc["quarantined"]
    p = cli("import", case_dir, IMPORT / "graph_signins_v1.json", IMPORT / "graph_audit_records.json", "--json")
    assert p.returncode == 0 and [d["status"] for d in json.loads(p.stdout)] == ["imported", "imported"]


def test_other_tenant_is_refused_exit_2_nothing_written(tmp_path: Path) -> None:
    case = Case.init(tmp_path / "case", tenant=TENANT.upper())
    p = cli("import", case.root, IMPORT / "purview_current.csv", IMPORT / "management_api.json")
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "management_api.json" in p.stderr and OTHER in p.stderr and "--allow-other-tenant" in p.stderr
    assert Case.open(case.root).evidence() == []
    p = cli("import", case.root, IMPORT / "purview_current.csv", IMPORT / "management_api.json",
            "--allow-other-tenant", "--json")
    assert p.returncode == 0 and sum(d["imported"] for d in json.loads(p.stdout)) == 5
    custody = [json.loads(ln) for ln in (case.root / "custody.log").read_text().splitlines()]
    assert any(c["action"] == "import.other_tenant" for c in custody)


def test_case_named_by_domain_learns_its_tenant_id_from_the_first_import(tmp_path: Path) -> None:
    case = Case.init(tmp_path / "case", tenant="contoso.onmicrosoft.com")
    case.import_files([IMPORT / "purview_current.csv"])
    manifest = json.loads((case.root / "case.json").read_text())
    assert manifest["tenant_id"] == TENANT and manifest["tenant_id_from"].endswith("purview_current.csv")
    with pytest.raises(InputFormatError, match=f"name tenant {OTHER}, not the case's tenant {TENANT}"):
        Case.open(case.root, writable=True).import_files([IMPORT / "management_api.json"])
    # Log Analytics rows: TenantId is the workspace, AADTenantId the Entra tenant (msticpy's real export)
    la = Case.init(tmp_path / "la", tenant="contoso.onmicrosoft.com")
    la.import_files([IMPORT / "signinlogs_msticpy_sample.csv"])
    assert json.loads((la.root / "case.json").read_text())["tenant_id"] == TENANT


def test_two_tenants_in_one_call_of_a_new_case_are_refused(tmp_path: Path) -> None:
    case = Case.init(tmp_path / "case", tenant="contoso")
    with pytest.raises(InputFormatError, match="not tenant"):
        case.import_files([IMPORT / "purview_current.csv", IMPORT / "management_api.json"])
    assert case.evidence() == [] and "tenant_id" not in json.loads((case.root / "case.json").read_text())
