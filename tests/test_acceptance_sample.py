"""Acceptance (issue 7): detect + scope against the answer key of generated sample tenants.

On the committed sample tenant and two other seeds: every compromised mailbox and actor
address found (recall 1.0), at most one false mailbox and one false address, the window
within one hour of the truth, items accessed exact, and no decoy's mailbox in scope.
The cases are built as a responder builds them: ``ir-toolkit sample make``, then
``Case.init`` and ``Case.import_files`` of the raw logs (once per run, shared with the other
acceptance and Spark tests: tests/acceptance_cases.py).
"""

from __future__ import annotations

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from tests.acceptance_cases import Tenants

SEEDS = (7, 1234)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sample-tenant", *(f"seed-{s}" for s in SEEDS)])
def tenant(request: pytest.FixtureRequest) -> str:
    """The tenant's name in tests/acceptance_cases.py (which also groups the tests for xdist: conftest.py)."""
    return str(request.param)


@pytest.fixture(scope="module")
def scoped(tenant: str, tmp_path_factory: pytest.TempPathFactory, tenants: Tenants) -> tuple[dict, dict]:
    """detect + scope on a copy of the imported tenant (built once per run: tests/acceptance_cases.py)."""
    _, case, key = tenants.copy(tenant, tmp_path_factory.mktemp("acceptance") / "case")
    detect(case)
    return scope(case), key


def _t(value: str) -> pd.Timestamp:
    return pd.Timestamp(value)


@pytest.mark.parametrize(("section", "field"), [("compromised_mailboxes", "upn"), ("actor_ips", "ip")])
def test_recall_one_and_at_most_one_false(scoped: tuple[dict, dict], section: str, field: str) -> None:
    doc, key = scoped
    truth = {m[field] for m in key[section]}
    found = {m[field] for m in doc[section]}
    assert truth <= found, f"{section}: missed {truth - found}"
    assert len(found - truth) <= 1, f"{section}: false {found - truth}"


def test_window_within_an_hour(scoped: tuple[dict, dict]) -> None:
    doc, key = scoped
    for edge in ("first_malicious", "last_malicious"):
        assert abs(_t(doc["window"][edge]) - _t(key["window"][edge])) <= pd.Timedelta(hours=1), edge


def test_items_accessed_exact_and_throttling_flagged(scoped: tuple[dict, dict]) -> None:
    doc, key = scoped
    found = {m["upn"]: m for m in doc["compromised_mailboxes"]}
    for m in key["compromised_mailboxes"]:
        assert found[m["upn"]]["items_accessed"] == m["items_accessed"], m["upn"]
    throttled = [d["entities"]["upn"] for d in key["decoys"] if d["kind"] == "throttled_mailbox"]
    for upn in throttled:
        if upn in found:
            assert found[upn].get("possibly_more") is True


def test_decoys_produce_no_compromised_mailbox(scoped: tuple[dict, dict]) -> None:
    doc, key = scoped
    truth = {m["upn"] for m in key["compromised_mailboxes"]}
    found = {m["upn"] for m in doc["compromised_mailboxes"]}
    decoy_users: set[str] = set()
    for d in key["decoys"]:
        ents = d.get("entities") or {}
        decoy_users |= {u for u in [ents.get("upn"), *(ents.get("users") or [])] if u} - truth
    assert not (found & decoy_users), f"decoys in scope: {found & decoy_users}"
    backup = next((d for d in key["decoys"] if d["kind"] == "backup_app"), None)
    if backup:
        assert not set(backup["entities"].get("ips", [])) & {i["ip"] for i in doc["actor_ips"]}
