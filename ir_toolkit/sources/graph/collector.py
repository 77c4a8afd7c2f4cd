"""Time-sliced, resumable, throttle-aware collection of Graph sources into raw gzip JSON lines.

The collector writes only into the work folder it is given (see checkpoint.py for the layout) and
returns the completeness ledger; registering files as evidence is the case layer's job
(``ir_toolkit.case.collect``), reached through the ``on_file`` callback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import pandas as pd

from ir_toolkit.errors import UserError
from ir_toolkit.sources.graph.audit import LimitExceeded, run_audit
from ir_toolkit.sources.graph.checkpoint import Checkpoint, gzip_lines, read_lines, write_atomic
from ir_toolkit.sources.graph.client import (
    GraphClient,
    GraphError,
    Stats,
    ThrottleExhausted,
    UnsafeLink,
    ensure_within,
    odata_datetime,
)
from ir_toolkit.sources.graph.endpoints import Endpoints
from ir_toolkit.sources.graph.ledger import SourceBars, ledger_entry, new_state
from ir_toolkit.sources.graph.slicing import Slice, cut, iso_z
from ir_toolkit.sources.graph.sources import DEFAULT_AUDIT_OPERATIONS, SOURCES, Source, select
from ir_toolkit.timeutil import parse_time

log = logging.getLogger(__name__)


@dataclass
class Options:
    """Tuning of a collection (defaults suit a real tenant; tests shrink the waits).

    Attributes:
        slice_size: Length of a time slice.
        min_slice: Slices are never halved below this; a failure there is a named gap.
        concurrency: Slices running at once per pacing policy.
        audit_operations: Purview operationFilters (empty: every operation).
        audit_record_types: Purview recordTypeFilters (empty: every record type).
        poll_interval: First wait between audit query status polls (doubles up to poll_cap).
        poll_cap: Longest wait between polls.
        query_attempts: Audit queries re-created after a failure before the slice becomes a gap.
        page_size: Override of every source's ``$top``.
    """

    slice_size: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=1))
    min_slice: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(minutes=15))
    concurrency: dict[str, int] = field(default_factory=lambda: {"reports": 3, "identity_protection": 1,
                                                                  "directory": 3, "audit_query": 10,
                                                                  "log_analytics": 3, "hunting": 2})
    audit_operations: tuple[str, ...] = DEFAULT_AUDIT_OPERATIONS
    audit_record_types: tuple[str, ...] = ()
    poll_interval: float = 5.0
    poll_cap: float = 60.0
    query_attempts: int = 3
    page_size: int | None = None


class SliceRunner(Protocol):
    """Collects one slice of a source kind the collector does not page itself (KQL query sources)."""

    @property
    def root(self) -> str:
        """The API root its requests go to: the only place the client may send this collection's token."""

    def run(self, col: Collector, sl: Slice, src: Any, stats: Stats) -> None: ...


