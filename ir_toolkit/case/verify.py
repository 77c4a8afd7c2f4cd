"""Verify a case folder without writing to it: evidence, custody chain, derived artifacts.

What is checked (each problem is one line naming the file):

* ``raw/``: every evidence file of case.json exists, is a regular file (not a symlink) and has its
  recorded sha256; nothing else is there (``unexpected``), and no symlink anywhere.
* ``custody.log``: every line is a JSON object whose ``prev`` is the sha256 of the line before
  (an edited, inserted or deleted line breaks the chain at the following line); with
  ``expect_head`` the head noted outside the case must still be in the chain.
* case.json and every derived artifact (events parts, findings, token findings, scope.json,
  reports/, quarantine/): each file has the sha256 the latest custody line recorded for it; a
  recorded file that is gone is ``missing``; a file no custody line records is ``unrecorded``.

What it cannot prove is in docs/evidence.md: a chain rewritten end to end (or its last lines
edited or cut) passes unless its head hash was kept outside the case.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ir_toolkit.case.custody import CUSTODY, GENESIS, custody_lines, line_hash, pending_path
from ir_toolkit.case.manifest import MANIFEST, sha256_file

#: Derived artifacts at the top of the case, and the folders whose every file is one.
ARTIFACT_FILES = (MANIFEST, "findings.parquet", "findings.json", "token_findings.parquet", "token_findings.json",
                  "scope.json")
ARTIFACT_DIRS = ("events", "reports")
# quarantine/ files are checked when recorded (Case.quarantine records them) but not reported when
# unrecorded: importers that write quarantine files themselves are not wired to the custody log.


@dataclass
class Verification:
    """The outcome of :func:`verify_case`.

    Attributes:
        problems: One line per change (``changed|missing|unexpected|unrecorded|symlink: PATH (why)``).
        head: sha256 of the last custody line (note it outside the case).
        lines: Number of custody lines.
        notes: Facts that are not problems (lines appended since an expected head).
        evidence_files: Evidence files listed in case.json.
        artifacts: Derived artifacts checked against the custody log.
    """

    problems: list[str] = field(default_factory=list)
    head: str = GENESIS
    lines: int = 0
    notes: list[str] = field(default_factory=list)
    evidence_files: int = 0
    artifacts: int = 0

    @property
    def intact(self) -> bool:
        """True when nothing changed."""
        return not self.problems


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def check_raw(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Evidence files against case.json; symlinks and unlisted files in raw/."""
    problems: list[str] = []
    raw = root / "raw"
    listed: set[str] = set()
    for e in manifest.get("evidence", []):
        rel = str(e.get("path", ""))
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts or not parts or parts[0] != "raw":
            problems.append(f"changed: {MANIFEST} (evidence path {rel!r} is not inside raw/)")
            continue
        listed.add(rel)
        path = root / rel
        if path.is_symlink():
            continue  # reported by the walk below
        if not path.exists():
            problems.append(f"missing: {rel}")
        elif not path.is_file() or path.stat().st_size != e.get("size") or sha256_file(path) != e.get("sha256"):
            problems.append(f"changed: {rel} (sha256 differs from case.json)")
    if raw.is_symlink():
        return [*problems, "symlink: raw (evidence must be regular files inside the case)"]
    for folder, dirs, files in os.walk(raw, followlinks=False):
        base = Path(folder)
        for name in sorted(dirs + files):
            path = base / name
            rel = _rel(root, path)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"symlink: {rel} -> {os.readlink(path)} (evidence must be regular files)")
            elif stat.S_ISDIR(mode):
                continue
            elif not stat.S_ISREG(mode):
                problems.append(f"unexpected: {rel} (not a regular file)")
            elif rel not in listed:
                problems.append(f"unexpected: {rel}")
    return problems


