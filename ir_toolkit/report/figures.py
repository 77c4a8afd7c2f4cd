"""The report's figures: drawn from the actor's events and the tenant's counts, kept for the next report.

Drawing them (matplotlib, PNG) is most of a report's fixed cost (about 2-3 s CPU for six figures at any size of
tenant). A figure depends only on what it draws, the display zone and the drawing code: :func:`report_figures`
keeps the drawn figures (PNG data URIs and the texts they show) in CASE/cache/memo/ (:mod:`ir_toolkit.report.memo`)
under a digest of those, so the playbook's report, drawn right after ``ir-toolkit report`` from the same
findings, scope and store, is the same bytes without drawing again.

Notebook 03 draws three of them too (the actor's sessions, the working-hours rhythm, the items per day), from the
same rows read with other dtypes. Each of the three is kept on its own (:func:`kept_png`) under a digest of the
counts it draws (what the plot computes of the events first: the same counts whatever the dtypes), so the notebook
shows the report's PNG instead of drawing it again, and the report the notebook's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import matplotlib
import pandas as pd
from tqdm.auto import tqdm

from ir_toolkit.case import Case
from ir_toolkit.report import casedata
from ir_toolkit.report.coverage import coverage_figure
from ir_toolkit.report.display import data_uri, png_bytes
from ir_toolkit.report.memo import files_digest, remember

log = logging.getLogger(__name__)

GRAPH_NODES = 36  # nodes drawn in the report's actor graph (the rest aggregated per type)
#: The code a figure is drawn by (with matplotlib's version): a change to any makes every kept figure a stranger.
DRAWING_CODE = ("report/figures.py", "report/plots.py", "report/graphdraw.py", "report/coverage.py",
                "report/display.py", "analysis/graph.py", "analysis/aggregates.py", "textsafe.py")


@lru_cache(maxsize=1)
def drawing_digest() -> str:
    """sha256 of matplotlib's version and the code that draws the report's figures."""
    return files_digest(DRAWING_CODE, matplotlib.__version__)


def frames_digest(frames: list[pd.DataFrame]) -> str | None:
    """sha256 of the frames' columns, dtypes, values and attrs (None when a frame has no JSON form).

    Taken from the values, not from how they lie in memory: a frame read from the store and the same frame read
    from CASE/cache/memo/ give the same digest.
    """
    digest = hashlib.sha256()
    try:
        for frame in frames:
            digest.update(json.dumps([list(map(str, frame.columns)), list(map(str, frame.dtypes)), frame.attrs],
                                     sort_keys=True, default=str).encode())
            digest.update(frame.to_json(orient="values", date_format="iso", date_unit="ns",
                                        default_handler=str).encode())
    except (TypeError, ValueError, OverflowError) as exc:
        log.info("figures not kept: their data has no JSON form (%s)", exc)
        return None
    return digest.hexdigest()


def report_figures(case: Case, tenant: dict[str, pd.DataFrame], actor: pd.DataFrame, tz: str,
                   progress: bool = False) -> list[dict[str, Any]]:
    """:func:`draw_figures`, or the figures drawn before from the same frames, zone and drawing code.

    Returns:
        One dict per figure: group, title, caption, src (a PNG data URI, or None), note, alt.
    """
    names = sorted(tenant)
    digest = frames_digest([actor, *(tenant[n] for n in names)])
    if digest is None:
        return draw_figures(tenant, actor, tz, progress, case)

    def drawn() -> pd.DataFrame:
        return pd.DataFrame({"figures": [json.dumps(draw_figures(tenant, actor, tz, progress, case))]})

    kept = remember(case, "report_figures", [digest, names, tz, drawing_digest()], drawn)
    figures: list[dict[str, Any]] = json.loads(str(kept["figures"].iloc[0]))
    return figures


def kept_png(case: Case | None, what: str, counts: list[pd.DataFrame], tz: str,
             draw: Callable[[], Any]) -> tuple[bytes, list[str]]:
    """The PNG of figure ``what`` drawn by ``draw`` from ``counts`` and the texts it shows, kept for the next drawer.

    Args:
        case: The case whose memo keeps it (None: drawn, not kept).
        what: The figure's name.
        counts: Every frame the figure is drawn from (the key, with ``tz`` and the drawing code).
        tz: The display zone.
        draw: Draws the matplotlib Figure.
    """
    def drawn() -> pd.DataFrame:
        png, texts = _rendered(draw())
        return pd.DataFrame({"png": [png], "texts": [json.dumps(texts)]})

    digest = frames_digest(counts) if case is not None else None
    kept = drawn() if case is None or digest is None else remember(
        case, "figure", [what, digest, tz, drawing_digest()], drawn)
    return bytes(kept["png"].iloc[0]), [str(t) for t in json.loads(str(kept["texts"].iloc[0]))]


def swimlane_png(case: Case | None, actor: pd.DataFrame, tz: str) -> tuple[bytes, list[str]]:
    """The actor's sessions (``plots.actor_swimlane``) as PNG and texts, kept (:func:`kept_png`)."""
    from ir_toolkit.report import plots

    counts = plots.swimlane_counts(actor, tz)
    return kept_png(case, "actor_swimlane", [counts], tz, lambda: plots.actor_swimlane(counts, tz=tz))


