"""The tenant's coverage, daily and hour-of-week counts come from one pass and equal each asked alone (issue 20).

:func:`ir_toolkit.report.counts.tenant_counts` counts the events per source and quarter of an hour once and derives
the three answers from those groups. Each must be the frame the question asked of the store alone gives (the SQL
the report ran before, written out here), in any zone: whole-hour, half- and quarter-hour offsets, a daylight
saving change, and a historical local mean time whose offset is no whole number of quarters (there the hour of
week is asked of the store directly).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.analysis.aggregates import hour_of_week_grid, utc
from ir_toolkit.case import Case
from ir_toolkit.report import casedata, casequery, counts

ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe")
BOX = "adele.vance@contoso.onmicrosoft.com"


def _case(root: Path) -> Case:
    case = Case.init(root, tenant="contoso.onmicrosoft.com", case_id="counts-test")
    times = ["2023-03-26T00:50:00", "2023-03-26T01:10:00",  # Berlin's clocks go forward at 01:00 UTC
             "2023-10-29T00:59:59.999999", "2023-10-29T01:00:00",  # and back
             "2023-06-01T00:10:00", "2023-06-01T23:59:59", "2023-06-02T00:00:00", "2023-06-03T12:44:00",
             "1860-06-01T00:10:00",  # Asia/Kolkata then: +05:53:20, a quarter of an hour spans two local hours
             "1969-12-31T23:50:00"]  # before the epoch: the quarter holding it, not the next one
    rows = [{"time": pd.Timestamp(t, tz="UTC"), "source": "mail_access" if i % 3 else "signin_interactive",
             "operation": "MailItemsAccessed", "user": BOX if i % 2 else "megan.bowen@contoso.onmicrosoft.com",
             "mailbox": BOX if i % 2 else None, "ip": f"203.0.113.{i}", "record_id": f"r-{i}", "raw": "{}"}
            for i, t in enumerate(times)]
    rows.append({"time": pd.NaT, "source": "mail_access", "operation": "MailItemsAccessed", "record_id": "no-time",
                 "raw": "{}"})
    rows.append({"time": pd.Timestamp("2023-06-01T08:00:00", tz="UTC"), "source": "tenant_snapshot",
                 "operation": "User", "record_id": "snap-1", "raw": "{}"})
    case.write_events(pd.DataFrame(rows))
    return case


def _alone(case: Case, where: str | None, tz: str) -> dict[str, pd.DataFrame]:
    """Each count asked of the store alone (the report's SQL before the counts shared a pass)."""
    con = case.duckdb()
    con.execute("SET TimeZone='UTC'")
    coverage = con.sql("SELECT source, count(*) AS events, min(time) AS first, max(time) AS last FROM events "
                       "GROUP BY source ORDER BY source").df()
    cond = counts.questions(where, tz)["daily"][1][0]
    daily = con.sql(f"SELECT date_trunc('day', time) AS day, source, count(*) AS events FROM events WHERE {cond} "
                    "GROUP BY ALL ORDER BY day, source").df()
    daily["day"] = utc(daily["day"])
    daily["events"] = daily["events"].astype("int64")
    week = con.execute("SELECT isodow(timezone($tz, time)) - 1 AS day, hour(timezone($tz, time)) AS hour, "
                       "count(*) AS events FROM events WHERE time IS NOT NULL"
                       + (f" AND ({where})" if where else "") + " GROUP BY ALL", {"tz": tz}).df()
    return {"coverage": coverage, "daily": daily[["day", "source", "events"]], "week": hour_of_week_grid(week)}


@pytest.mark.parametrize("where", [None, f"mailbox = '{BOX}' OR user = '{BOX}'"])
def test_one_pass_gives_each_count_as_asked_alone_in_every_zone(tmp_path: Path, where: str | None) -> None:
    case = _case(tmp_path / "case")
    for tz in ZONES:
        got = counts.tenant_counts(case, where, tz)
        expected = _alone(case, where, tz)
        assert int(expected["week"]["events"].sum()) == (11 if where is None else 5)  # real counts, not empty
        for name, frame in expected.items():
            pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=f"{name} in {tz}")


def test_the_pass_answers_the_reports_three_questions_from_the_memo(tmp_path: Path) -> None:
    case = _case(tmp_path / "case")
    first = {"coverage": casedata.coverage(case), "daily": casequery.daily_source_counts(case),
             "week": casequery.hour_of_week_counts(case, tz="UTC")}
    for part in case.events.root.glob("*/*.parquet"):  # the key stays (size, time), the data goes
        stat = part.stat()
        part.write_bytes(b"\0" * stat.st_size)
        os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = {"coverage": casedata.coverage(case), "daily": casequery.daily_source_counts(case),
             "week": casequery.hour_of_week_counts(case, tz="UTC")}  # the coverage's pass kept the other two
    assert first["coverage"]["events"].sum() == 12 and len(first["daily"]) == 9
    for name, frame in first.items():
        pd.testing.assert_frame_equal(again[name], frame, check_exact=True, obj=name)
