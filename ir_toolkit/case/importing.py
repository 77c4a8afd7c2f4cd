"""``Case.import_files``: bring log exports into a case, losslessly and in bounded memory.

Per file, in this order:

1. Check it (exists, is a file, readable, not empty, a known format) - every file of the
   call is checked before anything is written, so a bad file leaves the case untouched.
2. Copy it into ``CASE/raw/imports/`` and hash it (:meth:`Case.add_evidence`).
3. A file whose sha256 was already imported completely adds nothing: it is reported with
   ``skipped: true``, ``imported: 0`` and every record counted as a duplicate.
4. Parse it in batches (several files: in worker processes side by side, their batches
   spooled to ``CASE/.import-spool/`` and written here in file order); write each batch
   (de-duplicated by (source, record_id)); send bad records to ``CASE/quarantine/<sha12>.jsonl``
   with file, position and reason.
5. Record format and counts in case.json and the custody log.

``records == imported + duplicates + quarantined`` for every file, always.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.ipc  # noqa: F401 - pa.ipc

from ir_toolkit.case.lock import writes_case
from ir_toolkit.errors import InputFormatError
from ir_toolkit.sources.formats import BATCH, FORMATS, Batch, Format, detect, sample
from ir_toolkit.sources.reader import CountingReader, Opened

if TYPE_CHECKING:
    from ir_toolkit.case.case import Case

log = logging.getLogger(__name__)
PARALLEL_BYTES = 128 << 20


def _check(path: Path, format: str) -> tuple[Format, Opened]:
    """The format and container of one file; raises InputFormatError with one clear line."""
    if not path.exists():
        raise InputFormatError(f"{path}: no such file")
    if path.is_dir():
        raise InputFormatError(f"{path}: is a folder, not a file (name the export files inside it)")
    if not os.access(path, os.R_OK):
        raise InputFormatError(f"{path}: cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise InputFormatError(f"{path}: file is empty")
    if format != "auto" and format not in FORMATS:
        raise InputFormatError(f"unknown format {format!r}: choose auto or one of {', '.join(FORMATS)}")
    try:
        s = sample(path)
    except ValueError as exc:
        raise InputFormatError(f"{path}: {exc}") from None
    except (OSError, EOFError) as exc:
        raise InputFormatError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    if format == "auto":
        fmt = detect(s)
        if fmt is None:
            raise InputFormatError(
                f"{path}: unknown format ({s.opened.container.upper()} that is no Graph, Purview, Management API, "
                f"Log Analytics or Entra export); name one with --format ({', '.join(FORMATS)})")
        return fmt, s.opened
    fmt = FORMATS[format]
    if s.opened.container not in fmt.containers:
        raise InputFormatError(f"{path}: is {s.opened.container.upper()}, but format {format} reads "
                               f"{'/'.join(c.upper() for c in fmt.containers)}")
    return fmt, s.opened


@writes_case("import")
def import_files(case: Case, paths: Any, format: str = "auto", progress: bool = False,
                 dayfirst: bool = False, batch_size: int = BATCH, workers: int | None = None,
                 fast: bool | None = None) -> list[dict[str, Any]]:
    """Import log exports into the case.

    Args:
        case: The case (opened writable).
        paths: One path or a list of paths.
        format: ``auto`` (detect from content) or a NAME of ``ir_toolkit.sources.formats.FORMATS``.
        progress: Show a tqdm progress bar per file.
        dayfirst: Read locale dates ``a/b/yyyy`` as day/month instead of month/day.
        batch_size: Records per batch (bounds memory).
        workers: Processes parsing files side by side (default: one per file, at most 4 and one
            CPU fewer than the machine has, when the files hold 128 MB or more and the machine has
            4 CPUs or more; else 1). Events are still written in file order: results do not depend on it.
        fast: Decode Graph sign-in arrays and Purview CSVs through DuckDB (``ir_toolkit.sources.fastpath``;
            the same events, faster); None: for files of 16 MB or more; False: never.

    Returns:
        One dict per file: path, format, records, imported, duplicates, quarantined, sha256,
        evidence (case-relative copy) and skipped (True when the same content was imported before).

    Raises:
        InputFormatError: a file is missing, a folder, unreadable, empty or of unknown format
            (checked for every file before any is imported).
    """
    files = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if not files:
        raise InputFormatError("no files to import")
    checked = [(p, *_check(p, format)) for p in files]
    jobs = [_start(case, p, fmt, opened) for p, fmt, opened in checked]
    firsts: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:  # the same content named twice in one call is parsed once
        sha = job["entry"]["sha256"]
        if "skipped" not in job["result"] and sha not in firsts:
            firsts[sha] = job
            todo.append(job)
    if workers is None:  # workers cost a second or two to start and compete with the writer: big imports,
        cpus = os.cpu_count() or 1  # machines with CPUs to spare (on 2 CPUs the bench measured no gain)
        size = sum((case.root / j["entry"]["path"]).stat().st_size for j in todo)
        workers = min(len(todo), cpus - 1, 4) if size >= PARALLEL_BYTES and cpus >= 4 else 1
    if workers > 1 and len(todo) > 1:
        _in_workers(case, todo, workers, progress, dayfirst, batch_size, fast)
    else:
        for job in todo:
            _finish(case, job, job["fmt"].parse(case.root / job["entry"]["path"], job["opened"],
                                                 evidence=job["entry"]["path"], batch_size=batch_size,
                                                 dayfirst=dayfirst, counter=job["counter"], fast=fast), progress)
    for job in jobs:
        first = firsts.get(job["entry"]["sha256"])
        if first is not None and first is not job and "skipped" not in job["result"]:
            records = first["result"]["records"]
            job["result"].update(records=records, imported=0, duplicates=records, quarantined=0, skipped=True)
    return [j["result"] for j in jobs]


def _start(case: Case, path: Path, fmt: Format, opened: Opened) -> dict[str, Any]:
    """Copy and hash one file into the case; decide whether it needs parsing."""
    entry, is_new = case.add_evidence(path, source="import", format=fmt.NAME)
    sha = entry["sha256"]
    result: dict[str, Any] = {"path": str(path), "format": fmt.NAME, "sha256": sha, "evidence": entry["path"]}
    if not is_new and entry.get("records") is not None:
        result.update(records=entry["records"], imported=0, duplicates=entry["records"], quarantined=0, skipped=True)
        case.log_action("import.skip", path=str(path), sha256=sha, reason="same content already imported")
    else:
        stale = case.quarantine_dir / f"{sha[:12]}.jsonl"
        if stale.exists():  # an interrupted earlier import of this file: start its quarantine afresh
            stale.unlink()
    return {"path": path, "fmt": fmt, "opened": opened, "entry": entry, "result": result, "counter": CountingReader()}


def _finish(case: Case, job: dict[str, Any], batches: Iterator[Batch], progress: bool) -> None:
    """Write one file's batches into the case and record its counts."""
    entry, fmt, opened, path = job["entry"], job["fmt"], job["opened"], job["path"]
    sha = entry["sha256"]
    bar = _bar(progress, case.root / entry["path"], path.name)
    records = imported = duplicates = quarantined = 0
    for batch in batches:
        stored, dups = case.write_events(batch.events, tag=sha[:12])
        case.quarantine(sha, batch.quarantined)
        records += batch.records
        imported += stored
        duplicates += dups
        quarantined += len(batch.quarantined)
        if bar is not None:
            bar.update(max(job["counter"].count - bar.n, 0))
    if bar is not None:
        bar.close()
    counts = {"records": records, "imported": imported, "duplicates": duplicates, "quarantined": quarantined}
    extra = {"container": opened.container, "encoding": opened.encoding, "gzip": opened.gzip}
    case.update_evidence(sha, format=fmt.NAME, **counts, **extra)
    case.log_action("import", path=str(path), evidence=entry["path"], sha256=sha, format=fmt.NAME, **counts)
    if quarantined:
        log.warning("%s: %d of %d records quarantined (see %s)", path, quarantined, records,
                    case.quarantine_dir / f"{sha[:12]}.jsonl")
    job["result"].update(counts, skipped=False)


# ----- files parsed side by side ----------------------------------------------------------------
def _spool(copy: str, fmt_name: str, opened: Opened, evidence: str, batch_size: int, dayfirst: bool,
           folder: str, fast: bool | None) -> int:
    """Worker process: parse one file, writing each batch to ``folder`` (Arrow IPC + JSON)."""
    n = 0
    for batch in FORMATS[fmt_name].parse(Path(copy), opened, evidence=evidence, batch_size=batch_size,
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


def _in_workers(case: Case, todo: list[dict[str, Any]], workers: int, progress: bool, dayfirst: bool,
                batch_size: int, fast: bool | None) -> None:
    """Parse files in worker processes (spooled to disk); write their events here, in file order."""
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
                    job["entry"]["path"], batch_size, dayfirst, str(folder), fast)))
            for job, folder, future in futures:
                _finish(case, job, _unspool(folder, future.result()), progress)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def _bar(progress: bool, copy: Path, name: str) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    size = copy.stat().st_size
    return tqdm(total=size, unit="B", unit_scale=True, desc=f"import {name}", leave=False)
