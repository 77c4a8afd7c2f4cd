"""The case folder: manifest, evidence, custody log, event store, quarantine.

Layout (a contract, see DESIGN.md)::

    CASE/case.json          manifest with every evidence file's sha256
    CASE/custody.log        append-only JSON lines, hash-chained (ir_toolkit.case.custody)
    CASE/raw/...            evidence exactly as received (never modified)
    CASE/events/<source>/   canonical events, Parquet
    CASE/quarantine/        records that could not be parsed, with the reason
    CASE/findings.parquet   detection output (also findings.json)
    CASE/scope.json         the scoping result
    CASE/reports/           report.html and executed notebooks
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ir_toolkit import __version__
from ir_toolkit.case.custody import (
    CustodyWriter,
    RecordedWrite,
    append_custody,
    custody_writer,
    read_custody,
    recorded_write,
)
from ir_toolkit.case.manifest import CLOUDS, MANIFEST, read_manifest, sha256_file, write_manifest
from ir_toolkit.case.recovery import remove_interrupted_parts
from ir_toolkit.case.store import EventStore
from ir_toolkit.case.verify import Verification, verify_case
from ir_toolkit.errors import CaseError
from ir_toolkit.timeutil import iso, now_utc

log = logging.getLogger(__name__)


def _copy_hashing(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` (data and metadata, as ``shutil.copy2``) and return the sha256 of the copy.

    The kernel copies the bytes (``copy_file_range`` where the file systems allow it); the hash is
    of ``dest``, the evidence the case keeps.
    """
    shutil.copy2(src, dest)
    return sha256_file(dest)