class Collector:
    """Collect ``sources`` over ``[since, until)`` into ``work``; resumable from its checkpoint.

    Args:
        client: The Graph client.
        endpoints: Graph root (URLs are built from it).
        work: Work folder (created); holds the checkpoint, page parts and finished slice files.
        since, until: The window (ISO strings or timestamps, UTC).
        sources: Source names (None: all).
        options: See :class:`Options`.
        on_file: Called as ``on_file(path, ledger_entry)`` for each finished slice file (under a lock).
        progress: Show tqdm progress bars per source.
        registry: The source registry (default: the Graph sources); entries need NAME, kind, time_field, policy.
        runner: Collects slices of the kinds the collector does not know (Log Analytics, advanced hunting).
    """

    def __init__(self, client: GraphClient, endpoints: Endpoints, work: str | Path, since: Any, until: Any,
                 sources: list[str] | str | None = None, options: Options | None = None,
                 on_file: Callable[[Path, dict[str, Any]], None] | None = None, progress: bool = False,
                 registry: Mapping[str, Any] | None = None, runner: SliceRunner | None = None) -> None:
        self.registry: Mapping[str, Any] = SOURCES if registry is None else registry
        self.runner = runner
        self.client, self.endpoints, self.work = client, endpoints, Path(work)
        # the token goes only to the API this collector asks (Graph, or the query runner's own root), over https
        client.allowed_root = runner.root if runner is not None else endpoints.graph_root
        self._stopped: dict[str, str] = {}  # source -> why it was stopped (an unsafe nextLink)
        self.options = options or Options()
        start, end = parse_time(since), parse_time(until)
        if start is None or end is None:
            raise UserError(f"--since/--until: cannot read {since!r} / {until!r} as times")
        if end <= start:
            raise UserError(f"--until {iso_z(end)} is not after --since {iso_z(start)}")
        self.since, self.until = start, end
        try:
            self.sources = select(sources, self.registry)
        except ValueError as exc:
            raise UserError(f"--sources: {exc}") from None
        self.on_file, self.progress = on_file, progress
        self.work.mkdir(parents=True, exist_ok=True)
        self.ckpt = Checkpoint(self.work)
        self._file_lock = threading.Lock()
        self._bars = SourceBars(progress)
        self._span_cap: dict[str, pd.Timedelta] = {}  # per source: longest span not known to be over a limit
        self._cap_lock = threading.Lock()
        self._plan()

    # ----- planning ---------------------------------------------------------------------------
    def _plan(self) -> None:
        window = {"since": iso_z(self.since), "until": iso_z(self.until)}
        old = self.ckpt.data.get("window")
        if old and old != window:
            if any(s["status"] != "done" or not s.get("handed_over") for s in self.ckpt.slices.values()):
                raise UserError(f"{self.work}: an unfinished collection of {old['since']}..{old['until']} is here; "
                                "resume it with the same --since/--until (or collect into a new case)")
            history = self.work / "history" / f"checkpoint-{old['since']}-{old['until']}.json".replace(":", "")
            history.parent.mkdir(exist_ok=True)
            self.ckpt.path.replace(history)  # a finished collection: keep its record, start a new one
            self.ckpt = Checkpoint(self.work)
        self.ckpt.data["window"] = window
        for src in self.sources:
            slices = cut(src.NAME, self.since, self.until, self.options.slice_size) if src.time_field else \
                [Slice(src.NAME, self.since, self.until)]
            if any(s.get("source") == src.NAME for s in self.ckpt.slices.values()):
                continue  # planned by an earlier run: its (possibly split) slices stand
            for sl in slices:
                self.ckpt.slices[sl.key] = new_state(sl)
        for state in self.ckpt.slices.values():
            if state["status"] == "gap":  # a rerun tries again to close earlier gaps
                state.update(status="pending", gap=None)
        self.ckpt.save()

    # ----- running ----------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Collect every pending slice; returns the ledger (one entry per finished or failed slice)."""
        names = {s.NAME for s in self.sources}
        for key, state in list(self.ckpt.slices.items()):
            if state["status"] == "done" and state.get("file") and not state.get("handed_over"):
                self._hand_over(key)
        pools = {p: ThreadPoolExecutor(max_workers=max(1, self.options.concurrency.get(p, 1)),
                                       thread_name_prefix=f"collect-{p}")
                 for p in {s.policy for s in self.sources}}
        self._futures: set[Future[None]] = set()
        self._pools, self._flock = pools, threading.Lock()
        self._bars.open([n for n in self.registry if n in names])
        try:
            for key, state in list(self.ckpt.slices.items()):
                if state["status"] == "pending" and state["source"] in names:
                    self._submit(key)
            while True:
                with self._flock:
                    todo = set(self._futures)
                if not todo:
                    break
                done, _ = wait(todo, return_when=FIRST_COMPLETED)
                with self._flock:
                    self._futures -= done
                for fut in done:
                    fut.result()
        finally:
            for pool in pools.values():
                pool.shutdown(wait=True, cancel_futures=True)
            self._bars.close()
        return self.ledger()

    def _submit(self, key: str) -> None:
        src = self.registry[self.ckpt.slices[key]["source"]]
        with self._flock:
            self._futures.add(self._pools[src.policy].submit(self._run_slice, key))

    def _run_slice(self, key: str) -> None:
        state = self.ckpt.slices[key]
        src = self.registry[state["source"]]
        sl = Slice.from_key(key)
        stats = Stats()
        if self._pre_split(sl, state, stats):
            return
        try:
            self._check_stopped(src.NAME)
            if src.kind == "audit_query":
                run_audit(self, sl, src, stats)
            elif src.kind == "list":
                self._run_list(sl, src, stats)
            elif self.runner is not None:
                self.runner.run(self, sl, src, stats)
            else:
                raise GraphError(f"no runner for {src.NAME} (kind {src.kind})")
        except ThrottleExhausted as exc:
            self._split_or_gap(sl, f"throttled repeatedly: {exc}", stats)
        except LimitExceeded as exc:
            with self._cap_lock:  # later slices of this source that are as long are halved before asking
                half = (sl.end - sl.start) / 2
                self._span_cap[sl.source] = min(self._span_cap.get(sl.source, half), half)
            self._split_or_gap(sl, str(exc), stats)
        except UnsafeLink as exc:  # the whole source stops: its server hands out links we will not follow
            self._stopped.setdefault(src.NAME, str(exc))
            self._account(key, stats)
            self.ckpt.update(key, status="gap", gap=str(exc))
            log.error("%s %s..%s: source stopped: %s", sl.source, iso_z(sl.start), iso_z(sl.end), exc)
        except GraphError as exc:
            self._account(key, stats)
            self.ckpt.update(key, status="gap", gap=str(exc))
            log.warning("%s %s..%s: gap: %s", sl.source, iso_z(sl.start), iso_z(sl.end), exc)
        self._tick(key)

    def _check_stopped(self, source: str) -> None:
        """Raise UnsafeLink when ``source`` was stopped by another slice."""
        if source in self._stopped:
            raise UnsafeLink(f"not collected: {source} was stopped ({self._stopped[source]})")

    def _pre_split(self, sl: Slice, state: dict[str, Any], stats: Stats) -> bool:
        """Halve an unstarted slice longer than a slice of its source that was over the result limit.

        Saves the query that would come back truncated (and, for audit queries, minutes of searching);
        never turns a slice into a gap: one that cannot be halved any more is asked as it is.
        """
        with self._cap_lock:
            cap = self._span_cap.get(sl.source)
        started = state["pages"] or state.get("query_id") or state.get("requested")
        if cap is None or started or sl.end - sl.start <= cap or sl.halves(self.options.min_slice) is None:
            return False
        self._split_or_gap(sl, f"halved before asking: a slice of {sl.source} as long was over the result limit",
                           stats)
        self._tick(sl.key)
        return True

    def _account(self, key: str, stats: Stats) -> None:
        s = self.ckpt.slices[key]
        s["retries"] += stats.retries
        s["throttle_wait_s"] = round(s["throttle_wait_s"] + stats.throttle_wait_s, 3)
        stats.retries, stats.throttle_wait_s = 0, 0.0

    # ----- list sources -----------------------------------------------------------------------
    def first_url(self, sl: Slice, src: Source) -> str:
        """The first page's URL of a list slice (``$filter`` on the time field and event type)."""
        params: dict[str, str] = {"$top": str(self.options.page_size or src.page_size), **src.extra_params}
        clauses = []
        if src.time_field:
            clauses.append(f"{src.time_field} ge {odata_datetime(sl.start)} and "
                           f"{src.time_field} le {odata_datetime(sl.last_tick)}")
        if src.event_type:
            clauses.append(f"signInEventTypes/any(t: t eq '{src.event_type}')")
        if clauses:
            params["$filter"] = " and ".join(f"({c})" if len(clauses) > 1 else c for c in clauses)
        return f"{self.endpoints.url(src.version, src.path)}?{urlencode(params, quote_via=quote, safe='$')}"

    def _run_list(self, sl: Slice, src: Source, stats: Stats, url: str | None = None) -> None:
        key = sl.key
        state = self.ckpt.slices[key]
        if not state.get("requested"):
            self.ckpt.update(key, requested={"url": url or self.first_url(sl, src)})
        first = None if state.get("exhausted") else (state["next_link"] or state["requested"]["url"])
        self.page_through(sl, src, stats, first, window_filter=False)

    def page_through(self, sl: Slice, src: Source, stats: Stats, url: str | None, window_filter: bool) -> None:
        key, stem = sl.key, sl.file_stem
        state = self.ckpt.slices[key]
        self.ckpt.prune_parts(stem, state["pages"])
        seen: set[str] = set()
        for n in range(1, state["pages"] + 1):
            seen.update(str(r.get("id")) for r in read_lines(self.ckpt.part_path(stem, n)))
        while url:
            self._check_stopped(src.NAME)
            page = self.client.get(url, policy=src.policy, stats=stats, headers=src.headers or None)
            records = page.get("value")
            if not isinstance(records, list):
                raise GraphError(f"page of {src.NAME} without a 'value' list", url=url)
            if page.get("@odata.nextLink"):  # checked before anything of this page is kept
                ensure_within(str(page["@odata.nextLink"]), self.endpoints.graph_root,
                              what=f"the @odata.nextLink of {src.NAME} page {state['pages'] + 1}")
            fresh, dups, outside = [], 0, 0
            for r in records:
                rid = str(r.get("id"))
                if rid in seen:
                    dups += 1
                elif window_filter and not sl.contains(parse_time(r.get(src.time_field or ""))):
                    outside += 1
                else:
                    seen.add(rid)
                    fresh.append(r)
            n = state["pages"] + 1
            write_atomic(self.ckpt.part_path(stem, n), gzip_lines(fresh))
            url = page.get("@odata.nextLink")
            self._account(key, stats)
            self.ckpt.update(key, pages=n, records=state["records"] + len(fresh), next_link=url, exhausted=url is None,
                             duplicates=state["duplicates"] + dups, outside_window=state["outside_window"] + outside)
            self._bars.add(src.NAME, len(fresh))
        self._finalise(sl)

    def finish_slice(self, sl: Slice, records: list[dict[str, Any]], stats: Stats, **state: Any) -> None:
        """Record the whole result of a one-shot slice (a query) as its single page and finish the slice."""
        key, stem = sl.key, sl.file_stem
        self.ckpt.prune_parts(stem, 0)
        write_atomic(self.ckpt.part_path(stem, 1), gzip_lines(records))
        self._account(key, stats)
        self.ckpt.update(key, pages=1, records=len(records), next_link=None, exhausted=True, **state)
        self._bars.add(sl.source, len(records))
        self._finalise(sl)

    def _finalise(self, sl: Slice) -> None:
        key, stem = sl.key, sl.file_stem
        state = self.ckpt.slices[key]
        parts = [self.ckpt.part_path(stem, n) for n in range(1, state["pages"] + 1)]
        out = self.work / sl.source / f"{stem}.jsonl.gz"
        write_atomic(out, gzip_lines(r for p in parts for r in read_lines(p)))
        self.ckpt.update(key, status="done", file=out.relative_to(self.work).as_posix(), next_link=None, gap=None)
        self.ckpt.drop_parts(stem)
        self._hand_over(key)

    def _hand_over(self, key: str) -> None:
        state = self.ckpt.slices[key]
        path = self.work / state["file"]
        if self.on_file is not None and path.exists():
            with self._file_lock:
                self.on_file(path, self.ledger_entry(state))
        self.ckpt.update(key, handed_over=True)

    # ----- splitting and the ledger -----------------------------------------------------------
    def _split_or_gap(self, sl: Slice, reason: str, stats: Stats) -> None:
        key = sl.key
        self._account(key, stats)
        halves = sl.halves(self.options.min_slice)
        if halves is None:
            self.ckpt.update(key, status="gap", gap=f"{reason}; slice already at the minimum size")
            return
        parent = self.ckpt.slices[key]
        with self.ckpt.lock:
            for i, half in enumerate(halves):
                child = new_state(half)
                if i == 0:  # keep the parent's cost in the ledger
                    child.update(retries=parent["retries"], throttle_wait_s=parent["throttle_wait_s"])
                child["split_from"] = key
                self.ckpt.slices[half.key] = child
            parent.update(status="split", split_into=[h.key for h in halves], reason=reason, next_link=None)
            self.ckpt.save()
        self.ckpt.drop_parts(sl.file_stem)
        log.info("%s: split %s..%s (%s)", sl.source, iso_z(sl.start), iso_z(sl.end), reason)
        for half in halves:
            self._submit(half.key)

    def ledger(self) -> list[dict[str, Any]]:
        """One entry per leaf slice (finished, failed or still pending), ordered by source and time."""
        rows = [self.ledger_entry(s) for s in self.ckpt.slices.values() if s["status"] != "split"]
        order = {name: i for i, name in enumerate(self.registry)}
        return sorted(rows, key=lambda r: (order.get(r["source"], 99), r["slice_start"], r["slice_end"]))

    def ledger_entry(self, state: dict[str, Any]) -> dict[str, Any]:
        """The ledger entry of one slice state (see :func:`ir_toolkit.sources.graph.ledger.ledger_entry`)."""
        return ledger_entry(state, self.registry)

    def _tick(self, key: str) -> None:
        source = self.ckpt.slices[key]["source"]
        with self.ckpt.lock:
            waits = sum(s["throttle_wait_s"] for s in self.ckpt.slices.values() if s["source"] == source)
        self._bars.wait(source, waits)
