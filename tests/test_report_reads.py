"""What the report, the notebooks and scope read more cheaply since session 10 is what they read before.

* ``casedata.load_findings`` parses a findings.parquet once per process (the playbook's notebooks 03-05 and its report
  run in one kernel) and again whenever its bytes changed; each caller gets its own copy.
* ``coverup.counted_findings`` reads each persistence-cover finding's records once: the same findings are left out
  as by the expression it replaced (kept here as the reference).
* ``family.members`` reads family.yaml with libyaml's safe loader where PyYAML has it: the same registry.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ir_toolkit.analysis.coverup import DETECTIONS, counted_findings
from ir_toolkit.analysis.family import FAMILY_YAML, members
from ir_toolkit.report import casedata
from ir_toolkit.schema import FINDING_COLUMNS, conform
from tests.timeline_events import findings, make_case


def _as_read(path: Path) -> pd.DataFrame:
    return conform(pd.read_parquet(path), FINDING_COLUMNS)


def test_findings_are_read_once_a_file_and_again_when_it_changes(tmp_path: Path) -> None:
    case = make_case(tmp_path / "case", with_findings=True)
    path = case.root / "findings.parquet"
    first = casedata.load_findings(case)
    pd.testing.assert_frame_equal(first, _as_read(path))
    assert len(first) == len(findings())
    first.loc[0, "verdict"] = "edited by a notebook"  # a caller's copy: the next reader does not see it
    pd.testing.assert_frame_equal(casedata.load_findings(case), _as_read(path))
    fewer = findings().iloc[1:].reset_index(drop=True)
    fewer.to_parquet(path)
    stat = path.stat()
    again = casedata.load_findings(case)
    assert len(again) == len(fewer)
    pd.testing.assert_frame_equal(again, _as_read(path))
    # rewritten within one tick of the clock: the same size and time, other bytes (one verdict of the same length)
    edited = fewer.assign(verdict=fewer["verdict"].where(fewer.index != 0, "XXXXXXXXX"[: len(fewer.loc[0, "verdict"])]))
    edited.to_parquet(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    shown = casedata.load_findings(case)
    assert shown.loc[0, "verdict"].startswith("X")
    pd.testing.assert_frame_equal(shown, _as_read(path))
    path.unlink()
    assert casedata.load_findings(case).empty  # no findings file: nothing kept is shown


def _ids(evidence: object) -> set[str]:
    return {str(r) for r in (list(evidence) if evidence is not None else []) if r is not None}


def reference_counted(found: pd.DataFrame) -> pd.DataFrame:
    """counted_findings as it was: every finding's records read twice."""
    strong = found[found["detection"].isin(DETECTIONS) & found["verdict"].isin(["confirmed", "likely"])]
    covered = {r for ev in strong["evidence"] for r in _ids(ev)}
    if not covered:
        return found
    dup = (found["detection"] == "persistence-cover") & found["evidence"].map(
        lambda ev: bool(_ids(ev)) and _ids(ev) <= covered)
    return found[~dup]


def test_counted_findings_leave_out_the_same_cover_findings_as_before() -> None:
    mail, rule = DETECTIONS
    rows = [
        (rule, "confirmed", ["r1", "r2"]), (mail, "likely", np.array(["m1"])), (rule, "possible", ["r9"]),
        ("persistence-cover", "likely", ["r1"]),             # every record reported: left out
        ("persistence-cover", "likely", np.array(["r1", "m1"])),
        ("persistence-cover", "confirmed", ["r1", "x"]),     # one record not reported: kept
        ("persistence-cover", "possible", ["r9"]),           # reported only by a possible finding: kept
        ("persistence-cover", "likely", []), ("persistence-cover", "likely", None),  # no records: kept
        ("orphan-token", "confirmed", ["r1"]),               # not a cover finding: kept
    ]
    found = pd.DataFrame([{"finding_id": f"f{i}", "detection": d, "verdict": v, "evidence": e}
                          for i, (d, v, e) in enumerate(rows)], index=[10 * i for i in range(len(rows))])
    kept = counted_findings(found)
    pd.testing.assert_frame_equal(kept, reference_counted(found))
    assert list(kept["finding_id"]) == ["f0", "f1", "f2", "f5", "f6", "f7", "f8", "f9"]
    no_strong = found[~found["detection"].isin(DETECTIONS)]
    pd.testing.assert_frame_equal(counted_findings(no_strong), reference_counted(no_strong))
    pd.testing.assert_frame_equal(counted_findings(found.iloc[0:0]), reference_counted(found.iloc[0:0]))


def test_the_family_registry_is_the_one_the_pure_python_loader_reads() -> None:
    expected = {str(k): dict(v) for k, v in yaml.safe_load(FAMILY_YAML.read_text(encoding="utf-8")).items()}
    assert members() == expected and "golden-saml" in expected
