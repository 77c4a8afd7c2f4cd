"""What the report and the notebooks read of a case's events, kept in CASE/cache/memo/ for the next reader.

The playbook's notebooks 03, 04 and 05 and its report each read the actor's events, and notebook 03 and the
report count the tenant (events per day and source, per hour of week, per mailbox and bucket); ``ir-toolkit
report`` run before the playbook read and counted the same. Each is a DuckDB pass over the whole store (at ten
million events, seconds each), and its answer is small. :func:`remember` keeps each answer as a Parquet file
under a key made of the store's part files (name, size, modification time, as detect's prepared views are
keyed: :mod:`ir_toolkit.analysis.reuse`) and the question (what, its SQL predicate, columns, zone), so the next
reader of the same store reads a small file instead of scanning it again.

Layout: ``CASE/cache/memo/<store key>/<question key>.parquet``. An import changes the store and so the store
key: what was kept for another store is never read, and is removed when an answer for the new one is kept.
CASE/cache/ is derived, not evidence: ``verify`` does not list it, and it may be deleted at any time. A file
that cannot be read (a half-written or foreign one) is computed again, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import ir_toolkit
from ir_toolkit.case import Case

log = logging.getLogger(__name__)

MEMO_DIR = ("cache", "memo")
#: Answers larger than this many rows are not kept (the memo is for the small answers read again and again).
MAX_ROWS = 200_000
ATTRS_KEY = b"ir_toolkit.attrs"
PACKAGE = Path(ir_toolkit.__file__).resolve().parent
#: The code an answer depends on: a change to any of these makes every kept answer a stranger.
CODE = ("report/memo.py", "report/casequery.py", "report/casedata.py", "report/counts.py", "analysis/aggregates.py",
        "report/identities.py", "schema.py", "case/store.py", "sqltext.py")


def files_digest(names: tuple[str, ...], salt: str) -> str:
    """sha256 of ``salt`` (a version) and the toolkit's files ``names`` (paths below the package)."""
    digest = hashlib.sha256(salt.encode())
    for name in names:
        path = PACKAGE / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the toolkit's version and the code the kept answers are computed by."""
    return files_digest(CODE, ir_toolkit.__version__)


def store_key(case: Case) -> str:
    """The event store as one sha256: its part files' names, sizes and modification times."""
    root = case.events.root
    parts = sorted((f.relative_to(root).as_posix(), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in root.glob("*/*.parquet")) if root.exists() else []
    return hashlib.sha256(json.dumps([code_digest(), parts]).encode()).hexdigest()


def question_key(what: str, args: Any) -> str:
    """The question as one sha256: its name and its arguments (SQL predicate, columns, zone, values)."""
    return hashlib.sha256(json.dumps([what, args], sort_keys=True, default=str).encode()).hexdigest()


def memo_root(case: Case) -> Path:
    """CASE/cache/memo."""
    return case.root.joinpath(*MEMO_DIR)


def remember(case: Case, what: str, args: Any, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The answer kept for this store and question, else ``compute()``'s (kept for the next reader).

    Args:
        case: The case whose store the answer is about.
        what: The question's name (e.g. ``daily_source_counts``).
        args: Its arguments, as JSON-ready values (a predicate, column names, a zone, sorted values).
        compute: Computes the answer (a DataFrame; its ``attrs`` are kept with it).

    Returns:
        The answer: the same frame ``compute()`` gives (columns, dtypes, values and attrs).
    """
    kept = recall(case, what, args)
    if kept is not None:
        return kept
    frame = compute()
    keep(case, what, args, frame)
    return frame


def recall(case: Case, what: str, args: Any) -> pd.DataFrame | None:
    """The answer kept for this store and question (as :func:`remember` keeps it), or None."""
    return _read(memo_root(case) / store_key(case) / f"{question_key(what, args)}.parquet")


def keep(case: Case, what: str, args: Any, frame: pd.DataFrame) -> None:
    """Keep ``frame`` as the answer to the question for this store (unless it is empty of columns or too large).

    For answers computed together (one pass over the store for several questions): each is then read by
    :func:`remember` or :func:`recall` as if it had been computed alone.
    """
    if len(frame.columns) and len(frame) <= MAX_ROWS:
        folder = memo_root(case) / store_key(case)
        _write(case, folder, folder / f"{question_key(what, args)}.parquet", frame)


def _read(path: Path) -> pd.DataFrame | None:
    if not path.is_file() or path.is_symlink():
        return None
    try:
        table = pq.read_table(path)
        frame = table.to_pandas()
        meta = (table.schema.metadata or {}).get(ATTRS_KEY)
        attrs = json.loads(meta) if meta else {}
        if not isinstance(attrs, dict):
            return None
        frame.attrs.update(attrs)
        return frame
    except (OSError, ValueError, pa.ArrowException) as exc:
        log.info("memo %s not read (%s): computed again", path.name, exc)
        return None


def _write(case: Case, folder: Path, path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[ATTRS_KEY] = json.dumps(frame.attrs, default=str).encode()
        folder.mkdir(parents=True, exist_ok=True)
        for stale in memo_root(case).iterdir():  # answers about another store (before an import) are never read
            if stale.is_dir() and stale.name != folder.name:
                shutil.rmtree(stale, ignore_errors=True)
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError, pa.ArrowException) as exc:  # a memo is never worth failing the reader
        log.info("memo %s not kept: %s", path.name, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
