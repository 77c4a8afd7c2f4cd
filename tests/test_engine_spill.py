"""Where DuckDB spills what does not fit in its memory limit: beside the case, not into the current directory.

At ten million events detect spills (docs/performance.md, session 8); DuckDB's own default is ``.tmp`` in the
working directory, which may be a small disk while the case's disk has room.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ir_toolkit.analysis.engine import DuckDBEngine
from ir_toolkit.case import Case
from ir_toolkit.case.lock import writes_case
from ir_toolkit.case.spill import SPILL_PREFIX

SPILLING = "SELECT count(*) AS n FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) r(i) ORDER BY h)"


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.name != ".lock")


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_a_writer_spills_under_the_case_and_leaves_nothing_behind(case_dir: Path, cwd: Path) -> None:
    seen: dict[str, list[Path]] = {}

    @writes_case("detect")
    def detect_like(case: Case) -> int:
        engine = DuckDBEngine(case, memory_limit="64MB")
        n = int(engine.run_sql(SPILLING)["n"].iloc[0])
        seen["open"] = [p for p in (case.root / "cache").glob(f"{SPILL_PREFIX}*") if any(p.iterdir())]
        engine.con.close()
        return n

    case = Case.open(case_dir)
    assert detect_like(case) == 3_000_000
    assert len(seen["open"]) == 1 and seen["open"][0].name.startswith(f"{SPILL_PREFIX}{os.getpid()}-")
    assert not (cwd / ".tmp").exists()  # DuckDB's default would have put it here
    assert not list((case.root / "cache").glob(f"{SPILL_PREFIX}*"))  # DuckDB removes its folder on close


def test_a_reader_of_a_case_never_analysed_leaves_it_untouched(case_dir: Path, cwd: Path) -> None:
    before = _tree(case_dir)
    case = Case.open(case_dir)
    engine = DuckDBEngine(case, memory_limit="64MB")
    assert engine.run_sql(SPILLING)["n"].tolist() == [3_000_000]
    engine.con.close()
    assert _tree(case_dir) == before  # no CASE/cache made by a reader: DuckDB's default spill place


def test_a_writer_removes_spill_folders_of_processes_that_are_gone(case_dir: Path) -> None:
    cache = case_dir / "cache"
    gone = cache / f"{SPILL_PREFIX}999999999-dead"  # above any pid_max: no such process
    mine = cache / f"{SPILL_PREFIX}{os.getpid()}-live"
    for folder in (gone, mine):
        folder.mkdir(parents=True)
        (folder / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 10)

    @writes_case("scope")
    def scope_like(case: Case) -> None:
        return None

    scope_like(Case.open(case_dir))
    assert not gone.exists() and (mine / "duckdb_temp_storage-0.tmp").is_file()
