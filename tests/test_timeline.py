"""Timeline order and messages, sessions with and without ids, Timesketch export, first/last seen."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.analysis import aggregates
from ir_toolkit.analysis.sessions import assign_sessions
from ir_toolkit.analysis.timeline import build_timeline, first_last_seen, sessions, write_timeline
from ir_toolkit.case import Case
from ir_toolkit.errors import UserError
from ir_toolkit.textsafe import csv_safe, csv_safe_column, xml_safe
from tests.conftest import cli
from tests.timeline_events import ACTOR_APP, EVIL_UA, events, findings, make_case


def test_timeline_is_sorted_across_sources_with_human_messages() -> None:
    shuffled = events().sample(frac=1, random_state=3)
    tl = build_timeline(shuffled)
    assert tl["datetime"].is_monotonic_increasing
    assert str(tl["datetime"].dt.tz) == "UTC"
    assert list(tl.columns[:3]) == ["datetime", "timestamp_desc", "message"]
    assert tl["record_id"].tolist() == ["si-0", "si-1", "ma-1", "ma-2", "ma-3", "ao-1", "da-1", "ma-4",
                                        "ma-5", "ma-6", "ma-7"]
    msg = dict(zip(tl["record_id"], tl["message"], strict=True))
    assert msg["si-0"] == ("alice@contoso.com failed to sign in (error 50126) to Outlook "
                           "from 198.51.100.10 (US AS7018)")
    assert msg["si-1"] == "alice@contoso.com signed in to Outlook from 198.51.100.10 (US AS7018)"
    assert msg["ma-2"] == (f"alice@contoso.com accessed 3 mail item(s) (Bind) in mailbox alice@contoso.com "
                           f"with app {ACTOR_APP} from 203.0.113.5")
    assert msg["ao-1"] == "carol@contoso.com: New-InboxRule on @forward-all from 192.0.2.1"
    assert msg["da-1"] == "admin@contoso.com: Add service principal on Evil App"
    desc = dict(zip(tl["record_id"], tl["timestamp_desc"], strict=True))
    assert desc["si-0"] == "Sign-in time" and desc["ma-1"] == "Mail items accessed"
    assert desc["da-1"] == "Directory activity time"
    row = tl[tl["record_id"] == "ma-2"].iloc[0]
    assert row["message_ids"] == "<a1@contoso.com>; <a2@contoso.com>; <a3@x>"
    assert "raw" not in tl.columns and "time" not in tl.columns


def test_findings_become_rows_and_tag_the_events_they_cite() -> None:
    tl = build_timeline(events(), findings())
    rows = tl[tl["source"] == "finding"]
    assert len(rows) == 2
    first = rows.iloc[0]
    assert first["message"].startswith("Finding [high, confirmed] Token without sign-in: 2 mailbox accesses")
    assert first["timestamp_desc"] == "Finding: first supporting event"
    assert first["datetime"] == pd.Timestamp("2023-06-16T01:00:00Z")
    cited = dict(zip(tl["record_id"], tl["finding_ids"], strict=True))
    assert cited["ma-2"] == "orphan-token:1" and cited["ma-4"] == "first-seen-app:1"
    assert pd.isna(cited["ma-1"])
    assert tl["datetime"].is_monotonic_increasing


def test_sessions_from_ids_chain_signins_and_mail_access() -> None:
    s = sessions(events()).set_index("session")
    # the sign-in (session S1, token T1) and the Sync that reused T1 / S1 are one session
    assert s.loc["entra:S1", "events"] == 2
    assert s.loc["entra:S1", "sources"] == "mail_access; signin_interactive"
    assert s.loc["entra:S1", "items"] == 40
    # the actor's forged token F1 links two Exchange sessions on two mailboxes from two addresses
    actor = s.loc["exo:X2"]
    assert actor["method"] == "ids" and actor["events"] == 2
    assert actor["ips"] == "203.0.113.5; 203.0.113.6"
    assert actor["mailboxes"] == "alice@contoso.com; bob@contoso.com"
    assert actor["tokens"] == 1
    assert s.loc["exo:X4", "events"] == 1  # token F2: a separate session


def test_sessions_without_ids_split_on_gaps() -> None:
    dave = events()[lambda e: e["user"] == "dave@contoso.com"]
    s = sessions(dave, gap="30min")
    assert s["method"].tolist() == ["gap", "gap"]
    assert s["events"].tolist() == [2, 1]
    assert s["first"].tolist() == [pd.Timestamp("2023-06-18T10:00Z"), pd.Timestamp("2023-06-18T11:30Z")]
    assert s["duration"].iloc[0] == pd.Timedelta(minutes=10)
    assert len(sessions(dave, gap="2h")) == 1
    labelled = assign_sessions(dave, gap="30min")
    assert labelled["session"].nunique() == 2 and set(labelled["session_method"]) == {"gap"}
    assert sessions(dave.iloc[0:0]).empty


def test_first_last_seen_per_entity() -> None:
    seen = first_last_seen(events()).set_index(["entity_type", "entity"])
    ip = seen.loc[("ip", "203.0.113.5")]
    assert ip["first"] == pd.Timestamp("2023-06-16T01:00Z") and ip["last"] == pd.Timestamp("2023-06-17T02:00Z")
    assert ip["events"] == 2
    assert seen.loc[("token_id", "F1"), "events"] == 2
    assert seen.loc[("asn", "7018"), "events"] == 2
    with pytest.raises(UserError, match="not an event column"):
        first_last_seen(events(), kinds=["nope"])


def test_aggregates_agree_for_frames_and_cases(tmp_path: Path) -> None:
    case = make_case(tmp_path / "c")
    from_case = aggregates.activity_counts(case, by=("mailbox",), freq="day", where="mailbox IS NOT NULL")
    from_frame = aggregates.activity_counts(events(), by=("mailbox",), freq="day", where="mailbox IS NOT NULL")
    pd.testing.assert_frame_equal(from_case, from_frame)
    assert from_case["events"].sum() == 8  # seven mailbox accesses and one inbox rule
    shanghai = aggregates.hour_of_week_counts(case.duckdb(), tz="Asia/Shanghai")
    assert len(shanghai) == 168 and shanghai["events"].sum() == 11
    # 2023-06-16T01:00Z is a Friday 09:00 in Shanghai
    assert shanghai.set_index(["day", "hour"]).loc[(4, 9), "events"] == 2
    with pytest.raises(UserError, match="unknown time zone"):
        aggregates.hour_of_week_counts(case, tz="Mars/Olympus")


def test_csv_export_neutralises_formula_injection(tmp_path: Path) -> None:
    case = make_case(tmp_path / "c", with_findings=True)
    out = tmp_path / "tl.csv"
    r = cli("timeline", case.root, "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "14 row(s)" not in r.stdout and "13 row(s)" in r.stdout
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["message", "datetime", "timestamp_desc"]
    agents = {r["user_agent"] for r in rows if r["user_agent"]}
    assert "'" + EVIL_UA in agents and "'+cmd|' /C calc'!A0" in agents
    assert EVIL_UA not in agents
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    assert pd.Timestamp(rows[0]["datetime"]) == pd.Timestamp("2023-06-15T07:59:00Z")
    assert rows[0]["datetime"].startswith("2023-06-15T07:59:00")
    assert any(r["message"].startswith("Finding [") for r in rows)


def test_jsonl_export_keeps_values_and_bad_extension_is_one_line(tmp_path: Path) -> None:
    case = make_case(tmp_path / "c")
    out = tmp_path / "tl.jsonl"
    assert cli("timeline", case.root, "--out", out, "--no-progress").returncode == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 11
    assert all({"message", "datetime", "timestamp_desc"} <= set(r) for r in records)
    evil = [r for r in records if r.get("record_id") == "ma-2"][0]
    assert evil["user_agent"] == EVIL_UA and evil["items"] == 3
    bad = cli("timeline", case.root, "--out", tmp_path / "tl.xlsx")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and ".csv or .jsonl" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_chunked_export_equals_one_pass(tmp_path: Path) -> None:
    case = make_case(tmp_path / "c")
    whole, parts = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert write_timeline(case, whole, findings=findings()) == 13
    assert write_timeline(Case.open(case.root), parts, findings=findings(), chunk_rows=2) == 13
    assert whole.read_text() == parts.read_text()


def test_csv_safe_and_xml_safe() -> None:
    assert [csv_safe(v) for v in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "ok", 5, None]] == [
        "'=1+1", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "ok", 5, None]
    assert xml_safe("a\x00b\x1bc\td") == "abc\td"
    column = pd.Series(["=cmd", "fine", None, "-1", "@x"], dtype=object)
    assert csv_safe_column(column).tolist() == ["'=cmd", "fine", None, "'-1", "'@x"]
    assert csv_safe_column(pd.Series([-1, 2])).tolist() == [-1, 2]


def test_empty_case_and_unwritable_target(case_dir: Path, tmp_path: Path) -> None:
    case = Case.open(case_dir)
    out = tmp_path / "empty.csv"
    assert write_timeline(case, out) == 0
    assert out.read_text().startswith("message,datetime,timestamp_desc,")
    with pytest.raises(UserError, match="cannot write timeline"):
        write_timeline(case, tmp_path / "missing-dir" / "t.csv")
