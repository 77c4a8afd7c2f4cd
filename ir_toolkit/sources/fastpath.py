"""The fast import path: big Graph sign-in arrays and Purview CSV exports decoded by DuckDB.

Decoding JSON into Python objects (about 80 keys per sign-in) costs more than everything else an
import does, so for the two kinds of file that come in millions of records - a JSON array of Graph
sign-ins and a Purview audit search CSV with the current header - DuckDB reads the file and maps
the fields the canonical columns need in SQL (:mod:`ir_toolkit.sources.fastsql`); trimming, lower
case, addresses and times then go through the same Arrow and pandas code as the per-record path.

Every record the SQL cannot map exactly as :mod:`ir_toolkit.sources.mappers` would - a field of
an unexpected JSON type, a key spelled differently (``UserID``, ``userId_``), fields only the
per-record path reads, no readable time, anything malformed - is decoded from its JSON text and
goes through :func:`ir_toolkit.sources.batch.build_batch` with its position, so the batch holds the
same events and quarantine entries either way (each source's rows and the quarantine entries in file order;
a Purview batch has its rows grouped by source within each CSV block, :func:`fastrows.grouped`, so that the
event store writes slices of it). When DuckDB cannot read on
(broken JSON, a CSV row of the wrong width, invalid UTF-8, a Graph page inside the array), the rest
of the file, from the first record not yet returned, is read by the per-record readers.

The ``raw`` column is the record as compact JSON written by DuckDB: the same JSON value the
per-record path stores (key order kept), though control characters are escaped as ``\\u001F``
rather than ``\\u001f``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ir_toolkit.sources import fastdocs, fastsql, limits
from ir_toolkit.sources.batch import Batch, frame_from_arrow
from ir_toolkit.sources.fastrows import (
    MEMORY,
    READ_AHEAD,
    FastPathStop,
    csv_rows,
    grouped,
    ips,
    maybe_deep,
    merge_refused,
    one_array,
    rebatch,
    stripped,
)
from ir_toolkit.sources.fields import cached_norm_key, loads, normalise_keys
from ir_toolkit.sources.jsonstream import pages_of
from ir_toolkit.sources.mappers import classify
from ir_toolkit.sources.readahead import ahead
from ir_toolkit.sources.reader import Opened, csv_header
from ir_toolkit.sources.ual_fields import MAIL_ACCESS_OPS
from ir_toolkit.sqltext import literal
from ir_toolkit.timeutil import in_range, parse_times

log = logging.getLogger(__name__)

FAST_BYTES = 16 << 20  # files at least this big take the fast path (when it applies)
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\n?$"
_MAIL_OPS = pa.array(MAIL_ACCESS_OPS)  # the operations mapped as mail access (ual_fields, maps/ual.yaml)
_RULE_OR_PERMISSION_OPS = ["new-inboxrule", "set-inboxrule", "remove-inboxrule", "updateinboxrules",
                           "enable-inboxrule", "add-mailboxpermission", "add-recipientpermission",
                           "add-mailboxfolderpermission", "set-mailboxfolderpermission", "remove-mailboxpermission"]


def kind(fmt_name: str, path: Path, opened: Opened, head: str) -> str | None:
    """Which fast query fits this file ("signins", "purview") or None."""
    if opened.encoding not in ("utf-8", "utf-8-sig") or opened.delimiter != ",":
        return None
    if fmt_name == "graph-signins" and opened.container == "json" and head.lstrip("\ufeff \t\r\n")[:1] == "[":
        # DuckDB reads a comma before } or ], the per-record decoder quarantines the record
        return None if fastdocs.trailing_comma(path, opened) else "signins"
    if fmt_name == "purview-csv" and opened.container == "csv" and \
            tuple(csv_header(head.lstrip("\ufeff"))) == fastsql.PURVIEW_HEADER:
        return "purview"
    return None


def _source(con: duckdb.DuckDBPyConnection, path: Path, opened: Opened) -> str:
    """A view ``evidence_file`` reading a sign-in array (Purview CSVs are read by :func:`csv_rows`).

    The path goes to DuckDB as a value (a relation), never pasted into SQL text.
    """
    con.read_json(str(path), format="array", records="false", columns={"j": "JSON"},
                  maximum_object_size=limits.MAX_RECORD, compression="gzip" if opened.gzip else "none"
                  ).create_view("evidence_file", replace=True)
    return "evidence_file"


def parse_fast(which: str, path: Path, opened: Opened, *, evidence: str, batch_size: int,
               dayfirst: bool | None,
               hint: str, family: str | None, slow: Callable[[int], Iterator[Batch]]) -> Iterator[Batch]:
    """Batches of one file through DuckDB; ``slow(done)`` parses the file per record after record ``done``."""
    # sign-ins: DuckDB's JSON reader streams on one thread, so stage 2 maps each batch beside it (a
    # second connection); Purview rows come from Arrow's CSV reader and both stages run as one query, on one
    # DuckDB thread (DuckDB's threads cost ~15% more CPU for the same rows: docs/import.md, session 10) whose
    # fetches a reader thread makes (readahead.ahead) while this one maps and writes the batch before
    decide = _Decider(which)
    done = 0
    read_ahead: Generator[pa.Table, None, None] | None = None
    con, mapper = duckdb.connect(), duckdb.connect()  # one streams the file, the other maps its batches
    try:
        for c in (con, mapper):
            c.execute("SET enable_progress_bar = false")
            c.execute(f"SET memory_limit = {literal(MEMORY)}")
        # DuckDB decodes the next batches while Python maps and writes this one (two CPUs busy)
        con.execute(f"SET max_streaming_buffer_size = {literal(READ_AHEAD)}")
        con.execute(f"SET streaming_buffer_size = {literal(READ_AHEAD)}")
        if which == "signins":
            query, stage2 = fastsql.signin_stage1(_source(con, path, opened)), fastsql.signin_stage2("decoded")
        else:
            query = fastsql.purview_stage2(f"({fastsql.purview_stage1('csv_rows', pos=True)})", carry=True, pos=True)
            stage2 = None
            con.execute("SET threads = 1")
            con.register("csv_rows", grouped(csv_rows(path, opened, fastsql.PURVIEW_HEADER), batch_size, _mail))
        batches = rebatch(con.sql(query).to_arrow_reader(batch_size), batch_size)
        if stage2 is None:  # one DuckDB thread runs the query inside each fetch: fetched in a reader thread,
            batches = read_ahead = ahead(batches, "ir_toolkit-purview")  # beside the mapping of the one before
        for decoded in batches:
            if stage2 is None:  # the query mapped it already
                mapped = decoded
            else:
                mapper.register("decoded", decoded)
                mapped = mapper.sql(stage2).to_arrow_table()
                mapper.unregister("decoded")
            batch = _batch(which, decoded, mapped, done, decide, evidence=evidence, dayfirst=dayfirst,
                           hint=hint, family=family)
            done += decoded.num_rows
            yield batch
    except (duckdb.Error, FastPathStop, pa.ArrowException, OSError) as exc:  # OSError: DuckDB errors through Arrow
        if read_ahead is not None:
            read_ahead.close()
        log.info("%s: per-record import from record %d on (%s)", evidence, done + 1, str(exc).splitlines()[0])
        yield from slow(done)
    finally:
        if read_ahead is not None:
            read_ahead.close()  # the reader thread stopped before its connection closes
        con.close()
        mapper.close()


def _mail(rows: pa.RecordBatch) -> np.ndarray:
    """The Purview rows whose CSV column Operation is a mail access (MailItemsAccessed ...: source ``mail_access``,
    mostly)."""
    op = pc.utf8_trim_whitespace(rows.column("Operation"))
    return np.asarray(pc.fill_null(pc.is_in(op, _MAIL_OPS), False).to_numpy(zero_copy_only=False), bool)


def _in_file_order(decoded: pa.Table, t: pa.Table) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """The Purview batch and its positions, each source's rows in file order (:func:`grouped` put the rows
    of the CSV column MailItemsAccessed last in each block; where the record's own Operation says otherwise,
    the batch is put back in file order)."""
    pos = one_array(decoded.column("pos")).to_numpy()
    mail = np.asarray(pc.fill_null(pc.is_in(stripped(one_array(t.column("operation"))), _MAIL_OPS),
                                   False).to_numpy(zero_copy_only=False), bool)
    if all((np.diff(pos[rows]) > 0).all() for rows in (mail, ~mail)):
        return decoded, t, pos
    order = pa.array(np.argsort(pos, kind="stable"))
    back = decoded.take(order)
    return back, back if t is decoded else t.take(order), np.sort(pos)


class _Decider:
    """Accepts or refuses record shapes (by key-list hash) from one sample record each."""

    def __init__(self, which: str) -> None:
        self.which = which
        self.keys = fastsql.SIGNIN_KEYS if which == "signins" else fastsql.UAL_KEYS
        self.known: dict[int, bool] = {}

    def __call__(self, hashes: pa.Array, sample: Callable[[int], tuple[Any, int]],
                 positions: np.ndarray | None = None) -> pa.Array:
        values = hashes.to_numpy(zero_copy_only=False)
        if positions is None:
            uniques, first = np.unique(values, return_index=True)  # first: the first row of each shape
        else:  # rows out of file order: the first in the file
            order = np.argsort(positions, kind="stable")
            uniques, at = np.unique(values[order], return_index=True)
            first = order[at]
        for h, i in zip(uniques.tolist(), first.tolist(), strict=True):
            if h not in self.known:
                record, nkeys = sample(i)
                self.known[h] = self._accept(record, nkeys)
        accepted = np.array([h for h in uniques.tolist() if self.known[h]], dtype=values.dtype)
        return pa.array(np.isin(values, accepted), type=pa.bool_())

    def _accept(self, record: Any, nkeys: int) -> bool:
        if self.which == "signins" and (isinstance(record, list) or pages_of(record) is not None):
            raise FastPathStop("a Graph page or an array inside the array")
        if not isinstance(record, dict):
            return False
        if len(record) != nkeys:  # a key written twice: json keeps the last value, DuckDB the first
            return False
        for where, spellings in self.keys.items():
            for obj in _objects(record, where):
                if not all(spellings.get(cached_norm_key(k), k) == k for k in obj):
                    return False
        return self.which != "signins" or classify(normalise_keys(record)) == "signin"


def _objects(record: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The nested objects at ``where`` ("" the record, "a.b", "a[]" the objects of list a)."""
    found: list[Any] = [record]
    for step in where.split(".") if where else []:
        name, many = (step[:-2], True) if step.endswith("[]") else (step, False)
        nxt: list[Any] = []
        for o in found:
            v = o.get(name) if isinstance(o, dict) else None
            nxt.extend(v if many and isinstance(v, list) else [] if many else [v])
        found = nxt
    return [o for o in found if isinstance(o, dict)]


