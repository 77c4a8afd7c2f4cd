"""What the report and notebooks 03-05 read of a large case: filtered and counted in DuckDB, never every event.

A tenant's month is about ten million events; read whole into pandas it takes tens of GB. The
report and the notebooks need only the actor's events (its addresses, and the tokens and sessions
of confirmed and likely findings: :func:`ir_toolkit.report.casedata.actor_indicators`), the events
around one seed, and counts of everything else (per day and source, per hour of week, per mailbox
and bucket). Each function here reads those through the case's DuckDB ``events`` view; values
reach SQL only through :func:`ir_toolkit.sqltext.literal`. Each answer is kept for the next reader of the same
store (:mod:`ir_toolkit.report.memo`): the playbook's notebooks and its report ask the same questions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ir_toolkit.analysis import aggregates
from ir_toolkit.analysis.aggregates import activity_counts
from ir_toolkit.case import Case
from ir_toolkit.report import casedata
from ir_toolkit.report.counts import tenant_counts
from ir_toolkit.report.memo import remember
from ir_toolkit.schema import EVENT_COLUMN_NAMES, EVENT_COLUMNS, conform
from ir_toolkit.sqltext import literal
from ir_toolkit.timeutil import parse_time

__all__ = ["WITHOUT_RAW", "actor_events", "actor_where", "count_events", "daily_source_counts",
           "hour_of_week_counts", "mailbox_counts", "near_seeds", "read_where", "seed_where", "span_freq",
           "window_where", "with_token_raw"]

#: Every canonical column but ``raw``: the original record is the bulk of the store, and a filter over other
#: columns still decodes it for every row of the store (at a million events, 1 s of the 1.5 s an actor read takes).
WITHOUT_RAW = [c for c in EVENT_COLUMN_NAMES if c != "raw"]
_LEAN = tuple(c for c in EVENT_COLUMNS if c.name != "raw")

#: Columns whose values tie an event to an indicator (a seed given as a bare value or ``type:value``).
SEED_COLUMNS = {"ip": "ip", "token": "token_id", "session": "session_id", "mailbox": "mailbox", "user": "user"}


def _in(column: str, values: Iterable[Any]) -> str | None:
    wanted = sorted({str(v) for v in values if v is not None and str(v) != ""})
    return f"{column} IN ({literal(wanted)})" if wanted else None


def _and(*parts: str | None) -> str | None:
    kept = [f"({p})" for p in parts if p]
    return " AND ".join(kept) if kept else None


def _or(*parts: str | None) -> str | None:
    kept = [f"({p})" for p in parts if p]
    return " OR ".join(kept) if kept else None


def window_where(start: str = "", end: str = "", mailbox: str = "") -> str | None:
    """The SQL predicate of :func:`ir_toolkit.report.casedata.in_window` (None: every event)."""
    first, last = parse_time(start or None), parse_time(end or None)
    box = mailbox.strip().lower()
    return _and(f"time >= {literal(first)}" if first is not None else None,
                f"time <= {literal(last)}" if last is not None else None,
                f"mailbox = {literal(box)} OR user = {literal(box)}" if box else None)


def _connect(case: Case) -> Any:
    con = case.duckdb()
    con.execute("SET TimeZone='UTC'")  # a time bound is a UTC TIMESTAMP literal
    return con


def count_events(case: Case, where: str | None = None) -> int:
    """How many events match ``where`` (all when None)."""
    if not case.events.sources():
        return 0

    def count() -> pd.DataFrame:
        row = _connect(case).execute("SELECT count(*) FROM events" + (f" WHERE {where}" if where else "")).fetchone()
        return pd.DataFrame({"events": [int(row[0]) if row else 0]})

    return int(remember(case, "count_events", [where], count)["events"].iloc[0])


def read_where(case: Case, where: str | None, columns: list[str] | None = None) -> pd.DataFrame:
    """Events matching ``where`` (None reads nothing), sorted by time; canonical columns (or ``columns``)."""
    if not where or not case.events.sources():
        frame = casedata.empty_events()
        return frame[columns] if columns else frame
    if columns is not None and set(columns) <= set(WITHOUT_RAW) and {"time", "record_id"} <= set(columns):
        # a few columns of the rows read whole but raw (the notebooks' read) are those columns read alone: the
        # same order (by time, record_id) and dtypes; so the report and the notebooks share one kept answer
        lean = remember(case, "read_where", [where, WITHOUT_RAW],
                        lambda: case.read_events(columns=WITHOUT_RAW, where=where))
        # WITHOUT_RAW: the frame a whole read gives (canonical dtypes), but raw
        return conform(lean, _LEAN) if columns == WITHOUT_RAW else lean[columns]
    return remember(case, "read_where", [where, columns], lambda: case.read_events(columns=columns, where=where))


def actor_where(findings: pd.DataFrame, scope: dict[str, Any] | None) -> str | None:
    """The predicate of :func:`ir_toolkit.report.casedata.actor_events` (None: no indicator yet)."""
    ips, tokens, sessions = casedata.actor_indicators(findings, scope)
    return _or(_in("ip", ips), _in("token_id", tokens), _in("session_id", sessions))


def actor_events(case: Case, findings: pd.DataFrame, scope: dict[str, Any] | None, start: str = "",
                 end: str = "", mailbox: str = "", columns: list[str] | None = None) -> pd.DataFrame:
    """The actor's events inside the window (the same rows as ``casedata.actor_events`` over every event).

    Returns:
        Canonical events (or ``columns``), sorted by time.
    """
    indicators = actor_where(findings, scope)
    return read_where(case, _and(indicators, window_where(start, end, mailbox)) if indicators else None, columns)


def seed_where(seeds: Iterable[str]) -> str | None:
    """Events naming a seed: ``ip:1.2.3.4``, ``token:...``, ``mailbox:...`` or a bare value (any of them)."""
    by: dict[str, set[str]] = {c: set() for c in SEED_COLUMNS.values()}
    for seed in seeds:
        kind, _, value = str(seed).partition(":")
        if kind in SEED_COLUMNS and value:
            by[SEED_COLUMNS[kind]].add(value.lower() if kind in ("mailbox", "user") else value)
        else:
            for col in by:
                by[col].add(str(seed).lower() if col in ("mailbox", "user") else str(seed))
    return _or(*(_in(col, values) for col, values in by.items()))


def near_seeds(case: Case, seeds: Iterable[str], start: str = "", end: str = "", mailbox: str = "",
               columns: list[str] | None = None) -> pd.DataFrame:
    """Events inside the window that name a seed (:func:`seed_where`): what the actor graph adds around it.

    Returns:
        Canonical events (or ``columns``), sorted by time.
    """
    near = seed_where(seeds)
    return read_where(case, _and(near, window_where(start, end, mailbox)) if near else None, columns)


def daily_source_counts(case: Case, where: str | None = None) -> pd.DataFrame:
    """Events per UTC day and log source (directory snapshots left out), for the coverage figure.

    Returns:
        Columns day (tz-aware UTC), source, events.
    """
    cols = ["day", "source", "events"]
    if not case.events.sources():
        return pd.DataFrame(columns=cols)
    return tenant_counts(case, where)["daily"]  # with the coverage and hour-of-week counts, in one pass


def hour_of_week_counts(data: aggregates.Data, tz: str = "UTC", where: str | None = None) -> pd.DataFrame:
    """:func:`ir_toolkit.analysis.aggregates.hour_of_week_counts`, kept for the next reader when ``data`` is a case.

    Returns:
        Columns day (0 = Monday), hour, events.
    """
    if not isinstance(data, Case) or not data.events.sources():
        return aggregates.hour_of_week_counts(data, tz=tz, where=where)
    return tenant_counts(data, where, tz)["week"]  # with the coverage and daily counts, in one pass


def span_freq(case: Case, where: str | None = None) -> str:
    """``hour`` when the matching events span at most three days, else ``day`` (as the plots choose)."""
    if not case.events.sources():
        return "day"
    row = _connect(case).execute("SELECT max(time) - min(time) <= INTERVAL 3 DAY FROM events"
                      + (f" WHERE {where}" if where else "")).fetchone()
    return "hour" if row and row[0] else "day"


def mailbox_counts(case: Case, mailboxes: Iterable[str], where: str | None = None,
                   tz: str = "UTC") -> pd.DataFrame:
    """Events per mailbox and bucket of the given mailboxes (``activity_counts`` columns), for mailbox_activity.

    The bucket (``frame.attrs["freq"]``) is an hour when their events span at most three days, else a day.
    """
    boxes = _in("mailbox", mailboxes)
    if not boxes or not case.events.sources():
        return pd.DataFrame(columns=["mailbox", "bucket", "events", "items"])
    cond = _and(boxes, where)

    def counts() -> pd.DataFrame:
        freq = span_freq(case, cond)
        frame = activity_counts(case, by=("mailbox",), freq=freq, tz=tz, where=cond)
        frame.attrs["freq"] = freq
        return frame

    return remember(case, "mailbox_counts", [cond, tz], counts)


def with_token_raw(case: Case, events: pd.DataFrame) -> pd.DataFrame:
    """``events`` (read WITHOUT_RAW) with ``raw`` for its token-scan events, which name their signing key there.

    The actor graph reads a token's key from ``raw`` when ``target`` lacks it; every other event keeps ``raw``
    empty, and only the token sources' part files are read for it (the other sources' are skipped unread).
    """
    ids = events.loc[events["source"] == "token", "record_id"] if len(events) else pd.Series(dtype="str")
    raw = read_where(case, _and("source = 'token'", _in("record_id", ids)), ["record_id", "raw"])
    out = events.drop(columns="raw", errors="ignore")
    mapped = dict(zip(raw["record_id"], raw["raw"], strict=True)) if len(raw) else {}
    out["raw"] = pd.Series([mapped.get(r) for r in out["record_id"]], index=out.index, dtype="object")
    return out
