"""The completeness ledger of a collection (one entry per slice) and its progress bars.

A slice state is the checkpoint's record of one time slice of one source (see checkpoint.py); its
ledger entry says what was asked, how many pages and records came back, the retries and throttling
waits it cost, and whether it is complete or a named gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ir_toolkit.sources.graph.slicing import Slice, iso_z


def new_state(sl: Slice) -> dict[str, Any]:
    """The checkpoint state of a slice not yet asked for."""
    return {"source": sl.source, "start": iso_z(sl.start), "end": iso_z(sl.end), "status": "pending",
            "requested": None, "next_link": None, "pages": 0, "records": 0, "retries": 0, "throttle_wait_s": 0.0,
            "duplicates": 0, "outside_window": 0, "exhausted": False, "query_id": None, "query_attempts": 0,
            "gap": None, "file": None}


def ledger_entry(state: dict[str, Any], registry: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger entry of one slice state.

    Query sources also name the canonical source their rows become (None when the importer cannot map
    them yet, so the slice never counts as sign-in coverage) and the table they read.
    """
    entry = {
        "source": state["source"], "slice_start": state["start"], "slice_end": state["end"],
        "requested": state.get("requested"), "pages": state["pages"], "records": state["records"],
        "retries": state["retries"], "throttle_wait_s": state["throttle_wait_s"],
        "complete": state["status"] == "done", "gap": state.get("gap") if state["status"] != "done" else None,
        "duplicates_dropped": state["duplicates"], "outside_window": state["outside_window"],
        "query_id": state.get("query_id"), "file": state.get("file"),
    }
    src = registry.get(state["source"])
    if src is not None and hasattr(src, "canonical"):
        entry["canonical_source"] = src.canonical
        entry["table"] = state.get("table")
    return entry


class SourceBars:
    """One tqdm progress bar per source (records collected, throttling waited); nothing when ``progress`` is off."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self.bars: dict[str, Any] = {}

    def open(self, names: Sequence[str]) -> None:
        """Open a bar per source name, in order."""
        if not self.progress:
            return
        from tqdm.auto import tqdm

        for i, name in enumerate(names):
            self.bars[name] = tqdm(desc=name, unit=" records", position=i, leave=True)

    def add(self, source: str, n: int) -> None:
        """Count ``n`` more records of ``source``."""
        bar = self.bars.get(source)
        if bar is not None:
            bar.update(n)

    def wait(self, source: str, seconds: float) -> None:
        """Show the throttling wait ``source`` has cost so far."""
        bar = self.bars.get(source)
        if bar is not None:
            bar.set_postfix(throttle_wait=f"{seconds:.0f}s")

    def close(self) -> None:
        """Close every bar."""
        for bar in self.bars.values():
            bar.close()
