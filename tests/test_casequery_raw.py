"""Reading the actor's events without ``raw`` (the bulk of the store) loses nothing the notebooks show (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ir_toolkit.analysis.graph import build_graph
from ir_toolkit.case import Case
from ir_toolkit.report import casequery


def test_token_raw_is_read_back_for_the_graph_and_nothing_else(tmp_path: Path) -> None:
    case = Case.init(tmp_path / "case", tenant="contoso.example", case_id="raw-test")
    t = pd.Timestamp("2023-06-01T08:00:00Z")
    case.write_events(pd.DataFrame([
        {"time": t, "source": "token", "operation": "TokenScan", "result": "forged", "ip": "203.0.113.9",
         "token_id": "tok-forged", "record_id": "tok-1", "raw": json.dumps({"header": {"kid": "key-msa-2016"}})},
        {"time": t, "source": "mail_access", "operation": "MailItemsAccessed", "user": "a@contoso.example",
         "mailbox": "a@contoso.example", "ip": "203.0.113.9", "token_id": "tok-forged", "record_id": "mail-1",
         "raw": json.dumps({"Pad": "x" * 1000})},
    ]))
    where = "ip = '203.0.113.9'"
    whole = casequery.read_where(case, where)
    lean = casequery.read_where(case, where, casequery.WITHOUT_RAW)
    assert "raw" not in lean.columns and len(lean) == len(whole) == 2
    assert lean.equals(whole.drop(columns="raw"))  # the same rows, values and dtypes as a whole read, but raw
    back = casequery.with_token_raw(case, lean)
    assert back.set_index("record_id")["raw"].to_dict() == {"tok-1": whole.set_index("record_id")["raw"]["tok-1"],
                                                            "mail-1": None}
    keys = {n for n in build_graph(back).nodes if str(n).startswith("signing_key:")}
    assert keys == {n for n in build_graph(whole).nodes if str(n).startswith("signing_key:")} == {
        "signing_key:key-msa-2016"}
