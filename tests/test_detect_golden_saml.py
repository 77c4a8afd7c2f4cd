"""Golden SAML and Silver SAML detections (issue 19) on hand-built canonical events: federated sign-ins
without AD FS issuance (coverage-dependent exactly as orphan tokens are), the access their tokens carried,
the preparation (DKM read, certificate export, federation change), and the SAML signing-key change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect, prepare
from ir_toolkit.case import Case
from tests.detect_events import at, audit, frame, mail, signin, tenant_background

FEDERATED = json.dumps({"tokenIssuerType": "ADFederationServices", "incomingTokenType": "none"},
                       separators=(",", ":"))
OFFICE, ACTOR = "198.51.100.20", "203.0.113.66"


def adfs(time: pd.Timestamp, user: str, ip: str, event: str = "1200", **extra: Any) -> dict[str, Any]:
    """An AD FS issuance audit as the windows_event map writes it."""
    names = {"1200": "AD FS application token success", "1202": "AD FS fresh credential validation success",
             "299": "AD FS token issued for relying party", "501": "AD FS caller identity claims"}
    row = {"time": time, "source": "windows_event", "operation": f"{event} - {names[event]}", "result": "success",
           "user": user, "ip": ip, "app_name": "AD FS Auditing", "target": "urn:federation:MicrosoftOnline",
           "record_id": f"adfs-{event}-{user}-{time.value}", "raw": "{}"}
    row.update(extra)
    return row


def fed_signin(time: pd.Timestamp, user: str, ip: str, **kw: Any) -> dict[str, Any]:
    return signin(time, user, ip, raw=FEDERATED, **kw)


def ordinary_day(day: int, users: tuple[str, ...] = ("user1@contoso.com", "user2@contoso.com")) -> list[dict]:
    """Each user signs in through AD FS from the office every working hour: issuance, then the sign-in."""
    rows: list[dict] = []
    for hour in range(8, 18):
        for u in users:
            t = at(day, hour)
            rows.append(adfs(t - pd.Timedelta(seconds=20), u, OFFICE))
            rows.append(fed_signin(t, u, OFFICE))
    return rows


def run(case_dir: Path, rows: list[dict], **params: Any) -> pd.DataFrame:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), *rows))
    return detect(case, params=params or None)


def of(findings: pd.DataFrame, detection: str) -> pd.DataFrame:
    return findings[findings["detection"] == detection].reset_index(drop=True)


def test_ordinary_federated_signins_with_issuance_are_not_findings(case_dir: Path) -> None:
    found = run(case_dir, [r for d in range(1, 6) for r in ordinary_day(d)])
    assert of(found, "golden-saml-signin").empty and of(found, "golden-saml-access").empty


def test_forged_signin_inside_adfs_coverage_is_confirmed(case_dir: Path) -> None:
    forged = fed_signin(at(3, 12.5), "user1@contoso.com", ACTOR, session="ses-forged", token="tok-forged")
    refresh = signin(at(3, 13), "user1@contoso.com", ACTOR, session="ses-forged", token="tok-refresh",
                     source="signin_noninteractive")
    reads = [mail(at(3, 13.2 + i / 10), "user1@contoso.com", ACTOR, token="tok-refresh", session="ses-forged",
                  messages=(f"<m{i}@contoso.com>",)) for i in range(3)]
    found = run(case_dir, [*(r for d in range(1, 6) for r in ordinary_day(d)), forged, refresh, *reads])
    sig = of(found, "golden-saml-signin")
    assert len(sig) == 1
    f = sig.iloc[0]
    assert (f["verdict"], f["severity"], f["user"], f["ip"]) == ("confirmed", "critical", "user1@contoso.com", ACTOR)
    assert list(f["evidence"]) == [forged["record_id"]] and "never served" in f["explanation"]
    assert "T1606.002" in list(f["techniques"])
    acc = of(found, "golden-saml-access")
    assert len(acc) == 1
    a = acc.iloc[0]
    # the reads carried the token of the forged session's refresh: tied through the session
    assert (a["verdict"], a["mailbox"], a["events"]) == ("confirmed", "user1@contoso.com", 3)
    assert set(a["evidence"]) == {r["record_id"] for r in reads}


def test_without_adfs_events_the_same_signin_is_unverifiable(case_dir: Path) -> None:
    ordinary = [r for d in range(1, 6) for r in ordinary_day(d) if r["source"] != "windows_event"]
    forged = fed_signin(at(3, 12.5), "user1@contoso.com", ACTOR, session="ses-forged")
    reads = [mail(at(3, 12.7), "user1@contoso.com", ACTOR, session="ses-forged", token="tok-x")]
    found = run(case_dir, [*ordinary, forged, *reads])
    sig = of(found, "golden-saml-signin")
    assert set(sig["verdict"]) == {"unverifiable"} and set(sig["severity"]) == {"low"}
    assert forged["record_id"] in {r for ev in sig["evidence"] for r in ev}
    assert "unverifiable" in sig.iloc[0]["explanation"]
    assert of(found, "golden-saml-access").empty  # access of unverifiable logons is not listed
    assert not (found["verdict"] == "confirmed").any()
    # the evidence profile says what the case cannot prove (and does not once the AD FS log is held)
    assert "no_adfs_audit" in prepare(Case.open(case_dir)).evidence["limits"]
    Case.open(case_dir).write_events(frame(adfs(at(3, 8), "user1@contoso.com", OFFICE)))
    assert "no_adfs_audit" not in prepare(Case.open(case_dir)).evidence["limits"]


def test_outside_adfs_coverage_is_unverifiable(case_dir: Path) -> None:
    """AD FS audits held for days 1-3 only: a sign-in on day 5 cannot be judged."""
    rows = [r for d in range(1, 6) for r in ordinary_day(d)
            if not (r["source"] == "windows_event" and r["time"] > at(4))]
    found = run(case_dir, [*rows, fed_signin(at(5, 20), "user2@contoso.com", ACTOR)])
    sig = of(found, "golden-saml-signin")
    assert set(sig["verdict"]) == {"unverifiable"}  # including the ordinary day-4/5 sign-ins without audits
    assert not (found["verdict"] == "confirmed").any()


def test_a_user_adfs_never_serves_is_unverifiable(case_dir: Path) -> None:
    """A federated sign-in of a domain AD FS audits never name (another farm): not judged."""
    found = run(case_dir, [*(r for d in range(1, 6) for r in ordinary_day(d)),
                           fed_signin(at(3, 12), "ceo@fabrikam.com", ACTOR)])
    sig = of(found, "golden-saml-signin")
    assert list(sig["verdict"]) == ["unverifiable"] and sig.iloc[0]["user"] == "ceo@fabrikam.com"


def test_an_address_adfs_served_without_issuance_is_only_possible(case_dir: Path) -> None:
    found = run(case_dir, [*(r for d in range(1, 6) for r in ordinary_day(d)),
                           fed_signin(at(3, 12), "user2@contoso.com", OFFICE)])
    # the 12:00 sign-in of user2 from the office has its issuance; this one is 10 s later: still matched
    assert of(found, "golden-saml-signin").empty
    found = run(case_dir, [*(r for d in range(1, 6) for r in ordinary_day(d)),
                           fed_signin(at(3, 20), "user2@contoso.com", OFFICE)])
    sig = of(found, "golden-saml-signin")
    assert list(sig["verdict"]) == ["possible"]


def test_issuance_outside_the_match_window_does_not_count(case_dir: Path) -> None:
    rows = [*(r for d in range(1, 6) for r in ordinary_day(d)),
            adfs(at(3, 11), "user1@contoso.com", None),  # type: ignore[arg-type]  # an audit without the client address
            fed_signin(at(3, 11.5), "user1@contoso.com", ACTOR)]
    assert list(of(run(case_dir, rows), "golden-saml-signin")["verdict"]) == ["confirmed"]
    assert of(run(case_dir, rows, adfs_match_minutes=45), "golden-saml-signin").empty


def test_issuance_to_the_user_from_another_address_does_not_vouch(case_dir: Path) -> None:
    """The user's own logon at the office minutes before does not stand behind a sign-in from elsewhere."""
    rows = [*(r for d in range(1, 6) for r in ordinary_day(d)), adfs(at(3, 11.4), "user1@contoso.com", OFFICE),
            fed_signin(at(3, 11.5), "user1@contoso.com", ACTOR)]
    assert list(of(run(case_dir, rows), "golden-saml-signin")["verdict"]) == ["confirmed"]


