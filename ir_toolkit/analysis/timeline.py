"""One merged, sorted access timeline across every log source, ready for people and Timesketch.

Each canonical event becomes one row with a human ``message`` (who did what to what,
from where, with which app) and a ``timestamp_desc`` (what the time means), plus the
event's columns as attributes. Findings become rows of their own, and events that a
finding cites carry its ids. :func:`write_timeline` streams a whole case to CSV or JSON
lines in the form Timesketch imports (``message``, ``datetime`` ISO 8601,
``timestamp_desc``), with CSV cells neutralised against formula injection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ir_toolkit.analysis.aggregates import Data, check_columns, connect, utc, value_counts
from ir_toolkit.analysis.sessions import sessions
from ir_toolkit.case import Case
from ir_toolkit.errors import UserError
from ir_toolkit.schema import EVENT_COLUMN_NAMES, SIGNIN_SOURCES, conform
from ir_toolkit.textsafe import csv_safe_column

__all__ = ["TIMESTAMP_DESC", "ENTITY_COLUMNS", "TIMELINE_FORMATS", "build_timeline", "describe",
           "first_last_seen", "sessions", "write_timeline", "timeline_chunks"]

log = logging.getLogger(__name__)

TIMESTAMP_DESC: dict[str, str] = {
    "signin_interactive": "Sign-in time",
    "signin_noninteractive": "Sign-in time (non-interactive)",
    "signin_serviceprincipal": "Sign-in time (service principal)",
    "signin_managedidentity": "Sign-in time (managed identity)",
    "directory_audit": "Directory activity time",
    "mail_access": "Mail items accessed",
    "audit_other": "Audit record created",
    "tenant_snapshot": "Directory object created",
    "risk_detection": "Risk detected",
    "token": "Token issued",
    "finding": "Finding: first supporting event",
}
ENTITY_COLUMNS: tuple[str, ...] = ("user", "mailbox", "ip", "app_id", "client_app_id", "user_agent",
                                   "token_id", "session_id", "exchange_session_id", "country", "asn")
TIMELINE_FORMATS: dict[str, str] = {".csv": "CSV (Timesketch import, formula-safe)",
                                    ".jsonl": "JSON lines (Timesketch import)"}
# Attributes exported with each row: every canonical column except time (-> datetime) and raw (bulky).
ATTRIBUTES: tuple[str, ...] = tuple(c for c in EVENT_COLUMN_NAMES if c not in ("time", "raw"))


def _text(frame: pd.DataFrame, col: str) -> pd.Series:
    """Column ``col`` as plain text, "" where missing."""
    if col not in frame.columns:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    s = frame[col]
    if pd.api.types.is_float_dtype(s) and s.dropna().eq(s.dropna().round()).all():
        s = s.astype("Int64")
    return s.astype(object).where(s.notna(), "").astype(str)


def _opt(prefix: str, s: pd.Series, suffix: str = "") -> pd.Series:
    """``prefix + s + suffix`` where ``s`` is not empty, else ""."""
    return (prefix + s + suffix).where(s != "", "")


def _first(*series: pd.Series) -> pd.Series:
    """Element-wise the first non-empty text of several Series."""
    out = series[-1]
    for s in reversed(series[:-1]):
        out = s.where(s != "", out)
    return out


def describe(events: pd.DataFrame) -> pd.Series:
    """A one-line human message per event: who did what to what, from where, with which app.

    Args:
        events: Canonical events (any subset of the columns).

    Returns:
        A Series of messages aligned with ``events``.
    """
    t = {c: _text(events, c) for c in ("source", "operation", "result", "error_code", "user", "user_id",
                                       "mailbox", "app_id", "app_name", "client_app_id", "resource_id",
                                       "ip", "country", "asn", "items", "mail_access_type", "target", "token_id")}
    who = _first(t["user"], t["user_id"], pd.Series("unknown actor", index=events.index))
    app = _first(t["app_name"], t["app_id"], t["client_app_id"])
    where = _opt(" from ", t["ip"]) + _opt(" (", (t["country"] + _opt(" AS", t["asn"])).str.strip(), ")")
    with_app = _opt(" with ", app)
    # sign-ins
    failed = t["result"].str.lower().isin(["failure", "failed"])
    signin = (who + pd.Series(" signed in", index=events.index).where(~failed, " failed to sign in")
              + _opt(" (error ", t["error_code"].where(failed & (t["error_code"] != "0"), ""), ")")
              + _opt(" to ", app) + where)
    # mailbox access
    client = t["client_app_id"].where(t["client_app_id"] != t["app_id"], "")
    mail = (who + " accessed " + t["items"].where(t["items"] != "", "?") + " mail item(s)"
            + _opt(" (", t["mail_access_type"], ")") + _opt(" in mailbox ", t["mailbox"])
            + _opt(" with app ", _first(t["app_name"], t["app_id"])) + _opt(" (client app ", client, ")") + where)
    # everything else
    acted_on = _first(t["target"], t["mailbox"])
    other = (who + ": " + _first(t["operation"], t["source"]) + _opt(" on ", acted_on) + with_app + where
             + _opt(" [", t["result"].where(~t["result"].str.lower().isin(["", "success", "succeeded"]), ""), "]"))
    # tokens found by a token scan: result holds the verdict, target the signing key id
    token = (_first(t["user"], pd.Series("unknown user", index=events.index)) + ": token "
             + _first(t["token_id"], pd.Series("(no uti)", index=events.index)) + " observed"
             + _opt(", signed by key ", t["target"]) + _opt(" for app ", app) + where + _opt(" [", t["result"], "]"))
    out = other.where(~t["source"].isin(SIGNIN_SOURCES), signin)
    out = out.where(t["source"] != "token", token)
    return out.where(t["source"] != "mail_access", mail)


def _join_list(value: object) -> str | None:
    """A list cell (message_ids, folders) as "; "-joined text; None when empty or missing."""
    if isinstance(value, list | tuple | np.ndarray) and len(value):
        return "; ".join(map(str, value))
    return None


def _finding_rows(findings: pd.DataFrame) -> pd.DataFrame:
    f = findings.reset_index(drop=True)
    text = {c: _text(f, c) for c in ("severity", "verdict", "title", "explanation", "detection", "finding_id")}
    rows = pd.DataFrame({
        "datetime": utc(f["first"]),
        "timestamp_desc": TIMESTAMP_DESC["finding"],
        "message": ("Finding [" + text["severity"] + ", " + text["verdict"] + "] " + text["title"]
                    + _opt(": ", text["explanation"])),
        "source": "finding",
        "operation": text["detection"],
        "finding_ids": text["finding_id"],
    })
    for col in ("mailbox", "user", "ip", "app_id", "token_id", "session_id"):
        if col in f.columns:
            rows[col] = f[col].astype(object).where(f[col].notna(), None)
    return rows


def _cited(findings: pd.DataFrame, ids: set[str]) -> dict[str, str]:
    """record_id -> "; "-joined finding ids that cite it as evidence, for the record_ids ``ids`` only.

    A tenant's findings cite hundreds of thousands of events; a timeline of the actor shows a few hundred.
    """
    cited: dict[str, list[str]] = {}
    if "evidence" not in findings.columns:
        return {}
    for fid, evidence in zip(findings["finding_id"], findings["evidence"], strict=False):
        for rid in list(evidence) if evidence is not None else []:
            if str(rid) in ids:
                cited.setdefault(str(rid), []).append(str(fid))
    return {k: "; ".join(v) for k, v in cited.items()}


def build_timeline(events: pd.DataFrame, findings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Merge events (and findings) into one timeline sorted by time.

    Args:
        events: Canonical events from any mix of sources.
        findings: Optional findings (FINDING_COLUMNS): each becomes a row at its ``first`` time,
            and events whose ``record_id`` a finding cites get its id in ``finding_ids``.

    Returns:
        Columns ``datetime`` (tz-aware UTC), ``timestamp_desc``, ``message``, then the event
        attributes (canonical columns except ``time`` and ``raw``; ``message_ids`` and ``folders``
        joined with "; "), any extra columns of ``events`` and ``finding_ids``. Sorted by datetime,
        then source and record_id.
    """
    extra = [c for c in events.columns if c not in EVENT_COLUMN_NAMES]
    ev = pd.concat([conform(events), events[extra].reset_index(drop=True)], axis=1)
    rows = pd.DataFrame({
        "datetime": utc(ev["time"]) if "time" in ev.columns else pd.Series([], dtype="datetime64[us, UTC]"),
        "timestamp_desc": _text(ev, "source").map(lambda s: TIMESTAMP_DESC.get(s, "Event time")),
        "message": describe(ev),
    })
    for col in (*ATTRIBUTES, *extra):
        if col in ("message_ids", "folders"):
            rows[col] = ev[col].map(_join_list)
        else:
            rows[col] = ev[col]
    rows["finding_ids"] = None
    if findings is not None and not findings.empty:
        cited = _cited(findings, {str(r) for r in ev["record_id"]}) if "record_id" in ev.columns else {}
        if cited:
            rows["finding_ids"] = ev["record_id"].map(lambda r: cited.get(str(r)))
        rows = pd.concat([rows, _finding_rows(findings)], ignore_index=True) if len(rows) else _finding_rows(
            findings)
    rows["datetime"] = utc(rows["datetime"])
    keys = [c for c in ("datetime", "source", "record_id") if c in rows.columns]
    rows = rows.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    return rows


def first_last_seen(data: Data, kinds: Sequence[str] = ENTITY_COLUMNS) -> pd.DataFrame:
    """First and last time each entity (user, mailbox, address, app, token ...) was seen.

    Args:
        data: Case, DuckDB connection or events frame (aggregated in DuckDB).
        kinds: Event columns whose values are the entities.

    Returns:
        Columns ``entity_type`` (the column name), ``entity``, ``first``, ``last`` (tz-aware UTC),
        ``events``; sorted by first seen.
    """
    con = connect(data)
    parts = [value_counts(con, kind).assign(entity_type=kind) for kind in check_columns(kinds)]
    frame = pd.concat(parts, ignore_index=True).rename(columns={"value": "entity"})
    frame = frame[["entity_type", "entity", "first", "last", "events"]]
    return frame.sort_values(["first", "entity_type", "entity"], kind="stable").reset_index(drop=True)


# ----- export -------------------------------------------------------------------------------------
def export_frame(rows: pd.DataFrame, objects: bool = True) -> pd.DataFrame:
    """Timeline rows as Timesketch wants them: ``message``, ``datetime`` (ISO 8601 text),
    ``timestamp_desc``, then the attributes; with ``objects``, object dtype and None for missing."""
    out = rows.copy()
    stamp = utc(out["datetime"])
    out["datetime"] = stamp.dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").where(stamp.notna(), None)
    first = ["message", "datetime", "timestamp_desc"]
    out = out[first + [c for c in out.columns if c not in first]]
    return out.astype(object).where(out.notna(), None) if objects else out


