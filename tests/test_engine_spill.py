"""Where DuckDB spills what does not fit in its memory limit: beside the case, not into the current directory.

At ten million events detect spills (docs/performance.md, session 8); DuckDB's own default is ``.tmp`` in the
working directory, which may be a small disk while the case's disk has room.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ir_toolkit.analysis.engine import DuckDBEngine, spill_folder
from ir_toolkit.case import Case

SPILLING = "SELECT count(*) AS n FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) r(i) ORDER BY h)"


def test_a_query_over_the_memory_limit_spills_under_the_case(case_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    case = Case.open(case_dir)
    engine = DuckDBEngine(case, memory_limit="64MB")
    assert engine.run_sql(SPILLING)["n"].tolist() == [3_000_000]
    assert spill_folder(case).is_dir() and spill_folder(case).is_relative_to(case.root / "cache")
    assert not (cwd / ".tmp").exists()
    engine.con.close()
