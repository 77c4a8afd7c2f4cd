"""The plots a responder reads in a notebook and the report embeds.

Every function takes the frame it draws and returns a :class:`matplotlib.figure.Figure` (made
without pyplot, so it works headless under Agg and leaks no global state). A frame may be raw
canonical events, or, for a large case, the aggregate that
:mod:`ir_toolkit.analysis.aggregates` computed in DuckDB (``activity_counts``,
``hour_of_week_counts``): the plot recognises it by its ``bucket`` / ``day`` + ``hour`` columns.
The display time zone is always a parameter; times inside stay UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ir_toolkit.analysis.aggregates import activity_counts, check_tz, hour_of_week_counts, utc
from ir_toolkit.report.graphdraw import draw_graph
from ir_toolkit.textsafe import mathtext_safe

__all__ = ["mailbox_activity", "actor_swimlane", "hour_of_week", "items_per_day", "draw_graph", "DAYS",
           "swimlane_counts", "items_counts"]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _freq(events: pd.DataFrame) -> str:
    """Hourly buckets for a short span of events, daily for a long one."""
    if "time" not in events.columns or events["time"].isna().all():
        return "day"
    t = utc(events["time"])
    return "hour" if t.max() - t.min() <= pd.Timedelta(days=3) else "day"


def _counts(frame: pd.DataFrame, by: Sequence[str], tz: str, freq: str | None, where: str) -> pd.DataFrame:
    """``frame`` itself when it is already an activity_counts aggregate, else its aggregate."""
    if "bucket" in frame.columns:
        out = frame.copy()
        out["bucket"] = pd.to_datetime(out["bucket"]).dt.tz_convert(tz)
        return out
    return activity_counts(frame, by=by, freq=freq or _freq(frame), tz=tz, where=where)


def swimlane_counts(events: pd.DataFrame, tz: str = "UTC", freq: str | None = None) -> pd.DataFrame:
    """What :func:`actor_swimlane` draws of ``events``: its events per address, mailbox and bucket.

    Returns:
        ``activity_counts(events, by=("ip", "mailbox"))`` of the events with an address (the bucket by their span
        unless ``freq``), or ``events`` itself when it is such an aggregate already.
    """
    return _counts(events, ("ip", "mailbox"), tz, freq, "ip IS NOT NULL")


def items_counts(events: pd.DataFrame, tz: str = "UTC") -> pd.DataFrame:
    """What :func:`items_per_day` draws of ``events``: mail items per day and access type (or ``events`` itself
    when it is such an aggregate already)."""
    if "bucket" in events.columns:
        return _counts(events, (), tz, "day", "")
    return activity_counts(events, by=("mail_access_type",), freq="day", tz=tz, where="source = 'mail_access'")


def _time_axis(ax: Axes, tz: str) -> None:
    locator = mdates.AutoDateLocator(tz=tz)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    ax.set_xlabel(f"time ({tz})")


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes, color="#666666")


def _lanes(title: str, rows: list[str], total: int, noun: str, ylabel: str, tz: str,
           height: float) -> tuple[Figure, Axes]:
    """A figure with one lane per row over time; the title says when only the top rows are drawn."""
    fig = Figure(figsize=(11, 1.4 + height * max(len(rows), 3)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title + (f" (top {len(rows)} of {total} {noun})" if total > len(rows) else ""))
    ax.set_ylabel(ylabel)
    _time_axis(ax, tz)
    return fig, ax


def _top(counts: pd.DataFrame, col: str, n: int, first: Sequence[str] = ()) -> list[str]:
    """Up to ``n`` values of ``col``: those in ``first``, then the busiest."""
    busiest = counts.groupby(col)["events"].sum().sort_values(ascending=False, kind="stable").index.tolist()
    ordered = [v for v in first if v in busiest] + [v for v in busiest if v not in first]
    return ordered[:n]


def mailbox_activity(events: pd.DataFrame, findings: pd.DataFrame | None = None, tz: str = "UTC",
                     top: int = 15, freq: str | None = None, actor: pd.DataFrame | None = None) -> Figure:
    """Activity over time per mailbox (dot size = events), the actor's own events marked in red.

    Red marks stand exactly where the actor's events are (one per bucket holding any), never as
    bars from a finding's first to last time, which would paint the quiet days in between.

    Args:
        events: Events with ``mailbox`` and ``time``, or ``activity_counts(..., by=("mailbox",))``.
        findings: Findings (``mailbox``): the mailboxes they name are drawn first.
        tz: Display time zone (IANA name).
        top: Most mailboxes drawn (the actor's and implicated ones first, then the busiest).
        freq: Bucket size (hour or day; default by span).
        actor: The actor's events (``mailbox``, ``time``): drawn as red marks on their mailbox's row.

    Returns:
        Figure with the activity axes (x ``time (tz)``, y ``mailbox``, title "Mailbox activity";
        colour = events per bucket, log scale) and its colour bar.
    """
    check_tz(tz)
    counts = _counts(events, ("mailbox",), tz, freq, "mailbox IS NOT NULL")
    counts = counts[counts["mailbox"].notna()]
    f = findings if findings is not None and not findings.empty else None
    bucket = freq or ("day" if "bucket" in events.columns else _freq(events))
    marks = None
    if actor is not None and len(actor):
        marks = activity_counts(actor, by=("mailbox",), freq=bucket, tz=tz, where="mailbox IS NOT NULL")
        marks = marks[marks["mailbox"].notna()]
    first = [] if marks is None else [str(m) for m in marks.groupby("mailbox")["events"].sum()
                                      .sort_values(ascending=False).index]
    first += [] if f is None else [str(m) for m in f["mailbox"].dropna().unique()]
    rows = _top(counts, "mailbox", top, list(dict.fromkeys(first)))
    fig, ax = _lanes("Mailbox activity", rows, counts["mailbox"].nunique(), "mailboxes", "mailbox", tz, 0.4)
    if not rows:
        _empty(ax, "mailbox events")
        return fig
    y = {m: i for i, m in enumerate(rows)}
    shown = counts[counts["mailbox"].isin(rows)]
    dots = ax.scatter(shown["bucket"], shown["mailbox"].map(y), s=28, marker="s", c=shown["events"],
                      cmap="Blues", norm=LogNorm(vmin=1, vmax=max(int(shown["events"].max()), 2)),
                      edgecolors="#1f77b4", linewidths=0.3, label="all events", zorder=2)
    fig.colorbar(dots, ax=ax, label="events per bucket", pad=0.01, aspect=30)
    if marks is not None:
        mine = marks[marks["mailbox"].isin(rows)]
        ax.scatter(mine["bucket"], mine["mailbox"].map(y), marker="|", s=160, linewidths=2.5, color="#d62728",
                   zorder=3, label="actor's events")
    ax.set_yticks(range(len(rows)), [mathtext_safe(r) for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), ncol=2, fontsize=8, frameon=False)
    return fig


def actor_swimlane(events: pd.DataFrame, tz: str = "UTC", top: int = 25, freq: str | None = None,
                   max_colours: int = 10) -> Figure:
    """Actor swimlane: one lane per address over time, dots coloured by the mailbox touched.

    Args:
        events: The actor's (suspicious) events with ``ip``, ``mailbox``, ``time``, or
            ``activity_counts(..., by=("ip", "mailbox"))``.
        tz: Display time zone.
        top: Most addresses drawn (the busiest).
        freq: Bucket size (default by span).
        max_colours: Mailboxes beyond this many busiest share the colour "other mailboxes".

    Returns:
        Figure with one axes: x ``time (tz)``, y ``address``, title "Actor swimlane".
    """
    check_tz(tz)
    counts = swimlane_counts(events, tz, freq)
    counts = counts[counts["ip"].notna()].copy()
    counts["mailbox"] = counts["mailbox"].astype(object).where(counts["mailbox"].notna(), "(no mailbox)")
    lanes = _top(counts, "ip", top)
    fig, ax = _lanes("Actor swimlane", lanes, counts["ip"].nunique(), "addresses", "address", tz, 0.35)
    if not lanes:
        _empty(ax, "events with an address")
        return fig
    shown = counts[counts["ip"].isin(lanes)].copy()
    coloured = _top(shown, "mailbox", max_colours)
    shown["colour_key"] = shown["mailbox"].where(shown["mailbox"].isin(coloured), "other mailboxes")
    palette = dict(zip([*coloured, "other mailboxes"], [f"C{i}" for i in range(len(coloured))] + ["#999999"],
                       strict=True))
    y = {ip: i for i, ip in enumerate(lanes)}
    for key, part in shown.groupby("colour_key", sort=False):
        ax.scatter(part["bucket"], part["ip"].map(y), s=10 + 50 * np.sqrt(part["events"] / shown["events"].max()),
                   color=palette[str(key)], alpha=0.75, label=mathtext_safe(key), zorder=2)
    ax.set_yticks(range(len(lanes)), [mathtext_safe(ip) for ip in lanes], fontsize=8)
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(title="mailbox", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


def _week(frame: pd.DataFrame, tz: str) -> np.ndarray:
    counts = frame if {"day", "hour", "events"} <= set(frame.columns) else hour_of_week_counts(frame, tz=tz)
    grid = np.zeros((7, 24))
    for day, hour, n in zip(counts["day"], counts["hour"], counts["events"], strict=True):
        grid[int(day), int(hour)] += n
    return grid


def hour_of_week(tenant_events: pd.DataFrame, suspicious_events: pd.DataFrame, tz: str = "UTC") -> Figure:
    """Hour-of-week heatmaps side by side: the tenant's rhythm and the suspicious activity's.

    Each panel shows the share of its events per weekday and hour in ``tz``, so an actor working
    00:00-09:00 UTC on weekdays stands out against office hours.

    Args:
        tenant_events: All events (or ``hour_of_week_counts(case, tz)``: columns day, hour, events).
        suspicious_events: The suspicious events (or their hour_of_week_counts).
        tz: Time zone of the hours.

    Returns:
        Figure with two heatmap axes titled "Tenant (N events)" and "Suspicious (N events)",
        x ``hour (tz)``, y ``day``, and a colour bar "share of events".
    """
    check_tz(tz)
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    fig.suptitle(f"Activity by hour of week ({tz})")
    image = None
    for ax, frame, name in zip(axes, (tenant_events, suspicious_events), ("Tenant", "Suspicious"), strict=True):
        grid = _week(frame, tz)
        total = int(grid.sum())
        share = grid / total if total else grid
        image = ax.imshow(share, aspect="auto", cmap="magma_r", vmin=0, interpolation="nearest")
        ax.set_title(f"{name} ({total} events)")
        ax.set_xlabel(f"hour ({tz})")
        ax.set_xticks(range(0, 24, 3))
        ax.set_yticks(range(7), DAYS)
    axes[0].set_ylabel("day")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="share of events", shrink=0.9)
    return fig


def items_per_day(events: pd.DataFrame, tz: str = "UTC") -> Figure:
    """Mail items accessed per day, stacked by access type (Bind = single messages, Sync = folders).

    Args:
        events: Events (only ``mail_access`` rows count), or
            ``activity_counts(..., by=("mail_access_type",), freq="day", where="source = 'mail_access'")``.
        tz: Time zone of the days.

    Returns:
        Figure with one axes: x ``day (tz)``, y ``mail items``, title "Mail items accessed per day".
    """
    check_tz(tz)
    counts = items_counts(events, tz)
    if "mail_access_type" not in counts.columns:
        counts["mail_access_type"] = "all"
    counts["mail_access_type"] = counts["mail_access_type"].astype(object).where(
        counts["mail_access_type"].notna(), "unknown")
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Mail items accessed per day")
    ax.set_ylabel("mail items")
    _time_axis(ax, tz)
    ax.set_xlabel(f"day ({tz})")
    if counts.empty:
        _empty(ax, "mail access")
        return fig
    table = counts.pivot_table(index="bucket", columns="mail_access_type", values="items", aggfunc="sum",
                               fill_value=0).sort_index()
    bottom = np.zeros(len(table))
    for i, kind in enumerate(table.columns):
        ax.bar(table.index, table[kind].to_numpy(), bottom=bottom, width=0.8, label=mathtext_safe(kind),
               color={"Bind": "#d62728", "Sync": "#1f77b4"}.get(str(kind), f"C{i + 2}"))
        bottom += table[kind].to_numpy()
    ax.legend(title="access type", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig
