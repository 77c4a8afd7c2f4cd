"""Times the analysis cannot represent are stopped at import: no record can make a later verb fail."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import cli
from hostile_inputs import IMPORT, rid, signin, ual

from ir_toolkit.case import Case

OUTSIDE = ["-0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999Z", "1899-12-31T23:59:59Z",
           "2200-01-01T00:00:00Z", "+275760-09-13T00:00:00Z"]
EDGES = ["1900-01-01T00:00:00Z", "2199-12-31T23:59:59.9999999Z"]


@pytest.fixture(scope="module")
def case_with_odd_times(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("times")
    recs = [dict(signin(i), createdDateTime=t) for i, t in enumerate(OUTSIDE + EDGES)]
    recs += [signin(i) for i in range(20, 25)]
    signins = tmp / "signins.json"
    signins.write_text(json.dumps(recs), "utf-8")
    mail = [dict(ual(30 + i), CreationTime=t) for i, t in enumerate(OUTSIDE)]
    mail.append(dict(ual(40), AppAccessContext={"IssuedAtTime": "0001-01-01T00:00:00", "UniqueTokenId": "tok"}))
    audit = tmp / "ual.json"
    audit.write_text(json.dumps(mail), "utf-8")
    case = tmp / "case"
    assert cli("case", "init", case, "--tenant", "contoso.onmicrosoft.com").returncode == 0
    p = cli("import", case, signins, audit, IMPORT / "management_api.json", "--json")
    assert p.returncode == 0, p.stderr
    return case


def test_times_outside_the_range_are_quarantined(case_with_odd_times: Path) -> None:
    case = Case.open(case_with_odd_times)
    counts = {Path(e["original"]).name: (e["records"], e["imported"], e["quarantined"]) for e in case.evidence()}
    assert counts["signins.json"] == (13, 7, 6) and counts["ual.json"] == (7, 1, 6)
    q = case.quarantined()
    assert q["reason"].str.contains("outside what the analysis can represent").sum() == 10
    assert q["reason"].str.contains("no readable time").sum() == 2  # +275760: not even a time to pandas
    ev = case.read_events(columns=["record_id", "time", "token_issued_at"]).set_index("record_id")
    assert {rid(6), rid(7)} <= set(ev.index)  # the edges of the range are kept
    assert pd.isna(ev.loc[rid(40), "token_issued_at"])  # a secondary time out of range is cleared


@pytest.mark.parametrize("verb", [("detect",), ("scope",), ("timeline", "--out", "{tmp}/t.csv"),
                                  ("graph", "--out", "{tmp}/g.json"), ("report", "--out", "{tmp}/r.html"),
                                  ("evidence",)])
def test_every_later_verb_runs(case_with_odd_times: Path, tmp_path: Path, verb: tuple[str, ...]) -> None:
    args = [a.format(tmp=tmp_path) for a in verb]
    p = cli(args[0], case_with_odd_times, *args[1:])
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