def timeline_chunks(data: Data, findings: pd.DataFrame | None = None, chunk_rows: int = 200_000,
                    progress: bool = False) -> Iterator[pd.DataFrame]:
    """The timeline of a (large) case in time order, a few days of events at a time.

    Days are counted in DuckDB first and grouped into chunks of about ``chunk_rows`` events,
    so memory stays bounded. Findings are placed in the chunk covering their first time.
    """
    con = connect(data)
    days = con.sql("SELECT date_trunc('day', time) AS day, count(*) AS n FROM events "
                   "WHERE time IS NOT NULL GROUP BY ALL ORDER BY day").df()
    days["day"] = utc(days["day"])
    bounds: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    start, n = None, 0
    for day, count in zip(days["day"], days["n"], strict=True):
        start = day if start is None else start
        n += int(count)
        if n >= chunk_rows:
            bounds.append((start, day + pd.Timedelta(days=1)))
            start, n = None, 0
    if start is not None:
        bounds.append((start, days["day"].iloc[-1] + pd.Timedelta(days=1)))
    pending = findings.copy() if findings is not None and not findings.empty else None
    for i, (lo, hi) in enumerate(tqdm(bounds, desc="timeline", unit="chunk", disable=not progress)):
        last = i == len(bounds) - 1
        ev = con.execute("SELECT * FROM events WHERE time >= $lo AND time < $hi ORDER BY time, source, record_id",
                         {"lo": lo.to_pydatetime(), "hi": hi.to_pydatetime()}).df()
        here = None
        if pending is not None:
            first = utc(pending["first"])
            mask = (first < hi) | last | first.isna()
            here, pending = pending[mask], pending[~mask]
        yield build_timeline(ev, here)
    no_time = con.execute("SELECT count(*) FROM events WHERE time IS NULL").fetchone()
    if no_time and no_time[0]:
        log.warning("%d event(s) without a time are left out of the timeline", no_time[0])
    if not bounds and pending is not None:
        yield build_timeline(con.sql("SELECT * FROM events LIMIT 0").df(), pending)


def write_timeline(data: Data, out: str | Path, findings: pd.DataFrame | None = None,
                   progress: bool = False, chunk_rows: int = 200_000) -> int:
    """Write the timeline as Timesketch-ready CSV or JSON lines (chosen by the file extension).

    Columns: ``message``, ``datetime`` (ISO 8601), ``timestamp_desc``, then the attributes.
    CSV cells are neutralised against formula injection (:func:`ir_toolkit.textsafe.csv_safe`).

    Returns:
        The number of rows written.

    Raises:
        UserError: when the extension is not .csv or .jsonl, or the file cannot be written.
    """
    path = Path(out)
    ext = path.suffix.lower()
    if ext not in TIMELINE_FORMATS:
        raise UserError(f"{path}: timeline must be written to a .csv or .jsonl file")
    columns = ["message", "datetime", "timestamp_desc", *ATTRIBUTES, "finding_ids"]
    written = 0
    try:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            for rows in timeline_chunks(data, findings, chunk_rows=chunk_rows, progress=progress):
                frame = export_frame(rows, objects=ext != ".csv")
                if ext == ".csv":
                    frame = frame.reindex(columns=columns).apply(csv_safe_column)
                    frame.to_csv(fh, header=written == 0, index=False, lineterminator="\r\n")
                else:
                    for rec in frame.to_dict("records"):
                        fh.write(json.dumps({str(k): v for k, v in rec.items() if v is not None},
                                            ensure_ascii=False, default=str) + "\n")
                written += len(frame)
            if written == 0 and ext == ".csv":
                fh.write(",".join(columns) + "\r\n")
    except OSError as exc:
        raise UserError(f"{path}: cannot write timeline ({exc.strerror or exc})") from None
    return written


def case_findings(case: Case) -> pd.DataFrame | None:
    """The case's findings (CASE/findings.parquet) or None when detection has not run."""
    path = case.root / "findings.parquet"
    return pd.read_parquet(path) if path.exists() else None
