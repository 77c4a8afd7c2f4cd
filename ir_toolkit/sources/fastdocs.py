"""Records of JSON documents for the generated fast path: Event Hub bodies and JSON arrays, read by DuckDB.

Two containers of records that come in bulk besides JSON lines (:mod:`ir_toolkit.sources.fastjson`):

- ``bodies``: Azure Monitor Event Hub bodies, ``{"records": [...]}`` (one document, several one after
  the other, or one per line), each holding diagnostic-settings records as PT1H.json lines do;
- ``array``: a JSON array of records (a Log Analytics JSON export of MicrosoftGraphActivityLogs);
- ``tables``: Log Analytics query API bodies, ``{"tables": [{"columns": [{"name": ...}], "rows": [[...]]}]}``,
  each row made the object of its column names (as ``jsonstream.table_rows`` does);
- ``results``: Defender advanced hunting API bodies (``{"Stats", "Schema", "Results": [...]}``), Graph
  ``runHuntingQuery`` results (``{"@odata.context", "schema", "results": [...]}``) and Graph pages
  (``{"@odata.context", "value": [...], "@odata.nextLink"}``, one or several documents, or one per line: each
  read whole by DuckDB, a page being a few megabytes at most): the records of the
  first key that is not a head the per-record readers skip (``jsonstream.HEAD_KEYS``, ``@odata`` annotations),
  when it is ``Results`` / ``results``, or ``value`` after ``@odata`` annotations only
  (``jsonstream.envelope_key``); keys after it are skipped, as the per-record readers skip them.

DuckDB reads the documents (``read_json``; the path is a value, never pasted into SQL) and unnests
their records in file order, so a record's position is its number in the file, as the per-record
readers count it. Where a document is not what the fast path reads (a body with other keys, a nested
array the per-record readers would flatten) the record text is NULL: the fast path hands the rest over
from there. DuckDB re-writes each record's JSON, so what its parser forgives and the per-record decoder
does not (a comma before ``}`` or ``]``) must be found in the file's bytes first: :func:`trailing_comma`.

Bodies written one per line (as an Event Hub consumer writes them) are read a few megabytes of lines
at a time and unnested by DuckDB: a broken body hands over at its first record. Other documents are
read by DuckDB's ``read_json``, which stops where it meets a document it cannot parse, a read buffer
ahead of the records handed out so far: the per-record readers take over from the first record not yet
returned (nothing lost, the same quarantine), not from the broken document itself.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ir_toolkit.sources import limits
from ir_toolkit.sources.fields import loads
from ir_toolkit.sources.jsonstream import HEAD_KEYS
from ir_toolkit.sources.reader import Opened, open_text, read_records

_BODY = re.compile(r'\{\s*"records"\s*:\s*\[')
_TABLES = re.compile(r'\{\s*"tables"\s*:\s*\[')
_TABLE_OK = ("json_type(tb) = 'OBJECT' AND json_type(tb, '$.columns') = 'ARRAY' AND json_type(tb, '$.rows') = 'ARRAY' "
             "AND len(list_filter(CAST(json_extract(tb, '$.columns') AS JSON[]), "
             "lambda c: json_type(c, '$.name') IS DISTINCT FROM 'VARCHAR')) = 0")
# a body the per-record readers read as its tables' rows (else as one record: the fast path stops there)
_DOC_OK = ("json_type(j) = 'OBJECT' AND list_contains(json_keys(j), 'tables') "
           "AND list_has_all(['tables', 'statistics', 'render'], json_keys(j)) AND json_type(j, '$.tables') = 'ARRAY' "
           "AND len(list_filter(CAST(json_extract(j, '$.tables') AS JSON[]), "
           f"lambda tb: NOT coalesce(({_TABLE_OK}), false))) = 0")
_PAGE_START = re.compile(r'\{\s*"(?:@odata[^"\\]*|value)"\s*:')
_RESULTS = re.compile(r'\{\s*"(?:Stats|stats|Schema|schema|@odata[^"\\]*|Results|results|value)"\s*:')
# the records of a hunting body or a Graph page: the first key that is no head (``ek``; its place ``epos``), Results /
# results, or value after @odata annotations only; keys distinct (DuckDB reads a key's first value, json its last)
_ENVELOPE = ("SELECT j, ek, list_position(ks, ek) AS epos, ks FROM (SELECT j, ks, list_filter(ks, lambda k: "
             "NOT (list_contains(?, k) OR starts_with(k, '@odata')))[1] AS ek FROM (SELECT j, CASE WHEN "
             "json_type(j) = 'OBJECT' THEN json_keys(j) ELSE [] END AS ks FROM evidence_docs))")
_RESULTS_OK = ("len(ks) > 0 AND len(ks) = len(list_distinct(ks)) AND (ek IN ('Results', 'results') OR (ek = 'value' "
               "AND len(list_filter(list_slice(ks, 1, epos - 1), lambda k: NOT starts_with(k, '@odata'))) = 0)) "
               "AND json_type(j, '$.' || ek) = 'ARRAY'")
_SCAN = 1 << 22
_LINE_CHARS = 1 << 24  # characters of body lines unnested at a time
_BODY_OK = ("json_type(j) = 'OBJECT' AND json_keys(j) = ['records'] AND json_type(j, '$.records') = 'ARRAY'")
# each body's records (an empty body holds none, as the per-record readers read it); NULL: hand over there
_UNNEST = ("SELECT CASE WHEN json_type(r) = 'ARRAY' THEN NULL ELSE r::VARCHAR END AS line FROM ("
           f"SELECT unnest(CASE WHEN {{valid}}{_BODY_OK} THEN CAST(json_extract(j, '$.records') AS JSON[]) "
           "ELSE [NULL::JSON] END) AS r FROM {source})")


def kind(opened: Opened, head: str) -> str | None:
    """``"bodies"``, ``"tables"``, ``"results"`` or ``"array"`` when a UTF-8 JSON file starts as one of them
    (``results``: maybe; its SQL decides), else None."""
    if opened.container not in ("json", "jsonl") or opened.encoding not in ("utf-8", "utf-8-sig"):
        return None
    text = head.lstrip("\ufeff \t\r\n")
    if _BODY.match(text):
        return "bodies"
    if _TABLES.match(text):
        return "tables"
    if _RESULTS.match(text) and (opened.container == "json" or _PAGE_START.match(text)):
        return "results"  # JSON lines: of Graph pages only
    return "array" if opened.container == "json" and text.startswith("[") else None


def first_record(path: Path, opened: Opened) -> Any:
    """The file's first record as the per-record readers see it (None when it has none)."""
    with open_text(path, opened) as fh:
        for _, record in read_records(fh, opened.container, opened.delimiter):
            return record
    return None


