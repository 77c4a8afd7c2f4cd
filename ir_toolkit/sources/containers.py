"""Folders and ZIP archives named to ``import``: the export files inside them, read safely.

:func:`expand` turns what the responder named (files, folders, ZIP archives) into the files to
import, each with the name a responder sees (``export.zip!logs/SignIns.json``), plus what was
left out and why. Folders are walked recursively (sorted, a JSON file before a CSV of the same
name; symbolic links not followed). ZIP members are unpacked into a scratch folder *inside the
case* and go through the same auto-detection as any file; a ZIP inside a ZIP is unpacked too,
down to :data:`MAX_DEPTH` levels.

Archives are attacker-controlled input. Member names are data, never paths: a member is written
to ``SCRATCH/NNNNN/<safe name>`` (:func:`safe_name`: the last name part, letters, digits, ``._-``),
so ``../../etc/passwd``, ``C:\\x``, absolute names or control characters cannot reach outside the
case. Bounds (module constants, documented in docs/import.md) stop zip bombs before they fill the
disk: at most :data:`MAX_MEMBERS` members per call, :data:`MAX_UNPACKED` bytes unpacked per call,
and no member whose size is more than :data:`MAX_RATIO` times its compressed size (above 1 MiB).
Sizes are checked from the archive's directory before unpacking and counted again while
unpacking (Python's zipfile never returns more bytes than the directory declares). Encrypted
members, symbolic links and members over a bound are reported, not unpacked. macOS and Windows
folder litter (``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``, ``desktop.ini``) is ignored.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ARCHIVE", "MAX_DEPTH", "MAX_MEMBERS", "MAX_RATIO", "MAX_UNPACKED", "Candidate", "Expanded", "Skipped",
           "display", "expand", "is_zip", "safe_name"]

ARCHIVE = "zip"  # the format name an archive is recorded under in case.json
MAX_MEMBERS = 10_000  # members unpacked per call (all archives, nested ones included)
MAX_UNPACKED = 32 << 30  # bytes unpacked per call
MAX_RATIO = 200  # uncompressed / compressed size of one member above RATIO_FLOOR (logs deflate 5-30x)
RATIO_FLOOR = 1 << 20
MAX_DEPTH = 2  # an archive inside an archive is unpacked; one inside that is reported
CHUNK = 1 << 20
_JUNK_DIRS = ("__MACOSX",)
_JUNK_FILES = {".ds_store", "thumbs.db", "desktop.ini"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass
class Candidate:
    """One file to import.

    Attributes:
        path: The file on disk (the responder's file, or a member unpacked into the case's scratch folder).
        shown: The name a responder sees (``FOLDER/x.json``, ``A.zip!dir/x.json``).
        named: True when the responder named this file itself (not found in a folder or archive).
        archive: The shown name of the archive it came from (None: not from an archive).
        member: Its name inside that archive, exactly as written there (data, never used as a path).
    """

    path: Path
    shown: str
    named: bool = False
    archive: str | None = None
    member: str | None = None


@dataclass
class Skipped:
    """Something inside a folder or archive that is not imported, and why."""

    shown: str
    reason: str
    archive: str | None = None
    member: str | None = None


@dataclass
class Expanded:
    """What :func:`expand` found: files to import, things left out, and each archive's member listing."""

    files: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    archives: dict[str, dict[str, Any]] = field(default_factory=dict)  # shown -> {path, members, archive, member}
    ignored: int = 0


@dataclass
class _Budget:
    members: int = 0
    unpacked: int = 0
    seq: int = 0


def display(text: str) -> str:
    """``text`` fit for one line of a terminal: control and bidi characters shown as ``\\xNN`` / ``\\uNNNN``."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def safe_name(member: str) -> str:
    """A file name for an archive member: its last name part, only ``A-Za-z0-9._-``, at most 80 characters."""
    last = re.split(r"[/\\]", member.rstrip("/\\"))[-1]
    name = _UNSAFE.sub("_", last).lstrip(".")[-80:]
    return name or "member"


def is_zip(path: Path) -> bool:
    """True when the file starts like a ZIP archive (local header or empty archive)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def is_tar(path: Path) -> bool:
    """True for a tar archive, plain or gzip/bzip2/xz-compressed (not unpacked: named as such)."""
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, ValueError, tarfile.TarError):
        return False