def test_adfs_2012r2_issuance_joined_to_claims_and_account_names(case_dir: Path) -> None:
    """299 carries no user: the 501 of the same instance id does, as DOMAIN\\name (matched to the UPN's name)."""
    rows = [r for d in range(1, 6) for r in ordinary_day(d)]
    t = at(3, 12)
    rows += [adfs(t - pd.Timedelta(seconds=5), None, None, event="299", session_id="inst-1"),  # type: ignore[arg-type]
             adfs(t - pd.Timedelta(seconds=5), "contoso\\user3", "192.0.2.99", event="501", session_id="inst-1"),
             fed_signin(t, "user3@contoso.com", "192.0.2.99")]
    assert of(run(case_dir, rows), "golden-saml-signin").empty


def test_ual_user_logged_in_of_a_federated_user_is_judged(case_dir: Path) -> None:
    rows = [*(r for d in range(1, 6) for r in ordinary_day(d)),
            {**audit(at(3, 21), "UserLoggedIn", "user2@contoso.com", ACTOR), "result": "Succeeded"},
            {**audit(at(3, 21), "UserLoggedIn", "someone@fabrikam.com", ACTOR), "result": "Succeeded"}]
    sig = of(run(case_dir, rows), "golden-saml-signin")
    assert list(zip(sig["verdict"], sig["user"], strict=True)) == [("confirmed", "user2@contoso.com")]