def check_links(root: Path) -> list[str]:
    """Symlinks anywhere in the case outside raw/ (raw/ is :func:`check_raw`'s): a case holds no links."""
    problems = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        if base == root:
            dirs[:] = [d for d in dirs if d != "raw"]
        for name in sorted(dirs + files):
            path = base / name
            if path.is_symlink():
                problems.append(f"symlink: {_rel(root, path)} -> {os.readlink(path)} (a case holds no links)")
    return problems


def check_chain(lines: list[bytes]) -> tuple[list[str], list[dict[str, Any] | None]]:
    """Chain problems of custody.log and its entries (None for a line that is not a JSON object)."""
    problems: list[str] = []
    entries: list[dict[str, Any] | None] = []
    for i, line in enumerate(lines):
        n = i + 1
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            entry = None
        if not isinstance(entry, dict):
            problems.append(f"changed: {CUSTODY} line {n} (not a custody entry: edited or inserted)")
            entries.append(None)
            continue
        entries.append(entry)
        expected = line_hash(lines[i - 1]) if i else GENESIS
        if "prev" not in entry:
            problems.append(f"changed: {CUSTODY} line {n} (not hash-chained: edited, or written before chaining)")
        elif entry["prev"] != expected:
            what = f"line {n - 1} was edited, or lines were deleted or inserted before line {n}" if i else \
                "lines were deleted before it"
            problems.append(f"changed: {CUSTODY} line {n} (hash chain broken: {what})")
    return problems, entries


def check_head(lines: list[bytes], expect_head: str,
               entries: list[dict[str, Any] | None] | None = None) -> tuple[list[str], list[str]]:
    """Problems and notes for a head hash noted earlier outside the case.

    Lines appended since the noted head are listed in the notes (action, actor, time and the files
    they record), so the examiner can judge them: anyone who can write the case can append a line.
    """
    wanted = expect_head.strip().lower()
    if wanted == GENESIS and not lines:
        return [], []
    hashes = [line_hash(line) for line in lines]
    if wanted not in hashes:
        return [f"changed: {CUSTODY} (the head {wanted[:16]}... noted earlier is not in the chain: "
                "the log was rewritten or cut)"], []
    start = hashes.index(wanted) + 1
    grown = len(lines) - start
    if not grown:
        return [], []
    notes = [f"{CUSTODY}: {grown} line(s) appended since the noted head"]
    for n in range(start + 1, len(lines) + 1):
        entry = (entries or [])[n - 1] if entries and n - 1 < len(entries) else None
        if entry is not None:
            files = ", ".join(sorted(entry.get("artifacts") or {})) if isinstance(entry.get("artifacts"), dict) else ""
            notes.append(f"  line {n}: {entry.get('action')} by {entry.get('actor')} at {entry.get('time')}"
                         + (f" (records {files})" if files else ""))
    return [], notes


def recorded_artifacts(entries: list[dict[str, Any] | None]) -> dict[str, tuple[str | None, int, str]]:
    """Latest record per artifact: path -> (sha256 or None when removed, custody line, action)."""
    latest: dict[str, tuple[str | None, int, str]] = {}
    for n, entry in enumerate(entries, start=1):
        arts = entry.get("artifacts") if entry else None
        if entry is not None and isinstance(arts, dict):
            for path, sha in arts.items():
                latest[str(path)] = (sha if isinstance(sha, str) else None, n, str(entry.get("action")))
    return latest


def artifact_files(root: Path) -> list[str]:
    """Every derived artifact present in the case (case-relative paths; temp files excluded)."""
    found = [name for name in ARTIFACT_FILES if (root / name).exists() or (root / name).is_symlink()]
    for d in ARTIFACT_DIRS:
        folder = root / d
        if folder.is_dir() and not folder.is_symlink():
            for sub, _, files in os.walk(folder, followlinks=False):
                found += [_rel(root, Path(sub) / f) for f in files if not f.startswith(".")]
    return sorted(found)


