"""The data-coverage figure of the report: events per day for each log source.

A gap in a line is a day the case holds no events of that source: a collection gap, a
retention limit or a source that was never exported. It is the figure a reader needs
before trusting any "no evidence of" statement.
"""

from __future__ import annotations

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure

from ir_toolkit.report.counts import SNAPSHOT_SOURCES


def daily_counts(events: pd.DataFrame) -> pd.DataFrame:
    """Events per UTC day and source.

    Args:
        events: Canonical events (columns time, source), or counts already made in DuckDB
            (columns day, source, events: :func:`ir_toolkit.report.casequery.daily_source_counts`).

    Returns:
        A frame indexed by day (tz-aware UTC), one column per source, counts (0 where none).
    """
    if events.empty:
        return pd.DataFrame()
    if {"day", "events"} <= set(events.columns):
        return events.pivot_table(index="day", columns="source", values="events", aggfunc="sum",
                                  fill_value=0).sort_index()
    days = events["time"].dt.floor("D")
    return events.assign(day=days).groupby(["day", "source"]).size().unstack("source", fill_value=0).sort_index()


def coverage_figure(events: pd.DataFrame, tz: str = "UTC") -> Figure:
    """Draw events per day for each log source (log scale), in the display zone ``tz``.

    The axis spans the log sources' own period (directory snapshots, dated by when objects were
    created years ago, are left out), and a day without events of a source is a gap in its line.

    Args:
        events: Canonical events (columns time, source), or daily counts (columns day, source, events).
        tz: Display time zone of the date axis.

    Returns:
        A matplotlib Figure (not attached to pyplot: close it by dropping it).
    """
    logs = events[~events["source"].isin(SNAPSHOT_SOURCES)] if len(events) else events
    counts = daily_counts(logs)
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax = fig.add_subplot()
    if counts.empty:
        ax.text(0.5, 0.5, "no events in the case", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    days = pd.date_range(counts.index.min(), counts.index.max(), freq="D")
    counts = counts.reindex(days, fill_value=0)  # a day no source has is a gap in every line, not a bridge
    index = pd.DatetimeIndex(counts.index).tz_convert(tz)
    for source in counts.columns:
        series = counts[source].where(counts[source] > 0)
        ax.plot(index, series.to_numpy(), marker=".", markersize=3, linewidth=1, label=str(source))
    ax.set_yscale("log")
    ax.set_ylabel("events per day")
    ax.set_xlim(mdates.date2num(index.min() - pd.Timedelta(hours=12)),
                mdates.date2num(index.max() + pd.Timedelta(hours=12)))
    ax.set_title(f"Events per day and log source ({tz}); a break in a line is a day without records")
    ax.legend(fontsize="small", ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.grid(alpha=0.3)
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    return fig
