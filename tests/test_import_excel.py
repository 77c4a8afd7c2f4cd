"""CSV exports re-saved by Excel: separators, encodings, locale dates and their day/month order (issue 15)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import TESTDATA, cli

from ir_toolkit.case import Case
from ir_toolkit.sources import excel
from ir_toolkit.timeutil import parse_time

IMPORT = TESTDATA / "import"


def _rows(name: str) -> list[list[str]]:
    with open(IMPORT / name, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _entra(dates: list[str], delimiter: str = ";", encoding: str = "cp1252", bom: bool = False,
           sep_line: bool = False) -> bytes:
    """The Entra sign-in download as Excel saves it: its dates rewritten, one row per date."""
    header, *rows = _rows("entra_signins.csv")
    out = io.StringIO()
    if sep_line:
        out.write(f"sep={delimiter}\r\n")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    for i, date in enumerate(dates):
        row = list(rows[i % len(rows)])
        row[0], row[1] = date, f"dd44ee55-0000-4000-8000-{i:012d}"
        row[5] = "Zoé Müller"  # a name Windows-1252 can write
        writer.writerow(row)
    text = out.getvalue()
    return (("\ufeff" + text) if bom else text).encode(encoding)


def _import(case_dir: Path, tmp_path: Path, data: bytes, *flags: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    f = tmp_path / "signins.csv"
    f.write_bytes(data)
    p = cli("import", case_dir, f, "--json", *flags)
    assert p.returncode in (0, 1), p.stderr
    [doc] = json.loads(p.stdout)
    case = Case.open(case_dir)
    return doc, case.read_events().sort_values("record_id"), case.quarantined()


def test_en_gb_resave_semicolons_cp1252_day_first(case_dir: Path, tmp_path: Path) -> None:
    doc, ev, _ = _import(case_dir, tmp_path, _entra(["05/06/2023 09:15", "28/05/2023 14:03", "06/05/2023 23:59"]))
    assert (doc["format"], doc["imported"], doc["date_order"]) == ("entra-signins-csv", 3, "day-first")
    assert ev["time"].tolist() == [pd.Timestamp("2023-06-05T09:15Z"), pd.Timestamp("2023-05-28T14:03Z"),
                                   pd.Timestamp("2023-05-06T23:59Z")]
    entry = Case.open(case_dir).evidence()[0]
    assert (entry["delimiter"], entry["encoding"], entry["date_order"]) == (";", "cp1252", "day-first")
    assert "Zoé Müller" in ev["raw"].iloc[0] and ev["user"].iloc[0] == "victim@contoso.com"


def test_en_us_resave_bom_am_pm_month_first(case_dir: Path, tmp_path: Path) -> None:
    data = _entra(["6/5/2023 9:15:00 AM", "5/28/2023 2:03:00 PM"], delimiter=",", encoding="utf-8", bom=True)
    doc, ev, _ = _import(case_dir, tmp_path, data)
    assert (doc["imported"], doc["date_order"]) == (2, "month-first")
    assert ev["time"].tolist() == [pd.Timestamp("2023-06-05T09:15Z"), pd.Timestamp("2023-05-28T14:03Z")]


def test_german_dots_and_sep_line_and_utf16_tabs(case_dir: Path, tmp_path: Path) -> None:
    doc, ev, _ = _import(case_dir, tmp_path, _entra(["05.06.2023 09:15"], sep_line=True))
    assert (doc["imported"], doc["date_order"]) == (1, "day-first")
    assert ev["time"].iloc[0] == pd.Timestamp("2023-06-05T09:15Z")
    unicode_text = _entra(["13/06/2023 10:00"], delimiter="\t", encoding="utf-16")  # Excel "Unicode text" (BOM)
    other = Case.init(tmp_path / "u16", tenant="contoso").root
    doc, ev, _ = _import(other, tmp_path, unicode_text)
    assert (doc["format"], doc["imported"]) == ("entra-signins-csv", 1)
    assert ev["time"].tolist() == [pd.Timestamp("2023-06-13T10:00Z")]


def test_ambiguous_file_is_quarantined_never_guessed_then_named(case_dir: Path, tmp_path: Path) -> None:
    data = _entra(["05/06/2023 09:15", "07/06/2023 10:00", "06/06/2023 12:00"])
    doc, ev, q = _import(case_dir, tmp_path, data)
    assert (doc["imported"], doc["quarantined"], doc["date_order"]) == (1, 2, "ambiguous")
    assert ev["time"].tolist() == [pd.Timestamp("2023-06-06T12:00Z")]  # reads one way only
    assert q["reason"].str.contains("date order ambiguous").all() and q["reason"].str.contains("--day-first").all()
    doc, ev, q = _import(case_dir, tmp_path, data, "--day-first")
    assert (doc["status"], doc["imported"], doc["duplicates"], doc["quarantined"]) == ("imported", 2, 1, 0)
    assert pd.Timestamp("2023-06-05T09:15Z") in set(ev["time"]) and q.empty
    assert Case.open(case_dir).evidence()[0]["date_order"] == "day-first"


def test_wholly_ambiguous_file_is_exit_1(case_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "all.csv"
    f.write_bytes(_entra(["05/06/2023 09:15", "07/06/2023 10:00"]))
    p = cli("import", case_dir, f)
    assert p.returncode == 1 and "date order ambiguous" in p.stdout and p.stderr.count("\n") == 1
    p = cli("import", case_dir, f, "--month-first", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)[0]["imported"] == 2


def test_purview_resave_same_events_as_the_original(tmp_path: Path) -> None:
    rows = _rows("purview_current.csv")
    creation = rows[0].index("CreationDate")
    for r in rows[1:]:
        r[creation] = "16/06/2023 15:58"
    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows(rows)
    f = tmp_path / "purview_excel.csv"
    f.write_bytes(out.getvalue().encode("cp1252"))
    frames = []
    for name, path in (("orig", IMPORT / "purview_current.csv"), ("excel", f)):
        case = Case.init(tmp_path / name, tenant="contoso")
        [res] = case.import_files([path])
        assert (res["format"], res["quarantined"]) == ("purview-csv", 0)
        frames.append(case.read_events().drop(columns=["raw", "evidence"]).sort_values("record_id")
                      .reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1])


@pytest.mark.parametrize(("head", "want"), [
    ("a,b;c\n", ","), ("a;b;c\n", ";"), ("a\tb\tc\n", "\t"), ('"x;y",b,c\n', ","), ("sep=;\na,b\n", ";"),
    ("single\n", ","), ("\ufeffa|b|c\n", "|"),
])
def test_csv_delimiter(head: str, want: str) -> None:
    assert excel.csv_delimiter(head) == want


def test_date_order_rule_and_parse() -> None:
    rows = [(1, {"d": "05/06/2023 10:00"}), (2, {"d": "13/06/2023 10:00"})]
    assert excel.date_order(iter(rows), ["d"]) == excel.DAY_FIRST
    assert excel.date_order(iter([(1, {"d": "6/13/2023 1:00 PM"})]), ["d"]) == excel.MONTH_FIRST
    assert excel.date_order(iter(rows[:1]), ["d"]) == excel.AMBIGUOUS
    assert excel.date_columns([{"a": "2023-06-05T10:00:00Z", "b": "5/6/2023 10:00", "c": 5}]) == ["b"]
    assert parse_time("5/6/2023 10:00", dayfirst=None) is None
    assert parse_time("5/5/2023 10:00", dayfirst=None) == pd.Timestamp("2023-05-05T10:00Z")
    assert parse_time("28.05.2023 14:03", dayfirst=None) == pd.Timestamp("2023-05-28T14:03Z")
    assert parse_time("2023-05-28 14:03") == pd.Timestamp("2023-05-28T14:03Z")


def test_log_analytics_portal_csv_resaved_german(tmp_path: Path) -> None:
    """The portal export's 4/28/2021, 3:05:26.000 PM becomes 28.04.2021 15:05:26 with ; in a German Excel."""
    rows = _rows("log_analytics_portal.csv")
    for r in rows[1:]:
        for i, v in enumerate(r):
            if v.startswith("4/28/2021, "):
                clock = pd.Timestamp(v.replace(",", "")).strftime("%H:%M:%S")
                r[i] = f"28.04.2021 {clock}"
    out = io.StringIO()
    out.write("sep=;\r\n")
    csv.writer(out, delimiter=";").writerows(rows)
    f = tmp_path / "la_excel.csv"
    f.write_bytes(out.getvalue().encode("cp1252"))
    frames = []
    for name, path in (("orig", IMPORT / "log_analytics_portal.csv"), ("excel", f)):
        case = Case.init(tmp_path / name, tenant="contoso")
        [res] = case.import_files([path])
        assert (res["format"], res["imported"], res["quarantined"]) == ("log-analytics-csv", 3, 0)
        frames.append(case.read_events().drop(columns=["raw", "evidence"]).sort_values("record_id")
                      .reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_day_first_and_month_first_exclude_each_other(case_dir: Path) -> None:
    p = cli("import", case_dir, IMPORT / "entra_signins.csv", "--day-first", "--month-first")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "not allowed with" in p.stderr


def test_audit_data_cut_by_excel_names_the_cause(case_dir: Path, tmp_path: Path) -> None:
    rows = _rows("purview_current.csv")
    audit = rows[0].index("AuditData")
    data = json.loads(rows[1][audit])
    data["Folders"] = [{"Path": "\\Inbox", "FolderItems": [{"InternetMessageId": f"<m{i}@x>"} for i in range(3000)]}]
    rows[1][audit] = json.dumps(data)[:32_767]  # what Excel keeps of the cell
    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows(rows)
    f = tmp_path / "cut.csv"
    f.write_bytes(out.getvalue().encode("cp1252"))
    [res] = Case.open(case_dir, writable=True).import_files([f])
    assert (res["imported"], res["quarantined"]) == (2, 1)
    assert "Excel's cell limit" in Case.open(case_dir).quarantined()["reason"].iloc[0]
