from __future__ import annotations

import pandas as pd
import pytest

from ir_toolkit.case.store import EventStore
from ir_toolkit.schema import EVENT_COLUMN_NAMES, conform, describe_markdown, empty_frame
from ir_toolkit.timeutil import iso, parse_time, parse_times


def _events(n: int, source: str = "mail_access", start: str = "2023-06-15T01:00:00Z") -> pd.DataFrame:
    t0 = pd.Timestamp(start)
    return pd.DataFrame({
        "time": [t0 + pd.Timedelta(minutes=i) for i in range(n)],
        "source": source,
        "operation": "MailItemsAccessed",
        "user": "alice@contoso.com",
        "items": list(range(n)),
        "message_ids": [[f"<m{i}@contoso.com>"] for i in range(n)],
        "record_id": [f"r{i}" for i in range(n)],
        "raw": [f'{{"Id": "r{i}"}}' for i in range(n)],
    })


def test_empty_frame_has_every_canonical_column() -> None:
    frame = empty_frame()
    assert tuple(frame.columns) == EVENT_COLUMN_NAMES
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"
    assert str(frame["items"].dtype) == "Int64"


def test_parquet_round_trip_keeps_utc_and_lists(tmp_path) -> None:
    store = EventStore(tmp_path / "events")
    stored, dups = store.append(_events(5))
    assert (stored, dups) == (5, 0)
    back = store.read()
    assert tuple(back.columns) == EVENT_COLUMN_NAMES
    assert str(back["time"].dt.tz) == "UTC"
    assert back["time"].iloc[0] == pd.Timestamp("2023-06-15T01:00:00Z")
    assert list(back["message_ids"].iloc[2]) == ["<m2@contoso.com>"]
    assert back["items"].tolist() == [0, 1, 2, 3, 4]


def test_duplicate_record_ids_across_two_imports_are_stored_once(tmp_path) -> None:
    store = EventStore(tmp_path / "events")
    assert store.append(_events(5)) == (5, 0)
    assert store.append(_events(8)) == (3, 5)
    # a fresh store object over the same files still knows what is stored
    again = EventStore(tmp_path / "events")
    assert again.append(_events(8)) == (0, 8)
    assert len(again.read()) == 8
    assert again.count() == {"mail_access": 8}


def test_same_record_id_in_two_sources_is_two_events(tmp_path) -> None:
    store = EventStore(tmp_path / "events")
    store.append(_events(3, "mail_access"))
    assert store.append(_events(3, "audit_other")) == (3, 0)
    con = store.connect()
    assert con.execute("select count(*) from events").fetchone() == (6,)


def test_naive_times_are_rejected() -> None:
    frame = _events(1)
    frame["time"] = pd.Timestamp("2023-06-15 01:00:00")
    with pytest.raises(ValueError, match="naive"):
        conform(frame)


@pytest.mark.parametrize("text, expected", [
    ("2023-06-15T01:02:03.1234567Z", "2023-06-15T01:02:03.123456Z"),
    ("2023-06-15T01:02:03Z  ", "2023-06-15T01:02:03Z"),
    ("2023-06-15T01:02:03", "2023-06-15T01:02:03Z"),
    ("2023-06-15T03:02:03+02:00", "2023-06-15T01:02:03Z"),
    ("9/20/2023 4:05:03 AM", "2023-09-20T04:05:03Z"),
    ("4/28/2021, 3:05:26.000 PM", "2021-04-28T15:05:26Z"),
    ("12/1/2023 12:00:00 AM", "2023-12-01T00:00:00Z"),
])
def test_lenient_time_parsing(text: str, expected: str) -> None:
    assert iso(parse_time(text)) == expected


def test_vectorised_parsing_mixes_forms_and_marks_garbage_nat() -> None:
    s = pd.Series(["2023-06-15T01:02:03.1234567Z", "9/20/2023 4:05:03 AM", "not a date", None])
    out = parse_times(s)
    assert out.iloc[0] == pd.Timestamp("2023-06-15T01:02:03.123456Z")
    assert out.iloc[1] == pd.Timestamp("2023-09-20T04:05:03Z")
    assert pd.isna(out.iloc[2]) and pd.isna(out.iloc[3])


def test_schema_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "schema.md").read_text()
    assert describe_markdown() in doc


def test_a_store_written_before_new_columns_still_reads(tmp_path) -> None:
    """Columns added to the schema later (request_uri ... of issue 15) read as empty from older part files."""
    import pyarrow.parquet as pq

    store = EventStore(tmp_path / "events")
    store.append(_events(2))
    for part in (tmp_path / "events").glob("*/*.parquet"):  # as a case imported before the columns existed
        table = pq.read_table(part)
        pq.write_table(table.drop(["request_uri", "request_method", "response_status", "scopes", "roles"]), part)
    back = store.read()
    assert tuple(back.columns) == EVENT_COLUMN_NAMES and len(back) == 2
    assert back["request_uri"].isna().all() and str(back["response_status"].dtype) == "Int64"
    con = store.connect()
    assert con.sql("SELECT count(*), count(request_uri) FROM events").fetchall() == [(2, 0)]
