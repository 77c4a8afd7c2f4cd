"""The data-coverage figure of the report: events per day for each log source.

A gap in a line is a day the case holds no events of that source: a collection gap, a
retention limit or a source that was never exported. It is the figure a reader needs
before trusting any "no evidence of" statement.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def daily_counts(events: pd.DataFrame) -> pd.DataFrame:
    """Events per UTC day and source.

    Args:
        events: Canonical events (columns time, source).

    Returns:
        A frame indexed by day (tz-aware UTC), one column per source, counts (0 where none).
    """
    if events.empty:
        return pd.DataFrame()
    days = events["time"].dt.floor("D")
    return events.assign(day=days).groupby(["day", "source"]).size().unstack("source", fill_value=0).sort_index()


def coverage_figure(events: pd.DataFrame, tz: str = "UTC") -> Figure:
    """Draw events per day for each source (log scale), in the display zone ``tz``.

    Args:
        events: Canonical events (columns time, source).
        tz: Display time zone of the date axis.

    Returns:
        A matplotlib Figure (not attached to pyplot: close it by dropping it).
    """
    counts = daily_counts(events)
    fig = Figure(figsize=(10, 3.2))
    ax = fig.add_subplot()
    if counts.empty:
        ax.text(0.5, 0.5, "no events in the case", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    index = pd.DatetimeIndex(counts.index).tz_convert(tz)
    for source in counts.columns:
        series = counts[source].where(counts[source] > 0)
        ax.plot(index, series.to_numpy(), marker=".", linewidth=1, label=str(source))
    ax.set_yscale("log")
    ax.set_ylabel("events per day")
    ax.set_title(f"Events per day and source ({tz})")
    ax.legend(fontsize="small", ncol=min(4, len(counts.columns)), loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig
