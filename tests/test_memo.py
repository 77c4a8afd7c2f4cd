"""What the report and notebooks read of a case is kept for the next reader of the same store, never longer (issue 20).

The playbook's notebooks and its report ask the same questions of a case (the actor's events, the tenant's counts);
:mod:`ir_toolkit.report.memo` keeps each answer in CASE/cache/memo/ under a key of the store's part files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.case import Case
from ir_toolkit.report import casedata, casequery, display, figures, html, identities, memo, plots
from tests import reportcase as rc


def _questions(case: Case) -> dict[str, pd.DataFrame]:
    findings, scope = casedata.load_findings(case), casedata.load_scope(case)
    actor = casequery.actor_events(case, findings, scope, columns=casequery.WITHOUT_RAW)
    boxes = set(actor["mailbox"].dropna())
    return {
        "actor": actor,
        "figure columns": casequery.actor_events(case, findings, scope, columns=html.FIGURE_COLUMNS),
        "daily": casequery.daily_source_counts(case, casequery.window_where()),
        "week": casequery.hour_of_week_counts(case, tz="Europe/Berlin"),
        "mailboxes": casequery.mailbox_counts(case, boxes, None, "Asia/Tokyo"),
        "coverage": casedata.coverage(case),
        "count": pd.DataFrame({"events": [casequery.count_events(case, "ip IS NOT NULL")]}),
        "near": casequery.with_token_raw(case, casequery.near_seeds(case, [f"mailbox:{rc.UPN}"],
                                                                    columns=casequery.WITHOUT_RAW)),
        "people": identities.directory(case),  # every directory record's raw parsed (session 10: kept too)
    }


def _hide_store(case: Case) -> None:
    """Overwrite every part file with zeros of the same size and modification time: the key stays, the data goes."""
    for part in case.events.root.glob("*/*.parquet"):
        stat = part.stat()
        part.write_bytes(b"\0" * stat.st_size)
        os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_kept_answer_is_the_computed_one_and_the_store_is_not_read_again(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    first = _questions(case)
    assert len(first["actor"]) == 2 and first["mailboxes"].attrs["freq"] == "hour"  # real answers, not empty ones
    assert rc.UPN2 in set(first["people"]["upn"])
    where = casequery.actor_where(casedata.load_findings(case), casedata.load_scope(case))
    pd.testing.assert_frame_equal(case.read_events(columns=html.FIGURE_COLUMNS, where=where), first["figure columns"],
                                  check_exact=True)  # the report's columns, cut from the notebooks' kept read
    # the actor's read is kept once for both column sets; the near events' token raw is a read of its own; the
    # daily counts' pass also counted (and kept) the hour of week in UTC (ir_toolkit.report.counts)
    assert len(list(memo.memo_root(case).glob("*/*.parquet"))) == len(first) + 1
    _hide_store(case)
    with pytest.raises(Exception):  # noqa: B017, PT011 - DuckDB's error kind: the store can no longer be scanned
        case.duckdb().execute("SELECT count(*) FROM events").fetchone()
    again = _questions(case)  # every answer from CASE/cache/memo: the same frames, dtypes and attrs
    for name, frame in first.items():
        pd.testing.assert_frame_equal(again[name], frame, check_exact=True, obj=name)
        assert again[name].attrs == frame.attrs, name


def test_an_import_makes_every_kept_answer_stale(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    before = casedata.coverage(case)
    old = {p.parent.name for p in memo.memo_root(case).glob("*/*.parquet")}
    case.write_events(pd.DataFrame([{"time": pd.Timestamp("2023-06-07T01:00:00Z"), "source": "mail_access",
                                     "operation": "MailItemsAccessed", "mailbox": rc.UPN, "ip": rc.ACTOR_IP,
                                     "record_id": "ma-new", "raw": "{}"}]))
    after = casedata.coverage(case)
    mail = after.set_index("source").loc["mail_access"]
    assert mail["events"] == before.set_index("source").loc["mail_access", "events"] + 1
    assert mail["last"] == pd.Timestamp("2023-06-07T01:00:00Z")
    assert old and not old & {p.parent.name for p in memo.memo_root(case).glob("*/*.parquet")}  # stale ones removed


def test_an_unreadable_or_oversized_answer_is_computed_again_not_trusted(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    case = rc.build(tmp_path / "case")
    fresh = casequery.daily_source_counts(case)
    for path in memo.memo_root(case).glob("*/*.parquet"):
        path.write_bytes(b"PAR1 not a parquet file")
    pd.testing.assert_frame_equal(casequery.daily_source_counts(case), fresh, check_exact=True)
    monkeypatch.setattr(memo, "MAX_ROWS", 1)  # answers above the bound are never kept
    other = tmp_path / "other"
    small = rc.build(other)
    casequery.daily_source_counts(small)
    assert not list(memo.memo_root(small).glob("*/*.parquet"))


def _figures(html_text: str) -> list[tuple[str, str]]:
    """(data URI, alternative text) of every figure the report shows."""
    return re.findall(r'<img src="(data:image/png;base64,[^"]+)" alt="([^"]*)">', html_text)


def test_a_second_report_shows_the_figures_the_first_drew_and_a_redacted_one_draws_its_own(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    first = _figures(html.render_report(case).read_text(encoding="utf-8"))
    assert len(first) >= 5  # coverage, mailbox activity, sessions, rhythm, items, graph
    kept = memo.memo_root(case)
    before = {p.name for p in kept.glob("*/*.parquet")}
    again = _figures(html.render_report(case).read_text(encoding="utf-8"))
    assert again == first and {p.name for p in kept.glob("*/*.parquet")} == before  # read, nothing new drawn
    redacted = _figures(html.render_report(case, redact=True).read_text(encoding="utf-8"))
    assert len(redacted) == len(first) and redacted != first
    assert not any(rc.UPN in alt for _, alt in redacted)  # the redacted frames are drawn, not the kept figures
    assert any(rc.UPN in alt for _, alt in first)
    other_zone = _figures(html.render_report(case, tz="Asia/Tokyo").read_text(encoding="utf-8"))
    assert other_zone != first


def test_notebook_03_shows_the_report_s_sessions_rhythm_and_items_figures_without_drawing_them(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    shown = _figures(html.render_report(case).read_text(encoding="utf-8"))
    kept = {p.name for p in memo.memo_root(case).glob("*/*.parquet")}
    # notebook 03's frames: the actor's events read whole but raw (other dtypes than the report's columns)
    findings, scope = casedata.load_findings(case), casedata.load_scope(case)
    actor = casequery.actor_events(case, findings, scope, columns=casequery.WITHOUT_RAW)
    week = casequery.hour_of_week_counts(case)
    mail = actor[actor["source"] == "mail_access"]
    pngs = [figures.swimlane_png(case, actor, "UTC")[0], figures.rhythm_png(case, week, actor, "UTC")[0],
            figures.items_png(case, mail, "UTC")[0]]
    assert {p.name for p in memo.memo_root(case).glob("*/*.parquet")} == kept  # read, nothing new drawn
    assert all(display.data_uri(png) in {src for src, _ in shown} for png in pngs)  # the report's pictures
    # and the pictures the notebook drew itself before
    drawn = [display.png_bytes(plots.actor_swimlane(actor, tz="UTC")), display.png_bytes(plots.hour_of_week(
        week, actor, tz="UTC")), display.png_bytes(plots.items_per_day(mail, tz="UTC"))]
    assert pngs == drawn
