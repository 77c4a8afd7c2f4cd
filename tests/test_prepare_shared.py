"""Session 9's cheaper preparation gives what the views gave before (docs/performance.md, 2026-12-08).

Views several others read are computed once (``issued_tokens``, ``issued_sessions``, ``federated_signins``: tables
detect does not keep), ``weak_matches`` and ``rare_apps`` name the rows they read twice or three times once
(``WITH``), ``app_first_seen`` and ``established_apps`` read one grouping of the mail reads (``mailbox_apps``),
and the evidence profile counts hours and files in one scan (``GROUPING SETS``). On a small case whose
rows reach every branch (both weak matches, a rare application, a federated sign-in, two evidence files), each
result equals the one of the former SQL, kept here as the reference.
"""

from __future__ import annotations

import pandas as pd
import pytest

from ir_toolkit.analysis.detections import render
from ir_toolkit.analysis.engine import DuckDBEngine
from ir_toolkit.analysis.evidence import LOG_SOURCES, hourly_and_files
from ir_toolkit.analysis.prepare import Prepared, forget_prepared, prepare
from ir_toolkit.case import Case
from ir_toolkit.sqltext import literal
from tests.detect_events import at, frame, mail, signin

# The SQL before 2026-12-08 (token-forgery.yaml and evidence.py at 70896d9).
OLD_WEAK = """
    SELECT record_id FROM (
      SELECT a.record_id FROM access a JOIN signins s
        ON s.user = a.user AND s.ip = a.ip AND s.app_id = a.app
       AND s.time <= a.time AND s.time >= a.time - INTERVAL '{token_lifetime_minutes}' MINUTE
      WHERE a.token_id IS NULL AND a.session_id IS NULL AND s.result = 'success'
      UNION ALL
      SELECT a.record_id FROM access a JOIN signins s
        ON s.app_id = a.app AND s.ip = a.ip
       AND s.time <= a.time AND s.time >= a.time - INTERVAL '{token_lifetime_minutes}' MINUTE
      WHERE a.token_id IS NULL AND a.session_id IS NULL AND s.result = 'success'
        AND s.source IN ('signin_serviceprincipal', 'signin_managedidentity')
    ) m GROUP BY record_id"""
OLD_RARE = """
    SELECT a.app FROM access a
    JOIN (SELECT ip, count(DISTINCT app) AS apps FROM access
          WHERE source = 'mail_access' AND app_only = 0 AND ip IS NOT NULL AND app IS NOT NULL GROUP BY ip) i
      ON i.ip = a.ip
    CROSS JOIN (SELECT count(DISTINCT mailbox) AS mailboxes FROM access
                WHERE source = 'mail_access' AND app_only = 0) d
    WHERE a.source = 'mail_access' AND a.app_only = 0 AND a.app IS NOT NULL
    GROUP BY a.app, d.mailboxes
    HAVING count(DISTINCT a.mailbox) >= 2 AND count(DISTINCT a.mailbox) * 2 <= d.mailboxes
       AND sum(CASE WHEN i.apps = 1 THEN 1 ELSE 0 END) >= {rare_app_share} * count(*)"""
OLD_FIRST_SEEN = """
    SELECT app, min(time) AS first_seen, count(DISTINCT mailbox) AS mailboxes FROM access
    WHERE source = 'mail_access' GROUP BY app"""
OLD_ESTABLISHED = """
    SELECT a.mailbox, a.app FROM access a LEFT JOIN rare_apps r ON r.app = a.app
    WHERE a.source = 'mail_access' AND a.mailbox IS NOT NULL AND a.app IS NOT NULL AND r.app IS NULL
    GROUP BY a.mailbox, a.app HAVING min(a.time) < {baseline_end}"""
SHARED = ("issued_tokens", "issued_sessions", "federated_signins", "weak_matches", "rare_apps", "mailbox_apps")
USERS = [f"user{i}@contoso.com" for i in range(1, 6)]
RARE_IP, SP_IP = "203.0.113.9", "198.51.100.7"
FEDERATED_RAW = '{"tokenIssuerType":"ADFederationServices","incomingTokenType":"saml11"}'