def rhythm_png(case: Case | None, week: pd.DataFrame, actor: pd.DataFrame, tz: str) -> tuple[bytes, list[str]]:
    """The tenant's hour of week (``week``: its counts) against the actor's (``plots.hour_of_week``), kept."""
    from ir_toolkit.analysis.aggregates import hour_of_week_counts
    from ir_toolkit.report import plots

    mine = hour_of_week_counts(actor, tz=tz)
    return kept_png(case, "hour_of_week", [week, mine], tz, lambda: plots.hour_of_week(week, mine, tz=tz))


def items_png(case: Case | None, mail: pd.DataFrame, tz: str) -> tuple[bytes, list[str]]:
    """Mail items the actor accessed per day (``plots.items_per_day`` of its mail access), kept."""
    from ir_toolkit.report import plots

    counts = plots.items_counts(mail, tz)
    return kept_png(case, "items_per_day", [counts], tz, lambda: plots.items_per_day(counts, tz=tz))


def _rendered(fig: Any) -> tuple[bytes, list[str]]:
    texts: list[str] = []
    return png_bytes(fig, texts), texts


def draw_figures(tenant: dict[str, pd.DataFrame], actor: pd.DataFrame, tz: str,
                 progress: bool = False, case: Case | None = None) -> list[dict[str, Any]]:
    """Draw every figure that can be drawn; a note in place of each that cannot.

    With ``case``, the figures notebook 03 also draws are kept in (or read from) its memo (:func:`kept_png`).
    """
    plots = casedata.optional("ir_toolkit.report.plots")
    graph = casedata.optional("ir_toolkit.analysis.graph")
    mail = actor[actor["source"] == "mail_access"]
    compromised = tenant["mailboxes"]
    freq = compromised.attrs.get("freq")
    specs: list[tuple[str, str, str, Callable[[], tuple[bytes, list[str]]] | None]] = []
    if plots is not None:
        specs += [
            ("timeline", "Mailbox activity", "All activity per compromised mailbox (blue squares, shade = events); "
             "a red mark wherever the actor's own events are.",
             (lambda: _rendered(plots.mailbox_activity(compromised, tz=tz, actor=mail, freq=freq)))
             if len(compromised) else None),
            ("timeline", "Actor sessions", "The actor's events over time, one lane per address or token.",
             (lambda: swimlane_png(case, actor, tz)) if len(actor) else None),
            ("timeline", "Working-hours rhythm", "Hour of week: the tenant's activity against the actor's.",
             (lambda: rhythm_png(case, tenant["week"], actor, tz)) if len(actor) else None),
            ("timeline", "Items accessed per day", "Mail items the actor accessed per day.",
             (lambda: items_png(case, mail, tz)) if len(mail) else None),
        ]
    if plots is not None and graph is not None:
        specs.append(("graph", "Actor graph", "The actor's addresses, tokens, sessions, applications, user agents and "
                      f"the mailboxes they reached (confirmed and likely evidence only; at most {GRAPH_NODES} nodes, "
                      "the rest summarised per type as squares).",
                      (lambda: _rendered(plots.draw_graph(graph.build_graph(actor), max_nodes=GRAPH_NODES,
                                                          size=(10, 6.5)))) if len(actor) else None))
    specs.insert(0, ("coverage", "Data coverage", "Events per day for each log source; a gap is a day with no "
                     "events of that source.", lambda: _rendered(coverage_figure(tenant["daily"], tz=tz))))
    out: list[dict[str, Any]] = []
    for group, title, caption, draw in tqdm(specs, desc="report figures", unit="figure", disable=not progress):
        fig: dict[str, Any] = {"group": group, "title": title, "caption": caption, "src": None, "note": None,
                               "alt": title}
        if draw is None:
            fig["note"] = "not drawn: no actor activity has been identified in this case yet"
        else:
            try:
                png, texts = draw()
                fig["src"] = data_uri(png)
                fig["alt"] = f"{title}. Text in the figure: " + "; ".join(texts)
            except Exception as exc:  # noqa: BLE001 - one figure failing must not lose the report
                log.warning("figure %r failed: %s: %s", title, exc.__class__.__name__, exc)
                fig["note"] = f"could not be drawn ({exc.__class__.__name__})"
        out.append(fig)
    if plots is None:
        out.append({"group": "timeline", "title": "Timeline figures", "caption": "", "src": None,
                    "note": "not available: the plots are not installed in this toolkit version"})
    if plots is None or graph is None:
        out.append({"group": "graph", "title": "Actor graph", "caption": "", "src": None,
                    "note": "not available: the actor graph is not installed in this toolkit version"})
    return out
