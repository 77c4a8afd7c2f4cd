"""The canonical event store: Parquet files partitioned by source under CASE/events/.

Layout: ``events/<source>/part-<seq>.parquet``. Every append writes new part files
(never rewrites old ones) after dropping rows whose ``(source, record_id)`` is
already stored or repeated within the batch. Reading goes through DuckDB, so a
large case is scanned, filtered and projected without loading it whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ir_toolkit.case.spill import spill_beside_case
from ir_toolkit.schema import EVENT_COLUMN_NAMES, EVENT_COLUMNS, conform, empty_frame, to_arrow

log = logging.getLogger(__name__)


_SQL_TYPES = {"string": "VARCHAR", "int64": "BIGINT", "bool": "BOOLEAN", "list<item: string>": "VARCHAR[]"}


def _projection(present: Iterable[str], columns: Iterable[str]) -> str:
    """The select list of ``columns`` over stored files with the ``present`` columns; a column the stored files
    lack (a case written before the column was added to the schema) is read as a typed NULL."""
    present = set(present)
    types = {c.name: _SQL_TYPES.get(str(c.type), "TIMESTAMPTZ") for c in EVENT_COLUMNS}
    return ", ".join(c if c in present else f"CAST(NULL AS {types.get(c, 'VARCHAR')}) AS {c}" for c in columns)


def fallback_record_id(raw: object) -> str:
    """A content hash used as record id when a record carries none of its own."""
    return "sha1:" + hashlib.sha1(str(raw).encode("utf-8", "surrogatepass")).hexdigest()


RUNS = 1024  # a batch whose sources come in at most this many runs is split into slices, not copied


def by_source(table: pa.Table, sources: pa.ChunkedArray, names: list[str]) -> Iterator[pa.Table]:
    """The rows of each of ``names`` (in order), in the table's order; rows of no source are left out.

    One source: the table itself. Rows of each source in a few runs (the Purview fast path's batches,
    :func:`ir_toolkit.sources.fastrows.grouped`): slices of the table, no copy. Else a filter per source,
    which copies ``raw``, the big column, into fresh memory once more.
    """
    if sources.null_count == 0 and len(names) == 1:
        yield table
        return
    codes = np.asarray(pc.fill_null(pc.index_in(sources, value_set=pa.array(names, pa.string())), -1).to_numpy())
    cuts = np.flatnonzero(np.diff(codes)) + 1
    if len(cuts) >= RUNS:
        for source in names:
            yield table.filter(pc.equal(sources, source))
        return
    starts = np.concatenate(([0], cuts)).astype(np.int64)
    ends = np.concatenate((cuts, [len(codes)])).astype(np.int64)
    kinds = codes[starts]
    for k in range(len(names)):
        runs = [table.slice(a, e - a) for a, e in zip(starts[kinds == k].tolist(), ends[kinds == k].tolist(),
                                                      strict=True)]
        yield pa.concat_tables(runs)


PART_ROWS = 1_000_000  # rows in one part file at most, when an import holds parts open (``append(hold=True)``)


class _OpenPart:
    """A part file being written one row group per batch: a hidden ``.tmp`` until it is closed."""

    def __init__(self, folder: Path, tag: str, schema: pa.Schema) -> None:
        seq = len(list(folder.glob("*.parquet")))
        self.name = folder / f"part-{seq:05d}{'-' + tag if tag else ''}.parquet"
        self.tmp = folder / f".{self.name.name}.tmp"
        self.tag = tag
        self.rows = 0
        self.writer = pq.ParquetWriter(self.tmp, schema, **_PARQUET)

    def close(self) -> Path:
        self.writer.close()
        os.replace(self.tmp, self.name)  # renamed whole: a killed import leaves no torn part
        return self.name


_PARQUET = {"compression": "zstd", "compression_level": 1,
            "use_dictionary": [c for c in EVENT_COLUMN_NAMES if c != "raw"]}


class EventStore:
    """Append-only, de-duplicating Parquet store of canonical events.

    Args:
        root: The ``CASE/events`` folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._known: dict[str, set[str]] = {}
        self._written: list[Path] = []
        self._open: dict[str, _OpenPart] = {}

    def _files(self, sources: Iterable[str] | None = None) -> list[Path]:
        if not self.root.exists():
            return []
        dirs = [self.root / s for s in sources] if sources is not None else sorted(self.root.iterdir())
        return sorted(f for d in dirs if d.is_dir() for f in d.glob("*.parquet"))

    def sources(self) -> list[str]:
        """Sources that hold at least one stored event."""
        return sorted({f.parent.name for f in self._files()})

    def known_ids(self, source: str) -> set[str]:
        """record_ids already stored for ``source`` (loaded once, then kept up to date)."""
        if source not in self._known:
            ids: set[str] = set()
            for f in self._files([source]):
                ids.update(pq.read_table(f, columns=["record_id"]).column(0).to_pylist())
            self._known[source] = ids
        return self._known[source]

    def append(self, frame: pd.DataFrame, tag: str = "", hold: bool = False) -> tuple[int, int]:
        """Store new events, skipping those already stored.

        Args:
            frame: Events with canonical columns (``source`` and ``raw`` required).
            tag: Short text put in the part file names (e.g. the evidence file's hash prefix).
            hold: Add the events to a part file kept open per source (one row group per call), closed
                when it holds :data:`PART_ROWS` rows or by :meth:`close_parts`: an import of many batches
                writes a few big parts, not one small part per batch and source. Without it every call
                writes its own parts (and closes the parts held open for the same tag first).

        Returns:
            ``(stored, duplicates)`` row counts.
        """
        if frame.empty:
            return 0, 0
        table = to_arrow(frame)  # Arrow-backed columns convert without a copy
        ids = table.column("record_id")
        if ids.null_count:
            filled = [i if i is not None else fallback_record_id(r)
                      for i, r in zip(ids.to_pylist(), table.column("raw").to_pylist(), strict=True)]
            table = table.set_column(table.schema.get_field_index("record_id"), "record_id",
                                     pa.array(filled, pa.string()))
        stored = duplicates = 0
        sources = table.column("source")
        names = sorted(s for s in pc.unique(sources).to_pylist() if s is not None)
        for source, part in zip(names, by_source(table, sources, names), strict=True):
            known = self.known_ids(str(source))
            listed = part.column("record_id").to_pylist()
            batch_ids = set(listed)
            if len(batch_ids) == len(listed) and known.isdisjoint(batch_ids):
                new = part  # every id new and once in the batch (the usual batch): no loop over the rows
            else:
                fresh, seen = [], set()  # new, and first of its record_id in this batch
                for i in listed:
                    fresh.append(i not in known and i not in seen)
                    seen.add(i)
                new = part.filter(pa.array(fresh, pa.bool_()))
            duplicates += len(listed) - new.num_rows
            if not new.num_rows:
                continue
            folder = self.root / str(source)
            folder.mkdir(parents=True, exist_ok=True)
            part = self._open.get(str(source))
            if part is not None and (part.tag != tag or not hold):
                self._written.append(self._open.pop(str(source)).close())
                part = None
            if part is None:
                part = _OpenPart(folder, tag, new.schema)
            part.writer.write_table(new)
            part.rows += new.num_rows
            if hold and part.rows < PART_ROWS:
                self._open[str(source)] = part
            else:
                self._open.pop(str(source), None)
                self._written.append(part.close())
            known.update(batch_ids)
            stored += new.num_rows
        return stored, duplicates

    def close_parts(self) -> None:
        """Close the part files held open (:meth:`append` with ``hold``); :meth:`take_written` then lists them."""
        while self._open:
            self._written.append(self._open.popitem()[1].close())

    def discard_parts(self) -> None:
        """Remove the part files held open, unfinished, and forget the record ids they held (an import that
        failed: its file is imported again from the evidence)."""
        while self._open:
            source, part = self._open.popitem()
            with contextlib.suppress(Exception):
                part.writer.close()
            part.tmp.unlink(missing_ok=True)
            self._known.pop(source, None)

    def take_written(self) -> list[Path]:
        """The part files written since the last call (the case records their sha256 in its custody log)."""
        written, self._written = self._written, []
        return written

    def relation(self, con: duckdb.DuckDBPyConnection, files: list[Path]) -> duckdb.DuckDBPyRelation:
        """The part files as one DuckDB relation (by name, columns unioned).

        The paths are handed to DuckDB as values, never pasted into SQL text: a case folder
        named ``x'; COPY ...`` or ``case [1]`` is read like any other.
        """
        return con.read_parquet([str(f) for f in files], union_by_name=True)

    def connect(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with a view ``events`` over the whole store.

        The view has every canonical column even when the store is empty.
        """
        con = con or duckdb.connect()
        spill_beside_case(con, self.root.parent)
        files = self._files()
        if files:
            rel = self.relation(con, files)
            rel.project(_projection(rel.columns, EVENT_COLUMN_NAMES)).create_view("events", replace=True)
        else:
            con.register("_empty_events", pa.Table.from_pandas(empty_frame(), preserve_index=False))
            con.execute("CREATE OR REPLACE VIEW events AS SELECT * FROM _empty_events")
        return con

    def read(
        self,
        sources: Iterable[str] | None = None,
        columns: Iterable[str] | None = None,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Read events into pandas, sorted by time.

        Args:
            sources: Only these sources (default all).
            columns: Only these columns (default all canonical columns).
            where: An extra SQL predicate over the canonical columns (constant text written by the
                caller; values go in through :func:`ir_toolkit.sqltext.literal`).

        Returns:
            A DataFrame with canonical dtypes; ``time`` is tz-aware UTC.
        """
        cols = list(columns) if columns is not None else list(EVENT_COLUMN_NAMES)
        unknown = [c for c in cols if c not in EVENT_COLUMN_NAMES]
        if unknown:  # names become SQL text: only the canonical ones
            raise ValueError(f"not canonical event columns: {', '.join(map(repr, unknown))}")
        files = self._files(sources)
        if not files:
            return empty_frame()[cols]
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        spill_beside_case(con, self.root.parent)
        rel = self.relation(con, files)
        rel.create_view("stored_events")
        sql = f"SELECT {_projection(rel.columns, cols)} FROM stored_events"
        if where:
            sql += f" WHERE {where}"
        if "time" in cols:
            sql += " ORDER BY time, record_id" if "record_id" in cols else " ORDER BY time"
        table = con.sql(sql).to_arrow_table()
        frame = table.to_pandas()
        full = conform(frame) if set(cols) == set(EVENT_COLUMN_NAMES) else frame
        return full[cols]

    def count(self) -> dict[str, int]:
        """Stored events per source."""
        return {
            s: sum(pq.ParquetFile(f).metadata.num_rows for f in self._files([s])) for s in self.sources()
        }
