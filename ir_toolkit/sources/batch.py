"""One batch of canonical events from raw records: classify, map column by column, quarantine.

A batch's frame has the canonical columns of :mod:`ir_toolkit.schema`: time (UTC), source,
operation, result, error_code, user, user_id, mailbox, app_id, app_name, client_app_id,
resource_id, ip, country, asn, user_agent, session_id, token_id, token_issued_at,
exchange_session_id, mail_access_type, items, message_ids, folders, throttled, target,
record_id, evidence (``FILE#POSITION``) and raw (the record as compact JSON). String columns
are Arrow-backed, so they reach Parquet without a round trip through Python objects.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ir_toolkit.schema import EVENT_COLUMN_NAMES, EVENT_COLUMNS
from ir_toolkit.sources import limits
from ir_toolkit.sources.fields import boolean, integer, normalise_keys, text
from ir_toolkit.sources.mappers import MAPPERS, RecordError, classify, unwrap
from ir_toolkit.sources.rawtext import Broken
from ir_toolkit.timeutil import TIME_MAX, TIME_MIN, ambiguous_date, in_range, parse_times

Prepare = Callable[[dict[str, Any], str], dict[str, Any]]

try:  # orjson is a declared dependency; the stdlib keeps the importer working without it
    import orjson

    def _dumps(obj: Any) -> bytes:
        """The record as compact UTF-8 JSON. Raises UnicodeEncodeError for undecodable bytes."""
        try:
            return orjson.dumps(obj)
        except TypeError:  # integers beyond 64 bits, lone surrogates
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
except ImportError:  # pragma: no cover
    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

MAPPED_COLUMNS = tuple(c for c in EVENT_COLUMN_NAMES if c not in ("evidence", "raw"))
BATCH = 50_000
AMBIGUOUS_REASON = ("date order ambiguous (no date in this file has a day above 12, so day/month and month/day "
                    "both read): import it again with --day-first or --month-first")


@dataclass
class Batch:
    """One parsed batch: canonical events and the records that went to quarantine."""

    events: pd.DataFrame
    quarantined: list[dict[str, Any]]
    records: int


def build_batch(chunk: Iterator[tuple[int, Any]], *, evidence: str, dayfirst: bool | None, hint: str = "",
                family: str | None = None, prepare: Prepare | None = None) -> Batch:
    """Map a run of ``(position, record)`` into one :class:`Batch`; never raises on bad records.

    Args:
        chunk: Records from a reader (at most one batch of them).
        evidence: Case-relative file name for ``evidence`` and quarantine entries.
        dayfirst: Read ``a/b/yyyy`` dates as day/month.
        hint: The file name, lower case without - and _ (a hint for ``prepare``).
        family: Record family of every record (None: classify each record).
        prepare: Per-record key mapping before classification (normalised keys in and out).
    """
    groups: dict[str, tuple[list[dict[str, Any]], list[int], list[bytes]]] = {}
    quarantined: list[dict[str, Any]] = []
    records = 0
    group: Any = None
    item: Any = None
    rec: Any = None
    norm: Any = None

    def bad(pos: int, reason: str, record: Any, where: Broken | None = None) -> None:
        if isinstance(record, bytes):
            record = record.decode("utf-8", "backslashreplace")
        elif isinstance(record, str):
            record = _printable(record)
        entry = {"file": evidence, "position": pos, "reason": reason, "record": record}
        if where is not None and where.offset is not None:  # where the record lies in the file
            entry.update(offset=where.offset, length=where.length)
            if where.sha256:
                entry["sha256"] = where.sha256
        quarantined.append(entry)

    enabled = gc.isenabled()
    gc.disable()  # parsed records hold no cycles; the collector only slows the parse down
    try:
        for pos, rec in chunk:
            records += 1
            item = _prepare(pos, rec, hint, family, prepare, bad)
            if item is not None:
                kind, norm, raw = item
                group = groups.get(kind)
                if group is None:
                    group = groups[kind] = ([], [], [])
                group[0].append(norm)
                group[1].append(pos)
                group[2].append(raw)
        frames = [_map(kind, *group, evidence, dayfirst, bad) for kind, group in groups.items()]
        groups.clear()  # free the parsed records by reference counting before the collector resumes
        del group, item, rec, norm
    finally:
        if enabled:
            gc.enable()
    frame = frames[0] if len(frames) == 1 else (
        pd.concat(frames, ignore_index=True) if frames else _frame({}, [], [], evidence, dayfirst))
    return Batch(frame, quarantined, records)

def _prepare(pos: int, rec: Any, hint: str, family: str | None, prepare: Prepare | None,
             bad: Callable[..., None]) -> tuple[str, dict[str, Any], bytes] | None:
    """Family, normalised record and raw JSON of one record, or None (quarantined)."""
    if isinstance(rec, Broken):
        bad(pos, rec.reason, rec.text, rec)
        return None
    if not isinstance(rec, dict):
        bad(pos, f"record {pos} is a JSON {type(rec).__name__}, not an object", _safe(rec))
        return None
    try:
        raw = _dumps(rec)
    except (UnicodeEncodeError, RecursionError):
        bad(pos, f"record {pos} holds a lone UTF-16 surrogate or bytes that are not valid in the file's encoding",
            _safe(rec))
        return None
    try:
        norm = normalise_keys(rec)
        if prepare is not None:
            norm = prepare(norm, hint)
        kind = family or classify(norm)
        if kind is None:
            raise RecordError(f"not a record this format knows (keys: {', '.join(map(str, list(rec)[:8]))})")
        kind, norm = unwrap(kind, norm)
        if raw.count(b"{") + raw.count(b"[") > limits.MAX_DEPTH and \
                max(limits.depth(rec), limits.depth(norm)) > limits.MAX_DEPTH:  # nested text (AuditData) too
            raise RecordError(f"nested more than {limits.MAX_DEPTH} levels deep (the limit)")
        return kind, norm, raw
    except RecordError as exc:
        bad(pos, f"record {pos}: {exc}", raw)
    except Exception as exc:  # noqa: BLE001 - attacker-controlled input: quarantine, never crash
        bad(pos, f"record {pos}: unreadable ({exc.__class__.__name__}: {exc})", raw)
    return None

def _map(family: str, rs: list[dict[str, Any]], positions: list[int], raws: list[bytes],
         evidence: str, dayfirst: bool | None, bad: Callable[..., None]) -> pd.DataFrame:
    """Map one family's records column by column; a record that breaks the mapper is quarantined."""
    mapper = MAPPERS[family]
    cols: dict[str, list[Any]]
    try:
        cols = mapper(rs)
    except Exception:  # noqa: BLE001 - find the record(s) at fault, one by one
        cols = {}
        keep: list[int] = []
        for i, r in enumerate(rs):
            try:
                one = mapper([r])
            except Exception as exc:  # noqa: BLE001
                bad(positions[i], f"record {positions[i]}: unreadable ({exc.__class__.__name__}: {exc})", raws[i])
                continue
            for name in set(one) | set(cols):
                cols.setdefault(name, [None] * len(keep)).extend(one.get(name, [None]))
            keep.append(i)
        positions, raws = [positions[i] for i in keep], [raws[i] for i in keep]
    try:
        frame = _frame(cols, positions, raws, evidence, dayfirst)
    except (UnicodeError, pa.ArrowException):  # a value Arrow cannot hold (a lone surrogate): find its record
        keep = []
        for i, pos in enumerate(positions):
            try:
                _frame({k: v[i:i + 1] for k, v in cols.items()}, [pos], raws[i:i + 1], evidence, dayfirst)
            except (UnicodeError, pa.ArrowException) as exc:
                bad(pos, f"record {pos}: a value cannot be stored ({exc.__class__.__name__}: {exc})", raws[i])
                continue
            keep.append(i)
        cols = {k: [v[i] for i in keep] for k, v in cols.items()}
        positions, raws = [positions[i] for i in keep], [raws[i] for i in keep]
        frame = _frame(cols, positions, raws, evidence, dayfirst)
    timed = frame["source"] != "tenant_snapshot"
    missing = frame["time"].isna() & timed
    outside = ~missing & frame["time"].notna() & ~in_range(frame["time"])
    if missing.any() or outside.any():
        times = cols.get("time") or [None] * len(positions)
        for i in missing[missing].index:
            why = AMBIGUOUS_REASON if dayfirst is None and ambiguous_date(times[i]) else "no readable time"
            bad(positions[i], f"record {positions[i]}: {why} (got {_shown(times[i])})", raws[i])
        for i in outside[outside].index:
            bad(positions[i], f"record {positions[i]}: time {_shown(times[i])} is outside what the analysis can "
                f"represent ({TIME_MIN.year}-01-01 .. {TIME_MAX.year}-01-01)", raws[i])
        frame = frame[~(missing | outside)].reset_index(drop=True)
    return frame


