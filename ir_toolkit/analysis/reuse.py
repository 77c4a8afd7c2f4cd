"""Work a case already holds for the same inputs: detect's prepared views, current findings and scope.

A responder runs ``detect``, then ``scope``, then the playbook (whose notebooks detect and scope again),
each in its own process. What they compute depends only on their inputs, named here by one key
(:func:`inputs_key`): the event store's part files (name, size, modification time), case.json (the
evidence and collection ledger), the pack's YAML files, its resolved parameters, the engine, the
reference data and this package's analysis code. So:

* ``detect`` (DuckDB engine) keeps the tables its preparation materialised (the pack's ``materialize``
  views and the tables it registered) in ``CASE/cache/prepared.duckdb`` beside their key and the
  prepared values (``prepared.json``); ``scope`` in a new process attaches them instead of preparing again.
  A table kept in part (the columns scope reads of a wide table: ``access_judged``) is written as Parquet
  (``prepared.NAME.parquet``, snappy, the key in its metadata): 0.76 s CPU at 1 million events against
  1.1-1.2 s into the DuckDB file, 49 against 37 MB (docs/performance.md, session 10).
* findings.json and scope.json carry the key they were made from (``inputs``); a later run with the same
  key, whose files are still the ones the custody log recorded, reads them instead of computing them again.

A change to the store (an import), to case.json, to the pack or to a parameter changes the key: nothing
made from other inputs is ever read. CASE/cache/ is derived and may be deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

import ir_toolkit
from ir_toolkit.analysis.detections import load_pack, raw_sql
from ir_toolkit.analysis.engine import DuckDBEngine
from ir_toolkit.case import Case
from ir_toolkit.case.manifest import MANIFEST, sha256_file
from ir_toolkit.case.verify import recorded_artifacts
from ir_toolkit.paths import data_dir
from ir_toolkit.sqltext import literal

log = logging.getLogger(__name__)

CACHE_DIR = "cache"
PREPARED_DB = "prepared.duckdb"
PREPARED_JSON = "prepared.json"
ANALYSIS_DIR = Path(__file__).resolve().parent
KEY_TABLE = "kept_inputs_key"  # in prepared.duckdb, beside the tables
PARQUET_KEY = "ir_toolkit_inputs_key"  # in the metadata of a table kept as Parquet
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class NotStorable(TypeError):
    """A prepared value that has no JSON form here (the preparation is then not kept)."""


def _file_digest(paths: list[Path]) -> list[tuple[str, str]]:
    return [(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(paths) if p.is_file()]


def inputs_key(case: Case, pack: str, values: dict[str, Any], engine: str) -> str:
    """What detect's preparation, its findings and the scope are made from, as one sha256 (hex).

    Args:
        case: The case.
        pack: Pack name or YAML path.
        values: The pack's resolved parameters (defaults included).
        engine: Engine name.
    """
    parts = sorted((f.relative_to(case.events.root).as_posix(), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in case.events.root.glob("*/*.parquet")) if case.events.root.exists() else []
    manifest = case.root / MANIFEST
    iocs = values.get("iocs") or []
    ioc_files = [Path(str(p).strip()) for p in (iocs if isinstance(iocs, list) else str(iocs).split(","))
                 if str(p).strip()]
    doc = {
        "version": ir_toolkit.__version__, "engine": engine, "pack": pack,
        "parameters": sorted((k, repr(v)) for k, v in values.items()),
        "store": parts, "manifest": sha256_file(manifest) if manifest.exists() else None,
        "pack_content": hashlib.sha256(repr(load_pack(pack)).encode()).hexdigest(),  # views, detections, defaults
        "code": _file_digest([*ANALYSIS_DIR.glob("*.py"), *ANALYSIS_DIR.glob("*.yaml")]),
        "reference": _file_digest(list((data_dir() / "reference").glob("*"))),
        "ioc_files": _file_digest(ioc_files),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def recorded_intact(case: Case, names: tuple[str, ...]) -> bool:
    """True when each of ``names`` (case-relative files) is present and is the version the custody log recorded."""
    latest = recorded_artifacts(list(case.custody()))
    for name in names:
        path = case.root / name
        sha = latest.get(name, (None, 0, ""))[0]
        if sha is None or not path.is_file() or path.is_symlink() or sha256_file(path) != sha:
            return False
    return True


# ----- prepared values as JSON (no pickle: a case folder may come from someone else) ----------------------
def encode(value: Any) -> Any:
    """``value`` as JSON-ready data, times, intervals and raw SQL tagged so :func:`decode` restores them.

    Raises:
        NotStorable: a value of another type.
    """
    if value is None or isinstance(value, bool | int | float) and type(value) in (bool, int, float):
        return value
    if isinstance(value, str):
        return value if type(value) is str else {"$sql": str(value)}
    if isinstance(value, pd.Timestamp):
        return {"$time": value.isoformat()}
    if isinstance(value, pd.Timedelta):
        return {"$delta": value.value}
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # a numpy scalar
        return encode(value.item())
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: encode(v) for k, v in value.items()}}
    raise NotStorable(f"{type(value).__name__} has no stored form")


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    (tag, inner), = value.items()
    if tag == "$sql":
        return raw_sql(str(inner))
    if tag == "$time":
        return pd.Timestamp(inner)
    if tag == "$delta":
        return pd.Timedelta(int(inner))
    if tag == "$tuple":
        return tuple(decode(v) for v in inner)
    return {k: decode(v) for k, v in inner.items()}


# ----- detect's prepared tables ------------------------------------------------------------------------------
def save_prepared(case: Case, engine: DuckDBEngine, tables: list[str], state: dict[str, Any], key: str,
                  columns: dict[str, list[str]] | None = None) -> bool:
    """Keep ``tables`` of ``engine`` and the prepared ``state`` in CASE/cache/ under ``key``.

    ``columns`` names, for some tables, the only columns kept (what the next process reads of them).

    Returns:
        False when the state holds a value with no stored form or the folder cannot be written (nothing kept).
    """
    folder = case.root / CACHE_DIR
    tmp = folder / f".{PREPARED_DB}.{os.getpid()}"
    tmp_doc = folder / f".{PREPARED_JSON}.{os.getpid()}"
    columns = {t: c for t, c in (columns or {}).items() if t in tables}
    parts = {name: (folder / f".{parquet_name(name)}.{os.getpid()}", folder / parquet_name(name)) for name in columns}
    try:
        if not all(TABLE_NAME.fullmatch(t) for t in [*tables, *(c for cs in columns.values() for c in cs)]):
            raise NotStorable(f"table names {tables} or kept columns are not all plain identifiers")
        text = json.dumps({"key": key, "tables": tables, "parquet": sorted(columns), "state": encode(state)})
        folder.mkdir(exist_ok=True)
        db, doc = folder / PREPARED_DB, folder / PREPARED_JSON
        doc.unlink(missing_ok=True)  # the key goes last: a half-written cache is never read
        tmp.unlink(missing_ok=True)
        for name, (part, _) in parts.items():  # the wide tables: Parquet, the key in its metadata
            kept = ", ".join(f'"{c}"' for c in columns[name])
            engine.con.execute(f'COPY (SELECT {kept} FROM "{name}") TO {literal(str(part))} '
                               f"(FORMAT parquet, COMPRESSION snappy, KV_METADATA {{{PARQUET_KEY}: {literal(key)}}})")
        engine.con.execute("ATTACH ? AS prepared_out", [str(tmp)])
        try:
            for name in tables:
                if name not in columns:
                    engine.con.execute(f'CREATE TABLE prepared_out."{name}" AS SELECT * FROM "{name}"')
            # the key inside the file too: the file and prepared.json must name the same preparation
            engine.con.execute(f"CREATE TABLE prepared_out.{KEY_TABLE} AS SELECT ? AS key", [key])
        finally:
            engine.con.execute("DETACH prepared_out")
        for part, final in parts.values():
            os.replace(part, final)
        os.replace(tmp, db)
        tmp_doc.write_text(text, encoding="utf-8")
        os.replace(tmp_doc, doc)
    except (NotStorable, OSError, duckdb.Error) as exc:
        log.info("prepared views not kept in the case: %s", exc)
        # a cache is never worth the case's space: what a failed write left (a full disk) goes, so that
        # the findings and scope written next still fit
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal"), tmp_doc, *(part for part, _ in parts.values())):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
        return False
    return True


def parquet_name(table: str) -> str:
    """The file in CASE/cache/ of a table kept as Parquet."""
    return f"prepared.{table}.parquet"


def load_prepared(case: Case, key: str, memory_limit: str | None = None) -> tuple[DuckDBEngine, dict[str, Any]] | None:
    """An engine on ``case`` with the tables kept under ``key`` (read-only views of CASE/cache/), and the state.

    Returns:
        None when nothing is kept for this key (the caller prepares).
    """
    folder = case.root / CACHE_DIR
    doc_path, db = folder / PREPARED_JSON, folder / PREPARED_DB
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        if doc.get("key") != key or not db.is_file() or db.is_symlink():
            return None
        state = decode(doc["state"])
        if not all(isinstance(t, str) and TABLE_NAME.fullmatch(t) for t in doc["tables"]):
            return None
        engine = DuckDBEngine(case, memory_limit=memory_limit)
        engine.con.execute("ATTACH ? AS prepared (READ_ONLY)", [str(db)])
        if engine.con.execute(f"SELECT key FROM prepared.{KEY_TABLE}").fetchall() != [(key,)]:
            return None  # the tables of another preparation (a writer replaced the file in between)
        parquet = set(doc.get("parquet", []))
        for name in doc["tables"]:
            if name not in parquet:
                engine.con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM prepared."{name}"')
                continue
            part = folder / parquet_name(name)
            if part.is_symlink() or engine.con.execute(
                    f"SELECT value::VARCHAR FROM parquet_kv_metadata(?) WHERE key::VARCHAR = '{PARQUET_KEY}'",
                    [str(part)]).fetchall() != [(key,)]:
                return None  # another preparation's file (a writer replaced it in between)
            engine.con.read_parquet(str(part)).create_view(name, replace=False)  # the path never in SQL text
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, duckdb.Error) as exc:
        log.info("prepared views in the case not read (%s): preparing again", exc)
        return None
    return engine, state


def prepared_key(case: Case) -> str | None:
    """The key of the preparation kept in the case, or None."""
    try:
        key = json.loads((case.root / CACHE_DIR / PREPARED_JSON).read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError, AttributeError):
        return None
    return str(key) if key else None


def current_document(case: Case, name: str, inputs: Any, also: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """CASE/``name`` (a JSON document) when it was made from ``inputs`` and it (and ``also``) is as recorded."""
    path = case.root / name
    if not inputs or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("inputs") != inputs or not recorded_intact(case, (name, *also)):
        return None
    return doc
