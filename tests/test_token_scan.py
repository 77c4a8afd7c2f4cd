"""Token scanning (logs, HAR), the token CLI, case events and findings, and --online against a local server."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.case import Case
from ir_toolkit.tokens import build_catalogue, scan_files, scan_text
from tests.conftest import cli
from tests.token_factory import CONSUMER_ISSUER, LONG_AGO, TENANT, V2_TEMPLATE, claims, jwk, rsa_key, sign, write_jwks

FORGED_UTI = "ForgedUti_0000000000A"


@pytest.fixture
def jwks(tmp_path: Path) -> Path:
    return write_jwks(tmp_path / "keys.jwks.json", jwk(rsa_key(0), "ent", V2_TEMPLATE, LONG_AGO),
                      jwk(rsa_key(1), "msa", CONSUMER_ISSUER, LONG_AGO))


@pytest.fixture
def tokens() -> dict[str, str]:
    return {
        "valid": sign(claims(), rsa_key(0), "ent"),
        "forged": sign(claims(uti=FORGED_UTI, sid="forged-session-1", upn="=HYPERLINK(\"x\")"), rsa_key(1), "msa"),
        "invalid": sign(claims(uti="Spoofed_000000000000B"), rsa_key(4), "ent"),
    }


def _har(tokens: dict[str, str]) -> dict[str, object]:
    def entry(t: str, url: str, **request: object) -> dict[str, object]:
        return {"startedDateTime": t, "request": {"method": "GET", "url": url, "headers": [], "cookies": [],
                                                   **request}, "response": {"status": 200, "headers": []}}
    return {"log": {"version": "1.2", "entries": [
        entry("2023-06-16T02:00:00.000Z", "https://outlook.office.com/owa/service.svc?action=GetConversationItems",
              headers=[{"name": "Authorization", "value": f"Bearer {tokens['forged']}"}]),
        entry("2023-06-16T03:00:00.000Z", f"https://outlook.office.com/mail/?access_token={tokens['forged']}"),
        entry("2023-06-16T04:00:00.000Z", "https://outlook.office.com/api/v2.0/me",
              cookies=[{"name": "token", "value": tokens["valid"]}]),
    ]}}


def _no_token_text(text: str, tokens: dict[str, str]) -> None:
    for t in tokens.values():
        assert t not in text
        assert t.split(".")[2] not in text  # not even the signature


def test_scan_text_judges_each_distinct_token_once(jwks: Path, tokens: dict[str, str]) -> None:
    text = (f"10:00 GET /mail auth={tokens['forged']}\nnoise eyJnotatoken\n"
            f"10:01 {tokens['valid']} and again {tokens['forged']}\n10:02 {tokens['invalid']}\n")
    results = scan_text(text, [jwks], name="proxy.log")
    by_verdict = {r["verdict"]: r for r in results}
    assert set(by_verdict) == {"valid", "forged", "invalid_signature"}
    forged = by_verdict["forged"]
    assert forged["occurrences"] == 2 and forged["locations"] == ["proxy.log:1", "proxy.log:3"]
    _no_token_text(json.dumps(results), tokens)
    shown = scan_text(text, catalogue=build_catalogue([jwks]), show_token=True)
    assert {r["token"] for r in shown} == set(tokens.values())


def test_scan_log_file_skips_truncated_token_like_strings(tmp_path: Path, jwks: Path, tokens: dict[str, str]) -> None:
    log = tmp_path / "web.log"
    log.write_text(f"a {tokens['valid']}\nb eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4I.\nc {tokens['valid'][:-3]}\n")
    results = scan_files([log], [jwks])
    assert [r["verdict"] for r in results] == ["valid", "invalid_signature"]  # the one cut short in the log
    assert results[0]["locations"] == [f"{log}:1"]


def test_scan_har_places_tokens_in_requests(tmp_path: Path, jwks: Path, tokens: dict[str, str]) -> None:
    har = tmp_path / "session.har"
    har.write_text(json.dumps(_har(tokens), indent=1))
    results = {r["verdict"]: r for r in scan_files([har], [jwks])}
    forged = results["forged"]
    assert forged["occurrences"] == 2
    assert forged["locations"][0] == (f"{har} entry 0 (GET https://outlook.office.com/owa/service.svc) "
                                      "request header Authorization")
    assert forged["locations"][1].endswith("url") and "access_token" not in forged["locations"][1]
    assert forged["first_seen"].startswith("2023-06-16T02:00") and forged["last_seen"].startswith("2023-06-16T03:00")
    assert "request cookie token" in results["valid"]["locations"][0]


def test_cli_scan_table_csv_is_formula_safe_and_holds_no_token(tmp_path: Path, jwks: Path,
                                                               tokens: dict[str, str]) -> None:
    log = tmp_path / "proxy.log"
    log.write_text("\n".join(tokens.values()) + "\n")
    out = tmp_path / "tokens.csv"
    r = cli("token", "scan", log, "--jwks", jwks, "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "3 token(s) in 1 file(s)" in r.stdout and "forged" in r.stdout
    _no_token_text(r.stdout + r.stderr + out.read_text(), tokens)
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    forged = next(row for row in rows if row["verdict"] == "forged")
    assert forged["user"].startswith("'=") and forged["uti"] == FORGED_UTI
    r2 = cli("token", "scan", log, "--jwks", jwks, "--json", "--show-token", "--no-progress")
    doc = json.loads(r2.stdout)
    assert doc["tokens"] == 3 and {x["token"] for x in doc["results"]} == set(tokens.values())


def test_cli_scan_into_a_case_links_by_uti(case_dir: Path, tmp_path: Path, jwks: Path, tokens: dict[str, str]) -> None:
    case = Case.open(case_dir)
    case.write_events(pd.DataFrame([{
        "time": pd.Timestamp("2023-06-16T02:05:00Z"), "source": "mail_access", "operation": "MailItemsAccessed",
        "mailbox": "adele.vance@contoso.com", "token_id": FORGED_UTI, "record_id": "ual-1", "raw": "{}"}]))
    har = tmp_path / "session.har"
    har.write_text(json.dumps(_har(tokens)))
    log = tmp_path / "proxy.log"
    log.write_text(tokens["invalid"] + "\n")
    r = cli("token", "scan", har, log, "--jwks", jwks, "--case", case_dir, "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["case"]["events_stored"] == 3 and doc["case"]["findings"] == 2
    events = Case.open(case_dir).read_events(sources=["token"])
    forged = events[events["result"] == "forged"].iloc[0]
    assert forged["token_id"] == FORGED_UTI and forged["session_id"] == "forged-session-1"
    assert forged["time"] == pd.Timestamp("2023-06-15T01:30:00Z") and forged["app_id"].islower()
    raw = json.loads(forged["raw"])
    assert raw["claims"]["uti"] == FORGED_UTI and raw["verdict"] == "forged"
    findings = pd.read_parquet(case_dir / "token_findings.parquet")
    f = findings[findings["detection"] == "token-forged"].iloc[0]
    assert f["verdict"] == "confirmed" and f["events"] == 1 and "ual-1" in list(f["evidence"])
    assert f["mailbox"] == "adele.vance@contoso.com" and f["token_id"] == FORGED_UTI
    assert set(findings["detection"]) == {"token-forged", "token-invalid-signature"}
    custody = [e for e in Case.open(case_dir).custody() if e.get("action") == "token.scan"]
    details = custody[0]["details"]
    assert len(details["files"]) == 2 and len(details["files"][0]["sha256"]) == 64 and details["judged"] == 3
    assert Case.open(case_dir).verify() == []  # token events and findings are recorded in the custody chain
    # nothing in the case folder holds a token
    for path in case_dir.rglob("*"):
        if path.is_file():
            _no_token_text(path.read_bytes().decode("utf-8", "replace"), tokens)
    # scanning again adds no duplicate events or findings
    again = json.loads(cli("token", "scan", har, log, "--jwks", jwks, "--case", case_dir, "--json",
                           "--no-progress").stdout)
    assert again["case"]["events_stored"] == 0 and again["case"]["findings"] == 2


def test_cli_inspect_json_contract(jwks: Path, tokens: dict[str, str]) -> None:
    r = cli("token", "inspect", tokens["forged"], "--jwks", jwks, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "forged" and doc["signature"] == "valid"
    assert set(doc["key"]) >= {"kid", "x5t", "issuer", "kind", "compromised", "not_before", "not_after", "source"}
    assert set(doc["claims"]) >= {"iss", "tid", "aud", "appid", "azp", "upn", "unique_name", "uti", "sid", "iat",
                                  "nbf", "exp"}
    assert doc["key"]["kind"] == "consumer" and doc["claims"]["tid"] == TENANT and doc["reasons"]
    _no_token_text(r.stdout, tokens)


def test_cli_inspect_text_from_file_and_stdin(tmp_path: Path, jwks: Path, tokens: dict[str, str]) -> None:
    f = tmp_path / "token.txt"
    f.write_text(f"Authorization: Bearer {tokens['valid']}\n")
    r = cli("token", "inspect", f, "--jwks", jwks)
    assert r.returncode == 0 and "VALID" in r.stdout and "sha256:" in r.stdout
    _no_token_text(r.stdout, tokens)
    r2 = cli("token", "inspect", "-", "--jwks", jwks, "--show-token", input=tokens["forged"])
    assert "FORGED" in r2.stdout and tokens["forged"] in r2.stdout
    two = tmp_path / "two.txt"
    two.write_text(tokens["valid"] + "\n" + tokens["forged"])
    r3 = cli("token", "inspect", two)
    assert r3.returncode == 2 and "token scan" in r3.stderr and r3.stderr.count("\n") == 1


@pytest.mark.parametrize("token", [
    "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0",
    "eyJ!!!.eyJ0aWQiOiJ4In0.c2ln",
    "eyJ" + "A" * 9000 + ".eyJ0aWQiOiJ4In0.c2ln",
    "not-a-token-nor-a-file",
])
def test_cli_malformed_token_is_one_line_exit_2(token: str) -> None:
    r = cli("token", "inspect", token)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert token[:40] not in r.stderr or token == "not-a-token-nor-a-file"


def test_cli_keys_lists_the_compromised_key() -> None:
    r = cli("token", "keys", "--json")
    keys = json.loads(r.stdout)
    storm = [k for k in keys if k["compromised"]]
    assert len(keys) == 43 and storm[0]["kid"] == "1LTMzakihiRla_8z2BEJVXeWMqo"
    assert storm[0]["not_after"].startswith("2021-04-04")


@pytest.fixture
def key_server(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server answering a discovery keys document (never the internet)."""
    body = json.dumps({"keys": [jwk(rsa_key(9), "online-kid", V2_TEMPLATE, LONG_AGO)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/common/discovery/v2.0/keys":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_online_refresh_from_a_local_server(key_server: str) -> None:
    token = sign(claims(), rsa_key(9), "online-kid")
    offline = cli("token", "inspect", token, "--json")
    assert json.loads(offline.stdout)["verdict"] == "unknown_key"
    url = f"{key_server}/common/discovery/v2.0/keys"
    online = cli("token", "inspect", token, "--online", "--discovery-url", url, "--json")
    doc = json.loads(online.stdout)
    assert doc["verdict"] == "valid" and doc["key"]["source"] == f"online:{url}" and doc["key"]["kind"] == "enterprise"
    missing = cli("token", "inspect", token, "--online", "--discovery-url", f"{key_server}/nope")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "could not fetch" in missing.stderr


def test_cli_text_output_escapes_control_characters_in_claims(tmp_path: Path, jwks: Path) -> None:
    token = sign(claims(upn="evil\nverdict: VALID\x1b[2J"), rsa_key(0), "ent")
    r = cli("token", "inspect", token, "--jwks", jwks)
    assert r.returncode == 0
    assert "\x1b" not in r.stdout and "\nverdict: VALID" not in r.stdout and "evil\\x0averdict" in r.stdout
    log = tmp_path / "x.log"
    log.write_text(token + "\n")
    scan = cli("token", "scan", log, "--jwks", jwks, "--no-progress")
    assert "\x1b" not in scan.stdout and "evil\\x0a" in scan.stdout