def test_preparation_dkm_read_certificate_export_and_federation_change(case_dir: Path) -> None:
    dkm = {"time": at(2, 3), "source": "windows_event", "operation": "4662 - An operation was performed on an object",
           "result": "success", "user": "contoso\\mallory", "record_id": "dkm-1", "raw": "{}",
           "target": "%{5cb41ed0-0e4c-11d0-a286-00aa003049e2} %%7684 {8d3bca50-1d7e-11d0-a081-00aa006c33ed}"}
    other_read = {**dkm, "record_id": "dkm-2", "target": "%{bf967aba-0de6-11d0-a285-00aa003049e2} %%7684"}
    export = {**dkm, "operation": "1007 - A certificate was exported", "record_id": "cert-1",
              "target": "CN=ADFS Signing"}
    fed = audit(at(2, 4), "Set federation settings on domain", "admin@contoso.com", ACTOR, target="contoso.com",
                source="directory_audit")
    found = of(run(case_dir, [dkm, other_read, export, fed]), "golden-saml-preparation").set_index("evidence")
    got = {tuple(ev): (v, e) for ev, v, e in zip(found.index, found["verdict"], found["explanation"], strict=True)}
    assert got[("dkm-1",)][0] == "likely" and "DKM key read" in got[("dkm-1",)][1]
    assert got[("cert-1",)][0] == "possible" and got[(fed["record_id"],)][0] == "possible"
    assert ("dkm-2",) not in got


def test_silver_saml_key_change_with_credentials_is_likely(case_dir: Path) -> None:
    def dir_audit(t: pd.Timestamp, op: str, target: str, raw: str = "{}") -> dict[str, Any]:
        return {**audit(t, op, "admin@contoso.com", ACTOR, target=target, source="directory_audit"), "raw": raw}

    key = json.dumps({"targetResources": [{"modifiedProperties": [
        {"displayName": "PreferredTokenSigningKeyThumbprint", "newValue": "\"AB12\""}]}]})
    rows = [dir_audit(at(2, 1), "Add service principal credentials", "Salesforce"),
            dir_audit(at(2, 2), "Update service principal", "Salesforce", key),
            dir_audit(at(3, 2), "Update service principal", "Workday", key),
            dir_audit(at(3, 3), "Update service principal", "Zoom")]
    found = of(run(case_dir, rows), "silver-saml-signing-key").set_index("explanation")
    assert sorted(found["verdict"]) == ["likely", "possible"]
    likely = found[found["verdict"] == "likely"].iloc[0]
    assert len(likely["evidence"]) == 2 and "Salesforce" in likely.name
    assert "Zoom" not in " ".join(found.index)


def test_entra_csv_download_and_saml_incoming_tokens_are_federated(case_dir: Path) -> None:
    """The admin center CSV names the field "Token issuer type"; a SAML incoming token marks one too."""
    csv_row = json.dumps({"Token issuer type": "ADFederationServices"}, separators=(",", ":"))
    saml = json.dumps({"tokenIssuerType": "AzureAD", "incomingTokenType": "saml20"}, separators=(",", ":"))
    rows = [*(r for d in range(1, 6) for r in ordinary_day(d)),
            signin(at(3, 21), "user1@contoso.com", ACTOR, raw=csv_row),
            signin(at(3, 22), "user2@contoso.com", ACTOR, raw=saml),
            signin(at(3, 23), "user2@contoso.com", "192.0.2.200", raw='{"tokenIssuerType":"AzureAD"}')]
    sig = of(run(case_dir, rows), "golden-saml-signin")
    assert sorted(zip(sig["user"], sig["verdict"], strict=True)) == [
        ("user1@contoso.com", "confirmed"), ("user2@contoso.com", "confirmed")]