TAR_REASON = "a tar archive: unpack it (tar -xf) and import the folder"


def _junk(name: str) -> bool:
    parts = [p for p in re.split(r"[/\\]", name) if p]
    return bool(parts) and (parts[0] in _JUNK_DIRS or parts[-1].lower() in _JUNK_FILES or parts[-1].startswith("._"))


def expand(paths: list[Path], scratch: Path, exclude: Path | None = None) -> Expanded:
    """The files to import from what the responder named.

    Args:
        paths: Files, folders and ZIP archives as named on the command line (existing paths).
        scratch: A folder inside the case where archive members are unpacked (created when needed).
        exclude: A folder never walked into (the case itself, when a folder named holds it).

    Returns:
        :class:`Expanded`: files in the order named (a folder's files sorted by path, an archive's
        members in archive order), what was skipped and why, and per archive its member listing
        (name as written, sha256, size, compressed size, what became of it).
    """
    out = Expanded()
    budget = _Budget()
    for path in paths:
        if path.is_dir():
            _walk(path, out, scratch, budget, exclude.resolve() if exclude is not None else None)
        elif is_zip(path):
            _archive(Candidate(path, str(path), named=True), out, scratch, budget, depth=1)
        elif is_tar(path):
            out.skipped.append(Skipped(str(path), TAR_REASON))
        else:
            out.files.append(Candidate(path, str(path), named=True))
    return out


_LOSSLESS_FIRST = {".json": 0, ".jsonl": 0}  # of one export written twice, the JSON carries the nested fields


_TWINS = (".csv", ".json", ".jsonl")


def folder_order(path: Path) -> tuple[str, int]:
    """A folder's files in path order, except that of two files of one name (Hawk's and Microsoft-Extractor-
    Suite's ``X.csv`` beside ``X.json``) the JSON comes first: it keeps the nested fields the CSV writes as
    type names (``System.Object[]``), and of records in both the first stored is kept."""
    text, suffix = str(path), path.suffix.lower()
    if suffix in _TWINS:
        return text[: -len(suffix)], _LOSSLESS_FIRST.get(suffix, 1)
    return text, 1


def _walk(root: Path, out: Expanded, scratch: Path, budget: _Budget, exclude: Path | None) -> None:
    found: list[Path] = []
    if exclude is not None and root.resolve() == exclude:
        out.skipped.append(Skipped(str(root), "is the case folder itself (name the export files or their folder)"))
        return

    def unreadable(exc: OSError) -> None:
        out.skipped.append(Skipped(str(exc.filename or root), f"folder cannot be read ({exc.strerror or exc})"))

    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _JUNK_DIRS and (Path(folder) / d).resolve() != exclude)
        found += [Path(folder) / f for f in files]
    for path in sorted(found, key=folder_order):
        shown = str(path)
        mode = path.lstat().st_mode
        if _junk(path.name):
            out.ignored += 1
        elif stat.S_ISLNK(mode):
            out.skipped.append(Skipped(shown, "a symbolic link (name its target to import it)"))
        elif not stat.S_ISREG(mode):
            out.skipped.append(Skipped(shown, "not a regular file"))
        elif is_zip(path):
            _archive(Candidate(path, shown), out, scratch, budget, depth=1)
        elif is_tar(path):
            out.skipped.append(Skipped(shown, TAR_REASON))
        else:
            out.files.append(Candidate(path, shown))


