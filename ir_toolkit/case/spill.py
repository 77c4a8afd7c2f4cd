"""Where DuckDB spills what does not fit in its memory limit: beside the case's store, not the current directory.

DuckDB's default for an in-memory database is ``.tmp`` in the current directory: at ten million events
detect spills gigabytes, and a responder whose working directory is on a small disk (a home folder, a
mounted share) runs out of space although the disk holding the case has room. So every connection over
a case's store spills under ``CASE/cache/spill-<pid>-<random>`` (derived data, never evidence, not listed
by verify), one folder per connection because DuckDB removes the folder it made when the connection
closes and two processes must not share one.

The folder is only named here, never made: DuckDB makes it the first time it spills, so a reader that
does not spill leaves the case untouched. Its parent ``CASE/cache`` is made by the writers that analyse
(detect, scope, report: :func:`make_spill_room`, under the case's write lock); a case without it (read-only
storage, or never analysed) keeps DuckDB's default.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

import duckdb

from ir_toolkit.sqltext import literal

log = logging.getLogger(__name__)

SPILL_PARENT = "cache"
SPILL_PREFIX = "spill-"


def spill_folder(case_root: Path) -> Path | None:
    """A fresh spill folder name under ``CASE/cache`` for one connection, None when ``CASE/cache`` is not there.

    Args:
        case_root: The case folder.
    """
    parent = case_root / SPILL_PARENT
    if parent.is_symlink() or not parent.is_dir() or not os.access(parent, os.W_OK):
        return None
    return parent / f"{SPILL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"


def spill_beside_case(con: duckdb.DuckDBPyConnection, case_root: Path) -> Path | None:
    """Point ``con``'s spill files at a folder under ``CASE/cache`` (see the module docstring).

    Returns:
        The folder DuckDB will make if it spills, or None when DuckDB keeps its default.
    """
    folder = spill_folder(case_root)
    if folder is not None:
        con.execute(f"SET temp_directory={literal(str(folder))}")
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def make_spill_room(case_root: Path) -> None:
    """Make ``CASE/cache`` so that this writer's connections spill there, and remove spill folders left by
    processes that are gone (a detect killed mid-query leaves its spill files: gigabytes at ten million).

    Args:
        case_root: The case folder (its write lock is held by the caller).
    """
    parent = case_root / SPILL_PARENT
    try:
        parent.mkdir(exist_ok=True)
    except OSError as exc:  # read-only storage: DuckDB's default, and the writer reports its own error
        log.debug("no spill folder under %s: %s", case_root, exc)
        return
    if parent.is_symlink():
        return
    for left in parent.glob(f"{SPILL_PREFIX}*"):
        pid = left.name[len(SPILL_PREFIX):].split("-", 1)[0]
        if left.is_dir() and not left.is_symlink() and pid.isdigit() and not _alive(int(pid)):
            log.info("removing spill files left by process %s: %s", pid, left)
            shutil.rmtree(left, ignore_errors=True)