def trailing_comma(path: Path, opened: Opened, block: int = _SCAN) -> bool:
    """True when the file holds a comma before ``}`` or ``]`` (maybe inside a string: then too).

    Scanned in blocks of ``block`` bytes with numpy, from each ``}`` and ``]`` back over blanks (a
    sign-in holds about five times fewer of them than commas: 0.07 s against 0.11-0.13 s for 50,000
    sign-ins from the commas forward, and twice as fast as a regular expression); a comma at a block's end
    followed by blanks is carried into the next.
    """
    carry = b""
    folded, hit = np.empty(block + 1, np.uint8), np.empty(block + 1, np.bool_)  # reused: no fresh pages
    with gzip.open(path, "rb") if opened.gzip else open(path, "rb") as fh:
        while data := fh.read(block):
            text = carry + data
            if len(text) > len(folded):
                folded, hit = np.empty(len(text), np.uint8), np.empty(len(text), np.bool_)
            if _comma_before_close(np.frombuffer(text, np.uint8), folded, hit):
                return True
            at = text.rfind(b",")
            carry = text[at:] if at >= 0 and not text[at + 1:].strip() else b""
    return False


_BLANK = np.zeros(256, bool)
_BLANK[list(b" \t\r\n")] = True


def _comma_before_close(text: np.ndarray, folded: np.ndarray, hit: np.ndarray) -> bool:
    """True when ``text`` (bytes) holds a comma followed by blanks (or none) and ``}`` or ``]``
    (``folded``, ``hit``: buffers at least as long as ``text``)."""
    m = len(text)
    np.bitwise_or(text, 0x20, out=folded[:m])  # "]" is 0x5D, "}" 0x7D: they differ in bit 0x20
    np.equal(folded[:m], ord("}"), out=hit[:m])
    at = np.flatnonzero(hit[:m]) - 1
    while True:
        at = at[at >= 0]
        if not len(at):
            return False
        before = text[at]
        if (before == ord(",")).any():
            return True
        at = at[_BLANK[before]] - 1