def _batch(which: str, decoded: pa.Table, t: pa.Table, done: int, decide: _Decider, *, evidence: str,
           dayfirst: bool | None, hint: str, family: str | None) -> Batch:
    n = t.num_rows
    pos = None
    if "pos" in decoded.column_names:  # Purview rows, grouped by source within each CSV block
        decoded, t, pos = _in_file_order(decoded, t)
        positions = pos.tolist()
    else:
        positions = list(range(done + 1, done + n + 1))
    raws = one_array(decoded.column("raw"))
    nkeys = decoded.column("nkeys")

    def sample(i: int) -> tuple[Any, int]:
        try:
            record = loads(raws[i].as_py())
            return (loads(record["AuditData"]) if which == "purview" else record), nkeys[i].as_py()
        except (ValueError, TypeError):
            return None, -1

    ok = pc.and_kleene(pc.fill_null(one_array(t.column("ok")), False),
                       decide(one_array(t.column("kh")), sample, pos))
    ok = pc.and_(ok, pa.array(~maybe_deep(raws)))  # the per-record path decides on those
    cols: dict[str, Any] = {name: one_array(t.column(name)) for name in t.column_names
                            if name not in ("kh", "ok", "raw", "nkeys", "pos")}
    if which == "signins":
        cols["operation"] = pa.array(["Sign-in"] * n, pa.string())
        cols["user"] = pc.if_else(cols.pop("by_app"), cols.pop("app_user"), pc.utf8_lower(stripped(cols.pop("upn"))))
    else:
        op = stripped(cols["operation"])
        mail = pc.fill_null(pc.is_in(op, _MAIL_OPS), False)
        ok = pc.and_(ok, pc.invert(pc.fill_null(pc.is_in(pc.utf8_lower(op), pa.array(_RULE_OR_PERMISSION_OPS)),
                                                False)))
        no_text, no_list = pa.scalar(None, pa.string()), pa.scalar(None, pa.list_(pa.string()))
        cols["source"] = pc.if_else(mail, "mail_access", "audit_other")
        cols["user"] = pc.utf8_lower(stripped(cols["user"]))
        key = cols.pop("user_key")
        cols["user_id"] = pc.if_else(pc.fill_null(pc.match_substring_regex(key, _GUID), False), key, no_text)
        cols["mail_access_type"] = pc.if_else(mail, cols["mail_access_type"], no_text)
        flag = pc.utf8_lower(stripped(cols["throttled"]))
        cols["throttled"] = pc.if_else(mail, pc.fill_null(pc.is_in(flag, pa.array(["true", "1", "yes"])), False),
                                       pa.scalar(None, pa.bool_()))
        group = pc.fill_null(cols.pop("is_group"), False)  # an item group (deletes, moves): mappers.item_group
        no_int = pa.scalar(None, pa.int64())
        cols["items"] = pc.if_else(mail, cols["items"], pc.if_else(group, cols.pop("group_items"), no_int))
        cols["message_ids"] = pc.if_else(mail, cols["message_ids"],
                                         pc.if_else(group, cols.pop("group_message_ids"), no_list))
        cols["folders"] = pc.if_else(mail, cols["folders"], pc.if_else(group, cols.pop("group_folders"), no_list))
        cols["target"] = pc.if_else(mail, no_text, cols["target"])
    cols["ip"] = ips(cols["ip"])
    times = parse_times(pd.Series(pd.arrays.ArrowExtensionArray(cols["time"])), dayfirst=dayfirst)
    ok = pc.and_(ok, pa.array(in_range(times).to_numpy()))  # the rest: quarantined per record
    cols["time"] = times
    keep = ok.to_numpy(zero_copy_only=False)
    frame = frame_from_arrow(cols, positions, raws, evidence, dayfirst)
    if keep.all():
        return Batch(frame, [], n)
    return merge_refused(frame, keep, raws, positions, evidence=evidence, dayfirst=dayfirst, hint=hint, family=family)


