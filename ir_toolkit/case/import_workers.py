"""Files parsed side by side: worker processes spool each file's batches to disk, the importer writes them.

Each worker parses one file (``Format.parse``) and writes every batch to ``CASE/.import-spool/<sha12>/``
as an Arrow IPC file of its events plus a JSON file of its record count and quarantined records; the
importing process reads them back in file order and writes them into the case, so the result does not
depend on how many workers ran (:mod:`ir_toolkit.case.importing`).
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.ipc  # noqa: F401 - pa.ipc

from ir_toolkit.sources.formats import EMPTY, FORMATS, Batch, Format
from ir_toolkit.sources.reader import Opened

if TYPE_CHECKING:
    from ir_toolkit.case.case import Case

Finish = Callable[["Case", dict[str, Any], Iterator[Batch], Any], None]


def _format(name: str) -> Format:
    return EMPTY if name == EMPTY.NAME else FORMATS[name]


def _spool(copy: str, fmt_name: str, opened: Opened, evidence: str, batch_size: int, dayfirst: bool | None,
           folder: str, fast: bool | None) -> int:
    """Worker process: parse one file, writing each batch to ``folder`` (Arrow IPC + JSON)."""
    n = 0
    for batch in _format(fmt_name).parse(Path(copy), opened, evidence=evidence, batch_size=batch_size,
                                         dayfirst=dayfirst, fast=fast):
        table = pa.Table.from_pandas(batch.events, preserve_index=False)
        with pa.OSFile(f"{folder}/{n:06d}.arrow", "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        meta = {"records": batch.records, "quarantined": batch.quarantined}
        Path(f"{folder}/{n:06d}.json").write_text(json.dumps(meta, ensure_ascii=False, default=str), "utf-8")
        n += 1
    return n


def _arrow_dtype(t: pa.DataType) -> Any:
    return None if pa.types.is_timestamp(t) else pd.ArrowDtype(t)


def _unspool(folder: Path, count: int) -> Iterator[Batch]:
    for i in range(count):
        with pa.memory_map(str(folder / f"{i:06d}.arrow")) as source:
            events = pa.ipc.open_file(source).read_all().to_pandas(types_mapper=_arrow_dtype)
        meta = json.loads((folder / f"{i:06d}.json").read_text("utf-8"))
        yield Batch(events, meta["quarantined"], meta["records"])
        (folder / f"{i:06d}.arrow").unlink()
        (folder / f"{i:06d}.json").unlink()


def in_workers(case: Case, todo: list[dict[str, Any]], workers: int, bar: Any, batch_size: int,
               fast: bool | None, finish: Finish) -> None:
    """Parse files in worker processes (spooled to disk); write their events here, in file order.

    Args:
        case: The case (opened writable).
        todo: The import's jobs (``ir_toolkit.case.importing``): copy, format, container, day order.
        workers: Processes parsing side by side.
        bar: The call's progress bar or None.
        batch_size: Records per batch.
        fast: The fast-path choice (``Format.parse``).
        finish: Writes one job's batches into the case and records its counts (called in file order).
    """
    spool = case.root / ".import-spool"
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = []
            for job in todo:
                folder = spool / job["entry"]["sha256"][:12]
                folder.mkdir(parents=True, exist_ok=True)
                futures.append((job, folder, pool.submit(
                    _spool, str(case.root / job["entry"]["path"]), job["fmt"].NAME, job["opened"],
                    job["entry"]["path"], batch_size, job["dayfirst"], str(folder), fast)))
            for job, folder, future in futures:
                finish(case, job, _unspool(folder, future.result()), bar)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
