"""``Case.import_files``: bring log exports into a case, losslessly and in bounded memory.

Folders named are walked and ZIP archives unpacked into the case's scratch folder
(:mod:`ir_toolkit.sources.containers`); then, per file, in this order:

1. Check it (a regular file, readable, not empty, a known format or an empty result); a file that
   fails is reported and skipped (``status: not-imported``), the others go on; when none is left,
   or a file names another tenant than the case's (:mod:`ir_toolkit.case.tenancy`), the call stops
   before anything is written. A CSV's day/month order is decided here (:mod:`ir_toolkit.sources.excel`).
2. Copy it into ``CASE/raw/imports/`` and hash it (:meth:`Case.add_evidence`); archives are hashed
   too and tied to their members (:mod:`ir_toolkit.case.archive_evidence`).
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

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ir_toolkit.case import archive_evidence, import_workers, tenancy
from ir_toolkit.case.lock import writes_case
from ir_toolkit.errors import InputFormatError
from ir_toolkit.sources import containers, excel
from ir_toolkit.sources.fields import normalise_keys
from ir_toolkit.sources.filechecks import is_empty_result
from ir_toolkit.sources.formats import BATCH, EMPTY, FORMATS, Batch, Format, Sample, detect, sample
from ir_toolkit.sources.reader import CountingReader, Opened, open_text, read_records

if TYPE_CHECKING:
    from ir_toolkit.case.case import Case

log = logging.getLogger(__name__)
PARALLEL_BYTES = 128 << 20


def _check(path: Path, format: str) -> tuple[Format, Opened, Sample]:
    """The format, container and sample of one file; raises InputFormatError with one clear line."""
    if not path.exists():
        raise InputFormatError(f"{path}: no such file")
    if path.is_dir():
        raise InputFormatError(f"{path}: is a folder, not a file (name the export files inside it)")
    if not path.is_file():
        raise InputFormatError(f"{path}: is not a regular file")
    if not os.access(path, os.R_OK):
        raise InputFormatError(f"{path}: cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise InputFormatError(f"{path}: file is empty")
    try:
        s = sample(path)
    except ValueError as exc:
        raise InputFormatError(f"{path}: {exc}") from None
    except (OSError, EOFError) as exc:
        raise InputFormatError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    if format == "auto":
        fmt = detect(s)
        if fmt is None and is_empty_result(path, s.opened.container, s.head, s.header, len(s.records)):
            fmt = EMPTY
        if fmt is None:
            raise InputFormatError(
                f"{path}: unknown format ({s.opened.container.upper()} that is no Graph, Purview, Management API, "
                f"Log Analytics or Entra export); name one with --format ({', '.join(FORMATS)})")
        return fmt, s.opened, s
    fmt = FORMATS[format]
    if s.opened.container not in fmt.containers:
        raise InputFormatError(f"{path}: is {s.opened.container.upper()}, but format {format} reads "
                               f"{'/'.join(c.upper() for c in fmt.containers)}")
    return fmt, s.opened, s


@writes_case("import")
def import_files(case: Case, paths: Any, format: str = "auto", progress: bool = False,
                 dayfirst: bool | None = None, batch_size: int = BATCH, workers: int | None = None,
                 fast: bool | None = None, allow_other_tenant: bool = False) -> list[dict[str, Any]]:
    """Import log exports into the case: files, folders (recursively) and ZIP archives.

    Args:
        case: The case (opened writable).
        paths: One path or a list of paths: export files, folders, ZIP archives.
        format: ``auto`` (detect from content) or a NAME of ``ir_toolkit.sources.formats.FORMATS``.
        progress: Show a tqdm progress bar per file.
        dayfirst: Read locale dates ``a/b/yyyy`` as day/month (True) or month/day (False); None
            (default): decide per file from its own values (:mod:`ir_toolkit.sources.excel`).
        batch_size: Records per batch (bounds memory).
        workers: Processes parsing files side by side (default: one per file, at most 4 and one
            CPU fewer than the machine has, when the files hold 128 MB or more and the machine has
            4 CPUs or more; else 1). Events are still written in file order: results do not depend on it.
        fast: Decode Graph sign-in arrays and Purview CSVs through DuckDB (``ir_toolkit.sources.fastpath``;
            the same events, faster); None: for files of 16 MB or more; False: never.
        allow_other_tenant: Import logs that name another tenant than the case's.

    Returns:
        One dict per file (archive members and a folder's files included): path, format, status,
        records, imported, duplicates, quarantined, sha256, evidence (case-relative copy), skipped
        (True when the same content was imported before) and, when not everything was imported,
        reason. ``status`` is ``imported``, ``already-imported``, ``archive`` (a ZIP: its members
        follow), ``not-imported`` (unknown, unreadable, refused by a bound: reason) or
        ``all-quarantined`` (recognised, but every record went to quarantine: reason).

    Raises:
        InputFormatError: a named path does not exist, ``format`` is unknown, nothing named is a
            known export, or a file names another tenant (all checked before anything is written).
    """
    named = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if not named:
        raise InputFormatError("no files to import")
    if format != "auto" and format not in FORMATS:
        raise InputFormatError(f"unknown format {format!r}: choose auto or one of {', '.join(FORMATS)}")
    for p in named:
        if not p.exists():
            raise InputFormatError(f"{p}: no such file")
    scratch = case.root / ".import-unpack" / uuid.uuid4().hex
    if scratch.parent.is_symlink():  # archives are unpacked inside the case, never through a link out of it
        raise InputFormatError(f"{scratch.parent}: is a symbolic link; remove it (the importer unpacks archives there)")
    started = time.perf_counter()
    try:
        results = _import(case, named, scratch, format, progress, dayfirst, batch_size, workers, fast,
                          allow_other_tenant)
        log.info("%s", summary_line(results, time.perf_counter() - started))
        return results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch.parent.rmdir()  # when no other import is unpacking into the case


# Exports that carry again records another log holds first-hand, with less of them: Defender's CloudAppEvents
# RawEventData is the unified audit log record with its lists written as text ("@{...}", "System.Object[]": a
# MailItemsAccessed record's message ids are gone). Of one record imported twice the first stored is kept, so
# in one call these are parsed after the other files (Purview, OfficeActivity, Management API exports).
RECARRIERS = frozenset({"defender-hunting-csv", "defender-hunting-json", "defender-streaming"})


def _import(case: Case, named: list[Path], scratch: Path, format: str, progress: bool, dayfirst: bool | None,
            batch_size: int, workers: int | None, fast: bool | None, allow_other_tenant: bool) -> list[dict[str, Any]]:
    found = containers.expand(named, scratch, exclude=case.root)
    left_out = [_not_imported(s.shown, s.reason, s.archive, s.member) for s in found.skipped]
    checked: list[tuple[containers.Candidate, Format, Opened, Sample]] = []
    problems: list[str] = [f"{containers.display(s.shown)}: {s.reason}" for s in found.skipped]
    for cand in found.files:
        if cand.shown in found.archives:
            continue
        try:
            fmt, opened, s = _check(cand.path, format)
        except InputFormatError as exc:
            line = str(exc).replace(str(cand.path), cand.shown, 1)
            problems.append(containers.display(line))
            reason = line[len(cand.shown) + 2:] if line.startswith(cand.shown + ": ") else line
            left_out.append(_not_imported(cand.shown, reason.split("; name one with --format", 1)[0],
                                          cand.archive, cand.member))
            continue
        checked.append((cand, fmt, opened, s))
    if not checked:
        if not problems:
            raise InputFormatError(f"{', '.join(map(str, named))}: no files to import in it")
        if len(problems) == 1:
            raise InputFormatError(problems[0])
        raise InputFormatError(f"nothing imported: none of {len(problems)} files is a known export "
                               f"(first: {problems[0]})")
    tenants = tenancy.check(case, [(c.shown, s.records) for c, _, _, s in checked], allow_other_tenant)
    orders = {c.shown: _date_order(c.path, o, s, dayfirst) for c, _, o, s in checked}
    tenancy.pin(case, tenants)
    archives: dict[str, dict[str, Any]] = {}
    for shown, info in found.archives.items():  # parents before the archives inside them
        archives[shown] = archive_evidence.record_archive(case, shown, info, archives)
    jobs = []
    checked.sort(key=lambda c: c[1].NAME in RECARRIERS)  # (stable) results keep the named order below
    for cand, fmt, opened, _ in checked:
        job = _start(case, cand, fmt, opened, orders[cand.shown], dayfirst)
        if cand.archive is not None:
            archive_evidence.record_member(case, archives[cand.archive], cand.member, cand.shown, job["entry"],
                                           job["is_new"])
        jobs.append(job)
    _parse(case, jobs, progress, batch_size, workers, fast)
    for r in left_out:  # the custody log says what was handed over but not imported, and why
        case.log_action("import.left_out", path=r["path"], reason=r["reason"])
    results = [a["result"] for a in archives.values()] + [j["result"] for j in jobs] + left_out
    order = {c.shown: i for i, c in enumerate(found.files)}
    return sorted(results, key=lambda r: order.get(r["path"], len(order)))


def _date_order(path: Path, opened: Opened, s: Sample, dayfirst: bool | None) -> str | None:
    """The day/month order of a CSV's locale dates (:func:`ir_toolkit.sources.excel.date_order`);
    None when it has none. An order the responder named is not checked against the file."""
    if opened.container != "csv":
        return None
    columns = excel.date_columns(s.records)  # normalised keys
    if not columns:
        return None
    if dayfirst is not None:
        return excel.DAY_FIRST if dayfirst else excel.MONTH_FIRST
    with open_text(path, opened) as fh:
        keyed = ((n, normalise_keys(r) if isinstance(r, dict) else r)
                 for n, r in read_records(fh, "csv", opened.delimiter))
        return excel.date_order(keyed, columns)


def _not_imported(shown: str, reason: str, archive: str | None = None, member: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"path": shown, "format": None, "status": "not-imported", "records": 0, "imported": 0,
                              "duplicates": 0, "quarantined": 0, "skipped": True, "reason": reason}
    if archive is not None:
        result.update(archive=archive, member=member)
    return result


def _parse(case: Case, jobs: list[dict[str, Any]], progress: bool, batch_size: int, workers: int | None,
           fast: bool | None) -> None:
    firsts: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:  # the same content named twice in one call is parsed once
        sha = job["entry"]["sha256"]
        if "skipped" not in job["result"] and sha not in firsts:
            firsts[sha] = job
            if job["fmt"] is EMPTY:  # an empty result: its wrapper is no record
                _finish(case, job, iter(()), None)
            else:
                todo.append(job)
    bar = _bar(progress, [case.root / j["entry"]["path"] for j in todo])
    try:
        _parse_todo(case, todo, bar, batch_size, workers, fast)
    finally:
        if bar is not None:
            bar.close()
    for job in jobs:
        first = firsts.get(job["entry"]["sha256"])
        if first is not None and first is not job and "skipped" not in job["result"]:
            records = first["result"]["records"]
            job["result"].update(records=records, imported=0, duplicates=records, quarantined=0, skipped=True,
                                 status="already-imported")


def _parse_todo(case: Case, todo: list[dict[str, Any]], bar: Any, batch_size: int, workers: int | None,
                fast: bool | None) -> None:
    if workers is None:  # workers cost a second or two to start and compete with the writer: big imports,
        cpus = os.cpu_count() or 1  # machines with CPUs to spare (on 2 CPUs the bench measured no gain)
        size = sum((case.root / j["entry"]["path"]).stat().st_size for j in todo)
        workers = min(len(todo), cpus - 1, 4) if size >= PARALLEL_BYTES and cpus >= 4 else 1
    if workers > 1 and len(todo) > 1:
        import_workers.in_workers(case, todo, workers, bar, batch_size, fast, _finish)
    else:
        for job in todo:
            _finish(case, job, job["fmt"].parse(case.root / job["entry"]["path"], job["opened"],
                                                 evidence=job["entry"]["path"], batch_size=batch_size,
                                                 dayfirst=job["dayfirst"], counter=job["counter"], fast=fast),
                    bar)


def _start(case: Case, cand: containers.Candidate, fmt: Format, opened: Opened, order: str | None,
           dayfirst: bool | None) -> dict[str, Any]:
    """Copy and hash one file into the case; decide whether it needs parsing."""
    path = cand.path
    if cand.archive is not None:  # unpacked into the case's scratch folder: moved into raw/
        entry, is_new = case.add_evidence(path, source="import", format=fmt.NAME, move=True)
    else:
        entry, is_new = case.add_evidence(path, source="import", format=fmt.NAME)
    sha = entry["sha256"]
    result: dict[str, Any] = {"path": cand.shown, "format": fmt.NAME, "sha256": sha, "evidence": entry["path"]}
    if cand.archive is not None:
        result.update(archive=cand.archive, member=cand.member)
    # an earlier import that quarantined ambiguous dates is redone once the order is named
    redo = dayfirst is not None and entry.get("date_order") == excel.AMBIGUOUS
    if not is_new and entry.get("records") is not None and not redo:
        result.update(records=entry["records"], imported=0, duplicates=entry["records"], quarantined=0, skipped=True,
                      status="already-imported")
        if entry["records"] and entry.get("quarantined") == entry["records"]:  # still nothing of it in the case
            result.update(status="all-quarantined", reason="imported before, and every record was quarantined "
                                                          f"(see quarantine/{sha[:12]}.jsonl)")
        case.log_action("import.skip", path=cand.shown, sha256=sha, reason="same content already imported")
    else:
        stale = case.quarantine_dir / f"{sha[:12]}.jsonl"
        if stale.exists():  # an interrupted earlier import of this file: start its quarantine afresh
            stale.unlink()
    chosen = dayfirst if dayfirst is not None else excel.dayfirst_of(order)
    if order is not None:
        result["date_order"] = order
    return {"path": path, "shown": cand.shown, "fmt": fmt, "opened": opened, "entry": entry, "result": result,
            "counter": CountingReader(), "dayfirst": chosen, "is_new": is_new}


def _finish(case: Case, job: dict[str, Any], batches: Iterator[Batch], bar: Any) -> None:
    """Write one file's batches into the case and record its counts (``bar``: the call's progress bar or None)."""
    size = (case.root / job["entry"]["path"]).stat().st_size
    try:
        counted = _write(case, job, batches, bar, size)
    except BaseException:
        case.close_events(discard=True)
        raise
    case.close_events()  # the file's parts, whole, before its counts say it was imported
    _record(case, job, *counted)


def _write(case: Case, job: dict[str, Any], batches: Iterator[Batch], bar: Any, size: int
           ) -> tuple[int, int, int, int, str | None]:
    """Write a file's batches (parts held open per source); returns its counts and first quarantine reason."""
    entry = job["entry"]
    sha = entry["sha256"]
    shown_bytes = 0  # of this file, on the bar
    records = imported = duplicates = quarantined = 0
    first_reason = None
    for batch in batches:
        stored, dups = case.write_events(batch.events, tag=sha[:12], hold=True)
        case.quarantine(sha, batch.quarantined)
        if first_reason is None and batch.quarantined:
            first_reason = str(batch.quarantined[0].get("reason"))
        records += batch.records
        imported += stored
        duplicates += dups
        quarantined += len(batch.quarantined)
        if bar is not None:
            now = min(job["counter"].count, size)
            bar.update(max(now - shown_bytes, 0))
            shown_bytes = max(now, shown_bytes)
            bar.set_postfix_str(f"{Path(entry['path']).name[13:]}: {records:,} records", refresh=False)
    if bar is not None:
        bar.update(max(size - shown_bytes, 0))
        bar.refresh()  # the file's end is shown even when it came faster than tqdm's redraw interval
    return records, imported, duplicates, quarantined, first_reason