def records(con: duckdb.DuckDBPyConnection, path: Path, opened: Opened, container: str,
            batch_size: int) -> Iterator[pa.Array]:
    """The records' JSON text (string arrays of up to ``batch_size``, in file order); NULL where the fast
    path stops (a document or element the per-record readers read otherwise).

    A document is read whole by DuckDB up to ``limits.MAX_RECORD`` (a bigger one stops it; a limit of the
    file's size ran a 156 MB file of Event Hub bodies out of DuckDB's memory)."""
    con.read_json(str(path), format="array" if container == "array" else "unstructured", records="false",
                  columns={"j": "JSON"}, compression="gzip" if opened.gzip else "none",
                  maximum_object_size=limits.MAX_RECORD,  # a bigger document: the per-record readers go on
                  ).create_view("evidence_docs", replace=True)
    params: list[Any] = []
    if container == "tables":  # a row of another width than its columns: the per-record readers decide
        query = ("SELECT CASE WHEN json_type(row) = 'ARRAY' AND json_array_length(row) = len(names) THEN '{' || "
                 "array_to_string(list_transform(list_zip(names, CAST(row AS JSON[])), "
                 "lambda x: to_json(x[1]) || ':' || coalesce(x[2]::VARCHAR, 'null')), ',') || '}' END AS line FROM ("
                 "SELECT CAST(json_extract_string(tb, '$.columns[*].name') AS VARCHAR[]) AS names, "
                 "unnest(CAST(json_extract(tb, '$.rows') AS JSON[])) AS row FROM ("
                 f"SELECT unnest(CASE WHEN {_DOC_OK} THEN CAST(json_extract(j, '$.tables') AS JSON[]) "
                 "ELSE ['{\"columns\": [], \"rows\": [null]}'::JSON] END) AS tb FROM evidence_docs))")
    elif container == "results":  # an element that is a list: the per-record readers flatten it
        query = ("SELECT CASE WHEN json_type(r) = 'ARRAY' THEN NULL ELSE r::VARCHAR END AS line FROM (SELECT "
                 f"unnest(CASE WHEN {_RESULTS_OK} THEN CAST(json_extract(j, '$.' || ek) AS JSON[]) "
                 f"ELSE [NULL::JSON] END) AS r FROM ({_ENVELOPE}))")
        params = [sorted(HEAD_KEYS)]
    elif container == "array":
        query = "SELECT CASE WHEN json_type(j) = 'ARRAY' THEN NULL ELSE j::VARCHAR END AS line FROM evidence_docs"
    else:  # a body holding only records
        query = _UNNEST.format(valid="", source="evidence_docs")
    for rb in con.sql(query, params=params).to_arrow_reader(batch_size):
        yield rb.column(0)


def _lines(path: Path, opened: Opened) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their record numbers, as the per-record JSON lines reader counts them (blank
    lines are no record; the fast path hands over before a line that holds several records)."""
    with open_text(path, opened) as fh:
        n = 0
        for line in fh:
            if line.strip():
                n += 1
                yield n, line.rstrip("\r\n")


def _one_body_per_line(path: Path, opened: Opened) -> bool:
    """True when the file's first line is a whole Event Hub body (bodies written one per line)."""
    with open_text(path, opened) as fh:
        first = fh.readline(limits.MAX_RECORD + 1)
    try:
        body = loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and list(body) == ["records"]


def _body_lines(path: Path, opened: Opened, reader: duckdb.DuckDBPyConnection) -> Iterator[pa.Array]:
    """The records of a file of bodies one per line, unnested by DuckDB a few lines at a time: a line that
    is no body of records (broken, another document) gives NULL at its first record."""
    stream = _lines(path, opened)
    query = _UNNEST.format(valid="json_valid(j) AND ", source="(SELECT line AS j FROM body_lines)")
    while True:
        chunk, chars = [], 0
        for _, text in stream:
            chunk.append(text)
            chars += len(text)
            if chars >= _LINE_CHARS:
                break
        if not chunk:
            return
        reader.register("body_lines", pa.table({"line": pa.array(chunk, pa.string())}))
        yield reader.sql(query).to_arrow_table().column(0).combine_chunks()
        reader.unregister("body_lines")


_DECODER = json.JSONDecoder()
_HEAD_CHARS = 1 << 20  # a hunting body's heads (Stats, Schema) are read this far at most
_ROWS = ("SELECT CASE WHEN json_type(r) = 'ARRAY' THEN NULL ELSE r::VARCHAR END AS line FROM (SELECT unnest(CASE "
         "WHEN json_valid(j) AND json_type(j) = 'ARRAY' THEN CAST(j AS JSON[]) ELSE [NULL::JSON] END) AS r FROM rows)")