def _writable(path: Path) -> bool:
    """True when ``path`` may be written: the OS allows it and its write bits are set.

    The write bits are honoured even for root, so a folder an examiner marked
    read-only stays untouched.
    """
    mode = path.stat().st_mode
    return os.access(path, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


class Case:
    """An investigation's case folder.

    Use :meth:`init` to create one and :meth:`open` to use an existing one.
    """

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self.events = EventStore(root / "events")
        self._recovered = False

    # ----- life cycle -------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | Path, tenant: str, cloud: str = "global", case_id: str | None = None) -> Case:
        """Create a new case folder.

        Raises:
            CaseError: when the path is already a case, a non-empty folder, a file, or not writable.
        """
        root = Path(path)
        if cloud not in CLOUDS:
            raise CaseError(f"unknown cloud {cloud!r}: choose one of {', '.join(CLOUDS)}")
        if not tenant or not tenant.strip():
            raise CaseError("--tenant must name the tenant (a domain or tenant id)")
        if root.exists():
            if root.is_file():
                raise CaseError(f"{root}: is a file, not a folder")
            if (root / MANIFEST).exists():
                raise CaseError(f"{root}: is already a case (open it instead of creating it)")
            if any(root.iterdir()):
                raise CaseError(f"{root}: folder is not empty; choose a new folder for the case")
            if not _writable(root):
                raise CaseError(f"{root}: folder is read-only")
        else:
            parent = root.parent if str(root.parent) else Path(".")
            if parent.exists() and not _writable(parent):
                raise CaseError(f"{parent}: folder is read-only; cannot create the case there")
            try:
                root.mkdir(parents=True)
            except OSError as exc:
                raise CaseError(f"{root}: cannot create case folder ({exc.strerror or exc})") from None
        for sub in ("raw", "events", "quarantine", "reports"):
            (root / sub).mkdir(exist_ok=True)
        manifest: dict[str, Any] = {
            "case": case_id or root.resolve().name or str(uuid.uuid4()),
            "case_uuid": str(uuid.uuid4()),
            "tenant": tenant.strip(),
            "cloud": cloud,
            "created": iso(now_utc()),
            "tool": f"ir_toolkit {__version__}",
            "evidence": [],
            "collection": {"ledger": []},
        }
        write_manifest(root, manifest)
        case = cls(root, manifest)
        case.log_action("case.init", artifacts=[root / MANIFEST], tenant=tenant, cloud=cloud)
        return case

    @classmethod
    def open(cls, path: str | Path, writable: bool = False) -> Case:
        """Open an existing case.

        Args:
            path: The case folder.
            writable: Check that the case may be written (imports, detections, reports).

        Raises:
            CaseError: when the folder is missing, not a case, corrupt or (if asked) read-only.
        """
        root = Path(path)
        manifest = read_manifest(root)
        if writable and not _writable(root):
            raise CaseError(f"{root}: case folder is read-only")
        return cls(root, manifest)

    # ----- folders ----------------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def tenant(self) -> str:
        return str(self.manifest["tenant"])

    @property
    def cloud(self) -> str:
        return str(self.manifest.get("cloud", "global"))

    # ----- manifest and custody ---------------------------------------------------------------
    def save(self, action: str = "case.save", **details: Any) -> None:
        """Write the in-memory manifest to case.json and record its sha256 in the custody log."""
        with self.recording(action, **details) as w:
            write_manifest(self.root, self.manifest, path=w.path(self.root / MANIFEST))

    def recording(self, action: str, **details: Any) -> AbstractContextManager[RecordedWrite]:
        """Write artifacts crash-safely and record them: ``with case.recording("scope") as w:``
        then write to ``w.path(case.root / "scope.json")`` (see :func:`ir_toolkit.case.custody.recorded_write`)."""
        return recorded_write(self.root, action, **details)

    def log_action(self, action: str, artifacts: Any = (), **details: Any) -> dict[str, Any]:
        """Append an entry to the custody log (secrets are scrubbed).

        Args:
            action: What was done.
            artifacts: Paths of files inside the case this action wrote (or removed): their sha256 goes into
                the hash-chained log, so ``verify`` can tell a later change from this write.
            details: Parameters and counts.
        """
        return append_custody(self.root, action, artifacts=artifacts, **details)

    def custody(self) -> list[dict[str, Any]]:
        """The custody log entries, oldest first."""
        return read_custody(self.root)

    # ----- evidence ---------------------------------------------------------------------------
    def evidence(self) -> list[dict[str, Any]]:
        """Every evidence entry of case.json."""
        return list(self.manifest["evidence"])

    def find_evidence(self, sha256: str) -> dict[str, Any] | None:
        """The evidence entry with this hash, if any."""
        return next((e for e in self.manifest["evidence"] if e.get("sha256") == sha256), None)

    def add_evidence(
        self,
        src: str | Path,
        *,
        source: str,
        format: str | None = None,
        subdir: str = "imports",
        query: dict[str, Any] | None = None,
        move: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Copy a file into CASE/raw/, hash it and record it in case.json.

        The file is hashed before anything parses it. The same content added twice
        is recorded once.

        Args:
            src: The file as received.
            source: Where it came from (``import`` or ``collect:<source>``).
            format: Format name, when known.
            subdir: Folder under raw/.
            query: Query parameters that produced it (collections).
            move: Move instead of copy (files the toolkit itself downloaded into the case).

        Returns:
            ``(entry, is_new)``.
        """
        src = Path(src)
        dest_dir = self.raw_dir / subdir
        copied: Path | None = None
        if move or src.resolve().parent == dest_dir.resolve():
            digest = sha256_file(src)
        else:  # copied next to its final name, then hashed: the hash is of the bytes the case keeps
            dest_dir.mkdir(parents=True, exist_ok=True)
            copied = dest_dir / f".{src.name}.{os.getpid()}.tmp"
            try:
                digest = _copy_hashing(src, copied)
            except BaseException:
                copied.unlink(missing_ok=True)
                raise
        existing = self.find_evidence(digest)
        if existing is not None:
            if copied is not None:
                copied.unlink(missing_ok=True)
            return existing, False
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / f"{digest[:12]}-{src.name}"
        if copied is not None:
            os.replace(copied, dest)
        elif src.resolve() != dest.resolve():
            (shutil.move if move else shutil.copy2)(str(src), str(dest))
        dest.chmod(0o444)
        entry: dict[str, Any] = {
            "path": dest.relative_to(self.root).as_posix(),
            "original": str(src) if not move else src.name,
            "sha256": digest,
            "size": dest.stat().st_size,
            "source": source,
            "format": format,
            "added": iso(now_utc()),
            "records": None,
            "imported": None,
            "duplicates": None,
            "quarantined": None,
        }
        if query:
            entry["query"] = query
        self.manifest["evidence"].append(entry)
        self.save("evidence.add", path=entry["path"], sha256=digest, size=entry["size"], source=source)
        return entry, True

    def update_evidence(self, sha256: str, **fields: Any) -> dict[str, Any]:
        """Set fields (format, record counts ...) on an evidence entry and save."""
        entry = self.find_evidence(sha256)
        if entry is None:
            raise CaseError(f"no evidence with sha256 {sha256}")
        entry.update(fields)
        self.save()
        return entry

    def verify(self) -> list[str]:
        """Check the case read-only (see :mod:`ir_toolkit.case.verify`).

        Returns:
            One line per problem (``changed|missing|unexpected|unrecorded|symlink: PATH (why)``);
            empty when the evidence, the custody chain and every recorded artifact are intact.
        """
        return self.verification().problems

    def verification(self, expect_head: str | None = None) -> Verification:
        """The full verification against case.json as it is on disk: problems, the custody head to note,
        notes (never writes)."""
        return verify_case(self.root, read_manifest(self.root), expect_head=expect_head)

    # ----- import (see ir_toolkit.case.importing) ----------------------------------------------
    def import_files(self, paths: Any, format: str = "auto", progress: bool = False,
                     dayfirst: bool | None = None, allow_other_tenant: bool = False) -> list[dict[str, Any]]:
        """Import log exports, folders and ZIP archives (see :func:`ir_toolkit.case.importing.import_files`)."""
        from ir_toolkit.case.importing import import_files

        if not self._recovered:
            self.recover_interrupted()
        return import_files(self, paths, format=format, progress=progress, dayfirst=dayfirst,
                            allow_other_tenant=allow_other_tenant)

    # ----- events and quarantine --------------------------------------------------------------
    def write_events(self, frame: pd.DataFrame, tag: str = "", hold: bool = False) -> tuple[int, int]:
        """Append canonical events, de-duplicated by (source, record_id). Returns (stored, duplicates).

        The part files written are recorded with their sha256 in the custody log. ``hold``: keep adding
        to one part per source until :meth:`close_events` (an import's batches; see ``EventStore.append``).
        """
        with custody_writer(self.root) as writer:  # no other process sees a part before its record
            if not self._recovered:
                self._recover(writer)
            stored, duplicates = self.events.append(frame, tag=tag, hold=hold)
            written = self.events.take_written()
            if written:
                writer.append("events.write", artifacts=written, stored=stored, duplicates=duplicates)
        return stored, duplicates

    def close_events(self, discard: bool = False) -> None:
        """Close (and record) the event parts :meth:`write_events` held open; ``discard``: remove them instead."""
        if discard:
            self.events.discard_parts()
            return
        with custody_writer(self.root) as writer:
            self.events.close_parts()
            written = self.events.take_written()
            if written:
                writer.append("events.write", artifacts=written, parts_closed=len(written))

    def recover_interrupted(self) -> list[str]:
        """Remove event parts a killed step left unrecorded (see :mod:`ir_toolkit.case.recovery`)."""
        with custody_writer(self.root) as writer:
            return self._recover(writer)

    def _recover(self, writer: CustodyWriter) -> list[str]:
        self._recovered = True
        removed = remove_interrupted_parts(self.root, writer)
        if removed:
            self.events = EventStore(self.root / "events")  # forget record ids read from the removed parts
        return removed

    def read_events(self, sources: list[str] | None = None, columns: list[str] | None = None,
                    where: str | None = None) -> pd.DataFrame:
        """Canonical events as a pandas DataFrame (see :meth:`EventStore.read`)."""
        return self.events.read(sources=sources, columns=columns, where=where)

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with a view ``events`` over this case's Parquet store."""
        return self.events.connect()

    def quarantine(self, evidence_sha256: str, records: list[dict[str, Any]]) -> Path | None:
        """Keep records that could not be parsed, with their reason, in CASE/quarantine/.

        Each record is a dict with at least ``file``, ``position``, ``reason`` and ``record``.
        """
        if not records:
            return None
        self.quarantine_dir.mkdir(exist_ok=True)
        path = self.quarantine_dir / f"{evidence_sha256[:12]}.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, default=str, ensure_ascii=False) + "\n")
        self.log_action("quarantine.write", artifacts=[path], records=len(records))
        return path

    def quarantined(self) -> pd.DataFrame:
        """Every quarantined record with its file, position and reason."""
        rows: list[dict[str, Any]] = []
        for f in sorted(self.quarantine_dir.glob("*.jsonl")):
            # lines end at "\n" only: a record's text may hold other line breaks (U+0085, U+2028) as they are
            rows += [json.loads(line) for line in f.read_text(encoding="utf-8").split("\n") if line.strip()]
        return pd.DataFrame(rows, columns=["file", "position", "reason", "record"]) if not rows else \
            pd.DataFrame(rows)

    # ----- summary ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts for people: evidence files, events per source, quarantined records."""
        ev = self.manifest["evidence"]
        return {
            "case": self.manifest["case"],
            "path": str(self.root),
            "tenant": self.tenant,
            "cloud": self.cloud,
            "evidence_files": len(ev),
            "records": sum(int(e.get("records") or 0) for e in ev),
            "quarantined": sum(int(e.get("quarantined") or 0) for e in ev),
            "events": self.events.count(),
        }
