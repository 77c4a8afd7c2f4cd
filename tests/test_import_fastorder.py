"""Row order on the Purview fast path: each CSV block's rows are grouped by source before DuckDB reads them
(:func:`ir_toolkit.sources.fastrows.grouped`) so that the event store writes slices, not copies
(:func:`ir_toolkit.case.store.by_source`); the stored rows of each source and the quarantine entries stay in
file order, as the per-record path writes them."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from conftest import DATA

from ir_toolkit.case import Case
from ir_toolkit.case.importing import import_files
from ir_toolkit.case.store import RUNS, by_source
from ir_toolkit.sources.fastrows import grouped

AUDIT = DATA / "sample-tenant" / "purview" / "audit_search_export.csv.gz"


def _rows() -> list[list[str]]:
    with gzip.open(AUDIT, "rt", encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _stored(root: Path) -> dict[str, list[tuple[int, str, Any]]]:
    """Each source's stored rows as the part files hold them: (position, record id, raw decoded)."""
    out: dict[str, list[tuple[int, str, Any]]] = {}
    for part in sorted((root / "events").glob("*/*.parquet")):
        t = pq.read_table(part, columns=["evidence", "record_id", "raw"]).to_pylist()
        out.setdefault(part.parent.name, []).extend(
            (int(r["evidence"].rsplit("#", 1)[1]), r["record_id"], json.loads(r["raw"])) for r in t)
    return out


def _imported(root: Path, path: Path, fast: bool) -> tuple[dict[str, Any], Case]:
    case = Case.init(root, tenant="contoso.com")
    [res] = import_files(case, [path], fast=fast, batch_size=37)
    return res, case


def test_purview_sources_and_quarantine_in_file_order(tmp_path: Path) -> None:
    """Purview rows map on one DuckDB thread, fetched by a reader thread (readahead.ahead) while the batch
    before is mapped: the sources and the quarantine keep the file order."""
    rows = _rows()[:301]
    header = rows[0]
    audit, outer = header.index("AuditData"), header.index("Operation")
    ops = [r[outer] for r in rows[1:]]
    assert "MailItemsAccessed" in ops and len(set(ops)) > 2  # the sources interleave
    # quarantined, between rows of both sources; in the batch of rows 38-74 a MailItemsAccessed row (grouped
    # last) before another one
    mail = next(i for i in range(38, 60) if ops[i - 1] == "MailItemsAccessed")
    other = next(i for i in range(mail + 1, 75) if ops[i - 1] != "MailItemsAccessed")
    for i in (5, mail, other, 150):
        rows[i][audit] = '{"Id": ' if i % 2 else "[1]"
    for i in (20, 21, 90, 200):  # the CSV column says one thing, the record another: grouped by the column
        data = json.loads(rows[i][audit])
        was_mail = data.get("Operation") == "MailItemsAccessed"
        data["Operation"] = "FileAccessed" if was_mail else "MailItemsAccessed"
        rows[i][audit] = json.dumps(data)
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path = tmp_path / "audit.csv"
    path.write_bytes(out.getvalue().encode("utf-8-sig"))
    res_f, fast = _imported(tmp_path / "fast", path, True)
    res_s, slow = _imported(tmp_path / "slow", path, False)
    assert res_f == res_s and res_f["quarantined"] == 4 and res_f["records"] == 300
    stored_f, stored_s = _stored(fast.root), _stored(slow.root)
    assert set(stored_f) == {"mail_access", "audit_other"}
    assert stored_f == stored_s  # the same rows, in the same order in each source's part files
    for kept in stored_f.values():
        positions = [p for p, _, _ in kept]
        assert positions == sorted(positions)
    assert fast.quarantined()["position"].tolist() == slow.quarantined()["position"].tolist() == \
        [5, mail, other, 150]


def test_grouped_numbers_rows_and_puts_marked_ones_last_within_each_group() -> None:
    schema = pa.schema([("v", pa.int64())])
    blocks = [pa.record_batch([pa.array([1, 2, 3, 4, 5])], schema=schema),
              pa.record_batch([pa.array([6, 7, 8])], schema=schema)]
    reader = pa.RecordBatchReader.from_batches(schema, iter(blocks))
    out = pa.Table.from_batches(list(grouped(reader, 4, lambda rb: rb.column("v").to_numpy() % 2 == 1)))
    # groups of 4 rows: [1 2 3 4] [5 | 6 7 8] (the second cut where the first block ends)
    assert out.column("v").to_pylist() == [2, 4, 1, 3, 5, 6, 8, 7]
    assert out.column("pos").to_pylist() == [2, 4, 1, 3, 5, 6, 8, 7]


def test_by_source_slices_runs_and_filters_interleaved_rows() -> None:
    raw = pa.array([f"r{i}" for i in range(12)])
    runs = pa.table({"source": ["a"] * 4 + ["b"] * 3 + [None] + ["a"] * 2 + ["b"] * 2, "raw": raw})
    parts = list(by_source(runs, runs.column("source"), ["a", "b"]))
    assert [p.column("raw").to_pylist() for p in parts] == [["r0", "r1", "r2", "r3", "r8", "r9"],
                                                             ["r4", "r5", "r6", "r10", "r11"]]
    # slices of the table: the first run's values are the table's own buffer, not a copy
    assert parts[0].column("raw").chunk(0).buffers()[2].address == runs.column("raw").chunk(0).buffers()[2].address
    n = 2 * RUNS + 2
    mixed = pa.table({"source": ["a", "b"] * (n // 2), "raw": pa.array(np.arange(n).astype(str))})
    a, b = by_source(mixed, mixed.column("source"), ["a", "b"])
    assert a.column("raw").num_chunks == 1 and a.equals(mixed.filter(pc.equal(mixed.column("source"), "a")))
    assert b.num_rows == n // 2
    whole = pa.table({"source": ["a"] * 3, "raw": ["x", "y", "z"]})
    assert next(by_source(whole, whole.column("source"), ["a"])) is whole