def _archive(archive: Candidate, out: Expanded, scratch: Path, budget: _Budget, depth: int) -> bool:
    """An archive (itself evidence, listed before its members) and its members; False (and why) if unreadable."""
    shown = archive.shown
    try:
        zf = zipfile.ZipFile(archive.path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        out.skipped.append(Skipped(shown, f"not a readable ZIP archive ({exc})", archive.archive, archive.member))
        return False
    with zf:
        if _is_workbook(zf):
            out.skipped.append(Skipped(shown, "an Excel workbook (.xlsx): save the sheet as CSV and import that",
                                       archive.archive, archive.member))
            return False
        out.files.append(archive)
        out.archives[shown] = {"path": archive.path, "members": [], "archive": archive.archive,
                               "member": archive.member}
        _unzip(zf, shown, out, scratch, budget, depth)
    return True


def _unzip(zf: zipfile.ZipFile, shown: str, out: Expanded, scratch: Path, budget: _Budget, depth: int) -> None:
    """Unpack the members of one archive (bounded), appending them to ``out``."""
    listing: list[dict[str, Any]] = out.archives[shown]["members"]
    infos = [i for i in zf.infolist() if not i.is_dir()]
    for n, info in enumerate(infos):
        name = info.filename
        if budget.members >= MAX_MEMBERS and not _junk(name):  # a flood: one line for the rest, not one each
            flood = f"{len(infos) - n} more member(s) not unpacked: more than {MAX_MEMBERS} in this import " \
                    "(bound MAX_MEMBERS)"
            listing.append({"member": None, "status": f"not unpacked: {flood}"})
            out.skipped.append(Skipped(f"{shown}!{name}...", flood, shown, None))
            break
        where = f"{shown}!{name}"
        entry: dict[str, Any] = {"member": name, "size": info.file_size, "compressed": info.compress_size}
        listing.append(entry)
        reason, target = _refuse(info, budget), None
        if reason is None and _junk(name):
            entry["status"] = "ignored"
            out.ignored += 1
            continue
        if reason is None:
            reason, target = _extract(zf, info, scratch, budget, entry)
        if reason is not None:
            entry["status"] = f"not unpacked: {reason}"
            out.skipped.append(Skipped(where, reason, shown, name))
            continue
        assert target is not None
        if is_zip(target):
            if depth >= MAX_DEPTH:
                entry["status"] = f"not unpacked: an archive {depth + 1} levels deep (bound {MAX_DEPTH})"
                out.skipped.append(Skipped(where, entry["status"][len("not unpacked: "):], shown, name))
                continue
            readable = _archive(Candidate(target, where, archive=shown, member=name), out, scratch, budget, depth + 1)
            entry["status"] = "archive" if readable else "not unpacked: not a readable archive"
            continue
        entry["status"] = "unpacked"
        out.files.append(Candidate(target, where, archive=shown, member=name))


def _is_workbook(zf: zipfile.ZipFile) -> bool:
    names = set(zf.namelist()[:200])
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def _refuse(info: zipfile.ZipInfo, budget: _Budget) -> str | None:
    """Why this member is not unpacked (from the archive's directory), or None."""
    if info.flag_bits & 0x1:
        return "encrypted (give the password-free export, or unpack it yourself)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link, not a file"
    if budget.unpacked + info.file_size > MAX_UNPACKED:
        return (f"would unpack to more than {MAX_UNPACKED} bytes in this import (bound MAX_UNPACKED; "
                f"member declares {info.file_size} bytes)")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return (f"{info.file_size} bytes from {info.compress_size} compressed (more than {MAX_RATIO}:1): "
                "a zip bomb, not a log export")
    return None


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, scratch: Path, budget: _Budget,
             entry: dict[str, Any]) -> tuple[str | None, Path | None]:
    """Unpack one member to the scratch folder, hashing it; returns (reason it failed, file)."""
    scratch.mkdir(parents=True, exist_ok=True)
    budget.seq += 1
    budget.members += 1
    target = scratch / f"{budget.seq:05d}" / safe_name(info.filename)  # a folder each: the name stays clean
    target.parent.mkdir()
    digest = hashlib.sha256()
    written = 0
    try:
        with zf.open(info) as src, open(target, "xb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > info.file_size or budget.unpacked + written > MAX_UNPACKED:
                    raise zipfile.BadZipFile("member is larger than the archive declares")
                digest.update(chunk)
                dst.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
        target.unlink(missing_ok=True)
        budget.unpacked += written
        return f"cannot be unpacked ({exc.__class__.__name__}: {exc})", None
    budget.unpacked += written
    entry["sha256"] = digest.hexdigest()
    return None, target
