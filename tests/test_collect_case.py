"""The case side of collection: evidence, ledger in case.json, custody, repeated and extended runs."""

from __future__ import annotations

from pathlib import Path

from ir_toolkit.case import Case
from ir_toolkit.case.collect import WORK_DIR, collect_case, ledger_frame
from ir_toolkit.sources.graph.checkpoint import read_lines
from tests.collect_helpers import RECORDS, fast_client, fast_options
from tests.fakes.graph_server import FakeGraph
from tests.fakes.records import expected_ids


def _ids(case: Case, source: str) -> list[str]:
    return [r["id"] for e in case.evidence() if e["source"] == f"collect:{source}"
            for r in read_lines(case.root / e["path"])]


def test_collected_files_are_evidence_and_the_ledger_accumulates(case_dir: Path) -> None:
    case = Case.open(case_dir, writable=True)
    with FakeGraph(RECORDS) as g:
        first = collect_case(case, client_id="app", mode="client_secret", since="2023-06-01", until="2023-06-02",
                             sources="directory_audits", graph_url=g.url, client=fast_client(),
                             options=fast_options())
        second = collect_case(case, client_id="app", mode="client_secret", since="2023-06-02", until="2023-06-04",
                              sources="directory_audits", graph_url=g.url, client=fast_client(),
                              options=fast_options())
    assert first["complete"] and second["complete"]
    ledger = ledger_frame(Case.open(case_dir))
    assert list(ledger["slice_start"]) == ["2023-06-01T00:00:00Z", "2023-06-02T00:00:00Z", "2023-06-03T00:00:00Z"]
    assert ledger["complete"].all() and ledger["records"].sum() == len(expected_ids(RECORDS, "directory_audits"))
    ids = _ids(case, "directory_audits")
    assert sorted(ids) == sorted(expected_ids(RECORDS, "directory_audits"))
    assert not case.verify()
    assert not list((case_dir / WORK_DIR).rglob("*.jsonl.gz"))  # moved into raw/, nothing left behind
    actions = [c["action"] for c in case.custody()]
    assert actions.count("collect.start") == 2 and actions.count("collect.end") == 2
    assert actions.count("evidence.add") == 3
    evidence = case.evidence()
    assert all(e["query"]["requested"]["url"].startswith(g.url) for e in evidence)
    assert len(Case.open(case_dir).manifest["collection"]["runs"]) == 2
    # imported through the file importers: one directory_audit event per collected record
    events = case.read_events()
    assert sorted(events["record_id"]) == sorted(ids) and set(events["source"]) == {"directory_audit"}
    assert all(e["imported"] + e["duplicates"] + e["quarantined"] == e["records"] for e in case.evidence())
    assert first["imported"] and all(r["format"] == "graph-directory-audits" for r in first["imported"])