def _record(case: Case, job: dict[str, Any], records: int, imported: int, duplicates: int, quarantined: int,
            first_reason: str | None) -> None:
    """Record a file's counts in case.json, the custody log and its result."""
    entry, fmt, opened, shown = job["entry"], job["fmt"], job["opened"], job["shown"]
    sha = entry["sha256"]
    counts = {"records": records, "imported": imported, "duplicates": duplicates, "quarantined": quarantined}
    extra = {"container": opened.container, "encoding": opened.encoding, "gzip": opened.gzip}
    if opened.container == "csv":
        extra["delimiter"] = opened.delimiter
    if "date_order" in job["result"]:
        extra["date_order"] = job["result"]["date_order"]
    case.update_evidence(sha, format=fmt.NAME, **counts, **extra)
    case.log_action("import", path=shown, evidence=entry["path"], sha256=sha, format=fmt.NAME, **counts)
    status = "imported"
    if quarantined == records and records:  # the caller reports it (the CLI: exit 1 and one line)
        status = "all-quarantined"
        job["result"]["reason"] = f"every record quarantined (first: {first_reason})"
    elif quarantined:
        log.warning("%s: %d of %d records quarantined (see %s)", containers.display(shown), quarantined, records,
                    case.quarantine_dir / f"{sha[:12]}.jsonl")
    job["result"].update(counts, skipped=False, status=status)


def _bar(progress: bool, copies: list[Path]) -> Any:
    """One progress bar over the bytes of every file the call parses (rate and time left), or None."""
    if not progress or not copies:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=sum(c.stat().st_size for c in copies), unit="B", unit_scale=True, unit_divisor=1024,
                desc=f"import {len(copies)} file{'s' if len(copies) > 1 else ''}", leave=False)


def summary_line(results: list[dict[str, Any]], seconds: float) -> str:
    """One line saying what an import call did and how long it took (its records per second)."""
    files = [r for r in results if r.get("status") != "archive"]
    total = {k: sum(r.get(k) or 0 for r in files) for k in ("records", "imported", "duplicates", "quarantined")}
    rate = f", {total['records'] / seconds:,.0f} records/s" if seconds > 0 and total["records"] else ""
    return (f"import: {len(files)} file{'s' if len(files) != 1 else ''}, {total['records']:,} records "
            f"({total['imported']:,} imported, {total['duplicates']:,} duplicates, {total['quarantined']:,} "
            f"quarantined) in {seconds:.1f} s{rate}")