def interrupted_parts(root: Path) -> list[str]:
    """Event parts present but recorded by no custody line: left by a step killed between writing a part
    and recording it (or planted). Empty for a case from before the chain (nothing can be told apart)."""
    _, entries = check_chain(custody_lines(root))
    if not entries or entries[0] is None or "prev" not in entries[0]:
        return []
    latest = recorded_artifacts(entries)
    return [rel for rel in artifact_files(root) if rel.startswith("events/") and rel not in latest]


def _interrupted(root: Path, rel: str, sha: str) -> bool:
    """True when the recorded version of ``rel`` waits in its pending file (a write killed after its record)."""
    pending = pending_path(root / rel)
    return pending.is_file() and not pending.is_symlink() and sha256_file(pending) == sha


def check_artifacts(root: Path, latest: dict[str, tuple[str | None, int, str]],
                    notes: list[str] | None = None) -> list[str]:
    """Each recorded artifact against its latest hash; present artifacts nobody recorded.

    A write interrupted after its record (the new version still in ``.NAME.pending``, the file
    itself the previous version or absent) is a note, not a problem: re-running the step finishes it.
    """
    problems: list[str] = []
    for rel, (sha, n, action) in sorted(latest.items()):
        path = root / rel
        where = f"custody.log line {n}, {action}"
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not rel.strip("/."):
            problems.append(f"changed: {CUSTODY} line {n} (artifact path {rel!r} is outside the case)")
            continue
        mode = path.lstat().st_mode if path.is_symlink() or path.exists() else None
        if sha is not None and (mode is None or stat.S_ISREG(mode)) and _interrupted(root, rel, sha):
            if notes is not None:
                notes.append(f"{rel}: the write recorded at {where} was interrupted (its new version is in "
                             f"{pending_path(Path(rel)).as_posix()}); run that step again")
            continue
        if sha is None:
            if mode is not None:
                problems.append(f"changed: {rel} (recorded as removed at {where}, but present)")
        elif mode is None:
            problems.append(f"missing: {rel} (deleted; recorded at {where})")
        elif stat.S_ISLNK(mode):
            problems.append(f"symlink: {rel} (recorded as a file at {where})")
        elif not stat.S_ISREG(mode):  # never opened: a FIFO or device would block or never end
            problems.append(f"changed: {rel} (not a regular file; recorded at {where})")
        elif sha256_file(path) != sha:
            problems.append(f"changed: {rel} (sha256 differs from {where})")
    for rel in artifact_files(root):
        if rel not in latest:
            problems.append(f"unrecorded: {rel} (no custody.log entry records it: written outside the toolkit)")
    return problems


def read_only_reason(root: Path) -> str | None:
    """Why the case cannot be written (read-only medium, folder or custody log), or None when it can.

    Write bits are honoured even for root, so a folder an examiner marked read-only stays untouched.
    """
    try:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    for path in (root, root / CUSTODY):
        if path.exists():
            mode = path.stat().st_mode
            if not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                return f"{'case folder' if path == root else CUSTODY} is read-only"
    return None


def verify_case(root: Path, manifest: dict[str, Any], expect_head: str | None = None) -> Verification:
    """Check a case folder read-only (see the module docstring); never writes anything."""
    custody = root / CUSTODY
    regular = custody.exists() and not custody.is_symlink() and custody.is_file()
    lines = custody_lines(root) if regular else []
    result = Verification(lines=len(lines), head=line_hash(lines[-1]) if lines else GENESIS,
                          evidence_files=len(manifest.get("evidence", [])))
    result.problems += check_raw(root, manifest) + check_links(root)
    if custody.exists() and not regular and not custody.is_symlink():
        result.problems.append(f"changed: {CUSTODY} (not a regular file)")
    elif not lines and not custody.is_symlink():
        result.problems.append(f"missing: {CUSTODY} (the case has no custody log)")
    chain, entries = check_chain(lines)
    result.problems += chain
    if expect_head:
        problems, notes = check_head(lines, expect_head, entries)
        result.problems += problems
        result.notes += notes
    latest = recorded_artifacts(entries)
    result.artifacts = len(latest)
    result.problems += check_artifacts(root, latest, result.notes)
    return result
