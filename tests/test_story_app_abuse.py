"""The app-abuse story (issue 19, Deliver 2 and 6): its tenant is scoped exactly, and honestly without directory audits.

Built as a responder builds it: ``ir-toolkit sample make --story app-abuse`` (a small tenant, once per
module), ``Case.init`` and ``Case.import_files`` of the raw logs, then detect and scope.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.acceptance_cases import log_files
from tests.conftest import cli

SMALL = ("--users", "12", "--days", "35")


def make_tenant(folder: Path, *extra: str) -> dict[str, Any]:
    """``sample make FOLDER --story app-abuse`` (small) and its answer key."""
    r = cli("sample", "make", folder, "--story", "app-abuse", *SMALL, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads((folder / "answer_key.json").read_text(encoding="utf-8"))


def scoped_case(tenant: Path, case_path: Path) -> tuple[Case, pd.DataFrame, dict[str, Any]]:
    case = Case.init(case_path, tenant="sample")
    case.import_files(log_files(tenant))
    findings = detect(case)
    return case, findings, scope(case)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("app-abuse")
    key = make_tenant(tmp / "tenant")
    _, findings, doc = scoped_case(tmp / "tenant", tmp / "case")
    return findings, doc, key


@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("app-abuse-partial")
    key = make_tenant(tmp / "tenant", "--drop", "directory_audit")
    _, findings, doc = scoped_case(tmp / "tenant", tmp / "case")
    return findings, doc, key


def test_answer_key_holds_the_truth(full: tuple[pd.DataFrame, dict, dict]) -> None:
    _, _, key = full
    assert key["tenant"]["story"] == "app-abuse"
    assert len(key["compromised_mailboxes"]) >= 2 and key["window"]["first_malicious"]
    app = key["app_abuse"]
    assert key["actor_apps"] == [{"app_id": app["app_id"], "name": app["name"], "field": "AppId"}]
    assert app["changes_from"] in {i["ip"] for i in key["actor_ips"]}
    assert all(t["issued_by_entra"] for t in key["actor_tokens"]) and key["actor_tokens"]
    assert {d["kind"] for d in key["decoys"]} >= {"app_credential_rotation", "backup_app"}


@pytest.mark.parametrize(("section", "field"), [("compromised_mailboxes", "upn"), ("actor_ips", "ip")])
def test_recall_one_and_at_most_one_false(full: tuple[pd.DataFrame, dict, dict], section: str, field: str) -> None:
    _, doc, key = full
    truth = {m[field] for m in key[section]}
    found = {m[field] for m in doc[section]}
    assert truth <= found, f"{section}: missed {truth - found}"
    assert len(found - truth) <= 1, f"{section}: false {found - truth}"


def test_window_within_an_hour_and_the_app_among_the_actor_apps(full: tuple[pd.DataFrame, dict, dict]) -> None:
    _, doc, key = full
    for edge in ("first_malicious", "last_malicious"):
        assert abs(pd.Timestamp(doc["window"][edge]) - pd.Timestamp(key["window"][edge])) <= pd.Timedelta(hours=1)
    assert key["app_abuse"]["app_id"] in {a["app_id"] for a in doc["actor_apps"]}
    assert {m["confidence"] for m in doc["compromised_mailboxes"]} == {"confirmed"}
    found = {m["upn"]: m for m in doc["compromised_mailboxes"]}
    for m in key["compromised_mailboxes"]:
        if not m["throttled"]:
            assert found[m["upn"]]["items_accessed"] == m["items_accessed"], m["upn"]


def test_one_confirmed_chain_ties_change_grant_and_reads(full: tuple[pd.DataFrame, dict, dict]) -> None:
    findings, _, key = full
    chain = findings[findings["detection"] == "app-abuse"]
    assert list(chain["verdict"]) == ["confirmed"] and chain.iloc[0]["app_id"] == key["app_abuse"]["app_id"]
    text = chain.iloc[0]["explanation"]
    assert "1 credential change(s) and 2 mail grant(s)" in text and key["app_abuse"]["changes_from"] in text
    assert key["app_abuse"]["compromised_account"] in text


def test_rotated_decoy_app_is_no_finding_and_not_in_scope(full: tuple[pd.DataFrame, dict, dict]) -> None:
    findings, doc, key = full
    decoy = next(d for d in key["decoys"] if d["kind"] == "app_credential_rotation")["entities"]
    strong = findings[findings["verdict"].isin(["confirmed", "likely"])]
    assert decoy["app_id"] not in set(strong["app_id"].dropna())
    assert decoy["app_id"] not in {a["app_id"] for a in doc["actor_apps"]}
    assert not set(decoy["ips"]) & {i["ip"] for i in doc["actor_ips"]}
    truth = {m["upn"] for m in key["compromised_mailboxes"]}
    assert not (set(decoy["users"]) - truth) & {m["upn"] for m in doc["compromised_mailboxes"]}


def test_without_directory_audits_the_verdict_is_weaker_and_honest(partial: tuple[pd.DataFrame, dict, dict]) -> None:
    findings, doc, key = partial
    chain = findings[findings["detection"] == "app-abuse"]
    assert list(chain["verdict"]) == ["likely"]
    assert "no directory audit log covers" in chain.iloc[0]["explanation"]
    truth = {m["upn"] for m in key["compromised_mailboxes"]}
    found = {m["upn"] for m in doc["compromised_mailboxes"]}
    assert found <= truth, f"false mailboxes {found - truth}"
    assert found == truth and {m["confidence"] for m in doc["compromised_mailboxes"]} == {"likely"}
    assert not doc["evidence"]["sources"]["directory_audit"]["held"]
    assert any("credentials added to applications" in line for line in doc["evidence"]["cannot_prove"])


def test_same_seed_same_bytes(full: tuple[pd.DataFrame, dict, dict], tmp_path: Path) -> None:
    """The story is as deterministic as the default one: the answer key (SHA-256 of every file) repeats."""
    _, _, key = full
    again = make_tenant(tmp_path / "again")
    assert again["files"] == key["files"] and again["window"] == key["window"]
