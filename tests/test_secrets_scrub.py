"""One scrubber for every text that is stored or shown: token shapes, secret key names, linear time."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ir_toolkit.case import Case
from ir_toolkit.textsafe import REDACTED, remember_secret, scrub, scrub_text


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


JWT = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64({'aud': 'https://graph.microsoft.com'})}.c2lnbmF0dXJl"
CLIENT_SECRET = "abc8Q~" + "x1Y2z3-_." * 4  # the Entra client secret shape: 3 chars, a digit, Q~, 34 more


@pytest.mark.parametrize("text,kept", [
    (f"HTTP 401: token {JWT} is expired", "HTTP 401: token [redacted] is expired"),
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer [redacted]"),
    ("authorization: bearer opaque-value-123456", "authorization: bearer [redacted]"),
    (f"secret={CLIENT_SECRET}&x=1", "secret=[redacted]&x=1"),
    ('{"client_secret": "hunter2hunter2", "client_secret_env": "COLLECT_SECRET"}',
     '{"client_secret": "[redacted]", "client_secret_env": "COLLECT_SECRET"}'),
    ("refresh_token=0.AXoA-abc&password: p4ss", "refresh_token=[redacted]&password: [redacted]"),
    (f"unsigned eyJhbGciOiJub25lIn0.{_b64({'sub': 'x'})}. end", "unsigned [redacted] end"),
])
def test_token_shapes_are_scrubbed(text: str, kept: str) -> None:
    assert scrub_text(text) == kept


@pytest.mark.parametrize("text", [
    "sha256 " + "ab" * 32,                                    # hashes stay readable in custody
    "https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=eyJ0b2tlbiI6IjEyMyJ9",  # opaque, no dots
    "orphan-token/confirmed: 3, token_id ZmFrZS11dGk, bearer of bad news",
    "eyJ.eyJ.eyJ short", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)",
])
def test_ordinary_text_is_kept(text: str) -> None:
    assert scrub_text(text) == text


def test_remembered_secrets_are_scrubbed_whatever_their_shape() -> None:
    remember_secret("plain-opaque-secret-value")
    remember_secret("short")  # too short to tell from other text: ignored
    assert scrub_text("echo: plain-opaque-secret-value!") == f"echo: {REDACTED}!"
    assert scrub_text("a short text") == "a short text"


def test_scrub_by_exact_key_names_and_value_shapes_not_by_substrings() -> None:
    doc = {"orphan-token/confirmed": 3, "token_id": "uti-1", "tokens_scanned": 2, "key_vault": "kv1",
           "client_secret": "s3cr3t", "Password": "p", "access_token": "eyJabc",
           "nested": {"errors": [f"Bearer {JWT}", {"refresh_token": "r"}]}, "client_secret_env": "VAR"}
    out = scrub(doc)
    assert out["orphan-token/confirmed"] == 3 and out["token_id"] == "uti-1" and out["tokens_scanned"] == 2
    assert out["key_vault"] == "kv1" and out["client_secret_env"] == "VAR"
    assert out["client_secret"] == out["Password"] == out["access_token"] == REDACTED
    assert out["nested"] == {"errors": [f"Bearer {REDACTED}", {"refresh_token": REDACTED}]}


def test_custody_keeps_counts_named_after_tokens_and_drops_secrets(case_dir: Path) -> None:
    case = Case.open(case_dir)
    case.log_action("detect", counts={"orphan-token/confirmed": 4, "forged-token/likely": 1},
                    error=f"HTTP 401 {JWT}", client_secret="s3cr3t-value")
    entry = case.custody()[-1]
    assert entry["details"]["counts"] == {"orphan-token/confirmed": 4, "forged-token/likely": 1}
    assert entry["details"]["error"] == f"HTTP 401 {REDACTED}" and entry["details"]["client_secret"] == REDACTED
    text = (case_dir / "custody.log").read_text()
    assert JWT not in text and "s3cr3t-value" not in text


def test_case_json_never_holds_a_token(case_dir: Path) -> None:
    case = Case.open(case_dir)
    case.manifest["collection"]["ledger"] = [{"gap": f"HTTP 400: echo {JWT}"}]
    case.save()
    text = (case_dir / "case.json").read_text()
    assert JWT not in text and json.loads(text)["collection"]["ledger"][0]["gap"] == f"HTTP 400: echo {REDACTED}"


@pytest.mark.parametrize("hostile", ["eyJ" * 100_000, "eyJ." * 100_000, ("eyJ" + "a" * 10 + ".") * 30_000,
                                     "1Q~" * 100_000, "bearer " * 50_000, "password=" * 40_000,
                                     "a" * 400_000])
def test_hostile_long_strings_finish_and_keep_their_length_bound(hostile: str) -> None:
    """Linear by construction (no backtracking); timing belongs to benchmarks, so this only checks it ends
    with a sane result on inputs that make a backtracking pattern run for minutes."""
    out = scrub_text(hostile)
    assert len(out) <= len(hostile) + len(REDACTED)
