"""A real Golden SAML lab dataset written by others (issue 19): OTRF Security-Datasets' "Golden SAML AD FS
Mail Access" (SimuLand), Log Analytics / Sentinel query results of the lab's workspace (tests/data/SOURCES.md).

It imports whole through the CLI; detect and scope then say what those logs can carry: the DKM key was read
(4662 and Defender's LdapSearch, by SIMULANDLABS\\wardog, 13:11-13:13 UTC), the AD FS configuration database
was read over its pipe, the app got credentials and a grant; but the export holds no Entra sign-ins, so no
forged sign-in and no compromised mailbox can be concluded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import TESTDATA, cli

LAB = TESTDATA / "otrf-golden-saml"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("lab") / "case"
    assert cli("case", "init", root, "--tenant", "simulandlabs.com").returncode == 0
    imported = cli("import", root, LAB, "--json", "--no-progress")
    detected = cli("detect", root, "--json", "--no-progress")
    scoped = cli("scope", root, "--json")
    return {"root": root, "import": imported, "detect": detected, "scope": scoped}


def test_imports_whole(lab: dict[str, Any]) -> None:
    r = lab["import"]
    assert r.returncode == 0, r.stderr
    files = {Path(d["path"]).name: d for d in json.loads(r.stdout)}
    assert set(files) == {"AADAuditEvents.json", "Microsoft365DefenderEvents.json", "OfficeActivityEvents.json",
                          "WindowsEvents.json"}
    for d in files.values():
        assert d["quarantined"] == 0 and d["records"] == d["imported"] + d["duplicates"], d
    assert files["WindowsEvents.json"]["imported"] == 38  # SecurityEvent, Event and a 5156 row without Type
    # the duplicates are real: AuditLogs repeats one Id, the MailItemsAccessed is also Defender's CloudAppEvents row
    # (Defender's re-carried copy is read last in a call, so the OfficeActivity record, with its message ids, is kept)
    assert files["AADAuditEvents.json"]["duplicates"] == 1 and files["OfficeActivityEvents.json"]["duplicates"] == 0
    assert files["Microsoft365DefenderEvents.json"]["duplicates"] >= 1
    assert not list((lab["root"] / "quarantine").glob("*.jsonl"))


def test_detect_finds_the_preparation(lab: dict[str, Any]) -> None:
    r = lab["detect"]
    assert r.returncode == 0, r.stderr
    findings = json.loads(r.stdout)["findings"]
    prep = {f["explanation"].split(":")[0]: f for f in findings if f["detection"] == "golden-saml-preparation"}
    dkm = prep["AD FS DKM key read"]
    assert (dkm["verdict"], dkm["user"], dkm["events"]) == ("likely", "simulandlabs\\wardog", 5)
    assert pd.Timestamp(dkm["first"]) == pd.Timestamp("2021-08-02T13:11:39.77Z")
    assert pd.Timestamp(dkm["last"]) == pd.Timestamp("2021-08-02T13:13:11.003Z")
    ldap = next(f for k, f in prep.items() if k.startswith("AD FS DKM key searched over LDAP"))
    assert (ldap["verdict"], ldap["user"], ldap["events"]) == ("likely", "wardog@simulandlabs.com", 2)
    assert any(k.startswith("AD FS configuration database read") for k in prep)
    # no Entra sign-in is held: no federated sign-in can be judged, nothing is confirmed
    assert not any(f["detection"] in ("golden-saml-signin", "golden-saml-access") for f in findings)
    assert not any(f["verdict"] == "confirmed" for f in findings)
    ops = {(f["detection"], f["user"]) for f in findings}
    assert ("persistence-cover", "pgustavo@simulandlabs.com") in ops  # credentials added to SimuLandApp, a grant


def test_scope_concludes_nothing_it_cannot_prove(lab: dict[str, Any]) -> None:
    r = lab["scope"]
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["compromised_mailboxes"] == [] and doc["actor_ips"] == []
    assert "no_user_signins" in doc["evidence"]["limits"]
    assert doc["evidence"]["sources"]["windows_event"]["held"]
    assert doc["findings_by_verdict"].get("likely") == 2
