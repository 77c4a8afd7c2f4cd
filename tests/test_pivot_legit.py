"""The sign-ins' legitimate use, probed in one scan, is what the pack's sign-in views say it is."""

from __future__ import annotations

from pathlib import Path

from ir_toolkit.analysis.pivot import legitimate_pairs
from ir_toolkit.analysis.prepare import forget_prepared, prepare
from ir_toolkit.case import Case
from tests.detect_events import at, frame, signin


def test_signin_probe_vouches_as_the_pack_views_do(case_dir: Path) -> None:
    case = Case.open(case_dir)
    case.write_events(frame(
        signin(at(1), "ann@contoso.com", "192.0.2.10", app="App-Good", token="tok-ok", session="ses-ok",
               ua="Outlook-Good"),
        signin(at(1, 2), "ann@contoso.com", "192.0.2.66", app="App-Failed", token="tok-failed", session="ses-failed",
               ua="Client-Failed", result="failure"),
        signin(at(2), "svc-app", "192.0.2.20", app="App-SP", token="tok-sp", session="ses-sp",
               source="signin_serviceprincipal", ua="SP-Agent"),
    ))
    forget_prepared()
    prep = prepare(case)
    cands = [("ip", "192.0.2.10"), ("ip", "192.0.2.66"), ("ip", "192.0.2.20"), ("ip", "203.0.113.9"),
             ("app", "app-good"), ("app", "app-failed"), ("app", "App-Good"), ("app", "app-sp"),
             ("user_agent", "Outlook-Good"), ("user_agent", "Client-Failed"),
             ("token", "tok-ok"), ("token", "tok-failed"), ("token", "tok-none"),
             ("session", "ses-ok"), ("session", "ses-failed"), ("session", "ses-none"),
             ("exchange_session", "tok-ok")]
    # what the pack's views vouch for: successful sign-ins' addresses, apps (lower case) and agents; any
    # sign-in's token and session ids (issued_tokens, issued_sessions)
    views = prep.engine.run_sql(
        "SELECT 'ip' AS kind, ip AS value FROM signins WHERE result = 'success' "
        "UNION SELECT 'app', lower(app_id) FROM signins WHERE result = 'success' "
        "UNION SELECT 'user_agent', user_agent FROM signins WHERE result = 'success' "
        "UNION SELECT 'token', token_id FROM issued_tokens UNION SELECT 'session', session_id FROM issued_sessions")
    expected = {(str(k), str(v)) for k, v in zip(views["kind"], views["value"], strict=True)} & set(cands)
    assert legitimate_pairs(prep.engine, cands) == expected
    assert expected == {("ip", "192.0.2.10"), ("ip", "192.0.2.20"), ("app", "app-good"), ("app", "app-sp"),
                        ("user_agent", "Outlook-Good"), ("token", "tok-ok"), ("token", "tok-failed"),
                        ("token", "tok-sp"), ("session", "ses-ok"), ("session", "ses-failed")} & set(cands)
