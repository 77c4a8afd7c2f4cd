"""custody.log: the append-only, hash-chained record of every action on a case.

One JSON object per line. Each line carries ``prev``, the sha256 of the line before it (the first
line carries 64 zeros), so an edited, inserted or deleted line breaks the chain at the line after
it. Writers record what they wrote under ``artifacts`` (case-relative path -> sha256, or None for
a file removed on purpose); :mod:`ir_toolkit.case.verify` checks the latest hash of each.

The chain's head (the sha256 of the last line) is what an examiner notes outside the case: a
chain anyone can rewrite end to end proves nothing on its own (see docs/evidence.md).

No secret is ever written: values of secret keys and token-shaped text are scrubbed
(:func:`ir_toolkit.textsafe.scrub`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ir_toolkit import __version__
from ir_toolkit.case.manifest import actor, sha256_file
from ir_toolkit.errors import CaseError
from ir_toolkit.textsafe import scrub
from ir_toolkit.timeutil import iso, now_utc

CUSTODY = "custody.log"
GENESIS = "0" * 64  # ``prev`` of the first line


def line_hash(line: bytes) -> str:
    """The sha256 of one custody line (its bytes without the newline)."""
    return hashlib.sha256(line).hexdigest()


def _last_line(fh: Any) -> bytes | None:
    """The last complete line of an open binary file (None when empty), read from the end."""
    end = fh.seek(0, os.SEEK_END)
    if end == 0:
        return None
    chunk, pos, tail = 1 << 16, end, b""
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        fh.seek(pos)
        tail = fh.read(step) + tail
        body = tail[:-1] if tail.endswith(b"\n") else tail
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1:]
    return tail[:-1] if tail.endswith(b"\n") else tail


def artifact_hashes(root: Path, paths: Iterable[str | Path]) -> dict[str, str | None]:
    """``{case-relative path: sha256}`` of the files among ``paths`` that lie inside the case.

    Relative paths are relative to the working directory, as everywhere. A path that no longer
    exists is recorded as None (removed on purpose by the writer); paths outside the case folder
    (a report written elsewhere) are left out.
    """
    base = root.resolve()
    out: dict[str, str | None] = {}
    for p in paths:
        path = Path(p)
        try:
            rel = path.resolve().relative_to(base).as_posix()
        except ValueError:
            continue
        out[rel] = sha256_file(path) if path.is_file() else None
    return out


class CustodyWriter:
    """custody.log opened and locked (``flock``) for appending: the chain never forks.

    Hold it (:func:`custody_writer`) around a write and its record when no other process may see
    the written file before its custody line exists (the event store's parts).
    """

    def __init__(self, root: Path, fh: Any) -> None:
        self.root, self._fh = root, fh

    def append(self, action: str, artifacts: Any = (), **details: Any) -> dict[str, Any]:
        """Append one chained line and return its entry.

        Args:
            action: What was done (``import``, ``detect``, ...).
            artifacts: Paths (an iterable of str or Path) of files this action wrote or removed;
                their sha256 is recorded. A dict is taken as already hashed (case-relative path -> sha256).
            details: Parameters and counts (scrubbed of secrets).
        """
        entry: dict[str, Any] = {
            "time": iso(now_utc()),
            "actor": scrub(actor()),
            "tool": f"ir_toolkit {__version__}",
            "action": action,
            "details": scrub(details),
        }
        hashes = artifact_hashes(self.root, artifacts) if not isinstance(artifacts, dict) else artifacts
        if hashes:
            entry["artifacts"] = hashes
        try:
            last = _last_line(self._fh)
            entry["prev"] = line_hash(last) if last is not None else GENESIS
            line = json.dumps(entry, default=str).encode("ascii")  # \u escapes: any text, one line
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(line + b"\n")
            self._fh.flush()
        except OSError as exc:
            raise CaseError(f"{self.root / CUSTODY}: cannot append to custody log ({exc.strerror or exc})") from None
        return entry


@contextmanager
def custody_writer(root: Path) -> Iterator[CustodyWriter]:
    """custody.log locked for appending for the duration of the ``with`` block."""
    path = root / CUSTODY
    try:
        fh = open(path, "a+b")  # noqa: SIM115 - closed below, after the lock is released
    except OSError as exc:
        raise CaseError(f"{path}: cannot append to custody log ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield CustodyWriter(root, fh)
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def append_custody(root: Path, action: str, artifacts: Any = (), **details: Any) -> dict[str, Any]:
    """Append one chained line to custody.log and return its entry (see :meth:`CustodyWriter.append`)."""
    with custody_writer(root) as writer:
        return writer.append(action, artifacts=artifacts, **details)


def pending_path(path: Path) -> Path:
    """Where a recorded write keeps the new version of ``path`` until it replaces it (``.NAME.pending``)."""
    return path.with_name(f".{path.name}.pending")


class RecordedWrite:
    """Files written whole, then recorded and put in place together (see :func:`recorded_write`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.targets: list[Path] = []

    def path(self, target: str | Path) -> Path:
        """The file to write instead of ``target`` (it replaces ``target`` when the block ends)."""
        final = Path(target)
        self.targets.append(final)
        return pending_path(final)


@contextmanager
def recorded_write(root: Path, action: str, **details: Any) -> Iterator[RecordedWrite]:
    """Write artifacts so that a crash at any point leaves either the old or the new recorded version.

    Inside the block, write each artifact to ``w.path(target)``. At the end, under the custody lock,
    the sha256 of the new versions is recorded (one ``action`` line), then each replaces its target.
    A crash before the record leaves the old version (still the latest recorded); a crash after it
    leaves the new version in ``.NAME.pending``, which verify accepts as an interrupted write. If the
    block raises, nothing is recorded and the pending files are removed.
    """
    w = RecordedWrite(root)
    try:
        yield w
    except BaseException:
        for target in w.targets:
            pending_path(target).unlink(missing_ok=True)
        raise
    base = root.resolve()
    hashes: dict[str, str | None] = {}
    for target in w.targets:
        try:
            rel = target.resolve().relative_to(base).as_posix()
        except ValueError:
            continue  # written outside the case: not covered
        hashes[rel] = sha256_file(pending_path(target))
    with custody_writer(root) as writer:
        writer.append(action, artifacts=hashes, **details)
        for target in w.targets:
            os.replace(pending_path(target), target)


def read_custody(root: Path) -> list[dict[str, Any]]:
    """All custody entries, oldest first (lines that are not JSON objects are skipped; verify reports them)."""
    path = root / CUSTODY
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
    return out


def custody_lines(root: Path) -> list[bytes]:
    """The raw lines of custody.log (without newlines; an empty list when there is none)."""
    path = root / CUSTODY
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    return lines[:-1] if data.endswith(b"\n") else lines


def custody_head(root: Path) -> tuple[str, int]:
    """``(sha256 of the last line, number of lines)`` of custody.log (GENESIS, 0 when empty)."""
    lines = custody_lines(root)
    return (line_hash(lines[-1]) if lines else GENESIS), len(lines)
