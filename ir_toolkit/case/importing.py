"""``Case.import_files``: bring log exports into a case, losslessly and in bounded memory.

Per file, in this order:

1. Check it (exists, is a file, readable, not empty, a known format) - every file of the
   call is checked before anything is written, so a bad file leaves the case untouched.
2. Copy it into ``CASE/raw/imports/`` and hash it (:meth:`Case.add_evidence`).
3. A file whose sha256 was already imported completely adds nothing: it is reported with
   ``skipped: true``, ``imported: 0`` and every record counted as a duplicate.
4. Parse it in batches; write each batch (de-duplicated by (source, record_id)); send bad
   records to ``CASE/quarantine/<sha12>.jsonl`` with file, position and reason.
5. Record format and counts in case.json and the custody log.

``records == imported + duplicates + quarantined`` for every file, always.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ir_toolkit.errors import InputFormatError
from ir_toolkit.sources.formats import BATCH, FORMATS, Format, detect, sample
from ir_toolkit.sources.reader import CountingReader, Opened

if TYPE_CHECKING:
    from ir_toolkit.case.case import Case

log = logging.getLogger(__name__)


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


def import_files(case: Case, paths: Any, format: str = "auto", progress: bool = False,
                 dayfirst: bool = False, batch_size: int = BATCH) -> list[dict[str, Any]]:
    """Import log exports into the case.

    Args:
        case: The case (opened writable).
        paths: One path or a list of paths.
        format: ``auto`` (detect from content) or a NAME of ``ir_toolkit.sources.formats.FORMATS``.
        progress: Show a tqdm progress bar per file.
        dayfirst: Read locale dates ``a/b/yyyy`` as day/month instead of month/day.
        batch_size: Records per batch (bounds memory).

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
    return [_import_one(case, p, fmt, opened, progress, dayfirst, batch_size) for p, fmt, opened in checked]


def _import_one(case: Case, path: Path, fmt: Format, opened: Opened, progress: bool, dayfirst: bool,
                batch_size: int) -> dict[str, Any]:
    entry, is_new = case.add_evidence(path, source="import", format=fmt.NAME)
    sha = entry["sha256"]
    result: dict[str, Any] = {"path": str(path), "format": fmt.NAME, "sha256": sha, "evidence": entry["path"]}
    if not is_new and entry.get("records") is not None:
        result.update(records=entry["records"], imported=0, duplicates=entry["records"], quarantined=0, skipped=True)
        case.log_action("import.skip", path=str(path), sha256=sha, reason="same content already imported")
        return result
    stale = case.quarantine_dir / f"{sha[:12]}.jsonl"
    if stale.exists():  # an interrupted earlier import of this file: start its quarantine afresh
        stale.unlink()
    copy = case.root / entry["path"]
    counter = CountingReader()
    bar = _bar(progress, copy, path.name)
    records = imported = duplicates = quarantined = 0
    extra = {"container": opened.container, "encoding": opened.encoding, "gzip": opened.gzip}
    for batch in fmt.parse(copy, opened, evidence=entry["path"], batch_size=batch_size, dayfirst=dayfirst,
                           counter=counter):
        stored, dups = case.write_events(batch.events, tag=sha[:12])
        case.quarantine(sha, batch.quarantined)
        records += batch.records
        imported += stored
        duplicates += dups
        quarantined += len(batch.quarantined)
        if bar is not None:
            bar.update(counter.count - bar.n)
    if bar is not None:
        bar.close()
    counts = {"records": records, "imported": imported, "duplicates": duplicates, "quarantined": quarantined}
    case.update_evidence(sha, format=fmt.NAME, **counts, **extra)
    case.log_action("import", path=str(path), evidence=entry["path"], sha256=sha, format=fmt.NAME, **counts)
    if quarantined:
        log.warning("%s: %d of %d records quarantined (see %s)", path, quarantined, records,
                    case.quarantine_dir / f"{sha[:12]}.jsonl")
    result.update(counts, skipped=False)
    return result


def _bar(progress: bool, copy: Path, name: str) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    size = copy.stat().st_size
    return tqdm(total=size, unit="B", unit_scale=True, desc=f"import {name}", leave=False)
