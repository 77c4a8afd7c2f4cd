"""Plots render headless (Agg) to PNG with the expected axes, titles and contents."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import networkx as nx
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ir_toolkit.analysis import aggregates
from ir_toolkit.analysis.graph import build_graph
from ir_toolkit.errors import UserError
from ir_toolkit.report import plots
from ir_toolkit.report.graphdraw import condense
from tests.timeline_events import ACTOR_IPS, events, findings, make_case

matplotlib.use("Agg")
PNG = b"\x89PNG\r\n\x1a\n"


def _png(fig: Figure, path: Path) -> None:
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_mailbox_activity_marks_findings(tmp_path: Path) -> None:
    actor = events()[lambda e: e["ip"].isin(ACTOR_IPS)]
    fig = plots.mailbox_activity(events(), findings(), tz="Asia/Shanghai", actor=actor)
    _png(fig, tmp_path / "m.png")
    ax, bar = fig.axes
    assert ax.get_title() == "Mailbox activity" and bar.get_ylabel() == "events per bucket"
    assert ax.get_xlabel() == "time (Asia/Shanghai)" and ax.get_ylabel() == "mailbox"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert set(labels[:2]) == {"alice@contoso.com", "bob@contoso.com"}  # the actor's mailboxes first
    assert set(labels) == {"alice@contoso.com", "bob@contoso.com", "carol@contoso.com", "dave@contoso.com"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["all events", "actor's events"]
    # red marks exactly where the actor's events are (one per mailbox and bucket), never a bar between them
    marks = ax.collections[1].get_offsets()
    buckets = aggregates.activity_counts(actor, by=("mailbox",), freq="day", tz="Asia/Shanghai",
                                         where="mailbox IS NOT NULL")
    assert len(marks) == len(buckets) > 0 and not any(line.get_linewidth() >= 5 for line in ax.get_lines())
    small = plots.mailbox_activity(events(), top=2)
    assert small.axes[0].get_title() == "Mailbox activity (top 2 of 4 mailboxes)"


def test_coverage_spans_the_logs_own_period_with_gaps() -> None:
    from ir_toolkit.report.coverage import coverage_figure

    days = pd.to_datetime(["2023-05-01", "2023-05-02", "2023-05-05", "2023-05-06"], utc=True)
    frame = pd.DataFrame({"time": list(days) + [pd.Timestamp("2019-10-28", tz="UTC")],
                          "source": ["mail_access"] * 4 + ["tenant_snapshot"]})
    ax = coverage_figure(frame).axes[0]
    import matplotlib.dates as mdates

    low, high = (mdates.num2date(v) for v in ax.get_xlim())
    assert low.year == 2023 and high < pd.Timestamp("2023-05-08", tz="UTC")  # not back to the 2019 snapshot
    (line,) = ax.get_lines()
    y = line.get_ydata()
    assert len(y) == 6 and pd.isna(y[2]) and pd.isna(y[3])  # 3 and 4 May: a gap, not a bridge
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mail_access"]


def test_actor_swimlane_lanes_are_addresses_coloured_by_mailbox(tmp_path: Path) -> None:
    actor = events()[lambda e: e["ip"].isin(ACTOR_IPS)]
    fig = plots.actor_swimlane(actor, tz="UTC")
    _png(fig, tmp_path / "s.png")
    ax = fig.axes[0]
    assert ax.get_title() == "Actor swimlane" and ax.get_ylabel() == "address"
    assert ax.get_xlabel() == "time (UTC)"
    assert {t.get_text() for t in ax.get_yticklabels()} == ACTOR_IPS
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"alice@contoso.com", "bob@contoso.com"}


def test_hour_of_week_side_by_side_in_a_chosen_zone(tmp_path: Path) -> None:
    actor = events()[lambda e: e["ip"].isin(ACTOR_IPS)]
    fig = plots.hour_of_week(events(), actor, tz="Asia/Shanghai")
    _png(fig, tmp_path / "h.png")
    heat = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in heat] == ["Tenant (11 events)", "Suspicious (3 events)"]
    assert all(ax.get_xlabel() == "hour (Asia/Shanghai)" for ax in heat)
    assert heat[0].get_ylabel() == "day"
    assert [t.get_text() for t in heat[0].get_yticklabels()] == list(plots.DAYS)
    grid = heat[1].images[0].get_array()
    assert grid.shape == (7, 24)
    # Friday 09:00 and 09:30 in Shanghai (01:00/01:30 UTC), Saturday 10:00 (02:00 UTC)
    assert grid[4, 9] == pytest.approx(2 / 3) and grid[5, 10] == pytest.approx(1 / 3)
    assert fig.get_suptitle() == "Activity by hour of week (Asia/Shanghai)"
    assert any(ax.get_ylabel() == "share of events" for ax in fig.axes)
    with pytest.raises(UserError):
        plots.hour_of_week(events(), actor, tz="Nowhere/Atlantis")


def test_items_per_day_stacks_bind_and_sync(tmp_path: Path) -> None:
    fig = plots.items_per_day(events(), tz="UTC")
    _png(fig, tmp_path / "i.png")
    ax = fig.axes[0]
    assert ax.get_title() == "Mail items accessed per day"
    assert ax.get_ylabel() == "mail items" and ax.get_xlabel() == "day (UTC)"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"Bind", "Sync"}
    heights = sorted(round(p.get_height()) for p in ax.patches if p.get_height() > 0)
    # 15 Jun: Sync 40; 16 Jun: Bind 5; 17 Jun: Bind 5; 18 Jun: Sync 3
    assert heights == [3, 5, 5, 40]


def test_plots_draw_duckdb_aggregates_of_a_case(tmp_path: Path) -> None:
    case = make_case(tmp_path / "c")
    con = case.duckdb()
    per_day = aggregates.activity_counts(con, by=("mail_access_type",), freq="day",
                                         where="source = 'mail_access'")
    fig = plots.items_per_day(per_day)
    assert sorted(round(p.get_height()) for p in fig.axes[0].patches if p.get_height() > 0) == [3, 5, 5, 40]
    week = aggregates.hour_of_week_counts(con, tz="UTC")
    suspicious = aggregates.hour_of_week_counts(con, tz="UTC", where="ip IN ('203.0.113.5', '203.0.113.6')")
    fig = plots.hour_of_week(week, suspicious, tz="UTC")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["Tenant (11 events)", "Suspicious (3 events)"]
    lanes = aggregates.activity_counts(con, by=("ip", "mailbox"), freq="hour", where="ip LIKE '203.%'")
    fig = plots.actor_swimlane(lanes)
    assert {t.get_text() for t in fig.axes[0].get_yticklabels()} == ACTOR_IPS
    fig = plots.mailbox_activity(aggregates.activity_counts(con, by=("mailbox",), where="mailbox IS NOT NULL"))
    assert len(fig.axes[0].get_yticklabels()) == 4


def test_empty_frames_still_render(tmp_path: Path) -> None:
    empty = events().iloc[0:0]
    for fig in (plots.mailbox_activity(empty), plots.actor_swimlane(empty), plots.items_per_day(empty),
                plots.hour_of_week(empty, empty)):
        _png(fig, tmp_path / "e.png")


def _big_graph(n_ips: int) -> nx.Graph:
    rows = [{"time": pd.Timestamp("2023-06-01T00:00Z") + pd.Timedelta(minutes=i), "source": "mail_access",
             "record_id": f"r{i}", "mailbox": f"user{i % 40}@contoso.com", "ip": f"10.{i // 250}.{i % 250}.1",
             "app_id": "app-1", "raw": "{}"} for i in range(n_ips)]
    return build_graph(pd.DataFrame(rows))


def test_draw_graph_condenses_large_graphs(tmp_path: Path) -> None:
    g = _big_graph(900)
    assert g.number_of_nodes() > 900
    small = condense(g, max_nodes=120, keep=["ip:10.3.100.1"])
    assert small.number_of_nodes() <= 120
    assert "ip:10.3.100.1" in small and "other:ip" in small
    assert small.nodes["other:ip"]["members"] + sum(1 for n in small if n.startswith("ip:")) == 900
    fig = plots.draw_graph(g, max_nodes=120)
    _png(fig, tmp_path / "g.png")
    assert fig.axes[0].get_title().startswith(f"Actor graph ({g.number_of_nodes()} nodes")
    assert "aggregated" in fig.axes[0].get_title()
    fig = plots.draw_graph(build_graph(events(), findings()))
    _png(fig, tmp_path / "g2.png")
    legend = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert {"ip", "mailbox", "finding", "implicated by a finding"} <= legend


def test_dollar_signs_in_log_text_are_drawn_literally(tmp_path: Path) -> None:
    ev = events()
    weird = r"$\undefinedmacro{x}$@contoso.com"
    ev.loc[ev["mailbox"] == "carol@contoso.com", "mailbox"] = weird
    ev.loc[ev["ip"] == "203.0.113.6", "mailbox"] = weird
    fig = plots.mailbox_activity(ev)
    _png(fig, tmp_path / "m.png")  # an unescaped label would fail to render as mathtext
    assert r"\$\undefinedmacro{x}\$@contoso.com" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    _png(plots.actor_swimlane(ev[ev["ip"].isin(ACTOR_IPS)]), tmp_path / "s.png")
    _png(plots.draw_graph(build_graph(ev)), tmp_path / "g.png")


def test_actor_graph_labels_never_overlap_and_the_legend_is_off_the_data(tmp_path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ir_toolkit.report.graphdraw import draw_graph

    fig = draw_graph(build_graph(events(), findings()), max_nodes=36, size=(10, 6.5))
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) >= 5
    overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    assert overlaps == []
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1 - 1  # beside the drawing, not over it
