"""Reconstruct access sessions from Entra session ids, Exchange session ids and token ids.

Events that share any id belong to one session: a sign-in carries its ``session_id`` and
``token_id``; a mailbox access carries the token's id (UniqueTokenId), the Entra session
(AADSessionId) and Exchange's own SessionId, so ids chain sign-ins and mailbox access
together. Events with none of these ids (older exports, aggregated records) are grouped by
user + address + app and split where the gap between two events exceeds ``gap``.
"""

from __future__ import annotations

import pandas as pd

from ir_toolkit.analysis.aggregates import utc

ID_COLUMNS: dict[str, str] = {"session_id": "entra", "exchange_session_id": "exo", "token_id": "token"}
SESSION_COLUMNS = ("session", "method", "first", "last", "duration", "events", "items", "users", "mailboxes",
                   "ips", "apps", "user_agents", "tokens", "sources")


class _Union:
    """Union-find over id strings."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # keep the preferred name as root: entra < exo < token, then alphabetical
            keep, drop = sorted((ra, rb), key=_rank)
            self.parent[drop] = keep


def _rank(key: str) -> tuple[int, str]:
    return (list(ID_COLUMNS.values()).index(key.split(":", 1)[0]), key)


def _col(events: pd.DataFrame, col: str) -> pd.Series:
    if col not in events.columns:
        return pd.Series([""] * len(events), index=events.index, dtype=object)
    s = events[col]
    return s.astype(object).where(s.notna(), "").astype(str)


def assign_sessions(events: pd.DataFrame, gap: str | pd.Timedelta = "30min") -> pd.DataFrame:
    """Label every event with the session it belongs to.

    Args:
        events: Canonical events (``time``, ``session_id``, ``exchange_session_id``, ``token_id``,
            ``user``, ``mailbox``, ``ip``, ``app_id``, ``client_app_id`` are used when present).
        gap: Longest quiet time inside one session for events without ids.

    Returns:
        A copy of ``events`` with ``session`` (e.g. ``entra:<sessionId>``, ``exo:<SessionId>``,
        ``token:<id>`` or ``gap:<user>|<ip>|<app>|<n>``) and ``session_method`` (``ids`` or ``gap``).
    """
    out = events.reset_index(drop=True).copy()
    ids = pd.DataFrame({name: _col(out, col).map(lambda v, n=name: f"{n}:{v}" if v else "")
                        for col, name in ID_COLUMNS.items()})
    uf = _Union()
    for triple in ids.drop_duplicates().itertuples(index=False):
        present = [v for v in triple if v]
        for v in present:
            uf.find(v)
        for a, b in zip(present, present[1:], strict=False):
            uf.union(a, b)
    first_id = ids["entra"].where(ids["entra"] != "", ids["exo"].where(ids["exo"] != "", ids["token"]))
    has_id = first_id != ""
    out["session"] = first_id.map(lambda v: uf.find(v) if v else None)
    out["session_method"] = has_id.map({True: "ids", False: "gap"})
    rest = out[~has_id]
    if len(rest):
        who = _col(rest, "user").where(_col(rest, "user") != "", _col(rest, "mailbox"))
        app = _col(rest, "app_id").where(_col(rest, "app_id") != "", _col(rest, "client_app_id"))
        key = who + "|" + _col(rest, "ip") + "|" + app
        time = utc(rest["time"])
        order = pd.DataFrame({"key": key, "time": time}).sort_values(["key", "time"], kind="stable")
        new = (order["key"] != order["key"].shift()) | (order["time"].diff() > pd.Timedelta(gap))
        number = new.astype(int).groupby(order["key"]).cumsum()
        labels = "gap:" + order["key"] + "|" + number.astype(str)
        out.loc[labels.index, "session"] = labels
    return out


def _join(values: pd.Series) -> str:
    return "; ".join(sorted({str(v) for v in values if v is not None and v == v and str(v) != ""}))


def sessions(events: pd.DataFrame, gap: str | pd.Timedelta = "30min") -> pd.DataFrame:
    """Sessions reconstructed from ids (and user + address + app gaps where ids are missing).

    Args:
        events: Canonical events (see :func:`assign_sessions`).
        gap: Longest quiet time inside one session for events without ids.

    Returns:
        One row per session with columns ``session``, ``method`` (ids or gap), ``first``, ``last``
        (tz-aware UTC), ``duration``, ``events``, ``items`` (mail items), and "; "-joined
        ``users``, ``mailboxes``, ``ips``, ``apps``, ``user_agents``, ``sources``; ``tokens`` counts
        distinct token ids. Sorted by first time.
    """
    if events.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in SESSION_COLUMNS})
    ev = assign_sessions(events, gap)
    ev["time"] = utc(ev["time"])
    for col in ("user", "mailbox", "ip", "app_id", "user_agent", "token_id", "source", "items"):
        if col not in ev.columns:
            ev[col] = None
    grouped = ev.groupby("session", sort=False, dropna=False)
    frame = pd.DataFrame({
        "method": grouped["session_method"].first(),
        "first": grouped["time"].min(),
        "last": grouped["time"].max(),
        "events": grouped.size(),
        "items": grouped["items"].sum(min_count=1).fillna(0).astype("int64"),
        "users": grouped["user"].agg(_join),
        "mailboxes": grouped["mailbox"].agg(_join),
        "ips": grouped["ip"].agg(_join),
        "apps": grouped["app_id"].agg(_join),
        "user_agents": grouped["user_agent"].agg(_join),
        "tokens": grouped["token_id"].nunique(),
        "sources": grouped["source"].agg(_join),
    }).reset_index()
    frame["duration"] = frame["last"] - frame["first"]
    return frame[list(SESSION_COLUMNS)].sort_values(["first", "session"], kind="stable").reset_index(drop=True)