def _events() -> pd.DataFrame:
    rows = []
    for i, user in enumerate(USERS, 1):  # everyday use: a sign-in issues the token the mailbox reads use
        ip = f"10.0.0.{i}"
        rows.append(signin(at(0, 8), user, ip, token=f"tok-{i}", session=f"ses-{i}", evidence=f"signins.json#{i}"))
        rows += [mail(at(d, 9), user, ip, token=f"tok-{i}", session=f"ses-{i}", evidence=f"mail.csv#{i}-{d}")
                 for d in range(3)]
    rows += [mail(at(5, h), user, RARE_IP, app="app-rare", evidence="mail.csv#rare")  # a rare client, no ids
             for h in (1, 2) for user in USERS[:2]]
    rows.append(signin(at(6, 0.5), USERS[2], "10.0.0.3"))  # weak match by the user ...
    rows.append(mail(at(6, 1), USERS[2], "10.0.0.3"))
    rows.append(mail(at(6, 4), USERS[2], "10.0.0.3"))  # ... and none: too long after the sign-in
    rows.append(signin(at(6, 0.5), "backup", SP_IP, app="app-backup", source="signin_serviceprincipal"))
    rows.append(mail(at(6, 1), USERS[3], SP_IP, app="app-backup", user="backup"))  # weak match by the application
    rows.append(signin(at(7, 8), USERS[0], "10.0.0.1", raw=FEDERATED_RAW))  # a federated sign-in
    return frame(*rows)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    case = Case.init(tmp_path_factory.mktemp("shared") / "case", tenant="contoso.onmicrosoft.com")
    case.write_events(_events())
    forget_prepared()
    return prepare(case)


def _rows(engine: DuckDBEngine, sql: str) -> list[tuple]:
    return sorted(engine.con.execute(sql).fetchall(), key=repr)


def test_shared_views_are_tables_detect_does_not_keep(prepared: Prepared) -> None:
    eng = prepared.engine
    assert isinstance(eng, DuckDBEngine)
    tables = {r[0] for r in eng.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert set(SHARED) <= tables
    assert not {"issued_tokens", "issued_sessions", "federated_signins", "weak_matches", "mailbox_apps"} & set(
        prepared.tables)


def test_rewritten_views_equal_the_former_sql(prepared: Prepared) -> None:
    eng = prepared.engine
    assert isinstance(eng, DuckDBEngine)
    weak = _rows(eng, "SELECT record_id FROM weak_matches")
    assert len(weak) == 2 and weak == _rows(eng, render(OLD_WEAK, prepared.sql_values))
    rare = _rows(eng, "SELECT app FROM rare_apps")
    assert rare == [("app-rare",)] == _rows(eng, render(OLD_RARE, prepared.sql_values))
    first_seen = _rows(eng, "SELECT * FROM app_first_seen")
    assert len(first_seen) == 3 and first_seen == _rows(eng, OLD_FIRST_SEEN)
    established = _rows(eng, "SELECT * FROM established_apps")
    assert len(established) == 6 and ("user1@contoso.com", "app-rare") not in established  # rare: never established
    assert established == _rows(eng, render(OLD_ESTABLISHED, prepared.sql_values))
    assert _rows(eng, "SELECT token_id FROM issued_tokens") == _rows(
        eng, "SELECT DISTINCT token_id FROM signins WHERE token_id IS NOT NULL")
    assert _rows(eng, "SELECT record_id FROM federated_signins") == _rows(
        eng, f"SELECT record_id FROM events WHERE raw = {literal(FEDERATED_RAW)}")


def test_hours_and_files_in_one_scan_equal_the_two_scans(prepared: Prepared) -> None:
    eng = prepared.engine
    hourly, files = hourly_and_files(eng)
    names = literal(list(LOG_SOURCES))
    old_hourly = eng.run_sql(
        f"SELECT source, date_trunc('hour', time) AS hour, count(*) AS events, min(time) AS first, max(time) AS last "
        f"FROM events WHERE source IN ({names}) AND time IS NOT NULL GROUP BY source, date_trunc('hour', time)")
    old_files = eng.run_sql(
        f"SELECT source, split_part(evidence, '#', 1) AS file, min(time) AS first, max(time) AS last, "
        f"count(*) AS events FROM events WHERE source IN ({names}) AND time IS NOT NULL "
        f"GROUP BY source, split_part(evidence, '#', 1)")
    assert set(files["file"].dropna()) == {"signins.json", "mail.csv"} and files["file"].isna().any()
    for new, old, keys in ((hourly, old_hourly, ["source", "hour"]), (files, old_files, ["source", "file"])):
        assert list(new.columns) == list(old.columns)
        pd.testing.assert_frame_equal(new.sort_values(keys, na_position="last").reset_index(drop=True),
                                      old.sort_values(keys, na_position="last").reset_index(drop=True))