@pytest.mark.spark
def test_duckdb_and_spark_agree_on_every_member(case_dir: Path, spark: Any) -> None:
    """Forged and ordinary federated sign-ins, 2012 R2 audits, a UAL logon, preparation and Silver SAML."""
    key_raw = json.dumps({"modifiedProperties": [{"displayName": "PreferredTokenSigningKeyThumbprint"}]})
    rows = [*(r for d in range(1, 4) for r in ordinary_day(d)),
            fed_signin(at(2, 12.5), "user1@contoso.com", ACTOR, session="ses-f", token="tok-f"),
            mail(at(2, 12.6), "user1@contoso.com", ACTOR, token="tok-f", session="ses-f", messages=("<a@c>",)),
            fed_signin(at(2, 20), "user2@contoso.com", OFFICE),
            adfs(at(2, 9), None, None, event="299", session_id="inst-9"),  # type: ignore[arg-type]
            adfs(at(2, 9), "contoso\\user3", OFFICE, event="501", session_id="inst-9"),
            fed_signin(at(2, 9), "user3@contoso.com", "192.0.2.99"),
            {**audit(at(2, 21), "UserLoggedIn", "user2@contoso.com", ACTOR), "result": "Succeeded"},
            {"time": at(1, 3), "source": "windows_event", "operation": "4662 - An operation was performed on an object",
             "result": "success", "user": "contoso\\mallory", "record_id": "dkm-1", "raw": "{}",
             "target": "%{5cb41ed0-0e4c-11d0-a286-00aa003049e2} {8d3bca50-1d7e-11d0-a081-00aa006c33ed}"},
            {**audit(at(1, 4), "Add service principal credentials", "a@contoso.com", ACTOR, target="App",
                     source="directory_audit")},
            {**audit(at(1, 5), "Update service principal", "a@contoso.com", ACTOR, target="App",
                     source="directory_audit"), "raw": key_raw}]
    duck = run(case_dir, rows)
    sprk = detect(Case.open(case_dir), write=False, engine="spark", engine_options={"session": spark})

    def key(f: pd.DataFrame) -> list[tuple[Any, ...]]:
        return sorted((r.detection, r.verdict, str(r.user), str(r.mailbox), str(r.ip), int(r.events), str(r.first),
                       r.explanation, tuple(sorted(r.evidence))) for r in f.itertuples(index=False))

    mine = ("golden-saml-signin", "golden-saml-access", "golden-saml-preparation", "silver-saml-signing-key")
    assert set(duck["detection"]) >= set(mine)
    assert key(sprk) == key(duck)


def test_federated_signins_spelled_by_object_id_are_judged_as_their_users(case_dir: Path) -> None:
    """Session 10: every user sign-in's userPrincipalName was the object id (seed 19 golden-saml): no sign-in was
    federated to the pack (no '@'), so all four forged sign-ins went unseen. The tenant snapshot names the ids."""
    oid = {"user1@contoso.com": "00000000-0000-4000-8000-000000000001",
           "user2@contoso.com": "00000000-0000-4000-8000-000000000002"}
    forged = fed_signin(at(3, 12.5), "user1@contoso.com", ACTOR, session="ses-forged", token="tok-forged")
    rows = [*(r for d in range(1, 6) for r in ordinary_day(d)), forged]
    rows = [{**r, "user": oid[r["user"]], "user_id": oid[r["user"]]} if str(r["source"]).startswith("signin_")
            else r for r in rows]
    snapshot = [{"time": at(-300), "source": "tenant_snapshot", "operation": "user", "user": u, "user_id": i,
                 "target": "Member", "record_id": i, "raw": "{}"} for u, i in oid.items()]
    sig = of(run(case_dir, [*rows, *snapshot]), "golden-saml-signin")
    assert list(sig["verdict"]) == ["confirmed"] and list(sig["user"]) == ["user1@contoso.com"]