def _rows_start(text: str) -> int | None:
    """Where the rows array of a hunting body starts in ``text`` (its ``[``), when every key before it is a
    head the per-record readers skip; None otherwise (the whole document goes to DuckDB: a Graph page too)."""
    at = len(text) - len(text.lstrip("\ufeff \t\r\n"))
    if text[at:at + 1] != "{":
        return None
    at += 1
    try:
        while True:
            at = _skip(text, at)
            key, at = _DECODER.raw_decode(text, at)
            at = _skip(text, at)
            if not isinstance(key, str) or text[at:at + 1] != ":":
                return None
            at = _skip(text, at + 1)
            if key in ("Results", "results"):
                return at if text[at:at + 1] == "[" else None
            if key not in HEAD_KEYS and not key.startswith("@odata"):
                return None
            _, at = _DECODER.raw_decode(text, at)
            at = _skip(text, at)
            if text[at:at + 1] != ",":
                return None
            at += 1
    except (ValueError, RecursionError):
        return None


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _rows(path: Path, opened: Opened, reader: duckdb.DuckDBPyConnection) -> Iterator[pa.Array] | None:
    """The rows of a hunting body too big for one DuckDB document, unnested a few megabytes at a time: the text
    after the rows' ``[`` is cut before each ``{`` that starts a row (a ``}``, a comma, then ``{"`` and the first
    row's first key: ``{"`` is never inside a JSON string), each piece read by DuckDB as an array. A piece that
    is no JSON array (a cut inside a row, the end of the body not ``]}``) gives NULL at its first row."""
    with open_text(path, opened) as fh:
        head = fh.read(_HEAD_CHARS)
    start = _rows_start(head)
    if start is None:
        return None
    first = re.match(r'\[\s*\{\s*("(?:[^"\\]|\\.)*")\s*:', head[start:start + limits.MAX_RECORD])
    if first is None:
        return None
    cut = re.compile(r"\}\s*,\s*(?=\{\s*" + re.escape(first.group(1)) + r"\s*:)")
    return _pieces(path, opened, reader, start + 1, cut)


def _pieces(path: Path, opened: Opened, reader: duckdb.DuckDBPyConnection, start: int, cut: re.Pattern[str],
            ) -> Iterator[pa.Array]:
    with open_text(path, opened) as fh:
        fh.read(start)
        buf, done = "", False
        while not done:
            block = fh.read(_LINE_CHARS)
            done = not block
            buf += block
            end = None
            for m in cut.finditer(buf):
                end = m
            if done:
                tail = buf.rstrip(" \t\r\n")
                tail = tail[:-1].rstrip(" \t\r\n") if tail.endswith("}") else tail + "?"  # not ]}: no JSON
                piece, buf = tail[:-1] if tail.endswith("]") else tail + "?", ""
            elif end is None:
                continue
            else:
                piece, buf = buf[:end.start() + 1], buf[end.end():]
            if not piece.strip() and done:
                reader.register("rows", pa.table({"j": pa.array(["[]"], pa.string())}))
            else:
                reader.register("rows", pa.table({"j": pa.array(["[" + piece + "]"], pa.string())}))
            yield reader.sql(_ROWS).to_arrow_table().column(0).combine_chunks()
            reader.unregister("rows")


def chunks(container: str, path: Path, opened: Opened, batch_size: int, reader: duckdb.DuckDBPyConnection,
           ) -> Iterator[pa.Table]:
    """Tables of ``pos`` (record number) and ``line`` (the record's JSON text; NULL: hand over there) of a
    file of ``container`` (``lines``: JSON lines of one record each, read here; the others in DuckDB)."""
    if container == "lines":
        stream = _lines(path, opened)
        while chunk := [x for _, x in zip(range(batch_size), stream, strict=False)]:
            yield pa.table({"pos": pa.array([n for n, _ in chunk], pa.int64()),
                            "line": pa.array([t for _, t in chunk], pa.string())})
        return
    done = 0
    one_per_line = container == "bodies" and _one_body_per_line(path, opened)
    texts_of = _body_lines(path, opened, reader) if one_per_line else \
        (_rows(path, opened, reader) if container == "results" else None) or \
        records(reader, path, opened, container, batch_size)
    for piece in texts_of:
        for at in range(0, len(piece), batch_size):  # batches as the per-record readers cut them
            texts = piece.slice(at, batch_size)
            yield pa.table({"pos": pa.array(np.arange(done + 1, done + len(texts) + 1)), "line": texts})
            done += len(texts)


__all__ = ["chunks", "first_record", "kind", "records", "trailing_comma"]
