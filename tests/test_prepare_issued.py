"""Session 10's cheaper preparation gives what the views gave before (docs/performance.md, 2026-12-08).

``issued_access`` is no longer a table: what is read of it (familiar applications and addresses, the mailboxes'
addresses) is one ``GROUPING SETS`` scan (``issued_keys``), and scope reads the Exchange sessions of issued access
from ``access_judged`` (its issuance 'issued'); the inbox rules' raw records are read once (``rule_raws``) for
``rule_signs`` and ``hiding-inbox-rule``; ``access_judged``'s kept columns go to CASE/cache/ as Parquet. On a small
case whose rows reach every branch (a token a sign-in issued, a session without a token id, a token no sign-in
issued, access without a user or an address, inbox rules that hide mail and one that does not), each result equals
the one of the former SQL, kept here as the reference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.analysis.detections import render
from ir_toolkit.analysis.engine import DuckDBEngine
from ir_toolkit.analysis.prepare import Prepared, forget_prepared, keep_prepared, prepare
from ir_toolkit.analysis.reuse import CACHE_DIR, PREPARED_JSON, load_prepared, parquet_name
from ir_toolkit.case import Case
from ir_toolkit.sqltext import literal
from ir_toolkit.timeutil import iso, parse_time
from tests.detect_events import at, frame, inbox_rule, mail, signin

# The SQL before 2026-12-08 (token-forgery.yaml at daee30d).
OLD_ISSUED = """
    SELECT a.user, a.mailbox, a.app, a.ip, a.exchange_session_id FROM access a
    LEFT JOIN issued_tokens it ON it.token_id = a.token_id
    LEFT JOIN issued_sessions iss ON iss.session_id = a.session_id
    WHERE it.token_id IS NOT NULL OR (a.token_id IS NULL AND iss.session_id IS NOT NULL)"""
OLD_FAMILIAR_APPS = f"SELECT DISTINCT user, app FROM ({OLD_ISSUED}) i WHERE user IS NOT NULL AND app IS NOT NULL"
OLD_FAMILIAR_IPS = f"SELECT DISTINCT user, ip FROM ({OLD_ISSUED}) i WHERE user IS NOT NULL AND ip IS NOT NULL"
OLD_MAILBOX_IPS = f"SELECT DISTINCT mailbox, ip FROM ({OLD_ISSUED}) i WHERE mailbox IS NOT NULL AND ip IS NOT NULL"
OLD_RULE_SIGNS = """
    SELECT r.record_id,
           max(CASE WHEN p.sign = 'deletes' THEN 1 ELSE 0 END) AS deletes,
           max(CASE WHEN p.sign = 'moves' THEN 1 ELSE 0 END) AS moves,
           max(CASE WHEN p.sign = 'reads' THEN 1 ELSE 0 END) AS reads,
           max(CASE WHEN p.sign = 'forwards' THEN 1 ELSE 0 END) AS forwards,
           max(CASE WHEN p.sign = 'words' THEN 1 ELSE 0 END) AS words
    FROM cover_up_events r JOIN events e ON e.record_id = r.record_id AND e.source = 'audit_other'
    JOIN hiding_rule_patterns p ON lower(e.raw) LIKE p.pattern
    WHERE r.kind = 'rule'
    GROUP BY r.record_id"""
USERS = [f"user{i}@contoso.com" for i in range(1, 4)]
ACTOR_IP = "203.0.113.66"


def _events() -> pd.DataFrame:
    rows = []
    for i, user in enumerate(USERS, 1):
        ip = f"10.0.0.{i}"
        rows.append(signin(at(0, 8), user, ip, token=f"tok-{i}", session=f"ses-{i}"))
        rows += [mail(at(d, 9), user, ip, token=f"tok-{i}", session=f"ses-{i}", exchange_session_id=f"ex-{i}-{d}")
                 for d in range(3)]  # issued by its token
        rows.append(mail(at(4, 9), user, ip, session=f"ses-{i}", app="app-mobile",  # issued by its session only
                         exchange_session_id=f"ex-s-{i}"))
    rows.append(mail(at(4, 10), USERS[0], "10.0.0.9", token="tok-9", session="ses-1"))  # a refresh, no sign-in
    rows.append({**mail(at(4, 11), USERS[1], "10.0.0.2", token="tok-2"), "ip": None})  # no address
    rows.append({**mail(at(4, 12), USERS[2], "10.0.0.3", token="tok-3", user="svc"), "app_id": None})  # no app, UPN
    rows.append(mail(at(5, 1), USERS[0], ACTOR_IP, token="forged-1", exchange_session_id="ex-actor"))
    hides = inbox_rule(at(5, 2), USERS[0], ACTOR_IP, "x", {"DeleteMessage": "True", "SubjectContainsWords": "alert"},
                       token="forged-1")
    rows.append(hides)
    rows.append(inbox_rule(at(5, 3), USERS[1], "10.0.0.2", "y", {"MoveToFolder": "Archive"},
                           operation="UpdateInboxRules"))
    rows.append(inbox_rule(at(5, 4), USERS[2], "10.0.0.3", "z", {"FlagMessage": "True"}, operation="Set-InboxRule"))
    return frame(*rows)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    case = Case.init(tmp_path_factory.mktemp("issued") / "case", tenant="contoso.onmicrosoft.com")
    case.write_events(_events())
    forget_prepared()
    return prepare(case)


def _rows(engine: DuckDBEngine, sql: str) -> list[tuple]:
    return sorted(engine.con.execute(sql).fetchall(), key=repr)


def test_issued_keys_equal_the_former_issued_access(prepared: Prepared) -> None:
    eng = prepared.engine
    assert isinstance(eng, DuckDBEngine)
    assert "issued_access" not in prepared.tables and "issued_keys" not in prepared.tables  # nothing of it kept
    apps = _rows(eng, "SELECT user, app FROM familiar_apps")
    assert ("user1@contoso.com", "app-mobile") in apps and len(apps) == 6  # token and session issuance both count
    assert apps == _rows(eng, OLD_FAMILIAR_APPS)
    ips = _rows(eng, "SELECT user, ip FROM familiar_ips")
    assert ("user1@contoso.com", "10.0.0.9") not in ips and ("svc", "10.0.0.3") in ips
    assert ips == _rows(eng, OLD_FAMILIAR_IPS)
    mailbox_ips = _rows(eng, "SELECT mailbox, ip FROM issued_keys WHERE kind = 'mailbox'")
    assert len(mailbox_ips) == 3 and mailbox_ips == _rows(eng, OLD_MAILBOX_IPS)
    history = _rows(eng, "SELECT mailbox, ip FROM mailbox_history")
    assert set(mailbox_ips) <= set(history)
    # scope's Exchange sessions of issued access: access_judged's rows of issuance 'issued'
    sessions = _rows(eng, "SELECT DISTINCT exchange_session_id FROM access_judged WHERE issuance = 'issued' "
                          "AND exchange_session_id IS NOT NULL")
    assert ("ex-actor",) not in sessions and ("ex-s-1",) in sessions and len(sessions) == 12
    assert sessions == _rows(eng, f"SELECT DISTINCT exchange_session_id FROM ({OLD_ISSUED}) i "
                                  "WHERE exchange_session_id IS NOT NULL")


def test_rule_raws_read_once_equal_the_former_join(prepared: Prepared) -> None:
    eng = prepared.engine
    assert isinstance(eng, DuckDBEngine)
    signs = _rows(eng, "SELECT * FROM rule_signs")
    assert len(signs) == 2 and signs == _rows(eng, OLD_RULE_SIGNS)
    det = prepared.pack.detections["hiding-inbox-rule"]
    old_sql = det.sql.replace("JOIN rule_raws e ON e.record_id = c.record_id",
                              "JOIN events e ON e.record_id = c.record_id AND e.source = 'audit_other'")
    assert old_sql != det.sql
    new, old = (eng.run_sql(render(sql, prepared.sql_values)) for sql in (det.sql, old_sql))
    for found in (new, old):
        found["raws"] = found["raws"].map(sorted)
        found["evidence"] = found["evidence"].map(sorted)
    pd.testing.assert_frame_equal(new.sort_values("mailbox").reset_index(drop=True),
                                  old.sort_values("mailbox").reset_index(drop=True))
    assert set(new["mailbox"]) == {"user1@contoso.com", "user2@contoso.com"}  # the flag-only rule hides nothing
    ordered = new.sort_values("mailbox")
    assert list(ordered["deletes"]) == [1, 0] and list(ordered["moves"]) == [0, 1] and list(ordered["words"]) == [1, 0]


def test_access_judged_kept_as_parquet_reads_back_the_same(prepared: Prepared, tmp_path: Path) -> None:
    case = Case.open(shutil.copytree(prepared.case.root, tmp_path / "copy"), writable=True)
    forget_prepared()
    prep = prepare(case)
    keep_prepared(prep)
    cache = case.root / CACHE_DIR
    assert (cache / parquet_name("access_judged")).is_file()
    assert json.loads((cache / PREPARED_JSON).read_text(encoding="utf-8"))["parquet"] == ["access_judged"]
    found = load_prepared(case, prep.key)
    assert found is not None
    eng, _ = found
    kept = [str(c) for v in prep.pack.views if v["name"] == "access_judged" for c in v["keep"]]
    cols = ", ".join(kept)
    assert isinstance(prep.engine, DuckDBEngine)
    assert _rows(eng, f"SELECT {cols} FROM access_judged") == _rows(prep.engine, f"SELECT {cols} FROM access_judged")
    # another preparation's file (a writer replaced it in between): not read
    other = literal(str(cache / parquet_name("access_judged")))
    prep.engine.con.execute(f"COPY (SELECT {cols} FROM access_judged) TO {other} "
                            "(FORMAT parquet, KV_METADATA {ir_toolkit_inputs_key: 'other'})")
    assert load_prepared(case, prep.key) is None


@pytest.mark.parametrize("value", [pd.Timestamp("2023-06-01T12:00:00Z"), pd.Timestamp("2023-06-01T12:00:00.5Z"),
                                   pd.Timestamp("2023-06-01T12:00:00.123456789Z"),
                                   pd.Timestamp("2023-01-01T12:00:00", tz="Europe/London"),
                                   pd.Timestamp("2023-06-01T12:00:00", tz="Europe/London"),
                                   pd.Timestamp("2023-06-01T12:00:00"), "2023-06-01T12:00:00+02:00", None])
def test_iso_of_a_utc_timestamp_is_the_parsed_one(value: object) -> None:
    parsed = parse_time(value)
    slow = None if parsed is None else parsed.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(
        ".000000Z", "Z")
    assert iso(value) == slow
