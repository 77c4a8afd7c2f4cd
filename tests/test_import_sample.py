"""The committed sample tenant (data/sample-tenant) imports completely and matches its answer key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import DATA

from ir_toolkit.case import Case

TENANT = DATA / "sample-tenant"
KEY = json.loads((TENANT / "answer_key.json").read_text())
ACTOR_APP = next(a["app_id"] for a in KEY["actor_apps"] if a["field"] == "AppId")
ACTOR_CLIENT = next(a["app_id"] for a in KEY["actor_apps"] if a["field"] == "ClientAppId")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, list[dict[str, Any]], pd.DataFrame]:
    case = Case.init(tmp_path_factory.mktemp("sample") / "case", tenant=KEY["tenant"]["domain"])
    results = case.import_files([TENANT / f["path"] for f in KEY["files"]])
    return case, results, case.read_events()


def test_every_file_recognised_nothing_quarantined(imported: tuple[Case, list[dict[str, Any]], pd.DataFrame]) -> None:
    case, results, _ = imported
    assert len(results) == len(KEY["files"])
    for r in results:
        assert r["format"] and r["quarantined"] == 0, r
        assert r["records"] == r["imported"] + r["duplicates"] + r["quarantined"]
    assert case.quarantined().empty
    by_sha = {f["sha256"] for f in KEY["files"]}
    assert {e["sha256"] for e in case.evidence()} == by_sha  # the files the answer key names, unchanged
    assert case.verify() == []


def test_counts_match_the_answer_key(imported: tuple[Case, list[dict[str, Any]], pd.DataFrame]) -> None:
    _, results, events = imported
    counts = events["source"].value_counts()
    want = KEY["tenant"]["records"]
    for source in ("signin_interactive", "signin_noninteractive", "signin_serviceprincipal"):
        assert counts[source] == want[source.replace("signin_", "signins_")]
    assert counts["directory_audit"] == want["directory_audits"]
    assert counts["mail_access"] + counts["audit_other"] == want["unified_audit_log"]
    # the Purview CSV holds the same records as the Graph audit-query pages: all duplicates
    csv = next(r for r in results if r["format"] == "purview-csv")
    assert csv["records"] == want["unified_audit_log"] == csv["duplicates"]
    assert (events["source"] != "tenant_snapshot").sum() == want["events_total"]


@pytest.mark.parametrize("mailbox", KEY["compromised_mailboxes"], ids=lambda m: m["upn"])
def test_actor_mail_access_per_mailbox(imported: tuple[Case, list[dict[str, Any]], pd.DataFrame],
                                       mailbox: dict[str, Any]) -> None:
    _, _, events = imported
    actor = events[(events["source"] == "mail_access") & (events["mailbox"] == mailbox["upn"])
                   & (events["app_id"] == ACTOR_APP) & (events["client_app_id"] == ACTOR_CLIENT)]
    assert len(actor) == mailbox["events"]
    assert (actor["mail_access_type"] == "Bind").sum() == mailbox["bind_records"]
    assert (actor["mail_access_type"] == "Sync").sum() == mailbox["sync_records"]
    binds = actor[actor["mail_access_type"] == "Bind"]
    assert len({m for ids in binds["message_ids"] for m in ids}) == mailbox["items_accessed"]
    assert actor["time"].min() == pd.Timestamp(mailbox["first"])
    assert actor["time"].max() == pd.Timestamp(mailbox["last"])
    mine = events[(events["source"] == "mail_access") & (events["mailbox"] == mailbox["upn"])]
    assert bool(mine["throttled"].any()) == mailbox["throttled"]  # throttling is per mailbox, not per actor


def test_actor_tokens_are_in_no_sign_in(imported: tuple[Case, list[dict[str, Any]], pd.DataFrame]) -> None:
    _, _, events = imported
    signin_tokens = set(events.loc[events["source"].str.startswith("signin_"), "token_id"].dropna())
    for token in KEY["actor_tokens"]:
        used = events[(events["token_id"] == token["token_id"]) & (events["source"] == "mail_access")]
        assert len(used) == token["events"]
        assert (used["token_issued_at"] == pd.Timestamp(token["issued_at"])).all()
        assert (token["token_id"] in signin_tokens) == token["issued_by_entra"]


def test_cli_import_of_the_sample_tenant(tmp_path: Path) -> None:
    from conftest import cli

    case = tmp_path / "case"
    assert cli("case", "init", case, "--tenant", KEY["tenant"]["domain"]).returncode == 0
    files = [TENANT / f["path"] for f in KEY["files"] if "entra/" in f["path"]]
    p = cli("import", case, *files, "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert all(d["records"] == d["imported"] + d["duplicates"] + d["quarantined"] for d in doc)
    assert sum(d["imported"] for d in doc if d["format"] == "graph-signins") == 408 + 5368 + 90
