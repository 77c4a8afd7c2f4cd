"""One writer at a time: the case's write lock (``CASE/.lock``).

Every verb that changes a case (import, collect, detect, scope, report) holds an exclusive
``flock`` on ``CASE/.lock`` for as long as it writes. A second writer waits up to
:data:`WAIT` seconds (``IR_TOOLKIT_LOCK_WAIT``) for the first to finish, then is refused with
one line naming the holder (:class:`CaseBusy`, exit 2). Readers (``evidence``, ``timeline``,
``graph``, notebooks reading events) take no lock: event parts and case.json are only ever
replaced whole, so a reader sees the case before or after a write, never half of one.

The lock is re-entrant within a process (scope running detect, collect running import), and
the kernel drops it when its process dies, so a killed writer never leaves the case locked. The
first holder in a process re-reads case.json (another process may have changed it since the
case was opened) and removes what a killed writer left half-done: temporary copies and parts
(``.*.tmp``) and the import spool. None of those is evidence: evidence enters raw/ by rename only.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import inspect
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from ir_toolkit.case.manifest import MANIFEST, actor, read_manifest
from ir_toolkit.case.spill import make_spill_room
from ir_toolkit.case.store import EventStore
from ir_toolkit.errors import CaseError
from ir_toolkit.timeutil import iso, now_utc

__all__ = ["LOCK", "WAIT", "CaseBusy", "holds_lock", "recover", "write_lock", "writes_case"]

LOCK = ".lock"
WAIT = float(os.environ.get("IR_TOOLKIT_LOCK_WAIT", "10"))
#: Writers whose DuckDB queries may spill: they make CASE/cache so that the spill goes beside the case.
SPILLING = frozenset({"detect", "scope", "report"})
_POLL = 0.05
_held: dict[str, list[Any]] = {}  # resolved case root -> [file descriptor, depth]
_guard = threading.RLock()
F = TypeVar("F", bound=Callable[..., Any])


class CaseBusy(CaseError):
    """Another process is writing to the case (exit 2)."""


def _key(root: Path) -> str:
    return str(Path(root).resolve())


def holds_lock(root: Path) -> bool:
    """True when this process holds the write lock of the case at ``root``."""
    return _key(root) in _held


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    if not isinstance(info, dict) or not info:
        return "another process"
    return f"{info.get('action', 'a writer')} (pid {info.get('pid', '?')}, {info.get('actor', '?')}, " \
           f"since {info.get('since', '?')})"


def _open(root: Path) -> int:
    mode = root.stat().st_mode
    if not os.access(root, os.W_OK) or not mode & 0o222:  # write bits honoured even for root (as Case.open does)
        raise CaseError(f"{root}: case folder is read-only")
    try:
        return os.open(root / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise CaseError(f"{root}: case folder is read-only (cannot take its write lock)") from None
        raise CaseError(f"{root}: cannot take the case's write lock ({exc.strerror or exc})") from None


def _acquire(root: Path, action: str, wait: float) -> int:
    fd = _open(root)
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(fd)
                os.close(fd)
                raise CaseBusy(f"{root}: another ir-toolkit process is writing to this case: {holder}; "
                               f"run {action} again when it has finished") from None
            time.sleep(_POLL)
        except OSError as exc:
            os.close(fd)
            raise CaseError(f"{root}: cannot take the case's write lock ({exc.strerror or exc})") from None
    info = json.dumps({"pid": os.getpid(), "action": action, "actor": actor(), "since": iso(now_utc())})
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8"), 0)
    except OSError:  # a full disk: the lock holds all the same, only the holder's name is missing
        pass
    return fd


@contextmanager
def write_lock(root: Path, action: str, wait: float | None = None) -> Iterator[bool]:
    """Hold the write lock of the case at ``root`` for the block.

    Args:
        root: The case folder.
        action: What is being done (named to a writer that has to wait).
        wait: Seconds to wait for another writer (default :data:`WAIT`).

    Yields:
        True when this call took the lock (the first holder in this process), False when re-entered.

    Raises:
        CaseBusy: another process held the lock for longer than ``wait``.
        CaseError: the folder is read-only or the lock cannot be taken.
    """
    key = _key(root)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            first = False
        else:
            fd = _acquire(Path(root), action, WAIT if wait is None else wait)
            _held[key] = [fd, 1]
            first = True
    try:
        if first:
            recover(Path(root))
        yield first
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                try:
                    fcntl.flock(entry[0], fcntl.LOCK_UN)
                finally:
                    os.close(entry[0])


def recover(root: Path) -> list[str]:
    """Remove what a killed writer left half-done (call only while holding the lock).

    Returns:
        The removed paths, case-relative.
    """
    removed: list[str] = []
    candidates = [root / f"{MANIFEST}.tmp", root / ".import-spool"]
    for sub in ("raw", "events"):
        if (root / sub).is_dir():
            candidates += [p for p in (root / sub).rglob(".*.tmp") if p.is_file() and not p.is_symlink()]
    for p in candidates:
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
            else:
                continue
        except OSError:
            continue
        removed.append(p.relative_to(root).as_posix())
    return removed


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _disk_full(exc: BaseException) -> bool:
    """True for a full disk or a file size limit (also when Arrow or DuckDB report it only in words)."""
    text = str(exc).lower()
    return getattr(exc, "errno", None) in _FULL or "no space left" in text or "file too large" in text \
        or "errno 28" in text


def _root_of(case: Any) -> Path:
    return Path(case.root) if hasattr(case, "root") else Path(case)


def writes_case(action: str) -> Callable[[F], F]:
    """Decorate ``fn(case, ...)`` to run holding the case's write lock.

    ``case`` is a :class:`ir_toolkit.case.case.Case` or a case folder. A ``write`` argument that is
    false (a dry run) takes no lock; neither does a folder that is no case (``fn`` then reports that
    itself). A Case object opened before the lock was taken has its manifest re-read and its event
    store's cache dropped, so it never writes over what another process recorded meanwhile.
    """
    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind_partial(*args, **kwargs)
            case = next(iter(bound.arguments.values()), None)
            if case is None or not bound.arguments.get("write", True):
                return fn(*args, **kwargs)
            root = _root_of(case)
            if not (root / MANIFEST).is_file():
                return fn(*args, **kwargs)
            try:
                with write_lock(root, action) as first:
                    if first and hasattr(case, "manifest"):
                        case.manifest = read_manifest(root)
                        case.events = EventStore(root / "events")
                    if first and action in SPILLING:
                        make_spill_room(root)
                    return fn(*args, **kwargs)
            except (OSError, duckdb.IOException) as exc:  # DuckDB's spill and Parquet writes fail as IOException
                if _disk_full(exc):
                    why = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:200]
                    raise CaseError(f"{root}: the disk is full ({why}); free space and run {action} "
                                    f"again: what was written is kept and nothing is counted twice") from None
                if getattr(exc, "errno", None) == errno.EROFS:
                    raise CaseError(f"{root}: case folder is on read-only storage ({action} writes to it)") from None
                raise

        return wrapper  # type: ignore[return-value]

    return decorate
