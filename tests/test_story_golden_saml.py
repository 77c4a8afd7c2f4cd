"""The ``golden-saml`` sample story (issue 19), generated once for the module: a federated tenant whose every
ordinary sign-in has its AD FS audits, forged SAML sign-ins without any, then mail reads. Scoped exactly
with the AD FS audit log; without it the same sign-ins are unverifiable. Spark's findings and scope on this story
are tests/test_detect_spark.py's (every story in one case)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.conftest import cli

ARGS = ("--seed", "19", "--users", "14", "--days", "35", "--no-progress")


def _logs(tenant: Path, windows: bool) -> list[Path]:
    files = [p for p in sorted(tenant.rglob("*")) if p.is_file() and p.suffix in (".json", ".gz", ".csv")
             and p.name != "answer_key.json"]
    return [p for p in files if windows or "windows" not in p.parts]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tenant (made by the CLI), then one case: detect and scope without the AD FS log, then with it."""
    base = tmp_path_factory.mktemp("golden-saml")
    tenant = base / "tenant"
    made = cli("sample", "make", tenant, "--story", "golden-saml", *ARGS)
    assert made.returncode == 0, made.stderr
    key = json.loads((tenant / "answer_key.json").read_text(encoding="utf-8"))
    case = Case.init(base / "case", tenant="sample")
    imported = case.import_files(_logs(tenant, windows=False))
    without = detect(case, write=False)
    imported += case.import_files(_logs(tenant, windows=True))
    found = detect(case)
    return {"tenant": tenant, "key": key, "case": case, "imported": imported, "without": without,
            "findings": found, "scope": scope(case, found)}


def test_every_file_imports_whole(story: dict[str, Any]) -> None:
    for r in story["imported"]:
        assert r["quarantined"] == 0 and r["status"] in ("imported", "already-imported"), r
    security = [r for r in story["imported"] if r["path"].endswith("SecurityEvent.json")]
    assert security and security[-1]["format"] == "log-analytics-json" and security[-1]["imported"] > 100


def test_answer_key_holds_the_truth(story: dict[str, Any]) -> None:
    key = story["key"]
    truth = key["golden_saml"]
    assert key["tenant"]["story"] == "golden-saml" and truth["dkm_read"]["event"] == 4662
    assert truth["forged_signins"] and all(not f["adfs_issuance"] for f in truth["forged_signins"])
    assert {f["upn"] for f in truth["forged_signins"]} == {m["upn"] for m in key["compromised_mailboxes"]}
    assert any(d["kind"] == "federated_signins" for d in key["decoys"])
    # the written logs agree: every ordinary interactive sign-in is federated and has its 1200 audit; the
    # forged ones have none
    events = story["case"].read_events(columns=["time", "source", "operation", "user", "ip", "raw"])
    signins = events[(events["source"] == "signin_interactive") & events["raw"].str.contains('"errorCode":0')]
    assert signins["raw"].str.contains('"tokenIssuerType":"ADFederationServices"').all()
    issued = events[events["operation"].str.startswith("1200 - AD FS", na=False)]
    forged = {(f["upn"], pd.Timestamp(f["time"])) for f in truth["forged_signins"]}
    ordinary = signins[[(u, t.floor("s")) not in forged for u, t in zip(signins["user"], signins["time"], strict=True)]]
    assert len(issued) == len(ordinary) and len(ordinary) > 50
    for upn, t in forged:
        near = issued[(issued["user"] == upn) & ((issued["time"] - t).abs() < pd.Timedelta(hours=1))]
        assert near.empty


def test_scope_is_exact(story: dict[str, Any]) -> None:
    key, doc = story["key"], story["scope"]
    truth = {m["upn"] for m in key["compromised_mailboxes"]}
    found = {m["upn"] for m in doc["compromised_mailboxes"]}
    assert truth <= found and len(found - truth) <= 1
    ips = {i["ip"] for i in doc["actor_ips"]}
    assert len(ips - {i["ip"] for i in key["actor_ips"]}) <= 1
    for edge in ("first_malicious", "last_malicious"):
        gap = abs(pd.Timestamp(doc["window"][edge]) - pd.Timestamp(key["window"][edge]))
        assert gap <= pd.Timedelta(hours=1), (edge, doc["window"], key["window"])
    mine = [m for m in doc["compromised_mailboxes"] if m["upn"] in truth]
    assert all(m["confidence"] == "confirmed" for m in mine)


def test_findings_name_the_forged_signins_and_the_preparation(story: dict[str, Any]) -> None:
    found, truth = story["findings"], story["key"]["golden_saml"]
    sig = found[(found["detection"] == "golden-saml-signin") & (found["verdict"] == "confirmed")]
    assert {(u, i) for u, i in zip(sig["user"], sig["ip"], strict=True)} == \
        {(f["upn"], f["ip"]) for f in truth["forged_signins"]}
    prep = found[found["detection"] == "golden-saml-preparation"]
    assert list(prep["verdict"]) == ["likely"] and prep.iloc[0]["first"] == pd.Timestamp(truth["dkm_read"]["time"])
    # the decoy: hundreds of federated sign-ins with their AD FS issuance, none reported
    assert set(found[found["detection"].str.startswith("golden-saml")]["verdict"]) <= {"confirmed", "likely"}


def test_without_adfs_events_the_same_signins_are_unverifiable(story: dict[str, Any]) -> None:
    without, truth = story["without"], story["key"]["golden_saml"]
    sig = without[without["detection"] == "golden-saml-signin"]
    assert set(sig["verdict"]) == {"unverifiable"}
    assert {(f["upn"], f["ip"]) for f in truth["forged_signins"]} <= set(zip(sig["user"], sig["ip"], strict=True))
    assert not without["detection"].isin(["golden-saml-access", "golden-saml-preparation"]).any()
    assert not (without["detection"].str.startswith("golden-saml") & (without["verdict"] == "confirmed")).any()