def _shown(value: Any) -> str:
    """A field value for a quarantine reason: its repr, cut to 200 characters."""
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _safe(obj: Any) -> str:
    """The record as JSON text that can be written as UTF-8 (undecodable bytes shown as \\xNN)."""
    try:
        dumped = json.dumps(obj, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        try:
            dumped = repr(obj)
        except RecursionError:
            dumped = f"<a {type(obj).__name__} nested too deep to show>"
    return _printable(dumped)[:1_000_000]


def _printable(text: str) -> str:
    """Text that encodes as UTF-8: escaped undecodable bytes and lone surrogates become \\xNN / \\udNNN."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_LOWER = {"user_id", "mailbox", "app_id", "client_app_id", "resource_id", "session_id", "exchange_session_id",
          "result"}
_INTS = {c.name for c in EVENT_COLUMNS if pa.types.is_int64(c.type)}  # error_code, asn, items, response_status
_LISTS = {"message_ids", "folders"}
_NULL = pa.scalar(None, pa.string())


def _strings(values: list[Any], lower: bool) -> pa.Array:
    """A string column: whitespace trimmed, empty -> null, optionally lower case (vectorised)."""
    try:
        arr = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([text(v) for v in values], type=pa.string())
    return _trimmed(arr, lower)


def _trimmed(arr: pa.Array, lower: bool) -> pa.Array:
    arr = pc.utf8_trim_whitespace(arr)
    arr = pc.if_else(pc.equal(arr, ""), _NULL, arr)
    return pc.utf8_lower(arr) if lower else arr


def _typed(values: list[Any], kind: pa.DataType, convert: Callable[[Any], Any]) -> pa.Array:
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([convert(v) for v in values], type=kind)


def _string_list(value: Any) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list) else None


def _frame(cols: dict[str, list[Any]], positions: list[int], raws: list[bytes], evidence: str,
           dayfirst: bool | None) -> pd.DataFrame:
    """The canonical frame of one batch; string columns are Arrow-backed (no Python round trip)."""
    n = len(positions)
    data: dict[str, Any] = {}
    for name in MAPPED_COLUMNS:
        values = cols.get(name) or [None] * n
        if name in ("time", "token_issued_at"):
            data[name] = _bounded(parse_times(pd.Series(values, dtype=object), dayfirst=dayfirst), name)
            continue
        if name in _INTS:
            arr = _typed(values, pa.int64(), integer)
        elif name == "throttled":
            arr = _typed(values, pa.bool_(), boolean)
        elif name in _LISTS:
            arr = _typed(values, pa.list_(pa.string()), _string_list)
        else:
            arr = _strings(values, name in _LOWER)
        data[name] = pd.Series(pd.arrays.ArrowExtensionArray(arr))
    return _finish(data, positions, pa.array(raws, type=pa.binary()).cast(pa.string()), evidence)


def frame_from_arrow(cols: dict[str, Any], positions: list[int], raws: pa.Array, evidence: str,
                     dayfirst: bool | None) -> pd.DataFrame:
    """The canonical frame from columns already in Arrow (the fast path of
    :mod:`ir_toolkit.sources.fastpath`): strings are trimmed and lower-cased as :func:`_frame` does;
    ``time`` may be given parsed (a UTC Series); a missing column is all null."""
    n = len(positions)
    data: dict[str, Any] = {}
    for name in MAPPED_COLUMNS:
        values = cols.get(name)
        if name in ("time", "token_issued_at"):
            if isinstance(values, pd.Series):
                data[name] = _bounded(values.reset_index(drop=True), name)
            else:
                texts = pd.Series(pd.arrays.ArrowExtensionArray(values)) if values is not None else \
                    pd.Series([None] * n, dtype=object)
                data[name] = _bounded(parse_times(texts, dayfirst=dayfirst), name)
            continue
        kind = pa.int64() if name in _INTS else pa.bool_() if name == "throttled" else \
            pa.list_(pa.string()) if name in _LISTS else pa.string()
        if values is None:
            arr = pa.nulls(n, kind)
        elif kind == pa.string():
            arr = _trimmed(values.cast(pa.string()), name in _LOWER)
        else:
            arr = values.cast(kind)
        data[name] = pd.Series(pd.arrays.ArrowExtensionArray(arr))
    return _finish(data, positions, raws.cast(pa.string()), evidence)


def _bounded(times: pd.Series, name: str) -> pd.Series:
    """Secondary times (token_issued_at) outside the representable range are cleared; ``time`` is
    kept as read (:func:`_map` quarantines its record)."""
    if name == "time":
        return times
    return times.where(in_range(times) | times.isna())


def _finish(data: dict[str, Any], positions: list[int], raws: pa.Array, evidence: str) -> pd.DataFrame:
    where = pc.binary_join_element_wise(f"{evidence}#", pa.array(positions, pa.int64()).cast(pa.string()), "")
    data["evidence"] = pd.Series(pd.arrays.ArrowExtensionArray(where))
    data["raw"] = pd.Series(pd.arrays.ArrowExtensionArray(raws))
    return pd.DataFrame(data)
