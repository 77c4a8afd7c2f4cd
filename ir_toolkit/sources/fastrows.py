"""Pieces every DuckDB fast path shares (:mod:`ir_toolkit.sources.fastpath`, ``fastjson``, ``fastmap``).

Reading: a CSV file's rows as text columns (:func:`csv_rows`, Arrow's CSV reader in small blocks, whose
buffers the allocator reuses), numbered and grouped by kind within each block (:func:`grouped`), and a
reader's batches as tables of one batch size (:func:`rebatch`).
Merging: the rows the SQL mapped and the rows it refused, which go through the per-record mappers in
their place (:func:`merge_refused`), with the checks and column helpers the fast paths apply to every
decoded batch (:func:`maybe_deep`, :func:`ips`, :func:`one_array`, :func:`stripped`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ir_toolkit.sources import limits
from ir_toolkit.sources.batch import Batch, build_batch
from ir_toolkit.sources.fields import ip, loads
from ir_toolkit.sources.rawtext import Broken
from ir_toolkit.sources.reader import Opened

READ_AHEAD = "256MB"  # decoded records DuckDB keeps ready
MEMORY = "4GB"  # DuckDB's memory limit per connection
CSV_BLOCK = 1 << 20  # bytes per block of Arrow's CSV reader (a bigger row: read again in big blocks)
BIG_CSV_BLOCK = 32 << 20  # the blocks of that second read (a bigger row goes per record)


class FastPathStop(Exception):
    """The rest of the file goes through the per-record readers (e.g. a Graph page inside an array)."""


def csv_rows(path: Path, opened: Opened, columns: tuple[str, ...]) -> pa.RecordBatchReader:
    """The rows of a CSV file (a Purview export; ``columns``: names given to its columns in order) as
    text columns, streamed by Arrow's CSV reader (parses on all CPUs).

    Quoted fields may hold line breaks; an empty field is ``""``; blank lines are skipped (as the
    per-record CSV reader does); a row of another width, a record bigger than :data:`BIG_CSV_BLOCK` or
    invalid UTF-8 raises ArrowInvalid where it is met.

    The file is read in blocks of :data:`CSV_BLOCK` (1 MB): the allocator reuses buffers of that size,
    where blocks of tens of MB were given back to the system and every new one faulted in and zeroed
    again (a third of the Purview fast path's CPU went to the kernel). A row bigger than a block stops
    Arrow's reader ("straddling object"); the file is then read again in blocks of
    :data:`BIG_CSV_BLOCK`, the rows already returned skipped, so such a file stays on the fast path.
    """
    schema = pa.schema([(c, pa.string()) for c in columns])
    return pa.RecordBatchReader.from_batches(schema, _csv_batches(path, opened, columns))


def grouped(reader: pa.RecordBatchReader, size: int, last: Callable[[pa.RecordBatch], np.ndarray]
            ) -> pa.RecordBatchReader:
    """The rows of ``reader`` with their number (1 on) as a column ``pos``, reordered within each block.

    Every block of ``reader`` is cut where a group of ``size`` rows ends, and each piece puts the rows that
    ``last(piece)`` marks after the others (each kind in file order). A batch of ``size`` rows read from it
    holds the same rows as the file's (so a fallback from record ``done`` on still starts where it should),
    each kind in a few runs (two per block), which :meth:`ir_toolkit.case.store.EventStore.append` writes as
    slices instead of copying the batch by source. The copies are of one block at a time, whose buffers the
    allocator reuses; a whole batch copied by source faulted fresh memory in (a tenth of a Purview import).
    """
    schema = reader.schema.append(pa.field("pos", pa.int64()))

    def pieces() -> Iterator[pa.RecordBatch]:
        done = 0
        for rb in reader:
            start = 0
            while start < rb.num_rows:
                n = min(rb.num_rows - start, size - done % size)
                piece = rb.slice(start, n)
                marked = last(piece)
                order = np.concatenate([np.flatnonzero(~marked), np.flatnonzero(marked)])
                if marked.any() and not marked.all():
                    piece = piece.take(pa.array(order))
                pos = pa.array(order + (done + 1), pa.int64())
                yield pa.RecordBatch.from_arrays([*piece.columns, pos], schema=schema)
                start += n
                done += n

    return pa.RecordBatchReader.from_batches(schema, pieces())


def _csv_batches(path: Path, opened: Opened, columns: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
    done = 0
    try:
        with _csv_reader(path, opened, columns, CSV_BLOCK) as reader:
            for rb in reader:
                done += rb.num_rows
                yield rb
        return
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
    with _csv_reader(path, opened, columns, BIG_CSV_BLOCK) as reader:
        skip = done
        for rb in reader:
            if skip >= rb.num_rows:
                skip -= rb.num_rows
                continue
            yield rb.slice(skip) if skip else rb
            skip = 0


def _csv_reader(path: Path, opened: Opened, columns: tuple[str, ...], block: int) -> pacsv.CSVStreamingReader:
    stream = pa.input_stream(str(path), compression="gzip" if opened.gzip else None)
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(column_names=list(columns), skip_rows=1, block_size=block),
        parse_options=pacsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, escape_char=False,
                                         newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string()),
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))


def rebatch(reader: pa.RecordBatchReader, size: int) -> Iterator[pa.Table]:
    """The rows of ``reader`` as tables of ``size`` rows (the last one shorter), one chunk each."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for rb in itertools.chain(reader, [None]):
        if rb is not None:
            pending.append(rb)
            rows += rb.num_rows
            if rows < size:
                continue
        if not rows:
            return
        # DuckDB hands batches of exactly ``size`` rows: one batch is taken as it is (combine_chunks copies even
        # a single chunk, raw included); smaller pieces (another reader) are joined into one chunk
        table = pa.Table.from_batches(pending)
        if len(pending) > 1:
            table = table.combine_chunks()
        pending, rows = [], 0
        for start in range(0, table.num_rows, size):
            yield table.slice(start, size)


def one_array(column: pa.ChunkedArray) -> pa.Array:
    """One array of a column; no copy when it is one chunk (``combine_chunks`` would copy it anyway)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def stripped(arr: pa.Array) -> pa.Array:
    """The values with blanks trimmed, an empty one null."""
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def ips(arr: pa.Array) -> pa.Array:
    """:func:`ir_toolkit.sources.fields.ip` of every value (computed once per distinct value)."""
    arr = stripped(arr)
    uniques = pc.unique(arr)
    mapped = pa.array([ip(v) for v in uniques.to_pylist()], type=pa.string())
    return pc.take(mapped, pc.index_in(arr, value_set=uniques))


def maybe_deep(raws: pa.Array) -> np.ndarray:
    """Rows that may nest deeper than ``limits.MAX_DEPTH`` (vectorised; never misses one).

    Depth is read from the brackets alone; a row whose strings hold brackets, or whose brackets do
    not balance, counts as maybe deep too.
    """
    n = len(raws)
    flags = _opening_brackets(raws) > limits.MAX_DEPTH
    if raws.null_count:
        flags |= raws.is_null().to_numpy(zero_copy_only=False)
    if not flags.any():
        return flags
    rows = np.flatnonzero(flags)
    some = raws.take(pa.array(rows))
    quoted = pc.fill_null(pc.match_substring_regex(some, r'"[^"]*[\[\]{}][^"]*"'), True).to_numpy(zero_copy_only=False)
    marks = pc.replace_substring_regex(some, r"[^\[\]{}]+", "").cast(pa.large_string())
    data = np.frombuffer(marks.buffers()[2] or b"", dtype=np.uint8)
    offsets = np.frombuffer(marks.buffers()[1], dtype=np.int64)[marks.offset:marks.offset + len(marks) + 1]
    level = np.concatenate([[0], np.cumsum(np.where((data == ord("{")) | (data == ord("[")), 1, -1))])
    starts, ends = offsets[:-1], offsets[1:]
    deep = np.zeros(len(rows), bool)
    full = ends > starts
    if full.any():
        base = level[starts[full]]
        top = np.maximum.reduceat(level[1:], starts[full]) - base
        low = np.minimum.reduceat(level[1:], starts[full]) - base
        deep[full] = (top > limits.MAX_DEPTH) | (low < 0) | (level[ends[full]] != base)
    out = np.zeros(n, bool)
    out[rows] = deep | quoted
    return out


_SCAN = 1 << 20  # bytes scanned at a time by _opening_brackets (reused buffers: no fresh pages to fault in)


def _opening_brackets(raws: pa.Array) -> np.ndarray:
    """The number of ``{`` and ``[`` in each value of a string or binary array.

    numpy over the data buffer, a block at a time into two reused buffers (Arrow's ``count_substring``
    takes one slow pass per character; whole-buffer temporaries cost more in page faults than the scan).
    """
    n = len(raws)
    if not n:
        return np.zeros(0, np.int64)
    large = pa.types.is_large_string(raws.type) or pa.types.is_large_binary(raws.type)
    if not (large or pa.types.is_string(raws.type) or pa.types.is_binary(raws.type)):
        raws = raws.cast(pa.large_binary())
        large = True
    offsets = np.frombuffer(raws.buffers()[1], dtype=np.int64 if large else np.int32)[raws.offset:raws.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = raws.buffers()[2]
    text = np.frombuffer(data, dtype=np.uint8)[start:end] if data is not None and end > start else np.zeros(0, np.uint8)
    at = offsets.astype(np.int64) - start  # where each value starts (and the last one ends) in text
    before = np.full(n + 1, 0, np.int64)  # brackets before each of those places
    folded, hit = np.empty(min(_SCAN, len(text)), np.uint8), np.empty(min(_SCAN, len(text)), np.bool_)
    seen = 0
    for lo in range(0, len(text), _SCAN):
        m = min(_SCAN, len(text) - lo)
        np.bitwise_or(text[lo:lo + m], 0x20, out=folded[:m])  # "[" is 0x5B, "{" 0x7B: they differ in bit 0x20
        np.equal(folded[:m], ord("{"), out=hit[:m])
        found = np.flatnonzero(hit[:m])
        first, last = np.searchsorted(at, [lo, lo + m])
        before[first:last] = seen + np.searchsorted(found, at[first:last] - lo)
        seen += len(found)
    before[at >= len(text)] = seen
    return np.diff(before)


def merge_refused(frame: pd.DataFrame, keep: Any, raws: pa.Array, positions: list[int], *, evidence: str,
                  dayfirst: bool | None, hint: str, family: str | None) -> Batch:
    """The batch with the rows the SQL could not map (``keep`` false) mapped per record instead.

    ``frame`` holds every row as the SQL mapped it; the refused rows go through
    :func:`build_batch` and take their place (or leave it, quarantined; the quarantine entries in file order
    when the batch is not, :func:`grouped`). ``raw`` stays
    DuckDB's text of the record (the per-record mappers read that same text), so the big column is
    only copied when a row leaves the batch - except for a refused row without a record id, whose raw
    is the per-record path's text (the store derives such a row's id from it).
    """
    flags = np.asarray(keep, dtype=bool)
    n = len(flags)
    rest = sorted(np.flatnonzero(~flags).tolist(), key=positions.__getitem__)  # quarantined in file order
    slow = build_batch(((positions[i], _record(raws[i].as_py())) for i in rest), evidence=evidence,
                       dayfirst=dayfirst, hint=hint, family=family)
    events, index = slow.events, {positions[i]: i for i in rest}  # positions: record or line numbers
    mapped = {index[int(str(e).rsplit("#", 1)[1])]: j for j, e in enumerate(events["evidence"].tolist())}
    slot = np.full(n, -1, np.int64)  # a refused row's place in events (-1: quarantined, it leaves the batch)
    slot[list(mapped)] = list(mapped.values())
    rows = np.flatnonzero(flags | (slot >= 0))
    order = np.where(flags[rows], rows, n + slot[rows])
    small = [c for c in frame.columns if c != "raw"]
    merged = pd.concat([frame[small], events[small]], ignore_index=True) if len(events) else frame[small]
    merged = merged.take(order).reset_index(drop=True)
    kept = raws if len(rows) == n else raws.take(pa.array(rows, pa.int64()))
    kept = kept.cast(pa.string())
    ids = merged["record_id"]
    own = [k for k in np.flatnonzero(~flags[rows]).tolist() if pd.isna(ids.iloc[k])]
    if own:  # no record id: the store derives one from raw, so raw must be the per-record path's text
        texts = kept.to_pylist()
        for k in own:
            texts[k] = events["raw"].iloc[int(slot[rows[k]])]
        kept = pa.array(texts, pa.string())
    merged["raw"] = pd.Series(pd.arrays.ArrowExtensionArray(kept))
    return Batch(merged, slow.quarantined, len(flags))


def _record(text: str) -> Any:
    try:
        value = loads(text)
    except RecursionError:  # DuckDB reads deeper than Python decodes: the per-record readers take over
        raise FastPathStop("a record nested too deep for the decoder") from None
    except ValueError as exc:  # DuckDB wrote it, so it parses; kept for safety
        return Broken(f"unreadable record ({exc})", text)
    if isinstance(value, list) and value:  # the per-record readers read a nested array's items as records
        raise FastPathStop("an array inside the array")
    return value
